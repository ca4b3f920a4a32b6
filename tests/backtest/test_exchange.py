"""Matching at the simulated venue (`avmm.backtest.exchange`): queue position and trades at our
price, trade-throughs, partial fills, fills while a cancel is in flight, post-only rejects, our
orders sharing a price, unusable depth rows."""

from __future__ import annotations

import numpy as np
import pytest

from avmm.backtest import exchange as X
from avmm.backtest import state as BS
from avmm.backtest.runner import Backtester, bt_params, run_backtest
from avmm.config import load_config
from avmm.core.config import to_params
from tests.builders import BOOK, MS, D, Q, T, fills_of, stream
from tests.builders import bt_config as cfg


def test_queue_behind_five_fills_after_3_then_2_not_before():
    # trades of 3 then 2 at our price take the queue in front of us; the next trade fills us
    base = [BOOK, T(2, 99.99, 3.0, -1), T(3, 99.99, 2.0, -1)]
    r = run_backtest(stream(*base), cfg())
    assert r.summary["fills"] == 0
    r = run_backtest(stream(*base, T(4, 99.99, 1.0, -1)), cfg())
    assert fills_of(r) == [(4000, 1, 99.99, 1.0)]
    # 3 then 3: the second trade has 1 left after the queue: it fills us
    r = run_backtest(stream(BOOK, T(2, 99.99, 3.0, -1), T(3, 99.99, 3.0, -1)), cfg())
    assert fills_of(r) == [(3000, 1, 99.99, 1.0)]


def test_trade_through_fills_at_once():
    r = run_backtest(stream(BOOK, T(2, 99.98, 0.5, -1)), cfg())
    assert fills_of(r) == [(2000, 1, 99.99, 1.0)]  # whole order, at our price, despite the queue
    r = run_backtest(stream(BOOK, T(2, 100.02, 0.5, 1)), cfg())
    assert fills_of(r) == [(2000, -1, 100.01, 1.0)]


def test_fill_while_cancel_in_flight_is_honoured():
    # at 20 ms the mid jumps: the strategy cancels its 99.99 bid (cancel arrives at 30 ms);
    # a trade through 99.99 at 25 ms still fills it
    rows = [BOOK, Q(20, 100.49, 5.0, 100.51, 5.0), T(25, 99.98, 1.0, -1), Q(40, 100.49, 5.0, 100.51, 5.0)]
    r = run_backtest(stream(*rows), cfg(entry=10.0))
    assert r.summary["cancels"] >= 1
    assert (25000, 1, 99.99, 1.0) in fills_of(r)
    # the same trade after the cancel has arrived fills nothing at 99.99
    rows = [BOOK, Q(20, 100.49, 5.0, 100.51, 5.0), T(31, 99.98, 1.0, -1), Q(40, 100.49, 5.0, 100.51, 5.0)]
    r = run_backtest(stream(*rows), cfg(entry=10.0))
    assert all(f[2] != 99.99 for f in fills_of(r))


def test_post_only_reject_seen_after_response_latency():
    # the book moves at exchange time 0.5 ms; the strategy sees it only at 5 ms, so its 99.99 bid
    # arrives (1 ms) at a book whose ask is 99.99: rejected, known to the strategy at 2 ms
    rows = [BOOK, Q(0.5, 99.97, 5.0, 99.99, 5.0, local=5), Q(1.5, 99.97, 5.0, 99.99, 5.0, local=6)]
    bt = Backtester(cfg())
    bt.feed(stream(*rows))
    r = bt.finish()
    assert r.summary["rejects_post_only"] == 1
    assert r.summary["fills"] == 0
    assert bt.mem.state["n_rejects"][0] == 1


def test_partial_fills():
    # our 3-lot bid at 99.99 improves the book (nobody ahead): trades of 1 then 5 fill 1 then 2
    rows = [Q(0, 99.98, 5.0, 100.02, 5.0), T(2, 99.99, 1.0, -1), T(2.5, 99.99, 5.0, -1)]
    r = run_backtest(stream(*rows), cfg(size=3.0))
    assert fills_of(r) == [(2000, 1, 99.99, 1.0), (2500, 1, 99.99, 2.0)]


def venue(*sets: str) -> tuple:
    """The simulated venue's arrays for driving its kernels directly: tick 0.01, lot 1, ``sets``
    more overrides; 1 ms latencies; a request ring of 8."""
    c = load_config(None, ["quoting.tick=0.01", "quoting.lot=1.0", *sets])
    bs = BS.new_bt_state()
    keys, vals = BS.new_cache(bs)
    return (
        bt_params(c, c.backtest, to_params(c)),
        bs,
        np.zeros(BS.MAX_X, BS.XORDER_DTYPE),
        keys,
        vals,
        np.array([[MS, MS]], np.int64),
        np.zeros(BS.QCAP, BS.MSG_DTYPE),
        np.zeros(8, BS.MSG_DTYPE),
        np.zeros(BS.MO_CAP, BS.FILL_DTYPE),
        np.zeros(4096, BS.FILL_DTYPE),
    )


def test_our_orders_at_one_price_share_the_trade():
    """Queue [5 market][our 1][our 2]: a 6-lot trade takes the market and order 1, leaving order 2
    at the front; the next 1-lot trade fills it."""
    from numba import njit

    bp, bs, xo, keys, vals, lat, rs, rq, ring, fout = venue(
        'backtest.queue_model="risk-averse"', "risk.max_position=10.0"
    )

    @njit
    def drive(bparams, bstate, xo, keys, vals, lat, rs, rq, ring, fout):
        bp = bparams[0]
        bs = bstate[0]
        X.on_quote_x(bp, bs, xo, keys, vals, lat, rs, ring, fout, 0, 99.99, 5.0, 100.01, 5.0)
        for oid in (1, 2):
            m = rq[oid]
            m.ts = 1
            m.kind = BS.RQ_PLACE
            m.oid = oid
            m.side = 1
            m.px = 99.99
            m.qty = 1.0
            X.on_request_x(bp, bs, xo, keys, vals, lat, rs, ring, fout, m)
        X.on_trade_x(bp, bs, xo, keys, vals, lat, rs, ring, fout, 2, 99.99, 6.0, -1)
        X.on_trade_x(bp, bs, xo, keys, vals, lat, rs, ring, fout, 3, 99.99, 1.0, -1)

    drive(bp, bs, xo, keys, vals, lat, rs, rq, ring, fout)
    n = int(bs["mo_n"][0])
    assert sorted((int(f["ts"]), float(f["qty"])) for f in ring[:n]) == [(2, 1.0), (3, 1.0)]


def test_bad_depth_rows_are_counted_and_ignored():
    base = [D(0, 99.99, 5.0, 1), D(0, 100.01, 5.0, -1), Q(0, 99.99, 5.0, 100.01, 5.0)]
    bad = [D(1.5, 99.99, -4.0, 1), D(1.5, float("nan"), 1.0, 1), D(1.5, 99.99, float("inf"), 1)]
    r = run_backtest(stream(*base, *bad, T(3, 99.99, 1.0, -1)), cfg(size=3.0))
    assert r.summary["bad_depth_rows"] == 3
    assert sum(q for *_, q in fills_of(r)) <= 1.0  # never more than the trade


@pytest.mark.parametrize("levels", [1, 5])
def test_live_order_index_matches_the_orders(levels):
    """The exchange's per-side live size and count (used by the risk check instead of a scan) and
    the order-id hints agree with the orders themselves after a busy run."""
    from numba import njit

    from avmm.backtest.exchange import find_x
    from avmm.data.synth import generate

    ev = np.concatenate(list(generate(30_000, 5, quote_rate=400.0, trade_rate=100.0)))
    c = load_config(None, [f"quoting.levels={levels}", "quoting.size=0.002", "risk.max_position=0.01"])
    bt = Backtester(c)
    bt.feed(ev[:20_000])
    xo, bs = bt.xo, bt.bs
    live = xo[: int(bs["x_hwm"][0])]
    live = live[live["live"] != 0]
    assert r_fills(bt) > 0
    for r, side in ((0, 1), (1, -1)):
        mine = live[live["side"] == side]
        assert int(bs["x_nlive"][0][r]) == len(mine)
        assert float(bs["x_open"][0][r]) == pytest.approx(float(mine["leaves"].sum()), abs=1e-12)

    @njit
    def find(bstate, xo, oid):
        return find_x(bstate[0], xo, oid)

    for od in live:
        assert xo[find(bs, xo, int(od["oid"]))]["oid"] == od["oid"]
    assert find(bs, xo, 10**12) == -1


def r_fills(bt) -> int:
    return int(bt.bs["n_fills"][0])


def test_partial_fills_option():
    # our 3-lot bid at 99.99 improves the book (nobody ahead): a 1-lot trade fills 1 lot, or all 3
    rows = [Q(0, 99.98, 5.0, 100.02, 5.0), T(2, 99.99, 1.0, -1)]
    assert fills_of(run_backtest(stream(*rows), cfg(size=3.0))) == [(2000, 1, 99.99, 1.0)]
    whole = cfg("backtest.partial_fills=false", size=3.0)
    assert fills_of(run_backtest(stream(*rows), whole)) == [(2000, 1, 99.99, 3.0)]
    # a trade that does not get past the queue still fills nothing
    behind = [BOOK, T(2, 99.99, 4.0, -1)]
    assert fills_of(run_backtest(stream(*behind), whole)) == []


def test_l1_left_level_option():
    # our bid joins 99.99 behind 5; the best bid rises to 100.00 (our level leaves the top of the
    # book), comes back, and a 1-lot trade prints at 99.99
    rows = [BOOK, Q(2, 100.00, 5.0, 100.02, 5.0), Q(3, 99.99, 5.0, 100.01, 5.0), T(4, 99.99, 1.0, -1)]
    assert fills_of(run_backtest(stream(*rows), cfg())) == []  # keep: still 5 ahead, then 4
    empty = cfg('backtest.l1_left_level="empty"')
    assert fills_of(run_backtest(stream(*rows), empty)) == [(4000, 1, 99.99, 1.0)]


def test_a_crossing_order_takes_what_the_best_shows_and_the_rest_is_cancelled():
    """Not post-only: an order crossing on arrival takes the opposite best's size (less what our
    earlier taker orders took since the book last changed), at that price; the rest is cancelled.
    Without that, a strategy quoting through the book refilled the same size forever."""
    from numba import njit

    bp, bs, xo, keys, vals, lat, rs, rq, ring, fout = venue("quoting.post_only=false", "risk.max_position=100.0")

    @njit
    def drive(bparams, bstate, xo, keys, vals, lat, rs, rq, ring, fout):
        bp = bparams[0]
        bs = bstate[0]
        X.on_quote_x(bp, bs, xo, keys, vals, lat, rs, ring, fout, 0, 99.99, 5.0, 100.01, 5.0)
        for oid in (1, 2, 3):
            m = rq[oid]
            m.ts = oid
            m.kind = BS.RQ_PLACE
            m.oid = oid
            m.side = 1
            m.px = 100.05
            m.qty = 3.0
            if oid == 3:  # the book changed in between: its size is there again
                X.on_quote_x(bp, bs, xo, keys, vals, lat, rs, ring, fout, 3, 99.99, 5.0, 100.01, 5.0)
            X.on_request_x(bp, bs, xo, keys, vals, lat, rs, ring, fout, m)

    drive(bp, bs, xo, keys, vals, lat, rs, rq, ring, fout)
    n = int(bs["mo_n"][0])
    fills = sorted((int(f["oid"]), float(f["px"]), float(f["qty"])) for f in ring[:n])
    assert fills == [(1, 100.01, 3.0), (2, 100.01, 2.0), (3, 100.01, 3.0)]
    kinds = [(int(m["oid"]), int(m["kind"])) for m in rs[: int(bs["rs_tail"][0])]]
    assert (2, BS.RS_CANCELED) in kinds and (1, BS.RS_CANCELED) not in kinds
    assert int(bs["x_nlive"][0][0]) == 0  # nothing of them rests
    assert float(bs["pos"][0]) == 8.0


def test_a_strategy_quoting_through_the_book_ends():
    from avmm.data.synth import generate

    ev = np.concatenate(list(generate(20_000, 2, quote_rate=300.0, trade_rate=80.0)))
    c = load_config(None, ["quoting.post_only=false", "model.sigma=0.0001", "model.k=1000", "model.A=1"])
    r = run_backtest(ev, c)
    assert 0 < r.summary["taker_fills"] <= r.summary["quotes"]
