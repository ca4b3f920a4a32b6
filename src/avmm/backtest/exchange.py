"""Matching at the simulated venue: market data at exchange time, and our requests on arrival.

Everything here is ``@njit`` over preallocated NumPy records (no allocation per event). The
exchange sees market data at *exchange* time and keeps its own book of our orders; the strategy
learns what happened only through responses delivered after the response latency (``loop.py``).

* market data: the book view (best bid/ask and sizes, depth levels), the queue position of each
  resting order of ours (``queue.py``), and fills: a trade at an order's price fills what is left
  of it after its queue reaches the front (partial when smaller than the order, floored to the
  lot); a trade through the price (a sell below our bid, a buy above our ask) fills the whole
  order at its price; so does the opposite best moving to or through the order's price;
* requests (place / cancel / amend, after the entry latency): post-only orders that would cross are
  rejected; the risk check rejects orders that could take |position| past the limit; on spot, an
  order the free balance cannot cover is rejected (``accounting.short_of_balance``); a cancel is
  effective only on arrival, and an order can fill meanwhile. A taker order (``RQ_TAKE``: the
  core's flatten) is never post-only and never rests: it takes what it can on arrival (``take``),
  the rest is cancelled, as an immediate-or-cancel order.

All our fills are maker fills at the order's price, except an order that is not post-only and
crosses on arrival: it takes what the opposite best shows (less what our earlier taker orders took
since the book last changed) at that price (taker fee), and the rest is cancelled. Fills
are booked by ``accounting.py``; responses travel back through ``latency.py``.
"""

from __future__ import annotations

import math

from numba import njit

from avmm.backtest.accounting import (
    book_fill,
    emit_fill_record,
    floor_lot,
    lock_order,
    release_fill,
    short_of_balance,
    unlock_order,
)
from avmm.backtest.latency import respond
from avmm.backtest.queue import cache_put, depth_clear, depth_get, depth_put, join_queue, size_update, tick_index
from avmm.backtest.state import RQ_AMEND, RQ_CANCEL, RQ_TAKE, RS_ACK, RS_CANCELED, RS_FILL, RS_REJECT, XMAP
from avmm.jit import NJIT, NJIT_INLINE


@njit(**NJIT_INLINE)
def _open_add(bs, side, dq):
    """Our live size on ``side`` changes by ``dq`` (kept exact at 0 when nothing is left)."""
    r = 0 if side > 0 else 1
    bs.x_open[r] += dq
    if bs.x_nlive[r] == 0:
        bs.x_open[r] = 0.0


@njit(**NJIT_INLINE)
def _set_live(bs, od, live):
    """An order joins or leaves our live orders: the per-side count and size follow, and one that
    leaves (filled, cancelled) no longer holds any spot balance."""
    r = 0 if od.side > 0 else 1
    od.live = live
    if live != 0:
        bs.x_nlive[r] += 1
        bs.x_open[r] += od.leaves
    else:
        bs.x_nlive[r] -= 1
        _open_add(bs, od.side, -od.leaves)
        unlock_order(bs, od)


@njit(**NJIT_INLINE)
def fill_order(bp, bs, xo, k, lat, rs, ring, fout, t, px, q, maker):
    od = xo[k]
    fee = book_fill(bp, bs, t, od.side, px, q, maker)
    left = od.leaves - q
    if left <= 1e-9 * bp.lot:
        _set_live(bs, od, 0)
        od.leaves = 0.0
    else:
        _open_add(bs, od.side, left - od.leaves)
        od.leaves = left
    release_fill(bs, od, q)
    respond(bs, lat, rs, t, RS_FILL, od.oid, od.side, px, q, fee)
    emit_fill_record(bp, bs, ring, fout, t, od.oid, od.side, maker, px, q, fee)


@njit(**NJIT_INLINE)
def take(bp, bs, xo, k, lat, rs, ring, fout, t):
    """Order ``k`` (not post-only) crosses on arrival: it takes what the opposite best shows and
    our earlier taker orders have not taken since the book last changed, at that price; the part
    left is cancelled (immediate-or-cancel: L1 data says nothing of the levels behind)."""
    od = xo[k]
    r = 0 if od.side > 0 else 1
    shown = bs.ask_qty if od.side > 0 else bs.bid_qty
    q = floor_lot(shown - bs.taken[r], bp.lot)
    if q > od.leaves:
        q = od.leaves
    if q > 0.0:
        bs.taken[r] += q
        fill_order(bp, bs, xo, k, lat, rs, ring, fout, t, bs.ask if od.side > 0 else bs.bid, q, 0)
    if od.live != 0:
        _set_live(bs, od, 0)
        respond(bs, lat, rs, t, RS_CANCELED, od.oid, od.side, od.px, od.leaves, 0.0)


@njit(**NJIT_INLINE)
def on_quote_x(bp, bs, xo, keys, vals, lat, rs, ring, fout, t, bid, bid_qty, ask, ask_qty):  # noqa: C901  (compiled kernel)
    if not (bid > 0.0 and ask > 0.0 and bid < ask and bid_qty >= 0.0 and ask_qty >= 0.0):
        return
    if math.isinf(ask) or math.isinf(bid_qty) or math.isinf(ask_qty):
        return
    if bs.has_book == 0:
        bs.has_book = 1
        bs.mid = 0.5 * (bid + ask)
        bs.first_mid = bs.mid
    elif bs.use_depth == 0:  # a best price left behind: remember its last size (L1 queue guess)
        if bid != bs.bid:
            cache_put(keys, vals, 2, tick_index(bs.bid, bp.tick), bs.bid_qty)
        if ask != bs.ask:
            cache_put(keys, vals, 3, tick_index(bs.ask, bp.tick), bs.ask_qty)
    bs.bid = bid
    bs.bid_qty = bid_qty
    bs.ask = ask
    bs.ask_qty = ask_qty
    bs.taken[0] = 0.0
    bs.taken[1] = 0.0
    for k in range(bs.x_hwm):
        od = xo[k]
        if od.live == 0:
            continue
        px = od.px
        if od.side > 0:
            if ask <= px:  # the market came to our bid: it fills
                fill_order(bp, bs, xo, k, lat, rs, ring, fout, t, px, od.leaves, 1)
            elif bs.use_depth == 0:
                if px == bid:
                    size_update(bp, od, bid_qty)
                elif px > bid:
                    od.ahead = 0.0
                    od.last_qty = 0.0
                    od.traded = 0.0
                else:
                    od.last_qty = math.nan
                    if bp.l1_empty_left != 0:
                        od.ahead = 0.0
        else:
            if bid >= px:
                fill_order(bp, bs, xo, k, lat, rs, ring, fout, t, px, od.leaves, 1)
            elif bs.use_depth == 0:
                if px == ask:
                    size_update(bp, od, ask_qty)
                elif px < ask:
                    od.ahead = 0.0
                    od.last_qty = 0.0
                    od.traded = 0.0
                else:
                    od.last_qty = math.nan
                    if bp.l1_empty_left != 0:
                        od.ahead = 0.0
    bs.mid = 0.5 * (bid + ask)  # after the fills: they are recorded against the mid before this update


@njit(**NJIT_INLINE)
def on_trade_x(bp, bs, xo, keys, vals, lat, rs, ring, fout, t, px, qty, aggr):  # noqa: C901  (compiled kernel)
    if not (px > 0.0 and qty > 0.0) or math.isinf(px) or math.isinf(qty):
        return
    if aggr == 0:
        if bs.has_book == 0:
            return
        if px <= bs.bid:
            aggr = -1
        elif px >= bs.ask:
            aggr = 1
        else:
            return
    rem = qty  # what the trade has left for our orders at its price after their queues
    for k in range(bs.x_hwm):
        od = xo[k]
        if od.live == 0 or od.side != -aggr:
            continue
        through = px < od.px if od.side > 0 else px > od.px
        if through:
            fill_order(bp, bs, xo, k, lat, rs, ring, fout, t, od.px, od.leaves, 1)
        elif px == od.px:
            od.traded += qty
            if bs.use_depth != 0:  # L2: never more ahead than the depth book shows there (a level
                # missing after a CLEAR + snapshot is empty)
                v = depth_get(bs, keys, vals, 0 if od.side > 0 else 1, tick_index(od.px, bp.tick))
                if math.isnan(v):
                    v = 0.0
                if od.ahead > v:
                    od.ahead = v
            if od.ahead >= rem:
                od.ahead -= rem
                continue
            left = rem - od.ahead
            od.ahead = 0.0
            q = od.leaves if left >= od.leaves or bp.partial_fills == 0 else floor_lot(left, bp.lot)
            if q > 0.0:
                fill_order(bp, bs, xo, k, lat, rs, ring, fout, t, od.px, q, 1)
                # our other orders at this price queue behind this one: the market volume that
                # traded ahead of it traded ahead of them too; only our own fill is not theirs
                rem -= q


@njit(**NJIT_INLINE)
def on_depth_x(bp, bs, xo, keys, vals, side, px, qty):
    if not (px > 0.0 and qty >= 0.0) or math.isinf(px) or math.isinf(qty):
        bs.n_bad_depth += 1
        return
    bs.use_depth = 1
    depth_put(bs, keys, vals, 0 if side > 0 else 1, tick_index(px, bp.tick), qty)
    for k in range(bs.x_hwm):
        od = xo[k]
        if od.live != 0 and od.side == side and od.px == px:
            size_update(bp, od, qty)


@njit(**NJIT)
def on_clear_x(bs, xo, keys):
    depth_clear(bs, keys)
    for k in range(bs.x_hwm):
        xo[k].last_qty = math.nan


@njit(**NJIT_INLINE)
def find_x(bs, xo, oid):
    """The slot of live order ``oid``: the id's hint, checked; a scan only when the hint is stale
    (an order older than ``XMAP`` newer ones, or an id that is not live)."""
    k = bs.x_slot[oid & (XMAP - 1)]
    if k < bs.x_hwm and xo[k].live != 0 and xo[k].oid == oid:
        return k
    for k in range(bs.x_hwm):
        if xo[k].live != 0 and xo[k].oid == oid:
            return k
    return -1


@njit(**NJIT_INLINE)
def exposure(bs, xo, side, skip):
    """Worst-case |position| on ``side`` if every live order there filled (excluding ``skip``)."""
    tot = bs.pos * side + bs.x_open[0 if side > 0 else 1]
    if skip >= 0:
        tot -= xo[skip].leaves
    return tot


@njit(**NJIT_INLINE)
def crosses(bs, side, px):
    if bs.has_book == 0:
        return False
    return px >= bs.ask if side > 0 else px <= bs.bid


@njit(**NJIT)
def take_order_x(bp, bs, xo, lat, rs, ring, fout, m):
    """A taker order (``RQ_TAKE``) on arrival: the risk and balance checks of any order, then what
    the opposite best shows, up to its size, at that price (``take``); the rest (all of it when it
    does not cross any more) cancelled. It never rests in the book."""
    t, side, px, qty = m.ts, m.side, m.px, m.qty
    if bp.risk_check != 0 and exposure(bs, xo, side, -1) + qty > bp.max_position * (1.0 + 1e-9):
        bs.n_rej_risk += 1
        respond(bs, lat, rs, t, RS_REJECT, m.oid, side, px, qty, 0.0)
        return
    if short_of_balance(bp, bs, side, px, qty, 0.0):
        respond(bs, lat, rs, t, RS_REJECT, m.oid, side, px, qty, 0.0)
        return
    slot = -1
    for k in range(xo.shape[0]):
        if xo[k].live == 0:
            slot = k
            break
    if slot < 0:
        bs.n_rej_other += 1
        respond(bs, lat, rs, t, RS_REJECT, m.oid, side, px, qty, 0.0)
        return
    if slot >= bs.x_hwm:
        bs.x_hwm = slot + 1
    od = xo[slot]
    od.oid = m.oid
    od.side = side
    od.ts = t
    od.px = px
    od.leaves = qty
    od.ahead = 0.0
    od.last_qty = math.nan
    od.traded = 0.0
    lock_order(bp, bs, od)
    _set_live(bs, od, 1)
    bs.x_slot[m.oid & (XMAP - 1)] = slot
    respond(bs, lat, rs, t, RS_ACK, m.oid, side, px, qty, 0.0)
    if crosses(bs, side, px):
        take(bp, bs, xo, slot, lat, rs, ring, fout, t)  # the rest cancelled there
    else:
        _set_live(bs, od, 0)
        respond(bs, lat, rs, t, RS_CANCELED, m.oid, side, px, od.leaves, 0.0)
    while bs.x_hwm > 0 and xo[bs.x_hwm - 1].live == 0:
        bs.x_hwm -= 1


@njit(**NJIT_INLINE)
def on_request_x(bp, bs, xo, keys, vals, lat, rs, ring, fout, m):  # noqa: C901  (compiled kernel)
    t = m.ts
    kind = m.kind
    if kind == RQ_CANCEL:
        k = find_x(bs, xo, m.oid)
        if k < 0:
            bs.n_cancel_unknown += 1  # already filled: its fill is on the way
            return
        _set_live(bs, xo[k], 0)
        respond(bs, lat, rs, t, RS_CANCELED, m.oid, m.side, xo[k].px, xo[k].leaves, 0.0)
        return
    side = m.side
    px = m.px
    qty = m.qty
    if kind == RQ_AMEND:
        k = find_x(bs, xo, m.oid)
        if k < 0:
            bs.n_rej_other += 1
            respond(bs, lat, rs, t, RS_REJECT, m.oid, side, px, qty, 0.0)
            return
        if bp.post_only != 0 and crosses(bs, side, px):
            bs.n_rej_post_only += 1
            respond(bs, lat, rs, t, RS_REJECT, m.oid, side, px, qty, 0.0)
            return
        if bp.risk_check != 0 and exposure(bs, xo, side, k) + qty > bp.max_position * (1.0 + 1e-9):
            bs.n_rej_risk += 1
            respond(bs, lat, rs, t, RS_REJECT, m.oid, side, px, qty, 0.0)
            return
        if short_of_balance(bp, bs, side, px, qty, xo[k].lock):  # the old order stays
            respond(bs, lat, rs, t, RS_REJECT, m.oid, side, px, qty, 0.0)
            return
        od = xo[k]
        requeue = px != od.px or qty > od.leaves
        od.px = px
        _open_add(bs, od.side, qty - od.leaves)
        od.leaves = qty
        lock_order(bp, bs, od)
        od.ts = t
        respond(bs, lat, rs, t, RS_ACK, m.oid, side, px, qty, 0.0)
        if requeue:
            join_queue(bp, bs, keys, vals, od)
        if crosses(bs, side, px):  # not post-only: take
            take(bp, bs, xo, k, lat, rs, ring, fout, t)
        return
    # new order
    if kind == RQ_TAKE:
        take_order_x(bp, bs, xo, lat, rs, ring, fout, m)
        return
    if bp.post_only != 0 and crosses(bs, side, px):
        bs.n_rej_post_only += 1
        respond(bs, lat, rs, t, RS_REJECT, m.oid, side, px, qty, 0.0)
        return
    if bp.risk_check != 0 and exposure(bs, xo, side, -1) + qty > bp.max_position * (1.0 + 1e-9):
        bs.n_rej_risk += 1
        respond(bs, lat, rs, t, RS_REJECT, m.oid, side, px, qty, 0.0)
        return
    if short_of_balance(bp, bs, side, px, qty, 0.0):
        respond(bs, lat, rs, t, RS_REJECT, m.oid, side, px, qty, 0.0)
        return
    slot = -1
    for k in range(xo.shape[0]):
        if xo[k].live == 0:
            slot = k
            break
    if slot < 0:
        bs.n_rej_other += 1
        respond(bs, lat, rs, t, RS_REJECT, m.oid, side, px, qty, 0.0)
        return
    if slot >= bs.x_hwm:
        bs.x_hwm = slot + 1
    od = xo[slot]
    od.oid = m.oid
    od.side = side
    od.ts = t
    od.px = px
    od.leaves = qty
    lock_order(bp, bs, od)
    _set_live(bs, od, 1)
    bs.x_slot[m.oid & (XMAP - 1)] = slot
    join_queue(bp, bs, keys, vals, od)
    respond(bs, lat, rs, t, RS_ACK, m.oid, side, px, qty, 0.0)
    if crosses(bs, side, px):  # not post-only: takes the opposite best at once
        take(bp, bs, xo, slot, lat, rs, ring, fout, t)
    while bs.x_hwm > 0 and xo[bs.x_hwm - 1].live == 0:
        bs.x_hwm -= 1
