"""The Avellaneda-Stoikov (2008) replication (`avmm.replicate.as2008`): simulation mechanics, bookkeeping,
reproducibility, paper facts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avmm.core.model import as_depths, as_spread
from avmm.errors import UserError
from avmm.replicate.as2008 import (
    ROW_KEYS,
    STRATEGY_INVENTORY,
    STRATEGY_SYMMETRIC,
    AS2008Params,
    draw,
    fill_probability,
    run_as2008,
    simulate,
)

P = AS2008Params()
N = P.n_steps


def _sim(mid_up, u_bid, u_ask, strategy=STRATEGY_INVENTORY, gamma=0.1, sym_spread=0.0):
    path = np.empty((mid_up.shape[1] + 1, 4))
    out = simulate(mid_up, u_bid, u_ask, strategy, P.s0, P.T, P.sigma, P.dt, P.A, P.k, gamma, P.q0, sym_spread, path)
    return (*out, path)


def _const(paths, value, dtype=np.float64):
    return np.full((paths, N), value, dtype=dtype)


def test_parameters_are_the_papers():
    assert (P.s0, P.T, P.sigma, P.dt, P.q0, P.A, P.k) == (100.0, 1.0, 2.0, 0.005, 0.0, 140.0, 1.5)
    assert P.gammas == (0.1, 0.01, 1.0) and P.paths == 1000 and N == 200


def test_fill_probability():
    assert fill_probability(0.0, 140.0, 1.5, 0.005) == pytest.approx(0.7)
    assert fill_probability(1.0, 140.0, 1.5, 0.005) == pytest.approx(0.7 * math.exp(-1.5))
    assert fill_probability(-5.0, 140.0, 1.5, 0.005) == 1.0  # clipped
    assert fill_probability(1e6, 140.0, 1.5, 0.005) == 0.0


def test_no_fills_leaves_cash_and_inventory_flat_and_mid_is_a_binary_walk():
    rng = np.random.default_rng(1)
    up = rng.random((3, N)) < 0.5
    cash, q, mid, nb, na, spread, path = _sim(up, _const(3, 1.0), _const(3, 1.0))
    assert np.all(cash == 0.0) and np.all(q == 0.0) and np.all(nb == 0) and np.all(na == 0)
    ds = P.sigma * math.sqrt(P.dt)
    np.testing.assert_allclose(mid, P.s0 + ds * (2 * up.sum(axis=1) - N), atol=1e-9)
    # the recorded path steps by exactly +/- sigma sqrt(dt)
    np.testing.assert_allclose(np.abs(np.diff(path[:, 0])), ds, atol=1e-12)
    assert path[-1, 0] == mid[0]


def test_both_sides_fill_every_step_earns_the_quoted_spreads():
    up = _const(2, True, bool)
    up[1, ::2] = False
    cash, q, mid, nb, na, spread, path = _sim(up, _const(2, 0.0), _const(2, 0.0), gamma=0.1)
    assert np.all(q == 0.0) and np.all(nb == N) and np.all(na == N)
    spreads = [as_spread(0.1, P.sigma, P.k, P.T - i * P.dt) for i in range(N)]
    np.testing.assert_allclose(cash, sum(spreads), rtol=1e-12)
    np.testing.assert_allclose(spread, np.mean(spreads), rtol=1e-12)
    # q = 0 throughout: quotes centred on the mid (reservation price = mid)
    np.testing.assert_allclose(path[:-1, 1], path[:-1, 0], atol=1e-12)


def test_bid_only_fills_buy_one_unit_per_step_at_the_model_bid():
    gamma = 0.1
    up = np.random.default_rng(2).random((1, N)) < 0.5
    cash, q, mid, nb, na, spread, path = _sim(up, _const(1, 0.0), _const(1, 1.0), gamma=gamma)
    assert q[0] == N and nb[0] == N and na[0] == 0
    # inventory before step i is i: the bid is the model's bid for that inventory
    for i in (0, 1, 57, N - 1):
        bid_depth, ask_depth = as_depths(float(i), gamma, P.sigma, P.k, P.T - i * P.dt)
        assert path[i, 2] == pytest.approx(path[i, 0] - bid_depth, abs=1e-12)
        assert path[i, 3] == pytest.approx(path[i, 0] + ask_depth, abs=1e-12)
    assert cash[0] == pytest.approx(-path[:-1, 2].sum(), rel=1e-12)
    profit = cash[0] + q[0] * mid[0]
    assert math.isfinite(profit)


def test_fill_decision_is_uniform_below_probability():
    gamma = 0.1
    bd, ad = as_depths(0.0, gamma, P.sigma, P.k, P.T)
    p_b = fill_probability(bd, P.A, P.k, P.dt)
    p_a = fill_probability(ad, P.A, P.k, P.dt)
    up = _const(2, True, bool)
    u_bid = _const(2, 1.0)
    u_ask = _const(2, 1.0)
    u_bid[0, 0], u_bid[1, 0] = p_b - 1e-9, p_b + 1e-9  # path 0 fills the bid, path 1 does not
    u_ask[0, 0], u_ask[1, 0] = p_a + 1e-9, p_a - 1e-9  # path 1 fills the ask, path 0 does not
    cash, q, mid, nb, na, spread, path = _sim(up, u_bid, u_ask, gamma=gamma)
    assert q.tolist() == [1.0, -1.0]
    assert cash[0] == pytest.approx(-(P.s0 - bd)) and cash[1] == pytest.approx(P.s0 + ad)


def test_symmetric_fill_frequency_matches_lambda_dt():
    spread = 1.5
    p = P.A * math.exp(-P.k * spread / 2) * P.dt
    paths = 400
    up, u_bid, u_ask = draw(paths, N, seed=3)
    cash, q, mid, nb, na, mean_spread, path = _sim(up, u_bid, u_ask, STRATEGY_SYMMETRIC, sym_spread=spread)
    trials = paths * N
    se = math.sqrt(p * (1 - p) / trials)
    assert abs(nb.sum() / trials - p) < 5 * se
    assert abs(na.sum() / trials - p) < 5 * se
    assert mean_spread == pytest.approx(spread)
    np.testing.assert_allclose(path[:-1, 3] - path[:-1, 2], spread, atol=1e-12)


def test_bookkeeping_on_a_random_run():
    r = run_as2008(paths=200, seed=4)
    for run in r.runs:
        np.testing.assert_array_equal(run.q_final, P.q0 + run.n_bid_fills - run.n_ask_fills)
        np.testing.assert_allclose(run.profit, run.cash + run.q_final * run.mid_final)
    # common random numbers: every run sees the same mid paths
    for run in r.runs[1:]:
        np.testing.assert_array_equal(run.mid_final, r.runs[0].mid_final)


def test_reproducible_with_a_seed():
    a = run_as2008(paths=100, seed=7, gammas=(0.1, 1.0))
    b = run_as2008(paths=100, seed=7, gammas=(0.1, 1.0))
    c = run_as2008(paths=100, seed=8, gammas=(0.1, 1.0))
    assert a.rows == b.rows
    assert a.rows != c.rows
    assert [tuple(r) for r in a.rows] == [ROW_KEYS] * 4


def test_paper_gamma_0_1_qualitative_facts():
    """A-S (2008) Table 1, gamma = 0.1: the inventory strategy's profit and final inventory are
    much less dispersed than the symmetric strategy's, at a similar mean profit."""
    gamma = 0.1
    r = run_as2008(gammas=(gamma,), seed=11)
    inv = r.run(gamma, "inventory").row()
    sym = r.run(gamma, "symmetric").row()
    # mean spread: the A-S spread averaged over t_i; the paper's 1.29 is its constant part
    # (2/gamma) ln(1 + gamma/k), the time part adds at most gamma sigma^2 T
    base = 2.0 / gamma * math.log1p(gamma / P.k)
    expected = np.mean([base + gamma * P.sigma**2 * (P.T - i * P.dt) for i in range(N)])
    assert inv["spread"] == pytest.approx(expected, rel=1e-9)
    assert sym["spread"] == pytest.approx(inv["spread"], rel=1e-9)
    assert abs(base - 1.29) < 0.005
    assert 1.29 - 0.005 <= inv["spread"] <= 1.29 + gamma * P.sigma**2 * P.T
    # the paper's qualitative result
    assert inv["profit_std"] < 0.7 * sym["profit_std"]
    assert inv["q_final_std"] < 0.5 * sym["q_final_std"]
    # and the neighbourhood of its numbers (62.94 / 5.89 / 2.80 vs 67.21 / 13.43 / 8.66)
    assert 55 < inv["profit_mean"] < 72 and 60 < sym["profit_mean"] < 75
    assert 4 < inv["profit_std"] < 9 and 10 < sym["profit_std"] < 17
    assert 2 < inv["q_final_std"] < 4 and 7 < sym["q_final_std"] < 10.5
    assert abs(inv["q_final_mean"]) < 0.5 and abs(sym["q_final_mean"]) < 1.5


@pytest.mark.parametrize(
    "overrides",
    [
        dict(paths=0),
        dict(paths=-3),
        dict(gammas=(0.0,)),
        dict(gammas=(0.1, -1.0)),
        dict(gammas=(float("nan"),)),
        dict(gammas=()),
        dict(dt=0.003),
        dict(k=0.0),
        dict(seed=-1),
    ],
)
def test_bad_input_is_a_user_error(overrides):
    with pytest.raises(UserError):
        run_as2008(**overrides)


# --- blocks (signals are handled between them), memory checked up front --------------------------


def test_blocks_give_the_same_numbers(monkeypatch):
    """Draws and kernel calls in blocks of a few paths give bit for bit the results of one block:
    the generator fills rows in order and the spread is summed in the same order."""
    import avmm.replicate.as2008 as m

    whole = run_as2008(paths=301, seed=9, gammas=(0.1, 1.0))
    monkeypatch.setattr(m, "BLOCK_CELLS", 7 * N)  # 7 paths a block, the last one short
    blocks = run_as2008(paths=301, seed=9, gammas=(0.1, 1.0))
    assert blocks.rows == whole.rows
    for a, b in zip(whole.runs, blocks.runs, strict=True):
        for f in ("cash", "q_final", "mid_final", "n_bid_fills", "n_ask_fills", "path"):
            assert np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True), f
        assert a.n_bid_fills.dtype == np.int64


def test_memory_estimate_matches_the_allocations():
    """``memory_bytes`` is computed from the arrays actually allocated (numpy's allocations are
    traced by tracemalloc)."""
    import tracemalloc

    from avmm.replicate.as2008 import compile_kernels, memory_bytes

    compile_kernels()
    tracemalloc.start()
    try:
        run_as2008(paths=5000, seed=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    est = memory_bytes(5000, N, 3)
    assert 0.9 * est <= peak <= 1.1 * est, (peak, est)


def test_too_many_paths_for_the_machine_is_one_line_up_front():
    with pytest.raises(UserError) as ei:
        run_as2008(paths=10**8)
    msg = str(ei.value)
    assert msg.startswith("needs 340 GiB for 100000000 paths x 200 steps (this machine has ") and msg.endswith(
        "; lower paths"
    )
    with pytest.raises(UserError, match="PiB for 99999999999999999999 paths"):
        run_as2008(paths=99999999999999999999)
