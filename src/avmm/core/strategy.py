"""The market maker: one strategy core for the backtest loop and the live runtime.

Every handler is ``@njit`` over the four arrays of ``state.py`` (params ``p``, state ``s``,
orders ``o``, actions ``a``) and returns the number of order actions it wrote to ``a``. The
compiled backtest loop calls these ``*_rec`` handlers directly; Python (live runtime, bench) calls
the ``*_at`` entry points of ``entry.py``, which take the address of a ``state.CoreMemory`` block,
through ``engine.Engine``. There is no other copy of the quoting logic.

Per market-data event (``on_quote``) the stages are:

1. market update -- validate and store the best bid/ask (a NaN, non-positive or crossed book is
   counted in ``n_bad_quotes`` and ignored), mid and micro-price;
2. estimator update -- volatility; on the fit timer, the intensity fit;
3. quote computation -- only when a requote is due: (a) the refresh interval has passed, (b) the mid
   moved more than ``mid_tol`` since the last quote, (c) a fill changed the position, (d) an order
   event left the live orders off their targets (``dirty``); otherwise nothing more is done;
4. decision / order diff -- the minimal keep / cancel / place / amend actions against live orders.

Trades (``on_trade``) feed the intensity and VWAP estimators. Own fills (``on_fill``) update the
position and requote at once. Order responses (``on_ack``, ``on_reject``, ``on_canceled``) keep the
order table true.

A sampled log (probability ``log_rate`` per event, xorshift RNG) writes numeric records to the
``s.log`` ring; Python formats only those. With ``s.timed`` set, each stage stamps ``s.tmark``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros as _trailing_zeros

from avmm.core.estimators import intensity_fit, intensity_on_trade, micro_price, vol_sample, vwap_on_trade
from avmm.core.ladder import compute_targets, floor_to
from avmm.core.risk import latch, loss_check, note_send, orders_budget
from avmm.core.state import (
    ACT_AMEND,
    ACT_CANCEL,
    ACT_PLACE,
    AF_TAKE,
    EV_FILL,
    EV_QUOTE,
    EV_TRADE,
    LIMIT_FLATTEN,
    LIMIT_REDUCE,
    LOG_CAP,
    MAX_ACTIONS,
    MAX_ORDERS,
    MK_DIFF,
    MK_ESTIM,
    MK_FILL,
    MK_MARKET,
    MK_QUOTE,
    MK_START,
    OID_MAP,
    OS_FREE,
    OS_LIVE,
    OS_PENDING_AMEND,
    OS_PENDING_CANCEL,
    OS_PENDING_NEW,
    WHY_EXTERNAL,
    WHY_LOSS,
    WHY_LOSS_DAY,
)
from avmm.jit import NJIT, NJIT_INLINE, clock_ns

_XS_MUL = np.uint64(2685821657736338717)
_U12 = np.uint64(12)
_U25 = np.uint64(25)
_U27 = np.uint64(27)
_U11 = np.uint64(11)
_INV_2_53 = 1.0 / 9007199254740992.0
_U0 = np.uint64(0)
_U1 = np.uint64(1)
assert MAX_ORDERS <= 64  # diff_orders keeps a side's working orders as one 64-bit mask of slots
_ctz: Any = _trailing_zeros  # the index of the lowest set bit (an intrinsic: called from compiled code only)


@njit(**NJIT_INLINE)
def _mark(s, i):
    if s.timed != 0:
        s.tmark[i] = clock_ns(s.clockbuf)


@njit(**NJIT_INLINE)
def _sampled(p, s):
    """One xorshift64* draw: True with probability log_rate. No work when log_rate is 0."""
    if p.log_rate <= 0.0:
        return False
    x = s.rng
    x ^= x >> _U12
    x ^= x << _U25
    x ^= x >> _U27
    s.rng = x
    return float((x * _XS_MUL) >> _U11) * _INV_2_53 < p.log_rate


@njit(**NJIT)
def _log(s, ts_ns, kind, n_actions):
    i = s.log_n % LOG_CAP
    rec = s.log[i]
    rec[0] = ts_ns
    rec[1] = kind
    rec[2] = s.mid
    rec[3] = s.pos
    rec[4] = s.lad_px[0, 0] if s.lad_n[0] > 0 else math.nan
    rec[5] = s.lad_px[1, 0] if s.lad_n[1] > 0 else math.nan
    rec[6] = n_actions
    rec[7] = s.sigma_used
    s.log_n += 1


# --- order diff ---------------------------------------------------------------------------------


@njit(**NJIT)
def _emit(a, n, kind, side, oid, level, px, qty):
    if n >= MAX_ACTIONS:
        return n
    act = a[n]
    act.kind = kind
    act.side = side
    act.oid = oid
    act.level = level
    act.px = px
    act.qty = qty
    act.flags = 0
    return n + 1


@njit(**NJIT_INLINE)
def _free_slot_from(s, o, lo):
    """Lowest free order slot at or above ``lo`` (every slot below ``lo`` known to be in use), or
    -1. The lowest free slot overall keeps the slots in use packed below ``s.o_hwm``."""
    for i in range(lo, o.shape[0]):
        if o[i].status == OS_FREE:
            if i >= s.o_hwm:
                s.o_hwm = i + 1
            return i
    return -1


@njit(**NJIT)
def _free_slot(s, o):
    """Lowest free order slot (so the slots in use stay packed below ``s.o_hwm``), or -1."""
    return _free_slot_from(s, o, 0)


@njit(**NJIT)
def diff_orders(p, s, o, a, ts_ns, budget):  # noqa: C901  (compiled kernel)
    """Write the minimal actions turning the live orders into the target ladder. Returns count.

    Per side: (1) an order within ``price_tol_ticks`` of an unmatched target and within
    ``size_tol`` of its size is kept; (2) other working orders are amended onto the remaining
    targets when ``amend`` is on, else cancelled; (3) remaining targets are placed. Orders already
    being cancelled are left alone. At most ``budget`` places + amends (the orders budget, bids
    first): an order that cannot be amended is cancelled, a target not placed is counted in
    ``n_limit_rate``.
    """
    n = 0
    nb = 0  # places + amends written
    lo = 0  # every slot below is in use: nothing is freed here, so each place searches on from the last
    tol = p.price_tol_ticks * p.tick + 1e-9 * p.tick
    # the working orders of each side as a bit mask over the slots (one scan of the table; the passes
    # below visit the set bits in slot order, as a scan would); orders placed here are not in them
    work_b = _U0
    work_a = _U0
    for i in range(s.o_hwm):
        od = o[i]
        if od.status == OS_LIVE or od.status == OS_PENDING_NEW or od.status == OS_PENDING_AMEND:
            if od.side == 1:
                work_b |= _U1 << np.uint64(i)
            elif od.side == -1:
                work_a |= _U1 << np.uint64(i)
    for row in range(2):
        side = 1 if row == 0 else -1
        work = work_b if row == 0 else work_a
        nt = s.lad_n[row]
        for lvl in range(nt):
            s.matched[lvl] = 0
        # 1. keep
        m = work
        while m != _U0:
            k = np.int64(_ctz(m))
            m &= m - _U1
            od = o[k]
            od.level = -1
            for lvl in range(nt):
                if s.matched[lvl] != 0:
                    continue
                tq = s.lad_qty[row, lvl]
                if abs(od.px - s.lad_px[row, lvl]) <= tol and abs(od.leaves - tq) <= p.size_tol * tq + 1e-12:
                    s.matched[lvl] = 1
                    od.level = lvl
                    break
        # 2. amend or cancel the rest
        nxt = 0
        m = work
        while m != _U0:
            k = np.int64(_ctz(m))
            m &= m - _U1
            od = o[k]
            if od.level >= 0:
                continue
            if p.amend != 0 and od.status == OS_LIVE:
                while nxt < nt and s.matched[nxt] != 0:
                    nxt += 1
                if nxt < nt and nb < budget:
                    nb += 1
                    s.matched[nxt] = 1
                    od.prev_px = od.px
                    od.prev_qty = od.leaves
                    od.px = s.lad_px[row, nxt]
                    od.qty = s.lad_qty[row, nxt]
                    od.leaves = od.qty
                    od.level = nxt
                    od.status = OS_PENDING_AMEND
                    od.ts_ns = ts_ns
                    n = _emit(a, n, ACT_AMEND, side, od.oid, nxt, od.px, od.qty)
                    continue
            od.status = OS_PENDING_CANCEL
            od.ts_ns = ts_ns
            n = _emit(a, n, ACT_CANCEL, side, od.oid, od.level, od.px, od.leaves)
        # 3. place
        for lvl in range(nt):
            if s.matched[lvl] != 0:
                continue
            slot = _free_slot_from(s, o, lo)
            if slot < 0 or n >= MAX_ACTIONS:
                s.n_table_full += 1
                break
            if nb >= budget:
                s.n_limit_rate += 1
                break
            lo = slot + 1
            nb += 1
            od = o[slot]
            od.oid = s.next_oid
            s.oid_slot[od.oid & (OID_MAP - 1)] = slot
            s.next_oid += 1
            od.side = side
            od.status = OS_PENDING_NEW
            od.level = lvl
            od.px = s.lad_px[row, lvl]
            od.qty = s.lad_qty[row, lvl]
            od.leaves = od.qty
            od.prev_px = math.nan
            od.prev_qty = math.nan
            od.ts_ns = ts_ns
            n = _emit(a, n, ACT_PLACE, side, od.oid, lvl, od.px, od.qty)
    s.n_actions += n
    return n


# --- decision -----------------------------------------------------------------------------------


@njit(**NJIT_INLINE)
def refresh_due(p, s, ts_ns):
    """The refresh trigger: ``refresh_ns`` since the last quote, or the next grid time passed."""
    if p.refresh_grid != 0:
        return ts_ns >= s.next_refresh_ns
    return ts_ns - s.last_quote_ns >= p.refresh_ns


@njit(**NJIT_INLINE)
def requote_due(p, s, ts_ns):
    """True when one of the requote triggers holds (cheap: a few comparisons)."""
    if p.requote_always != 0 or s.dirty != 0:
        return True
    if refresh_due(p, s, ts_ns):
        return True
    if abs(s.mid - s.last_quote_mid) > p.mid_tol * s.last_quote_mid:
        return True
    return p.fill_requote != 0 and s.pos != s.last_quote_pos


@njit(**NJIT)
def requote(p, s, o, a, ts_ns):
    """Quote computation and order diff, stamped as two stages. Halted: nothing. With an orders
    budget (``risk.max_orders_per_10s``): nothing while it is spent (the requote stays due), at most
    what is left of it (the rest stays due)."""
    budget = MAX_ACTIONS
    if p.max_orders_10s > 0 or s.halted != 0:
        if s.halted != 0:
            s.dirty = 0
            return 0
        budget = orders_budget(p, s, ts_ns)
        if budget <= 0:
            s.n_limit_rate += 1
            s.dirty = 1
            return 0
    held = s.n_limit_rate
    compute_targets(p, s, ts_ns)
    _mark(s, MK_QUOTE)
    n = diff_orders(p, s, o, a, ts_ns, budget)
    _mark(s, MK_DIFF)
    s.last_quote_ns = ts_ns
    if p.refresh_grid != 0 and ts_ns >= s.next_refresh_ns:  # the first grid time after now
        nr = s.next_refresh_ns + p.refresh_ns  # (the grid never moves; a division only after a pause)
        s.next_refresh_ns = nr if ts_ns < nr else (ts_ns // p.refresh_ns + 1) * p.refresh_ns
    s.last_quote_mid = s.mid
    s.last_quote_pos = s.pos
    s.dirty = 0
    if p.max_orders_10s > 0:
        for j in range(n):
            if a[j].kind != ACT_CANCEL:
                note_send(p, s, ts_ns)
        if s.n_limit_rate != held:  # targets held back: due again when the budget frees
            s.dirty = 1
    s.n_requotes += 1
    return n


# --- event handlers -----------------------------------------------------------------------------


@njit(**NJIT_INLINE)
def market_update(p, s, ts_ns, bid, bid_qty, ask, ask_qty):
    """Store a best bid/ask. Returns False (and counts it) for an unusable book."""
    if not (bid > 0.0 and ask > 0.0 and bid_qty >= 0.0 and ask_qty >= 0.0 and bid < ask):
        s.n_bad_quotes += 1  # NaN fails every comparison above
        return False
    if math.isinf(ask) or math.isinf(bid_qty) or math.isinf(ask_qty):
        s.n_bad_quotes += 1
        return False
    if p.k_spread != 0:  # the spread held since the last quote event, for its time average
        if s.spr_prev_ns >= 0 and ts_ns > s.spr_prev_ns:
            dt = float(ts_ns - s.spr_prev_ns)
            s.spr_sum += s.spr_prev * dt
            s.spr_dt += dt
        s.spr_prev = ask - bid
        s.spr_prev_ns = ts_ns
    s.ts_ns = ts_ns
    s.bid = bid
    s.bid_qty = bid_qty
    s.ask = ask
    s.ask_qty = ask_qty
    s.mid = 0.5 * (bid + ask)
    s.micro = micro_price(bid, bid_qty, ask, ask_qty)
    if s.has_book == 0:
        s.has_book = 1
        if s.t0_ns < 0:
            s.t0_ns = ts_ns
        s.last_quote_mid = s.mid
    return True


@njit(**NJIT_INLINE)
def on_quote_rec(p, s, o, a, ts_ns, bid, bid_qty, ask, ask_qty):
    """A best bid/ask update: the whole tick-to-quote cycle. Returns the number of actions."""
    s.n_events += 1
    _mark(s, MK_START)
    if not market_update(p, s, ts_ns, bid, bid_qty, ask, ask_qty):
        return 0
    _mark(s, MK_MARKET)
    vol_sample(p, s, ts_ns)
    if p.int_on != 0 and ts_ns - s.int_last_fit_ns >= p.int_fit_ns:
        intensity_fit(p, s, ts_ns)
    _mark(s, MK_ESTIM)
    n = 0
    if p.loss_on != 0 or s.halted != 0:  # (two comparisons when no loss limit is set and not halted)
        n = risk_on_quote(p, s, o, a, ts_ns)
        if s.halted != 0:
            return n
    if requote_due(p, s, ts_ns):
        n = requote(p, s, o, a, ts_ns)
    if _sampled(p, s):
        _log(s, ts_ns, EV_QUOTE, n)
    return n


@njit(**NJIT_INLINE)
def on_trade_rec(p, s, o, a, ts_ns, px, qty, side):
    """A market trade (side = aggressor: +1 buy, -1 sell, 0 unknown). Returns actions written."""
    s.n_events += 1
    if not (px > 0.0 and qty > 0.0) or math.isinf(px) or math.isinf(qty):
        s.n_bad_trades += 1
        return 0
    if p.int_on != 0:
        intensity_on_trade(p, s, ts_ns, px, side)
    vwap_on_trade(p, s, ts_ns, px, qty)
    if p.int_on != 0 and ts_ns - s.int_last_fit_ns >= p.int_fit_ns:
        intensity_fit(p, s, ts_ns)
    n = 0
    if s.has_book != 0 and (s.dirty != 0 or refresh_due(p, s, ts_ns)):
        n = requote(p, s, o, a, ts_ns)
    if _sampled(p, s):
        _log(s, ts_ns, EV_TRADE, n)
    return n


@njit(**NJIT_INLINE)
def _release(s, o, i):
    """Free slot ``i`` and lower the high-water mark past free slots at the top."""
    o[i].status = OS_FREE
    o[i].leaves = 0.0
    while s.o_hwm > 0 and o[s.o_hwm - 1].status == OS_FREE:
        s.o_hwm -= 1


@njit(**NJIT_INLINE)
def find_order(s, o, oid):
    """The slot of order ``oid``: the id's hint, checked; a scan only when the hint is stale (an
    order older than ``OID_MAP`` newer ones, or an id the table no longer holds)."""
    i = s.oid_slot[oid & (OID_MAP - 1)]
    if i < s.o_hwm and o[i].oid == oid and o[i].status != OS_FREE:
        return i
    for i in range(s.o_hwm):
        if o[i].oid == oid and o[i].status != OS_FREE:
            return i
    return -1


@njit(**NJIT)
def on_fill_rec(p, s, o, a, ts_ns, oid, side, px, qty, fee):
    """An own fill of ``qty`` at ``px`` on ``side`` (+1 our bid, -1 our ask); fee in quote currency
    (negative = rebate). The position is booked even for an order the table no longer knows
    (counted in ``n_unknown_fills``). Requotes at once (trigger c) unless ``fill_requote`` is
    "refresh" (then the next refresh requotes)."""
    _mark(s, MK_START)
    i = find_order(s, o, oid)
    if i >= 0:
        od = o[i]
        od.leaves -= qty
        if od.leaves <= 1e-12 * od.qty:
            _release(s, o, i)
    else:
        s.n_unknown_fills += 1
    s.pos += side * qty
    s.cash -= side * px * qty + fee
    s.fees += fee
    s.n_fills += 1
    s.fill_volume += qty
    _mark(s, MK_FILL)
    n = 0
    if p.loss_on != 0:
        why = loss_check(p, s, ts_ns)
        if why != 0:
            n = limit_hit(p, s, o, a, ts_ns, why)
            if s.halted != 0:
                return n
    if s.has_book != 0 and p.fill_requote != 0:
        n = requote(p, s, o, a, ts_ns)
    if _sampled(p, s):
        _log(s, ts_ns, EV_FILL, n)
    return n


@njit(**NJIT_INLINE)
def on_ack_rec(s, o, oid):
    """The exchange accepted a new order or an amend."""
    i = find_order(s, o, oid)
    if i < 0:
        return 0
    od = o[i]
    if od.status == OS_PENDING_NEW or od.status == OS_PENDING_AMEND:
        od.status = OS_LIVE
    return 1


@njit(**NJIT)
def on_reject_rec(p, s, o, oid):
    """A new order or amend was rejected (e.g. post-only would cross): the order table is put
    back and the next event requotes (trigger d), or the next refresh when ``reject_requote`` is
    "refresh"."""
    i = find_order(s, o, oid)
    s.n_rejects += 1
    if p.reject_requote != 0:
        s.dirty = 1
    if oid == s.flat_oid:
        s.flat_rejects += 1
    if i < 0:
        return 0
    od = o[i]
    if od.status == OS_PENDING_AMEND:
        od.px = od.prev_px
        od.qty = od.prev_qty
        od.leaves = od.prev_qty
        od.status = OS_LIVE
    else:
        _release(s, o, i)
    return 1


@njit(**NJIT_INLINE)
def on_canceled_rec(s, o, oid):
    """An order is gone from the book (our cancel, or the exchange's own): free its slot."""
    i = find_order(s, o, oid)
    if i < 0:
        return 0
    od = o[i]
    if od.status != OS_PENDING_CANCEL:
        s.dirty = 1  # unsolicited: the ladder is missing an order
    _release(s, o, i)
    return 1


@njit(**NJIT)
def on_timer_rec(p, s, o, a, ts_ns):
    """Periodic check without market data: samples the mid for sigma on its grid, refits the
    intensity when due, and requotes when the refresh is due (or an order event left the ladder
    off its targets)."""
    if s.has_book != 0 and p.sigma_interval_ns > 0:
        vol_sample(p, s, ts_ns)
    if p.int_on != 0 and ts_ns - s.int_last_fit_ns >= p.int_fit_ns:
        intensity_fit(p, s, ts_ns)
    if s.has_book != 0 and (s.dirty != 0 or refresh_due(p, s, ts_ns)):
        return requote(p, s, o, a, ts_ns)
    return 0


@njit(**NJIT)
def cancel_all_rec(s, o, a, ts_ns):
    """Cancel every working order and quote nothing more until the next market event requotes
    (``dirty``): the runtime calls it when its feed is unhealthy (stale, crossed, resyncing) and
    stops calling the market handlers until the feed is healthy again."""
    n = 0
    for i in range(s.o_hwm):
        od = o[i]
        if od.status == OS_LIVE or od.status == OS_PENDING_NEW or od.status == OS_PENDING_AMEND:
            od.status = OS_PENDING_CANCEL
            od.ts_ns = ts_ns
            n = _emit(a, n, ACT_CANCEL, od.side, od.oid, od.level, od.px, od.leaves)
    s.dirty = 1
    s.n_actions += n
    return n


# --- risk: halt, flatten, resume (core/risk.py has the limits' arithmetic) ------------------------

FLAT_MAX_REJECTS = 3  # flatten orders rejected before flattening gives up (the core stays halted)


@njit(**NJIT)
def halt_rec(s, o, a, ts_ns, why):
    """Halt: cancel every working order and quote nothing until ``resume_rec`` (market data still
    updates the book and the estimators). ``why``: the ``WHY_*`` bits recorded."""
    latch(s, why, ts_ns)
    if s.halted == 0:
        s.halted = 1
        s.n_halts += 1
    n = cancel_all_rec(s, o, a, ts_ns)
    s.dirty = 0
    return n


@njit(**NJIT)
def flatten_step(p, s, o, a, ts_ns, n):
    """While flattening: one taker order (``AF_TAKE``: a marketable limit at the touch,
    immediate-or-cancel) for the position, when none is in flight; done when |position| is under
    one lot. Appends to ``a[n:]``; returns the new count."""
    if s.flatten == 0 or s.has_book == 0:
        return n
    q = s.pos
    size = floor_to(abs(q), p.lot, p.inv_lot)
    if not size >= p.lot or s.flat_rejects >= FLAT_MAX_REJECTS:
        s.flatten = 0  # flat (or given up: the core stays halted)
        s.risk_seq += 1
        return n
    if s.flat_oid != 0 and find_order(s, o, s.flat_oid) >= 0:
        return n
    if p.max_orders_10s > 0 and orders_budget(p, s, ts_ns) <= 0:
        s.n_limit_rate += 1
        return n
    slot = _free_slot(s, o)
    if slot < 0 or n >= MAX_ACTIONS:
        s.n_table_full += 1
        return n
    side = -1 if q > 0.0 else 1
    px = s.bid if side < 0 else s.ask
    od = o[slot]
    od.oid = s.next_oid
    s.oid_slot[od.oid & (OID_MAP - 1)] = slot
    s.next_oid += 1
    od.side = side
    od.status = OS_PENDING_NEW
    od.level = -1
    od.px = px
    od.qty = size
    od.leaves = size
    od.prev_px = math.nan
    od.prev_qty = math.nan
    od.ts_ns = ts_ns
    s.flat_oid = od.oid
    n2 = _emit(a, n, ACT_PLACE, side, od.oid, -1, px, size)
    a[n].flags = AF_TAKE
    s.n_flatten_orders += 1
    s.n_actions += n2 - n
    if p.max_orders_10s > 0:
        note_send(p, s, ts_ns)
    return n2


@njit(**NJIT)
def limit_hit(p, s, o, a, ts_ns, why):
    """A loss limit bound (``why``: the ``WHY_*`` bits newly breached): ``risk.on_limit``."""
    if why & WHY_LOSS:
        s.n_limit_loss += 1
    if why & WHY_LOSS_DAY:
        s.n_limit_loss_day += 1
    if p.on_limit == LIMIT_REDUCE:
        latch(s, why, ts_ns)
        s.reduce_only = 1
        s.dirty = 1  # requote now: the side that grows |position| goes
        return 0
    n = halt_rec(s, o, a, ts_ns, why)
    if p.on_limit == LIMIT_FLATTEN and s.flatten == 0:
        s.flatten = 1
        s.flat_rejects = 0
        n = flatten_step(p, s, o, a, ts_ns, n)
    return n


@njit(**NJIT)
def risk_on_quote(p, s, o, a, ts_ns):
    """A quote event with a loss limit set or the core halted: the limits checked; while
    flattening, the next taker order."""
    n = 0
    if p.loss_on != 0:
        why = loss_check(p, s, ts_ns)
        if why != 0:
            n = limit_hit(p, s, o, a, ts_ns, why)
    if s.halted != 0:
        n = flatten_step(p, s, o, a, ts_ns, n)
    return n


@njit(**NJIT)
def flatten_rec(p, s, o, a, ts_ns):
    """Halt, then taker orders until the position is 0 (the kill switch's flatten)."""
    n = halt_rec(s, o, a, ts_ns, WHY_EXTERNAL)
    s.flatten = 1
    s.flat_rejects = 0
    return flatten_step(p, s, o, a, ts_ns, n)


@njit(**NJIT)
def resume_rec(s, o, a, ts_ns):
    """Lift a halt or reduce-only (and stop flattening): the next event requotes. A loss limit
    still breached binds again at the next check. A flatten order still in flight is cancelled."""
    n = 0
    if s.flat_oid != 0:
        i = find_order(s, o, s.flat_oid)
        if i >= 0 and o[i].status != OS_PENDING_CANCEL:
            od = o[i]
            od.status = OS_PENDING_CANCEL
            od.ts_ns = ts_ns
            n = _emit(a, n, ACT_CANCEL, od.side, od.oid, od.level, od.px, od.leaves)
            s.n_actions += n
    s.halted = 0
    s.reduce_only = 0
    s.flatten = 0
    s.flat_oid = 0
    s.limit_why = 0
    s.limit_ns = ts_ns
    s.risk_seq += 1
    s.dirty = 1
    return n
