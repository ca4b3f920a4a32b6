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
7. position limit: the sizes on a side never add up past ``max_position`` from the current position.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from avmm.core.estimators import vol_sigma
from avmm.core.model import MODEL_AS, model_depths
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
    if math.isnan(sigma) or math.isnan(k_b) or math.isnan(k_a):
        return _clear(s)
    fair = s.micro if p.fair == FAIR_MICRO else s.mid
    q = s.pos / p.q_unit
    tau = horizon_s(p, s, ts_ns)
    bd, ad = model_depths(p.model, q, p.gamma, sigma, A_b, k_b, tau, p.delta, p.xi)
    if k_a != k_b or A_a != A_b:
        _, ad = model_depths(p.model, q, p.gamma, sigma, A_a, k_a, tau, p.delta, p.xi)
    # spread limits around the centre of the quotes
    half = 0.5 * (bd + ad)
    centre = 0.5 * (ad - bd)
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
            if size > room - used:
                size = room - used
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
