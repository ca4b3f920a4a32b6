"""The live market-data feed of one Binance symbol (spot or USD-M), on asyncio.

Spot: one combined-stream connection, ``<stream_url>/stream?streams=<s>@bookTicker/<s>@trade/
<s>@depth@<speed>``. USD-M: two, as Binance routes its streams since 2026-04 (book data on
``/public``, the rest on ``/market``): ``<stream_url>/public/stream?streams=<s>@bookTicker/
<s>@depth@<speed>`` and ``<stream_url>/market/stream?streams=<s>@aggTrade``; ``venue.um_streams =
"combined"`` keeps the legacy single ``/stream`` connection for hosts that still serve it. Each
connection is a ``Link``: its URL, its streams, its connection(s), its backoff and its rotation.
Every connection delivers frames to ``Feed.on_frame``: routed by stream name, decoded by
msgspec straight into structs with float prices (``venues.binance.messages``), and handed to the
``FeedSink`` the runtime gives it:

* ``bookTicker`` -> ``on_quote(ts_ns, local_ns, bid, bid_qty, ask, ask_qty)`` (L1 comes from here,
  never from the depth book); ``ts_ns`` is the venue's ``T`` / ``E`` in ns, the local receive
  time when the venue sends none (spot);
* ``trade`` / ``aggTrade`` -> ``on_trade(ts_ns, local_ns, px, qty, side)`` (``side`` the
  aggressor: ``events.SELL`` when the buyer is the maker);
* ``depthUpdate`` -> the depth book, synced by Binance's rules (``venues.binance.depth_sync.
  DepthSync``: the same machine as the capture reader): diffs buffered until a REST snapshot, then
  ``U``/``u`` (spot) or ``pu`` (USD-M) checked; a gap is counted and resyncs (a new snapshot).
  Book rows go to ``on_depth(local_ns, kind, side, px, qty)`` as the converter writes them:
  CLEAR + SNAPSHOT rows at a snapshot, DEPTH rows per applied diff, CLEAR at a gap;
* health -> ``on_health(local_ns, healthy, reason)`` on every change: healthy when every link is
  connected, the book in sync and no watched stream silent for longer than its limit
  (``venue.stale_s``).

Duplicates are dropped by id (bookTicker ``u``, trade ``t`` / ``a``; depth by the sync rules), so
two connections of a link can deliver at once: a link's connection is replaced make-before-break
(the new one opens and delivers, then the old one closes) at ``venue.rotate_s`` (before Binance's
24 h limit), on its ``serverShutdown``, and when every watched stream it carries has been silent for
``venue.stale_reconnect_s``. A connection lost is reopened with exponential backoff and jitter; the
other link is not touched. Every event is counted (``FeedCounters``, summed over the links; each
``Link`` keeps its own connects, reconnects and rotations); a malformed frame is counted and skipped.
The feed sends no control frames (the streams are in the URLs): Binance's limit of incoming
messages a second is far away.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from typing import Any

import msgspec

from avmm.errors import UserError
from avmm.events import BUY, CLEAR, DEPTH, SELL, SNAPSHOT
from avmm.live import ws
from avmm.live.book import Book
from avmm.live.config import VenueConfig
from avmm.live.record import Recorder
from avmm.live.rest import Rest, RestError, depth_weight
from avmm.venues.binance import depth_sync as ds
from avmm.venues.binance.messages import (
    DECODE_AGG_TRADE,
    DECODE_BOOK_TICKER,
    DECODE_CONTROL_ENV,
    DECODE_DEPTH,
    DECODE_SNAPSHOT,
    DECODE_TRADE,
    SERVER_SHUTDOWN,
    Depth,
    Snapshot,
)

MS = 1_000_000
DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)
_HEAD = b'{"stream":"'
BT, TR, DP = 0, 1, 2  # watched streams
STREAM_NAMES = ("bookTicker", "trade", "depth")
FLUSH_S = 1.0  # the recorder's lines handed to its writer at least this often
CONNECT_WINDOW_S = 300.0  # venue.max_connects_5min counts attempts over this many seconds
OVERLAP_S = 10.0  # longest wait for a new connection's first frame before the old one closes


class FeedSink:
    """What the feed calls; the runtime overrides what it uses (all times int64 ns)."""

    def on_quote(self, ts_ns: int, local_ns: int, bid: float, bid_qty: float, ask: float, ask_qty: float) -> None:
        pass

    def on_trade(self, ts_ns: int, local_ns: int, px: float, qty: float, side: int) -> None:
        pass

    def on_depth(self, local_ns: int, kind: int, side: int, px: float, qty: float) -> None:
        pass

    def on_health(self, local_ns: int, healthy: bool, reason: str) -> None:
        pass


class FeedCounters(msgspec.Struct):
    """Every event of the feed's life, counted."""

    frames: int = 0  # data frames received
    quotes: int = 0
    trades: int = 0
    diffs_applied: int = 0
    snapshots: int = 0  # REST snapshots applied
    connects: int = 0  # connections opened
    connect_failures: int = 0
    reconnects: int = 0  # connections lost and reopened
    rotations: int = 0  # connections replaced make-before-break
    server_shutdowns: int = 0
    gaps: int = 0  # sequence breaks in the depth stream
    resyncs: int = 0  # snapshots fetched to (re)build the book
    snapshot_retries: int = 0  # snapshots older than the buffered diffs, asked again
    snapshot_errors: int = 0  # failed snapshot requests
    stale_periods: int = 0  # a watched stream went silent for longer than its limit
    stale_reconnects: int = 0
    decode_errors: int = 0  # malformed frames, skipped
    unknown_frames: int = 0  # frames of no subscribed stream
    duplicates: int = 0  # messages already seen (two connections overlapping, replays)
    stale_diffs: int = 0  # diffs older than the snapshot
    evicted_diffs: int = 0  # buffered diffs dropped while waiting for a snapshot
    dropped_levels: int = 0  # levels the book could not keep
    connect_waits: int = 0  # connection attempts held back by venue.max_connects_5min
    weight_waits: int = 0  # snapshots held back to the next minute by venue.rest_weight_share


def stream_names(venue: str, symbol: str, depth_interval: str) -> tuple[str, str, str]:
    """The subscribed streams: bookTicker, trades (``trade`` spot, ``aggTrade`` USD-M), depth."""
    s = symbol.lower()
    um = venue == "binance-um"
    base_speed = "250ms" if um else "1000ms"
    depth = f"{s}@depth" if depth_interval == base_speed else f"{s}@depth@{depth_interval}"
    return f"{s}@bookTicker", f"{s}@{'aggTrade' if um else 'trade'}", depth


def stream_links(
    venue: str, stream_url: str, names: tuple[str, str, str], um_streams: str = "split"
) -> list[tuple[str, str, tuple[int, ...]]]:
    """``(name, url, watched streams)`` of each connection: one combined ``/stream`` connection (spot,
    or USD-M with ``um_streams = "combined"``), or USD-M's ``/public`` (bookTicker, depth) and
    ``/market`` (aggTrade)."""
    bt, tr, dp = names
    if venue == "binance-um" and um_streams == "split":
        return [
            ("public", f"{stream_url}/public/stream?streams={bt}/{dp}", (BT, DP)),
            ("market", f"{stream_url}/market/stream?streams={tr}", (TR,)),
        ]
    return [("stream", f"{stream_url}/stream?streams={bt}/{tr}/{dp}", (BT, TR, DP))]


class Backoff:
    """Exponential delays with jitter: the n-th is uniform in [d/2, d], d = min(lo * 2**n, hi)."""

    def __init__(self, lo: float, hi: float, rng: random.Random) -> None:
        self.lo, self.hi, self.rng, self.n = lo, max(hi, lo), rng, 0

    def next(self) -> float:
        d = min(self.lo * (2.0**self.n), self.hi)
        self.n = min(self.n + 1, 60)
        return d * (0.5 + 0.5 * self.rng.random())

    def reset(self) -> None:
        self.n = 0


class Link:
    """One websocket connection of the feed and what keeps it: its URL and the watched streams it
    carries (``BT`` / ``TR`` / ``DP``), the connection delivering (``active``) and every open one
    (``conns``: two while it is replaced), its reconnect backoff, a rotation asked for, and its own
    counts."""

    def __init__(self, name: str, url: str, watch: tuple[int, ...], backoff: Backoff) -> None:
        self.name = name  # "stream" (the one connection), "public" or "market"
        self.url = url
        self.watch = watch
        self.backoff = backoff
        self.conns: list[ws.Conn] = []
        self.active: ws.Conn | None = None
        self.connected = False
        self.rotate = ""  # a rotation asked for: its reason
        self.wake: asyncio.Event | None = None
        self.stale_since = 0.0  # monotonic time every watched stream of the link went stale
        self.connects = 0
        self.reconnects = 0
        self.rotations = 0

    def __repr__(self) -> str:
        return f"Link({self.name!r}, {self.url!r}, connected={self.connected})"


class Feed:
    """The market data of ``symbol`` on ``venue`` (``binance-spot`` / ``binance-um``).

    ``await feed.run(duration)`` connects and keeps the feed until ``stop()`` (or ``duration``
    wall seconds); the first connection failing is a ``UserError`` (a wrong URL), later failures
    are retried. ``recorder`` (optional) receives what the feed used, as a capture.
    """

    def __init__(
        self,
        venue: str,
        symbol: str,
        cfg: VenueConfig,
        sink: FeedSink | None = None,
        recorder: Recorder | None = None,
        seed: int | None = None,
    ) -> None:
        cfg.check_for(venue)
        self.venue = venue
        self.symbol = symbol.upper()
        self.cfg = cfg
        self.um = venue == "binance-um"
        self.sink = sink if sink is not None else FeedSink()
        self.rec = recorder
        rest_url, stream_url, _ = cfg.urls(venue)
        self.names = stream_names(venue, symbol, cfg.depth_interval)
        self.rng = random.Random(seed)
        self.links = [
            Link(name, url, watch, Backoff(cfg.backoff_min_s, cfg.backoff_max_s, self.rng))
            for name, url, watch in stream_links(venue, stream_url, self.names, cfg.um_streams)
        ]
        self.rest = Rest(rest_url, venue, cfg.connect_timeout_s)
        self.counters = FeedCounters()
        self.book = Book()
        self.sync = ds.DepthSync()
        self.routes = {
            self.names[0].encode(): self._on_book_ticker,
            self.names[1].encode(): self._on_agg_trade if self.um else self._on_trade,
            self.names[2].encode(): self._on_depth,
        }
        self.last_bt = -1  # the last bookTicker u / trade id taken (duplicates: not above)
        self.last_tr = -1
        # health
        self.seen = [0, 0, 0]  # frames of each stream (the watchdog times their changes)
        self.rx = [0.0, 0.0, 0.0]  # monotonic time the watchdog last saw each stream's count move
        self.stale = [False, False, False]
        self.any_stale = False
        self.depth_ok = False
        self.depth_why = "resync"
        self.healthy = False
        self.reason = "connecting"
        self._stop: asyncio.Event | None = None
        self._resync_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.error: UserError | None = None
        self.opened: deque[float] = deque()  # monotonic times of the connection attempts (5 minutes)

    # ---------------------------------------------------------------- frames (the hot path)
    def on_frame(self, conn: ws.Conn, raw: bytes, t: int) -> None:
        """One data frame from ``conn``, received at ``t`` (wall ns)."""
        self.counters.frames += 1
        if raw.startswith(_HEAD):
            end = raw.find(b'"', 11)
            fn = self.routes.get(raw[11:end])
            if fn is not None:
                fn(raw, t)
                return
        self._on_other(conn, raw, t)

    def _bad(self) -> None:
        self.counters.decode_errors += 1

    def _on_book_ticker(self, raw: bytes, t: int) -> None:
        try:
            m = DECODE_BOOK_TICKER.decode(raw).data
        except DECODE_ERRORS:
            return self._bad()
        self.seen[BT] += 1
        if self.any_stale:
            self._unstale(BT, t)
        if m.u <= self.last_bt:
            self.counters.duplicates += 1
            return None
        self.last_bt = m.u
        self.counters.quotes += 1
        if self.rec is not None:
            self.rec.line(t, raw)
        ts = (m.T or m.E) * MS
        self.sink.on_quote(ts or t, t, m.b, m.B, m.a, m.A)
        return None

    def _on_trade(self, raw: bytes, t: int) -> None:
        try:
            m = DECODE_TRADE.decode(raw).data
        except DECODE_ERRORS:
            return self._bad()
        self._trade(raw, t, m.t, m.T, m.p, m.q, m.m)
        return None

    def _on_agg_trade(self, raw: bytes, t: int) -> None:
        try:
            m = DECODE_AGG_TRADE.decode(raw).data
        except DECODE_ERRORS:
            return self._bad()
        self._trade(raw, t, m.a, m.T, m.p, m.q, m.m)
        return None

    def _trade(self, raw: bytes, t: int, tid: int, ms: int, px: float, qty: float, maker_buys: bool) -> None:
        self.seen[TR] += 1
        if self.any_stale:
            self._unstale(TR, t)
        if tid <= self.last_tr:
            self.counters.duplicates += 1
            return
        self.last_tr = tid
        self.counters.trades += 1
        if self.rec is not None:
            self.rec.line(t, raw)
        self.sink.on_trade(ms * MS, t, px, qty, SELL if maker_buys else BUY)

    def _on_depth(self, raw: bytes, t: int) -> None:
        try:
            m = DECODE_DEPTH.decode(raw).data
        except DECODE_ERRORS:
            return self._bad()
        self.seen[DP] += 1
        if self.any_stale:
            self._unstale(DP, t)
        last_u = self.sync.last_u
        out = self.sync.on_diff(m, t)
        if out == ds.APPLY:
            rec = self.rec
            if rec is not None and rec.due(t):
                # the diff ends this file (it may confirm the file's last snapshot) and starts the
                # next one, after the book it leaves written as a snapshot that it brackets
                rec.line(t, raw)
                self._apply(m, t)
                rec.start(t, self._book_snapshot(m))
                rec.line(t, raw)
            else:
                if rec is not None:
                    rec.line(t, raw)
                self._apply(m, t)
            if not self.depth_ok:
                self._depth_ok(t)
            return None
        if out == ds.DUPLICATE:
            self.counters.duplicates += 1
            return None
        self._depth_other(m, raw, out, last_u, t)
        return None

    def _depth_other(self, m: Depth, raw: bytes, out: int, last_u: int, t: int) -> None:
        """A diff not applied (recorded: a reader of the recording reaches the same outcome)."""
        if self.rec is not None:
            self.rec.line(t, raw)
        if out == ds.BUFFERED:
            if self._resync_task is None:
                self._start_resync()
        elif out == ds.GAP:
            self._gap(m, last_u, t)
        elif out == ds.STALE:
            self.counters.stale_diffs += 1
        elif out == ds.EVICTED:
            self.counters.evicted_diffs += 1

    def _apply(self, m: Depth, t: int) -> None:
        self.counters.diffs_applied += 1
        self.book.apply(m.b, m.a)
        on_depth = self.sink.on_depth
        for px, q in m.b:
            on_depth(t, DEPTH, BUY, px, q)
        for px, q in m.a:
            on_depth(t, DEPTH, SELL, px, q)

    def _gap(self, m: Depth, last_u: int, t: int) -> None:
        self.counters.gaps += 1
        self.book.clear()
        self.sink.on_depth(t, CLEAR, 0, 0.0, 0.0)
        self._depth_lost(t, f"resync: gap after u={last_u} (U={m.U} u={m.u} pu={m.pu})")
        if self._resync_task is None:
            self._start_resync()

    def _on_other(self, conn: ws.Conn, raw: bytes, t: int) -> None:
        """Not routed by the fast path: a stream frame spelt another way (spaces), serverShutdown,
        a control answer, or junk (counted)."""
        try:
            f = DECODE_CONTROL_ENV.decode(raw)
        except DECODE_ERRORS:
            self._bad()
            return
        if f.stream:
            fn = self.routes.get(f.stream.encode())
            if fn is not None:
                fn(raw, t)
                return
            if f.data is None or f.data.e != SERVER_SHUTDOWN:
                self.counters.unknown_frames += 1
                return
        if f.e == SERVER_SHUTDOWN or (f.data is not None and f.data.e == SERVER_SHUTDOWN):
            self.counters.server_shutdowns += 1
            for link in self.links:
                if conn is link.active:
                    self.request_rotation("serverShutdown", link)
        elif f.id is None and f.result is None and f.error is None:
            self.counters.unknown_frames += 1

    # ---------------------------------------------------------------- the book's snapshots
    def _start_resync(self) -> None:
        self.counters.resyncs += 1
        self._resync_task = asyncio.get_running_loop().create_task(self._resync())

    async def _resync(self) -> None:
        """Fetch snapshots until one is applied (the buffered diffs replayed on it)."""
        backoff = Backoff(self.cfg.backoff_min_s, self.cfg.backoff_max_s, self.rng)
        try:
            while self._stop is None or not self._stop.is_set():
                delay = 0.0
                wait = self.rest.weight_wait_s(
                    depth_weight(self.venue, self.cfg.depth_limit), self.cfg.rest_weight_share, time.time()
                )
                if wait > 0.0:  # this minute's weight is spent: the next minute
                    self.counters.weight_waits += 1
                    await asyncio.sleep(wait)
                    continue
                try:
                    body = await self.rest.depth(self.symbol, self.cfg.depth_limit)
                    t = time.time_ns()
                    snap = DECODE_SNAPSHOT.decode(body)
                except RestError as e:
                    self.counters.snapshot_errors += 1
                    delay = max(e.retry_after, backoff.next())
                except DECODE_ERRORS:
                    self.counters.decode_errors += 1
                    delay = backoff.next()
                else:
                    if self.sync.synced or self._snapshot(snap, body, t):
                        return
                    delay = min(backoff.next(), 1.0)
                await asyncio.sleep(delay)
        finally:
            self._resync_task = None

    def _snapshot(self, snap: Snapshot, body: bytes, t: int) -> bool:
        """Apply ``snap`` (received at ``t``) if it fits the buffered diffs: True when the book is in
        sync after it; False: ask for another (too old, or a gap among the buffered diffs)."""
        lid = snap.lastUpdateId
        rel = [ds.bracket(d, lid) for d, _ in self.sync.pending]
        if rel and 0 not in rel and max(rel) > 0:  # older than the buffered diffs: ask again
            self.counters.snapshot_retries += 1
            return False
        self.counters.snapshots += 1
        if self.rec is not None:
            self.rec.line(t, body if b"\n" not in body else msgspec.json.encode(msgspec.json.decode(body)))
        book, on_depth = self.book, self.sink.on_depth
        book.clear()
        on_depth(t, CLEAR, 0, 0.0, 0.0)
        book.apply(snap.bids, snap.asks)
        for px, q in snap.bids:
            on_depth(t, SNAPSHOT, BUY, px, q)
        for px, q in snap.asks:
            on_depth(t, SNAPSHOT, SELL, px, q)
        last_u = lid
        for m, _, out in self.sync.on_snapshot(lid):
            if out == ds.APPLY:
                self._apply(m, t)
                last_u = m.u
            elif out == ds.STALE:
                self.counters.stale_diffs += 1
            elif out == ds.DUPLICATE:
                self.counters.duplicates += 1
            elif out == ds.GAP:
                self._gap(m, last_u, t)
                return False
        self.counters.dropped_levels = self.book.dropped
        if self.sync.pending or not self.sync.synced:
            return False
        self._depth_ok(t)
        return True

    def _book_snapshot(self, m: Depth) -> bytes:
        """The book (after diff ``m``) as a REST snapshot that ``m`` brackets (a new file's first line)."""
        lid = m.u if self.um else m.u - 1
        bids = [[repr(p), repr(q)] for p, q in self.book.levels(BUY)]
        asks = [[repr(p), repr(q)] for p, q in self.book.levels(SELL)]
        if self.um:
            return msgspec.json.encode({"lastUpdateId": lid, "E": m.E, "T": m.T, "bids": bids, "asks": asks})
        return msgspec.json.encode({"lastUpdateId": lid, "bids": bids, "asks": asks})

    # ---------------------------------------------------------------- health
    @property
    def connected(self) -> bool:
        """Every link connected."""
        return all(link.connected for link in self.links)

    def _set_health(self, t: int) -> None:
        if not self.connected:
            if any(link.connects == 0 for link in self.links):
                ok, why = False, "connecting"
            elif len(self.links) == 1:
                ok, why = False, "disconnected"
            else:
                down = ", ".join(link.name for link in self.links if not link.connected)
                ok, why = False, f"disconnected: {down}"
        elif not self.depth_ok:
            ok, why = False, self.depth_why
        elif self.any_stale:
            silent = [STREAM_NAMES[k] for k in range(3) if self.stale[k]]
            ok, why = False, f"stale: {', '.join(silent)}"
        else:
            ok, why = True, "ok"
        if ok != self.healthy or why != self.reason:
            self.healthy, self.reason = ok, why
            self.sink.on_health(t, ok, why)

    def _depth_ok(self, t: int) -> None:
        self.depth_ok = True
        self._set_health(t)

    def _depth_lost(self, t: int, why: str) -> None:
        self.depth_ok = False
        self.depth_why = why
        self._set_health(t)

    def _unstale(self, k: int, t: int) -> None:
        if self.stale[k]:
            self.stale[k] = False
            self.any_stale = any(self.stale)
            self._set_health(t)

    def _limits(self) -> tuple[float, float, float]:
        c = self.cfg
        return (c.stale_s, c.trade_stale_s, c.stale_s)

    async def _watchdog(self) -> None:
        """Every quarter of the shortest limit: a stream whose frame count has not moved for longer
        than its limit is stale (the frames themselves clear it, at once); a link whose watched
        streams are all stale for ``venue.stale_reconnect_s`` is replaced."""
        limits = self._limits()
        period = max(0.01, min(x for x in limits if x > 0) / 4)
        watched = [[k for k in link.watch if limits[k] > 0] for link in self.links]
        prev = list(self.seen)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for k in range(3):
                if self.seen[k] != prev[k]:
                    prev[k] = self.seen[k]
                    self.rx[k] = now
            changed = False
            for link, ks in zip(self.links, watched, strict=True):
                if not link.connected:
                    continue
                for k in ks:
                    if not self.stale[k] and now - self.rx[k] > limits[k]:
                        self.stale[k] = True
                        self.counters.stale_periods += 1
                        changed = True
            if changed:
                self.any_stale = True
                self._set_health(time.time_ns())
            for link, ks in zip(self.links, watched, strict=True):
                self._stale_link(link, ks, now)

    def _stale_link(self, link: Link, ks: list[int], now: float) -> None:
        """Replace ``link`` when the watched streams it carries have all been stale for long."""
        if not (link.connected and ks and all(self.stale[k] for k in ks)):
            link.stale_since = 0.0
            return
        link.stale_since = link.stale_since or now
        lim = self.cfg.stale_reconnect_s
        if lim > 0 and now - link.stale_since >= lim and not link.rotate:
            self.counters.stale_reconnects += 1
            self.request_rotation("stale", link)
            link.stale_since = now

    # ---------------------------------------------------------------- connections
    def request_rotation(self, why: str, link: Link | None = None) -> None:
        """Replace the active connection of ``link`` (default: of every link), make-before-break."""
        for ln in self.links if link is None else (link,):
            ln.rotate = why
            if ln.wake is not None:
                ln.wake.set()

    def _on_closed(self, conn: ws.Conn) -> None:
        for link in self.links:
            if conn in link.conns:
                link.conns.remove(conn)
                if link.wake is not None:
                    link.wake.set()

    async def _open(self, link: Link) -> ws.Conn:
        opened = self.opened  # attempts in the last 5 minutes, every link: Binance bans an IP past 300
        while opened and opened[0] < time.monotonic() - CONNECT_WINDOW_S:
            opened.popleft()
        if len(opened) >= self.cfg.max_connects_5min:
            self.counters.connect_waits += 1
            await self._sleep(opened[0] + CONNECT_WINDOW_S - time.monotonic())
            if self._stopped():
                raise ConnectionAbortedError("stopped")
        opened.append(time.monotonic())
        conn = await ws.connect(link.url, self.on_frame, self._on_closed, self.cfg.connect_timeout_s)
        self.counters.connects += 1
        link.connects += 1
        link.conns.append(conn)
        now = time.monotonic()
        for k in link.watch:
            self.rx[k] = max(self.rx[k], now)  # the watchdog counts from here
        return conn

    async def _connect(self, link: Link, first: bool) -> ws.Conn | None:
        while not self._stopped():
            try:
                return await self._open(link)
            except ws.CONNECT_ERRORS as e:
                if self._stopped():
                    return None
                self.counters.connect_failures += 1
                if first:
                    raise UserError(f"{link.url}: cannot connect ({type(e).__name__}: {e})") from None
            await self._sleep(link.backoff.next())
        return None

    def _stopped(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    async def _sleep(self, s: float) -> None:
        assert self._stop is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), s)

    async def _wait(self, link: Link, conn: ws.Conn) -> str:
        """Until something happens to the link's active connection: ``stop``, ``closed``,
        ``lifetime`` or a rotation request's reason."""
        assert link.wake is not None
        while True:
            if self._stopped():
                return "stop"
            if link.rotate:  # (before a close: serverShutdown, then the venue closes)
                why, link.rotate = link.rotate, ""
                return why
            if conn.closed:
                return "closed"
            left = conn.opened + self.cfg.rotate_s - time.monotonic()
            if left <= 0:
                return "lifetime"
            link.wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(link.wake.wait(), left)

    async def _connections(self) -> None:
        """Open every link at once (their subscriptions reach the venue together; the first
        failure is a ``UserError``, the others closed), then keep each on its own task."""
        opened = await asyncio.gather(*(self._connect(link, first=True) for link in self.links), return_exceptions=True)
        err = next((r for r in opened if isinstance(r, BaseException)), None)
        if err is not None:
            for r in opened:
                if isinstance(r, ws.Conn):
                    r.close()
            raise err
        first = [r for r in opened if not isinstance(r, BaseException)]
        for link, conn in zip(self.links, first, strict=True):  # all up before the health says so
            link.active, link.connected = conn, conn is not None
        loop = asyncio.get_running_loop()
        keep = [loop.create_task(self._keep(link, conn)) for link, conn in zip(self.links, first, strict=True)]
        self._tasks += keep
        await asyncio.gather(*keep)

    async def _keep(self, link: Link, conn: ws.Conn | None) -> None:
        """Keep ``link`` up: reopen it when lost, replace it when asked, until ``stop``."""
        backoff = link.backoff
        while conn is not None:
            link.active = conn
            link.connected = True
            self._set_health(time.time_ns())
            conn.ready.add_done_callback(lambda f: backoff.reset() if f.result() else None)
            why = await self._wait(link, conn)
            if why == "stop":
                return
            if why == "closed":  # lost: reopen (the sync rules tell whether the book survived)
                link.connected = False
                if DP in link.watch:
                    self.depth_ok = False
                    self.depth_why = "resync: reconnected"
                self._set_health(time.time_ns())
                self.counters.reconnects += 1
                link.reconnects += 1
                await self._sleep(backoff.next())
                conn = await self._connect(link, first=False)
                continue
            conn = await self._replace(link, conn)

    async def _replace(self, link: Link, old: ws.Conn) -> ws.Conn | None:
        """Open a new connection of ``link``, wait for its first frame, then close ``old``
        (make-before-break). When it cannot be opened, ``old`` stays active and the rotation is
        tried again later."""
        try:
            new = await self._open(link)
        except ws.CONNECT_ERRORS:
            self.counters.connect_failures += 1
            await self._sleep(link.backoff.next())
            if not old.closed:
                link.rotate = link.rotate or "retry"
            return old if not old.closed else await self._connect(link, first=False)
        assert self._stop is not None
        stop = asyncio.ensure_future(self._stop.wait())
        try:  # the new one's first frame (or stop, or a venue silent for OVERLAP_S)
            await asyncio.wait((new.ready, stop), timeout=OVERLAP_S, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        self.counters.rotations += 1
        link.rotations += 1
        link.active = new
        old.close()
        return new

    async def run(self, duration: float | None = None) -> FeedCounters:
        """Run until ``stop()`` or ``duration`` wall seconds; returns the counters."""
        self._stop = asyncio.Event()
        for link in self.links:
            link.wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._watchdog())]
        if self.rec is not None:
            self._tasks.append(loop.create_task(self._flush_recording(self.rec)))
        if duration is not None:
            loop.call_later(duration, self.stop)
        try:
            await self._connections()
            await self._stop.wait()
        finally:
            await self._shutdown()
        if self.error is not None:
            raise self.error
        return self.counters

    async def _flush_recording(self, rec: Recorder) -> None:
        """Hand the recorded lines to the writer every second (a quiet feed's lines reach the disk
        too); a write failure stops the feed with its one-line error."""
        while True:
            await asyncio.sleep(FLUSH_S)
            try:
                rec.flush()
            except UserError as e:
                self.error = e
                self.stop()
                return

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
        for link in self.links:
            if link.wake is not None:
                link.wake.set()

    async def _shutdown(self) -> None:
        for task in [*self._tasks, self._resync_task]:
            if task is not None:
                task.cancel()
        for link in self.links:
            for c in list(link.conns):
                c.close()
        await asyncio.sleep(0)
        await self.rest.close()
        self.counters.dropped_levels = self.book.dropped
        if self.rec is not None:
            self.rec.close()
