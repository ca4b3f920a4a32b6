"""The simulated venue's memory: fixed-size record dtypes and their allocation.

``BT_PARAMS_DTYPE`` (the exchange model's settings), ``BT_STATE_DTYPE`` (the venue's book view,
our position and cash, ring cursors, counters), ``XORDER_DTYPE`` (our orders at the venue),
``MSG_DTYPE`` (requests and responses in flight), ``FILL_DTYPE`` and ``SAMPLE_DTYPE`` (what the
loop hands back to Python), and the sizes of every ring. Nothing is allocated per event.
"""

from __future__ import annotations

import numpy as np

INF_NS = np.int64(1) << np.int64(62)


# message kinds: requests (strategy -> exchange) and responses (exchange -> strategy)
RQ_PLACE = 1
RQ_CANCEL = 2
RQ_AMEND = 3
RQ_TAKE = 4  # a place that takes what it can at once and never rests (the core's AF_TAKE: flatten)
RS_ACK = 11
RS_REJECT = 12
RS_CANCELED = 13
RS_FILL = 14

MAX_X = 256  # our live orders at the exchange
XMAP = 1024  # order id -> slot hints at the exchange (oid modulo XMAP; checked, a scan when stale)
QCAP = 1 << 15  # in-flight requests / responses (each ring)
QMASK = QCAP - 1
NCACHE = 4096  # L1 "last size seen" cache slots per side (tick index modulo NCACHE)
DEPTH_CAP0 = 1 << 16  # depth-level hash table slots per side to start with (grown when half full)
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
        ("markouts", "i8"),  # 0: fills leave at once, markouts NaN
        ("partial_fills", "i8"),
        ("l1_empty_left", "i8"),  # 1: a level the L1 best leaves behind has nothing ahead of us
        ("timer_grid", "i8"),  # 1: the timer ticks on multiples of timer_ns (refresh_mode = "grid")
        ("gap_ns", "i8"),
        ("mo_ns", "i8", (NH,)),
        # the venue's accounting (accounting.py): spot balances, funding
        ("spot", "i8"),  # 1: orders must be covered by the base / quote balances
        ("fee_lock", "f8"),  # fee a buy locks with its quote: max(maker_fee, taker_fee, 0)
        ("quote_auto", "f8"),  # initial quote = this x the first mid (initial_quote = "auto"), else 0
        ("fund_on", "i8"),  # 0: no funding; 1: a constant rate on the grid; 2: the series
        ("fund_rate", "f8"),  # constant rate per interval
        ("fund_ns", "i8"),  # the constant rate's interval (the grid from the epoch: 00:00 UTC)
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
        ("lat_i", "i8"),  # the latency table's row for the next request (entry) / response, cycling
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
        # gaps in the data (longer than gap_ns): skipped, not sampled
        ("n_gaps", "i8"),
        ("gap_total", "i8"),  # ns
        ("gap_end", "i8"),  # the end of the last gap skipped
        # the L2 depth book: an exact price -> size hash table per side (``queue.py``)
        ("d_n", "i8", (2,)),  # levels held per side
        ("d_shift", "i8"),  # 64 - log2(slots): the hash keeps the top bits
        ("d_limit", "i8"),  # levels per side beyond which the table is grown (half the slots)
        # our live orders by id and by side (``exchange.py``): no scan per request
        ("x_slot", "i8", (XMAP,)),  # slot of order id oid at x_slot[oid % XMAP] (a hint, checked)
        ("x_open", "f8", (2,)),  # leaves of the live orders, bids / asks
        ("x_nlive", "i8", (2,)),  # live orders, bids / asks
        ("taken", "f8", (2,)),  # size our taker orders took at the best ask / bid since the book last changed
        # the venue's accounting (accounting.py): spot balances, funding
        ("base0", "f8"),  # balances at the start: base units, quote currency (NaN: auto, not set yet)
        ("quote0", "f8"),
        ("locked_base", "f8"),  # held by the venue for our open sells / buys (price x qty + fee)
        ("locked_quote", "f8"),
        ("n_rej_balance", "i8"),
        ("next_fund", "i8"),  # the next funding time (INF_NS: none)
        ("fund_i", "i8"),  # index of the next funding time in the series
        ("funding", "f8"),  # funding received (negative: paid), in cash
        ("n_funding", "i8"),  # funding times with a position
        ("n_fund_no_mark", "i8"),  # funding times with a position and no mid yet (not booked)
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
        ("lock", "f8"),  # spot: what the venue holds for this order (quote for a buy, base for a sell)
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
    bs["quote0"] = np.nan
    bs["next_fund"] = INF_NS
    return bs


EMPTY_KEY = np.iinfo(np.int64).min


def new_cache(bs: np.ndarray, slots: int = DEPTH_CAP0) -> tuple[np.ndarray, np.ndarray]:
    """Price-level tables, ``slots`` (a power of two, >= ``NCACHE``) columns each, and their
    geometry set in ``bs``: rows 0/1 = the L2 depth book, bids / asks (exact: open addressing, a
    level is never evicted by another); rows 2/3 = the last L1 size seen at a price, bids / asks
    (a cache: slot = tick index modulo ``NCACHE``, only the first ``NCACHE`` columns used)."""
    if slots < NCACHE or slots & (slots - 1):
        raise ValueError(f"depth table slots: {slots} is not a power of two >= {NCACHE}")
    keys = np.full((4, slots), EMPTY_KEY, dtype=np.int64)
    vals = np.zeros((4, slots), dtype=np.float64)
    bs["d_shift"] = 64 - (slots.bit_length() - 1)
    bs["d_limit"] = slots // 2
    return keys, vals
