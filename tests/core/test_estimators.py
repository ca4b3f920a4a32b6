"""Online estimators against batch NumPy computations on the same data."""

import math

import numpy as np
import pytest

from avmm.core.engine import Engine
from avmm.core.state import MAX_INT_BINS
from tests.builders import make_engine

NS = 1_000_000_000
BASE = {
    "model": {"sigma": "auto", "k": "auto", "A": "auto"},
    "quoting": {"tick": 0.01},
    "logging": {"sample_rate": 0.0},
}


def engine(**est) -> Engine:
    """Every model parameter estimated; ``est``: the [estimators] settings."""
    return make_engine(BASE, estimators=est)


def test_volatility_matches_batch_with_irregular_and_zero_gaps():
    rng = np.random.default_rng(3)
    n = 3000
    gaps = rng.exponential(0.2, n)
    gaps[rng.random(n) < 0.1] = 0.0  # zero time gaps
    t_ns = (1000 * NS + np.cumsum(gaps) * NS).astype(np.int64)
    mid = 100 + np.cumsum(rng.choice([-0.01, 0.0, 0.01], n))
    h = 30.0
    e = engine(vol_halflife_s=h, vol_min_obs=5)
    for t, m in zip(t_ns.tolist(), mid.tolist(), strict=True):
        e.on_quote(t, m - 0.005, 1.0, m + 0.005, 1.0)
    # batch: weights by age at the last time, over increments
    dt = np.diff(t_ns) * 1e-9
    dm = np.diff(mid)
    keep = (dt > 0) | (dm != 0)
    tt = t_ns[1:][keep]
    w = np.exp(-(t_ns[-1] - tt) * 1e-9 * math.log(2) / h)
    var = np.sum(w * dm[keep] ** 2) / np.sum(w * dt[keep])
    assert e.value("vol_var") == pytest.approx(var, rel=1e-9)
    # and the known truth: a +-1 tick walk with p = 2/3 of moving, at 5 moves/s
    assert e.value("vol_nobs") == np.count_nonzero(dm)


def test_volatility_recovers_true_sigma():
    rng = np.random.default_rng(5)
    sigma, dt, n = 0.2, 0.05, 40000
    mid = 100 + np.cumsum(rng.normal(0, sigma * math.sqrt(dt), n))
    e = engine(vol_halflife_s=1e6, vol_min_obs=5)
    for i, m in enumerate(mid.tolist()):
        e.on_quote(int(i * dt * NS), m - 0.005, 1.0, m + 0.005, 1.0)
    assert math.sqrt(e.value("vol_var")) == pytest.approx(sigma, rel=0.03)


def _trade_stream(seed=11, n=6000, A=2.0, k=30.0):
    """Trades whose depth from a fixed mid is exponential: intensity at depth d = A exp(-k d)."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1.0 / (2 * A), n))
    side = np.where(rng.random(n) < 0.5, 1, -1)
    depth = rng.exponential(1.0 / k, n)
    return t, side, depth


def test_intensity_matches_batch_fit():
    mid = 100.0
    t, side, depth = _trade_stream()
    window_s, nb, nbins, bin_ticks = 600.0, 60, 20, 1.0
    e = engine(
        intensity_window_s=window_s,
        intensity_buckets=nb,
        intensity_bins=nbins,
        intensity_bin_ticks=bin_ticks,
        intensity_fit_s=1e6,
        intensity_min_trades=10,
    )
    t0 = 1000 * NS
    e.on_quote(t0, mid - 0.005, 1.0, mid + 0.005, 1.0)
    ts = (t0 + t * NS).astype(np.int64)
    px = mid + side * depth
    for a, b, c in zip(ts.tolist(), px.tolist(), side.tolist(), strict=True):
        e.on_trade(a, b, 1.0, c)
    now = int(ts[-1])
    e.on_timer(now + 1)  # not yet due
    from avmm.core.estimators import intensity_fit  # noqa: F401  (the fit below goes through the timer)

    e.params["int_fit_ns"] = 1
    e.on_timer(now)
    # batch: trades inside the window at bucket granularity
    bucket_ns = int(window_s * NS) // nb
    cur = now // bucket_ns
    inwin = (ts // bucket_ns) > cur - nb
    span_s = min(window_s, (now - ts[0]) * 1e-9)
    w = bin_ticks * 0.01
    j = np.minimum((np.maximum(depth, 0) / w).astype(int), nbins - 1)

    def fit(counts):
        cum = np.cumsum(counts[::-1])[::-1]
        ok = cum > 0
        x = np.arange(nbins)[ok] * w
        y = np.log(cum[ok] / span_s)
        slope, intercept = np.polyfit(x, y, 1)
        return math.exp(intercept), -slope

    hb = np.bincount(j[inwin & (side < 0)], minlength=nbins).astype(float)
    ha = np.bincount(j[inwin & (side > 0)], minlength=nbins).astype(float)
    A_b, k_b = fit(hb)
    A_a, k_a = fit(ha)
    A_p, k_p = fit(0.5 * (hb + ha))
    tot = e.state["int_tot"][0]
    assert np.array_equal(tot[:nbins], hb) and np.array_equal(tot[MAX_INT_BINS : MAX_INT_BINS + nbins], ha)
    got_A, got_k = e.state["int_A"][0], e.state["int_k"][0]
    assert got_A == pytest.approx([A_b, A_a, A_p], rel=1e-9)
    assert got_k == pytest.approx([k_b, k_a, k_p], rel=1e-9)
    # and it is near the truth (A = 2 per side, k = 30) despite the catch-all last bin
    assert got_k[2] == pytest.approx(30.0, rel=0.25)


def test_intensity_window_forgets_old_trades():
    e = engine(intensity_window_s=10.0, intensity_buckets=10, intensity_fit_s=1e6)
    e.on_quote(0, 99.995, 1.0, 100.005, 1.0)
    for i in range(50):
        e.on_trade(int(i * 0.1 * NS), 100.02, 1.0, 1)
    assert e.state["int_tot"][0].sum() == 50
    e.on_trade(int(14.05 * NS), 100.02, 1.0, 1)  # buckets 0..4 have left the window
    assert e.state["int_tot"][0].sum() == 1 + 0  # all of 0..4.9 s dropped: trades at t<5 s
    e.on_trade(int(100 * NS), 100.02, 1.0, 1)
    assert e.state["int_tot"][0].sum() == 1


def test_vwap_matches_batch():
    rng = np.random.default_rng(2)
    n = 2000
    ts = (np.cumsum(rng.exponential(0.1, n)) * NS).astype(np.int64)
    px = 100 + rng.normal(0, 0.05, n)
    qty = rng.exponential(1.0, n)
    win, nb = 30.0, 30
    e = engine(vwap_window_s=win, vwap_buckets=nb)
    e.on_quote(0, 99.995, 1.0, 100.005, 1.0)
    for a, b, c in zip(ts.tolist(), px.tolist(), qty.tolist(), strict=True):
        e.on_trade(a, b, c, 1)
        last = a
    bucket_ns = int(win * NS) // nb
    inwin = (ts // bucket_ns) > (last // bucket_ns) - nb
    expected = np.sum(px[inwin] * qty[inwin]) / np.sum(qty[inwin])
    assert e.value("vwap") == pytest.approx(expected, rel=1e-9)


def test_micro_price():
    e = engine()
    e.on_quote(1, 99.0, 3.0, 101.0, 1.0)
    # (bid*ask_qty + ask*bid_qty)/(bid_qty+ask_qty) = (99 + 303)/4
    assert e.value("micro") == pytest.approx(100.5)
    assert e.value("mid") == pytest.approx(100.0)
