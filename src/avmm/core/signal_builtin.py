"""The built-in signals (``[signals.vamp]``, ``[signals.imbalance]``, ``[signals.flow]``,
``[signals.candles]``, ``[signals.dyn_gamma]``), on the user's API (``core/signal_api.py``): each
is an ``@njit`` function ``(ts_ns, v, params, st) -> (shift, spread_mult, skew_mult)`` reading its
own slots of ``params`` (the config's values, laid out by ``core/config.py``) and of ``st`` (its
state). ``builtin_signals`` calls those with a weight other than 0 and combines them: the shifts
add, the factors multiply. Units:

* ``vamp``: shift = weight * (VAMP - mid), a price. VAMP over L levels (the touch and L - 1 below
  it where the data has depth) = sum(bid_i * ask_qty_i + ask_i * bid_qty_i) / sum(bid_qty_i +
  ask_qty_i); at the touch it is the micro-price.
* ``imbalance``: I = (sum bid_qty_i - sum ask_qty_i) / (sum bid_qty_i + sum ask_qty_i) over L
  levels, in [-1, 1]; shift = weight * I * (ask - bid) / 2: at weight 1 a one-sided book moves the
  fair price by a half spread.
* ``flow``: the trades' buy and sell volumes (by aggressor), each decayed by exp(-dt / window_s);
  F = (buy - sell) / (buy + sell) in [-1, 1]; shift = weight * F * (ask - bid) / 2.
* ``candles``: volume-clocked bars of ``bar_volume`` base units, or (without it) of ``bar_trades``
  times the mean trade size so far (a bar closes at the trade that completes it; the rest of that
  trade starts the next; a trade completing several closes each at its price); momentum M = (close_0 - close_n) / n over
  the last n = ``bars`` bars, a price per bar; shift = weight * M (0 until n + 1 bars closed).
* ``dyn_gamma``: the mid's realised variance over a fast and a slow exponential window (sum of
  squared mid changes decayed by exp(-dt / T), over T); the inventory skew (proportional to gamma)
  times (sigma_fast / sigma_slow) ** weight, clipped to [1 / max_mult, max_mult]; 1 until
  ``slow_s`` has passed.
"""

from __future__ import annotations

import math

from numba import njit

from avmm.core.signal_api import (
    ASK,
    ASK_PX_L,
    ASK_QTY_L,
    BID,
    BID_PX_L,
    BID_QTY_L,
    KIND,
    MID,
    N_ASK_L,
    N_BID_L,
    TRADE_PX,
    TRADE_QTY,
    TRADE_SIDE,
)
from avmm.jit import NJIT_INLINE

# params slots (core/config.py fills them from the config)
P_VAMP_W = 0
P_VAMP_LEVELS = 1
P_IMB_W = 2
P_IMB_LEVELS = 3
P_FLOW_W = 4
P_FLOW_WINDOW_S = 5
P_CANDLE_W = 6
P_CANDLE_VOLUME = 7
P_CANDLE_BARS = 8
P_DYN_W = 9
P_DYN_FAST_S = 10
P_DYN_SLOW_S = 11
P_DYN_MAX = 12
P_CANDLE_TRADES = 13

MAX_BARS = 64
# state slots
S_FLOW_BUY = 0
S_FLOW_SELL = 1
S_FLOW_T = 2
S_CANDLE_VOL = 3  # volume in the open bar
S_CANDLE_N = 4  # bars closed
S_CANDLE_QSUM = 5  # all trades' volume and count: the mean trade size for bar_trades
S_CANDLE_QN = 6
S_CANDLE_RING = 8  # MAX_BARS + 1 closes, close k at S_CANDLE_RING + k % (MAX_BARS + 1)
S_DYN_FAST = 80
S_DYN_SLOW = 81
S_DYN_MID = 82
S_DYN_T = 83
S_DYN_T0 = 84
NS = 1e-9


@njit(**NJIT_INLINE)
def _levels(v, want):
    """How many levels both sides have, at most ``want``."""
    n = min(v[N_BID_L], v[N_ASK_L])
    return int(min(n, want))


@njit(**NJIT_INLINE)
def vamp(ts_ns, v, params, st):
    n = _levels(v, params[P_VAMP_LEVELS])
    num = 0.0
    den = 0.0
    for i in range(n):
        bq = v[BID_QTY_L + i]
        aq = v[ASK_QTY_L + i]
        num += v[BID_PX_L + i] * aq + v[ASK_PX_L + i] * bq
        den += bq + aq
    if not den > 0.0:
        return 0.0, 1.0, 1.0
    return params[P_VAMP_W] * (num / den - v[MID]), 1.0, 1.0


@njit(**NJIT_INLINE)
def imbalance(ts_ns, v, params, st):
    n = _levels(v, params[P_IMB_LEVELS])
    b = 0.0
    a = 0.0
    for i in range(n):
        b += v[BID_QTY_L + i]
        a += v[ASK_QTY_L + i]
    if not b + a > 0.0:
        return 0.0, 1.0, 1.0
    return params[P_IMB_W] * (b - a) / (b + a) * 0.5 * (v[ASK] - v[BID]), 1.0, 1.0


@njit(**NJIT_INLINE)
def flow(ts_ns, v, params, st):
    if v[KIND] == 2.0:
        t = ts_ns * NS
        if st[S_FLOW_T] > 0.0:
            d = math.exp(-(t - st[S_FLOW_T]) / params[P_FLOW_WINDOW_S])
            st[S_FLOW_BUY] *= d
            st[S_FLOW_SELL] *= d
        st[S_FLOW_T] = t
        side = v[TRADE_SIDE]
        if side > 0.0:
            st[S_FLOW_BUY] += v[TRADE_QTY]
        elif side < 0.0:
            st[S_FLOW_SELL] += v[TRADE_QTY]
    tot = st[S_FLOW_BUY] + st[S_FLOW_SELL]
    if not tot > 0.0:
        return 0.0, 1.0, 1.0
    f = (st[S_FLOW_BUY] - st[S_FLOW_SELL]) / tot
    return params[P_FLOW_W] * f * 0.5 * (v[ASK] - v[BID]), 1.0, 1.0


@njit(**NJIT_INLINE)
def candles(ts_ns, v, params, st):
    size = MAX_BARS + 1
    bars = int(params[P_CANDLE_BARS])
    if v[KIND] == 2.0:
        bar = params[P_CANDLE_VOLUME]
        if not bar > 0.0:
            st[S_CANDLE_QSUM] += v[TRADE_QTY]
            st[S_CANDLE_QN] += 1.0
            bar = params[P_CANDLE_TRADES] * st[S_CANDLE_QSUM] / st[S_CANDLE_QN]
        vol = st[S_CANDLE_VOL] + v[TRADE_QTY]
        if vol >= bar:
            closes = vol // bar  # a float: a tiny bar cannot overflow an integer
            vol -= closes * bar
            n = int(st[S_CANDLE_N])
            for _ in range(int(min(closes, size))):  # a trade closing many bars: each at its price
                st[S_CANDLE_RING + n % size] = v[TRADE_PX]
                n += 1
            st[S_CANDLE_N] = n + max(0.0, closes - size)
        st[S_CANDLE_VOL] = vol
    n = int(st[S_CANDLE_N])
    if n <= bars:
        return 0.0, 1.0, 1.0
    last = st[S_CANDLE_RING + (n - 1) % size]
    first = st[S_CANDLE_RING + (n - 1 - bars) % size]
    return params[P_CANDLE_W] * (last - first) / bars, 1.0, 1.0


@njit(**NJIT_INLINE)
def dyn_gamma(ts_ns, v, params, st):
    if v[KIND] == 1.0:
        t = ts_ns * NS
        m = v[MID]
        if st[S_DYN_T0] == 0.0:
            st[S_DYN_T0] = t
        elif t > st[S_DYN_T]:
            dt = t - st[S_DYN_T]
            dm = m - st[S_DYN_MID]
            st[S_DYN_FAST] = st[S_DYN_FAST] * math.exp(-dt / params[P_DYN_FAST_S]) + dm * dm
            st[S_DYN_SLOW] = st[S_DYN_SLOW] * math.exp(-dt / params[P_DYN_SLOW_S]) + dm * dm
        elif t == st[S_DYN_T]:  # several quotes at one time: their changes add up
            dm = m - st[S_DYN_MID]
            st[S_DYN_FAST] += dm * dm
            st[S_DYN_SLOW] += dm * dm
        st[S_DYN_T] = t
        st[S_DYN_MID] = m
    if st[S_DYN_T0] == 0.0 or st[S_DYN_T] - st[S_DYN_T0] < params[P_DYN_SLOW_S]:
        return 0.0, 1.0, 1.0
    fast = st[S_DYN_FAST] / params[P_DYN_FAST_S]
    slow = st[S_DYN_SLOW] / params[P_DYN_SLOW_S]
    if not slow > 0.0:  # no change at all yet (a fast variance decayed to 0 clips below)
        return 0.0, 1.0, 1.0
    mult = (fast / slow) ** (0.5 * params[P_DYN_W])
    hi = params[P_DYN_MAX]
    mult = min(max(mult, 1.0 / hi), hi)
    return 0.0, 1.0, mult


@njit(**NJIT_INLINE)
def builtin_signals(ts_ns, v, params, st):
    """The built-ins with a weight other than 0, combined: shifts add, factors multiply."""
    shift = 0.0
    spread = 1.0
    skew = 1.0
    if params[P_VAMP_W] != 0.0:
        x, _, _ = vamp(ts_ns, v, params, st)
        shift += x
    if params[P_IMB_W] != 0.0:
        x, _, _ = imbalance(ts_ns, v, params, st)
        shift += x
    if params[P_FLOW_W] != 0.0:
        x, _, _ = flow(ts_ns, v, params, st)
        shift += x
    if params[P_CANDLE_W] != 0.0:
        x, _, _ = candles(ts_ns, v, params, st)
        shift += x
    if params[P_DYN_W] != 0.0:
        _, y, z = dyn_gamma(ts_ns, v, params, st)
        spread *= y
        skew *= z
    return shift, spread, skew
