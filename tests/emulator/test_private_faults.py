"""The private side's fault knobs, each as a client sees it, and Binance's rate limits (429 with
``retryAfter``, then the 418 ban; -1015)."""

from __future__ import annotations

import asyncio
import time

import pytest

from avmm.backtest.config import BacktestConfig
from avmm.emulator import EmulatorThread
from tests.emulator.conftest import Keyring, WsApi, churn_rows, now_ms, rest, run, write_store

aiohttp = pytest.importorskip("aiohttp")
pytest.importorskip("cryptography")
pytestmark = pytest.mark.xdist_group("live")

SYM = {"symbol": "BTCUSDT"}
BT = {"initial_base": 100.0, "initial_quote": 1e6}


@pytest.fixture(scope="module")
def ring() -> Keyring:
    return Keyring(n_hmac=8, n_ed=4)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_store(tmp_path_factory.mktemp("faults") / "churn.parquet", churn_rows(120.0))


@pytest.fixture(scope="module")
def emu(store, ring):
    bt = BacktestConfig.model_validate(BT)
    with EmulatorThread(store, speed=1.0, start_now=True, keys=ring.keys(), backtest=bt, faults=["weightlimit:0"]) as e:
        yield e


def _bid(px: str, qty: str = "0.300", cid: str | None = None, ts: bool = True) -> dict:
    o = {**SYM, "side": "BUY", "type": "LIMIT_MAKER", "price": px, "quantity": qty}
    if ts:
        o["timestamp"] = now_ms()
    if cid:
        o["newClientOrderId"] = cid
    return o


async def _user(c: WsApi, key: str) -> None:
    await c.logon(key)
    await c.call("userDataStream.subscribe")


def test_ackdelay_answers_late_and_events_on_time(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, WsApi(s, emu.ws_url + "/ws-api/v3", ring) as c:
            await _user(c, "e0")
            await asyncio.to_thread(emu.fault, "ackdelay:300")
            try:
                t0 = time.monotonic()
                r = await c.call("order.place", _bid("99.00"))
                t1 = time.monotonic()
            finally:
                await asyncio.to_thread(emu.fault, "ackdelay:0")
            new_at = next(t for t, d in c.events if d["event"].get("x") == "NEW")
            return r, t1 - t0, t1 - new_at

    r, wait, lag = run(go())
    assert r["status"] == 200
    assert wait >= 0.28 and lag >= 0.25  # the report came at once, the answer 300 ms later


def test_fillfirst_sends_the_fill_before_the_ack(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, WsApi(s, emu.ws_url + "/ws-api/v3", ring) as c:
            await _user(c, "e1")
            await asyncio.to_thread(emu.fault, "fillfirst")
            r = await c.call("order.place", _bid("99.99"))
            return r, list(c.log)

    r, log = run(go())
    oid = r["result"]["orderId"]
    i_resp = next(i for i, (_, k, x) in enumerate(log) if k == "response" and x == r["id"])
    before = [x["x"] for _, k, x in log[:i_resp] if k == "event" and x.get("i") == oid]
    assert before == ["NEW", "TRADE"]  # the fill reached the client before the ack


def test_partial_reports_each_fill_in_parts(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, WsApi(s, emu.ws_url + "/ws-api/v3", ring) as c:
            await _user(c, "e2")
            await asyncio.to_thread(emu.fault, "partial:3")
            try:
                r = await c.call("order.place", _bid("99.99", "0.900"))
                oid = r["result"]["orderId"]
                await c.event(lambda e: e.get("i") == oid and e.get("X") == "FILLED")
            finally:
                await asyncio.to_thread(emu.fault, "partial:1")
            mine = await c.call("myTrades", {**SYM, "orderId": oid, "timestamp": now_ms()})
            return oid, [d["event"] for _, d in c.events], mine

    oid, evs, mine = run(go())
    trades = [e for e in evs if e.get("e") == "executionReport" and e["i"] == oid and e["x"] == "TRADE"]
    assert [(e["l"], e["X"]) for e in trades] == [
        ("0.30000000", "PARTIALLY_FILLED"),
        ("0.30000000", "PARTIALLY_FILLED"),
        ("0.30000000", "FILLED"),
    ]
    ids = [e["t"] for e in trades]
    assert ids == sorted(set(ids)) and [t["id"] for t in mine["result"]] == ids


def test_exectimeout_and_noanswer_match_the_order_anyway(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, WsApi(s, emu.ws_url + "/ws-api/v3", ring) as c:
            await c.logon("e3")
            await asyncio.to_thread(emu.fault, "exectimeout")
            late = await c.call("order.place", _bid("98.00", cid="to-1"))
            await asyncio.to_thread(emu.fault, "noanswer")
            try:
                silent = await c.call("order.place", _bid("98.00", cid="na-1"), timeout=1.0)
            except TimeoutError:
                silent = None
            a = await c.call("order.status", {**SYM, "origClientOrderId": "to-1", "timestamp": now_ms()})
            b = await c.call("order.status", {**SYM, "origClientOrderId": "na-1", "timestamp": now_ms()})
            await asyncio.to_thread(emu.fault, "noanswer")
            o = _bid("98.00", cid="na-rest", ts=False)
            try:
                await rest(s, ring, "POST", emu.url + "/api/v3/order", o, key="h0")
                dropped = False
            except aiohttp.ClientError:
                dropped = True
            d = await rest(s, ring, "GET", emu.url + "/api/v3/order", {**SYM, "origClientOrderId": "na-rest"}, key="h0")
            return late, silent, a, b, dropped, d

    late, silent, a, b, dropped, d = run(go())
    assert late["status"] == 408 and late["error"]["code"] == -1007
    assert late["error"]["msg"].endswith("execution status unknown.")
    assert silent is None and dropped
    assert a["result"]["status"] == b["result"]["status"] == d[1]["status"] == "NEW"


def test_skew_moves_the_clock_of_the_private_side(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, WsApi(s, emu.ws_url + "/ws-api/v3", ring) as c:
            await asyncio.to_thread(emu.fault, "skew:-10000")
            try:
                server = (await c.call("time"))["result"]["serverTime"]
                wall = await c.call("account.status", key="h1")
                synced = await c.call("account.status", c.signed("h1", ts=server))
            finally:
                await asyncio.to_thread(emu.fault, "skew:0")
            return server, wall, synced

    server, wall, synced = run(go())
    assert abs(server - (now_ms() - 10_000)) < 2000
    assert wall["error"]["code"] == -1021 and "ahead" in wall["error"]["msg"]
    assert synced["status"] == 200


def test_ratelimit_burst_is_429_without_a_ban(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, WsApi(s, emu.ws_url + "/ws-api/v3", ring) as c:
            await asyncio.to_thread(emu.fault, "ratelimit:2")
            out = [await c.call("time") for _ in range(3)]
            r = await rest(s, ring, "GET", emu.url + "/api/v3/time")
            return out, r

    out, r = run(go())
    assert [x["status"] for x in out] == [429, 429, 200] and r[0] == 200
    e = out[0]["error"]
    assert e["code"] == -1003 and e["data"]["retryAfter"] > e["data"]["serverTime"]


def test_close_api_closes_the_api_sockets_only(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, WsApi(s, emu.ws_url + "/ws-api/v3", ring) as c:
            md = await s.ws_connect(emu.ws_url + "/ws/btcusdt@bookTicker")
            await md.receive(timeout=5)
            await asyncio.to_thread(emu.fault, "close/api")
            await asyncio.wait_for(c.closed.wait(), 5)
            frame = await md.receive(timeout=5)
            await md.close()
            return frame

    frame = run(go())
    assert frame.type == aiohttp.WSMsgType.TEXT


def test_terminated_ends_the_subscriptions(emu, ring):
    async def go():
        async with aiohttp.ClientSession() as s, WsApi(s, emu.ws_url + "/ws-api/v3", ring) as c:
            await _user(c, "e0")
            await asyncio.to_thread(emu.fault, "terminated")
            ev = await c.event(lambda e: e.get("e") == "eventStreamTerminated")
            st = await c.call("session.status")
            frame = next(d for _, d in c.events if d["event"] is ev)
            return ev, st, frame

    ev, st, frame = run(go())
    assert frame["subscriptionId"] == 0 and isinstance(ev["E"], int)
    assert st["result"]["userDataStream"] is False


def test_foreign_orders_appear_on_the_book(store, ring):
    """``foreign:2`` given at start, before there is a book: at the first quote each account has two
    open orders its client never placed."""

    async def go(e):
        async with aiohttp.ClientSession() as s, WsApi(s, e.ws_url + "/ws-api/v3", ring) as c:
            before = await c.call("openOrders.status", SYM, key="h2")
            e.begin()
            for _ in range(100):
                after = await c.call("openOrders.status", SYM, key="h2")
                if after["result"]:
                    break
                await asyncio.sleep(0.05)
            return before, after

    bt = BacktestConfig.model_validate(BT)
    with EmulatorThread(store, speed=1.0, autostart=False, keys=ring.keys(), backtest=bt, faults=["foreign:2"]) as e:
        before, after = run(go(e))
    assert before["result"] == []
    orders = after["result"]
    assert len(orders) == 2 and all(o["clientOrderId"].startswith("web_") for o in orders)
    assert {o["side"] for o in orders} == {"BUY", "SELL"}


def test_weight_limit_429_then_the_418_ban(store, ring):
    async def go(e):
        if 60_000 - e.emu.venue_ms() % 60_000 < 1500:  # not across a minute's end
            await asyncio.sleep(1.6)
        async with aiohttp.ClientSession() as s, WsApi(s, e.ws_url + "/ws-api/v3", ring) as c:
            # the connection weighs 2: 8 requests of 1 fit, the 9th does not
            out = [await c.call("time") for _ in range(9)]
            banned = await c.call("time")
            await asyncio.wait_for(c.closed.wait(), 5)  # a banned IP is disconnected
            r = await rest(s, ring, "GET", e.url + "/api/v3/time")
            return out, banned, r

    with EmulatorThread(store, speed=1.0, start_now=True, keys=ring.keys(), faults=["weightlimit:10"]) as e:
        out, banned, r = run(go(e))
    assert [x["status"] for x in out] == [200] * 8 + [429]
    e = out[-1]["error"]
    assert e["code"] == -1003 and e["msg"].startswith(
        "Too much request weight used; current limit is 10 request weight"
    )
    retry = e["data"]["retryAfter"]
    assert retry % 60_000 == 0 and retry > e["data"]["serverTime"]
    b = banned["error"]
    assert banned["status"] == 418 and b["code"] == -1003 and "IP banned until" in b["msg"]
    assert b["data"]["retryAfter"] - b["data"]["serverTime"] == pytest.approx(120_000, abs=50)
    status, body, headers = r
    assert status == 418 and body["code"] == -1003 and 100 <= int(headers["Retry-After"]) <= 120


def test_order_limit_is_1015(store, ring):
    async def go(e):
        if 10_000 - e.emu.venue_ms() % 10_000 < 1500:
            await asyncio.sleep(1.6)
        async with aiohttp.ClientSession() as s, WsApi(s, e.ws_url + "/ws-api/v3", ring) as c:
            out = [await c.call("order.place", _bid("97.00", ts=False), key="h3") for _ in range(3)]
            other = await c.call("order.place", _bid("97.00", ts=False), key="h4")
            cx = await c.call("openOrders.cancelAll", SYM, key="h3")
            return out, other, cx

    bt = BacktestConfig.model_validate(BT)
    with EmulatorThread(store, speed=1.0, start_now=True, keys=ring.keys(), backtest=bt, faults=["orderlimit:2"]) as e:
        out, other, cx = run(go(e))
    assert [x["status"] for x in out] == [200, 200, 429]
    err = out[2]["error"]
    assert err["code"] == -1015 and err["msg"] == "Too many new orders; current limit is 2 orders per 10 SECOND."
    orders10 = next(x for x in out[2]["rateLimits"] if x["interval"] == "SECOND")
    assert (orders10["limit"], orders10["count"]) == (2, 2)
    assert other["status"] == 200 and cx["status"] == 200 and len(cx["result"]) == 2  # per account
