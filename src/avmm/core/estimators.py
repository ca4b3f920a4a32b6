"""Online estimators with fixed memory and O(1) work per event.

All state lives in the ``STATE_DTYPE`` record (``state.py``); these functions take the params
record ``p`` and the state record ``s``.

* **Volatility** -- the variance rate sigma^2 (price^2 per second) of the mid, time-weighted:
  ``num = sum w_i * dmid_i^2``, ``den = sum w_i * dt_i`` with ``w_i = 2^(-(t - t_i)/halflife)``,
  ``sigma^2 = num / den``. Irregular spacing is handled by weighting each squared move by its own
  age; two moves at the same timestamp add their squares (their quadratic variation) with no time.
* **Order-arrival intensity** -- market orders' depth from the mid (``price - mid`` for buy
  aggressors, ``mid - price`` for sell aggressors), counted in depth bins over a rolling window of
  ``int_buckets`` time buckets. The fit (on a timer, O(bins)) regresses
  ``ln lambda(delta_j) = ln A - k * delta_j`` where ``lambda(delta_j)`` is the number of trades that
  reached depth ``>= delta_j`` per second of window. Per side ([0] trades hitting bids, [1] trades
  lifting asks) and pooled ([2], the mean of both sides, i.e. A per side).
* **VWAP** over a rolling window of time buckets, and the **micro-price** (size-weighted mid).

A bucketed window covers the current bucket and the ``n - 1`` before it: a trade at ``t`` counts
while ``t // bucket_ns > now // bucket_ns - n``.
"""

from __future__ import annotations

import math

from numba import njit

from avmm.core.state import MAX_INT_BINS
from avmm.jit import NJIT, NJIT_INLINE

LN2 = math.log(2.0)


@njit(**NJIT)
def roll_buckets(cur, new, nb, ring, tot):
    """Advance a bucketed window from absolute bucket ``cur`` to ``new``.

    Clears the slots that fall out of the window and subtracts them from ``tot``. Returns the new
    current bucket. O(width) per bucket crossed, at most ``nb`` buckets.
    """
    if cur < 0 or new <= cur:
        return new if cur < 0 else cur
    steps = new - cur
    width = tot.shape[0]
    if steps >= nb:
        for slot in range(nb):
            for c in range(width):
                ring[slot, c] = 0.0
        for c in range(width):
            tot[c] = 0.0
        return new
    for j in range(1, steps + 1):
        slot = (cur + j) % nb
        for c in range(width):
            tot[c] -= ring[slot, c]
            ring[slot, c] = 0.0
    return new


# --- volatility -------------------------------------------------------------------------------


@njit(**NJIT_INLINE)
def exp_neg(y):
    """exp(-y) for y >= 0. Events are usually far apart less than 1/1000 of a half-life: there the
    5-term Taylor series is exact to within one ulp (truncation error < y^5/120 < 1e-17) at a
    fraction of the cost of ``math.exp``; elsewhere ``math.exp``."""
    if y < 1e-3:
        return 1.0 - y * (1.0 - y * (0.5 - y * (1.0 / 6.0 - y * (1.0 / 24.0))))
    return math.exp(-y)


@njit(**NJIT_INLINE)
def vol_update(p, s, ts_ns, mid):
    """Feed one mid observation. O(1)."""
    if s.vol_prev_ns < 0:
        s.vol_prev_ns = ts_ns
        s.vol_prev_mid = mid
        return
    dt_ns = ts_ns - s.vol_prev_ns
    if dt_ns < 0:
        dt_ns = 0
    dmid = mid - s.vol_prev_mid
    if dt_ns == 0 and dmid == 0.0:
        return
    dt_s = dt_ns * 1e-9
    decay = exp_neg(dt_s * LN2 / p.vol_halflife_s)
    s.vol_num = s.vol_num * decay + dmid * dmid
    s.vol_den = s.vol_den * decay + dt_s
    s.vol_prev_ns = ts_ns
    s.vol_prev_mid = mid
    if dmid != 0.0:
        s.vol_nobs += 1
    if s.vol_den > 0.0:
        s.vol_var = s.vol_num / s.vol_den


@njit(**NJIT_INLINE)
def vol_sample(p, s, ts_ns):
    """Feed the current mid when the sampling grid says so: every quote event
    (``sigma_interval_ns`` = 0), else the first call at or after each multiple of the interval
    (the timer calls this too, so the mid is sampled on the grid itself)."""
    iv = p.sigma_interval_ns
    if iv <= 0:
        vol_update(p, s, ts_ns, s.mid)
    elif ts_ns >= s.vol_next_ns:
        vol_update(p, s, ts_ns, s.mid)
        nxt = s.vol_next_ns + iv  # the next grid time (a division only after a pause)
        s.vol_next_ns = nxt if ts_ns < nxt else (ts_ns // iv + 1) * iv


@njit(**NJIT)
def vol_sigma(p, s):
    """sigma (price / sqrt s) once warmed up (vol_min_obs mid changes), else NaN."""
    if s.vol_nobs < p.vol_min_obs or s.vol_den <= 0.0:
        return math.nan
    return math.sqrt(s.vol_var)


# --- order-arrival intensity ------------------------------------------------------------------


@njit(**NJIT_INLINE)
def intensity_on_trade(p, s, ts_ns, px, side):
    """Count one market order by its depth from the current mid. O(1) amortised."""
    if s.has_book == 0:
        return
    b = ts_ns // p.int_bucket_ns
    if s.int_bucket < 0:
        s.int_bucket = b
        s.int_start_ns = ts_ns
    elif b > s.int_bucket:
        s.int_bucket = roll_buckets(s.int_bucket, b, p.int_buckets, s.int_ring, s.int_tot)
    mid = s.mid
    if side == 0:
        side = 1 if px >= mid else -1
    if side > 0:
        depth = px - mid
        col = MAX_INT_BINS
    else:
        depth = mid - px
        col = 0
    if depth < 0.0:
        depth = 0.0
    nb = p.int_nbins
    j = int(depth / p.int_bin)
    if j >= nb:
        j = nb - 1
    slot = s.int_bucket % p.int_buckets
    s.int_ring[slot, col + j] += 1.0
    s.int_tot[col + j] += 1.0
    s.int_ntrades += 1


@njit(**NJIT)
def _fit_line(p, s, which, span_s):
    """OLS of ln(N_j / span) on delta_j; N_j = trades reaching depth >= j * bin. Returns ok."""
    nb = p.int_nbins
    w = p.int_bin
    cum = 0.0
    n = 0
    sx = 0.0
    sy = 0.0
    sxx = 0.0
    sxy = 0.0
    total = 0.0
    for j in range(nb - 1, -1, -1):
        if which == 0:
            c = s.int_tot[j]
        elif which == 1:
            c = s.int_tot[MAX_INT_BINS + j]
        else:
            c = 0.5 * (s.int_tot[j] + s.int_tot[MAX_INT_BINS + j])
        cum += c
        if cum > 0.0:
            x = j * w
            y = math.log(cum / span_s)
            n += 1
            sx += x
            sy += y
            sxx += x * x
            sxy += x * y
        total = cum
    if n < 2 or total < p.int_min_trades:
        return 0
    den = n * sxx - sx * sx
    if den <= 0.0:
        return 0
    slope = (n * sxy - sx * sy) / den
    if slope >= 0.0:
        return 0
    intercept = (sy - slope * sx) / n
    s.int_k[which] = -slope
    s.int_A[which] = math.exp(intercept)
    s.int_ok[which] = 1
    return 1


@njit(**NJIT)
def intensity_fit(p, s, ts_ns):
    """Refit A and k from the window (O(bins)); called on the fit timer, off the per-event path."""
    s.int_last_fit_ns = ts_ns
    if s.int_bucket < 0:
        return 0
    b = ts_ns // p.int_bucket_ns
    if b > s.int_bucket:
        s.int_bucket = roll_buckets(s.int_bucket, b, p.int_buckets, s.int_ring, s.int_tot)
    span_ns = ts_ns - s.int_start_ns
    if span_ns > p.int_window_ns:
        span_ns = p.int_window_ns
    if span_ns <= 0:
        return 0
    span_s = span_ns * 1e-9
    ok = 0
    for which in range(3):
        ok += _fit_line(p, s, which, span_s)
    s.int_nfits += 1
    return ok


# --- vwap and micro-price ---------------------------------------------------------------------


@njit(**NJIT)
def vwap_roll(p, s, ts_ns):
    b = ts_ns // p.vwap_bucket_ns
    if s.vwap_bucket < 0:
        s.vwap_bucket = b
    elif b > s.vwap_bucket:
        s.vwap_bucket = roll_buckets(s.vwap_bucket, b, p.vwap_buckets, s.vwap_ring, s.vwap_tot)
        s.vwap = s.vwap_tot[0] / s.vwap_tot[1] if s.vwap_tot[1] > 1e-300 else math.nan


@njit(**NJIT_INLINE)
def vwap_on_trade(p, s, ts_ns, px, qty):
    vwap_roll(p, s, ts_ns)
    slot = s.vwap_bucket % p.vwap_buckets
    s.vwap_ring[slot, 0] += px * qty
    s.vwap_ring[slot, 1] += qty
    s.vwap_tot[0] += px * qty
    s.vwap_tot[1] += qty
    s.vwap = s.vwap_tot[0] / s.vwap_tot[1] if s.vwap_tot[1] > 1e-300 else math.nan


@njit(**NJIT_INLINE)
def micro_price(bid, bid_qty, ask, ask_qty):
    """Size-weighted mid: leans toward the side with less size (the likelier next move)."""
    tot = bid_qty + ask_qty
    if tot <= 0.0:
        return 0.5 * (bid + ask)
    return (bid * ask_qty + ask * bid_qty) / tot
