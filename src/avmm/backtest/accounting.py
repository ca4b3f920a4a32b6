"""The venue's books: fills into position, cash and fees (linear or inverse contracts), realized
and unrealized PnL, the markouts of every fill, and the equity / inventory samples; spot balances
(what the venue holds for our open orders) and USD-M funding payments.

Spot (``bp.spot``): the base balance is ``base0 + pos x contract_size``, the quote balance
``quote0 + cash`` (fees in quote currency). An order the free balance cannot cover -- a buy: price x
qty + the largest fee it could pay, a sell: qty, less what the venue already holds for our other
open orders -- is rejected as Binance rejects it (-2010, "Account has insufficient balance for
requested action."). What an order holds is kept on the order (``lock``) and in two totals, updated
on place, amend, cancel and fill: O(1), no scan.

Funding (``bp.fund_on``): at each funding time the position pays ``pos x mark x rate`` (longs pay a
positive rate; inverse: ``pos x contract_size / mark x rate`` in base), mark = the venue's mid then,
booked in cash.
"""

from __future__ import annotations

import math

import numpy as np
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
def _write_fill(r, bs, t, oid, side, maker, px, q, fee):
    """One fill record, its markouts not known yet (NaN)."""
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


@njit(**NJIT_INLINE)
def emit_fill_record(bp, bs, ring, fout, t, oid, side, maker, px, q, fee):
    """Put the fill in the markout ring (forcing out the oldest when the ring is full), or straight
    out without markouts (``backtest.markouts = false``)."""
    if bp.markouts == 0:
        _write_fill(fout[bs.n_fout], bs, t, oid, side, maker, px, q, fee)
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
    _write_fill(ring[bs.mo_n & MO_MASK], bs, t, oid, side, maker, px, q, fee)
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
def order_need(bp, side, px, qty):
    """What an order takes from the spot balances: quote (price x qty + the fee) for a buy, base
    for a sell."""
    if side > 0:
        return px * qty * bp.csize * (1.0 + bp.fee_lock)
    return qty * bp.csize


@njit(**NJIT_INLINE)
def short_of_balance(bp, bs, side, px, qty, held):
    """Spot: True (and counted) when the free balance cannot cover the order; ``held`` is what the
    venue holds for the order being amended (0 for a new order). An "auto" quote balance is set at
    the first mid (until then, nothing is checked against it)."""
    if bp.spot == 0:
        return False
    need = order_need(bp, side, px, qty)
    if side > 0:
        if math.isnan(bs.quote0):
            if bs.has_book == 0:
                return False
            bs.quote0 = bp.quote_auto * bs.first_mid
        free = bs.quote0 + bs.cash - bs.locked_quote + held
    else:
        free = bs.base0 + bs.pos * bp.csize - bs.locked_base + held
    if need > free + 1e-9 * (need + abs(free)):
        bs.n_rej_balance += 1
        return True
    return False


@njit(**NJIT_INLINE)
def _hold(bs, side, x):
    """What the venue holds for our orders on ``side`` changes by ``x`` (quote for bids, base for
    asks)."""
    if side > 0:
        bs.locked_quote += x
    else:
        bs.locked_base += x


@njit(**NJIT_INLINE)
def unlock_order(bs, od):
    """The venue releases what it holds for ``od`` (gone from the book, or before an amend)."""
    if od.lock != 0.0:
        _hold(bs, od.side, -od.lock)
        od.lock = 0.0


@njit(**NJIT_INLINE)
def lock_order(bp, bs, od):
    """Spot: the venue holds what ``od`` (price, leaves) needs; an amended order's old lock is
    released first."""
    if bp.spot != 0:
        unlock_order(bs, od)
        od.lock = order_need(bp, od.side, od.px, od.leaves)
        _hold(bs, od.side, od.lock)


@njit(**NJIT_INLINE)
def release_fill(bs, od, q):
    """After a partial fill of ``q`` (``od.leaves`` already reduced): the filled part's share of
    the lock returns (a filled order left the live orders, which released all of it)."""
    if od.lock != 0.0:
        rel = od.lock * (q / (od.leaves + q))
        od.lock -= rel
        _hold(bs, od.side, -rel)


@njit(**NJIT_INLINE)
def start_funding(bp, bs, fts, t):
    """The first funding time at or after ``t`` (the venue's first event)."""
    if bp.fund_on == 1:
        bs.next_fund = ((t + bp.fund_ns - 1) // bp.fund_ns) * bp.fund_ns
    elif bp.fund_on == 2:
        i = np.searchsorted(fts, t)
        bs.fund_i = i
        bs.next_fund = fts[i] if i < fts.shape[0] else INF_NS


@njit(**NJIT)
def book_funding(bp, bs, fts, frate, t):
    """The funding payment at ``t`` (= ``bs.next_fund``), then the next funding time."""
    if bp.fund_on == 1:
        rate = bp.fund_rate
        bs.next_fund = t + bp.fund_ns
    else:
        rate = frate[bs.fund_i]
        bs.fund_i += 1
        bs.next_fund = fts[bs.fund_i] if bs.fund_i < fts.shape[0] else INF_NS
    if bs.pos == 0.0:
        return
    mark = bs.mid
    if not (mark > 0.0):
        bs.n_fund_no_mark += 1
        return
    if bp.inverse != 0:
        pay = -bs.pos * bp.csize / mark * rate
    else:
        pay = -bs.pos * mark * bp.csize * rate
    bs.cash += pay
    bs.funding += pay
    bs.n_funding += 1


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
