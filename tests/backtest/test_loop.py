"""The compiled event loop (`avmm.backtest.loop`): exchange time against local time, entry and
response latency, chunk boundaries with lagging or skewed clocks, unusable exchange stamps."""

from __future__ import annotations

import numpy as np
import pytest

from avmm.backtest.runner import Backtester, run_backtest
from avmm.config import load_config
from avmm.data.synth import generate
from tests.builders import BOOK, BT_T0, MS, Q, T, fills_of, stream
from tests.builders import bt_config as cfg


def test_order_invisible_before_entry_latency():
    c = cfg(entry=10.0)
    r = run_backtest(stream(BOOK, T(5, 99.98, 1.0, -1), T(10, 99.98, 1.0, -1)), c)
    assert r.summary["fills"] == 0  # arrives at 10 ms: a row stamped 10 ms is not matched against it
    r = run_backtest(stream(BOOK, T(5, 99.98, 1.0, -1), T(10.001, 99.98, 1.0, -1)), c)
    assert fills_of(r) == [(10001, 1, 99.99, 1.0)]


def test_strategy_never_sees_events_before_local_time():
    # the exchange has the trade-through at 2 ms, the strategy learns of it at 50 ms (feed latency):
    # the fill happens at exchange time, the strategy's position changes only after the response
    bt = Backtester(cfg(resp=5.0))
    bt.feed(stream(BOOK, T(2, 99.98, 1.0, -1, local=50)))
    r = bt.finish()
    assert fills_of(r) == [(2000, 1, 99.99, 1.0)]
    assert bt.mem.state["pos"][0] == 1.0


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


def test_unusable_exchange_stamps_are_counted_and_replaced():
    rows = stream(
        Q(0, 99.99, 5.0, 100.01, 5.0), T(2, 99.98, 1.0, -1), T(3, 100.02, 1.0, 1), Q(4, 99.99, 5.0, 100.01, 5.0)
    )
    good = run_backtest(rows.copy(), cfg())
    for bad in (1 << 62, BT_T0 + 10**15, 0, -5):
        r = rows.copy()
        r["exch_ts"][1] = bad
        out = run_backtest(r, cfg())
        assert out.summary["bad_exch_ts"] == 1
        assert fills_of(out) == fills_of(good)
        assert len(out.samples) == len(good.samples)
    assert good.summary["bad_exch_ts"] == 0


def test_grid_refresh_ticks_the_timer_on_the_grid():
    # one quote, then nothing for 10 s: the strategy only learns of time through the timer
    ev = stream(Q(0, 99.99, 5.0, 100.01, 5.0), Q(10_000, 99.99, 5.0, 100.01, 5.0))
    base = ["backtest.timer_s=1", "quoting.refresh_s=0.25"]
    iv = run_backtest(ev, cfg(*base)).summary
    grid = run_backtest(ev, cfg(*base, 'quoting.refresh_mode="grid"')).summary
    assert iv["timer_calls"] == 10  # every 1 s after the first event
    assert grid["timer_calls"] == 40  # every multiple of gcd(1 s, 0.25 s) = 0.25 s
