"""Defaults that fit any market: gamma implied by the skew target, k implied by the market's spread,
size and position limit counted in lots."""

import math

import pytest

from avmm.config import Config
from avmm.core.config import level_sizes, max_position_of, to_params
from avmm.core.model import (
    MODEL_AS_ROLLING,
    MODEL_GLFT,
    as_depths,
    as_depths_liq,
    glft_depths,
    implied_gamma,
    implied_gamma_liq,
    k_of_liq,
)
from avmm.errors import UserError
from tests.builders import make_engine

NS = 1_000_000_000
T0 = 1_700_000_000 * NS


def half_and_skew(depths):
    (b0, a0), (b1, a1) = depths(0.0), depths(1.0)
    return 0.5 * (b0 + a0), 0.5 * (b1 - a1)


@pytest.mark.parametrize("q_limit,target", [(10.0, 1.0), (10.0, 3.0), (500.0, 1.0), (2.0, 1.5)])
@pytest.mark.parametrize("sigma,k", [(0.05, 40.0), (30.0, 0.2), (1e-4, 5e3)])
def test_implied_gamma_meets_the_skew_target_as(q_limit, target, sigma, k):
    tau = 60.0
    g = implied_gamma(MODEL_AS_ROLLING, q_limit, target, sigma, math.nan, k, tau, 1.0, math.nan, 0.0)
    half, skew = half_and_skew(lambda q: as_depths(q, g, sigma, k, tau))
    assert g > 0 and q_limit * skew == pytest.approx(target * half, rel=1e-9)


@pytest.mark.parametrize("q_limit,target", [(10.0, 1.0), (40.0, 2.0)])
def test_implied_gamma_meets_the_skew_target_glft(q_limit, target):
    sigma, A, k, delta = 2.0, 1.5, 0.8, 1.0
    g = implied_gamma(MODEL_GLFT, q_limit, target, sigma, A, k, 0.0, delta, math.nan, 123.0)
    half, skew = half_and_skew(lambda q: glft_depths(q, g, sigma, A, k, delta, g))
    assert g > 0 and q_limit * skew == pytest.approx(target * half, rel=1e-9)


def test_implied_gamma_without_a_root_is_nan():
    # q_limit <= target / 2: the skew at the limit never reaches the target
    assert math.isnan(implied_gamma(MODEL_AS_ROLLING, 0.5, 1.0, 0.05, math.nan, 40.0, 60.0, 1.0, math.nan, 0.0))
    assert math.isnan(implied_gamma_liq(0.5, 1.0, 0.05, 60.0, 0.01))
    assert math.isnan(implied_gamma_liq(10.0, 1.0, 0.0, 60.0, 0.01))


def test_the_liquidity_term_and_its_k_agree():
    sigma, tau, liq, q_limit, target = 0.3, 60.0, 0.05, 10.0, 1.0
    g = implied_gamma_liq(q_limit, target, sigma, tau, liq)
    k = k_of_liq(g, liq)
    assert math.log1p(g / k) / g == pytest.approx(liq, rel=1e-12)
    # the closed form and the general solver find the same gamma for that k
    g2 = implied_gamma(MODEL_AS_ROLLING, q_limit, target, sigma, math.nan, k, tau, 1.0, math.nan, 1.0)
    assert g2 == pytest.approx(g, rel=1e-9)
    assert as_depths_liq(2.0, g, sigma, tau, liq) == pytest.approx(as_depths(2.0, g, sigma, k, tau), rel=1e-12)


def spread_engine(**risk):
    return make_engine(
        {
            "model": {"kind": "as-rolling", "sigma": 0.05, "tau_s": 60.0, "gamma_update_s": 10.0},
            "quoting": {"tick": 0.01, "lot": 0.1, "refresh_s": 0.5, "mid_tolerance": 0.0},
            "risk": dict(risk),
            "logging": {"sample_rate": 0.0},
        }
    )


def test_default_quotes_sit_the_market_half_spread_from_the_mid():
    """k = 'spread': flat, the half spread is the market's half spread plus the risk term; at the
    limit the reservation price has moved skew_at_limit half spreads."""
    e = spread_engine(skew_at_limit=2.0)
    e.on_quote(T0, 99.98, 1.0, 100.02, 1.0)  # a 4-tick market
    st = e.state[0]
    liq = 0.02
    assert st["g_liq"] == pytest.approx(liq, rel=1e-12)
    q_limit = 10.0  # 'auto': 10 x one lot of 0.1, in lots
    risk = st["g_gamma"] * 0.05**2 * 60.0
    assert risk == pytest.approx(2.0 * liq / (q_limit - 1.0), rel=1e-12)
    half = liq + 0.5 * risk
    assert st["bid_depth"] == pytest.approx(half, rel=1e-12) and st["ask_depth"] == pytest.approx(half, rel=1e-12)
    # at the limit (q = 10): the centre of the quotes has moved 2 half spreads
    e.state["pos"] = 1.0
    e.targets(T0 + NS)
    st = e.state[0]
    assert 0.5 * (st["bid_depth"] - st["ask_depth"]) == pytest.approx(2.0 * half, rel=1e-9)


def test_the_spread_is_time_averaged_between_solves():
    e = spread_engine()
    e.on_quote(T0, 99.99, 1.0, 100.01, 1.0)  # 2 ticks, held 3 s
    e.on_quote(T0 + 3 * NS, 99.96, 1.0, 100.04, 1.0)  # 8 ticks, held 7 s
    n0 = e.value("g_nsolve")
    e.on_quote(T0 + 10 * NS, 99.96, 1.0, 100.04, 1.0)  # 10 s since the first solve: re-solved
    assert e.value("g_nsolve") == n0 + 1
    mean_spread = (0.02 * 3 + 0.08 * 7) / 10
    assert e.value("g_liq") == pytest.approx(0.5 * mean_spread, rel=1e-9)


def test_sizes_and_the_position_limit_are_counted_in_lots():
    cfg = Config.model_validate({"quoting": {"lot": 0.5, "levels": 3}})
    assert level_sizes(cfg.quoting) == [0.5, 0.5, 0.5]
    assert max_position_of(cfg) == pytest.approx(15.0)
    p = to_params(cfg)
    assert p["q_limit"][0] == pytest.approx(30.0) and p["max_position"][0] == pytest.approx(15.0)
    fixed = Config.model_validate({"quoting": {"lot": 0.5, "size": 2.0}, "risk": {"max_position": 7.0}})
    assert level_sizes(fixed.quoting) == [2.0] and max_position_of(fixed) == 7.0


def test_a_skew_target_the_limit_cannot_meet_is_one_line():
    cfg = Config.model_validate({"quoting": {"lot": 1.0}, "risk": {"max_position": 1.0, "skew_at_limit": 3.0}})
    with pytest.raises(
        UserError, match=r"risk.skew_at_limit = 3 half-spreads needs risk.max_position / model.q_unit > 1.5, got 1 "
    ):
        to_params(cfg)
    with pytest.raises(UserError, match=r"model.tau_s = 0: gamma = 'auto' needs tau_s > 0"):
        to_params(Config.model_validate({"model": {"tau_s": 0.0}}))
    to_params(Config.model_validate({"model": {"tau_s": 0.0, "gamma": 0.1}}))  # a fixed gamma needs no skew


def test_k_defaults_to_the_spread_for_as_and_to_the_fit_for_glft():
    from avmm.config import load_config

    assert to_params(Config())["k_spread"][0] == 1
    glft = to_params(Config.model_validate({"model": {"kind": "glft"}}))
    assert glft["k_spread"][0] == 0 and glft["int_on"][0] == 1
    with pytest.raises(UserError, match="model: k: 'spread' is for the A-S models"):
        load_config(None, ['model.kind="glft"', 'model.k="spread"'])


def test_an_unreachable_skew_target_stops_the_backtest_before_compiling(run_cli, tmp_path):
    for cmd in (["backtest", "--json", str(tmp_path / "x.json")], ["config", "check"]):
        r = run_cli(*cmd, "--set", "risk.skew_at_limit=100")
        assert r.returncode == 2 and "compiling" not in r.stderr, r.stderr
        assert r.stderr.strip() == (
            "avmm: error: risk.skew_at_limit = 100 half-spreads needs risk.max_position / model.q_unit > 50, got 10 "
            "(risk.max_position 0.01 = 10 x quoting.size x levels, q_unit 0.001); "
            "raise risk.max_position or lower risk.skew_at_limit"
        )
    assert not (tmp_path / "x.json").exists()
