"""The core's ABI: the strategy handlers by the address of a ``CoreMemory`` block.

Python runtimes (``Engine``: the live and paper runtimes, ``avmm bench``, ``avmm quote``) call these
``*_at(addr, ...)`` functions instead of the ``*_rec(p, s, o, a, ...)`` handlers of
``strategy.py``: one integer instead of four arrays means no unboxing and no allocation per call.
``views(addr)`` rebuilds the four arrays over the block (``state.CoreMemory`` lays them out at the
``OFF_*`` offsets). Compiled callers (the backtest loop) call the ``*_rec`` handlers directly.
"""

from __future__ import annotations

from numba import carray, njit

from avmm.core.ladder import compute_targets
from avmm.core.signal_none import signal_depth, signal_step  # SIGNAL SLOT (replaced in compiled copies)
from avmm.core.state import (
    ACTION_DTYPE,
    MAX_ACTIONS,
    MAX_ORDERS,
    OFF_A,
    OFF_O,
    OFF_P,
    OFF_S,
    ORDER_DTYPE,
    PARAMS_DTYPE,
    STATE_DTYPE,
    WHY_EXTERNAL,
)
from avmm.core.strategy import (
    cancel_all_rec,
    flatten_rec,
    halt_rec,
    on_ack_rec,
    on_canceled_rec,
    on_fill_rec,
    on_quote_rec,
    on_reject_rec,
    on_timer_rec,
    on_trade_rec,
    resume_rec,
)
from avmm.jit import NJIT, voidptr


@njit(**NJIT)
def views(addr):
    """The four core arrays over the ``CoreMemory`` block at ``addr`` (no allocation, no copy)."""
    p = carray(voidptr(addr + OFF_P), 1, PARAMS_DTYPE)
    s = carray(voidptr(addr + OFF_S), 1, STATE_DTYPE)
    o = carray(voidptr(addr + OFF_O), MAX_ORDERS, ORDER_DTYPE)
    a = carray(voidptr(addr + OFF_A), MAX_ACTIONS, ACTION_DTYPE)
    return p, s, o, a


@njit(**NJIT)
def on_quote_at(addr, ts_ns, bid, bid_qty, ask, ask_qty):
    p, s, o, a = views(addr)
    signal_step(p[0], s[0], ts_ns, 1, bid, bid_qty, ask, ask_qty)
    return on_quote_rec(p[0], s[0], o, a, ts_ns, bid, bid_qty, ask, ask_qty)


@njit(**NJIT)
def on_trade_at(addr, ts_ns, px, qty, side):
    p, s, o, a = views(addr)
    signal_step(p[0], s[0], ts_ns, 2, px, qty, float(side), 0.0)
    return on_trade_rec(p[0], s[0], o, a, ts_ns, px, qty, side)


@njit(**NJIT)
def on_depth_at(addr, kind, side, px, qty):
    """A depth row (``events.DEPTH`` / ``SNAPSHOT`` at a price, ``side`` > 0 bids; ``CLEAR``) into
    the signals' book; nothing when no signal reads depth."""
    p, s, o, a = views(addr)
    signal_depth(p[0], s[0], kind, side, px, qty)


@njit(**NJIT)
def on_fill_at(addr, ts_ns, oid, side, px, qty, fee):
    p, s, o, a = views(addr)
    return on_fill_rec(p[0], s[0], o, a, ts_ns, oid, side, px, qty, fee)


@njit(**NJIT)
def on_ack_at(addr, oid):
    p, s, o, a = views(addr)
    return on_ack_rec(s[0], o, oid)


@njit(**NJIT)
def on_reject_at(addr, oid):
    p, s, o, a = views(addr)
    return on_reject_rec(p[0], s[0], o, oid)


@njit(**NJIT)
def on_canceled_at(addr, oid):
    p, s, o, a = views(addr)
    return on_canceled_rec(s[0], o, oid)


@njit(**NJIT)
def on_timer_at(addr, ts_ns):
    p, s, o, a = views(addr)
    return on_timer_rec(p[0], s[0], o, a, ts_ns)


@njit(**NJIT)
def targets_at(addr, ts_ns):
    """Compute the target ladder only (no orders): used by ``avmm quote`` and tests."""
    p, s, o, a = views(addr)
    return compute_targets(p[0], s[0], ts_ns)


@njit(**NJIT)
def cancel_all_at(addr, ts_ns):
    """Cancel every working order (``strategy.cancel_all_rec``)."""
    p, s, o, a = views(addr)
    return cancel_all_rec(s[0], o, a, ts_ns)


@njit(**NJIT)
def halt_at(addr, ts_ns):
    """Halt from outside (the kill switch): cancel every working order, quote nothing until
    ``resume_at`` (``strategy.halt_rec``)."""
    p, s, o, a = views(addr)
    return halt_rec(s[0], o, a, ts_ns, WHY_EXTERNAL)


@njit(**NJIT)
def flatten_at(addr, ts_ns):
    """Halt, then taker orders until the position is 0 (``strategy.flatten_rec``): the first one
    now when the core has a book, the next ones at the quote events after each one is done."""
    p, s, o, a = views(addr)
    return flatten_rec(p[0], s[0], o, a, ts_ns)


@njit(**NJIT)
def resume_at(addr, ts_ns):
    """Lift a halt or reduce-only: the next event requotes (``strategy.resume_rec``)."""
    p, s, o, a = views(addr)
    return resume_rec(s[0], o, a, ts_ns)
