"""Deterministic synthetic sessions: the built-in default data for demos, benchmarks and tests.

Model (all deterministic in ``seed``; output bytes do not depend on ``chunk``):

* events arrive as a Poisson process of rate ``quote_rate + trade_rate`` per second; each is a
  trade with probability ``trade_rate / (quote_rate + trade_rate)``, else a quote update;
* the mid is a Brownian motion, ``dmid = sigma dW`` (``sigma`` in price units per sqrt(second)),
  sampled at the event times;
* quotes lie on the tick grid around the mid with a spread of 1 tick (80 %), 2 (15 %) or 3 (5 %);
  bid and ask sizes are log-normal on the lot grid and change on every update;
* a trade has a uniformly random aggressor side; its *reach* from the displayed mid (of the last
  quote) is exponential with rate ``k``, so trades reaching depth ``delta`` from the mid on one side
  arrive with intensity ``A * exp(-k * delta)`` where ``A = trade_rate / 2``. The printed price is
  the reach rounded outward to the tick, and never better than the displayed best price (buys at
  or above the ask, sells at or below the bid);
* ``local_ts = exch_ts + latency`` (200 us + exponential with mean 300 us), kept non-decreasing.

The true ``sigma``, ``A`` and ``k`` are recorded in the store's metadata (``true_sigma``,
``true_A``, ``true_k``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from avmm.events import BUY, EVENT_DTYPE, F_EXCH_TS, QUOTE, SELL, TRADE

DEFAULT_EVENTS = 1_000_000
DEFAULT_SEED = 7
START_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
SYNTH_VERSION = 1

# (parameter, lowest, highest): prices and sizes the grid arithmetic (int64 ticks and lots) and the
# ns clock can hold
LIMITS = (
    ("mid", 1e-9, 1e12),
    ("tick", 1e-12, 1e9),
    ("lot", 1e-12, 1e12),
    ("sigma", 0.0, 1e9),
    ("quote_rate", 1e-9, 1e9),
    ("trade_rate", 1e-9, 1e9),
    ("k", 1e-12, 1e12),
    ("size", 1e-12, 1e12),
    ("trade_size", 1e-12, 1e12),
)


def _params(**kw: Any) -> dict[str, Any]:
    p = dict(
        mid=100.0,
        tick=0.01,
        lot=0.001,
        sigma=0.05,
        quote_rate=10.0,
        trade_rate=2.0,
        k=40.0,
        size=1.0,
        trade_size=0.1,
        start_ns=START_NS,
    )
    for key, v in kw.items():
        if key not in p:
            raise TypeError(f"synth: unknown parameter {key!r}")
        if v is not None:
            p[key] = v
    for key in ("tick", "lot", "quote_rate", "trade_rate", "k", "size", "trade_size", "mid"):
        if not (p[key] > 0 and np.isfinite(p[key])):
            raise ValueError(f"synth: {key} must be positive, got {p[key]}")
    if not (p["sigma"] >= 0 and np.isfinite(p["sigma"])):
        raise ValueError(f"synth: sigma must be >= 0, got {p['sigma']}")
    for key, lo, hi in LIMITS:
        if not lo <= p[key] <= hi:
            raise ValueError(f"synth: {key} must be between {lo:g} and {hi:g}, got {p[key]:g}")
    for key, unit in (("mid", "tick"), ("size", "lot"), ("trade_size", "lot")):
        if p[key] / p[unit] >= 2.0**52:
            raise ValueError(f"synth: {key} / {unit} must be below 2**52 (exact on the grid), got {p[key] / p[unit]:g}")
    return p


def check_span(events: int, quote_rate: float, trade_rate: float, start_ns: int = START_NS) -> None:
    """``ValueError`` if ``events`` at these rates would run the clock past int64 ns (year 2262):
    the expected span with a wide margin (10 standard deviations of the Poisson clock)."""
    rate = quote_rate + trade_rate
    span_s = (events + 10.0 * math.sqrt(events) + 10.0) / rate
    room_s = (np.iinfo(np.int64).max - start_ns) / 1e9 - 1.0  # latencies: well under a second
    if span_s > room_s:
        raise ValueError(
            f"synth: {events} events at {rate:g} a second would span {span_s / 3.15576e7:.3g} years, "
            f"past the int64 ns clock (at most {room_s / 3.15576e7:.0f} years from the start)"
        )


def store_bytes(events: int) -> int:
    """The size of a synthetic store of ``events`` rows (uncompressed columns, ``EVENT_DTYPE``, and
    the pages' overhead: about 72 bytes a row, measured)."""
    return events * (EVENT_DTYPE.itemsize + 8) + (64 << 10)


def generate(
    events: int,
    seed: int,
    *,
    chunk: int = 1 << 20,
    mid: float | None = None,
    tick: float | None = None,
    lot: float | None = None,
    sigma: float | None = None,
    quote_rate: float | None = None,
    trade_rate: float | None = None,
    k: float | None = None,
    size: float | None = None,
    trade_size: float | None = None,
    start_ns: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield ``EVENT_DTYPE`` chunks (at most ``chunk`` rows) of a synthetic session."""
    p = _params(
        mid=mid,
        tick=tick,
        lot=lot,
        sigma=sigma,
        quote_rate=quote_rate,
        trade_rate=trade_rate,
        k=k,
        size=size,
        trade_size=trade_size,
        start_ns=start_ns,
    )
    events = int(events)
    if events < 0:
        raise ValueError("synth: events must be >= 0")
    check_span(events, p["quote_rate"], p["trade_rate"], int(p["start_ns"]))
    ss = np.random.SeedSequence(int(seed))
    g_dt, g_kind, g_z, g_spr, g_bsz, g_asz, g_reach, g_side, g_tsz, g_lat = (
        np.random.Generator(np.random.PCG64(s)) for s in ss.spawn(10)
    )
    tick_ = p["tick"]
    inv_tick = 1.0 / tick_
    inv_tick_int = round(inv_tick) if abs(inv_tick - round(inv_tick)) < 1e-9 else None
    lot_ = p["lot"]
    inv_lot_int = round(1.0 / lot_) if abs(1.0 / lot_ - round(1.0 / lot_)) < 1e-9 else None
    rate = p["quote_rate"] + p["trade_rate"]
    p_trade = p["trade_rate"] / rate
    k_ = p["k"]
    mid_now = p["mid"]
    t_now = 0.0  # seconds since start (float accumulation only used for ns rounding below)
    t_ns = int(p["start_ns"])
    last_local = np.iinfo(np.int64).min
    seq0 = 0
    log_size = np.log(p["size"] / lot_)
    log_tsize = np.log(p["trade_size"] / lot_)

    def on_grid(n_units: np.ndarray, inv_int: int | None, unit: float) -> np.ndarray:
        return n_units / inv_int if inv_int else n_units * unit

    last_bid = last_ask = None  # the displayed quote (ticks) carried across chunks
    done = 0
    while done < events:
        n = min(chunk, events - done)
        dt = g_dt.standard_exponential(n) / rate  # seconds
        dt_ns = np.maximum(np.rint(dt * 1e9).astype(np.int64), 1)
        exch = t_ns + np.cumsum(dt_ns)
        t_ns = int(exch[-1])
        is_trade = g_kind.random(n) < p_trade
        z = g_z.standard_normal(n)
        mids = mid_now + np.cumsum(p["sigma"] * np.sqrt(dt) * z)
        mid_now = float(mids[-1])
        u = g_spr.random(n)
        spread = np.where(u < 0.80, 1, np.where(u < 0.95, 2, 3)).astype(np.int64)
        bid_t = np.floor(mids * inv_tick - spread / 2.0).astype(np.int64)
        ask_t = bid_t + spread
        bsz = np.maximum(np.rint(np.exp(log_size + 0.5 * g_bsz.standard_normal(n))), 1.0)
        asz = np.maximum(np.rint(np.exp(log_size + 0.5 * g_asz.standard_normal(n))), 1.0)
        reach = g_reach.standard_exponential(n) / k_
        side = np.where(g_side.random(n) < 0.5, BUY, SELL).astype(np.int8)
        tsz = np.maximum(np.rint(np.exp(log_tsize + 0.7 * g_tsz.standard_normal(n))), 1.0)
        lat = 200_000 + np.rint(g_lat.standard_exponential(n) * 300_000).astype(np.int64)

        # trades hit the *displayed* quote: the last quote update at or before the trade
        qpos = np.where(is_trade, -1, np.arange(n))
        qpos = np.maximum.accumulate(qpos)
        cur_bid = np.where(qpos >= 0, bid_t[np.maximum(qpos, 0)], last_bid if last_bid is not None else bid_t)
        cur_ask = np.where(qpos >= 0, ask_t[np.maximum(qpos, 0)], last_ask if last_ask is not None else ask_t)
        qmid = (cur_bid + cur_ask) * 0.5  # in ticks
        buy_t = np.maximum(cur_ask, np.ceil(qmid + reach * inv_tick - 1e-9).astype(np.int64))
        sell_t = np.minimum(cur_bid, np.floor(qmid - reach * inv_tick + 1e-9).astype(np.int64))
        trade_t = np.where(side == BUY, buy_t, sell_t)
        if (~is_trade).any():
            lq = int(np.flatnonzero(~is_trade)[-1])
            last_bid, last_ask = int(bid_t[lq]), int(ask_t[lq])

        ev = np.zeros(n, dtype=EVENT_DTYPE)
        ev["exch_ts"] = exch
        local = exch + lat
        local[0] = max(int(local[0]), last_local)
        local = np.maximum.accumulate(local)
        last_local = int(local[-1])
        ev["local_ts"] = local
        ev["seq"] = seq0 + 1 + np.arange(n, dtype=np.int64)
        seq0 += n
        ev["kind"] = np.where(is_trade, TRADE, QUOTE)
        ev["flags"] = F_EXCH_TS
        ev["level"] = -1
        bid_px = on_grid(bid_t.astype(np.float64), inv_tick_int, tick_)
        ask_px = on_grid(ask_t.astype(np.float64), inv_tick_int, tick_)
        trade_px = on_grid(trade_t.astype(np.float64), inv_tick_int, tick_)
        q = ~is_trade
        ev["px"] = np.where(q, bid_px, trade_px)
        ev["qty"] = on_grid(np.where(q, bsz, tsz), inv_lot_int, lot_)
        ev["px2"] = np.where(q, ask_px, 0.0)
        ev["qty2"] = np.where(q, on_grid(asz, inv_lot_int, lot_), 0.0)
        ev["side"] = np.where(is_trade, side, 0)
        done += n
        t_now += float(dt.sum())
        yield ev


def synth_meta(events: int, seed: int, **kw: Any) -> dict[str, Any]:
    """The store metadata of a synthetic session (its parameters and true model values)."""
    p = _params(**{k_: v for k_, v in kw.items() if k_ != "chunk"})
    return {
        "symbol": "SYNTH",
        "source": "synth",
        "synth_version": SYNTH_VERSION,
        "tick_size": p["tick"],
        "lot_size": p["lot"],
        "seed": int(seed),
        "events": int(events),
        "mid0": p["mid"],
        "true_sigma": p["sigma"],
        "true_A": p["trade_rate"] / 2.0,
        "true_k": p["k"],
        "quote_rate": p["quote_rate"],
        "trade_rate": p["trade_rate"],
        "size": p["size"],
        "trade_size": p["trade_size"],
        "start_ns_param": int(p["start_ns"]),
    }


def write_synth(
    path: Path | str, events: int = DEFAULT_EVENTS, seed: int = DEFAULT_SEED, *, flag: str = "", **kw: Any
) -> int:
    """Generate a synthetic session straight into a store at ``path`` (written atomically; ``flag``
    names it in messages); returns rows written."""
    from avmm.data.store import write_events

    meta = synth_meta(events, seed, **kw)
    return write_events(path, generate(events, seed, **kw), meta, flag=flag)


def cache_dir() -> Path:
    """``$AVMM_CACHE``, default ``~/.cache/avmm``."""
    d = os.environ.get("AVMM_CACHE")
    return Path(d) if d else Path.home() / ".cache" / "avmm"


def default_session_path() -> Path:
    """The built-in default session (1,000,000 events, seed 7), generated on first use.

    Cached in ``$AVMM_CACHE`` (default ``~/.cache/avmm``); written to a temporary file and renamed,
    so concurrent processes never see a half-written file.
    """
    d = cache_dir()
    path = d / f"synth_v{SYNTH_VERSION}_{DEFAULT_EVENTS}_seed{DEFAULT_SEED}.parquet"
    if path.exists():
        return path
    d.mkdir(parents=True, exist_ok=True)
    write_synth(path, DEFAULT_EVENTS, DEFAULT_SEED)
    return path
