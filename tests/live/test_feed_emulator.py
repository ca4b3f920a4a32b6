"""The feed against the project's Binance emulator (``avmm.emulator``) replaying a depth store with
its fault knobs: the book ends equal to the store's through dropped and reordered diffs, a closed
socket, serverShutdown, a short connection lifetime; a stalled stream turns stale and back."""

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


def follow(store: Path, venue: str, faults: list[str], **venue_cfg: Any) -> tuple[Feed, Sink, list[str]]:
    """Run the feed on the emulator replaying ``store`` with ``faults``, until the replay has ended
    and the feed's book equals the store's; returns the feed, its sink and the health reasons."""
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


def test_rotates_on_server_shutdown(store):
    feed, _, _ = follow(store, "binance-um", ["shutdown@0.8"])
    c = feed.counters
    assert c.server_shutdowns == 1 and c.rotations == 1 and c.connects == 2
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
    recording converts to the store's quotes and trades, in order, and to the feed's own book."""
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
