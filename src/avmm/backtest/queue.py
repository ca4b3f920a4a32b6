"""Queue position of our resting orders (``ahead`` = size queued in front of an order).

* joining a price: ``ahead`` = the visible size there -- the best level's size (L1), the depth
  level's size (L2), 0 when the order improves the best price; behind the best on L1 data the
  level's size is unknown: ``l1_queue_fraction`` x the last size seen at that price while it was
  the best (``l1_unknown_queue = "front"`` is fraction 0; never seen = 0, i.e. front);
* a trade at the order's price advances it by the trade size (``exchange.py``);
* a size decrease at the order's price not explained by trades there: risk-averse -- ignored;
  probabilistic -- the part ``f(a) / (f(a) + f(b))`` is taken from ahead (a = ahead, b = behind,
  f(x) = x**n for ``prob-power``, log(1 + x) for ``prob-log``), the rest from behind; ``ahead``
  never exceeds the visible size.

The L2 depth book is an exact price -> size map per side: an open-addressing hash table keyed by
tick index (Fibonacci hashing, linear probing, backward-shift deletion; a level of size 0 is
deleted), grown by the runner when half full, so a level is never lost to another and a level the
book does not hold is empty. The L1 "last size seen" guesses live in a small direct-mapped cache
(``NCACHE`` slots a side; a miss means never seen). Both are set up by ``state.new_cache``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from avmm.backtest.state import EMPTY_KEY, NCACHE
from avmm.jit import NJIT, NJIT_INLINE

# queue models
QM_RISK_AVERSE = 0
QM_POWER = 1
QM_LOG = 2
QUEUE_MODELS = {"risk-averse": QM_RISK_AVERSE, "prob-power": QM_POWER, "prob-log": QM_LOG}


@njit(**NJIT_INLINE)
def tick_index(px, tick):
    return np.int64(math.floor(px / tick + 0.5))


@njit(**NJIT_INLINE)
def cache_get(keys, vals, row, key):
    j = key & (NCACHE - 1)
    if keys[row, j] == key:
        return vals[row, j]
    return math.nan


@njit(**NJIT_INLINE)
def cache_put(keys, vals, row, key, v):
    j = key & (NCACHE - 1)
    keys[row, j] = key
    vals[row, j] = v


_FIB = np.uint64(0x9E3779B97F4A7C15)


@njit(**NJIT_INLINE)
def _slot(key, shift):
    return np.int64((np.uint64(key) * _FIB) >> np.uint64(shift))


@njit(**NJIT_INLINE)
def depth_get(bs, keys, vals, row, key):
    """The size at tick index ``key`` on side ``row`` (0 bids, 1 asks) of the depth book; NaN
    when the book does not hold the level."""
    mask = keys.shape[1] - 1
    j = _slot(key, bs.d_shift)
    while True:
        k = keys[row, j]
        if k == key:
            return vals[row, j]
        if k == EMPTY_KEY:
            return math.nan
        j = (j + 1) & mask


@njit(**NJIT)
def _depth_delete(bs, keys, vals, row, j):
    """Remove slot ``j`` and shift the entries after it back (no tombstones)."""
    mask = keys.shape[1] - 1
    shift = bs.d_shift
    bs.d_n[row] -= 1
    i = j
    while True:
        keys[row, i] = EMPTY_KEY
        k = (i + 1) & mask
        while True:
            kk = keys[row, k]
            if kk == EMPTY_KEY:
                return
            h = _slot(kk, shift)
            # the entry at k may fill the hole at i unless its home h lies cyclically in (i, k]
            stays = (i < h <= k) if i <= k else (h > i or h <= k)
            if not stays:
                break
            k = (k + 1) & mask
        keys[row, i] = kk
        vals[row, i] = vals[row, k]
        i = k


@njit(**NJIT_INLINE)
def depth_put(bs, keys, vals, row, key, v):
    """Set the level at tick index ``key`` to size ``v`` (0 removes it). The caller makes sure
    the table has room (``bs.d_n[row] < bs.d_limit``)."""
    mask = keys.shape[1] - 1
    j = _slot(key, bs.d_shift)
    while True:
        k = keys[row, j]
        if k == key:
            if v > 0.0:
                vals[row, j] = v
            else:
                _depth_delete(bs, keys, vals, row, j)
            return
        if k == EMPTY_KEY:
            if v > 0.0:
                keys[row, j] = key
                vals[row, j] = v
                bs.d_n[row] += 1
            return
        j = (j + 1) & mask


@njit(**NJIT)
def depth_clear(bs, keys):
    for r in range(2):
        for j in range(keys.shape[1]):
            keys[r, j] = EMPTY_KEY
        bs.d_n[r] = 0


@njit(**NJIT)
def depth_rehash(bstate, old_keys, old_vals, keys, vals):
    """Move every level of ``old_*`` into the (larger, empty) ``keys``/``vals`` whose geometry
    ``bstate`` already describes, and the L1 cache rows as they are."""
    bs = bstate[0]
    for r in range(2, 4):
        for j in range(NCACHE):
            keys[r, j] = old_keys[r, j]
            vals[r, j] = old_vals[r, j]
    for r in range(2):
        bs.d_n[r] = 0
        for j in range(old_keys.shape[1]):
            k = old_keys[r, j]
            if k != EMPTY_KEY:
                depth_put(bs, keys, vals, r, k, old_vals[r, j])


@njit(**NJIT_INLINE)
def visible_at(bp, bs, keys, vals, side, px):
    """Visible size at our price: (size, known)."""
    if bs.use_depth != 0:
        v = depth_get(bs, keys, vals, 0 if side > 0 else 1, tick_index(px, bp.tick))
        if math.isnan(v):
            return 0.0, True  # a level the depth book does not hold is empty
        return v, True
    if side > 0:
        if bs.has_book != 0 and px == bs.bid:
            return bs.bid_qty, True
        if bs.has_book == 0 or px > bs.bid:
            return 0.0, True
    else:
        if bs.has_book != 0 and px == bs.ask:
            return bs.ask_qty, True
        if bs.has_book == 0 or px < bs.ask:
            return 0.0, True
    return math.nan, False


@njit(**NJIT_INLINE)
def join_queue(bp, bs, keys, vals, od):
    v, known = visible_at(bp, bs, keys, vals, od.side, od.px)
    od.traded = 0.0
    if known:
        od.ahead = v
        od.last_qty = v
    else:  # L1, behind the best: a fraction of the last size seen there (0 = front)
        seen = cache_get(keys, vals, 2 if od.side > 0 else 3, tick_index(od.px, bp.tick))
        od.ahead = 0.0 if math.isnan(seen) else bp.l1_fraction * seen
        od.last_qty = math.nan


@njit(**NJIT_INLINE)
def _qf(model, power, x):
    if model == QM_LOG:
        return math.log1p(x)
    if power == 2.0:  # the default: no pow() call
        return x * x
    return x**power


@njit(**NJIT_INLINE)
def size_update(bp, od, v):
    """The visible size at the order's price is now ``v``."""
    if math.isnan(od.last_qty):
        if od.ahead > v:
            od.ahead = v
        od.last_qty = v
        od.traded = 0.0
        return
    chg = od.last_qty - v - od.traded
    if chg > 0.0 and bp.queue_model != QM_RISK_AVERSE and od.ahead > 0.0:
        front = od.ahead
        back = od.last_qty - od.traded - front
        if back < 0.0:
            back = 0.0
        ff = _qf(bp.queue_model, bp.queue_power, front)
        fb = _qf(bp.queue_model, bp.queue_power, back)
        share = ff / (ff + fb) if ff + fb > 0.0 else 1.0
        est = front - share * chg
        over = back - (1.0 - share) * chg  # what behind cannot absorb comes from ahead
        if over < 0.0:
            est += over
        od.ahead = est if est > 0.0 else 0.0
    if od.ahead > v:
        od.ahead = v
    od.last_qty = v
    od.traded = 0.0
