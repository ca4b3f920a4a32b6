"""The emulator's spot private side as a client sees it: the WebSocket API on ``/ws-api/v3`` and the
signed REST, their keys, signatures and clock checks, every method's answer against the shapes of
Binance's documented examples (field names, decimal strings, integers), the errors a market maker
meets, and the user data (``executionReport``, ``outboundAccountPosition``) of fills made by the
backtester's exchange model on the replayed market."""

from __future__ import annotations

import asyncio
import re

import pytest

from avmm.backtest.config import BacktestConfig
from avmm.emulator import EmulatorThread
from tests.emulator.conftest import Keyring, WsApi, churn_rows, now_ms, rest, run, write_store

aiohttp = pytest.importorskip("aiohttp")
pytest.importorskip("cryptography")
pytestmark = pytest.mark.xdist_group("live")

DEC8 = re.compile(r"^-?\d+\.\d{8}$")
SYM = {"symbol": "BTCUSDT"}


@pytest.fixture(scope="module")
def ring() -> Keyring:
    return Keyring(n_hmac=9, n_ed=3)


@pytest.fixture(scope="module")
def emu(tmp_path_factory, ring):
    path = write_store(tmp_path_factory.mktemp("spot") / "churn.parquet", churn_rows(120.0))
    bt = BacktestConfig.model_validate({"initial_base": 100.0, "initial_quote": 1e6})
    with EmulatorThread(path, speed=1.0, start_now=True, keys=ring.keys(), backtest=bt, faults=["weightlimit:0"]) as e:
        yield e


def api(emu, s, ring):
    return WsApi(s, emu.ws_url + "/ws-api/v3", ring)


def _decimal_fields(d: dict, names: list[str]) -> None:
    for n in names:
        assert isinstance(d[n], str) and DEC8.match(d[n]), (n, d[n])


def test_keys_signatures_and_the_clock(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, api(emu, s, ring) as c:
            ok = await c.call("account.status", key="h0")
            p = c.signed("h0")
            p["signature"] = "0" * 64
            bad = await c.call("account.status", p)
            unknown = await c.call("account.status", {"apiKey": "zz", "timestamp": now_ms(), "signature": "x"})
            malformed = await c.call("account.status", {"apiKey": "a b", "timestamp": now_ms(), "signature": "x"})
            old = await c.call("account.status", c.signed("h0", ts=now_ms() - 10_000))
            old_ok = await c.call("account.status", c.signed("h0", {"recvWindow": 20000}, ts=now_ms() - 10_000))
            ahead = await c.call("account.status", c.signed("h0", ts=now_ms() + 5_000))
            p = {"apiKey": "h0"}
            from avmm.emulator.keys import ws_payload

            p["signature"] = ring.sign("h0", ws_payload(p))
            no_ts = await c.call("account.status", p)
            ed = await c.call("account.status", key="e0")  # Ed25519, signed per request
            no_key = await c.call("account.status", {"timestamp": now_ms()})
            return ok, bad, unknown, malformed, old, old_ok, ahead, no_ts, ed, no_key

    ok, bad, unknown, malformed, old, old_ok, ahead, no_ts, ed, no_key = run(go())
    assert ok["status"] == 200 and ed["status"] == 200 and old_ok["status"] == 200
    assert bad["status"] == 400 and bad["error"] == {"code": -1022, "msg": "Signature for this request is not valid."}
    assert (unknown["status"], unknown["error"]["code"]) == (401, -2015)
    assert unknown["error"]["msg"] == "Invalid API-key, IP, or permissions for action."
    assert (malformed["status"], malformed["error"]["code"]) == (401, -2014)
    assert old["error"] == {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
    assert ahead["error"] == {"code": -1021, "msg": "Timestamp for this request was 1000ms ahead of the server's time."}
    assert no_ts["error"]["code"] == -1102 and "'timestamp'" in no_ts["error"]["msg"]
    assert no_key["error"]["code"] == -1102 and "'apiKey'" in no_key["error"]["msg"]


def test_session_logon_is_ed25519_only_and_signs_for_the_session(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, api(emu, s, ring) as c:
            before = await c.call("session.status")
            hm = await c.logon("h1")
            on = await c.logon("e1")
            acct = await c.call("account.status", {"timestamp": now_ms()})  # no apiKey, no signature
            stale = await c.call("account.status", {"timestamp": now_ms() - 60_000})
            st = await c.call("session.status")
            off = await c.call("session.logout")
            after = await c.call("account.status", {"timestamp": now_ms()})
            return before, hm, on, acct, stale, st, off, after

    before, hm, on, acct, stale, st, off, after = run(go())
    assert before["result"]["apiKey"] is None and before["result"]["authorizedSince"] is None
    assert hm["error"]["code"] == -1022  # an HMAC key cannot log on
    r = on["result"]
    fields = ["apiKey", "authorizedSince", "connectedSince", "returnRateLimits", "serverTime", "userDataStream"]
    assert list(r) == fields
    assert r["apiKey"] == "e1" and r["userDataStream"] is False and isinstance(r["serverTime"], int)
    assert acct["status"] == 200 and stale["error"]["code"] == -1021
    assert st["result"]["apiKey"] == "e1"
    assert off["result"]["apiKey"] is None and after["error"]["code"] == -1102


def test_order_place_answers_ack_result_full(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, api(emu, s, ring) as c:
            base = {**SYM, "side": "BUY", "type": "LIMIT_MAKER", "price": "99.00", "quantity": "0.010"}
            ack = await c.call("order.place", base, key="h2")  # LIMIT_MAKER: ACK by default
            res_params = {**base, "newOrderRespType": "RESULT", "newClientOrderId": "my-1"}
            res = await c.call("order.place", res_params, key="h2")
            take = {**SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "price": "100.05", "quantity": "2.000"}
            full = await c.call("order.place", take, key="h2")  # LIMIT: FULL by default; it takes
            return ack, res, full

    ack, res, full = run(go())
    assert list(ack["result"]) == ["symbol", "orderId", "orderListId", "clientOrderId", "transactTime"]
    assert ack["result"]["orderListId"] == -1 and isinstance(ack["result"]["orderId"], int)
    r = res["result"]
    assert list(r) == [
        "symbol", "orderId", "orderListId", "clientOrderId", "transactTime", "price", "origQty", "executedQty",
        "origQuoteOrderQty", "cummulativeQuoteQty", "status", "timeInForce", "type", "side", "workingTime",
        "selfTradePreventionMode",
    ]  # fmt: skip
    got = (r["clientOrderId"], r["status"], r["type"], r["side"], r["timeInForce"])
    assert got == ("my-1", "NEW", "LIMIT_MAKER", "BUY", "GTC")
    _decimal_fields(r, ["price", "origQty", "executedQty", "origQuoteOrderQty", "cummulativeQuoteQty"])
    assert r["price"] == "99.00000000" and r["origQty"] == "0.01000000"
    f = full["result"]
    assert f["status"] in ("FILLED", "EXPIRED") and f["fills"], f
    fill = f["fills"][0]
    assert list(fill) == ["price", "qty", "commission", "commissionAsset", "tradeId"]
    _decimal_fields(fill, ["price", "qty", "commission"])
    assert fill["commissionAsset"] == "USDT" and isinstance(fill["tradeId"], int)
    px, q = float(fill["price"]), float(fill["qty"])
    assert float(fill["commission"]) == pytest.approx(0.0005 * px * q, abs=1e-8)  # taker
    rl = {(x["rateLimitType"], x["interval"], x["intervalNum"]) for x in full["rateLimits"]}
    assert rl == {("ORDERS", "SECOND", 10), ("ORDERS", "DAY", 1), ("REQUEST_WEIGHT", "MINUTE", 1)}


def test_limit_maker_that_would_take_is_rejected(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, api(emu, s, ring) as c:
            o = {**SYM, "side": "BUY", "type": "LIMIT_MAKER", "price": "100.02", "quantity": "0.010"}
            r = await c.call("order.place", o, key="h3")
            opn = await c.call("openOrders.status", SYM, key="h3")
            return r, opn

    r, opn = run(go())
    assert r["status"] == 400 and r["error"] == {"code": -2010, "msg": "Order would immediately match and take."}
    assert opn["result"] == []


def test_an_ioc_order_takes_what_it_can_and_never_rests(emu, ring):
    """``LIMIT`` ``IOC`` (the core's flatten): one that does not cross expires untouched; one that
    crosses takes (taker fee) and the rest expires; neither is left open."""

    async def go():
        async with aiohttp.ClientSession() as s, api(emu, s, ring) as c:
            o = {**SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "IOC", "newOrderRespType": "FULL"}
            away = await c.call("order.place", {**o, "price": "90.00", "quantity": "0.010"}, key="h8")
            take = await c.call("order.place", {**o, "price": "100.05", "quantity": "2.000"}, key="h8")
            opn = await c.call("openOrders.status", SYM, key="h8")
            return away, take, opn

    away, take, opn = run(go())
    a = away["result"]
    assert (a["status"], a["timeInForce"], a["executedQty"], a["fills"]) == ("EXPIRED", "IOC", "0.00000000", []), a
    t = take["result"]
    assert t["status"] in ("FILLED", "EXPIRED") and t["fills"] and t["timeInForce"] == "IOC", t
    assert opn["result"] == []


def test_query_cancel_and_their_errors(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, api(emu, s, ring) as c:
            o = {**SYM, "side": "SELL", "type": "LIMIT_MAKER", "price": "101.00", "quantity": "0.010"}
            a = await c.call("order.place", {**o, "newClientOrderId": "q-a"}, key="h4")
            b = await c.call("order.place", {**o, "newClientOrderId": "q-b"}, key="h4")
            st = await c.call("order.status", {**SYM, "orderId": a["result"]["orderId"]}, key="h4")
            opn = await c.call("openOrders.status", SYM, key="h4")
            by_cid = {**SYM, "origClientOrderId": "q-a", "newClientOrderId": "q-a-x"}
            cx = await c.call("order.cancel", by_cid, key="h4")
            again = await c.call("order.cancel", {**SYM, "orderId": a["result"]["orderId"]}, key="h4")
            st_gone = await c.call("order.status", {**SYM, "orderId": 1}, key="h4")
            call = await c.call("openOrders.cancelAll", SYM, key="h4")
            none = await c.call("openOrders.cancelAll", SYM, key="h4")
            st_after = await c.call("order.status", {**SYM, "origClientOrderId": "q-a-x"}, key="h4")
            return a, b, st, opn, cx, again, st_gone, call, none, st_after

    a, b, st, opn, cx, again, st_gone, call, none, st_after = run(go())
    r = st["result"]
    assert list(r) == [
        "symbol", "orderId", "orderListId", "clientOrderId", "price", "origQty", "executedQty",
        "cummulativeQuoteQty", "status", "timeInForce", "type", "side", "stopPrice", "icebergQty", "time",
        "updateTime", "isWorking", "workingTime", "origQuoteOrderQty", "selfTradePreventionMode",
    ]  # fmt: skip
    assert r["isWorking"] is True and r["status"] == "NEW" and r["clientOrderId"] == "q-a"
    _decimal_fields(r, ["price", "origQty", "executedQty", "cummulativeQuoteQty", "stopPrice", "icebergQty"])
    assert [x["clientOrderId"] for x in opn["result"]] == ["q-a", "q-b"]
    c = cx["result"]
    assert list(c) == [
        "symbol", "origClientOrderId", "orderId", "orderListId", "clientOrderId", "transactTime", "price",
        "origQty", "executedQty", "origQuoteOrderQty", "cummulativeQuoteQty", "status", "timeInForce", "type",
        "side", "selfTradePreventionMode",
    ]  # fmt: skip
    assert (c["origClientOrderId"], c["clientOrderId"], c["status"]) == ("q-a", "q-a-x", "CANCELED")
    assert again["error"] == {"code": -2011, "msg": "Unknown order sent."}
    assert st_gone["error"] == {"code": -2013, "msg": "Order does not exist."}
    assert [x["origClientOrderId"] for x in call["result"]] == ["q-b"]
    assert none["error"]["code"] == -2011
    assert st_after["result"]["status"] == "CANCELED"


def test_cancel_replace_success_and_failures(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, api(emu, s, ring) as c:
            o = {**SYM, "side": "BUY", "type": "LIMIT_MAKER", "price": "99.00", "quantity": "0.010"}
            a = await c.call("order.place", o, key="h5")
            rep = {**o, "price": "99.10", "cancelReplaceMode": "STOP_ON_FAILURE", "newOrderRespType": "RESULT"}
            ok = await c.call("order.cancelReplace", {**rep, "cancelOrderId": a["result"]["orderId"]}, key="h5")
            new_id = ok["result"]["newOrderResponse"]["orderId"]
            stop = await c.call("order.cancelReplace", {**rep, "cancelOrderId": 12345}, key="h5")
            allow_p = {**rep, "cancelOrderId": 12345, "cancelReplaceMode": "ALLOW_FAILURE"}
            allow = await c.call("order.cancelReplace", allow_p, key="h5")
            take = {**rep, "price": "100.05", "cancelOrderId": new_id}
            half = await c.call("order.cancelReplace", take, key="h5")
            both_p = {**take, "cancelOrderId": 12345, "cancelReplaceMode": "ALLOW_FAILURE"}
            both = await c.call("order.cancelReplace", both_p, key="h5")
            return ok, stop, allow, half, both

    ok, stop, allow, half, both = run(go())
    r = ok["result"]
    assert (r["cancelResult"], r["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    assert r["cancelResponse"]["status"] == "CANCELED" and r["newOrderResponse"]["price"] == "99.10000000"
    assert stop["status"] == 400 and stop["error"]["code"] == -2022
    assert stop["error"]["msg"] == "Order cancel-replace failed."
    d = stop["error"]["data"]
    assert (d["cancelResult"], d["newOrderResult"], d["newOrderResponse"]) == ("FAILURE", "NOT_ATTEMPTED", None)
    assert d["cancelResponse"] == {"code": -2011, "msg": "Unknown order sent."}
    assert allow["status"] == 409 and allow["error"]["code"] == -2021
    assert allow["error"]["data"]["newOrderResult"] == "SUCCESS"
    assert half["status"] == 409 and half["error"]["data"]["cancelResult"] == "SUCCESS"
    take_err = {"code": -2010, "msg": "Order would immediately match and take."}
    assert half["error"]["data"]["newOrderResponse"] == take_err
    assert both["status"] == 400 and both["error"]["code"] == -2022


def test_amend_keep_priority_answer_and_report(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, api(emu, s, ring) as c:
            await c.logon("e2")
            await c.call("userDataStream.subscribe")
            o = {**SYM, "side": "SELL", "type": "LIMIT_MAKER", "price": "102.00", "quantity": "1.000"}
            o["timestamp"] = now_ms()
            a = await c.call("order.place", o)
            amd = {**SYM, "orderId": a["result"]["orderId"], "newQty": "0.400", "newClientOrderId": "amended"}
            am = await c.call("order.amend.keepPriority", {**amd, "timestamp": now_ms()})
            up = await c.call("order.amend.keepPriority", {**amd, "newQty": "0.500", "timestamp": now_ms()})
            ev = await c.event(lambda e: e.get("x") == "REPLACED")
            return am, up, ev

    am, up, ev = run(go())
    r = am["result"]
    assert list(r) == ["transactTime", "executionId", "amendedOrder"]
    o = r["amendedOrder"]
    assert list(o) == [
        "symbol", "orderId", "orderListId", "origClientOrderId", "clientOrderId", "price", "qty", "executedQty",
        "preventedQty", "quoteOrderQty", "cumulativeQuoteQty", "status", "timeInForce", "type", "side",
        "workingTime", "selfTradePreventionMode",
    ]  # fmt: skip
    assert (o["qty"], o["clientOrderId"], o["status"]) == ("0.40000000", "amended", "NEW")
    assert up["error"]["code"] == -1013 and "quantity increase" in up["error"]["msg"]
    assert (ev["c"], ev["q"], ev["X"]) == ("amended", "0.40000000", "NEW") and ev["C"]


def test_a_resting_order_fills_from_the_replay_with_user_data(emu, ring):
    """A bid at 99.99 never crosses and is filled by the next sell through it: executionReport NEW,
    then TRADE / FILLED with a trade id and the maker commission, and outboundAccountPosition; the
    trade is in myTrades and the balances moved by it."""

    async def go():
        async with aiohttp.ClientSession() as s, api(emu, s, ring) as c:
            await c.logon("e0")
            sub = await c.call("userDataStream.subscribe")
            acct0 = await c.call("account.status", {"timestamp": now_ms()})
            o = {**SYM, "side": "BUY", "type": "LIMIT_MAKER", "price": "99.99", "quantity": "1.500"}
            o["timestamp"] = now_ms()
            a = await c.call("order.place", o)
            oid = a["result"]["orderId"]
            trade = await c.event(lambda e: e.get("x") == "TRADE" and e["i"] == oid)
            pos = await c.event(lambda e: e.get("e") == "outboundAccountPosition" and e["E"] >= trade["E"])
            mine = await c.call("myTrades", {**SYM, "orderId": oid, "timestamp": now_ms()})
            acct1 = await c.call("account.status", {"timestamp": now_ms()})
            return sub, c.events, trade, pos, mine, acct0, acct1, oid

    sub, events, trade, pos, mine, acct0, acct1, oid = run(go())
    assert sub["result"] == {"subscriptionId": 0}
    assert all(d["subscriptionId"] == 0 for _, d in events)
    reports = [d["event"] for _, d in events if d["event"]["e"] == "executionReport" and d["event"]["i"] == oid]
    assert [(r["x"], r["X"]) for r in reports] == [("NEW", "NEW"), ("TRADE", "FILLED")]
    new = reports[0]
    assert list(new)[:3] == ["e", "E", "s"] and new["t"] == -1 and new["N"] is None and new["n"] == "0"
    for k in "EOTIiW":
        assert isinstance(new[k], int), k
    _decimal_fields(trade, ["q", "p", "l", "z", "L", "n", "Z", "Y"])
    got = (trade["l"], trade["z"], trade["L"], trade["N"], trade["m"])
    assert got == ("1.50000000", "1.50000000", "99.99000000", "USDT", True)
    assert float(trade["n"]) == pytest.approx(0.0002 * 99.99 * 1.5, abs=1e-8)
    assert trade["t"] > 0 and trade["w"] is False
    assert [b["a"] for b in pos["B"]] == ["BTC", "USDT"]
    (t,) = mine["result"]
    assert list(t) == [
        "symbol", "id", "orderId", "orderListId", "price", "qty", "quoteQty", "commission", "commissionAsset",
        "time", "isBuyer", "isMaker", "isBestMatch",
    ]  # fmt: skip
    assert (t["id"], t["commission"], t["isBuyer"], t["isMaker"]) == (trade["t"], trade["n"], True, True)
    b0 = {x["asset"]: float(x["free"]) + float(x["locked"]) for x in acct0["result"]["balances"]}
    b1 = {x["asset"]: float(x["free"]) + float(x["locked"]) for x in acct1["result"]["balances"]}
    summary = next(a for a in emu.accounts()["accounts"] if a["api_key"] == "e0")
    assert summary["position"] == pytest.approx(1.5) and summary["trades"] == 1
    assert b1["BTC"] == pytest.approx(b0["BTC"] + 1.5)
    assert b1["USDT"] == pytest.approx(b0["USDT"] - 99.99 * 1.5 * 1.0002)
    r = acct1["result"]
    assert (r["makerCommission"], r["takerCommission"], r["commissionRates"]["maker"]) == (2, 5, "0.00020000")
    assert r["accountType"] == "SPOT" and r["canTrade"] is True


def test_user_data_subscriptions(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, api(emu, s, ring) as c:
            anon = await c.call("userDataStream.subscribe")
            signed = await c.call("userDataStream.subscribe.signature", key="h6")
            twice = await c.call("userDataStream.subscribe.signature", key="h6")
            st = await c.call("session.status")
            un = await c.call("userDataStream.unsubscribe")
            again = await c.call("userDataStream.unsubscribe")
            return anon, signed, twice, st, un, again

    anon, signed, twice, st, un, again = run(go())
    assert (anon["status"], anon["error"]["code"]) == (401, -1002)
    assert signed["result"] == {"subscriptionId": 0} and twice["error"]["code"] == -2035
    assert st["result"]["userDataStream"] is True
    assert un["result"] == {} and again["error"]["code"] == -2036


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"price": "abc"}, -1100),
        ({"quantity": None}, -1102),
        ({"side": "UP"}, -1117),
        ({"type": "MARKET"}, -1116),
        ({"price": "99.995"}, -1013),
        ({"quantity": "0.0005"}, -1013),
        ({"symbol": "ETHUSDT"}, -1121),
        ({"timeInForce": "GTC"}, -1106),
        ({"newClientOrderId": "bad id!"}, -1100),
    ],
)
def test_bad_parameters(emu, ring, change, code):
    async def go():
        async with aiohttp.ClientSession() as s, api(emu, s, ring) as c:
            o = {**SYM, "side": "BUY", "type": "LIMIT_MAKER", "price": "99.00", "quantity": "0.010", **change}
            return await c.call("order.place", {k: v for k, v in o.items() if v is not None}, key="h7")

    r = run(go())
    assert r["status"] == 400 and r["error"]["code"] == code


def test_public_methods_and_rate_limit_display(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, api(emu, s, ring) as c:
            ping = await c.call("ping")
            tm = await c.call("time")
            info = await c.call("exchangeInfo", {"symbols": ["BTCUSDT"]})
            quiet = await c.call("time", {"returnRateLimits": False})
            bad = await c.call("no.such.method")
            async with s.ws_connect(emu.ws_url + "/ws-api/v3?returnRateLimits=false") as ws:
                await ws.send_json({"id": "x", "method": "time"})
                hushed = await ws.receive_json(timeout=5)
        return ping, tm, info, quiet, bad, hushed

    ping, tm, info, quiet, bad, hushed = run(go())
    assert ping["result"] == {} and abs(tm["result"]["serverTime"] - now_ms()) < 2000
    assert info["result"]["symbols"][0]["symbol"] == "BTCUSDT"
    assert "rateLimits" in ping and "rateLimits" not in quiet and "rateLimits" not in hushed
    assert hushed["id"] == "x" and bad["status"] == 400


def test_signed_rest(emu, ring):
    async def go():
        u = emu.url + "/api/v3"
        async with aiohttp.ClientSession() as s:
            o = {**SYM, "side": "SELL", "type": "LIMIT_MAKER", "price": "103.00", "quantity": "0.020"}
            placed = await rest(s, ring, "POST", u + "/order", {**o, "newOrderRespType": "RESULT"}, key="h1")
            oid = placed[1]["orderId"]
            got = await rest(s, ring, "GET", u + "/order", {**SYM, "orderId": oid}, key="h1")
            opn = await rest(s, ring, "GET", u + "/openOrders", SYM, key="h1")
            amd_p = {**SYM, "orderId": oid, "newQty": "0.010"}
            amd = await rest(s, ring, "PUT", u + "/order/amend/keepPriority", amd_p, key="h1")
            rep = {**o, "cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrderId": oid, "price": "103.50"}
            cr = await rest(s, ring, "POST", u + "/order/cancelReplace", rep, key="h1")
            new_id = cr[1]["newOrderResponse"]["orderId"]
            cx = await rest(s, ring, "DELETE", u + "/order", {**SYM, "orderId": new_id}, key="h1")
            await rest(s, ring, "POST", u + "/order", o, key="h1")
            cxa = await rest(s, ring, "DELETE", u + "/openOrders", SYM, key="h1")
            acct = await rest(s, ring, "GET", u + "/account", {}, key="h1")
            trades = await rest(s, ring, "GET", u + "/myTrades", SYM, key="h1")
            nokey = await rest(s, ring, "GET", u + "/account", {"timestamp": now_ms()}, key=None)
            forged = {"timestamp": now_ms(), "signature": "00"}
            badsig = await rest(s, ring, "GET", u + "/account", forged, key="h1", sign=False)
            return placed, got, opn, amd, cr, cx, cxa, acct, trades, nokey, badsig

    placed, got, opn, amd, cr, cx, cxa, acct, trades, nokey, badsig = run(go())
    st, body, h = placed
    assert st == 200 and body["status"] == "NEW" and body["price"] == "103.00000000"
    assert h["X-MBX-ORDER-COUNT-10S"] == "1" and int(h["X-MBX-USED-WEIGHT-1M"]) > 0 and "X-MBX-ORDER-COUNT-1D" in h
    assert got[1]["orderId"] == body["orderId"] and "isWorking" in got[1]
    assert [x["orderId"] for x in opn[1]] == [body["orderId"]]
    assert amd[0] == 200 and amd[1]["amendedOrder"]["qty"] == "0.01000000"
    assert cr[0] == 200 and cr[1]["cancelResult"] == "SUCCESS"
    assert cx[0] == 200 and cx[1]["status"] == "CANCELED"
    assert cxa[0] == 200 and len(cxa[1]) == 1
    assert acct[0] == 200 and {b["asset"] for b in acct[1]["balances"]} == {"BTC", "USDT"}
    assert trades == (200, [], trades[2])
    assert nokey[0] == 401 and nokey[1] == {"code": -2014, "msg": "API-key format invalid."}
    assert badsig[0] == 400 and badsig[1]["code"] == -1022


def test_rest_market_data_counts_weight(emu):
    async def go():
        async with aiohttp.ClientSession() as s:
            async with s.get(emu.url + "/api/v3/time") as r1:
                w1 = int(r1.headers["X-MBX-USED-WEIGHT-1M"])
            async with s.get(emu.url + "/api/v3/exchangeInfo") as r2:
                w2 = int(r2.headers["X-MBX-USED-WEIGHT-1M"])
            return w1, w2

    w1, w2 = run(go())
    assert w2 - w1 >= 20 or w2 < w1  # exchangeInfo weighs 20 (unless a new minute began)


def test_a_resting_order_is_filled_as_the_backtesters_model_fills_it(tmp_path, ring):
    """Orders placed before the replay (the depth store at --max) are filled, report by report, as
    the backtester's exchange model (``PaperGateway``) fills them on the same events offline."""
    from avmm.backtest.venue import PaperGateway, PaperRecords
    from avmm.core.config import StrategyConfig, to_params
    from avmm.emulator.matching import emulator_backtest
    from avmm.emulator.replay import BT, DIFF, TR, Replay
    from tests.emulator.conftest import depth_rows

    path = write_store(tmp_path / "depth.parquet", depth_rows(seed=5, n_msgs=600))
    bt = BacktestConfig.model_validate({"initial_base": 100.0, "initial_quote": 1e6})
    orders = [(1, 99.99), (1, 99.97), (-1, 100.01), (-1, 100.03), (1, 99.95)]

    async def go(e):
        async with aiohttp.ClientSession() as s, WsApi(s, e.ws_url + "/ws-api/v3", ring) as c:
            await c.logon("e0")
            await c.call("userDataStream.subscribe")
            ids = []
            for side, px in orders:
                o = {**SYM, "side": "BUY" if side > 0 else "SELL", "type": "LIMIT_MAKER", "price": f"{px:.2f}"}
                r = await c.call("order.place", {**o, "quantity": "3.000", "timestamp": now_ms()})
                ids.append(r["result"]["orderId"])
            e.begin()
            await asyncio.to_thread(e.wait_done, 60)
            await asyncio.sleep(0.3)
            return ids, [d["event"] for _, d in c.events if d["event"]["e"] == "executionReport"]

    with EmulatorThread(path, max_speed=True, autostart=False, keys=ring.keys(), backtest=bt, heartbeat=None) as e:
        ids, reports = run(go(e), timeout=120)
    got = [(ids.index(r["i"]), float(r["L"]), float(r["l"]), r["X"], r["T"]) for r in reports if r["x"] == "TRADE"]

    # offline: the backtester's model on the replay's steps
    cfg = StrategyConfig.model_validate({"quoting": {"tick": 0.01, "lot": 0.001}})
    b = emulator_backtest(bt, False)
    fills = []

    class Rec:
        def ack(self, t, oid): ...
        def reject(self, t, oid): ...
        def canceled(self, t, oid): ...

        def fill(self, t, oid, side, px, qty, fee):
            fills.append((oid, px, qty, t // 1_000_000))

    gw = PaperGateway(cfg, b, Rec(), to_params(cfg), {"market": "spot"}, PaperRecords())
    gw.bp["post_only"] = 1
    for k, (side, px) in enumerate(orders):
        gw.place(0, k, side, px, 3.0)
    gw.advance(0)
    rp = Replay([path])
    for st in rp.steps():
        t = st[2] // 1_000_000 * 1_000_000
        if st[0] == BT:
            gw.quote(t, st[4], st[5], st[6], st[7])
        elif st[0] == TR:
            gw.trade(t, st[4], st[5], st[6])
        elif st[0] == DIFF and rp.depth_mode:
            for p, q in st[6]:
                gw.depth(t, 1, p, q)
            for p, q in st[7]:
                gw.depth(t, -1, p, q)
        gw.advance(t)
    want = [(oid, px, q) for oid, px, q, _ in fills]
    assert len(want) >= 3 and [g[:3] for g in got] == want
    # the same times, up to the venue clock's shift
    assert len({g[4] - f[3] for g, f in zip(got, fills, strict=True)}) == 1
    done = {g[0]: g[3] for g in got}
    assert all(done[k] == "FILLED" for k in done if sum(g[2] for g in got if g[0] == k) == 3.0)
