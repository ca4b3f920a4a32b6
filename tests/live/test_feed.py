"""The live feed against a scripted Binance on 127.0.0.1: book sync, gaps, reconnects, rotation,
staleness, malformed frames."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

pytest.importorskip("picows")
pytest.importorskip("aiohttp")

from avmm.events import BUY, CLEAR, SELL  # noqa: E402
from avmm.live.config import VenueConfig, with_origin  # noqa: E402
from avmm.live.feed import Backoff, Feed, FeedSink, stream_links, stream_names  # noqa: E402
from tests.live.fake_binance import FakeBinance  # noqa: E402

pytestmark = pytest.mark.xdist_group("live")


class Sink(FeedSink):
    def __init__(self) -> None:
        self.quotes: list[tuple] = []
        self.trades: list[tuple] = []
        self.depth: list[tuple] = []
        self.health: list[tuple[bool, str]] = []

    def on_quote(self, ts_ns, local_ns, bid, bid_qty, ask, ask_qty):  # type: ignore[no-untyped-def]
        self.quotes.append((ts_ns, local_ns, bid, bid_qty, ask, ask_qty))

    def on_trade(self, ts_ns, local_ns, px, qty, side):  # type: ignore[no-untyped-def]
        self.trades.append((ts_ns, local_ns, px, qty, side))

    def on_depth(self, local_ns, kind, side, px, qty):  # type: ignore[no-untyped-def]
        self.depth.append((local_ns, kind, side, px, qty))

    def on_health(self, local_ns, healthy, reason):  # type: ignore[no-untyped-def]
        self.health.append((healthy, reason))


async def until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.005)


def run(
    scenario: Callable[[FakeBinance, Feed, Sink], Awaitable[Any]], um: bool = False, **venue: Any
) -> tuple[FakeBinance, Feed, Sink]:
    async def main() -> tuple[FakeBinance, Feed, Sink]:
        fake = FakeBinance(um=um)
        await fake.start()
        cfg = with_origin(VenueConfig(**venue), fake.url, "binance-um" if um else "binance-spot")
        sink = Sink()
        feed = Feed("binance-um" if um else "binance-spot", "BTCUSDT", cfg, sink, seed=1)
        task = asyncio.create_task(feed.run())
        try:
            await asyncio.wait_for(fake.connected.wait(), 10)
            await until(lambda: feed.connected and len(fake.clients) == len(feed.links), what="every link")
            await scenario(fake, feed, sink)
        finally:
            feed.stop()
            await asyncio.wait_for(task, 10)
            await fake.stop()
        return fake, feed, sink

    return asyncio.run(main())


def book_equal(fake: FakeBinance, feed: Feed) -> bool:
    bids, asks = fake.levels()
    return feed.book.levels(BUY) == bids and feed.book.levels(SELL) == asks


async def synced(fake: FakeBinance, feed: Feed) -> None:
    """Diffs until the feed has fetched a snapshot and caught up with the fake's book."""
    for _ in range(400):
        await fake.diff()
        await asyncio.sleep(0.005)
        if feed.sync.synced and book_equal(fake, feed):
            return
    raise AssertionError("the feed never synced")


@pytest.mark.parametrize("um", [False, True], ids=["spot", "um"])
def test_book_follows_diffs_through_dropped_and_reordered_ones(um):
    """Dropped and reordered diffs are gaps: counted, each resynced with a new snapshot; the book
    ends equal to the venue's."""

    async def scenario(fake: FakeBinance, feed: Feed, sink: Sink) -> None:
        await synced(fake, feed)
        assert feed.counters.gaps == 0 and feed.healthy
        for _ in range(20):
            await fake.diff()
        await fake.diff(drop=True)
        await synced(fake, feed)
        assert feed.counters.gaps == 1
        await fake.diff(hold=True)  # sent after the next one: a reorder
        await fake.diff()
        await synced(fake, feed)
        assert feed.counters.gaps == 2
        await until(lambda: feed.healthy, what="healthy again")

    fake, feed, sink = run(scenario, um=um)
    c = feed.counters
    assert c.resyncs == 3 and c.snapshots >= 3 and fake.snapshots >= 3
    assert c.decode_errors == 0 and c.reconnects == 0
    kinds = [k for _, k, *_ in sink.depth]
    assert kinds.count(CLEAR) == c.gaps + c.snapshots  # a CLEAR at each gap and each snapshot
    assert [h for h, _ in sink.health].count(False) >= 2


def test_quotes_and_trades_reach_the_sink_with_ns_times():
    async def scenario(fake: FakeBinance, feed: Feed, sink: Sink) -> None:
        await fake.book_ticker()
        await fake.trade()
        await until(lambda: sink.quotes and sink.trades)

    _, _, sink = run(scenario, um=True)
    ts, local, bid, bq, ask, aq = sink.quotes[0]
    assert ts == (1_700_000_000_000 + 1) * 1_000_000 and abs(local - time.time_ns()) < 60e9
    assert (bid, ask) == (99.99, 100.01) and (bq, aq) == (1.0, 1.0)
    ts, _, px, qty, side = sink.trades[0]
    assert ts == (1_700_000_000_000 + 1) * 1_000_000 and qty == 0.5 and side in (BUY, SELL)


def test_spot_book_ticker_has_the_local_time():
    async def scenario(fake: FakeBinance, feed: Feed, sink: Sink) -> None:
        await fake.book_ticker()
        await until(lambda: sink.quotes)

    _, _, sink = run(scenario)
    ts, local, *_ = sink.quotes[0]
    assert ts == local


def test_malformed_frames_are_counted_and_skipped():
    async def scenario(fake: FakeBinance, feed: Feed, sink: Sink) -> None:
        await fake.send('{"stream":"btcusdt@bookTicker","data":{"u":1,"b":"x"}}')
        await fake.send('{"stream":"btcusdt@depth@100ms","data":{"U":')
        await fake.send("not json")
        await fake.send('{"stream":"ethusdt@bookTicker","data":{}}')
        await fake.send('{"result":null,"id":1}')  # a control answer: not counted
        await fake.book_ticker()
        # the same stream spelt with spaces: routed by its decoded name
        await fake.send(
            '{"stream": "btcusdt@bookTicker", "data": {"u": 99, "b": "1.5", "B": "2", "a": "1.6", "A": "3"}}'
        )
        await until(lambda: len(sink.quotes) == 2)

    _, feed, sink = run(scenario)
    assert feed.counters.decode_errors == 3 and feed.counters.unknown_frames == 1
    assert sink.quotes[1][2:] == (1.5, 2.0, 1.6, 3.0)


def test_reconnects_after_the_venue_closes_the_socket():
    async def scenario(fake: FakeBinance, feed: Feed, sink: Sink) -> None:
        await synced(fake, feed)
        await fake.close_all()
        await until(lambda: fake.connects == 2 and fake.clients, what="reconnect")
        await synced(fake, feed)
        await until(lambda: feed.healthy)

    fake, feed, sink = run(scenario, backoff_min_s=0.01)
    assert feed.counters.reconnects == 1 and feed.counters.connects == 2
    assert (False, "disconnected") in sink.health
    assert book_equal(fake, feed)


def test_server_shutdown_rotates_make_before_break():
    """serverShutdown: a new connection opens, delivers, then the old one closes; no diff is lost
    (no gap), the book stays equal."""

    async def scenario(fake: FakeBinance, feed: Feed, sink: Sink) -> None:
        await synced(fake, feed)
        await fake.server_shutdown()
        await until(lambda: fake.connects == 2, what="the second connection")
        for _ in range(50):
            await fake.diff()
            await fake.book_ticker()
            await asyncio.sleep(0.002)
        await until(lambda: feed.counters.rotations == 1 and len(fake.clients) == 1, what="the old one closed")
        for _ in range(10):
            await fake.diff()
        await until(lambda: book_equal(fake, feed))

    fake, feed, sink = run(scenario)
    c = feed.counters
    assert c.server_shutdowns == 1 and c.rotations == 1 and c.gaps == 0 and c.reconnects == 0
    assert c.resyncs == 1  # only the first sync
    assert len(sink.quotes) == fake.bt_u  # each once, though two connections delivered some
    assert all(h for h, _ in sink.health[sink.health.index((True, "ok")) :])  # never unhealthy after the sync


def test_connection_replaced_before_its_lifetime_ends():
    async def scenario(fake: FakeBinance, feed: Feed, sink: Sink) -> None:
        await synced(fake, feed)
        for _ in range(100):
            await fake.diff()
            await asyncio.sleep(0.005)
            if feed.counters.rotations >= 2:
                break
        await until(lambda: feed.counters.rotations >= 2, what="two rotations")
        await fake.diff()
        await until(lambda: book_equal(fake, feed))

    fake, feed, _ = run(scenario, rotate_s=0.2)
    assert feed.counters.gaps == 0 and feed.counters.reconnects == 0 and fake.connects >= 3


def test_a_silent_stream_is_stale_and_recovers():
    async def scenario(fake: FakeBinance, feed: Feed, sink: Sink) -> None:
        await synced(fake, feed)
        await fake.book_ticker()
        await until(lambda: feed.healthy)
        await until(lambda: feed.reason == "stale: bookTicker, depth", what="stale")  # nothing sent
        assert not feed.healthy
        await fake.book_ticker()
        await fake.diff()
        await until(lambda: feed.healthy, what="fresh again")

    _, feed, sink = run(scenario, stale_s=0.2, stale_reconnect_s=0)
    assert feed.counters.stale_periods == 2 and feed.counters.rotations == 0
    assert (False, "stale: bookTicker, depth") in sink.health and sink.health[-1] == (True, "ok")


def test_all_streams_silent_for_long_opens_a_new_connection():
    async def scenario(fake: FakeBinance, feed: Feed, sink: Sink) -> None:
        await synced(fake, feed)
        await until(lambda: feed.counters.stale_reconnects >= 1, what="stale reconnect")
        await until(lambda: fake.connects >= 2)

    _, feed, _ = run(scenario, stale_s=0.1, stale_reconnect_s=0.2)
    assert feed.counters.rotations >= 1


def test_first_connection_failure_is_one_line():
    from avmm.errors import UserError

    async def main() -> None:
        cfg = with_origin(VenueConfig(connect_timeout_s=2), "http://127.0.0.1:9", "binance-spot")
        await Feed("binance-spot", "BTCUSDT", cfg).run(duration=5)

    with pytest.raises(UserError, match=r"ws://127.0.0.1:9/stream\?streams=.*: cannot connect"):
        asyncio.run(main())


def test_stream_names():
    assert stream_names("binance-spot", "BTCUSDT", "100ms") == (
        "btcusdt@bookTicker",
        "btcusdt@trade",
        "btcusdt@depth@100ms",
    )
    assert stream_names("binance-spot", "BTCUSDT", "1000ms")[2] == "btcusdt@depth"
    assert stream_names("binance-um", "BTCUSDT", "250ms") == ("btcusdt@bookTicker", "btcusdt@aggTrade", "btcusdt@depth")


def test_stream_links():
    """USD-M: book streams on /public, aggTrade on /market (or one legacy /stream); spot: one /stream."""
    um = stream_names("binance-um", "BTCUSDT", "100ms")
    assert stream_links("binance-um", "wss://fstream.binance.com", um) == [
        ("public", "wss://fstream.binance.com/public/stream?streams=btcusdt@bookTicker/btcusdt@depth@100ms", (0, 2)),
        ("market", "wss://fstream.binance.com/market/stream?streams=btcusdt@aggTrade", (1,)),
    ]
    assert stream_links("binance-um", "wss://x", um, "combined") == [
        ("stream", "wss://x/stream?streams=btcusdt@bookTicker/btcusdt@aggTrade/btcusdt@depth@100ms", (0, 1, 2))
    ]
    spot = stream_names("binance-spot", "BTCUSDT", "100ms")
    assert [name for name, *_ in stream_links("binance-spot", "wss://x", spot, "split")] == ["stream"]
    feed = Feed("binance-um", "BTCUSDT", VenueConfig(), seed=1)
    assert [(ln.name, ln.url.split("?")[0]) for ln in feed.links] == [
        ("public", "wss://fstream.binance.com/public/stream"),
        ("market", "wss://fstream.binance.com/market/stream"),
    ]


def test_backoff_doubles_with_jitter_up_to_the_cap():
    import random

    b = Backoff(0.1, 1.0, random.Random(3))
    ds = [b.next() for _ in range(8)]
    for i, d in enumerate(ds):
        cap = min(0.1 * 2**i, 1.0)
        assert cap / 2 <= d <= cap
    assert len(set(ds)) == len(ds)
    b.reset()
    assert b.next() <= 0.1


def test_connection_attempts_are_limited_over_5_minutes():
    """venue.max_connects_5min: a venue closing every connection at once gets no more attempts than
    that in 5 minutes (Binance bans an IP past 300); the next waits, and a stop ends the wait."""

    async def scenario(fake: FakeBinance, feed: Feed, sink: Sink) -> None:
        await fake.close_all()
        await until(lambda: fake.connects == 2 and fake.clients, what="the second connection")
        await fake.close_all()
        await until(lambda: feed.counters.connect_waits == 1, what="the third attempt held back")
        await asyncio.sleep(0.3)
        assert fake.connects == 2

    t0 = time.monotonic()
    fake, feed, _ = run(scenario, backoff_min_s=0.01, max_connects_5min=2)
    assert fake.connects == 2 and feed.counters.connect_waits == 1 and feed.counters.connect_failures == 0
    assert time.monotonic() - t0 < 30  # the stop did not wait the 5 minutes out


def test_snapshots_keep_within_the_rest_weight_share():
    """The venue says the IP used 2,999 of spot's 6,000 weight this minute: with the default share
    (0.5) a resync's 1000-level snapshot (weight 50) waits for the next minute instead of being sent."""
    if time.time() % 60 > 50:  # not across a minute boundary
        time.sleep(60 - time.time() % 60 + 0.1)

    async def scenario(fake: FakeBinance, feed: Feed, sink: Sink) -> None:
        fake.used_weight = 2_999
        await synced(fake, feed)
        assert fake.snapshots == 1
        await fake.diff(drop=True)
        await fake.diff()
        await until(lambda: feed.counters.weight_waits == 1, what="the snapshot held back")
        await asyncio.sleep(0.3)
        assert fake.snapshots == 1 and not feed.healthy

    fake, feed, _ = run(scenario)
    assert feed.counters.gaps == 1 and feed.counters.weight_waits == 1


def test_weight_wait():
    from avmm.live.rest import Rest, depth_weight

    r = Rest("http://127.0.0.1:1", "binance-spot", 1.0)
    assert [depth_weight("binance-spot", n) for n in (100, 500, 1000, 5000)] == [5, 25, 50, 250]
    assert [depth_weight("binance-um", n) for n in (50, 100, 500, 1000)] == [2, 5, 10, 20]
    assert r.weight_wait_s(50, 0.5, 120.5) == 0.0  # nothing known
    r.used_weight, r.weight_minute = 2_950, 2
    assert r.weight_wait_s(50, 0.5, 120.5) == 0.0  # 3,000 = the share
    assert r.weight_wait_s(51, 0.5, 120.5) == 59.5  # to the next minute
    assert r.weight_wait_s(51, 0.5, 180.0) == 0.0  # a new minute
    r.used_weight, r.weight_minute = 0, 3
    assert r.weight_wait_s(250, 0.01, 180.0) == 0.0  # above the share on its own: still one a minute
