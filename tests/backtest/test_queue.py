"""Queue position of our resting orders (`avmm.backtest.queue`): the queue models on a size
decrease, L1 levels behind the best, L2 depth, a level missing after a resync."""

from __future__ import annotations

import numpy as np

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


def test_l2_far_levels_never_overwrite_ours():
    """Regression: depth sizes were kept in 4096 slots per side keyed by tick index mod 4096, so a
    row 4096 ticks away on the same side evicted our level, which then read as empty."""
    book = [D(0, 99.99, 5.0, 1), D(0, 100.01, 5.0, -1), Q(0, 99.99, 5.0, 100.01, 5.0)]
    # our bid at 99.99 has 5 ahead; a row at 99.99 - 40.96 = 59.03 (4096 ticks) must not empty it
    far_bid = [D(1.5, 59.03, 2.0, 1), T(2, 99.99, 3.0, -1)]
    assert fills_of(run_backtest(stream(*book, *far_bid), cfg())) == []
    assert fills_of(run_backtest(stream(*book, *far_bid, T(3, 99.99, 3.0, -1)), cfg())) == [(3000, 1, 99.99, 1.0)]
    # our ask joins 100.01 after a row at 100.01 + 40.96 = 140.97 arrived first: still behind 5
    far_ask = [D(0, 140.97, 2.0, -1), *book, T(2, 100.01, 3.0, 1)]
    assert fills_of(run_backtest(stream(*far_ask), cfg())) == []
    assert fills_of(run_backtest(stream(*far_ask, T(3, 100.01, 3.0, 1)), cfg())) == [(3000, -1, 100.01, 1.0)]


def test_l2_book_larger_than_the_table_grows_and_keeps_every_level():
    # 100k levels a side behind ours (tick 0.0001; the table starts with 65,536 slots a side and
    # grows when half full): our levels still have their 5 ahead
    far = [D(0, 99.99 - 0.0001 * (i + 1), 1.0, 1) for i in range(100_000)]
    far += [D(0, 100.01 + 0.0001 * (i + 1), 1.0, -1) for i in range(100_000)]
    book = [D(0, 99.99, 5.0, 1), D(0, 100.01, 5.0, -1), *far, Q(0, 99.99, 5.0, 100.01, 5.0)]
    c = cfg("quoting.tick=0.0001")
    r = run_backtest(stream(*book, T(2, 99.99, 3.0, -1), T(2, 100.01, 3.0, 1)), c)
    assert r.summary["fills"] == 0 and r.summary["depth_rows"] == 200_002
    r = run_backtest(stream(*book, T(2, 99.99, 6.0, -1), T(2, 100.01, 6.0, 1)), c)
    assert sorted(fills_of(r)) == [(2000, -1, 100.01, 1.0), (2000, 1, 99.99, 1.0)]


def test_depth_table_matches_a_dict_under_inserts_updates_and_deletes():
    from numba import njit

    from avmm.backtest import state as BS
    from avmm.backtest.queue import depth_get, depth_put, depth_rehash

    @njit
    def apply(bstate, keys, vals, ops, out):
        bs = bstate[0]
        for i in range(ops.shape[0]):
            depth_put(bs, keys, vals, int(ops[i, 0]), np.int64(ops[i, 1]), ops[i, 2])
        for i in range(ops.shape[0]):
            out[i] = depth_get(bs, keys, vals, int(ops[i, 0]), np.int64(ops[i, 1]))

    rng = np.random.default_rng(7)
    n = 3000
    # clustered keys (a book around a price) plus keys exactly 4096 * j apart (the old collisions)
    keys_ = np.concatenate([rng.integers(1_000_000, 1_004_000, n // 2), 1_000_000 + 4096 * rng.integers(0, 50, n // 2)])
    ops = np.empty((n, 3))
    ops[:, 0] = rng.integers(0, 2, n)
    ops[:, 1] = rng.permutation(keys_)
    ops[:, 2] = np.where(rng.random(n) < 0.3, 0.0, rng.random(n) + 0.1)  # 30 % deletes
    bs = BS.new_bt_state()
    keys, vals = BS.new_cache(bs, 4096)
    bs["d_limit"] = 1 << 30  # no growth in this test: a full 4096-slot table is the hard case
    ref: dict[tuple[int, int], float] = {}
    for row, key, v in ops:
        if v > 0:
            ref[(int(row), int(key))] = v
        else:
            ref.pop((int(row), int(key)), None)
    out = np.empty(n)
    apply(bs, keys, vals, ops, out)
    for i, (row, key, _) in enumerate(ops):
        want = ref.get((int(row), int(key)))
        assert (np.isnan(out[i]) and want is None) or out[i] == want
    assert list(bs["d_n"][0]) == [sum(1 for r, _ in ref if r == 0), sum(1 for r, _ in ref if r == 1)]
    # grown: the same levels
    k2, v2 = BS.new_cache(bs, 1 << 14)
    depth_rehash(bs, keys, vals, k2, v2)
    got = {}
    for r in range(2):
        for j in range(k2.shape[1]):
            if k2[r, j] != BS.EMPTY_KEY:
                got[(r, int(k2[r, j]))] = v2[r, j]
    assert got == ref
