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

from avmm.core.estimators import micro_price, vol_sigma
from avmm.core.signal_api import (
    ASK,
    ASK_QTY,
    BID,
    BID_QTY,
    KIND,
    LOT,
    MAX_POSITION,
    MICRO,
    MID,
    POS,
    SIGMA,
    TICK,
    TRADE_PX,
    TRADE_QTY,
    TRADE_SIDE,
    VWAP,
)
from avmm.core.signal_none import signal as user_signal  # SIGNAL IMPORT (replaced in compiled copies)
from avmm.jit import NJIT_INLINE


@njit(**NJIT_INLINE)
def signal_step(p, s, ts_ns, kind, a, b, c, d):
    """Call the signal for one market event: a quote (kind 1; a, b, c, d = bid, bid size, ask, ask
    size) or a trade (kind 2; a, b, c = price, size, aggressor side). Nothing without a signal; a
    quote the core would refuse (not 0 < bid < ask, sizes >= 0, all finite) is not shown to it."""
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
    else:
        if not (a > 0.0 and b > 0.0) or math.isinf(a) or math.isinf(b):
            return
        v[TRADE_PX] = a
        v[TRADE_QTY] = b
        v[TRADE_SIDE] = c
    v[KIND] = kind
    v[SIGMA] = vol_sigma(p, s)
    v[VWAP] = s.vwap
    v[POS] = s.pos
    v[MAX_POSITION] = p.max_position
    v[TICK] = p.tick
    v[LOT] = p.lot
    shift, spread_mult, skew_mult = user_signal(ts_ns, v, p.sig_params, s.sig_st)
    s.n_sig_calls += 1
    x = float(shift)
    y = float(spread_mult)
    z = float(skew_mult)
    if math.isfinite(x) and math.isfinite(y) and math.isfinite(z) and y >= 0.0 and z >= 0.0:
        s.sig_shift = x
        s.sig_spread = y
        s.sig_skew = z
    else:
        s.n_sig_bad += 1
