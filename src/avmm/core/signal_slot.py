"""Where the runtimes' loops call a user's signal (``core/signal_api.py``): ``signal_step`` fills the
view from the event and the state, calls the signal and keeps its outputs in the state, which
``ladder.compute_targets`` applies. ``core/signals.py`` compiles a copy of this module with the
user's function in place of ``signal_none.signal`` (the import line below), and copies of the
loops (the backtest's ``run_chunk``, the ``Engine``'s entry points) calling it instead of
``signal_none.signal_step`` (which does nothing).
"""

from __future__ import annotations

import math

from numba import njit

from avmm.core.depth import depth_below, depth_clear, depth_set
from avmm.core.estimators import micro_price, vol_sigma
from avmm.core.signal_api import (
    ASK,
    ASK_PX_L,
    ASK_QTY,
    ASK_QTY_L,
    BID,
    BID_PX_L,
    BID_QTY,
    BID_QTY_L,
    KIND,
    LOT,
    MAX_POSITION,
    MICRO,
    MID,
    N_ASK_L,
    N_BID_L,
    POS,
    SIGMA,
    TICK,
    TRADE_PX,
    TRADE_QTY,
    TRADE_SIDE,
    VWAP,
)
from avmm.core.signal_builtin import builtin_signals
from avmm.core.signal_none import signal as user_signal  # SIGNAL IMPORT (replaced in compiled copies)
from avmm.events import CLEAR
from avmm.jit import NJIT_INLINE


@njit(**NJIT_INLINE)
def signal_step(p, s, ts_ns, kind, a, b, c, d):
    """Call the signals for one market event: a quote (kind 1; a, b, c, d = bid, bid size, ask, ask
    size) or a trade (kind 2; a, b, c = price, size, aggressor side). Nothing without a signal; a
    quote the core would refuse (not 0 < bid < ask, sizes >= 0, all finite) is not shown to them.
    The user's signal and the built-ins combine: shifts add, factors multiply."""
    if p.sig_on == 0:
        return
    v = s.sig_view
    if kind == 1:
        if not (a > 0.0 and c > a and b >= 0.0 and d >= 0.0) or math.isinf(c) or math.isinf(b) or math.isinf(d):
            return
        v[BID] = a
        v[BID_QTY] = b
        v[ASK] = c
        v[ASK_QTY] = d
        v[MID] = 0.5 * (a + c)
        v[MICRO] = micro_price(a, b, c, d)
        v[BID_PX_L] = a
        v[BID_QTY_L] = b
        v[ASK_PX_L] = c
        v[ASK_QTY_L] = d
        v[N_BID_L] = 1.0
        v[N_ASK_L] = 1.0
    else:
        if not (a > 0.0 and b > 0.0) or math.isinf(a) or math.isinf(b):
            return
        v[TRADE_PX] = a
        v[TRADE_QTY] = b
        v[TRADE_SIDE] = c
    if p.sig_depth > 0 and v[N_BID_L] > 0.0:  # the book now, below the last quote's touch
        nb = depth_below(s.dkey, s.dqty, s.dn, 0, v[BID], v[BID_PX_L + 1 :], v[BID_QTY_L + 1 :], p.sig_depth)
        na = depth_below(s.dkey, s.dqty, s.dn, 1, v[ASK], v[ASK_PX_L + 1 :], v[ASK_QTY_L + 1 :], p.sig_depth)
        v[N_BID_L] = 1.0 + nb
        v[N_ASK_L] = 1.0 + na
    v[KIND] = kind
    v[SIGMA] = vol_sigma(p, s)
    v[VWAP] = s.vwap
    v[POS] = s.pos
    v[MAX_POSITION] = p.max_position
    v[TICK] = p.tick
    v[LOT] = p.lot
    x = 0.0
    y = 1.0
    z = 1.0
    if p.sig_user != 0:
        u, w, r = user_signal(ts_ns, v, p.sig_params, s.sig_st)
        x = float(u)
        y = float(w)
        z = float(r)
    if p.bsig_on != 0:
        u, w, r = builtin_signals(ts_ns, v, p.bsig_params, s.bsig_st)
        x += u
        y *= w
        z *= r
    s.n_sig_calls += 1
    if math.isfinite(x) and math.isfinite(y) and math.isfinite(z) and y >= 0.0 and z >= 0.0:
        s.sig_shift = x
        s.sig_spread = y
        s.sig_skew = z
    else:
        s.n_sig_bad += 1


@njit(**NJIT_INLINE)
def signal_depth(p, s, kind, side, px, qty):
    """A depth row (DEPTH / SNAPSHOT: ``side`` > 0 bids; CLEAR) into the signals' book, when one
    reads it."""
    if p.sig_depth == 0:
        return
    if kind == CLEAR:
        depth_clear(s.dn)
    elif depth_set(s.dkey, s.dqty, s.dn, 0 if side > 0 else 1, px, qty) != 0:
        s.n_depth_dropped += 1
