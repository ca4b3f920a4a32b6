"""Quote models: pure, numba-compiled functions of scalars.

Units, everywhere in avmm:

* prices and depths in price units (quote currency per unit of the base asset);
* ``sigma`` is the standard deviation of the mid per sqrt(second) (price / sqrt(s)); the formulas
  use the variance rate ``sigma**2``;
* ``gamma`` is risk aversion in 1 / (price * lot); ``k`` in 1 / price; ``A`` in 1 / second;
* ``q`` is the inventory in lots (signed), ``tau_s`` the remaining horizon in seconds.

Depths are distances from the mid, positive away from it: bid = mid - bid_depth,
ask = mid + ask_depth. Every function here is free of allocation and callable from Python and from
other compiled code.
"""

from __future__ import annotations

import math

from numba import njit

from avmm.jit import NJIT

# model ids (params.model)
MODEL_AS = 0  # Avellaneda-Stoikov, finite horizon: tau = T - t
MODEL_AS_ROLLING = 1  # Avellaneda-Stoikov, rolling horizon: tau constant
MODEL_GLFT = 2  # Gueant-Lehalle-Fernandez-Tapia closed form (Gueant 2017, eqs. 4.6/4.7)
MODEL_NAMES = {"as": MODEL_AS, "as-rolling": MODEL_AS_ROLLING, "glft": MODEL_GLFT}

_SMALL = 1e-9


@njit(**NJIT)
def log1p_over(x, scale):
    """(1/scale) * ln(1 + scale * x) with its limit x as scale -> 0 (series below 1e-9)."""
    y = scale * x
    if abs(y) < _SMALL:
        return x * (1.0 - 0.5 * y)
    return math.log1p(y) / scale


@njit(**NJIT)
def as_reservation_price(mid, q, gamma, sigma, tau_s):
    """Avellaneda-Stoikov (2008) eq. (29): r = s - q * gamma * sigma^2 * (T - t)."""
    return mid - q * gamma * sigma * sigma * tau_s


@njit(**NJIT)
def as_spread(gamma, sigma, k, tau_s):
    """A-S total optimal spread: gamma * sigma^2 * (T - t) + (2 / gamma) * ln(1 + gamma / k).

    As gamma -> 0 the second term tends to 2 / k.
    """
    return gamma * sigma * sigma * tau_s + 2.0 * log1p_over(1.0 / k, gamma)


@njit(**NJIT)
def as_depths_liq(q, gamma, sigma, tau_s, liq):
    """A-S bid and ask depths from the mid given the liquidity term ``liq`` = (1/gamma) ln(1 + gamma/k):
    half spread gamma sigma^2 tau / 2 + liq, centred on the reservation price."""
    half = 0.5 * gamma * sigma * sigma * tau_s + liq
    skew = q * gamma * sigma * sigma * tau_s  # mid - r
    return half + skew, half - skew


@njit(**NJIT)
def as_depths(q, gamma, sigma, k, tau_s):
    """A-S bid and ask depths from the mid: the spread centred on the reservation price."""
    half = 0.5 * as_spread(gamma, sigma, k, tau_s)
    skew = q * gamma * sigma * sigma * tau_s  # mid - r
    return half + skew, half - skew


@njit(**NJIT)
def glft_coefficients(gamma, sigma, A, k, delta, xi):
    """The two constants of the GLFT closed form (Gueant 2017, eqs. 4.6/4.7).

    Returns ``(c_half, c_skew)`` with
    ``c_half = (1/(xi*delta)) * ln(1 + xi*delta/k)`` and
    ``c_skew = sqrt( gamma*sigma^2/(2*A*delta*k) * (1 + xi*delta/k)^(k/(xi*delta) + 1) )``.
    As xi -> 0: c_half -> 1/k and the power term -> e.
    """
    xd = xi * delta
    c_half = log1p_over(1.0 / k, xd)
    y = xd / k
    if abs(y) < _SMALL:
        power = math.e * (1.0 + 0.5 * y)  # (1+y)^(1/y+1) = e * (1 + y/2 + O(y^2))
    else:
        power = math.exp((1.0 / y + 1.0) * math.log1p(y))
    c_skew = math.sqrt(gamma * sigma * sigma / (2.0 * A * delta * k) * power)
    return c_half, c_skew


@njit(**NJIT)
def glft_depths(q, gamma, sigma, A, k, delta, xi):
    """GLFT approximate optimal depths from the mid for inventory q (lots) and order size delta.

    bid: c_half + ((2q + delta)/2) * c_skew;  ask: c_half - ((2q - delta)/2) * c_skew.
    With delta = 1 and xi = gamma this is the 2013 paper's formula.
    """
    c_half, c_skew = glft_coefficients(gamma, sigma, A, k, delta, xi)
    return c_half + 0.5 * (2.0 * q + delta) * c_skew, c_half - 0.5 * (2.0 * q - delta) * c_skew


@njit(**NJIT)
def model_depths(model, q, gamma, sigma, A, k, tau_s, delta, xi):
    """Dispatch on the model id: (bid_depth, ask_depth) from the mid.

    For MODEL_AS the caller passes tau_s = T - t; for MODEL_AS_ROLLING the constant tau.
    """
    if model == MODEL_GLFT:
        return glft_depths(q, gamma, sigma, A, k, delta, xi)
    return as_depths(q, gamma, sigma, k, tau_s)


@njit(**NJIT)
def _skew_gap(model, q_limit, skew_at_limit, gamma, sigma, A, k, tau_s, delta, xi):
    """q_limit x (the reservation price's move per unit of q) - skew_at_limit x (the half spread at
    q = 0): increasing in gamma; its root is the gamma that meets the skew target."""
    x = gamma if math.isnan(xi) else xi
    b0, a0 = model_depths(model, 0.0, gamma, sigma, A, k, tau_s, delta, x)
    b1, a1 = model_depths(model, 1.0, gamma, sigma, A, k, tau_s, delta, x)
    return q_limit * 0.5 * (b1 - a1) - skew_at_limit * 0.5 * (b0 + a0)


@njit(**NJIT)
def _bracket(model, q_limit, skew_at_limit, sigma, A, k, tau_s, delta, xi, g):
    """(lo, hi) = (g / 4, g) with the skew gap < 0 at lo and >= 0 at hi, g grown or shrunk from
    the guess by factors of 4; (NaN, NaN) when there is none."""
    f = _skew_gap(model, q_limit, skew_at_limit, g, sigma, A, k, tau_s, delta, xi)
    up = f < 0.0
    for _ in range(400):
        if math.isnan(f) or not (0.0 < g < math.inf):
            break
        if up and f >= 0.0:
            return 0.25 * g, g
        if not up and f < 0.0:
            return g, 4.0 * g
        g = g * 4.0 if up else g * 0.25
        f = _skew_gap(model, q_limit, skew_at_limit, g, sigma, A, k, tau_s, delta, xi)
    return math.nan, math.nan


@njit(**NJIT)
def implied_gamma(model, q_limit, skew_at_limit, sigma, A, k, tau_s, delta, xi, guess):
    """The risk aversion at which the reservation price moves ``skew_at_limit`` half spreads at
    |q| = ``q_limit`` (the half spread taken at q = 0), for any model: a bracket grown from ``guess``
    by factors of 4, then bisection on ln gamma to 1e-12 relative. NaN when there is none (the
    target cannot be met: q_limit too small for it, or sigma = 0)."""
    if not q_limit > 0.5 * skew_at_limit * (delta if model == MODEL_GLFT else 1.0):
        return math.nan  # the skew per q never outgrows the half spread enough (a root only in rounding)
    g = guess if guess > 0.0 and math.isfinite(guess) else 1.0
    lo, hi = _bracket(model, q_limit, skew_at_limit, sigma, A, k, tau_s, delta, xi, g)
    if math.isnan(lo):
        return math.nan
    for _ in range(80):
        if hi - lo <= 1e-12 * hi:
            break
        mid = math.sqrt(lo * hi)
        f = _skew_gap(model, q_limit, skew_at_limit, mid, sigma, A, k, tau_s, delta, xi)
        if math.isnan(f):
            return math.nan
        if f < 0.0:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


@njit(**NJIT)
def implied_gamma_liq(q_limit, skew_at_limit, sigma, tau_s, liq):
    """A-S with the liquidity term fixed at ``liq``: the reservation price moves ``skew_at_limit``
    half spreads at |q| = ``q_limit`` when gamma sigma^2 tau = skew_at_limit x liq / (q_limit -
    skew_at_limit / 2) (closed form). NaN when sigma^2 tau = 0 or q_limit is too small."""
    st = sigma * sigma * tau_s
    d = q_limit - 0.5 * skew_at_limit
    if not (st > 0.0 and d > 0.0 and liq > 0.0):
        return math.nan
    return skew_at_limit * liq / (d * st)


@njit(**NJIT)
def k_of_liq(gamma, liq):
    """The k at which (1/gamma) ln(1 + gamma/k) = liq: gamma / (e^(gamma liq) - 1) (0 past overflow)."""
    y = gamma * liq
    if y > 700.0:
        return 0.0
    return gamma / math.expm1(y) if y > 0.0 else math.inf
