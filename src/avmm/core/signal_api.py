"""What a user's signal sees and returns (the ``[signals]`` section; ``core/signals.py`` compiles it
into the runtime's loop).

A signal is a numba ``@njit`` function in a plain Python file::

    from numba import njit
    from avmm.core.signal_api import BID, ASK, BID_QTY, ASK_QTY

    @njit
    def signal(ts_ns, v, params, st):
        imb = (v[BID_QTY] - v[ASK_QTY]) / (v[BID_QTY] + v[ASK_QTY])
        return params[0] * imb * (v[ASK] - v[BID]), 1.0, 1.0

called on every market event before the strategy handles it, with

* ``ts_ns`` -- the event's time, int64 ns;
* ``v`` -- the view, float64[40], read-only by contract (the core refills it each event): the
  slots below; prices in quote currency, sizes in base units, sigma in price/sqrt(s) (NaN until
  the estimator is warm), the position in base units;
* ``params`` -- float64[16], ``signals.params`` from the config (zeros after those given);
* ``st`` -- float64[256], the signal's own state, zero at the start, kept between calls;

and returning ``(shift, spread_mult, skew_mult)``: a price added to the fair price the model quotes
around, a factor on the half spread and a factor on the inventory skew (0, 1, 1: no effect). A
result that is not finite, or a negative factor, is counted (``signal_bad``) and ignored for that
event: the last good one stays.
"""

from __future__ import annotations

KIND = 0  # 1 a quote, 2 a trade
BID = 1
BID_QTY = 2
ASK = 3
ASK_QTY = 4
MID = 5  # of the best bid / ask (after this event when it is a quote)
MICRO = 6  # size-weighted mid
SIGMA = 7  # price / sqrt(s); NaN until warm
VWAP = 8  # over estimators.vwap_window_s; NaN before a trade
POS = 9  # position, base units
TRADE_PX = 10  # this event's trade (a trade event), else the last one
TRADE_QTY = 11
TRADE_SIDE = 12  # aggressor: +1 buy, -1 sell, 0 unknown
MAX_POSITION = 13  # risk.max_position, base units
TICK = 14
LOT = 15
# the book by level, level 0 the touch: v[BID_PX_L + i], v[BID_QTY_L + i] for i < v[N_BID_L] (the
# same for asks). Without depth in the data (or without ``signals.depth_levels``) only the touch.
# Levels beyond the touch come from the depth rows, strictly worse than the touch of the quote
# stream (which is fresher than the depth diffs).
LEVELS = 5
BID_PX_L = 16
BID_QTY_L = 21
ASK_PX_L = 26
ASK_QTY_L = 31
N_BID_L = 36  # levels known on the bid side, the touch included (0 before the first quote)
N_ASK_L = 37

EV_QUOTE = 1.0
EV_TRADE = 2.0
