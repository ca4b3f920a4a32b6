"""From model depths to the target ladder: levels, sizes, spread limits, post-only, rounding, risk.

``compute_targets(p, s, ts_ns)`` fills ``s.lad_px`` / ``s.lad_qty`` / ``s.lad_n`` (row 0 bids, best
first; row 1 asks, best first) and the diagnostics ``s.res_px``, ``s.fair_px``, ``s.bid_depth``,
``s.ask_depth``. Steps, in order:

1. parameters: sigma, A, k fixed from the config or taken from the estimators (NaN until warm);
2. model depths from the fair price (mid or micro-price), q = position / q_unit;
3. min / max total spread, widened or narrowed around the quotes' centre;
4. levels: level i sits i * spacing behind level 0 (spacing in ticks, or a fraction of the half
   spread), sizes per level, shaped by exp(-eta * |q|) on the side that would grow |q|;
5. touch: with ``quoting.touch = "join"`` a bid never above the best bid (an ask never below the best
   ask), with ``"behind"`` at least ``behind_ticks`` behind it; post-only: a bid never at or above
   the best ask, an ask never at or below the best bid;
6. rounding: bids down and asks up to the tick grid, sizes down to the lot; levels kept strictly
   one tick apart at least;
7. risk: an order's size at most ``max_order_notional`` / price (when set); the sizes on a side
   never add up past ``max_position`` from the current position -- reduce-only (a loss limit,
   ``core/risk.py``): never past the position itself, on the side that reduces it only.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from avmm.core.estimators import vol_sigma
from avmm.core.model import (
    MODEL_AS,
    as_depths_liq,
    implied_gamma,
    implied_gamma_liq,
    k_of_liq,
    model_depths,
)
from avmm.core.state import FAIR_MICRO, TOUCH_IMPROVE, TOUCH_JOIN
from avmm.jit import NJIT

_EPS_TICKS = 1e-7


@njit(**NJIT)
def floor_to(x, step, inv_step):
    """Largest multiple of ``step`` <= x (x itself when step <= 0), exact decimal when possible."""
    if step <= 0.0:
        return x
    n = math.floor(x / step + _EPS_TICKS)
    return n / inv_step if inv_step > 0.0 else n * step


@njit(**NJIT)
def ceil_to(x, step, inv_step):
    if step <= 0.0:
        return x
    n = math.ceil(x / step - _EPS_TICKS)
    return n / inv_step if inv_step > 0.0 else n * step


@njit(**NJIT)
def horizon_s(p, s, ts_ns):
    """Remaining horizon tau in seconds: T - t (finite, optionally cycling) or the rolling tau."""
    if p.model != MODEL_AS:
        return p.tau_s
    elapsed = (ts_ns - s.t0_ns) * 1e-9 if s.t0_ns >= 0 else 0.0
    if elapsed < 0.0:
        elapsed = 0.0
    T = p.horizon_s
    if p.horizon_cycle != 0 and T > 0.0:
        elapsed = elapsed % T
    tau = T - elapsed
    return tau if tau > 0.0 else 0.0


@njit(**NJIT)
def tau_ref_s(p):
    """The horizon the implied gamma is solved at: tau_s (as-rolling), the whole horizon T (as)."""
    return p.horizon_s if p.model == MODEL_AS else p.tau_s


@njit(**NJIT)
def solve_implied(p, s, ts_ns, sigma, A, k):
    """Re-solve the implied parameters (every ``g_update_ns``): with ``k_spread`` the liquidity term
    is ``spread_ratio`` x the market's half spread, time-averaged since the last solve (the current
    one before the first), and k follows from it and gamma; with ``gamma_auto`` gamma meets the skew
    target (closed form with ``k_spread``, else a bracketed bisection over the model)."""
    s.g_last_ns = ts_ns
    s.g_nsolve += 1
    liq = math.nan
    if p.k_spread != 0:
        spread = s.spr_sum / s.spr_dt if s.spr_dt > 0.0 else s.ask - s.bid
        s.spr_sum = 0.0
        s.spr_dt = 0.0
        liq = 0.5 * p.spread_ratio * spread
    gamma = p.gamma
    if p.gamma_auto != 0:
        if p.k_spread != 0:
            gamma = implied_gamma_liq(p.q_limit, p.skew_at_limit, sigma, tau_ref_s(p), liq)
        else:
            gamma = implied_gamma(
                p.model, p.q_limit, p.skew_at_limit, sigma, A, k, tau_ref_s(p), p.delta, p.xi, s.g_gamma
            )
    s.g_gamma = gamma
    s.g_liq = liq
    s.g_k = k_of_liq(gamma, liq) if p.k_spread != 0 else k


@njit(**NJIT)
def model_params(p, s):
    """(sigma, A_bid, k_bid, A_ask, k_ask): fixed values, or the estimators' (NaN if not ready)."""
    sigma = p.sigma if not math.isnan(p.sigma) else vol_sigma(p, s)
    if not math.isnan(p.k):
        return sigma, p.A, p.k, p.A, p.k
    if p.int_per_side != 0:
        ok = s.int_ok[0] != 0 and s.int_ok[1] != 0
        if not ok:
            return sigma, math.nan, math.nan, math.nan, math.nan
        return sigma, s.int_A[0], s.int_k[0], s.int_A[1], s.int_k[1]
    if s.int_ok[2] == 0:
        return sigma, math.nan, math.nan, math.nan, math.nan
    A = s.int_A[2] if math.isnan(p.A) else p.A
    return sigma, A, s.int_k[2], A, s.int_k[2]


@njit(**NJIT)
def _clear(s):
    s.lad_n[0] = 0
    s.lad_n[1] = 0
    s.quotable = 0
    return 0


@njit(**NJIT)
def compute_targets(p, s, ts_ns):  # noqa: C901  (compiled kernel)
    """Fill the target ladder for time ``ts_ns``. Returns 1 if quotable, else 0 (empty ladder)."""
    if s.has_book == 0:
        return _clear(s)
    sigma, A_b, k_b, A_a, k_a = model_params(p, s)
    if math.isnan(sigma) or (p.k_spread == 0 and (math.isnan(k_b) or math.isnan(k_a))):
        return _clear(s)
    gamma = p.gamma
    xi = p.xi
    if p.gamma_auto != 0 or p.k_spread != 0:
        due = p.g_update_ns if not math.isnan(s.g_gamma) else min(p.g_update_ns, 1_000_000_000)
        if s.g_nsolve == 0 or ts_ns - s.g_last_ns >= due:
            solve_implied(p, s, ts_ns, sigma, A_b, k_b)
        gamma = s.g_gamma
        if not gamma > 0.0:  # NaN: no gamma meets the target yet
            return _clear(s)
        if math.isnan(xi):
            xi = gamma
    fair = s.micro if p.fair == FAIR_MICRO else s.mid
    q = s.pos / p.q_unit
    tau = horizon_s(p, s, ts_ns)
    if p.k_spread != 0:
        bd, ad = as_depths_liq(q, gamma, sigma, tau, s.g_liq)
        k_b = s.g_k
    else:
        bd, ad = model_depths(p.model, q, gamma, sigma, A_b, k_b, tau, p.delta, xi)
        if k_a != k_b or A_a != A_b:
            _, ad = model_depths(p.model, q, gamma, sigma, A_a, k_a, tau, p.delta, xi)
    # spread limits around the centre of the quotes
    half = 0.5 * (bd + ad)
    centre = 0.5 * (ad - bd)
    if p.sig_on != 0:  # the signal: a shift of the fair price, factors on the half spread and the skew
        fair += s.sig_shift
        half *= s.sig_spread
        centre *= s.sig_skew
    if 2.0 * half < p.min_spread:
        half = 0.5 * p.min_spread
    if p.max_spread > 0.0 and 2.0 * half > p.max_spread:
        half = 0.5 * p.max_spread
    bd = half - centre
    ad = half + centre
    s.sigma_used = sigma
    s.A_used = A_b
    s.k_used = k_b
    s.fair_px = fair
    s.res_px = fair + centre
    s.bid_depth = bd
    s.ask_depth = ad
    spacing = p.spacing_ticks * p.tick if p.spacing_ticks > 0.0 else p.spacing_frac * half
    shape = math.exp(-p.size_eta * abs(q)) if p.size_eta > 0.0 else 1.0
    tick = p.tick
    behind = 0.0 if p.touch == TOUCH_JOIN else p.behind_ticks * tick
    for row in range(2):
        is_bid = row == 0
        base = fair - bd if is_bid else fair + ad
        room = p.max_position - s.pos if is_bid else p.max_position + s.pos
        if s.reduce_only != 0:  # bids only against a short, asks against a long, never past flat
            room = -s.pos if is_bid else s.pos
        grows = (q > 0.0) if is_bid else (q < 0.0)
        used = 0.0
        n = 0
        for lvl in range(p.levels):
            if is_bid:
                px = base - lvl * spacing
                if p.touch != TOUCH_IMPROVE and px > s.bid - behind:
                    px = s.bid - behind
                if p.post_only != 0 and px > s.ask - tick:
                    px = s.ask - tick if tick > 0.0 else np.nextafter(s.ask, -np.inf)
                if n > 0 and px > s.lad_px[0, n - 1] - tick:
                    px = s.lad_px[0, n - 1] - tick
                px = floor_to(px, tick, p.inv_tick)
                if px <= 0.0:
                    break
            else:
                px = base + lvl * spacing
                if p.touch != TOUCH_IMPROVE and px < s.ask + behind:
                    px = s.ask + behind
                if p.post_only != 0 and px < s.bid + tick:
                    px = s.bid + tick if tick > 0.0 else np.nextafter(s.bid, np.inf)
                if n > 0 and px < s.lad_px[1, n - 1] + tick:
                    px = s.lad_px[1, n - 1] + tick
                px = ceil_to(px, tick, p.inv_tick)
            size = p.sizes[lvl]
            if grows:
                size *= shape
            if p.max_order_notional > 0.0 and size * px > p.max_order_notional:
                size = p.max_order_notional / px
                s.n_limit_notional += 1
            if size > room - used:
                size = room - used
                s.n_limit_position += 1
            size = floor_to(size, p.lot, p.inv_lot)
            if size <= 0.0 or size < p.lot:
                break
            s.lad_px[row, n] = px
            s.lad_qty[row, n] = size
            used += size
            n += 1
        s.lad_n[row] = n
    s.quotable = 1
    return 1
