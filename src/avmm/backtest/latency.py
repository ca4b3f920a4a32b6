"""Latency between the strategy and the venue: the latency table (``latency_table``: constant,
normal, lognormal or recorded draws, cycled deterministically) and the rings that carry requests
to the venue and responses back, each stamped with its arrival time.
"""

from __future__ import annotations

from numba import njit

from avmm.backtest.state import QCAP, QMASK
from avmm.jit import NJIT, NJIT_INLINE  # noqa: F401  (NJIT_INLINE: inlined into the loop, no call)


@njit(**NJIT_INLINE)
def lat_draw(lat, i, col):
    return lat[i % lat.shape[0], col]


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
    ts = t + lat_draw(lat, bs.lat_j, 1)
    bs.lat_j += 1
    if ts < bs.last_response:
        ts = bs.last_response
    bs.last_response = ts
    tail = push_msg(rs, bs.rs_head, bs.rs_tail, ts, kind, oid, side, px, qty, fee)
    if tail == bs.rs_tail:
        bs.n_overflow += 1
    bs.rs_tail = tail
