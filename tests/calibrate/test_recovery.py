"""Calibration recovers the model it is given, and the halves of a real session agree."""

from __future__ import annotations

import pytest

from avmm.calibrate import calibrate
from avmm.data.store import read_meta
from tests.builders import synth_store_without_truth

SIGMA, K, TRADE_RATE = 0.08, 25.0, 4.0
A = TRADE_RATE / 2  # per side


@pytest.fixture(scope="module")
def synth_2m(tmp_path_factory):
    """``data synth --events 2000000 --sigma 0.08 --k 25 --trade-rate 4``, true_* stripped."""
    p = tmp_path_factory.mktemp("cal") / "synth2m.parquet"
    return synth_store_without_truth(p, 2_000_000, 7, sigma=SIGMA, k=K, trade_rate=TRADE_RATE)


def test_synth_2m_recovered(synth_2m):
    assert not any(k.startswith("true_") for k in read_meta(synth_2m))
    c = calibrate([synth_2m])
    assert abs(c.sigma.value / SIGMA - 1) < 0.10
    for side in ("", "_bid", "_ask"):
        assert abs(c.est["k" + side].value / K - 1) < 0.20, side
        assert abs(c.est["A" + side].value / A - 1) < 0.30, side
    # tighter than the issue asks (what the method gives on 570,000 trades; see the report)
    assert abs(c.sigma.value / SIGMA - 1) < 0.01
    assert abs(c.est["A"].value / A - 1) < 0.01
    assert abs(c.est["k"].value / K - 1) < 0.01
    # the intervals are ordered around the estimate and hold the truth
    for key, e in (("sigma", c.sigma), *c.est.items()):
        assert e.ci is not None and e.ci[0] <= e.value <= e.ci[1], key
    assert c.sigma.ci[0] <= SIGMA <= c.sigma.ci[1]
    for side in ("", "_bid", "_ask"):
        assert c.est["k" + side].ci[0] <= K <= c.est["k" + side].ci[1], side
        assert c.est["A" + side].ci[0] <= A <= c.est["A" + side].ci[1], side
    assert c.tick == 0.01 and c.lot == 0.001
    assert c.spread_ticks["p50"] == 1 and c.spread_ticks["p95"] == 3  # 80 % one tick, 5 % three
    assert c.fits["bid"].r2 > 0.99 and c.fits["ask"].r2 > 0.99


def _halves(store):
    m = read_meta(store)
    mid = (m["start_ns"] + m["end_ns"]) // 2
    return calibrate([store], None, mid), calibrate([store], mid, None)


def test_halves_of_a_real_session_agree(shared_data, tmp_path, run_cli):
    """Binance BTCUSDT spot, 11 minutes in two files: sigma and A of each half lie inside the other
    half's 95 % interval. Excluded: k and the per-side A. The reach of spot BTCUSDT trades is not
    exponential (about 95 % at the touch, then a flat tail of sweeps 10 to 130 ticks deep), so k is set
    by the few sweeps of each half -- a misfit the fit's R^2 reports, not sampling noise; and which
    side trades more flips within minutes (the ask side's rate was 12.3/s in one half, 15.7/s in
    the other)."""
    src = shared_data / "binance_ws_capture"
    store = tmp_path / "spot.parquet"
    r = run_cli("data", "convert", src / "spot_btcusdt_20240808.gz", src / "spot_btcusdt_20240809.gz", "-o", store)
    assert r.returncode == 0, r.stderr
    a, b = _halves(store)
    for x, y in ((a, b), (b, a)):
        assert y.sigma.ci[0] <= x.sigma.value <= y.sigma.ci[1]
        assert y.est["A"].ci[0] <= x.est["A"].value <= y.est["A"].ci[1]
