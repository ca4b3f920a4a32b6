"""The emulator's USD-M private side: the WebSocket API on ``/ws-fapi/v1``, the signed ``/fapi``
REST, the listenKey and its user stream (``ORDER_TRADE_UPDATE``, ``TRADE_LITE``, ``ACCOUNT_UPDATE``),
GTX (-5022), ``order.modify`` and ``countdownCancelAll``, on the backtester's exchange model."""

from __future__ import annotations

import asyncio
import json

import pytest

from avmm.backtest.config import BacktestConfig
from avmm.emulator import EmulatorThread
from tests.emulator.conftest import Keyring, WsApi, churn_rows, now_ms, rest, run, write_store

aiohttp = pytest.importorskip("aiohttp")
pytest.importorskip("cryptography")
pytestmark = pytest.mark.xdist_group("live")

SYM = {"symbol": "BTCUSDT"}
ORDER_FIELDS = [
    "orderId", "symbol", "status", "clientOrderId", "price", "avgPrice", "origQty", "executedQty", "cumQty",
    "cumQuote", "timeInForce", "type", "reduceOnly", "closePosition", "side", "positionSide", "stopPrice",
    "workingType", "priceProtect", "origType", "priceMatch", "selfTradePreventionMode", "goodTillDate", "updateTime",
]  # fmt: skip


@pytest.fixture(scope="module")
def ring() -> Keyring:
    return Keyring(n_hmac=6, n_ed=2)


@pytest.fixture(scope="module")
def emu(tmp_path_factory, ring):
    path = write_store(tmp_path_factory.mktemp("um") / "churn.parquet", churn_rows(120.0))
    bt = BacktestConfig.model_validate({"initial_cash": 10_000.0, "leverage": 10.0})
    with EmulatorThread(
        path, venue="binance-um", speed=1.0, start_now=True, keys=ring.keys(), backtest=bt, faults=["weightlimit:0"]
    ) as e:
        yield e


class UserStream:
    """A listenKey's stream: every frame kept."""

    def __init__(self, session, url):
        self.session, self.url, self.frames, self.ws = session, url, [], None

    async def __aenter__(self):
        self.ws = await self.session.ws_connect(self.url)
        self.task = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _read(self):
        async for m in self.ws:
            if m.type == aiohttp.WSMsgType.TEXT:
                self.frames.append(json.loads(m.data))

    async def __aexit__(self, *exc):
        await self.ws.close()
        self.task.cancel()

    async def wait(self, pred, timeout=5.0):
        end = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < end:
            for f in self.frames:
                if pred(f):
                    return f
            await asyncio.sleep(0.02)
        raise TimeoutError("no such frame")


def test_ws_fapi_orders_gtx_modify_status_cancel(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, WsApi(s, emu.ws_url + "/ws-fapi/v1", ring) as c:
            on = await c.logon("e0")
            base = {**SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTX", "quantity": "0.010"}
            cross = await c.call("order.place", {**base, "price": "100.05", "timestamp": now_ms()})
            rest_ = await c.call(
                "order.place", {**base, "price": "99.00", "newClientOrderId": "um-1", "timestamp": now_ms()}
            )
            oid = rest_["result"]["orderId"]
            mod = await c.call(
                "order.modify",
                {**SYM, "orderId": oid, "side": "BUY", "price": "99.10", "quantity": "0.020", "timestamp": now_ms()},
            )
            same = await c.call(
                "order.modify",
                {**SYM, "orderId": oid, "side": "BUY", "price": "99.10", "quantity": "0.020", "timestamp": now_ms()},
            )
            st = await c.call("order.status", {**SYM, "origClientOrderId": "um-1", "timestamp": now_ms()})
            cx = await c.call("order.cancel", {**SYM, "orderId": oid, "timestamp": now_ms()})
            gone = await c.call("order.cancel", {**SYM, "orderId": oid, "timestamp": now_ms()})
            hm = await c.call("order.status", {**SYM, "orderId": oid}, key="h0")  # another account: not its order
            return on, cross, rest_, mod, same, st, cx, gone, hm

    on, cross, rest_, mod, same, st, cx, gone, hm = run(go())
    assert list(on["result"]) == ["apiKey", "authorizedSince", "connectedSince", "returnRateLimits", "serverTime"]
    assert cross["status"] == 400 and cross["error"] == {
        "code": -5022,
        "msg": "Due to the order could not be executed as maker, the Post Only order will be rejected.",
    }
    r = rest_["result"]
    assert list(r) == ORDER_FIELDS
    assert (r["status"], r["clientOrderId"], r["timeInForce"], r["price"], r["origQty"]) == (
        "NEW",
        "um-1",
        "GTX",
        "99.00",
        "0.010",
    )
    assert (r["avgPrice"], r["positionSide"], r["reduceOnly"]) == ("0", "BOTH", False)
    assert (
        mod["result"]["price"] == "99.10" and mod["result"]["origQty"] == "0.020" and mod["result"]["status"] == "NEW"
    )
    assert same["error"]["code"] == -5027
    q = st["result"]
    assert "time" in q and "cumQty" not in q and q["orderId"] == r["orderId"]
    assert cx["result"]["status"] == "CANCELED" and cx["result"]["clientOrderId"] == "um-1"
    assert gone["error"]["code"] == -2011 and hm["error"]["code"] == -2013


def test_ws_fapi_account_and_position(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, WsApi(s, emu.ws_url + "/ws-fapi/v1", ring) as c:
            v1 = await c.call("account.status", key="h1")
            v2 = await c.call("v2/account.status", key="h1")
            pos = await c.call("account.position", SYM, key="h1")
            bal = await c.call("account.balance", key="h1")
            return v1, v2, pos, bal

    v1, v2, pos, bal = run(go())
    a = v1["result"]
    assert a["totalWalletBalance"] == "10000.00000000" and a["availableBalance"] == "10000.00000000"
    assert a["assets"][0]["asset"] == "USDT" and a["positions"][0]["symbol"] == "BTCUSDT"
    assert "feeTier" in a and "feeTier" not in v2["result"] and v2["result"]["positions"] == []
    (p,) = pos["result"]
    assert (p["symbol"], p["positionAmt"], p["marginType"], p["positionSide"], p["leverage"]) == (
        "BTCUSDT",
        "0.000",
        "cross",
        "BOTH",
        "10",
    )
    assert bal["result"][0]["balance"] == "10000.00000000"


def test_listen_key_user_stream_fills_and_rest(emu, ring):
    """REST places a GTX bid that the next sell fills: the listenKey stream (on /private/ws and on
    /ws/<key>) carries ORDER_TRADE_UPDATE NEW, then TRADE_LITE and ORDER_TRADE_UPDATE TRADE / FILLED
    and ACCOUNT_UPDATE; positionRisk, the account and userTrades show the fill."""

    async def go():
        u1, u2, u3 = emu.url + "/fapi/v1", emu.url + "/fapi/v2", emu.url + "/fapi/v3"
        async with aiohttp.ClientSession() as s:
            st, lk, _ = await rest(s, ring, "POST", u1 + "/listenKey", key="h2", sign=False)
            key = lk["listenKey"]
            async with (
                UserStream(s, emu.ws_url + "/private/ws?listenKey=" + key) as us,
                UserStream(s, emu.ws_url + "/ws/" + key) as us2,
            ):
                o = {**SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTX", "price": "99.99", "quantity": "1.000"}
                placed = await rest(s, ring, "POST", u1 + "/order", o, key="h2")
                oid = placed[1]["orderId"]
                fill = await us.wait(
                    lambda f: f["e"] == "ORDER_TRADE_UPDATE" and f["o"]["x"] == "TRADE" and f["o"]["i"] == oid
                )
                acct_up = await us.wait(lambda f: f["e"] == "ACCOUNT_UPDATE")
                await us2.wait(lambda f: f["e"] == "ACCOUNT_UPDATE")
                got = await rest(s, ring, "GET", u1 + "/order", {**SYM, "orderId": oid}, key="h2")
                pos = await rest(s, ring, "GET", u2 + "/positionRisk", SYM, key="h2")
                pos3 = await rest(s, ring, "GET", u3 + "/positionRisk", SYM, key="h2")
                acct = await rest(s, ring, "GET", u2 + "/account", {}, key="h2")
                acct3 = await rest(s, ring, "GET", u3 + "/account", {}, key="h2")
                trades = await rest(s, ring, "GET", u1 + "/userTrades", SYM, key="h2")
                opn = await rest(s, ring, "GET", u1 + "/openOrders", SYM, key="h2")
                ping = await rest(s, ring, "PUT", u1 + "/listenKey", key="h2", sign=False)
                frames = list(us.frames)
            stop = await rest(s, ring, "DELETE", u1 + "/listenKey", key="h2", sign=False)
            return st, key, placed, fill, acct_up, got, pos, pos3, acct, acct3, trades, opn, ping, stop, frames

    st, key, placed, fill, acct_up, got, pos, pos3, acct, acct3, trades, opn, ping, stop, frames = run(go())
    assert st == 200 and len(key) == 64
    assert placed[0] == 200 and list(placed[1]) == ORDER_FIELDS
    h = placed[2]
    assert h["X-MBX-ORDER-COUNT-10S"] == "1" and h["X-MBX-ORDER-COUNT-1M"] == "1" and "X-MBX-USED-WEIGHT-1M" in h
    kinds = [(f["e"], f["o"]["x"] if "o" in f else None) for f in frames if f["e"] != "ACCOUNT_UPDATE"]
    assert kinds[:3] == [("ORDER_TRADE_UPDATE", "NEW"), ("TRADE_LITE", None), ("ORDER_TRADE_UPDATE", "TRADE")]
    o = fill["o"]
    assert list(o) == [
        "s", "c", "S", "o", "f", "q", "p", "ap", "sp", "x", "X", "i", "l", "z", "L", "N", "n", "T", "t", "b", "a",
        "m", "R", "wt", "ot", "ps", "cp", "rp", "pP", "si", "ss", "V", "pm", "gtd",
    ]  # fmt: skip
    assert (o["X"], o["l"], o["L"], o["ap"], o["N"], o["m"], o["ps"]) == (
        "FILLED",
        "1.000",
        "99.99",
        "99.99",
        "USDT",
        True,
        "BOTH",
    )
    assert float(o["n"]) == pytest.approx(0.0002 * 99.99, abs=1e-8) and o["t"] > 0
    a = acct_up["a"]
    assert a["m"] == "ORDER" and a["P"][0]["pa"] == "1.000" and a["P"][0]["ep"] == "99.99000000"
    assert float(a["B"][0]["wb"]) == pytest.approx(10_000.0 - 0.0002 * 99.99)
    assert got[1]["status"] == "FILLED" and got[1]["avgPrice"] == "99.99" and "time" in got[1]
    assert pos[1][0]["positionAmt"] == "1.000" and pos[1][0]["entryPrice"] == "99.99000000"
    assert pos3[1][0]["positionAmt"] == "1.000" and "positionInitialMargin" in pos3[1][0]
    assert acct[1]["positions"][0]["positionAmt"] == "1.000" and acct3[1]["positions"][0]["positionAmt"] == "1.000"
    (t,) = trades[1]
    assert list(t) == [
        "buyer", "commission", "commissionAsset", "id", "maker", "orderId", "price", "qty", "quoteQty",
        "realizedPnl", "side", "positionSide", "symbol", "time",
    ]  # fmt: skip
    assert (t["id"], t["orderId"], t["buyer"], t["maker"], t["realizedPnl"]) == (
        o["t"],
        o["i"],
        True,
        True,
        "0.00000000",
    )
    assert opn[1] == [] and ping[1] == {"listenKey": key} and stop == (200, {}, stop[2])


def test_close_a_position_realizes_profit(emu, ring):
    async def go():
        u1 = emu.url + "/fapi/v1"
        async with aiohttp.ClientSession() as s:
            buy = {**SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTX", "price": "99.99", "quantity": "2.000"}
            await rest(s, ring, "POST", u1 + "/order", buy, key="h3")
            for _ in range(100):
                if (await rest(s, ring, "GET", u1 + "/openOrders", SYM, key="h3"))[1] == []:
                    break
                await asyncio.sleep(0.05)
            ro_bad = {
                **SYM,
                "side": "SELL",
                "type": "LIMIT",
                "timeInForce": "GTX",
                "price": "100.02",
                "quantity": "3.000",
                "reduceOnly": "true",
            }
            bad = await rest(s, ring, "POST", u1 + "/order", ro_bad, key="h3")
            sell = {**ro_bad, "quantity": "2.000"}
            await rest(s, ring, "POST", u1 + "/order", sell, key="h3")
            for _ in range(100):
                tr = (await rest(s, ring, "GET", u1 + "/userTrades", SYM, key="h3"))[1]
                if len(tr) == 2:
                    break
                await asyncio.sleep(0.05)
            return bad, tr

    bad, tr = run(go())
    assert bad[0] == 400 and bad[1]["code"] == -2022
    assert [t["side"] for t in tr] == ["BUY", "SELL"]
    assert float(tr[1]["realizedPnl"]) == pytest.approx(2.0 * (100.02 - 99.99))


def test_countdown_cancel_all(emu, ring):
    async def go():
        u1 = emu.url + "/fapi/v1"
        async with aiohttp.ClientSession() as s:
            o = {**SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTX", "price": "98.00", "quantity": "0.010"}
            await rest(s, ring, "POST", u1 + "/order", o, key="h4")
            await rest(s, ring, "POST", u1 + "/order", o, key="h4")
            cd = await rest(s, ring, "POST", u1 + "/countdownCancelAll", {**SYM, "countdownTime": "400"}, key="h4")
            await asyncio.sleep(0.2)
            beat = await rest(s, ring, "POST", u1 + "/countdownCancelAll", {**SYM, "countdownTime": "400"}, key="h4")
            await asyncio.sleep(0.25)  # 0.45 s since the first, 0.25 s since the heartbeat: still open
            mid = await rest(s, ring, "GET", u1 + "/openOrders", SYM, key="h4")
            await asyncio.sleep(0.4)
            end = await rest(s, ring, "GET", u1 + "/openOrders", SYM, key="h4")
            await rest(s, ring, "POST", u1 + "/order", o, key="h4")
            await rest(s, ring, "POST", u1 + "/countdownCancelAll", {**SYM, "countdownTime": "200"}, key="h4")
            await rest(s, ring, "POST", u1 + "/countdownCancelAll", {**SYM, "countdownTime": "0"}, key="h4")
            await asyncio.sleep(0.4)
            off = await rest(s, ring, "GET", u1 + "/openOrders", SYM, key="h4")
            nothing = await rest(s, ring, "DELETE", u1 + "/allOpenOrders", SYM, key="h4")
            return cd, beat, mid, end, off, nothing

    cd, beat, mid, end, off, nothing = run(go())
    assert cd[1] == {"symbol": "BTCUSDT", "countdownTime": "400"} and beat[0] == 200
    assert len(mid[1]) == 2 and end[1] == [] and len(off[1]) == 1
    assert nothing[1] == {"code": 200, "msg": "The operation of cancel all open order is done."}


def test_ws_fapi_listen_key_methods_and_expiry(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, WsApi(s, emu.ws_url + "/ws-fapi/v1", ring) as c:
            start = await c.call("userDataStream.start", {"apiKey": "h5"})
            key = start["result"]["listenKey"]
            ping = await c.call("userDataStream.ping", {"apiKey": "h5"})
            async with UserStream(s, emu.ws_url + "/stream?streams=" + key) as us:
                await asyncio.to_thread(emu.fault, "keyexpired")
                ev = await us.wait(lambda f: f["data"]["e"] == "listenKeyExpired")
            again = await c.call("userDataStream.ping", {"apiKey": "h5"})
            async with s.get(emu.url + "/private/ws?listenKey=" + key) as r:
                refused = (r.status, await r.json())
            return start, ping, ev, again, refused

    start, ping, ev, again, refused = run(go())
    key = start["result"]["listenKey"]
    assert ping["result"] == {"listenKey": key}
    assert ev["stream"] == key and ev["data"]["listenKey"] == key and isinstance(ev["data"]["E"], str)
    assert again["error"]["code"] == -1125
    assert refused == (400, {"code": -1125, "msg": "This listenKey does not exist."})


def test_close_user_closes_the_user_streams_only(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, WsApi(s, emu.ws_url + "/ws-fapi/v1", ring) as c:
            st, lk, _ = await rest(s, ring, "POST", emu.url + "/fapi/v1/listenKey", key="h1", sign=False)
            us = await s.ws_connect(emu.ws_url + "/private/ws/" + lk["listenKey"])
            await asyncio.to_thread(emu.fault, "close/user")
            closed = await us.receive(timeout=5)
            alive = await c.call("time")
            return closed, alive

    closed, alive = run(go())
    assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) and alive["status"] == 200
