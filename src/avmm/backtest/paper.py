"""The backtester's exchange model driven in real time: compiled entry points for a paper gateway.

The backtest loop (``loop.py``) merges market data, our requests, the responses and the timer in
one compiled call. A paper (or any Python-driven) runtime gets those one at a time, as they happen,
and calls the same exchange functions through these entry points, on the same records
(``state.py``), so paper fills come from the backtester's matcher, never a second one:

* ``x_send(bstate, actions, n, lat, rq, t)`` -- the core's actions leave at ``t`` and reach the
  venue after the entry latency (``loop.send_actions``);
* ``x_advance(..., t, incl, out)`` -- the requests that arrive before ``t`` (at ``t`` too with
  ``incl``), in arrival order, matched by ``exchange.on_request_x``, until a response is due first:
  then it is copied to ``out[0]`` and 1 returned (the caller hands it to the core, whose new actions
  may arrive before ``t``: call again); 0 when nothing more is due before ``t`` (``INF_NS``: all
  in flight, the end), 2 when the fill or
  sample buffer needs draining;
* ``x_quote`` / ``x_trade`` / ``x_depth`` / ``x_clear`` -- one market event at its exchange time
  (``exchange.on_*_x``; markouts advanced first, as in the loop); ``x_depth_rows`` -- the levels of
  one depth update in one call;
* ``x_finish`` -- the end: the last sample and the fills still waiting for markouts;
* ``x_fill`` -- a fill that happened at a real venue (the live gateway's), booked into the same
  records with the venue's fee: the live runtime's summary, fill records and samples are the
  backtester's too.

Ties are the loop's: at one time, market data first, then requests, then responses; the equity
samples are taken on their grid before anything at their time changes the state.
"""

from __future__ import annotations

from numba import njit

from avmm.backtest.accounting import (
    advance_markouts,
    book_fill,
    book_funding,
    emit_fill_record,
    flush_markouts,
    start_funding,
    take_sample,
)
from avmm.backtest.exchange import on_clear_x, on_depth_x, on_quote_x, on_request_x, on_trade_x
from avmm.backtest.loop import FOUT_MARGIN, send_actions
from avmm.backtest.state import INF_NS, QMASK
from avmm.jit import NJIT, NJIT_INLINE

ADV_IDLE = 0
ADV_RESPONSE = 1
ADV_FULL = 2


@njit(**NJIT)
def x_send(bstate, a, n, lat, rq, t):
    """The first ``n`` actions of ``a`` (``ACTION_DTYPE``) leave at ``t``."""
    send_actions(bstate[0], a, n, lat, rq, t)


@njit(**NJIT_INLINE)
def _before(bp, bs, xo, sout, fund_ts, fund_rate, t):
    """Before anything at ``t``: the equity samples of the grid up to ``t`` and the funding times
    before it. Returns False when the sample buffer is full (nothing done at ``t`` yet)."""
    while bs.next_fund <= t:
        book_funding(bp, bs, fund_ts, fund_rate, bs.next_fund)
    if t >= bs.next_sample:
        if bs.has_book == 0:
            bs.next_sample = (t // bp.eq_ns + 1) * bp.eq_ns
        else:
            while bs.next_sample <= t:
                if bs.n_sout >= sout.shape[0]:
                    return False
                take_sample(bp, bs, xo, sout, bs.next_sample)
                bs.next_sample += bp.eq_ns
    if t > bs.t_last:
        bs.t_last = t
    return True


@njit(**NJIT)
def x_advance(bparams, bstate, xo, keys, vals, lat, rq, rs, ring, fout, sout, fund_ts, fund_rate, t, incl, out):  # noqa: C901
    bp = bparams[0]
    bs = bstate[0]
    fcap = fout.shape[0] - FOUT_MARGIN
    while True:
        if bs.n_fout >= fcap:
            return ADV_FULL
        ta = rq[bs.rq_head & QMASK].ts if bs.rq_head < bs.rq_tail else INF_NS
        tr = rs[bs.rs_head & QMASK].ts if bs.rs_head < bs.rs_tail else INF_NS
        if tr < ta:  # a response first (a request wins a tie, as in the loop)
            if tr < t or (incl != 0 and tr <= t and tr < INF_NS):
                if not _before(bp, bs, xo, sout, fund_ts, fund_rate, tr):
                    return ADV_FULL
                out[0] = rs[bs.rs_head & QMASK]
                bs.rs_head += 1
                return ADV_RESPONSE
        elif ta < t or (incl != 0 and ta <= t and ta < INF_NS):
            if not _before(bp, bs, xo, sout, fund_ts, fund_rate, ta):
                return ADV_FULL
            m = rq[bs.rq_head & QMASK]
            bs.rq_head += 1
            on_request_x(bp, bs, xo, keys, vals, lat, rs, ring, fout, m)
            continue
        if t < INF_NS and not _before(bp, bs, xo, sout, fund_ts, fund_rate, t):  # (INF_NS: the end)
            return ADV_FULL
        return ADV_IDLE


@njit(**NJIT_INLINE)
def _market(bp, bs, fund_ts, ring, fout, t):
    """The exchange clock at a market event (never back in time); markouts due before it."""
    if t < bs.te_clock:
        t = bs.te_clock
    if t > bs.mo_due:
        advance_markouts(bp, bs, ring, fout, t)
    bs.te_clock = t
    if bs.t_first < 0:
        bs.t_first = t
        start_funding(bp, bs, fund_ts, t)
    if t > bs.t_last:
        bs.t_last = t
    return t


@njit(**NJIT)
def x_quote(bparams, bstate, xo, keys, vals, lat, rs, ring, fout, fund_ts, t, bid, bid_qty, ask, ask_qty):
    bp = bparams[0]
    bs = bstate[0]
    t = _market(bp, bs, fund_ts, ring, fout, t)
    on_quote_x(bp, bs, xo, keys, vals, lat, rs, ring, fout, t, bid, bid_qty, ask, ask_qty)


@njit(**NJIT)
def x_trade(bparams, bstate, xo, keys, vals, lat, rs, ring, fout, fund_ts, t, px, qty, aggr):
    bp = bparams[0]
    bs = bstate[0]
    t = _market(bp, bs, fund_ts, ring, fout, t)
    on_trade_x(bp, bs, xo, keys, vals, lat, rs, ring, fout, t, px, qty, aggr)


@njit(**NJIT)
def x_depth(bparams, bstate, xo, keys, vals, ring, fout, fund_ts, t, side, px, qty):
    """A depth row; returns 1 (nothing done) when the depth table must grow first (``ST_GROW``)."""
    bp = bparams[0]
    bs = bstate[0]
    if bs.d_n[0] >= bs.d_limit or bs.d_n[1] >= bs.d_limit:
        return 1
    t = _market(bp, bs, fund_ts, ring, fout, t)
    on_depth_x(bp, bs, xo, keys, vals, side, px, qty)
    return 0


@njit(**NJIT)
def x_depth_rows(bparams, bstate, xo, keys, vals, ring, fout, fund_ts, t, rows, k):
    """The depth rows ``rows[k:]`` (``(side, px, qty)``, float64) at ``t``, in order, as ``x_depth``
    one by one; returns the index of the first row not done (``len(rows)`` when all are): the depth
    table must grow before it (``ST_GROW``)."""
    bp = bparams[0]
    bs = bstate[0]
    n = rows.shape[0]
    if k >= n:
        return n
    t = _market(bp, bs, fund_ts, ring, fout, t)
    while k < n:
        if bs.d_n[0] >= bs.d_limit or bs.d_n[1] >= bs.d_limit:
            return k
        on_depth_x(bp, bs, xo, keys, vals, int(rows[k, 0]), rows[k, 1], rows[k, 2])
        k += 1
    return n


@njit(**NJIT)
def x_clear(bparams, bstate, xo, keys, ring, fout, fund_ts, t):
    bp = bparams[0]
    bs = bstate[0]
    _market(bp, bs, fund_ts, ring, fout, t)
    on_clear_x(bs, xo, keys)


@njit(**NJIT)
def x_finish(bparams, bstate, xo, ring, fout, sout):
    """The end of the session: the last sample, the time-weighted inventory to the last time, and
    the fills still waiting for markouts (NaN for the horizons not reached). Returns the fills
    that did not fit (call again after draining)."""
    bp = bparams[0]
    bs = bstate[0]
    if bs.ended == 0 and bs.n_sout < sout.shape[0]:
        bs.ended = 1
        if bs.has_book != 0 and bs.last_sample_ts != bs.t_last:
            take_sample(bp, bs, xo, sout, bs.t_last)
    if bs.tw_last >= 0 and bs.t_last > bs.tw_last:
        dt = float(bs.t_last - bs.tw_last)
        bs.tw_pos += bs.pos * dt
        bs.tw_pos2 += bs.pos * bs.pos * dt
        bs.tw_last = bs.t_last
    return flush_markouts(bs, ring, fout)


@njit(**NJIT)
def x_fill(bparams, bstate, xo, ring, fout, sout, fund_ts, fund_rate, t, oid, side, px, q, fee, maker):
    """A fill that happened elsewhere (a live venue's): booked into the records as the exchange
    model books its own -- cash, position, average entry, time-weighted inventory, the fill record
    waiting for its markouts -- with the venue's fee (quote currency) instead of the configured
    rate. Returns ``ADV_FULL`` (nothing done: drain the buffers, call again) or ``ADV_IDLE``."""
    bp = bparams[0]
    bs = bstate[0]
    if bs.n_fout >= fout.shape[0] - FOUT_MARGIN:
        return ADV_FULL
    if t < bs.te_clock:
        t = bs.te_clock
    if not _before(bp, bs, xo, sout, fund_ts, fund_rate, t):
        return ADV_FULL
    t = _market(bp, bs, fund_ts, ring, fout, t)
    f = book_fill(bp, bs, t, side, px, q, maker)
    bs.cash += f - fee
    bs.fees += fee - f
    emit_fill_record(bp, bs, ring, fout, t, oid, side, maker, px, q, fee)
    return ADV_IDLE
