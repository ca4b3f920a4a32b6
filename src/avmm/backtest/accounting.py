"""The venue's books: fills into position, cash and fees (linear or inverse contracts), realized
and unrealized PnL, the markouts of every fill, and the equity / inventory samples.
"""

from __future__ import annotations

import math

from numba import njit

from avmm.backtest.state import INF_NS, MO_MASK, NH
from avmm.jit import NJIT, NJIT_INLINE


@njit(**NJIT_INLINE)
def equity(bp, bs, mid):
    """Net PnL marked to ``mid`` (cash starts at 0)."""
    if bp.inverse != 0:
        return bs.cash - bs.pos * bp.csize / mid
    return bs.cash + bs.pos * mid * bp.csize


@njit(**NJIT_INLINE)
def book_fill(bp, bs, t, side, px, q, maker):
    """Cash, fees, position, average entry, time-weighted inventory. Returns the fee."""
    if bp.inverse != 0:
        notional = q * bp.csize / px
        bs.cash += side * notional
    else:
        notional = px * q * bp.csize
        bs.cash -= side * notional
    fee = (bp.maker_fee if maker != 0 else bp.taker_fee) * notional
    bs.cash -= fee
    bs.fees += fee
    if maker != 0:
        bs.maker_volume += notional
        bs.n_maker_fills += 1
    else:
        bs.taker_volume += notional
        bs.n_taker_fills += 1
    if bs.tw_last >= 0:
        dt = float(t - bs.tw_last)
        bs.tw_pos += bs.pos * dt
        bs.tw_pos2 += bs.pos * bs.pos * dt
    bs.tw_last = t
    old = bs.pos
    new = old + side * q
    if old == 0.0 or (old > 0.0) == (side > 0):
        a = abs(old)
        if a == 0.0 or math.isnan(bs.avg_px):
            bs.avg_px = px
            bs.avg_inv = 1.0 / px
        else:
            bs.avg_px = (bs.avg_px * a + px * q) / (a + q)
            bs.avg_inv = (bs.avg_inv * a + q / px) / (a + q)
    elif new * old < 0.0:
        bs.avg_px = px
        bs.avg_inv = 1.0 / px
    if abs(new) < 1e-9 * bp.lot:
        new = 0.0
    bs.pos = new
    if abs(new) > bs.max_abs_pos:
        bs.max_abs_pos = abs(new)
    bs.fill_qty += q
    bs.n_fills += 1
    return fee


@njit(**NJIT_INLINE)
def emit_fill_record(bp, bs, ring, fout, t, oid, side, maker, px, q, fee):
    """Put the fill in the markout ring (forcing out the oldest when the ring is full), or straight
    out without markouts (``backtest.markouts = false``)."""
    if bp.markouts == 0:
        r = fout[bs.n_fout]
        r.ts = t
        r.oid = oid
        r.side = side
        r.maker = maker
        r.px = px
        r.qty = q
        r.fee = fee
        r.mid = bs.mid
        r.pos = bs.pos
        for j in range(NH):
            r.mo[j] = math.nan
        bs.n_fout += 1
        return 0
    cap = ring.shape[0]
    last = bs.mo_ptr[NH - 1]
    if bs.mo_n - last >= cap:  # ring full: the oldest leaves without its remaining markouts
        if bs.n_fout < fout.shape[0]:
            fout[bs.n_fout] = ring[last & MO_MASK]
            bs.n_fout += 1
        for j in range(NH):
            if bs.mo_ptr[j] <= last:
                bs.mo_ptr[j] = last + 1
    for j in range(NH):
        if bs.mo_ptr[j] == bs.mo_n:  # horizon j was waiting for no fill: this one is next
            bs.mo_dues[j] = t + bp.mo_ns[j]
            if bs.mo_dues[j] < bs.mo_due:
                bs.mo_due = bs.mo_dues[j]
    r = ring[bs.mo_n & MO_MASK]
    r.ts = t
    r.oid = oid
    r.side = side
    r.maker = maker
    r.px = px
    r.qty = q
    r.fee = fee
    r.mid = bs.mid
    r.pos = bs.pos
    for j in range(NH):
        r.mo[j] = math.nan
    bs.mo_n += 1
    return 0


@njit(**NJIT_INLINE)
def advance_markouts(bp, bs, ring, fout, t):
    """Record the mid for every fill whose horizon ended before ``t``; move completed fills out."""
    due = INF_NS
    for j in range(NH):
        if bs.mo_dues[j] < t:
            h = bp.mo_ns[j]
            k = bs.mo_ptr[j]
            nd = INF_NS
            while k < bs.mo_n:
                r = ring[k & MO_MASK]
                if r.ts + h >= t:
                    nd = r.ts + h
                    break
                if j == NH - 1:
                    if bs.n_fout >= fout.shape[0]:
                        nd = r.ts + h
                        break
                    r.mo[j] = bs.mid
                    fout[bs.n_fout] = r
                    bs.n_fout += 1
                else:
                    r.mo[j] = bs.mid
                k += 1
            bs.mo_ptr[j] = k
            bs.mo_dues[j] = nd
        if bs.mo_dues[j] < due:
            due = bs.mo_dues[j]
    bs.mo_due = due


@njit(**NJIT)
def flush_markouts(bs, ring, fout):
    """End of data: the fills still waiting leave with NaN for the horizons not reached."""
    k = bs.mo_ptr[NH - 1]
    while k < bs.mo_n and bs.n_fout < fout.shape[0]:
        fout[bs.n_fout] = ring[k & MO_MASK]
        bs.n_fout += 1
        k += 1
    for j in range(NH):
        if bs.mo_ptr[j] < k:
            bs.mo_ptr[j] = k
    bs.mo_ptr[NH - 1] = k
    for j in range(NH):
        bs.mo_dues[j] = INF_NS
    bs.mo_due = INF_NS
    return bs.mo_n - k


@njit(**NJIT_INLINE)
def floor_lot(q, lot):
    n = math.floor(q / lot + 1e-9)
    return n * lot


@njit(**NJIT)
def our_best(bs, xo, side):
    best = math.nan
    for k in range(bs.x_hwm):
        od = xo[k]
        if (
            od.live != 0
            and od.side == side
            and (math.isnan(best) or (side > 0 and od.px > best) or (side < 0 and od.px < best))
        ):
            best = od.px
    return best


@njit(**NJIT)
def take_sample(bp, bs, xo, sout, ts):
    r = sout[bs.n_sout]
    r.ts = ts
    r.mid = bs.mid
    r.bid = bs.bid
    r.ask = bs.ask
    r.our_bid = our_best(bs, xo, 1)
    r.our_ask = our_best(bs, xo, -1)
    r.pos = bs.pos
    r.pnl = equity(bp, bs, bs.mid)
    r.fees = bs.fees
    bs.n_sout += 1
    bs.last_sample_ts = ts


@njit(**NJIT)
def skip_gap(bp, bs, xo, sout, t_end):
    """Nothing but the timer happens from ``bs.t_last`` to ``t_end`` (longer than ``gap_ns``): one
    sample at the gap's start (the state it keeps throughout), the next one on the last grid time
    before its end; the timer's next tick the last before its end; the gap's time not counted in
    the time-weighted inventory. The caller leaves room for one sample."""
    t0 = bs.t_last
    bs.n_gaps += 1
    bs.gap_total += t_end - t0
    bs.gap_end = t_end
    if bs.has_book != 0 and bs.next_sample <= t_end:
        take_sample(bp, bs, xo, sout, bs.next_sample)
        last_grid = (t_end // bp.eq_ns) * bp.eq_ns
        bs.next_sample = max(bs.next_sample + bp.eq_ns, last_grid)
    if bs.next_timer > 0 and bp.timer_ns > 0 and bs.next_timer < t_end:
        bs.next_timer += ((t_end - bs.next_timer) // bp.timer_ns) * bp.timer_ns
    if bs.tw_last >= 0:
        dt = float(t0 - bs.tw_last)
        bs.tw_pos += bs.pos * dt
        bs.tw_pos2 += bs.pos * bs.pos * dt
        bs.tw_last = t_end
