"""Latency between the strategy and the venue: the latency table (``latency_table``: constant,
normal, lognormal or recorded draws, cycled deterministically) and the rings that carry requests
to the venue and responses back, each stamped with its arrival time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit

from avmm.backtest.config import BacktestConfig
from avmm.backtest.state import QCAP, QMASK
from avmm.errors import UserError
from avmm.jit import NJIT_INLINE


@njit(**NJIT_INLINE)
def lat_next(i, lat):
    """The next row of the latency table after row ``i``, cycling (a compare, not a division)."""
    i += 1
    return 0 if i >= lat.shape[0] else i


@njit(**NJIT_INLINE)
def push_msg(ring, head, tail, ts, kind, oid, side, px, qty, fee):
    """Append to a ring; returns the new tail (unchanged when full)."""
    if tail - head >= QCAP:
        return tail
    m = ring[tail & QMASK]
    m.ts = ts
    m.kind = kind
    m.oid = oid
    m.side = side
    m.px = px
    m.qty = qty
    m.fee = fee
    return tail + 1


@njit(**NJIT_INLINE)
def respond(bs, lat, rs, t, kind, oid, side, px, qty, fee):
    """Queue a response to the strategy, delivered after the response latency (FIFO)."""
    ts = t + lat[bs.lat_j, 1]
    bs.lat_j = lat_next(bs.lat_j, lat)
    if ts < bs.last_response:
        ts = bs.last_response
    bs.last_response = ts
    tail = push_msg(rs, bs.rs_head, bs.rs_tail, ts, kind, oid, side, px, qty, fee)
    if tail == bs.rs_tail:
        bs.n_overflow += 1
    bs.rs_tail = tail


def latency_table(b: BacktestConfig) -> np.ndarray:
    """(n, 2) int64 ns: entry and response latencies, used cyclically (deterministic)."""
    e, r = b.entry_latency_ms * 1e6, b.response_latency_ms * 1e6
    if b.latency_model == "constant":
        return np.array([[round(e), round(r)]], dtype=np.int64)
    if b.latency_model == "recorded":
        path = Path(b.latency_file or "")
        try:
            if path.suffix == ".npy":
                arr = np.load(path)
            else:
                arr = np.loadtxt(
                    path, delimiter=",", ndmin=2, comments="#", skiprows=1 if not path.read_text()[:1].isdigit() else 0
                )
        except (OSError, ValueError) as ex:
            raise UserError(f"backtest.latency_file {str(path)!r}: cannot read latencies ({ex})") from None
        arr = np.asarray(arr)
        if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] == 0 or not np.isfinite(arr).all() or (arr < 0).any():
            raise UserError(f"backtest.latency_file {str(path)!r}: expected rows of entry_ns,response_ns >= 0")
        return np.ascontiguousarray(np.round(arr).astype(np.int64))
    rng = np.random.default_rng(b.latency_seed)
    n = 1 << 16
    if b.latency_model == "normal":
        z = rng.standard_normal((n, 2))
        lat = np.array([e, r]) * (1.0 + b.latency_jitter * z)
    else:  # lognormal, median = the configured latency
        lat = np.array([e, r]) * np.exp(b.latency_jitter * rng.standard_normal((n, 2)))
    return np.round(np.maximum(lat, 0.0)).astype(np.int64)
