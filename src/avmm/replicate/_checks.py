"""Parameter checks shared by the replications: each raises :class:`~avmm.errors.UserError` naming
the parameter and the value it got."""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral, Real

from avmm.errors import UserError


def _require(params: object, names: tuple[str, ...], test: Callable[[float], bool], must: str) -> None:
    for name in names:
        v = getattr(params, name)
        if not (math.isfinite(v) and test(v)):
            raise UserError(f"{name} must be {must}, got {v!r}")


def require_finite(params: object, *names: str) -> None:
    """Every attribute ``names`` of ``params`` is a finite number."""
    _require(params, names, lambda v: True, "finite")


def require_positive(params: object, *names: str) -> None:
    """Every attribute ``names`` of ``params`` is a finite number > 0."""
    _require(params, names, lambda v: v > 0.0, "a finite number > 0")


def require_nonnegative(params: object, *names: str) -> None:
    """Every attribute ``names`` of ``params`` is a finite number >= 0."""
    _require(params, names, lambda v: v >= 0.0, "a finite number >= 0")


def require_int(value: object, what: str, minimum: int) -> None:
    """``value`` is a whole number (an int, NumPy integer or integral float; not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Real):
        ok = False
    elif isinstance(value, Integral):
        ok = int(value) >= minimum
    else:
        x = float(value)
        ok = x.is_integer() and x >= minimum
    if not ok:
        raise UserError(f"{what} must be an integer >= {minimum}, got {value!r}")
