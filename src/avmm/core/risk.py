"""The core's risk limits: the orders budget, the loss limits, and what they report.

Every limit is off by default (0), and off costs the hot path one comparison of a params field
(``strategy.py`` guards each call): a backtest with the defaults is bit-identical to one without
this module.

* ``risk.max_orders_per_10s`` -- places + amends sent in any rolling 10 s of the core's clock. The
  send times of the last ones are kept in a ring (``s.rate_ts``); a requote with no budget left
  does not happen (``dirty`` keeps it due: it happens when the budget frees); one with some left
  places / amends that many orders (cancels are free) and stays due for the rest.
* ``risk.max_loss`` / ``risk.max_loss_day`` -- the mark-to-market PnL (``cash + position x mid``,
  the core's own view: its fills, its book) checked at every quote and fill; the UTC day's is
  ``day_pnl0`` (the runtime's figure for the day before this session) + the session's since the day
  began (00:00 UTC on the core's clock restarts it; ``day_pnl0`` counts when the session's first
  check is on its day ``day_pnl_day``, or any day with -1). A breach latches ``risk.on_limit``: reduce-only,
  halt or flatten, until ``resume`` (a reduce-only latch of the day's limit alone lifts when the
  next UTC day begins; a halt always waits for ``resume``). A limit still breached at resume binds
  again at the next event: raise it first.
* ``risk.max_order_notional`` and ``risk.max_position`` cut the ladder's sizes (``ladder.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from avmm.core.state import DAY_NS, LIMIT_REDUCE, RATE_WINDOW_NS, WHY_LOSS, WHY_LOSS_DAY, WHY_NAMES
from avmm.jit import NJIT_INLINE


@njit(**NJIT_INLINE)
def orders_budget(p, s, ts_ns):
    """Places + amends that may still be sent at ``ts_ns`` (the sends older than the window
    dropped first: amortised O(1))."""
    cap = p.max_orders_10s
    lo = s.rate_lo
    while lo < s.rate_n and ts_ns - s.rate_ts[lo % cap] >= RATE_WINDOW_NS:
        lo += 1
    s.rate_lo = lo
    return cap - (s.rate_n - lo)


@njit(**NJIT_INLINE)
def note_send(p, s, ts_ns):
    """One place or amend sent at ``ts_ns`` (the caller checked the budget)."""
    s.rate_ts[s.rate_n % p.max_orders_10s] = ts_ns
    s.rate_n += 1


@njit(**NJIT_INLINE)
def latch(s, why, ts_ns):
    s.limit_why |= why
    s.limit_ns = ts_ns
    s.risk_seq += 1


@njit(**NJIT_INLINE)
def loss_check(p, s, ts_ns):
    """The mark-to-market PnL against the loss limits; the ``WHY_*`` bits newly breached (0:
    none). A new UTC day restarts the day's PnL (and lifts a reduce-only latch of its limit)."""
    pnl = s.cash + s.pos * s.mid if s.has_book != 0 else s.cash
    s.pnl = pnl
    why = 0
    if p.max_loss > 0.0 and pnl <= -p.max_loss:
        why = WHY_LOSS
    if p.max_loss_day > 0.0:
        if ts_ns >= s.day_end_ns:
            if s.day_end_ns == 0:  # the session's first day: what the day made before it counts
                s.day_base = -p.day_pnl0 if p.day_pnl_day < 0 or ts_ns // DAY_NS == p.day_pnl_day else 0.0
            else:
                s.day_base = pnl
                if s.limit_why & WHY_LOSS_DAY and p.on_limit == LIMIT_REDUCE and s.halted == 0:
                    s.limit_why &= ~WHY_LOSS_DAY
                    if s.limit_why == 0:
                        s.reduce_only = 0
                    s.dirty = 1
                    s.risk_seq += 1
            s.day_end_ns = (ts_ns // DAY_NS + 1) * DAY_NS
        if pnl - s.day_base <= -p.max_loss_day:
            why |= WHY_LOSS_DAY
    return why & ~s.limit_why


# --- reporting (Python, not the hot path) ---------------------------------------------------------


def reason(state: np.ndarray) -> str:
    """What the limits did to the core: '' (nothing), else e.g. 'halted: max_loss' or
    'reduce-only: max_loss_day'."""
    s = state[0]
    why = int(s["limit_why"])
    names = ", ".join(name for bit, name in WHY_NAMES.items() if why & bit) or "?"
    if s["halted"]:
        return f"halted: {names}" + (" (flattening)" if s["flatten"] else "")
    if s["reduce_only"]:
        return f"reduce-only: {names}"
    return ""


def risk_summary(state: np.ndarray) -> dict[str, Any]:
    """The summary's and the status's risk figures (every key always there; all 0 / False / ''
    when no limit bound)."""
    s = state[0]
    return {
        "risk_halted": bool(s["halted"]),
        "risk_reduce_only": bool(s["reduce_only"]),
        "risk_reason": reason(state),
        "risk_halts": int(s["n_halts"]),
        "risk_position_cuts": int(s["n_limit_position"]),
        "risk_notional_cuts": int(s["n_limit_notional"]),
        "risk_rate_waits": int(s["n_limit_rate"]),
        "risk_loss_breaches": int(s["n_limit_loss"]),
        "risk_loss_day_breaches": int(s["n_limit_loss_day"]),
        "risk_flatten_orders": int(s["n_flatten_orders"]),
    }
