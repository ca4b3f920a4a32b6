"""Backtester regressions found in review: chunk boundaries with a lagging exchange stream, our
orders sharing a price, L2 queues after a resync, unusable exchange stamps and depth rows, and the
summary's edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from avmm.backtest import exchange as X
from avmm.backtest import state as BS
from avmm.backtest.runner import Backtester, bt_params, run_backtest
from avmm.config import load_config
from avmm.core.config import to_params
from avmm.data.synth import generate
from avmm.events import CLEAR, DEPTH, SNAPSHOT, empty
from test_backtest import MS, T0, Q, T, cfg, stream


def D(t, px, q, side, kind=DEPTH):
    return (t, t, kind, px, q, 0.0, 0.0, side)


def fills_of(r):
    f = r.fills
    return [
        (int((t - T0) // 1000), int(s), float(p), float(q)) for t, s, p, q in zip(f["ts"], f["side"], f["px"], f["qty"])
    ]


def test_chunk_boundary_with_exchange_stream_behind_the_strategy():
    """The strategy reaches the end of a chunk first: the loop must wait for the next chunk, not
    match earlier requests against later exchange events."""
    rows = stream(
        Q(0, 99.99, 5.0, 100.01, 5.0),
        T(20, 99.98, 1.0, -1, local=2),  # trades through our bid at exch 20 ms
        Q(21, 100.49, 5.0, 100.51, 5.0, local=5),
    )  # seen at 5 ms: our cancel arrives at 6 ms
    one = Backtester(cfg())
    one.feed(rows)
    two = Backtester(cfg())
    two.feed(rows[:2])
    two.feed(rows[2:])
    assert fills_of(one.finish()) == fills_of(two.finish()) == []


@pytest.mark.parametrize("skew_ms", [5, -5])
def test_chunk_size_never_changes_results_with_skewed_clocks(skew_ms):
    ev = np.concatenate(list(generate(20_000, 3, quote_rate=200.0, trade_rate=50.0)))
    ev["exch_ts"] = ev["local_ts"] + skew_ms * MS
    ref = run_backtest(ev, load_config(None, ["backtest.chunk_events=100000", "backtest.timer_s=0.05"]))
    assert ref.summary["fills"] > 100
    for ch in (1000, 1001, 4099):
        r = run_backtest(ev, load_config(None, [f"backtest.chunk_events={ch}", "backtest.timer_s=0.05"]))
        assert r.fills.tobytes() == ref.fills.tobytes()
        assert r.samples.tobytes() == ref.samples.tobytes()


def test_our_orders_at_one_price_share_the_trade():
    """Queue [5 market][our 1][our 2]: a 6-lot trade takes the market and order 1, leaving order 2
    at the front; the next 1-lot trade fills it."""
    from numba import njit

    c = load_config(
        None, ["quoting.tick=0.01", "quoting.lot=1.0", 'backtest.queue_model="risk-averse"', "risk.max_position=10.0"]
    )
    bp = bt_params(c, c.backtest, to_params(c))
    bs = BS.new_bt_state()
    xo = np.zeros(BS.MAX_X, BS.XORDER_DTYPE)
    keys, vals = BS.new_cache()
    lat = np.array([[MS, MS]], np.int64)
    rs = np.zeros(BS.QCAP, BS.MSG_DTYPE)
    rq = np.zeros(4, BS.MSG_DTYPE)
    ring = np.zeros(BS.MO_CAP, BS.FILL_DTYPE)
    fout = np.zeros(4096, BS.FILL_DTYPE)

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


def test_l2_level_missing_after_resync_is_empty():
    base = [D(0, 99.99, 5.0, 1), D(0, 100.01, 5.0, -1), Q(0, 99.99, 5.0, 100.01, 5.0)]
    resync = [(2, 2, CLEAR, 0.0, 0.0, 0.0, 0.0, 0), D(2, 99.98, 7.0, 1, SNAPSHOT), D(2, 100.01, 5.0, -1, SNAPSHOT)]
    removed = [D(2, 99.99, 0.0, 1), D(2, 99.98, 7.0, 1)]
    trade = [T(3, 99.99, 1.0, -1)]
    a = fills_of(run_backtest(stream(*base, *resync, *trade), cfg()))
    b = fills_of(run_backtest(stream(*base, *removed, *trade), cfg()))
    assert a == b == [(3000, 1, 99.99, 1.0)]  # µs after T0


def test_unusable_exchange_stamps_are_counted_and_replaced():
    rows = stream(
        Q(0, 99.99, 5.0, 100.01, 5.0), T(2, 99.98, 1.0, -1), T(3, 100.02, 1.0, 1), Q(4, 99.99, 5.0, 100.01, 5.0)
    )
    good = run_backtest(rows.copy(), cfg())
    for bad in (1 << 62, T0 + 10**15, 0, -5):
        r = rows.copy()
        r["exch_ts"][1] = bad
        out = run_backtest(r, cfg())
        assert out.summary["bad_exch_ts"] == 1
        assert fills_of(out) == fills_of(good)
        assert len(out.samples) == len(good.samples)
    assert good.summary["bad_exch_ts"] == 0


def test_bad_depth_rows_are_counted_and_ignored():
    base = [D(0, 99.99, 5.0, 1), D(0, 100.01, 5.0, -1), Q(0, 99.99, 5.0, 100.01, 5.0)]
    bad = [D(1.5, 99.99, -4.0, 1), D(1.5, float("nan"), 1.0, 1), D(1.5, 99.99, float("inf"), 1)]
    r = run_backtest(stream(*base, *bad, T(3, 99.99, 1.0, -1)), cfg(size=3.0))
    assert r.summary["bad_depth_rows"] == 3
    assert sum(q for *_, q in fills_of(r)) <= 1.0  # never more than the trade


def test_empty_session_and_single_final_sample():
    assert run_backtest(empty(0), cfg()).summary["session_s"] == 0.0
    # the last event on the sampling grid (1 s): one sample per grid time, none repeated
    r = run_backtest(stream(Q(0, 99.99, 5.0, 100.01, 5.0), Q(2000, 99.99, 5.0, 100.01, 5.0)), cfg())
    assert len(np.unique(r.samples["ts"])) == len(r.samples)
