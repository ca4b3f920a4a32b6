"""``avmm bench live``: tick-to-order latency on loopback against the emulator, stage by stage.

The emulator replays a store in its own process (the client never shares a GIL with the server);
this process runs the client on uvloop, in two phases, each against a fresh emulator:

1. **stages** -- the live path, on the runtime's own objects: ``Feed`` (picows, its routing, its
   msgspec decoders, dedupe, depth book) -> a sink that calls ``Engine.on_quote`` (the real core,
   configured to requote on every bookTicker: ``quoting.requote_always``) and encodes the actions
   as Binance WebSocket API requests (``venues.binance.ws_api.Requests``: the bytes a live gateway
   writes). Each bookTicker frame is stamped with ``time.time_ns()`` (the clock of the runtime's
   own ``local_ns``) at six points:

   ============  =============================================================================
   receive       entering the websocket callback (the feed's ``local_ns``) -> the payload bytes
                 routed to the bookTicker decoder (``Feed.on_frame``)
   decode        msgspec decode into ``EnvBookTicker`` (the feed's decoder)
   book          dedupe by ``u``, the feed's counters, the L1 handed to the sink
   core          ``Engine.on_quote`` (the compiled quote cycle) -> n actions
   encode        the n actions -> ``order.place`` / ``order.cancelReplace`` (spot) or
                 ``order.modify`` (USD-M) / ``order.cancel`` request bytes
   ============  =============================================================================

   The decoder is timed through a stand-in that calls the feed's own decoder between two stamps
   (``_TimedDecoder``, swapped in for the phase); the venue's acks are given to the core after
   the stamps, outside the measured spans.

2. **runtime** -- ``PaperSession`` as ``avmm paper`` runs it (feed -> ``Trader`` -> paper venue,
   ``Engine``, ``PaperGateway.send``): its own tick-to-order ring (``tick_to_order``: the frame's
   ``local_ns`` to the trader's return, orders sent), the figure its status shows.

The first ``warmup`` bookTicker frames are not counted (connection, snapshot, caches). Garbage
collection runs as in the runtime (enabled; the objects made at start-up frozen by ``gc.freeze``:
``PaperSession.run``'s own policy, and the stages phase's before it connects); the collections
during the measured frames are counted in the result.
Percentiles are numpy's over int64 arrays allocated before the run; stamps are written to them
after the last stamp of a frame.
"""

from __future__ import annotations

import asyncio
import gc
import math
import statistics
import time
from array import array
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from time import time_ns
from typing import Any, Protocol

import numpy as np

from avmm.errors import UserError
from avmm.live.feed import FeedSink

STAGES = ("receive", "decode", "book", "core", "encode")
PCTS = (50.0, 99.0, 99.9)
KEYS = ("p50", "p99", "p999", "max")
NS = 6  # stamps per frame
QUIET_S = 1.0  # no bookTicker for this long: ask the emulator whether its replay has ended
STALL_S = 120.0  # no bookTicker for this long: give up (the emulator does not answer)
MAX_FRAMES = 1_000_000
IDLE_NS = 200_000  # a frame arriving this long after the previous one finds the process idle (caches cold)


class Emulator(Protocol):
    """A running emulator (``avmm.emulator.EmulatorProcess`` / ``EmulatorThread``)."""

    url: str

    def status(self) -> Any: ...


EmulatorFn = Callable[[Path, str, float | None], AbstractContextManager[Emulator]]
"""``(store, venue, speed or None for --max)`` -> a running emulator."""


def warmup_for(frames: int) -> int:
    return min(2000, max(100, frames // 10))


def bench_strategy(tick: float, lot: float) -> Any:
    """The strategy the bench runs: the defaults, the instrument's grid, a full quote cycle on
    every event (``quoting.requote_always``)."""
    from avmm.core.config import StrategyConfig

    return StrategyConfig.model_validate({"quoting": {"tick": tick, "lot": lot, "requote_always": True}})


# --- the stages phase ------------------------------------------------------------------------------


class _TimedDecoder:
    """The feed's bookTicker decoder between two stamps."""

    __slots__ = ("dec", "t0", "t1")

    def __init__(self, dec: Any) -> None:
        self.dec = dec
        self.t0 = self.t1 = 0

    def decode(self, raw: bytes) -> Any:
        self.t0 = time_ns()
        m = self.dec.decode(raw)
        self.t1 = time_ns()
        return m


class _Pipeline(FeedSink):
    """The feed's sink on the live path: the core, then the requests; stamps every bookTicker."""

    def __init__(self, engine: Any, requests: Any, dec: _TimedDecoder, warmup: int, frames: int) -> None:
        from avmm.core.state import ACT_CANCEL

        self.engine = engine
        self.core = engine.on_quote
        self.encode = requests.encode
        self.actions = engine.actions
        self.req = requests
        self.dec = dec
        self.warmup = warmup
        self.cap = warmup + frames
        self.rows = array("q", bytes(8 * NS * self.cap))
        self.nact = array("q", bytes(8 * self.cap))
        self.i = 0
        self.done: asyncio.Future[None] | None = None
        self.gc0 = 0
        self.cancel_kind = ACT_CANCEL
        self.last_quote = time.monotonic()

    # FeedSink
    def on_quote(self, ts_ns: int, local_ns: int, bid: float, bid_qty: float, ask: float, ask_qty: float) -> None:
        t_book = time_ns()
        n = self.core(ts_ns, bid, bid_qty, ask, ask_qty)
        t_core = time_ns()
        if n:
            self.encode(n, t_core // 1_000_000)
            t_enc = time_ns()
        else:
            t_enc = t_core
        i = self.i
        if i < self.cap:
            r, j, d = self.rows, NS * i, self.dec
            r[j] = local_ns
            r[j + 1] = d.t0
            r[j + 2] = d.t1
            r[j + 3] = t_book
            r[j + 4] = t_core
            r[j + 5] = t_enc
            self.nact[i] = n
            self.i = i + 1
            if i + 1 == self.warmup:
                self.gc0 = _collections()
            elif i + 1 == self.cap and self.done is not None and not self.done.done():
                self.done.set_result(None)
        self.last_quote = time.monotonic()
        if n:
            self._acks(n)

    def on_trade(self, ts_ns: int, local_ns: int, px: float, qty: float, side: int) -> None:
        n = self.engine.on_trade(ts_ns, px, qty, side)
        if n:
            self.encode(n, local_ns // 1_000_000)
            self._acks(n)

    def on_depth(self, local_ns: int, kind: int, side: int, px: float, qty: float) -> None:
        self.engine.on_depth(kind, side, px, qty)

    def on_health(self, local_ns: int, healthy: bool, reason: str) -> None:
        pass

    def _acks(self, n: int) -> None:
        """The venue's answers, at once (the bench's venue accepts everything)."""
        e = self.engine
        for kind, _side, oid, *_ in self.actions[:n].tolist():
            if kind == self.cancel_kind:
                e.on_canceled(oid)
                self.req.forget(oid)
            else:
                e.on_ack(oid)


def _collections() -> int:
    return sum(s["collections"] for s in gc.get_stats())


async def _until(
    done: asyncio.Future[None], last: Callable[[], float], stop: Callable[[], None], emu: Emulator
) -> bool:
    """Wait for ``done``; False when the emulator's replay ended first. The emulator is asked only
    once the frames have stopped for ``QUIET_S`` (never while they are measured)."""
    while not done.done():
        await asyncio.sleep(0.05)
        quiet = time.monotonic() - last()
        if quiet > STALL_S:
            break
        if quiet > QUIET_S:
            try:
                ended = bool((await asyncio.to_thread(emu.status)).get("done"))
            except Exception:  # noqa: BLE001 - an emulator that does not answer: wait for STALL_S
                ended = False
            if ended:
                await asyncio.sleep(0.5)  # frames still in flight
                if done.done():
                    break
                stop()
                return False
    stop()
    return done.done()


async def _setup(emu: Emulator, venue: str, symbol: str) -> tuple[Any, Any]:
    """The venue config pointing at ``emu`` and the bench's strategy on its instrument's grid."""
    from avmm.backtest.runner import adapt_config
    from avmm.live.config import VenueConfig, with_origin
    from avmm.live.paper import instrument

    vcfg = with_origin(VenueConfig(), emu.url, venue)
    info = await instrument(venue, symbol, vcfg)
    return vcfg, adapt_config(bench_strategy(0.01, 0.001), info)


def _ended(seen: int, frames: int, warmup: int) -> UserError:
    return UserError(
        f"the replay ended after {seen:,} bookTicker frames: fewer than --frames {frames:,} + {warmup:,} "
        "of warm-up (a longer --store, or fewer --frames)"
    )


async def _stages(emu: Emulator, venue: str, symbol: str, warmup: int, frames: int) -> dict[str, Any]:
    import avmm.live.feed as feed_mod
    from avmm.core.engine import Engine
    from avmm.live.feed import Feed
    from avmm.venues.binance.ws_api import OrderEncoder, Requests

    vcfg, cfg = await _setup(emu, venue, symbol)
    engine = Engine(cfg)
    engine.params["log_rate"] = 0.0
    req = Requests(OrderEncoder(venue, symbol, cfg.quoting.tick, cfg.quoting.lot), engine.actions)
    real = feed_mod.DECODE_BOOK_TICKER
    dec = _TimedDecoder(real)
    sink = _Pipeline(engine, req, dec, warmup, frames)
    sink.done = asyncio.get_running_loop().create_future()
    feed = Feed(venue, symbol, vcfg, sink)
    feed_mod.DECODE_BOOK_TICKER = dec  # type: ignore[assignment]
    gc.collect()
    gc.freeze()
    try:
        run = asyncio.ensure_future(feed.run())
        complete = await _until(sink.done, lambda: sink.last_quote, feed.stop, emu)
        await run
    finally:
        feed_mod.DECODE_BOOK_TICKER = real
        gc.unfreeze()
    gc1 = _collections()
    if not complete:
        raise _ended(sink.i, frames, warmup)
    rows = np.frombuffer(sink.rows, dtype=np.int64).reshape(-1, NS)[warmup : sink.i]
    nact = np.frombuffer(sink.nact, dtype=np.int64)[warmup : sink.i]
    return {
        "rows": rows.copy(),
        "nact": nact.copy(),
        "gc_collections": gc1 - sink.gc0,
        "encoder": req.counts(),
        "decode_errors": feed.counters.decode_errors,
        "tick": cfg.quoting.tick,
        "lot": cfg.quoting.lot,
    }


# --- the runtime phase -----------------------------------------------------------------------------


async def _runtime(emu: Emulator, venue: str, symbol: str, warmup: int, frames: int) -> dict[str, Any]:
    from avmm.backtest.config import BacktestConfig
    from avmm.live.paper import PaperSession

    vcfg, cfg = await _setup(emu, venue, symbol)
    cap = 1 << max(16, math.ceil(math.log2(4 * (warmup + frames))))
    s = PaperSession(venue, symbol, cfg, BacktestConfig(), vcfg, latency_cap=cap)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    state = {"last": time.monotonic(), "quotes": 0, "warm_n": -1, "gc0": 0}

    async def watch() -> None:
        while not done.done():
            await asyncio.sleep(0.01)
            q = s.feed.counters.quotes
            if q != state["quotes"]:
                state["quotes"], state["last"] = q, time.monotonic()
            if state["warm_n"] < 0 and q >= warmup and s.trader.healthy:
                state["warm_n"], state["q0"], state["gc0"] = s.tick_to_order.n, q, _collections()
            if state["warm_n"] >= 0 and q - state["q0"] >= frames:
                done.set_result(None)

    run = asyncio.ensure_future(s.run())  # its own GC policy (PaperSession.run: gc.freeze at start)
    watcher = asyncio.ensure_future(watch())
    complete = await _until(done, lambda: state["last"], s.stop, emu)
    await run
    watcher.cancel()
    gc1 = _collections()
    if not complete:
        raise _ended(int(state["quotes"]), frames, warmup)
    ring = s.tick_to_order
    if ring.n - (ring.mask + 1) >= state["warm_n"]:  # the ring turned: every sample it holds is past the warm-up
        lat = ring.samples()
    else:
        lat = np.frombuffer(ring.buf, dtype=np.int64)[state["warm_n"] : ring.n].copy()
    return {
        "lat": lat,
        "quotes": state["quotes"] - state.get("q0", 0),
        "gc_collections": gc1 - state["gc0"],
        "fills": int(s.trader.bs["n_fills"][0]),
    }


# --- the result ------------------------------------------------------------------------------------


def pcts_us(ns: np.ndarray) -> dict[str, float | int | None]:
    """p50 / p99 / p99.9 / max in µs and the count."""
    if ns.size == 0:
        return {**dict.fromkeys(KEYS), "n": 0}
    p = np.percentile(ns, PCTS)
    return {"p50": p[0] / 1e3, "p99": p[1] / 1e3, "p999": p[2] / 1e3, "max": float(ns.max()) / 1e3, "n": int(ns.size)}


def stage_table(rows: np.ndarray, mask: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """Each stage's and the total's percentiles over ``rows`` (stamps, ns) where ``mask``."""
    r = rows if mask is None else rows[mask]
    d = np.diff(r, axis=1)
    out = {name: pcts_us(d[:, k]) for k, name in enumerate(STAGES)}
    out["total"] = pcts_us(r[:, -1] - r[:, 0])
    return out


@dataclass
class LiveBenchResult:
    venue: str
    symbol: str
    store: str
    speed: float | None  # None: --max
    frames: int
    warmup: int
    repeat: int
    requoted: int  # frames (of the first run) whose core call produced actions
    stages_all: dict[str, dict[str, Any]]  # median of the runs' percentiles, µs
    stages_requote: dict[str, dict[str, Any]]
    stages_back_to_back: dict[str, dict[str, Any]]  # frames within IDLE_NS of the previous one
    stages_after_idle: dict[str, dict[str, Any]]  # the others: the process was idle, its caches cold
    runtime: dict[str, Any]  # PaperSession's tick-to-order, µs
    runs: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "symbol": self.symbol,
            "store": self.store,
            "speed": self.speed,
            "frames": self.frames,
            "warmup": self.warmup,
            "repeat": self.repeat,
            "requoted": self.requoted,
            "stages_us": self.stages_all,
            "stages_requote_us": self.stages_requote,
            "stages_back_to_back_us": self.stages_back_to_back,
            "stages_after_idle_us": self.stages_after_idle,
            "idle_us": IDLE_NS / 1e3,
            "runtime_us": self.runtime,
            "runs": self.runs,
            "notes": self.notes,
        }


def _median_tables(tables: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in tables[0]:
        row: dict[str, Any] = {}
        for k in KEYS:
            vals = [t[name][k] for t in tables if t[name][k] is not None]
            row[k] = statistics.median(vals) if vals else None
        row["n"] = statistics.median(t[name]["n"] for t in tables)
        out[name] = row
    return out


def run_live_bench(
    emulator: EmulatorFn,
    store: Path,
    venue: str = "binance-spot",
    frames: int = 20_000,
    speed: float | None = 200.0,
    repeat: int = 1,
    warmup: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> LiveBenchResult:
    """Run the two phases ``repeat`` times (a fresh emulator each) and take the median of the
    runs' percentiles."""
    from avmm.data.store import read_meta
    from avmm.live.run import check_symbol, new_loop

    if not 1 <= frames <= MAX_FRAMES:
        raise UserError(f"--frames {frames}: must be between 1 and {MAX_FRAMES:,}")
    if repeat < 1:
        raise UserError(f"--repeat {repeat}: must be at least 1")
    meta = read_meta(store)
    symbol = check_symbol(str(meta.get("symbol") or "BTCUSDT"))
    warm = warmup_for(frames) if warmup is None else warmup
    say = progress or (lambda _m: None)
    runs: list[dict[str, Any]] = []
    all_t, req_t, rt_t, b2b_t, idle_t = [], [], [], [], []
    requoted = 0
    for k in range(repeat):
        loop = new_loop("avmm bench live")
        try:
            say(f"run {k + 1}/{repeat}: stages")
            with emulator(store, venue, speed) as emu:
                st = loop.run_until_complete(_stages(emu, venue, symbol, warm, frames))
            say(f"run {k + 1}/{repeat}: paper runtime")
            with emulator(store, venue, speed) as emu:
                rt = loop.run_until_complete(_runtime(emu, venue, symbol, warm, frames))
        finally:
            loop.close()
        rows, nact = st["rows"], st["nact"]
        a, r = stage_table(rows), stage_table(rows, nact > 0)
        gap = np.diff(rows[:, 0], prepend=rows[0, 0] - IDLE_NS)
        b2b, idle = stage_table(rows, gap < IDLE_NS), stage_table(rows, gap >= IDLE_NS)
        p = pcts_us(rt["lat"])
        all_t.append(a)
        req_t.append(r)
        b2b_t.append(b2b)
        idle_t.append(idle)
        rt_t.append({"total": p})
        if k == 0:
            requoted = int((nact > 0).sum())
        runs.append(
            {
                "stages_us": a,
                "stages_requote_us": r,
                "stages_back_to_back_us": b2b,
                "stages_after_idle_us": idle,
                "runtime_us": p,
                "requoted": int((nact > 0).sum()),
                "actions": int(nact.sum()),
                "gc_collections": {"stages": st["gc_collections"], "runtime": rt["gc_collections"]},
                "runtime_quotes": rt["quotes"],
                "runtime_fills": rt["fills"],
                "encoder": st["encoder"],
            }
        )
    notes = {
        "clock": "time.time_ns (CLOCK_REALTIME: the runtime's own local_ns); 6 stamps per frame",
        "gc": "enabled, start-up objects frozen (gc.freeze) before connecting; collections counted per run",
        "strategy": "defaults, quoting.requote_always = true (a full quote cycle per event)",
        "tick": st["tick"],
        "lot": st["lot"],
    }
    return LiveBenchResult(
        venue=venue,
        symbol=symbol,
        store=str(store),
        speed=speed,
        frames=frames,
        warmup=warm,
        repeat=repeat,
        requoted=requoted,
        stages_all=_median_tables(all_t),
        stages_requote=_median_tables(req_t),
        stages_back_to_back=_median_tables(b2b_t),
        stages_after_idle=_median_tables(idle_t),
        runtime=_median_tables(rt_t)["total"],
        runs=runs,
        notes=notes,
    )
