"""A user's signal (README, "Signals"): shift the fair price toward the heavier side of the touch.

    [signals]
    file = "examples/signals/imbalance.py"
    params = [0.5]        # params[0]: the shift at a one-sided book, in spreads

With ``params = [0.5]`` it is the built-in ``[signals.imbalance] weight = 1`` written by hand.
"""

from numba import njit

from avmm.core.signal_api import ASK, ASK_QTY, BID, BID_QTY


@njit
def signal(ts_ns, v, params, st):
    depth = v[BID_QTY] + v[ASK_QTY]
    if depth <= 0.0:
        return 0.0, 1.0, 1.0
    imb = (v[BID_QTY] - v[ASK_QTY]) / depth  # -1 (all on the ask) .. 1 (all on the bid)
    return params[0] * imb * (v[ASK] - v[BID]), 1.0, 1.0  # shift (price), spread factor, skew factor
