"""The simulated exchange: our orders' book, queue position, matching, latency, accounting.

Everything here is ``@njit`` over preallocated NumPy records (no allocation per event). The
exchange sees market data at *exchange* time and keeps its own book of our orders; the strategy
learns what happened only through responses delivered after the response latency (``loop.py``).

Queue model (per resting order of ours, ``ahead`` = size queued in front of it):

* joining a price: ``ahead`` = the visible size there -- the best level's size (L1), the depth
  level's size (L2), 0 when the order improves the best price; behind the best on L1 data the
  level's size is unknown: ``l1_queue_fraction`` x the last size seen at that price while it was
  the best (``l1_unknown_queue = "front"`` is fraction 0; never seen = 0, i.e. front);
* a trade at the order's price advances it by the trade size; what is left after reaching the front
  fills the order (partial when smaller than the order, floored to the lot);
* a trade through the price (a sell below our bid, a buy above our ask) fills the whole order at
  its price; so does the opposite best moving to or through the order's price;
* a size decrease at the order's price not explained by trades there: risk-averse -- ignored;
  probabilistic -- the part ``f(a) / (f(a) + f(b))`` is taken from ahead (a = ahead, b = behind,
  f(x) = x**n for ``prob-power``, log(1 + x) for ``prob-log``), the rest from behind; ``ahead``
  never exceeds the visible size.

All our fills are maker fills at the order's price, except an order that is not post-only and
crosses on arrival: it fills its whole size at once at the opposite best price (taker fee).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from avmm.jit import NJIT, NJIT_INLINE  # noqa: F401  (NJIT_INLINE: inlined into the loop, no call)

INF_NS = np.int64(1) << np.int64(62)

# queue models
QM_RISK_AVERSE = 0
QM_POWER = 1
QM_LOG = 2
QUEUE_MODELS = {"risk-averse": QM_RISK_AVERSE, "prob-power": QM_POWER, "prob-log": QM_LOG}

# message kinds: requests (strategy -> exchange) and responses (exchange -> strategy)
RQ_PLACE = 1
RQ_CANCEL = 2
RQ_AMEND = 3
RS_ACK = 11
RS_REJECT = 12
RS_CANCELED = 13
RS_FILL = 14

MAX_X = 256  # our live orders at the exchange
QCAP = 1 << 15  # in-flight requests / responses (each ring)
QMASK = QCAP - 1
NCACHE = 4096  # price-level cache slots per side (tick index modulo NCACHE)
MO_CAP = 1 << 15  # fills awaiting their last markout
MO_MASK = MO_CAP - 1
MARKOUT_S = np.array([0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0])
NH = MARKOUT_S.shape[0]
MARKOUT_NS = (MARKOUT_S * 1e9).astype(np.int64)

BT_PARAMS_DTYPE = np.dtype(
    [
        ("tick", "f8"),
        ("lot", "f8"),
        ("maker_fee", "f8"),
        ("taker_fee", "f8"),
        ("inverse", "i8"),
        ("csize", "f8"),
        ("queue_model", "i8"),
        ("queue_power", "f8"),
        ("l1_fraction", "f8"),
        ("risk_check", "i8"),
        ("max_position", "f8"),
        ("post_only", "i8"),
        ("feed_ns", "i8"),
        ("eq_ns", "i8"),
        ("timer_ns", "i8"),
        ("mo_ns", "i8", (NH,)),
    ],
    align=True,
)

BT_STATE_DTYPE = np.dtype(
    [
        # cursors and clocks
        ("ie", "i8"),
        ("il", "i8"),
        ("te_clock", "i8"),
        ("t_last", "i8"),
        ("t_first", "i8"),
        # exchange market view
        ("bid", "f8"),
        ("bid_qty", "f8"),
        ("ask", "f8"),
        ("ask_qty", "f8"),
        ("mid", "f8"),
        ("first_mid", "f8"),
        ("has_book", "i8"),
        ("use_depth", "i8"),
        # accounting (exchange truth)
        ("pos", "f8"),
        ("cash", "f8"),
        ("fees", "f8"),
        ("avg_px", "f8"),
        ("avg_inv", "f8"),
        ("maker_volume", "f8"),  # notional (quote for linear, base for inverse)
        ("taker_volume", "f8"),
        ("fill_qty", "f8"),
        ("n_fills", "i8"),
        ("n_maker_fills", "i8"),
        ("n_taker_fills", "i8"),
        ("max_abs_pos", "f8"),
        ("tw_pos", "f8"),  # integral of pos dt (ns)
        ("tw_pos2", "f8"),
        ("tw_last", "i8"),
        # counters
        ("n_events", "i8"),
        ("n_quotes", "i8"),
        ("n_trades", "i8"),
        ("n_depth", "i8"),
        ("n_orders", "i8"),
        ("n_cancels", "i8"),
        ("n_amends", "i8"),
        ("placed_qty", "f8"),
        ("n_rej_post_only", "i8"),
        ("n_rej_risk", "i8"),
        ("n_rej_other", "i8"),
        ("n_cancel_unknown", "i8"),
        ("n_overflow", "i8"),
        ("n_bad_exch_ts", "i8"),  # exchange stamps <= 0 or far from the local stamp: local used
        ("n_bad_depth", "i8"),  # depth rows with a NaN / inf / non-positive price or negative size
        ("n_timer", "i8"),
        ("ended", "i8"),
        # our orders at the exchange
        ("x_hwm", "i8"),
        # message rings (absolute counters; slot = counter % QCAP)
        ("rq_head", "i8"),
        ("rq_tail", "i8"),
        ("rs_head", "i8"),
        ("rs_tail", "i8"),
        ("last_arrival", "i8"),
        ("last_response", "i8"),
        ("lat_i", "i8"),
        ("lat_j", "i8"),
        # timer, sampling, markouts
        ("next_timer", "i8"),
        ("next_sample", "i8"),
        ("last_sample_ts", "i8"),
        ("n_sout", "i8"),
        ("n_fout", "i8"),
        ("mo_n", "i8"),
        ("mo_ptr", "i8", (NH,)),
        ("mo_due", "i8"),  # min over mo_dues
        ("mo_dues", "i8", (NH,)),  # when the next fill waiting for horizon j reaches it
    ],
    align=True,
)

XORDER_DTYPE = np.dtype(
    [
        ("oid", "i8"),
        ("side", "i8"),
        ("live", "i8"),
        ("ts", "i8"),
        ("px", "f8"),
        ("leaves", "f8"),
        ("ahead", "f8"),
        ("last_qty", "f8"),  # visible size at px when last seen (NaN: unknown)
        ("traded", "f8"),  # traded at px since last_qty was seen
    ],
    align=True,
)

MSG_DTYPE = np.dtype(
    [
        ("ts", "i8"),
        ("kind", "i8"),
        ("oid", "i8"),
        ("side", "i8"),
        ("px", "f8"),
        ("qty", "f8"),
        ("fee", "f8"),
    ],
    align=True,
)

FILL_DTYPE = np.dtype(
    [
        ("ts", "i8"),
        ("oid", "i8"),
        ("side", "i8"),
        ("maker", "i8"),
        ("px", "f8"),
        ("qty", "f8"),
        ("fee", "f8"),
        ("mid", "f8"),
        ("pos", "f8"),
        ("mo", "f8", (NH,)),
    ],
    align=True,
)

SAMPLE_DTYPE = np.dtype(
    [
        ("ts", "i8"),
        ("mid", "f8"),
        ("bid", "f8"),
        ("ask", "f8"),
        ("our_bid", "f8"),
        ("our_ask", "f8"),
        ("pos", "f8"),
        ("pnl", "f8"),  # net of fees, quote currency (base for inverse)
        ("fees", "f8"),
    ],
    align=True,
)


def new_bt_state() -> np.ndarray:
    bs = np.zeros(1, dtype=BT_STATE_DTYPE)
    for f in ("bid", "ask", "mid", "first_mid", "avg_px", "avg_inv"):
        bs[f] = np.nan
    bs["te_clock"] = -INF_NS
    bs["t_first"] = -1
    bs["tw_last"] = -1
    bs["last_sample_ts"] = -INF_NS
    bs["mo_due"] = INF_NS
    bs["mo_dues"] = INF_NS
    return bs


def new_cache() -> tuple[np.ndarray, np.ndarray]:
    """Price-level caches: rows 0/1 = L2 depth bids/asks, rows 2/3 = last L1 size seen bids/asks."""
    keys = np.full((4, NCACHE), np.iinfo(np.int64).min, dtype=np.int64)
    vals = np.zeros((4, NCACHE), dtype=np.float64)
    return keys, vals


# --- small helpers --------------------------------------------------------------------------------


@njit(**NJIT_INLINE)
def tick_index(px, tick):
    return np.int64(math.floor(px / tick + 0.5))


@njit(**NJIT_INLINE)
def cache_get(keys, vals, row, key):
    j = key & (NCACHE - 1)
    if keys[row, j] == key:
        return vals[row, j]
    return math.nan


@njit(**NJIT_INLINE)
def cache_put(keys, vals, row, key, v):
    j = key & (NCACHE - 1)
    keys[row, j] = key
    vals[row, j] = v


@njit(**NJIT_INLINE)
def lat_draw(lat, i, col):
    return lat[i % lat.shape[0], col]


@njit(**NJIT_INLINE)
def push_msg(ring, head, tail, ts, kind, oid, side, px, qty, fee):
    """Append to a ring; returns the new tail (unchanged when full)."""
    if tail - head >= QCAP:
        return tail
    m = ring[tail & QMASK]
    m.ts = ts
    m.kind = kind
    m.oid = oid
    m.side = side
    m.px = px
    m.qty = qty
    m.fee = fee
    return tail + 1


@njit(**NJIT_INLINE)
def respond(bs, lat, rs, t, kind, oid, side, px, qty, fee):
    """Queue a response to the strategy, delivered after the response latency (FIFO)."""
    ts = t + lat_draw(lat, bs.lat_j, 1)
    bs.lat_j += 1
    if ts < bs.last_response:
        ts = bs.last_response
    bs.last_response = ts
    tail = push_msg(rs, bs.rs_head, bs.rs_tail, ts, kind, oid, side, px, qty, fee)
    if tail == bs.rs_tail:
        bs.n_overflow += 1
    bs.rs_tail = tail


@njit(**NJIT_INLINE)
def equity(bp, bs, mid):
    """Net PnL marked to ``mid`` (cash starts at 0)."""
    if bp.inverse != 0:
        return bs.cash - bs.pos * bp.csize / mid
    return bs.cash + bs.pos * mid * bp.csize


# --- accounting and fills -------------------------------------------------------------------------


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
    """Put the fill in the markout ring (forcing out the oldest when the ring is full)."""
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
    cap = ring.shape[0]
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
    cap = ring.shape[0]
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
def fill_order(bp, bs, xo, k, lat, rs, ring, fout, t, px, q, maker):
    od = xo[k]
    fee = book_fill(bp, bs, t, od.side, px, q, maker)
    od.leaves -= q
    if od.leaves <= 1e-9 * bp.lot:
        od.leaves = 0.0
        od.live = 0
    respond(bs, lat, rs, t, RS_FILL, od.oid, od.side, px, q, fee)
    emit_fill_record(bp, bs, ring, fout, t, od.oid, od.side, maker, px, q, fee)


@njit(**NJIT_INLINE)
def floor_lot(q, lot):
    n = math.floor(q / lot + 1e-9)
    return n * lot


# --- queue position -------------------------------------------------------------------------------


@njit(**NJIT_INLINE)
def visible_at(bp, bs, keys, vals, side, px):
    """Visible size at our price: (size, known)."""
    if bs.use_depth != 0:
        v = cache_get(keys, vals, 0 if side > 0 else 1, tick_index(px, bp.tick))
        if math.isnan(v):
            return 0.0, True  # a level missing from the depth book is empty
        return v, True
    if side > 0:
        if bs.has_book != 0 and px == bs.bid:
            return bs.bid_qty, True
        if bs.has_book == 0 or px > bs.bid:
            return 0.0, True
    else:
        if bs.has_book != 0 and px == bs.ask:
            return bs.ask_qty, True
        if bs.has_book == 0 or px < bs.ask:
            return 0.0, True
    return math.nan, False


@njit(**NJIT_INLINE)
def join_queue(bp, bs, keys, vals, od):
    v, known = visible_at(bp, bs, keys, vals, od.side, od.px)
    od.traded = 0.0
    if known:
        od.ahead = v
        od.last_qty = v
    else:  # L1, behind the best: a fraction of the last size seen there (0 = front)
        seen = cache_get(keys, vals, 2 if od.side > 0 else 3, tick_index(od.px, bp.tick))
        od.ahead = 0.0 if math.isnan(seen) else bp.l1_fraction * seen
        od.last_qty = math.nan


@njit(**NJIT_INLINE)
def _qf(model, power, x):
    if model == QM_LOG:
        return math.log1p(x)
    if power == 2.0:  # the default: no pow() call
        return x * x
    return x**power


@njit(**NJIT_INLINE)
def size_update(bp, od, v):
    """The visible size at the order's price is now ``v``."""
    if math.isnan(od.last_qty):
        if od.ahead > v:
            od.ahead = v
        od.last_qty = v
        od.traded = 0.0
        return
    chg = od.last_qty - v - od.traded
    if chg > 0.0 and bp.queue_model != QM_RISK_AVERSE and od.ahead > 0.0:
        front = od.ahead
        back = od.last_qty - od.traded - front
        if back < 0.0:
            back = 0.0
        ff = _qf(bp.queue_model, bp.queue_power, front)
        fb = _qf(bp.queue_model, bp.queue_power, back)
        share = ff / (ff + fb) if ff + fb > 0.0 else 1.0
        est = front - share * chg
        over = back - (1.0 - share) * chg  # what behind cannot absorb comes from ahead
        if over < 0.0:
            est += over
        od.ahead = est if est > 0.0 else 0.0
    if od.ahead > v:
        od.ahead = v
    od.last_qty = v
    od.traded = 0.0


# --- market data at the exchange ------------------------------------------------------------------


@njit(**NJIT_INLINE)
def on_quote_x(bp, bs, xo, keys, vals, lat, rs, ring, fout, t, bid, bid_qty, ask, ask_qty):
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
    bs.mid = 0.5 * (bid + ask)  # after the fills: they are recorded against the mid before this update


@njit(**NJIT_INLINE)
def on_trade_x(bp, bs, xo, keys, vals, lat, rs, ring, fout, t, px, qty, aggr):
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
                v = cache_get(keys, vals, 0 if od.side > 0 else 1, tick_index(od.px, bp.tick))
                if math.isnan(v):
                    v = 0.0
                if od.ahead > v:
                    od.ahead = v
            if od.ahead >= rem:
                od.ahead -= rem
                continue
            left = rem - od.ahead
            od.ahead = 0.0
            q = od.leaves if left >= od.leaves else floor_lot(left, bp.lot)
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
    row = 0 if side > 0 else 1
    cache_put(keys, vals, row, tick_index(px, bp.tick), qty)
    for k in range(bs.x_hwm):
        od = xo[k]
        if od.live != 0 and od.side == side and od.px == px:
            size_update(bp, od, qty)


@njit(**NJIT)
def on_clear_x(bs, xo, keys):
    for r in range(2):
        for j in range(keys.shape[1]):
            keys[r, j] = np.iinfo(np.int64).min
    for k in range(bs.x_hwm):
        xo[k].last_qty = math.nan


# --- order requests arriving at the exchange ------------------------------------------------------


@njit(**NJIT_INLINE)
def find_x(bs, xo, oid):
    for k in range(bs.x_hwm):
        if xo[k].live != 0 and xo[k].oid == oid:
            return k
    return -1


@njit(**NJIT_INLINE)
def exposure(bs, xo, side, skip):
    """Worst-case |position| on ``side`` if every live order there filled (excluding ``skip``)."""
    tot = bs.pos * side
    for k in range(bs.x_hwm):
        if k != skip and xo[k].live != 0 and xo[k].side == side:
            tot += xo[k].leaves
    return tot


@njit(**NJIT_INLINE)
def crosses(bs, side, px):
    if bs.has_book == 0:
        return False
    return px >= bs.ask if side > 0 else px <= bs.bid


@njit(**NJIT_INLINE)
def on_request_x(bp, bs, xo, keys, vals, lat, rs, ring, fout, m):
    t = m.ts
    kind = m.kind
    if kind == RQ_CANCEL:
        k = find_x(bs, xo, m.oid)
        if k < 0:
            bs.n_cancel_unknown += 1  # already filled: its fill is on the way
            return
        xo[k].live = 0
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
        od = xo[k]
        requeue = px != od.px or qty > od.leaves
        od.px = px
        od.leaves = qty
        od.ts = t
        respond(bs, lat, rs, t, RS_ACK, m.oid, side, px, qty, 0.0)
        if requeue:
            join_queue(bp, bs, keys, vals, od)
        if crosses(bs, side, px):  # not post-only: take
            fill_order(bp, bs, xo, k, lat, rs, ring, fout, t, bs.ask if side > 0 else bs.bid, qty, 0)
        return
    # new order
    if bp.post_only != 0 and crosses(bs, side, px):
        bs.n_rej_post_only += 1
        respond(bs, lat, rs, t, RS_REJECT, m.oid, side, px, qty, 0.0)
        return
    if bp.risk_check != 0 and exposure(bs, xo, side, -1) + qty > bp.max_position * (1.0 + 1e-9):
        bs.n_rej_risk += 1
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
    od.live = 1
    od.ts = t
    od.px = px
    od.leaves = qty
    join_queue(bp, bs, keys, vals, od)
    respond(bs, lat, rs, t, RS_ACK, m.oid, side, px, qty, 0.0)
    if crosses(bs, side, px):  # not post-only: takes the opposite best at once (whole size)
        fill_order(bp, bs, xo, slot, lat, rs, ring, fout, t, bs.ask if side > 0 else bs.bid, qty, 0)
    while bs.x_hwm > 0 and xo[bs.x_hwm - 1].live == 0:
        bs.x_hwm -= 1


@njit(**NJIT)
def our_best(bs, xo, side):
    best = math.nan
    for k in range(bs.x_hwm):
        od = xo[k]
        if od.live != 0 and od.side == side:
            if math.isnan(best) or (side > 0 and od.px > best) or (side < 0 and od.px < best):
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
