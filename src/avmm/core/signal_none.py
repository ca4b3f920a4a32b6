"""The signal slot's default: no signal (never called: ``params.sig_on`` is 0 without one)."""

from __future__ import annotations

from numba import njit

from avmm.jit import NJIT


@njit(**NJIT)
def signal(ts_ns, v, params, st):
    return 0.0, 1.0, 1.0
