"""The compiled event loop: exchange simulator + the strategy core, chunk by chunk.

``run_chunk`` merges five time-ordered streams and handles the earliest item each step (ties in
this order):

1. market data at the exchange, in exchange time (``exch_ts``; a row stamped earlier than the
   previous one is taken at the previous time) -- updates the exchange's book, our queues, fills;
2. our requests arriving at the exchange (sent at local time + entry latency, FIFO);
3. responses arriving at the strategy (acks, rejects, cancel acks, fills; + response latency, FIFO);
4. the strategy's timer (local time, every ``timer_s``);
5. market data at the strategy, in local time (``local_ts`` + ``feed_latency_ms``): the strategy
   core's ``on_quote_rec`` / ``on_trade_rec``; their actions become requests.

Perpetuals with funding: the venue's funding times (``fund_ts`` / ``fund_rate``, or a constant rate
on the UTC grid) come before anything else at their time; a payment is booked in cash
(``accounting.book_funding``). Funding times inside a gap are booked at the last mid.

A pause in the data longer than ``gap_ns`` (stores far apart in time, a feed down for hours) is a
gap: one equity sample at its start and one at its end, the timer's next tick moved to its end
(keeping its phase), and its time left out of the session and the time-weighted inventory -- the
work and the memory do not grow with its length.

So the strategy never sees an event before its local time, an order cannot fill before it reaches
the exchange (a row at the arrival time itself is not matched against it), and a cancel takes effect
only when it arrives. Depth rows (DEPTH / SNAPSHOT / CLEAR) feed the exchange's queue sizes; the
strategy is driven by QUOTE and TRADE rows.

Everything lives in preallocated arrays carried across calls; ``run_chunk`` returns when it needs
the next chunk (``ST_NEED``), when an output buffer is full (``ST_FULL``), or at the end
(``ST_DONE``, only with ``final``).
"""

from __future__ import annotations

import numpy as np
from numba import carray, njit

from avmm.backtest.accounting import (
    advance_markouts,
    book_funding,
    flush_markouts,
    skip_gap,
    start_funding,
    take_sample,
)
from avmm.backtest.exchange import on_clear_x, on_depth_x, on_quote_x, on_request_x, on_trade_x
from avmm.backtest.latency import lat_next, push_msg
from avmm.backtest.state import (
    FILL_DTYPE,
    INF_NS,
    MAX_X,
    MSG_DTYPE,
    QMASK,
    RQ_AMEND,
    RQ_CANCEL,
    RQ_PLACE,
    RQ_TAKE,
    RS_ACK,
    RS_CANCELED,
    RS_FILL,
    RS_REJECT,
    SAMPLE_DTYPE,
    XORDER_DTYPE,
)
from avmm.core.signal_none import signal_depth, signal_step  # SIGNAL SLOT (replaced in compiled copies)
from avmm.core.state import ACT_AMEND, ACT_CANCEL, ACT_PLACE, ACTION_DTYPE, ORDER_DTYPE
from avmm.core.strategy import (
    on_ack_rec,
    on_canceled_rec,
    on_fill_rec,
    on_quote_rec,
    on_reject_rec,
    on_timer_rec,
    on_trade_rec,
)
from avmm.events import CLEAR, DEPTH, QUOTE, SNAPSHOT, TRADE
from avmm.jit import NJIT, NJIT_INLINE, voidptr

ST_NEED = 0
ST_FULL = 1
ST_DONE = 2
ST_GROW = 3  # the depth book's table is half full on a side: the caller grows it and calls again

# an exchange stamp further than this from the row's local stamp is not usable (clock error, bad
# data): the row is taken at its local time and counted (``n_bad_exch_ts``)
MAX_CLOCK_SKEW_NS = 600 * 1_000_000_000

FOUT_MARGIN = 2 * MAX_X + 16


@njit(**NJIT_INLINE)
def send_actions(bs, a, n, lat, rq, t):
    """The strategy's actions leave at local time ``t`` and reach the exchange after the entry
    latency, in order."""
    for j in range(n):
        act = a[j]
        if act.kind == ACT_PLACE:
            kind = RQ_PLACE if act.flags == 0 else RQ_TAKE
            bs.n_orders += 1
            bs.placed_qty += act.qty
        elif act.kind == ACT_CANCEL:
            kind = RQ_CANCEL
            bs.n_cancels += 1
        elif act.kind == ACT_AMEND:
            kind = RQ_AMEND
            bs.n_amends += 1
            bs.placed_qty += act.qty
        else:
            continue
        ts = t + lat[bs.lat_i, 0]
        bs.lat_i = lat_next(bs.lat_i, lat)
        if ts < bs.last_arrival:
            ts = bs.last_arrival
        bs.last_arrival = ts
        tail = push_msg(rq, bs.rq_head, bs.rq_tail, ts, kind, act.oid, act.side, act.px, act.qty, 0.0)
        if tail == bs.rq_tail:
            bs.n_overflow += 1
        bs.rq_tail = tail


@njit(**NJIT_INLINE)
def next_tick(bp, t):
    """The timer's next time: ``timer_ns`` after ``t``, or the next multiple of ``timer_ns`` when
    the strategy refreshes on a grid (``quoting.refresh_mode = "grid"``)."""
    if bp.timer_grid != 0:
        return (t // bp.timer_ns + 1) * bp.timer_ns
    return t + bp.timer_ns


@njit(**NJIT)
def run_chunk(  # noqa: C901  (compiled event loop)
    params,
    state,
    o_,
    a_,
    bparams,
    bstate,
    xo_,
    keys_,
    vals_,
    lat_,
    rq_,
    rs_,
    ring_,
    fout_,
    sout_,
    fund_ts,
    fund_rate,
    exch_ts,
    local_ts,
    px,
    qty,
    px2,
    qty2,
    kind,
    side,
    final,
):
    p = params[0]
    s = state[0]
    bp = bparams[0]
    bs = bstate[0]
    # views without a meminfo over the same memory: passing them to the (many) helpers then costs no
    # atomic reference counting (the caller keeps the arrays alive for the whole call)
    o = carray(voidptr(o_.ctypes.data), o_.shape[0], ORDER_DTYPE)
    a = carray(voidptr(a_.ctypes.data), a_.shape[0], ACTION_DTYPE)
    xo = carray(voidptr(xo_.ctypes.data), xo_.shape[0], XORDER_DTYPE)
    keys = carray(voidptr(keys_.ctypes.data), (keys_.shape[0], keys_.shape[1]), np.int64)
    vals = carray(voidptr(vals_.ctypes.data), (vals_.shape[0], vals_.shape[1]), np.float64)
    lat = carray(voidptr(lat_.ctypes.data), (lat_.shape[0], lat_.shape[1]), np.int64)
    rq = carray(voidptr(rq_.ctypes.data), rq_.shape[0], MSG_DTYPE)
    rs = carray(voidptr(rs_.ctypes.data), rs_.shape[0], MSG_DTYPE)
    ring = carray(voidptr(ring_.ctypes.data), ring_.shape[0], FILL_DTYPE)
    fout = carray(voidptr(fout_.ctypes.data), fout_.shape[0], FILL_DTYPE)
    sout = carray(voidptr(sout_.ctypes.data), sout_.shape[0], SAMPLE_DTYPE)
    n = exch_ts.shape[0]
    fcap = fout.shape[0] - FOUT_MARGIN
    scap = sout.shape[0]
    while True:
        if bs.n_fout >= fcap:
            return ST_FULL
        # candidates
        ie = bs.ie
        bad_te = False
        if ie < n:
            te = exch_ts[ie]
            tl_ie = local_ts[ie]
            bad_te = te <= 0 or te > tl_ie + MAX_CLOCK_SKEW_NS or te < tl_ie - MAX_CLOCK_SKEW_NS
            if bad_te:
                te = tl_ie  # an unusable exchange stamp: the row is taken at its local time
            if te < bs.te_clock:
                te = bs.te_clock
        elif final == 0:
            return ST_NEED
        else:
            te = INF_NS
        t = te
        w = 0
        if bs.rq_head < bs.rq_tail:
            ta = rq[bs.rq_head & QMASK].ts
            if ta < t:
                t = ta
                w = 1
        if bs.rs_head < bs.rs_tail:
            tr = rs[bs.rs_head & QMASK].ts
            if tr < t:
                t = tr
                w = 2
        il = bs.il
        if il < n:
            tl = local_ts[il] + bp.feed_ns
            # a gap: nothing but the timer for longer than gap_ns -> skipped at no cost
            tn = tl if tl < t else t
            if tn - bs.t_last > bp.gap_ns and bs.t_last > 0 and tn != bs.gap_end:
                if bs.n_sout >= scap:
                    return ST_FULL
                skip_gap(bp, bs, xo, sout, tn)
            if bs.next_timer > 0 and bs.next_timer < t:
                t = bs.next_timer
                w = 3
            if bs.next_fund <= t:  # funding: before anything else at its time
                t = bs.next_fund
                w = 5
            if tl < t:
                t = tl
                w = 4
        elif final == 0:  # the strategy's rows of the next chunk may come before anything here
            return ST_NEED
        if t >= INF_NS:
            break
        # equity / inventory samples on the grid, before anything at t changes the state
        if t >= bs.next_sample:
            if bs.has_book == 0:
                bs.next_sample = (t // bp.eq_ns + 1) * bp.eq_ns
            else:
                while bs.next_sample <= t:
                    if bs.n_sout >= scap:
                        return ST_FULL
                    take_sample(bp, bs, xo, sout, bs.next_sample)
                    bs.next_sample += bp.eq_ns
        if w == 0:
            k = kind[ie]
            if (k == DEPTH or k == SNAPSHOT) and (bs.d_n[0] >= bs.d_limit or bs.d_n[1] >= bs.d_limit):  # noqa: SIM109
                return ST_GROW  # nothing of this row done yet (samples up to t are): it is handled again
            if bad_te:
                bs.n_bad_exch_ts += 1
            if t > bs.mo_due:
                advance_markouts(bp, bs, ring, fout, t)
                if bs.n_fout >= fcap:
                    return ST_FULL
            bs.te_clock = t
            if bs.t_first < 0:
                bs.t_first = t
                start_funding(bp, bs, fund_ts, t)
            if k == QUOTE:
                on_quote_x(bp, bs, xo, keys, vals, lat, rs, ring, fout, t, px[ie], qty[ie], px2[ie], qty2[ie])
            elif k == TRADE:
                on_trade_x(bp, bs, xo, keys, vals, lat, rs, ring, fout, t, px[ie], qty[ie], side[ie])
            elif k == DEPTH or k == SNAPSHOT:  # noqa: SIM109  (two integer compares in the compiled loop)
                on_depth_x(bp, bs, xo, keys, vals, side[ie], px[ie], qty[ie])
            elif k == CLEAR:
                on_clear_x(bs, xo, keys)
            bs.ie = ie + 1
        elif w == 1:
            # the requests arriving at this same time one after another: each would be the next step
            # (a request wins the tie with a response, loses it to market data at the exchange, and
            # handling one moves no other stream to t or before), so the merge above is not redone
            while True:
                m = rq[bs.rq_head & QMASK]
                bs.rq_head += 1
                on_request_x(bp, bs, xo, keys, vals, lat, rs, ring, fout, m)
                if bs.rq_head >= bs.rq_tail or rq[bs.rq_head & QMASK].ts != t or bs.n_fout >= fcap:
                    break
        elif w == 2:
            # likewise the responses at this same time, unless a request sent meanwhile arrives at t
            # (zero entry latency): it would come first
            while True:
                m = rs[bs.rs_head & QMASK]
                bs.rs_head += 1
                mk = m.kind
                if mk == RS_FILL:
                    na = on_fill_rec(p, s, o, a, t, m.oid, m.side, m.px, m.qty, m.fee)
                    send_actions(bs, a, na, lat, rq, t)
                elif mk == RS_ACK:
                    on_ack_rec(s, o, m.oid)
                elif mk == RS_REJECT:
                    on_reject_rec(p, s, o, m.oid)
                elif mk == RS_CANCELED:
                    on_canceled_rec(s, o, m.oid)
                if bs.rs_head >= bs.rs_tail or rs[bs.rs_head & QMASK].ts != t or bs.n_fout >= fcap:
                    break
                if bs.rq_head < bs.rq_tail and rq[bs.rq_head & QMASK].ts <= t:
                    break
        elif w == 3:
            bs.n_timer += 1
            na = on_timer_rec(p, s, o, a, t)
            send_actions(bs, a, na, lat, rq, t)
            bs.next_timer = t + bp.timer_ns  # t is the tick itself: on the grid when there is one
        elif w == 5:
            book_funding(bp, bs, fund_ts, fund_rate, t)
        else:
            k = kind[il]
            bs.n_events += 1
            na = 0
            if k == QUOTE:
                bs.n_quotes += 1
                signal_step(p, s, t, 1, px[il], qty[il], px2[il], qty2[il])
                na = on_quote_rec(p, s, o, a, t, px[il], qty[il], px2[il], qty2[il])
            elif k == TRADE:
                bs.n_trades += 1
                signal_step(p, s, t, 2, px[il], qty[il], float(side[il]), 0.0)
                na = on_trade_rec(p, s, o, a, t, px[il], qty[il], side[il])
            else:
                bs.n_depth += 1
                signal_depth(p, s, k, side[il], px[il], qty[il])
            if na > 0:
                send_actions(bs, a, na, lat, rq, t)
            if bs.next_timer == 0 and bp.timer_ns > 0:
                bs.next_timer = next_tick(bp, t)
            bs.il = il + 1
        if t > bs.t_last:
            bs.t_last = t
    # end of data: the last sample, then the fills still waiting for their markouts
    if bs.ended == 0:
        if bs.n_sout >= scap:
            return ST_FULL
        bs.ended = 1
        if bs.has_book != 0 and bs.last_sample_ts != bs.t_last:  # not twice at one time
            take_sample(bp, bs, xo, sout, bs.t_last)
    if bs.tw_last >= 0 and bs.t_last > bs.tw_last:
        dt = float(bs.t_last - bs.tw_last)
        bs.tw_pos += bs.pos * dt
        bs.tw_pos2 += bs.pos * bs.pos * dt
        bs.tw_last = bs.t_last
    if flush_markouts(bs, ring, fout) > 0:
        return ST_FULL
    return ST_DONE


def loop_with_signal(src):
    """This module compiled with the user's signal in its slot (``core/signals.py``)."""
    from pathlib import Path

    from avmm.core.signals import compiled_variant

    return compiled_variant(src, Path(__file__), "loop")
