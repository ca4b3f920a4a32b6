"""The GLFT replication (`avmm.replicate.glft`): the ODE solution against direct numerical integration,
and the rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avmm.core.model import glft_depths
from avmm.errors import UserError
from avmm.replicate.glft import (
    ROW_KEYS,
    GLFTParams,
    glft_exact_depths,
    glft_log_v,
    glft_matrix,
    run_glft,
)

P = GLFTParams()


def _rk4_log_v(params: GLFTParams, tau: float, h: float = 0.05) -> np.ndarray:
    """Integrate dv/dt = M v backwards from v(T) = 1 over tau with classic RK4 (tridiagonal
    products, the vector rescaled every step), independently of the library's matrix exponential."""
    Q = params.Q
    qs = np.arange(-Q, Q + 1, dtype=float)
    diag, eta = params.alpha * qs * qs, params.eta

    def f(v):  # d v / d(tau) = -M v
        out = -diag * v
        out[:-1] += eta * v[1:]
        out[1:] += eta * v[:-1]
        return out

    steps = int(round(tau / h))
    h = tau / steps
    v = np.ones(2 * Q + 1)
    log_scale = 0.0
    for _ in range(steps):
        k1 = f(v)
        k2 = f(v + 0.5 * h * k1)
        k3 = f(v + 0.5 * h * k2)
        k4 = f(v + h * k3)
        v = v + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        m = v.max()
        v /= m
        log_scale += math.log(m)
    return np.log(v) + log_scale


def _quotes_from_log_v(lv, params):
    c = math.log1p(params.gamma / params.k) / params.gamma
    return (lv[:-1] - lv[1:]) / params.k + c, (lv[1:] - lv[:-1]) / params.k + c


def test_parameters_are_the_papers():
    assert (P.sigma, P.A, P.k, P.gamma, P.T, P.Q) == (0.3, 0.9, 0.3, 0.01, 600.0, 30)
    assert P.alpha == pytest.approx(0.5 * 0.3 * 0.01 * 0.09)
    assert P.eta == pytest.approx(0.9 * (1 + 0.01 / 0.3) ** (-(1 + 0.3 / 0.01)))


def test_matrix():
    M = glft_matrix(GLFTParams(Q=2))
    q = np.arange(-2, 3)
    np.testing.assert_allclose(np.diag(M), P.alpha * q * q)
    np.testing.assert_allclose(np.diag(M, 1), -P.eta)
    np.testing.assert_allclose(np.diag(M, -1), -P.eta)
    assert np.count_nonzero(M - np.diag(np.diag(M))) == 2 * 4
    assert np.allclose(M, M.T)


@pytest.mark.parametrize("t", [0.0, 300.0, 590.0])
def test_exact_quotes_match_direct_integration(t):
    tau = P.T - t
    bid, ask = glft_exact_depths(P, t)
    bid_rk, ask_rk = _quotes_from_log_v(_rk4_log_v(P, tau), P)
    np.testing.assert_allclose(bid[:-1], bid_rk, atol=1e-8)
    np.testing.assert_allclose(ask[1:], ask_rk, atol=1e-8)
    assert math.isnan(bid[-1]) and math.isnan(ask[0])


def test_log_v_is_the_ode_solution_up_to_a_constant():
    lv = glft_log_v(P, P.T, "eigh")
    d = lv - _rk4_log_v(P, P.T)
    np.testing.assert_allclose(d - d[P.Q], 0.0, atol=1e-9)


def test_eigh_and_uniformization_agree():
    for params in (P, GLFTParams(Q=5, T=60.0), GLFTParams(T=20000.0)):
        a = glft_log_v(params, params.T, "eigh")
        b = glft_log_v(params, params.T, "uniformization")
        d = a - b
        np.testing.assert_allclose(d - d[params.Q], 0.0, atol=1e-9)


def test_wide_range_falls_back_to_uniformization_and_stays_exact():
    """Q = 60: v spans ~e^36, beyond the eigen-sum's relative precision at the edges."""
    params = GLFTParams(Q=60)
    with pytest.raises(UserError):
        glft_log_v(params, params.T, "eigh")
    bid, ask = glft_exact_depths(params)
    bid_rk, ask_rk = _quotes_from_log_v(_rk4_log_v(params, params.T), params)
    np.testing.assert_allclose(bid[:-1], bid_rk, atol=1e-8)
    np.testing.assert_allclose(ask[1:], ask_rk, atol=1e-8)


def test_terminal_time_and_long_horizon():
    c = math.log1p(P.gamma / P.k) / P.gamma
    bid, ask = glft_exact_depths(P, P.T)  # v(T) = 1: no inventory term left
    np.testing.assert_allclose(bid[:-1], c, atol=1e-12)
    np.testing.assert_allclose(ask[1:], c, atol=1e-12)
    # long horizons neither overflow nor move the (stationary) quotes
    b1, a1 = glft_exact_depths(GLFTParams(T=1e5))
    b2, a2 = glft_exact_depths(GLFTParams(T=1e7))
    assert np.all(np.isfinite(b1[:-1])) and np.all(np.isfinite(a1[1:]))
    np.testing.assert_allclose(b1[:-1], b2[:-1], atol=1e-8)
    np.testing.assert_allclose(b1[:-1], glft_exact_depths(P)[0][:-1], atol=1e-6)


def test_rows_shape_symmetry_and_approximation():
    r = run_glft()
    rows = r.rows
    assert len(rows) == 2 * P.Q + 1 and [row["q"] for row in rows] == list(range(-30, 31))
    assert all(tuple(row) == ROW_KEYS for row in rows)
    assert rows[-1]["bid_exact"] is None and rows[-1]["bid_approx"] is None
    assert rows[0]["ask_exact"] is None and rows[0]["ask_approx"] is None
    # symmetry: bid(q) = ask(-q)
    np.testing.assert_allclose(r.bid_exact[:-1], r.ask_exact[::-1][:-1], atol=1e-9)
    # exact quotes: bid increasing and ask decreasing in q
    assert np.all(np.diff(r.bid_exact[:-1]) > 0) and np.all(np.diff(r.ask_exact[1:]) < 0)
    # the approximation is the engine's closed form with delta = 1, xi = gamma
    for row in rows[1:-1]:
        b, a = glft_depths(float(row["q"]), P.gamma, P.sigma, P.A, P.k, 1.0, P.gamma)
        assert (row["bid_approx"], row["ask_approx"]) == (b, a)
    # ... and it is close to the exact quotes away from the inventory limits
    inner = np.abs(r.q) <= 20
    assert np.nanmax(np.abs(r.bid_exact - r.bid_approx)[inner]) < 0.02
    assert np.nanmax(np.abs(r.ask_exact - r.ask_approx)[inner]) < 0.02
    assert r.max_abs_diff == pytest.approx(
        np.nanmax(np.abs(np.r_[r.bid_exact - r.bid_approx, r.ask_exact - r.ask_approx]))
    )


@pytest.mark.parametrize(
    "overrides",
    [
        dict(Q=0),
        dict(Q=-1),
        dict(Q=2.5),
        dict(gamma=0.0),
        dict(gamma=-0.01),
        dict(k=0.0),
        dict(A=float("nan")),
        dict(T=-1.0),
        dict(sigma=float("inf")),
    ],
)
def test_bad_input_is_a_user_error(overrides):
    with pytest.raises(UserError):
        run_glft(**overrides)


def test_time_outside_the_horizon_is_a_user_error():
    with pytest.raises(UserError):
        glft_exact_depths(P, -1.0)
    with pytest.raises(UserError):
        glft_exact_depths(P, P.T + 1.0)


def test_uniformization_in_batches_gives_the_same_numbers(monkeypatch):
    """The uniformization sum added in compiled batches (a signal is handled between two) gives bit
    for bit the sum in one call."""
    import avmm.replicate.glft as g

    p = GLFTParams(Q=40, T=900.0)
    whole = glft_log_v(p, p.T, "uniformization")
    monkeypatch.setattr(g, "UNIFORMIZATION_STEPS", 3)
    assert np.array_equal(glft_log_v(p, p.T, "uniformization"), whole)


def test_memory_checked_up_front():
    from avmm.replicate.glft import memory_bytes

    assert memory_bytes(30) == 4 * 8 * 61 * 61
    with pytest.raises(UserError) as ei:
        run_glft(Q=10**8)
    msg = str(ei.value)
    assert msg.startswith("needs 1137 PiB for the inventory limit Q = 100000000") and msg.endswith("lower Q")
