"""An exact price -> size book of depth levels, for the signals' view beyond the touch.

One row per side of two preallocated arrays: ``key`` (the price, negated on the ask side, so that
both rows are sorted ascending and the best level is the last) and ``qty``; ``n[side]`` levels in
use (side 0 bids, 1 asks). Updates are Binance-style absolute sizes at a price (0 removes the
level). A level is found by binary search and the rows shift only the levels better than it, so an
update near the touch -- where almost all of them are -- moves a few elements. When a row is full, the
worst level is dropped (counted by the caller through the return value): the best levels, the only
ones read, stay exact.
"""

from __future__ import annotations

import math

from numba import njit

from avmm.jit import NJIT, NJIT_INLINE


@njit(**NJIT)
def depth_set(key, qty, n, side, px, q):
    """Set the size at ``px`` on ``side`` (0 bids, 1 asks) to ``q`` (0 removes it). Returns 0, or 1
    when the level could not be kept (a bad row, or a full row and ``px`` worse than every level
    kept; the worst level is dropped for a better one)."""
    if not (px > 0.0 and q >= 0.0) or math.isinf(px) or math.isinf(q):
        return 1
    k = px if side == 0 else -px
    row_k = key[side]
    row_q = qty[side]
    m = n[side]
    lo = 0
    hi = m
    while lo < hi:
        mid = (lo + hi) >> 1
        if row_k[mid] < k:
            lo = mid + 1
        else:
            hi = mid
    if lo < m and row_k[lo] == k:
        if q > 0.0:
            row_q[lo] = q
            return 0
        for i in range(lo, m - 1):  # remove: the better levels move down one
            row_k[i] = row_k[i + 1]
            row_q[i] = row_q[i + 1]
        n[side] = m - 1
        return 0
    if q == 0.0:
        return 0  # removing a level not kept: nothing to do
    cap = row_k.shape[0]
    if m == cap:
        if lo == 0:
            return 1  # worse than every level kept in a full row
        for i in range(lo - 1):  # drop the worst; the worse levels move down one
            row_k[i] = row_k[i + 1]
            row_q[i] = row_q[i + 1]
        row_k[lo - 1] = k
        row_q[lo - 1] = q
        return 1
    for i in range(m, lo, -1):  # insert: the better levels move up one
        row_k[i] = row_k[i - 1]
        row_q[i] = row_q[i - 1]
    row_k[lo] = k
    row_q[lo] = q
    n[side] = m + 1
    return 0


@njit(**NJIT_INLINE)
def depth_clear(n):
    n[0] = 0
    n[1] = 0


@njit(**NJIT_INLINE)
def depth_below(key, qty, n, side, touch_px, out_px, out_qty, levels):
    """The best ``levels`` levels of ``side`` strictly worse than ``touch_px`` (the touch from the
    quote stream, fresher than the depth diffs) into ``out_px`` / ``out_qty``; returns how many."""
    t = touch_px if side == 0 else -touch_px
    row_k = key[side]
    row_q = qty[side]
    j = 0
    i = n[side] - 1
    while i >= 0 and j < levels:
        k = row_k[i]
        if k < t:
            out_px[j] = k if side == 0 else -k
            out_qty[j] = row_q[i]
            j += 1
        i -= 1
    return j
