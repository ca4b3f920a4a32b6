"""Risk aversion gamma from a target a user understands, on the A-S formulas of ``core.model``.

* ``skew_at_limit`` X: at |position| = ``risk.max_position`` (q = max_position / q_unit), the
  reservation price moves X half spreads: ``q gamma sigma^2 tau = X * spread(gamma) / 2`` with
  ``spread(gamma) = gamma sigma^2 tau + (2 / gamma) ln(1 + gamma / k)``. The ratio skew / half spread
  rises with gamma from 0 to 2q, so there is one root when 0 < X < 2q.
* ``spread_ticks`` N: the model's total spread is N ticks: ``spread(gamma) = N * tick``. As gamma
  goes to 0 the spread tends to 2/k; it falls to a minimum and then rises without bound. Above 2/k
  there is one root; between the minimum and 2/k there are two and the smaller gamma is taken (the
  one with less inventory skew); below the minimum there is none.

The skew target is solved by ``core.model.implied_gamma`` (the solve behind ``gamma = 'auto'``, here
once, at the calibrated sigma and k); the spread target by bisection on log gamma (monotone on the
bracket).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from avmm.core.model import MODEL_AS_ROLLING, as_spread, implied_gamma
from avmm.errors import UserError

G_LO, G_HI = 1e-12, 1e12  # gamma searched in this range (1 / (price * q unit))


def _bisect(f: Callable[[float], float], lo: float, hi: float, iters: int = 200) -> float:
    """The root of ``f`` (negative at ``lo``, positive at ``hi``) on a log scale."""
    a, b = math.log(lo), math.log(hi)
    for _ in range(iters):
        m = 0.5 * (a + b)
        if f(math.exp(m)) > 0:
            b = m
        else:
            a = m
    return math.exp(0.5 * (a + b))


def half_spread(gamma: float, sigma: float, k: float, tau_s: float) -> float:
    return 0.5 * float(as_spread(gamma, sigma, k, tau_s))


def skew(q: float, gamma: float, sigma: float, tau_s: float) -> float:
    """mid - reservation price at inventory ``q`` (q units): ``q gamma sigma^2 tau``."""
    return q * gamma * sigma * sigma * tau_s


def gamma_for_skew(x: float, q_max: float, sigma: float, k: float, tau_s: float) -> float:
    """gamma such that at ``q_max`` the reservation price moves ``x`` half spreads."""
    if not (x > 0 and math.isfinite(x)):
        raise UserError(f"--skew-at-limit {x:g}: must be a positive number of half spreads")
    if x >= 2.0 * q_max:
        raise UserError(
            f"--skew-at-limit {x:g}: the A-S skew at the position limit is below 2 q = {2 * q_max:g} half spreads "
            "(q = risk.max_position / q_unit); give a smaller target"
        )
    if tau_s <= 0 or sigma <= 0:
        raise UserError("--skew-at-limit: needs sigma > 0 and model.tau_s > 0 (no skew without them)")

    g = float(implied_gamma(MODEL_AS_ROLLING, q_max, x, sigma, 1.0, k, tau_s, 1.0, math.nan, 1.0))
    if not (math.isfinite(g) and G_LO <= g <= G_HI):
        raise UserError(f"--skew-at-limit {x:g}: no gamma in [{G_LO:g}, {G_HI:g}] gives it")
    return g


def gamma_for_spread(spread: float, sigma: float, k: float, tau_s: float, tick: float = 1.0) -> float:
    """gamma such that the model's total spread is ``spread`` (price); messages in ``tick`` units."""
    flag = f"--spread-ticks {spread / tick:g}"
    if not (spread > 0 and math.isfinite(spread)):
        raise UserError(f"{flag}: must be a positive number of ticks")

    def s(g: float) -> float:
        return float(as_spread(g, sigma, k, tau_s))

    # the minimum of the spread over log gamma (unimodal): golden-section search
    a, b = math.log(G_LO), math.log(G_HI)
    for _ in range(200):
        c, d = a + 0.382 * (b - a), a + 0.618 * (b - a)
        if s(math.exp(c)) < s(math.exp(d)):
            b = d
        else:
            a = c
    g_min = math.exp(0.5 * (a + b))
    s_min = s(g_min)
    if spread < s_min * (1 + 1e-9):
        raise UserError(
            f"{flag}: below the narrowest spread the model gives at sigma {sigma:.4g} and k {k:.4g} "
            f"({s_min / tick:.4g} ticks, {'as gamma -> 0' if g_min < 1e-9 else f'at gamma {g_min:.4g}'}); "
            "give a wider spread"
        )
    if spread >= s(G_LO):  # above 2/k: one root, on the rising branch
        return _bisect(lambda g: s(g) - spread, g_min, G_HI)
    return _bisect(lambda g: spread - s(g), G_LO, g_min)  # the smaller root, on the falling branch
