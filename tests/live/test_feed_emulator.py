"""The feed against the project's Binance emulator (``avmm.emulator``) replaying a depth store with
its fault knobs: the book ends equal to the store's through dropped and reordered diffs, a closed
socket, serverShutdown, a short connection lifetime; a stalled stream turns stale and back. USD-M:
the feed's two links on ``/public`` and ``/market`` (a fault on one path touches that link only),
and the legacy single connection."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("picows")
pytest.importorskip("aiohttp")

from avmm.events import BUY, SELL  # noqa: E402
from avmm.live.config import VenueConfig, with_origin  # noqa: E402
from avmm.live.feed import Feed  # noqa: E402
from tests.emulator.conftest import depth_rows, store_book  # noqa: E402
from tests.live.test_feed import Sink, until  # noqa: E402

pytestmark = pytest.mark.xdist_group("live")
TOP = 500


@pytest.fixture
def store(tmp_path: Path) -> Path:
    from avmm.data.store import write_events

    p = tmp_path / "depth.parquet"
    meta = {"symbol": "BTCUSDT", "source": "test", "tick_size": 0.01, "lot_size": 0.001}
    write_events(p, [depth_rows(seed=11, n_msgs=400)], meta)
    return p


def follow(
    store: Path, venue: str, faults: list[str], report: dict | None = None, **venue_cfg: Any
) -> tuple[Feed, Sink, list[str]]:
    """Run the feed on the emulator replaying ``store`` with ``faults``, until the replay has ended
    and the feed's book equals the store's; returns the feed, its sink and the health reasons
    (``report``: filled with the emulator's ``connections()`` at the end)."""
    from avmm.emulator import Emulator

    want_b, want_a = store_book(store)
    want = (sorted(want_b.items(), reverse=True), sorted(want_a.items()))

    async def main() -> tuple[Feed, Sink, list[str]]:
        async with Emulator(store, venue=venue, speed=2.0, faults=faults, heartbeat=None) as emu:
            sink = Sink()
            cfg = with_origin(VenueConfig(backoff_min_s=0.02, **venue_cfg), emu.url, venue)
            feed = Feed(venue, "BTCUSDT", cfg, sink, seed=2)
            task = asyncio.create_task(feed.run())
            try:
                await emu.wait_done(30)
                await until(lambda: (feed.book.levels(BUY), feed.book.levels(SELL)) == want, 10, "the store's book")
                if report is not None:
                    report.update(emu.connections())
            finally:
                feed.stop()
                await asyncio.wait_for(task, 10)
        return feed, sink, [r for _, r in sink.health]

    return asyncio.run(main())


@pytest.mark.parametrize("venue", ["binance-spot", "binance-um"])
def test_dropped_and_reordered_diffs_resync_to_the_stores_book(store, venue):
    feed, sink, _ = follow(store, venue, ["drop:1@0.5", "reorder@1.2", "drop:2@2.0"])
    c = feed.counters
    # the store's own resync (a jump in update ids) and the three faults: each a gap and a resync
    assert c.gaps >= 3 and c.resyncs == c.gaps + 1
    assert c.decode_errors == 0 and c.reconnects == 0
    assert feed.healthy


def test_reconnects_after_a_close(store):
    feed, _, reasons = follow(store, "binance-spot", ["close@0.8"])
    assert feed.counters.reconnects == 1 and feed.counters.connects == 2
    assert "disconnected" in reasons and feed.healthy


@pytest.mark.parametrize("um_streams", ["split", "combined"])
def test_rotates_on_server_shutdown(store, um_streams):
    """serverShutdown on every socket: each link rotates once (one link: the legacy connection)."""
    feed, _, _ = follow(store, "binance-um", ["shutdown@0.8"], um_streams=um_streams)
    c, n = feed.counters, len(feed.links)
    assert n == (2 if um_streams == "split" else 1)
    assert c.server_shutdowns == n and c.rotations == n and c.connects == 2 * n and c.reconnects == 0
    assert all(link.rotations == 1 for link in feed.links)
    assert feed.healthy


def test_replaced_at_the_end_of_the_connection_lifetime(store):
    """The venue closes connections after 0.8 s; the feed replaces them make-before-break after 0.3 s:
    no connection is ever lost."""
    feed, _, reasons = follow(store, "binance-spot", ["lifetime:0.8"], rotate_s=0.3)
    c = feed.counters
    assert c.rotations >= 2 and c.reconnects == 0 and "disconnected" not in reasons


def test_a_stalled_stream_turns_stale_and_back(store):
    t0 = time.monotonic()
    feed, sink, reasons = follow(store, "binance-spot", ["stall:1.0@0.6"], stale_s=0.3, stale_reconnect_s=0)
    assert time.monotonic() - t0 > 1.0
    assert feed.counters.stale_periods >= 1 and any(r.startswith("stale") for r in reasons)
    assert reasons[-1] == "ok" and feed.counters.reconnects == 0


@pytest.mark.parametrize(
    ("venue", "capture"), [("binance-spot", "spot_btcusdt_20240808"), ("binance-um", "usdm_btcusdt_20240718")]
)
def test_real_capture_recorded_from_the_emulator_converts_to_the_store(shared_data, tmp_path, venue, capture):
    """The real captures (cut short) replayed at 20x: the feed's book ends equal to the store's (the
    top 500 levels a side: deeper levels were outside the 1000-level REST snapshot), and its
    recording converts to the store's quotes and trades, in order, and to the feed's own book. The
    replay starts by itself: at the first subscription, once USD-M's other link has subscribed too,
    so the ``/market`` link gets the first trades as well."""
    from avmm.data.convert import convert
    from avmm.data.store import read_events
    from avmm.emulator import Emulator
    from avmm.events import QUOTE, TRADE
    from avmm.live.record import Recorder
    from tests.emulator.conftest import capture_store

    path = capture_store(shared_data, tmp_path, capture, rows=20_000)
    want_b, want_a = store_book(path)
    want = (sorted(want_b.items(), reverse=True)[:TOP], sorted(want_a.items())[:TOP])
    rec_dir = tmp_path / "rec"
    rec_dir.mkdir()

    def top(feed: Feed) -> tuple[list, list]:
        return feed.book.levels(BUY)[:TOP], feed.book.levels(SELL)[:TOP]

    async def main() -> Feed:
        async with Emulator(path, venue=venue, speed=20.0, heartbeat=None) as emu:
            rec = Recorder(rec_dir, f"BTCUSDT-{venue}")
            feed = Feed(venue, "BTCUSDT", with_origin(VenueConfig(), emu.url, venue), Sink(), recorder=rec)
            task = asyncio.create_task(feed.run())
            try:
                await emu.wait_done(60)
                await until(lambda: top(feed) == want, 10, "the store's book")
            finally:
                feed.stop()
                await asyncio.wait_for(task, 10)
        return feed

    feed = asyncio.run(main())
    assert feed.counters.gaps == 0 and feed.counters.decode_errors == 0
    s = convert(sorted(rec_dir.glob("*.gz")), tmp_path / "rec.parquet")
    assert "seq_gap" not in s.issues, s.issues
    got, ref = read_events(tmp_path / "rec.parquet"), read_events(path)

    def cols(ev, kind, names):
        e = ev[ev["kind"] == kind]
        return list(zip(*(e[n].tolist() for n in names), strict=True))

    assert cols(got, QUOTE, ("px", "qty", "px2", "qty2")) == cols(ref, QUOTE, ("px", "qty", "px2", "qty2"))
    assert cols(got, TRADE, ("seq", "px", "qty", "side")) == cols(ref, TRADE, ("seq", "px", "qty", "side"))
    rb, ra = store_book(tmp_path / "rec.parquet")
    assert (sorted(rb.items(), reverse=True), sorted(ra.items())) == (feed.book.levels(BUY), feed.book.levels(SELL))


def test_usdm_feed_opens_public_and_market(store):
    """Split (the default): bookTicker + depth on ``/public/stream``, aggTrade on ``/market/stream``,
    every stream delivered (none on the wrong path); the feed sends no message that counts against
    Binance's limit of 10 a second."""
    rep: dict = {}
    feed, sink, reasons = follow(store, "binance-um", [], report=rep)
    conns = {c["path"]: c for c in rep["connections"]}
    assert set(conns) == {"/public/stream", "/market/stream"}
    assert conns["/public/stream"]["streams"] == ["btcusdt@bookTicker", "btcusdt@depth@100ms"]
    assert conns["/market/stream"]["streams"] == ["btcusdt@aggTrade"]
    assert all(c["undelivered"] == [] and c["combined"] for c in conns.values())
    assert rep["opened"] == {"/public/stream": 1, "/market/stream": 1}
    assert rep["limit_closes"] == {"msgrate": 0, "maxstreams": 0} and rep["msg_rate"] == 10
    assert all(c["messages"] <= 1 for c in conns.values())  # at most an idle ping
    assert [(ln.name, ln.connects) for ln in feed.links] == [("public", 1), ("market", 1)]
    assert sink.quotes and sink.trades and feed.counters.duplicates == 0
    assert not any(r.startswith(("disconnected", "connecting")) for r in reasons)
    assert feed.healthy


def test_usdm_legacy_combined_connection(store):
    """``um_streams = "combined"``: one connection on the legacy ``/stream`` with the three streams."""
    rep: dict = {}
    feed, sink, _ = follow(store, "binance-um", ["drop:1@0.5"], report=rep, um_streams="combined")
    (conn,) = rep["connections"]
    assert conn["path"] == "/stream" and conn["undelivered"] == []
    assert conn["streams"] == ["btcusdt@bookTicker", "btcusdt@aggTrade", "btcusdt@depth@100ms"]
    assert [ln.name for ln in feed.links] == ["stream"] and feed.counters.gaps >= 1
    assert sink.quotes and sink.trades and feed.healthy


# (a lifetime of 0.7 s, then of 1000 s from 0.9 s of wall time: one close in mid-replay, none near its
# end, where a diff missed while reconnecting is followed by no diff that would show the gap)
@pytest.mark.parametrize(
    ("fault", "hit"),
    [
        ("close@0.8", "public"),
        ("close@0.8", "market"),
        ("shutdown@0.8", "public"),
        ("shutdown@0.8", "market"),
        ("lifetime:0.7", "public"),
        ("lifetime:0.7", "market"),
    ],
)
def test_a_fault_on_one_path_touches_that_link_only(store, fault, hit):
    """A close, serverShutdown or lifetime end on one path: that link reconnects (or rotates, on
    serverShutdown), the other keeps its one connection; the book ends equal to the store's."""
    rep: dict = {}
    faults = [f"{fault}/{hit}"] + ([f"lifetime:1000@1.8/{hit}"] if fault.startswith("lifetime") else [])
    feed, _, reasons = follow(store, "binance-um", faults, report=rep)
    links = {ln.name: ln for ln in feed.links}
    other = links["market" if hit == "public" else "public"]
    assert (other.connects, other.reconnects, other.rotations) == (1, 0, 0)
    assert links[hit].connects >= 2
    assert rep["opened"][f"/{other.name}/stream"] == 1 and rep["opened"][f"/{hit}/stream"] >= 2
    if fault.startswith("shutdown"):
        assert (links[hit].rotations, links[hit].reconnects) == (1, 0)
        assert feed.counters.server_shutdowns == 1 and not any(r.startswith("disconnected") for r in reasons)
    else:
        assert links[hit].reconnects >= 1 and f"disconnected: {hit}" in reasons
    if hit == "market":  # the book's link never went down
        assert "resync: reconnected" not in reasons and feed.counters.resyncs == feed.counters.gaps + 1
    assert feed.healthy


def test_one_silent_link_is_stale_and_replaced_alone(store):
    """The market link stalls: its trade stream turns stale (unhealthy, the book's streams fresh),
    the link is replaced after ``stale_reconnect_s``; the public link is not touched."""
    feed, _, reasons = follow(store, "binance-um", ["stall:0.8@0.4/market"], trade_stale_s=0.1, stale_reconnect_s=0.2)
    links = {ln.name: ln for ln in feed.links}
    assert "stale: trade" in reasons and reasons[-1] == "ok"
    assert feed.counters.stale_reconnects >= 1 and links["market"].rotations >= 1
    assert (links["public"].connects, links["public"].rotations, links["public"].reconnects) == (1, 0, 0)
