"""The emulator's REST and stream frames against Binance's documented shapes, control frames,
the venue clock, and books kept by a client from snapshot + diffs."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from avmm.emulator import Emulator
from tests.emulator.conftest import BookClient, run, store_book

aiohttp = pytest.importorskip("aiohttp")

# Binance's documented fields, in order (spot: web-socket-streams.md; USD-M: websocket-market-streams)
SPOT_FIELDS = {
    "bookTicker": ["u", "s", "b", "B", "a", "A"],
    "trade": ["e", "E", "s", "t", "p", "q", "T", "m", "M"],
    "aggTrade": ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"],
    "depth": ["e", "E", "s", "U", "u", "b", "a"],
}
UM_FIELDS = {
    "bookTicker": ["e", "u", "s", "b", "B", "a", "A", "T", "E"],
    "trade": ["e", "E", "T", "s", "t", "p", "q", "X", "m"],
    "aggTrade": ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m"],
    "depth": ["e", "E", "T", "s", "U", "u", "pu", "b", "a"],
}
DECIMAL = ("b", "B", "a", "A", "p", "q")


def _check_types(kind: str, d: dict) -> None:
    ints = ("E", "T", "u", "U", "pu", "t", "f", "l") + (("a",) if kind == "aggTrade" else ())
    for k in DECIMAL:
        if k in d and k not in ints and kind != "depth":
            assert isinstance(d[k], str) and float(d[k]) >= 0, (k, d)
    for k in ints:
        if k in d:
            assert isinstance(d[k], int) and not isinstance(d[k], bool), (k, d)
    for k in ("m", "M"):
        if k in d:
            assert isinstance(d[k], bool)
    if kind == "depth":
        for side in ("b", "a"):
            assert all(isinstance(p, str) and isinstance(q, str) for p, q in d[side])
    assert d["s"] == "BTCUSDT"


async def _collect(ws, until, timeout=10.0) -> list[dict]:
    out = []
    end = time.monotonic() + timeout
    while not until(out) and time.monotonic() < end:
        try:
            m = await asyncio.wait_for(ws.receive(), 0.5)
        except TimeoutError:
            continue
        if m.type != aiohttp.WSMsgType.TEXT:
            break
        out.append(json.loads(m.data))
    return out


@pytest.mark.parametrize("venue", ["binance-spot", "binance-um"])
def test_stream_frames_have_binances_fields_and_types(depth_store, venue):
    fields = UM_FIELDS if venue == "binance-um" else SPOT_FIELDS
    names = ["btcusdt@bookTicker", "btcusdt@trade", "btcusdt@aggTrade", "btcusdt@depth"]

    async def go():
        async with (
            Emulator(depth_store, venue=venue, max_speed=True) as emu,
            aiohttp.ClientSession() as s,
            s.ws_connect(f"{emu.ws_url}/stream?streams={'/'.join(names)}") as ws,
        ):
            got = await _collect(ws, lambda o: {f["stream"] for f in o} >= set(names))
        for f in got:
            assert list(f) == ["stream", "data"]
            kind = f["stream"].split("@")[1]
            assert list(f["data"]) == fields[kind], f
            _check_types(kind, f["data"])
        assert {f["stream"] for f in got} == set(names)

    run(go())


def test_raw_stream_paths_and_usdm_public_market(depth_store):
    async def go():
        async with Emulator(depth_store, venue="binance-um", speed=0.3) as emu, aiohttp.ClientSession() as s:
            for path in ("/ws/btcusdt@bookTicker", "/public/ws/btcusdt@bookTicker", "/market/ws/btcusdt@aggTrade"):
                async with s.ws_connect(emu.ws_url + path) as ws:
                    got = await _collect(ws, lambda o: len(o) >= 1)
                    assert got and "stream" not in got[0] and got[0]["e"] in ("bookTicker", "aggTrade")
            async with s.ws_connect(emu.ws_url + "/public/stream?streams=btcusdt@depth@0ms") as ws:
                got = await _collect(ws, lambda o: len(o) >= 1)
                assert got[0]["stream"] == "btcusdt@depth@0ms" and got[0]["data"]["e"] == "depthUpdate"

    run(go())


def test_subscribe_unsubscribe_list_and_bad_frames(depth_store):
    async def ask(ws, frame):
        await ws.send_str(frame if isinstance(frame, str) else json.dumps(frame))
        while True:
            d = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
            if "result" in d or "error" in d:
                return d

    async def go():
        async with (
            Emulator(depth_store, speed=0.3, msg_rate=0) as emu,  # more than 5 requests a second: no limit
            aiohttp.ClientSession() as s,
            s.ws_connect(emu.ws_url + "/ws") as ws,
        ):
            assert await ask(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1}) == {"result": [], "id": 1}
            sub = {"method": "SUBSCRIBE", "params": ["btcusdt@trade", "btcusdt@depth@100ms"], "id": 2}
            assert await ask(ws, sub) == {"result": None, "id": 2}
            assert await ask(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 3}) == {
                "result": ["btcusdt@trade", "btcusdt@depth@100ms"],
                "id": 3,
            }
            unsub = {"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 4}
            assert await ask(ws, unsub) == {"result": None, "id": 4}
            assert (await ask(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 5}))["result"] == ["btcusdt@depth@100ms"]
            assert await ask(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 6}) == {
                "result": False,
                "id": 6,
            }
            assert (await ask(ws, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 7}))["result"] is None
            # errors: Binance's codes
            assert (await ask(ws, "{not json"))["error"]["code"] == 3
            bad = await ask(ws, {"method": "SUBSCRIB", "params": [], "id": 8})
            assert bad["error"]["code"] == 2 and "unknown variant" in bad["error"]["msg"] and bad["id"] == 8
            assert (await ask(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@nope"], "id": 9}))["error"]["code"] == 2
            assert (await ask(ws, {"method": "LIST_SUBSCRIPTIONS", "id": -1}))["error"]["code"] == 2
            assert (await ask(ws, {"method": "SET_PROPERTY", "params": ["x", True], "id": 10}))["error"]["code"] == 0
            bad = await ask(ws, {"method": "SET_PROPERTY", "params": ["combined", 1], "id": 11})
            assert bad["error"]["code"] == 1
            # combined now: the diffs come wrapped
            got = await _collect(ws, lambda o: any("stream" in f for f in o))
            f = next(f for f in got if "stream" in f)
            assert f["stream"] == "btcusdt@depth@100ms" and f["data"]["e"] == "depthUpdate"

    run(go())


@pytest.mark.parametrize("venue", ["binance-spot", "binance-um"])
def test_rest_ping_time_exchange_info_depth_and_errors(depth_store, venue):
    um = venue == "binance-um"
    pre = "/fapi/v1" if um else "/api/v3"

    async def go():
        async with Emulator(depth_store, venue=venue, start_now=True, max_speed=True) as emu:
            await emu.wait_done(30)
            async with aiohttp.ClientSession() as s:

                async def get(path, **params):
                    async with s.get(emu.url + pre + path, params=params) as r:
                        return r.status, await r.json()

                assert await get("/ping") == (200, {})
                st, t = await get("/time")
                assert st == 200 and list(t) == ["serverTime"] and isinstance(t["serverTime"], int)
                st, xi = await get("/exchangeInfo")
                sym = xi["symbols"][0]
                assert sym["symbol"] == "BTCUSDT" and sym["status"] == "TRADING"
                assert (sym["baseAsset"], sym["quoteAsset"]) == ("BTC", "USDT")
                filters = {f["filterType"]: f for f in sym["filters"]}
                assert float(filters["PRICE_FILTER"]["tickSize"]) == 0.01
                assert float(filters["LOT_SIZE"]["stepSize"]) == 0.001
                assert {r["rateLimitType"] for r in xi["rateLimits"]} >= {"REQUEST_WEIGHT", "ORDERS"}
                st, d = await get("/depth", symbol="BTCUSDT", limit="5")
                assert st == 200
                assert list(d) == (
                    ["lastUpdateId", "E", "T", "bids", "asks"] if um else ["lastUpdateId", "bids", "asks"]
                )
                assert len(d["bids"]) == 5 and len(d["asks"]) == 5
                bids, asks = store_book(depth_store)
                assert [[float(p), float(q)] for p, q in d["bids"]] == [list(x) for x in sorted(bids.items())[::-1][:5]]
                assert [[float(p), float(q)] for p, q in d["asks"]] == [list(x) for x in sorted(asks.items())[:5]]
                assert d["lastUpdateId"] == emu.replay.book.last_u
                assert await get("/depth", symbol="ETHUSDT") == (400, {"code": -1121, "msg": "Invalid symbol."})
                st, e = await get("/depth")
                assert st == 400 and e["code"] == -1102
                st, e = await get("/depth", symbol="BTCUSDT", limit="x")
                assert st == 400 and e["code"] == -1100
                st, e = await get("/depth", symbol="BTCUSDT", limit="7")
                if um:  # USD-M takes 5, 10, 20, 50, 100, 500, 1000 only
                    assert (st, e["code"]) == (400, -1130)
                else:  # spot takes 1..5000
                    assert st == 200 and len(e["bids"]) == 7
                st, e = await get("/exchangeInfo", symbol="ETHUSDT")
                assert (st, e["code"]) == (400, -1121)

    run(go())


@pytest.mark.parametrize(
    ("venue", "stream"),
    [
        ("binance-spot", "btcusdt@depth"),
        ("binance-spot", "btcusdt@depth@100ms"),
        ("binance-um", "btcusdt@depth@0ms"),
        ("binance-um", "btcusdt@depth@100ms"),
    ],
)
def test_snapshot_plus_diffs_give_the_store_book(depth_store, venue, stream):
    """A client by Binance's rules (subscribe, buffer, REST snapshot part-way, U/u or pu) ends with the
    store's book, through the resync in the middle of the store."""

    async def go():
        async with Emulator(depth_store, venue=venue, speed=20.0) as emu, aiohttp.ClientSession() as s:
            c = BookClient(emu.url, venue == "binance-um", stream)
            async with s.ws_connect(f"{emu.ws_url}/stream?streams={stream}") as ws:
                n = 0
                while True:
                    try:
                        m = await asyncio.wait_for(ws.receive(), 1.0 if emu.done else 10.0)
                    except TimeoutError:
                        break
                    c.on_frame(m.data)
                    n += 1
                    if n == 3:
                        await c.snapshot(s)
                    if emu.done and c.last_u == emu.replay.book.last_u:
                        break
            return c

    c = run(go())
    from avmm.venues.binance import depth_sync as ds

    assert ds.GAP not in c.outcomes
    assert c.outcomes.count(ds.APPLY) > 10
    assert (c.bids, c.asks) == store_book(depth_store)


def test_l1_store_served_as_depth_keeps_the_last_quote(l1_store):
    async def go():
        async with Emulator(l1_store, max_speed=True) as emu, aiohttp.ClientSession() as s:
            c = BookClient(emu.url, False, "synth@depth", symbol="SYNTH")
            async with s.ws_connect(f"{emu.ws_url}/stream?streams=synth@depth/synth@bookTicker") as ws:
                await c.snapshot(s)
                last_bt = None
                while True:
                    try:
                        m = await asyncio.wait_for(ws.receive(), 1.0 if emu.done else 10.0)
                    except TimeoutError:
                        break
                    if "bookTicker" in m.data:
                        last_bt = json.loads(m.data)["data"]
                    else:
                        c.on_frame(m.data)
            return c, last_bt

    c, bt = run(go())
    assert (c.bids, c.asks) == store_book(l1_store)
    assert c.bids == {float(bt["b"]): float(bt["B"])} and c.asks == {float(bt["a"]): float(bt["A"])}


def test_venue_clock_starts_now_and_runs_at_speed(depth_store):
    """serverTime is wall time before the replay; the frames' E are the capture's times shifted to
    start now and advancing speed x wall time; the replay waits for the first subscriber."""

    async def go():
        async with Emulator(depth_store, venue="binance-um", speed=4.0) as emu, aiohttp.ClientSession() as s:
            await asyncio.sleep(0.3)
            assert not emu.status()["started"]  # nobody subscribed yet
            async with s.get(emu.url + "/fapi/v1/time") as r:
                assert abs((await r.json())["serverTime"] - time.time() * 1000) < 1000
            async with s.ws_connect(emu.ws_url + "/ws/btcusdt@depth") as ws:
                w0 = time.time() * 1000
                got = await _collect(ws, lambda o: len(o) >= 2 and o[-1]["E"] - o[0]["E"] >= 400)
                w1 = time.time() * 1000
            assert got[0]["U"] == 1_000_001  # the whole session: the first diff of the store
            assert abs(got[0]["E"] - w0) < 500
            venue_span, wall_span = got[-1]["E"] - got[0]["E"], w1 - w0
            assert wall_span < venue_span  # 4x: 400 venue ms take ~100 wall ms
            async with s.get(emu.url + "/fapi/v1/time") as r:
                t = (await r.json())["serverTime"]
            assert t >= got[-1]["E"] - 50

    run(go(), timeout=30)


def test_sockets_stay_open_after_the_end(depth_store):
    async def go():
        async with (
            Emulator(depth_store, max_speed=True, heartbeat=None) as emu,
            aiohttp.ClientSession() as s,
            s.ws_connect(emu.ws_url + "/ws/btcusdt@trade") as ws,
        ):
            await emu.wait_done(30)
            await _collect(ws, lambda o: False, timeout=0.5)
            assert not ws.closed
            await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
            d = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
            assert d == {"result": ["btcusdt@trade"], "id": 1}
            await ws.ping()

    run(go())


def test_server_pings_and_answers_pings(depth_store):
    async def go():
        async with (
            Emulator(depth_store, heartbeat=0.2, speed=0.3) as emu,
            aiohttp.ClientSession() as s,
            s.ws_connect(emu.ws_url + "/ws", autoping=False) as ws,
        ):
            m = await asyncio.wait_for(ws.receive(), 5)
            assert m.type == aiohttp.WSMsgType.PING
            await ws.pong(m.data)
            await ws.ping(b"x")
            m = await asyncio.wait_for(ws.receive(), 5)
            while m.type == aiohttp.WSMsgType.PING:
                m = await asyncio.wait_for(ws.receive(), 5)
            assert (m.type, m.data) == (aiohttp.WSMsgType.PONG, b"x")

    run(go())


@pytest.mark.parametrize(
    ("venue", "stream", "n"), [("binance-spot", "btcusdt@depth5", 5), ("binance-um", "btcusdt@depth10@100ms", 10)]
)
def test_partial_book_depth_is_the_books_top_levels(depth_store, venue, stream, n):
    import heapq

    from avmm.emulator.replay import DIFF, Replay

    async def go():
        async with (
            Emulator(depth_store, venue=venue, max_speed=True) as emu,
            aiohttp.ClientSession() as s,
            s.ws_connect(f"{emu.ws_url}/stream?streams={stream}") as ws,
        ):
            await emu.wait_done(30)
            return await _collect(ws, lambda o: False, timeout=1.0)

    got = [f["data"] for f in run(go())]
    assert len(got) >= (15 if venue == "binance-um" else 2)  # a ~2 s store: every 100 ms, or every second
    um = venue == "binance-um"
    assert all(list(d) == (UM_FIELDS["depth"] if um else ["lastUpdateId", "bids", "asks"]) for d in got)
    ref = {}
    r = Replay([depth_store])
    for st in r.steps():
        if st[0] == DIFF:
            ref[st[4]] = (heapq.nlargest(n, r.book.bids.items()), heapq.nsmallest(n, r.book.asks.items()))
    for d in got:
        uid, bids, asks = (d["u"], d["b"], d["a"]) if um else (d["lastUpdateId"], d["bids"], d["asks"])
        want_b, want_a = ref[uid]
        assert [(float(p), float(q)) for p, q in bids] == want_b and [(float(p), float(q)) for p, q in asks] == want_a
    if um:
        assert all(isinstance(d["E"], int) and d["E"] % 100 == got[0]["E"] % 100 for d in got)  # on the 100 ms grid


async def _ask(ws, frame: dict) -> dict:
    """Send a control frame; its answer (data frames before it skipped)."""
    await ws.send_str(json.dumps(frame))
    while True:
        m = await asyncio.wait_for(ws.receive(), 5)
        assert m.type == aiohttp.WSMsgType.TEXT, (m.type, m.data, m.extra)
        d = json.loads(m.data)
        if "result" in d or "error" in d:
            return d


async def _closed(ws) -> tuple[int, str]:
    """The close frame's code and reason (data frames before it skipped)."""
    while True:
        m = await asyncio.wait_for(ws.receive(), 5)
        if m.type != aiohttp.WSMsgType.TEXT:
            assert m.type == aiohttp.WSMsgType.CLOSE, m.type
            return m.data, m.extra


def test_usdm_routed_paths_deliver_their_own_streams(depth_store):
    """USD-M as Binance routes it: ``/public`` delivers bookTicker, depth and trade, ``/market``
    aggTrade; a stream on the other path is acknowledged and listed (as Binance does) and never sent;
    the legacy ``/stream`` sends every one. ``GET /_avmm/connections`` shows which is which."""
    names = ["btcusdt@bookTicker", "btcusdt@trade", "btcusdt@aggTrade", "btcusdt@depth@0ms"]
    q = "/".join(names)

    async def drain(ws, emu) -> list[dict]:
        out: list[dict] = []
        while True:
            try:
                m = await asyncio.wait_for(ws.receive(), 0.3 if emu.done else 10.0)
            except TimeoutError:
                return out
            out.append(json.loads(m.data))

    async def go():
        async with (
            Emulator(depth_store, venue="binance-um", max_speed=True, autostart=False) as emu,
            aiohttp.ClientSession() as s,
            s.ws_connect(f"{emu.ws_url}/public/stream?streams={q}") as pub,
            s.ws_connect(f"{emu.ws_url}/market/stream?streams={q}") as mkt,
            s.ws_connect(f"{emu.ws_url}/stream?streams={q}") as legacy,
            s.ws_connect(f"{emu.ws_url}/market/ws") as raw,
        ):
            sub = {"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker", "btcusdt@aggTrade"], "id": 1}
            assert await _ask(raw, sub) == {"result": None, "id": 1}
            listed = await _ask(raw, {"method": "LIST_SUBSCRIPTIONS", "id": 2})
            assert listed == {"result": ["btcusdt@bookTicker", "btcusdt@aggTrade"], "id": 2}
            async with s.get(emu.url + "/_avmm/connections") as r:
                rep = await r.json()
            emu.begin()
            return rep, await asyncio.gather(*(drain(ws, emu) for ws in (pub, mkt, legacy, raw)))

    rep, (pub, mkt, legacy, raw) = run(go())
    assert {f["stream"] for f in pub} == {"btcusdt@bookTicker", "btcusdt@trade", "btcusdt@depth@0ms"}
    assert {f["stream"] for f in mkt} == {"btcusdt@aggTrade"}
    assert {f["stream"] for f in legacy} == set(names)
    assert raw and {f["e"] for f in raw} == {"aggTrade"}
    assert len(mkt) == len(raw) == sum(f["stream"] == "btcusdt@aggTrade" for f in legacy)
    conns = {c["path"] + ("" if c["combined"] else " raw"): c for c in rep["connections"]}
    assert conns["/public/stream"]["undelivered"] == ["btcusdt@aggTrade"]
    assert conns["/market/stream"]["undelivered"] == ["btcusdt@bookTicker", "btcusdt@trade", "btcusdt@depth@0ms"]
    assert conns["/market/stream"]["streams"] == ["btcusdt@aggTrade"]
    assert conns["/stream"]["undelivered"] == [] and conns["/stream"]["streams"] == names
    assert conns["/market/ws raw"]["undelivered"] == ["btcusdt@bookTicker"]
    assert conns["/market/ws raw"]["messages"] == 2
    assert rep["opened"] == {"/public/stream": 1, "/market/stream": 1, "/stream": 1, "/market/ws": 1}


@pytest.mark.parametrize(("venue", "limit"), [("binance-spot", 5), ("binance-um", 10)])
def test_one_message_too_many_in_a_second_closes_the_connection(depth_store, venue, limit):
    """Binance's limit of incoming messages a second (5 spot, 10 USD-M; pings count): the next one
    closes the connection with 1008 "Too many requests". ``msgrate:0`` lifts it."""

    async def go():
        async with Emulator(depth_store, venue=venue, speed=0.3) as emu, aiohttp.ClientSession() as s:
            async with s.ws_connect(emu.ws_url + "/ws") as ws:
                for i in range(limit):
                    assert await _ask(ws, {"method": "LIST_SUBSCRIPTIONS", "id": i}) == {"result": [], "id": i}
                await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": limit}))
                assert await _closed(ws) == (1008, "Too many requests")
            async with s.ws_connect(emu.ws_url + "/ws", autoping=False) as ws:
                for _ in range(limit):
                    await ws.ping(b"p")
                await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
                pongs = 0
                while True:  # the pings answered, then the close
                    m = await asyncio.wait_for(ws.receive(), 5)
                    if m.type != aiohttp.WSMsgType.PONG:
                        break
                    pongs += 1
                assert (pongs, m.type, m.data) == (limit, aiohttp.WSMsgType.CLOSE, 1008)
            async with s.get(emu.url + "/_avmm/connections") as r:
                assert (await r.json())["limit_closes"] == {"msgrate": 2, "maxstreams": 0}
            async with s.post(emu.url + "/_avmm/fault", json={"fault": "msgrate:0"}) as r:
                assert r.status == 200
            async with s.ws_connect(emu.ws_url + "/ws") as ws:
                for i in range(3 * limit):
                    assert await _ask(ws, {"method": "LIST_SUBSCRIPTIONS", "id": i}) == {"result": [], "id": i}
                assert not ws.closed

    run(go())


def test_a_subscription_past_1024_streams_is_refused_and_closes(depth_store):
    """1024 streams a connection: the SUBSCRIBE past it is answered code 4 and the connection closed
    with 1008 (as measured on fstream.binance.com); a URL past ``maxstreams`` is closed at once."""

    async def go():
        async with Emulator(depth_store, venue="binance-um", speed=0.3) as emu, aiohttp.ClientSession() as s:
            async with s.ws_connect(emu.ws_url + "/ws") as ws:
                many = [f"s{i:04d}usdt@bookTicker" for i in range(1024)]
                assert await _ask(ws, {"method": "SUBSCRIBE", "params": many, "id": 1}) == {"result": None, "id": 1}
                again = {"method": "SUBSCRIBE", "params": many[:10], "id": 2}  # already there: not more
                assert await _ask(ws, again) == {"result": None, "id": 2}
                over = await _ask(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": 3})
                assert over == {"error": {"code": 4, "msg": "Too many subscriptions"}, "id": 3}
                assert await _closed(ws) == (1008, "Invalid request")
            emu.fault("maxstreams:2")
            async with s.ws_connect(emu.ws_url + "/stream?streams=a@trade/b@trade/c@trade") as ws:
                assert await _closed(ws) == (1008, "Invalid request")
            assert emu.connections()["limit_closes"] == {"msgrate": 0, "maxstreams": 2}

    run(go())


def test_a_merged_diff_stream_left_and_rejoined_shows_the_gap(depth_store):
    """The last subscriber of ``@depth@500ms`` leaves and another comes within the same interval: the
    diffs in between were merged into no batch, so the next diff must not chain to the last one sent
    (its ``pu`` is not that ``u``): the client sees the gap and resyncs. (The store's own resync is at
    ~1.05 s, after the interval used here: 0.5-1.0 s.)"""

    async def go():
        async with (
            Emulator(depth_store, venue="binance-um", speed=1.0) as emu,
            aiohttp.ClientSession() as s,
            s.ws_connect(emu.ws_url + "/ws") as ws,
        ):
            sub = {"method": "SUBSCRIBE", "params": ["btcusdt@depth@500ms"], "id": 1}
            assert await _ask(ws, sub) == {"result": None, "id": 1}
            first = await _collect(ws, lambda o: len(o) >= 1)  # the diffs of 0-0.5 s, sent at 0.5 s
            await asyncio.sleep(0.1)  # into the next interval: its batch holds some diffs
            unsub = {"method": "UNSUBSCRIBE", "params": ["btcusdt@depth@500ms"], "id": 2}
            assert await _ask(ws, unsub) == {"result": None, "id": 2}
            await asyncio.sleep(0.15)  # ~20 diffs of the store
            assert await _ask(ws, dict(sub, id=3)) == {"result": None, "id": 3}
            second = await _collect(ws, lambda o: len(o) >= 1, timeout=5)  # sent at 1.0 s
            return first[0], second[0]

    first, second = run(go())
    assert second["E"] - first["E"] == 500
    assert second["pu"] != first["u"] and second["U"] > first["u"] + 1


def test_replay_starts_once_every_open_stream_socket_has_subscribed(tmp_path):
    """A client's several links (USD-M ``/public`` and ``/market``) see the replay from its first
    step: the start at the first subscription waits for the sockets already open to subscribe (at
    most ``START_WAIT_S``); a socket that never subscribes delays it no longer than that."""
    from avmm.data.synth import write_synth
    from avmm.emulator import server

    store = tmp_path / "l1.parquet"
    write_synth(store, 20_000, 5, quote_rate=200.0, trade_rate=40.0)  # ~80 s of venue time

    async def first_trade(delay_s: float | None) -> tuple[int, float]:
        async with (
            Emulator(store, venue="binance-um", speed=20.0) as emu,
            aiohttp.ClientSession() as s,
            s.ws_connect(f"{emu.ws_url}/market/ws") as mkt,  # open, nothing subscribed yet
            s.ws_connect(f"{emu.ws_url}/public/ws/synth@bookTicker") as pub,
        ):
            t0 = time.monotonic()
            if delay_s is None:  # the market link never subscribes
                first_quote = json.loads((await asyncio.wait_for(pub.receive(), 5)).data)
                return int(first_quote["u"]), time.monotonic() - t0
            await asyncio.sleep(delay_s)
            assert await _ask(mkt, {"method": "SUBSCRIBE", "params": ["synth@aggTrade"], "id": 1}) == {
                "result": None,
                "id": 1,
            }
            first = json.loads((await asyncio.wait_for(mkt.receive(), 5)).data)
            await asyncio.wait_for(pub.receive(), 5)
            return int(first["a"]), emu._start_mono - t0  # when the replay started

    async def reference() -> int:
        async with (
            Emulator(store, venue="binance-um", speed=20.0) as emu,
            aiohttp.ClientSession() as s,
            s.ws_connect(f"{emu.ws_url}/market/ws/synth@aggTrade") as mkt,
        ):
            return int(json.loads((await asyncio.wait_for(mkt.receive(), 5)).data)["a"])

    first_a = run(reference())
    a, waited = run(first_trade(0.2))
    assert a == first_a  # not the trades of the 4 s of venue time before the market link subscribed
    assert 0.15 < waited < server.START_WAIT_S
    _, waited = run(first_trade(None))
    assert server.START_WAIT_S - 0.05 < waited < server.START_WAIT_S + 0.5
