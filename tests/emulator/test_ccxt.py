"""A third-party Binance client keeps a correct book from the emulator: ccxt.pro's
``watch_order_book``, ``watch_trades`` and ``watch_bids_asks`` with its URLs pointed at it, on the
real captures (cut short), at 20x. For USD-M ccxt routes as Binance does since 2026-04 (its
``get_ws_url`` turns ``.../ws`` into ``.../public/ws`` for depth, trade and bookTicker, ``.../market/ws``
for the rest): the emulator's strict routing delivers every stream it asked for."""

from __future__ import annotations

import heapq

import pytest

from avmm.emulator import Emulator
from avmm.emulator.replay import DIFF, Replay
from tests.emulator.conftest import capture_store, run, store_book

ccxtpro = pytest.importorskip("ccxt.pro")
pytest.importorskip("aiohttp")

TOP = 20


def _exchange(venue: str, emu: Emulator):
    if venue == "binance-spot":
        ex = ccxtpro.binance({"options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}})
        ex.urls["api"]["public"] = emu.url + "/api/v3"
        ex.urls["api"]["ws"]["spot"] = emu.ws_url + "/ws"
        return ex, "BTC/USDT"
    ex = ccxtpro.binanceusdm({"options": {"fetchMarkets": {"types": ["linear"]}}})
    ex.urls["api"]["fapiPublic"] = emu.url + "/fapi/v1"
    ex.urls["api"]["ws"]["linear"] = emu.ws_url + "/ws"
    return ex, "BTC/USDT:USDT"


def _top(bids: dict, asks: dict) -> tuple[list, list]:
    return heapq.nlargest(TOP, bids.items()), heapq.nsmallest(TOP, asks.items())


def _books_at(path, nonces: set[int]) -> dict[int, tuple[list, list]]:
    """The venue's book (top levels) after the diff with each update id, replayed again."""
    r = Replay([path])
    out = {}
    for st in r.steps():
        if st[0] == DIFF and st[4] in nonces:
            out[st[4]] = _top(r.book.bids, r.book.asks)
    return out


@pytest.mark.parametrize(
    ("venue", "capture"), [("binance-spot", "spot_btcusdt_20240808"), ("binance-um", "usdm_btcusdt_20240718")]
)
def test_ccxt_pro_keeps_the_stores_book(shared_data, capture_dir, venue, capture):
    path = capture_store(shared_data, capture_dir, capture)

    async def go():
        async with Emulator(path, venue=venue, speed=20.0) as emu:
            ex, sym = _exchange(venue, emu)
            try:
                await ex.load_markets()
                seen = []
                for _ in range(40):
                    ob = await ex.watch_order_book(sym)
                    seen.append(
                        (ob["nonce"], [tuple(x) for x in ob["bids"][:TOP]], [tuple(x) for x in ob["asks"][:TOP]])
                    )
                trades = await ex.watch_trades(sym)
                tickers = await ex.watch_bids_asks([sym])
                conns = emu.connections()
            finally:
                await ex.close()
        return seen, trades, tickers[sym], conns

    seen, trades, ticker, conns = run(go(), timeout=120)
    assert conns["connections"] and all(c["undelivered"] == [] for c in conns["connections"])
    assert {c["path"] for c in conns["connections"]} == ({"/public/ws"} if venue == "binance-um" else {"/ws"})
    assert conns["limit_closes"] == {"msgrate": 0, "maxstreams": 0}
    ref = _books_at(path, {n for n, _, _ in seen})
    assert len({n for n, _, _ in seen}) > 10
    for nonce, bids, asks in seen:
        rb, ra = ref[nonce]
        assert bids == [tuple(x) for x in rb] and asks == [tuple(x) for x in ra], nonce

    from avmm.data.store import read_events
    from avmm.events import QUOTE, TRADE

    ev = read_events(path)
    tr = ev[ev["kind"] == TRADE]
    by_id = {int(s): (float(p), float(q)) for s, p, q in zip(tr["seq"], tr["px"], tr["qty"], strict=True)}
    assert trades and all(by_id[int(t["id"])] == (t["price"], t["amount"]) for t in trades)
    assert all(t["side"] in ("buy", "sell") for t in trades)
    q = ev[ev["kind"] == QUOTE]
    quotes = set(zip(q["px"].tolist(), q["qty"].tolist(), q["px2"].tolist(), q["qty2"].tolist(), strict=True))
    assert (ticker["bid"], ticker["bidVolume"], ticker["ask"], ticker["askVolume"]) in quotes


def test_the_capture_replays_to_the_stores_book(shared_data, capture_dir):
    for name in ("spot_btcusdt_20240808", "usdm_btcusdt_20240718"):
        path = capture_store(shared_data, capture_dir, name)
        r = Replay([path])
        for _ in r.steps():
            pass
        assert (r.book.bids, r.book.asks) == store_book(path)
        assert len(r.book.bids) > 100
