"""Queue position of our resting orders (`avmm.backtest.queue`): the queue models on a size
decrease, L1 levels behind the best, L2 depth, a level missing after a resync."""

from __future__ import annotations

from avmm.backtest.runner import run_backtest
from avmm.events import CLEAR, DEPTH, SNAPSHOT
from tests.builders import BOOK, D, Q, T, fills_of, stream
from tests.builders import bt_config as cfg


def test_queue_models_on_size_decrease():
    # 5 ahead of us, then 4 join behind (9), then 4 leave without trading (5): risk-averse keeps
    # all 5 ahead; prob-power (n=2) takes 25/41 of the decrease from ahead (5 - 2.44 = 2.56 left),
    # so the trade of 4 that follows fills us in that model only
    rows = [BOOK, Q(2, 99.99, 9.0, 100.01, 5.0), Q(3, 99.99, 5.0, 100.01, 5.0), T(4, 99.99, 4.0, -1)]
    r = run_backtest(stream(*rows), cfg(queue="risk-averse"))
    assert r.summary["fills"] == 0
    for qm in ("prob-power", "prob-log"):
        r = run_backtest(stream(*rows), cfg(queue=qm))
        assert fills_of(r) == [(4000, 1, 99.99, 1.0)], qm


def test_l1_queue_behind_best_front_or_fraction():
    # our bid 99.98 (spread pinned to 4 ticks) arrives after the exchange's best bid moved up to
    # 99.99: the size at 99.98 is unknown on L1 data; it was 4 when 99.98 was the best
    rows = [Q(0, 99.98, 4.0, 100.02, 4.0), Q(0.5, 99.99, 2.0, 100.01, 2.0, local=5), T(2, 99.98, 1.0, -1, local=6)]
    wide = ("quoting.min_spread=0.04", "quoting.max_spread=0.04")
    r = run_backtest(stream(*rows), cfg(*wide, 'backtest.l1_unknown_queue="front"'))
    assert fills_of(r) == [(2000, 1, 99.98, 1.0)]
    r = run_backtest(
        stream(*rows), cfg(*wide, 'backtest.l1_unknown_queue="fraction"', "backtest.l1_queue_fraction=1.0")
    )
    assert r.summary["fills"] == 0  # 4 ahead
    rows[-1] = T(2, 99.98, 3.0, -1, local=6)
    r = run_backtest(
        stream(*rows), cfg(*wide, 'backtest.l1_unknown_queue="fraction"', "backtest.l1_queue_fraction=0.5")
    )
    assert fills_of(r) == [(2000, 1, 99.98, 1.0)]  # 2 ahead, the trade of 3 leaves 1 for us


def test_l2_depth_gives_the_queue():

    # the depth says 5 at 99.99 (the quote row says 1): we join behind 5
    rows = [
        (0, 0, DEPTH, 99.99, 5.0, 0.0, 0.0, 1),
        (0, 0, DEPTH, 100.01, 5.0, 0.0, 0.0, -1),
        Q(0, 99.99, 1.0, 100.01, 1.0),
        T(2, 99.99, 3.0, -1),
    ]
    r = run_backtest(stream(*rows), cfg())
    assert r.summary["fills"] == 0 and r.summary["depth_rows"] == 2
    r = run_backtest(stream(*rows, T(3, 99.99, 3.0, -1)), cfg())
    assert fills_of(r) == [(3000, 1, 99.99, 1.0)]
    # the level at our price emptied without trades: nobody is ahead any more
    r = run_backtest(stream(*rows, (2.5, 2.5, DEPTH, 99.99, 0.0, 0.0, 0.0, 1), T(3, 99.99, 1.0, -1)), cfg())
    assert fills_of(r) == [(3000, 1, 99.99, 1.0)]


def test_l2_level_missing_after_resync_is_empty():
    base = [D(0, 99.99, 5.0, 1), D(0, 100.01, 5.0, -1), Q(0, 99.99, 5.0, 100.01, 5.0)]
    resync = [(2, 2, CLEAR, 0.0, 0.0, 0.0, 0.0, 0), D(2, 99.98, 7.0, 1, SNAPSHOT), D(2, 100.01, 5.0, -1, SNAPSHOT)]
    removed = [D(2, 99.99, 0.0, 1), D(2, 99.98, 7.0, 1)]
    trade = [T(3, 99.99, 1.0, -1)]
    a = fills_of(run_backtest(stream(*base, *resync, *trade), cfg()))
    b = fills_of(run_backtest(stream(*base, *removed, *trade), cfg()))
    assert a == b == [(3000, 1, 99.99, 1.0)]  # µs after BT_T0
