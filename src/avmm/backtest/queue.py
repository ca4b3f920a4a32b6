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

Visible sizes per price live in small caches keyed by tick index (``new_cache``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from avmm.backtest.state import NCACHE
from avmm.jit import NJIT_INLINE

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


@njit(**NJIT_INLINE)
def visible_at(bp, bs, keys, vals, side, px):
    """Visible size at our price: (size, known)."""
    if bs.use_depth != 0:
        v = cache_get(keys, vals, 0 if side > 0 else 1, tick_index(px, bp.tick))
        if math.isnan(v):
            return 0.0, True  # a level missing from the depth book is empty
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
