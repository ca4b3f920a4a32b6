"""No signal: what the default loops call (nothing, compiled away); ``core/signals.py`` compiles the
loops with ``signal_slot.signal_step`` and the user's function when there is a signal."""

from __future__ import annotations

from numba import njit

from avmm.jit import NJIT, NJIT_INLINE


@njit(**NJIT)
def signal(ts_ns, v, params, st):
    return 0.0, 1.0, 1.0


@njit(**NJIT_INLINE)
def signal_step(p, s, ts_ns, kind, a, b, c, d):
    """Nothing: the default loops have no signal (``signal_slot.signal_step`` with one)."""
    return


@njit(**NJIT_INLINE)
def signal_depth(p, s, kind, side, px, qty):
    """Nothing: no signal reads the book (``signal_slot.signal_depth`` with one)."""
    return
