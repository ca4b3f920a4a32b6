"""``avmm bench``: measure every stage of the quote cycle on a deterministic synthetic stream.

One run, four passes over the same stream, each on a fresh engine:

1. **cycle** -- each market-data call (``Engine.on_quote`` / ``on_trade``) timed from Python with
   ``time.perf_counter_ns``: the whole tick-to-quote cycle as the live runtime sees it;
2. **stages** -- the same replay with the core's stage clock on (``s.timed``): market update,
   estimator update, quote computation, decision / order diff, fill processing, each stamped inside
   the compiled code with CLOCK_MONOTONIC (~30 ns a stamp);
3. **throughput** -- the replay with no timers at all: market-data events per second of wall time,
   venue simulation (acks, fills) included;
4. **allocation** -- two replays of different lengths under ``tracemalloc`` after a warm-up, plus
   numba's own allocator counters: the difference in bytes retained (and in compiled-code
   allocations) over the difference in cycles is the steady-state cost per cycle.

The reference is a plain-Python function computing one A-S quote, timed the same way as pass 1 on
the same inputs; ``ratio_p50`` is the cycle's p50 over the reference's p50.
"""

from __future__ import annotations

import cProfile
import gc
import io
import math
import pstats
import resource
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from numba import carray, njit

from avmm.core.config import StrategyConfig
from avmm.core.engine import Engine
from avmm.core.entry import views
from avmm.core.state import (
    ACT_CANCEL,
    MK_DIFF,
    MK_ESTIM,
    MK_FILL,
    MK_MARKET,
    MK_QUOTE,
    MK_START,
    OS_LIVE,
)
from avmm.core.strategy import on_ack_rec, on_canceled_rec
from avmm.errors import UserError, require_memory
from avmm.jit import NJIT, bind, voidptr
from avmm.outputs import check_output, write_text

STAGES = ("market_update", "estimator_update", "quote_computation", "order_diff", "fill_processing")
PCTS = (50.0, 90.0, 99.0, 99.9)


# --- the synthetic stream ---------------------------------------------------------------------------


def bench_stream(n: int, seed: int = 1, tick: float = 0.01, trade_frac: float = 0.25):
    """Deterministic quotes and trades: a random-walk mid on the tick grid, 1-3 tick spreads,
    ~1 ms Poisson spacing; trades at or through the touch, depth ~ exponential."""
    rng = np.random.default_rng(seed)
    is_trade = rng.random(n) < trade_frac
    ts = (np.cumsum(rng.exponential(1e6, n)) + 1_700_000_000e9).astype(np.int64)
    steps = rng.choice(np.array([-1, 0, 0, 0, 1]), n) * (~is_trade)
    mid_ticks = 10_000 + np.cumsum(steps)
    half_ticks = rng.integers(1, 3, n)
    bid = (mid_ticks - half_ticks) * tick
    ask = (mid_ticks + half_ticks) * tick
    bq = rng.gamma(2.0, 0.5, n) + 0.001
    aq = rng.gamma(2.0, 0.5, n) + 0.001
    side = np.where(rng.random(n) < 0.5, 1, -1)
    depth_ticks = np.floor(rng.exponential(2.0, n))
    tpx = np.where(side > 0, ask + depth_ticks * tick, bid - depth_ticks * tick)
    tqty = rng.exponential(0.02, n) + 0.001
    return dict(
        is_trade=is_trade,
        ts=ts,
        bid=bid,
        ask=ask,
        bid_qty=bq,
        ask_qty=aq,
        trade_px=np.where(is_trade, tpx, 0.0),
        trade_qty=tqty,
        trade_side=side.astype(np.int64),
    )


def bench_config(requote: str = "always") -> StrategyConfig:
    """The engine config the bench runs: estimators on (sigma, A, k 'auto'), two levels a side."""
    return StrategyConfig.model_validate(
        {
            "model": {"kind": "as-rolling", "gamma": 0.1, "k": "auto", "tau_s": 60.0},
            "quoting": {"tick": 0.01, "lot": 0.001, "levels": 2, "size": 0.01, "requote_always": requote == "always"},
            "risk": {"max_position": 1.0},
            "estimators": {
                "vol_min_obs": 20,
                "intensity_fit_s": 1.0,
                "intensity_min_trades": 20,
                "intensity_window_s": 60.0,
            },
        }
    )


# --- the venue the bench talks to: instant acks, fills when a trade reaches a live order ----------


@njit(**NJIT)
def _venue_acks(addr, n):
    _, s_arr, o, a = views(addr)
    s = s_arr[0]
    for i in range(n):
        if a[i].kind == ACT_CANCEL:
            on_canceled_rec(s, o, a[i].oid)
        else:
            on_ack_rec(s, o, a[i].oid)


@njit(**NJIT)
def _venue_match(addr, fill_addr, px, qty, side):
    """A trade of ``side`` (aggressor) at ``px`` fills our best live order it reaches; the fill
    (oid, side, px, qty) goes to the float64[4] at ``fill_addr``. Returns 1 if filled."""
    _, _, o, _ = views(addr)
    fill = carray(voidptr(fill_addr), 4, np.float64)
    best = -1
    for i in range(o.shape[0]):
        od = o[i]
        if od.status != OS_LIVE or od.side != -side:
            continue
        crosses = (side > 0 and px >= od.px) or (side < 0 and px <= od.px)
        if crosses and (best < 0 or (side > 0 and od.px < o[best].px) or (side < 0 and od.px > o[best].px)):
            best = i
    if best < 0:
        return 0
    fill[0] = o[best].oid
    fill[1] = o[best].side
    fill[2] = o[best].px
    fill[3] = min(qty, o[best].leaves)
    return 1


@dataclass
class BenchResult:
    events: int
    quote_events: int
    cycle_ns: dict
    requote_cycle_ns: dict
    stages: dict
    cycles_per_s: float
    alloc_bytes_per_cycle: float
    alloc_transient_peak_bytes: int
    nrt_allocs_per_cycle: float
    peak_rss_bytes: int
    reference_ns: dict
    ratio_p50: float
    fills: int
    actions: int
    requote: str
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "events": self.events,
            "quote_events": self.quote_events,
            "cycle_ns": self.cycle_ns,
            "requote_cycle_ns": self.requote_cycle_ns,
            "stages": self.stages,
            "cycles_per_s": self.cycles_per_s,
            "alloc_bytes_per_cycle": self.alloc_bytes_per_cycle,
            "alloc_transient_peak_bytes": self.alloc_transient_peak_bytes,
            "nrt_allocs_per_cycle": self.nrt_allocs_per_cycle,
            "peak_rss_bytes": self.peak_rss_bytes,
            "reference_ns": self.reference_ns,
            "ratio_p50": self.ratio_p50,
            "fills": self.fills,
            "actions": self.actions,
            "requote": self.requote,
            "machine": self.extra,
        }


def _pcts(x: np.ndarray) -> dict:
    if x.size == 0:
        return {"p50": None, "p90": None, "p99": None, "p999": None, "max": None, "n": 0}
    v = np.percentile(x, PCTS)
    return {
        "p50": float(v[0]),
        "p90": float(v[1]),
        "p99": float(v[2]),
        "p999": float(v[3]),
        "max": float(x.max()),
        "n": int(x.size),
    }


def reference_as_quote(mid: float, q: float, gamma: float, sigma: float, k: float, tau_s: float):
    """A plain-Python A-S quote: the yardstick the cycle is compared with."""
    r = mid - q * gamma * sigma * sigma * tau_s
    half = 0.5 * (gamma * sigma * sigma * tau_s + 2.0 / gamma * math.log(1.0 + gamma / k))
    return r - half, r + half


def _lists(st: dict) -> tuple:
    """The stream as Python lists (what a feed handler would hand the engine), made before timing."""
    names = ("is_trade", "ts", "bid", "bid_qty", "ask", "ask_qty", "trade_px", "trade_qty", "trade_side")
    return tuple(st[k].tolist() for k in names)


def _replay(eng: Engine, lists: tuple, cyc: np.ndarray | None, marks: np.ndarray | None, fills_out: list):
    """Replay the stream through ``eng``. ``cyc``: per-event cycle ns (pass 1); ``marks``: per-event
    stage ns (pass 2). Returns the number of actions; appends the number of fills to fills_out."""
    on_quote, on_trade, on_fill = eng.on_quote, eng.on_trade, eng.on_fill
    s, addr = eng.state, eng.mem.address
    acks = partial(bind(_venue_acks, addr, 0), addr)
    fill = np.zeros(4)
    match = partial(bind(_venue_match, addr, int(fill.ctypes.data), 0.0, 0.0, 0), addr, int(fill.ctypes.data))
    tm = s["tmark"][0]
    is_trade, ts, bid, bq, ask, aq, tpx, tq, tside = lists
    pc = time.perf_counter_ns
    n_act = 0
    n_fill = 0
    requoted = s["n_requotes"]
    for i in range(len(ts)):
        nreq0 = requoted[0]
        if is_trade[i]:
            t0 = pc()
            n = on_trade(ts[i], tpx[i], tq[i], tside[i])
            t1 = pc()
        else:
            t0 = pc()
            n = on_quote(ts[i], bid[i], bq[i], ask[i], aq[i])
            t1 = pc()
        if cyc is not None:
            cyc[i, 0] = t1 - t0
            cyc[i, 1] = requoted[0] - nreq0
        if marks is not None and not is_trade[i]:
            marks[i, 0] = tm[MK_MARKET] - tm[MK_START]
            marks[i, 1] = tm[MK_ESTIM] - tm[MK_MARKET]
            if requoted[0] != nreq0:
                marks[i, 2] = tm[MK_QUOTE] - tm[MK_ESTIM]
                marks[i, 3] = tm[MK_DIFF] - tm[MK_QUOTE]
        n_act += n
        acks(n)
        if is_trade[i] and match(tpx[i], tq[i], tside[i]):
            n = on_fill(ts[i], int(fill[0]), int(fill[1]), fill[2], fill[3], 0.0)
            if marks is not None:
                marks[i, 4] = tm[MK_FILL] - tm[MK_START]
            n_act += n
            n_fill += 1
            acks(n)
    fills_out.append(n_fill)
    return n_act


def _traced(fn) -> tuple[int, int, int]:
    """Run ``fn`` under tracemalloc and numba's allocation counters.

    Returns (bytes retained, transient peak bytes, numba runtime allocations)."""
    from numba.core.runtime import _nrt_python as nrt  # type: ignore[attr-defined]

    nrt_was = nrt.memsys_stats_enabled()
    nrt.memsys_enable_stats()
    nrt0 = nrt.memsys_get_stats_alloc()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    fn()
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    allocs = nrt.memsys_get_stats_alloc() - nrt0
    if not nrt_was:
        nrt.memsys_disable_stats()
    return after - before, peak - before, allocs


# What one event costs at the bench's peak, from what it allocates: the stream's arrays (eight
# float64 / int64 and a bool); its values as Python lists, one replay's worth at a time (a pointer
# per list, an int for the time -- 40 bytes with the allocator's rounding -- and six floats); the
# cycle and stage timings (2 + 5 int64); the quote-cycle selections (two int64 at most).
STREAM_BYTES = 8 * 8 + 1
LIST_BYTES = 9 * 8 + 40 + 6 * 24
BYTES_PER_EVENT = STREAM_BYTES + LIST_BYTES + (2 + 5) * 8 + 2 * 8


def memory_bytes(events: int) -> int:
    """What :func:`run_bench` allocates at its peak for ``events`` events (see ``BYTES_PER_EVENT``)."""
    return events * BYTES_PER_EVENT


def _check_args(events: int, seed: int, requote: str, profile: str | None) -> None:
    """The bench's arguments, before anything is allocated (one-line ``UserError``)."""
    if events < 1000:
        raise UserError(f"--events {events}: must be at least 1000")
    require_memory(memory_bytes(events), f"--events {events}")
    if seed < 0:
        raise UserError(f"--seed {seed}: must be >= 0")
    if requote not in ("always", "triggers"):
        raise UserError(f"--requote {requote!r}: expected 'always' or 'triggers'")
    if profile:
        check_output(profile, "--profile")


def _allocation_pass(st: dict, warm: int, fresh) -> tuple[float, float, int]:
    """Pass 4: two traced replays of different lengths after the same warm-up; the difference in
    retained bytes over the difference in cycles is the steady-state cost per cycle, free of the
    replay's constant set-up (callables, counters). Returns (bytes per cycle, compiled-code
    allocations per cycle, transient peak bytes)."""
    events = len(st["ts"])
    head = _lists({k: v[:warm] for k, v in st.items()})
    short_n = (events - warm) // 2
    grown = []
    for n_run in (short_n, events - warm):
        run = _lists({k: v[warm : warm + n_run] for k, v in st.items()})
        eng4 = fresh()
        _replay(eng4, head, None, None, [])
        grown.append((n_run, *_traced(lambda e=eng4, r=run: _replay(e, r, None, None, []))))
        del run  # before the next one is made
    (n1, b1, p1, a1), (n2, b2, p2, a2) = grown
    return (b2 - b1) / (n2 - n1), (a2 - a1) / (n2 - n1), max(p1, p2)


def _reference(st: dict) -> np.ndarray:
    """The plain-Python reference quote timed on every mid of the stream, ns."""
    events = len(st["ts"])
    ref = np.zeros(events, dtype=np.int64)
    mids = (0.5 * (st["bid"] + st["ask"])).tolist()
    pc = time.perf_counter_ns
    f = reference_as_quote
    for i in range(events):
        t0r = pc()
        f(mids[i], 0.0, 0.1, 0.05, 50.0, 60.0)
        ref[i] = pc() - t0r
    return ref


def run_bench(
    events: int = 200_000, seed: int = 1, requote: str = "always", profile: str | None = None, progress=None
) -> BenchResult:
    """Run the four passes and the reference over ``events`` synthetic events (see the module).

    ``profile``: a file for the cProfile report of pass 1 (written atomically). Raises ``UserError``
    for fewer than 1000 events, more than the machine's memory holds (checked before anything is
    allocated), a negative seed or an unknown ``requote``."""
    _check_args(events, seed, requote, profile)
    cfg = bench_config(requote)
    st = bench_stream(events, seed)
    warm = min(events // 10, 20_000)

    def fresh() -> Engine:
        return Engine(cfg)

    say = progress or (lambda msg: None)
    gc_was = gc.isenabled()
    gc.disable()  # the engine creates no garbage; keep collector pauses out of the percentiles
    try:
        # warm-up: compile and touch every path
        say("warm-up")
        _replay(fresh(), _lists({k: v[:2000] for k, v in st.items()}), None, None, [])
        lists = _lists(st)

        say("pass 1/4: cycle latency")
        cyc = np.zeros((events, 2), dtype=np.int64)
        fills: list = []
        eng = fresh()
        prof = cProfile.Profile() if profile else None
        if prof:
            prof.enable()
        n_act = _replay(eng, lists, cyc, None, fills)
        if prof:
            prof.disable()
        quote_mask = ~st["is_trade"]
        cycle = cyc[warm:, 0][quote_mask[warm:]]
        req_cycle = cyc[warm:, 0][(quote_mask & (cyc[:, 1] > 0))[warm:]]

        say("pass 2/4: stage latency")
        marks = np.full((events, 5), -1, dtype=np.int64)
        eng2 = fresh()
        eng2.state["timed"] = 1
        _replay(eng2, lists, None, marks, [])
        stages = {}
        for j, name in enumerate(STAGES):
            col = marks[warm:, j]
            stages[name] = _pcts(col[col >= 0])

        say("pass 3/4: throughput")
        eng3 = fresh()
        t0 = time.perf_counter()
        _replay(eng3, lists, None, None, [])
        wall = time.perf_counter() - t0

        del lists  # one replay's lists at a time: pass 4 makes its own

        say("pass 4/4: allocation")
        alloc_per_cycle, nrt_per_cycle, transient_peak = _allocation_pass(st, warm, fresh)

        # the reference, timed like pass 1, on the same mids
        say("reference")
        ref = _reference(st)[warm:]
    finally:
        if gc_was:
            gc.enable()

    if prof:
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(40)
        write_text(str(profile), buf.getvalue(), "--profile")

    cyc_p = _pcts(cycle)
    ref_p = _pcts(ref)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_rss = maxrss * (1 if sys.platform == "darwin" else 1024)
    return BenchResult(
        events=events,
        quote_events=int(quote_mask.sum()),
        cycle_ns=cyc_p,
        requote_cycle_ns=_pcts(req_cycle),
        stages=stages,
        cycles_per_s=events / wall,
        alloc_bytes_per_cycle=alloc_per_cycle,
        alloc_transient_peak_bytes=int(transient_peak),
        nrt_allocs_per_cycle=nrt_per_cycle,
        peak_rss_bytes=int(peak_rss),
        reference_ns=ref_p,
        ratio_p50=cyc_p["p50"] / ref_p["p50"],
        fills=fills[0],
        actions=n_act,
        requote=requote,
        extra={"python": sys.version.split()[0], "warmup_events": warm},
    )
