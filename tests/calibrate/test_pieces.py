"""The pieces of calibration on hand-built data: the pass over the rows (depths, reach, the grid,
skips, chunking), the intensity fit, sigma, the bootstrap, gamma from a target."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avmm.calibrate import bootstrap, gamma, intensity, volatility
from avmm.calibrate.run import calibrate
from avmm.calibrate.scan import REACH_BINS, Scan
from avmm.core.model import as_spread
from avmm.data.store import write_events
from avmm.errors import UserError
from avmm.events import BUY, SELL
from tests.builders import BT_T0, Q, T, stream

S = 1000.0  # ms per second (stream times are ms)


def _scan(ev, tick=0.01, chunk=None, stale_s=60.0):
    sc = Scan(BT_T0, 10 * 10**9, 10, 10**9, int(stale_s * 1e9), tick)
    n = len(ev) if chunk is None else chunk
    for i in range(0, len(ev), n):
        c = ev[i : i + n]
        sc.add(c["local_ts"], c["kind"], c["px"], c["qty"], c["px2"], c["qty2"], c["side"])
    return sc


def test_trade_depth_and_reach_from_the_last_quote():
    ev = stream(
        Q(0, 99.99, 1, 100.01, 2),  # mid 100.00, half spread one tick
        T(100, 100.01, 0.5, BUY),  # at the touch: depth 1 tick, reach 0
        T(200, 100.04, 0.5, BUY),  # through it: depth 4 ticks, reach 3 ticks
        T(300, 99.97, 0.5, SELL),  # depth 3, reach 2 ticks (bid side)
        Q(400, 99.98, 1, 99.99, 1),  # mid 99.985
        T(500, 99.98, 0.5, SELL),  # at the bid: depth half a tick, reach 0
    )
    sc = _scan(ev)
    reach = sc.reach_h.sum(axis=0)  # [side, half ticks]
    assert reach[1, 0] == 1 and reach[1, 6] == 1 and reach[1].sum() == 2  # ask side: buys
    assert reach[0, 0] == 1 and reach[0, 4] == 1 and reach[0].sum() == 2  # bid side: sells
    assert sc.depth_h[1, 2] == 1 and sc.depth_h[1, 8] == 1
    assert sc.depth_h[0, 6] == 1 and sc.depth_h[0, 1] == 1
    touch = sc.touch_d_h.sum(axis=0)  # the trades at the touch, by depth
    assert touch[1, 2] == 1 and touch[0, 1] == 1 and touch.sum() == 2
    assert sum(sc.skipped().values()) == 0


def test_skips_are_counted_never_silent():
    ev = stream(
        T(0, 100.0, 1, BUY),  # no quote yet
        Q(10, 100.02, 1, 100.01, 1),  # crossed
        Q(20, 99.99, 1, 100.01, 1),
        T(30, 100.03, 1, 0),  # unknown side above the mid: a buy, inferred
        T(40, 100.0, 1, 0),  # unknown side at the mid: ignored
        T(50, 99.95, 1, BUY),  # a buy below the mid: counted at depth 0
        T(60, float("nan"), 1, SELL),  # bad price
        T(70 + 120 * S, 100.0, 1, SELL),  # the quote is two minutes old: not live
    )
    sk = _scan(ev).skipped()
    assert sk == {
        "bad_quotes": 1,
        "trades_without_live_quote": 2,
        "trades_unknown_side_at_mid": 1,
        "bad_trades": 1,
        "trades_wrong_side_of_mid": 1,
        "trades_side_inferred": 1,
    }


def test_grid_sigma_counts_unmoved_mids_and_skips_stale_stretches():
    # mid 100 for 3 s, then 100.1 (one move of 0.1): grid points at 1, 2, 3 (100), 4, 5 (100.1); a
    # 100 s silence (stale after 60 s) then quotes again
    ev = stream(
        Q(500, 99.99, 1, 100.01, 1),
        Q(3500, 100.09, 1, 100.11, 1),
        Q(5500, 100.09, 1, 100.11, 1),
        Q(105_500, 100.19, 1, 100.21, 1),
        Q(107_500, 100.19, 1, 100.21, 1),
    )
    sc = _scan(ev)
    # live points: 1..65 (the 5.5 s quote is live until 65.5 s) and 106, 107
    assert int(sc.active.sum()) == 65 + 2
    assert int(sc.n_incr.sum()) == 64 + 1  # no increment across the stale stretch
    assert sc.sum_sq.sum() == pytest.approx(0.1**2)
    s = volatility.sigma_of(sc.sum_sq.sum(), sc.n_incr.sum(), 1.0)
    assert s == pytest.approx(math.sqrt(0.01 / 65))
    assert sc.spread_h[2] == 67  # two ticks, every live grid point


def test_chunks_do_not_change_anything():
    rng = np.random.default_rng(3)
    rows = []
    t = 0.0
    for _ in range(3000):
        t += rng.exponential(100.0)
        m = 100 + 0.01 * rng.integers(-50, 50)
        if rng.random() < 0.6:
            rows.append(Q(t, round(m - 0.01, 2), 1.0, round(m + 0.01, 2), 2.0))
        else:
            rows.append(T(t, round(m + 0.01 * rng.integers(-5, 6), 2), 0.1 * rng.integers(1, 9), rng.choice([1, -1])))
    ev = stream(*rows)
    whole, bits = _scan(ev), _scan(ev, chunk=7)
    names = ("active", "n_incr", "sum_sq", "reach_h", "touch_d_h", "depth_h", "spread_h", "touch_h", "trade_h", "skips")
    for name in names:
        np.testing.assert_array_equal(getattr(whole, name), getattr(bits, name), err_msg=name)


def test_interval_fit_recovers_k_on_the_tick_grid():
    """Reaches drawn from Exp(k) and printed as synth prints them (rounded outward to the tick,
    never better than the touch) around mids on a tick (even spreads) and between two (odd ones):
    the interval likelihood recovers k (within 1 % on 400,000 trades); A is the trades per second."""
    rng = np.random.default_rng(11)
    tick, k, n = 0.01, 25.0, 400_000
    r_t = rng.exponential(1 / k, n) / tick  # reach, ticks
    spread = rng.choice([1, 2, 3], n, p=[0.8, 0.15, 0.05])
    mid = spread / 2.0  # ticks above the bid at 0
    price = np.maximum(spread, np.ceil(mid + r_t - 1e-9))  # a buy: at or beyond the ask
    depth = price - mid
    at_touch = price == spread
    h = REACH_BINS
    beyond, touch = np.zeros(h), np.zeros(h)
    np.add.at(beyond, np.rint(2 * (depth[~at_touch] - 1)).astype(int), 1)
    np.add.at(touch, np.rint(2 * depth[at_touch]).astype(int), 1)
    k_fit = intensity.fit_k(beyond, touch, tick)[0]
    assert k_fit == pytest.approx(k, rel=0.01)
    lower = beyond.copy()  # the reach table: every trade at its lower bound
    lower[0] += touch.sum()
    # vectorised over rows (the bootstrap's resamples); A from the counts
    np.testing.assert_allclose(intensity.fit_k(np.vstack([beyond, 2 * beyond]), np.vstack([touch, 2 * touch]), tick),
                               [k_fit, k_fit], rtol=1e-9)  # fmt: skip
    bins = intensity.choose_bins(lower, tick)
    f = intensity.fit_side(bins.counts(lower), k_fit, bins, 1000.0)
    assert math.isclose(f.A, n / 1000.0) and f.r2 > 0.99


def test_too_few_trades_names_found_and_needed(tmp_path):
    rows = [Q(i * 100, 99.99, 1, 100.01, 1) for i in range(2000)]
    rows += [T(i * 100 + 50, 100.01, 1, BUY) for i in range(0, 2000, 100)]  # 20 buys, no sells
    rows.sort(key=lambda r: r[0])
    p = tmp_path / "few.parquet"
    write_events(p, [stream(*rows)], {"tick_size": 0.01, "lot_size": 0.001})
    with pytest.raises(UserError, match=r"found 0 with a live quote, need at least 50"):
        calibrate([p])


def test_bootstrap_is_seeded():
    obs = np.array([1.0, 0.0, 2.0, 3.0])
    w1, w2, w3 = bootstrap.weights(obs, 50, 1), bootstrap.weights(obs, 50, 1), bootstrap.weights(obs, 50, 2)
    np.testing.assert_array_equal(w1, w2)
    assert not np.array_equal(w1, w3)
    assert (w1[:, 1] == 0).all() and (w1.sum(axis=1) == 3).all()  # only observed blocks, as many as there are
    assert bootstrap.interval(np.arange(1001.0)) == pytest.approx([25.0, 975.0])


SIG, KK, TAU = 0.08, 25.0, 60.0


@pytest.mark.parametrize("x", [0.25, 1.0, 3.0])
def test_gamma_for_skew_at_limit(x):
    q = 10.0
    g = gamma.gamma_for_skew(x, q, SIG, KK, TAU)
    half = 0.5 * as_spread(g, SIG, KK, TAU)
    assert q * g * SIG**2 * TAU / half == pytest.approx(x, rel=1e-9)


@pytest.mark.parametrize(
    "sigma, ticks",
    [
        (SIG, 9.0),  # sigma^2 tau > 1/k^2: the spread only rises from 2/k = 8 ticks
        (SIG, 30.0),
        (0.001, 12.0),  # a quiet market: the spread falls from 8 ticks to 3.39, then rises
        (0.001, 6.0),  # two roots: the smaller gamma (less skew)
    ],
)
def test_gamma_for_spread(sigma, ticks):
    g = gamma.gamma_for_spread(ticks * 0.01, sigma, KK, TAU)
    assert as_spread(g, sigma, KK, TAU) / 0.01 == pytest.approx(ticks, rel=1e-9)
    if ticks < 8:
        assert g < 100 and as_spread(1.5 * g, sigma, KK, TAU) < ticks * 0.01  # on the falling branch


def test_gamma_targets_out_of_reach():
    with pytest.raises(UserError, match="below 2 q = 20"):
        gamma.gamma_for_skew(20.0, 10.0, SIG, KK, TAU)
    with pytest.raises(UserError, match=r"--spread-ticks 5: below the narrowest .* \(8 ticks, as gamma -> 0\)"):
        gamma.gamma_for_spread(0.05, SIG, KK, TAU, 0.01)  # never below 2/k = 8 ticks here
    with pytest.raises(UserError, match=r"--spread-ticks 3: below the narrowest .* \(3.39\d* ticks, at gamma"):
        gamma.gamma_for_spread(0.03, 0.001, KK, TAU, 0.01)  # below the minimum, 3.39 ticks


def test_blocks_follow_the_live_time():
    """Quotes for 80 s of a two-hour span: the bootstrap still gets 10 s blocks where the data is."""
    from avmm.calibrate.run import Blocks

    observed = np.array([0.0] * 100 + [1.0] * 50 + [0.0] * 800 + [1.0] * 30)
    b = Blocks.of(observed)
    assert b.block_s == 10.0 and len(b.starts) == 8
    np.testing.assert_array_equal(b.sums(observed), [10.0] * 8)
    assert b.sums(np.arange(len(observed)))[0] == sum(range(100, 110))


def test_trades_only_at_the_touch_say_k_cannot_be_fitted(tmp_path):
    rows = [Q(i * 100, 99.99, 1, 100.01, 1) for i in range(3000)]
    rows += [T(i * 100 + 50, 100.01 if i % 2 else 99.99, 1, BUY if i % 2 else SELL) for i in range(0, 3000, 5)]
    rows.sort(key=lambda r: r[0])
    p = tmp_path / "touch.parquet"
    write_events(p, [stream(*rows)], {"tick_size": 0.01, "lot_size": 0.001})
    msg = r"on the bid side \(sells\): found 0 of 300 trades, need at least 10 \(every trade printed at the touch"
    with pytest.raises(UserError, match=msg):
        calibrate([p])
