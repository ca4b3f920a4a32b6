"""Gueant, Lehalle & Fernandez-Tapia (2013): exact optimal quotes beside the engine's approximation.

Under an inventory limit ``Q`` the paper reduces the HJB equation to a linear ODE system: with

    alpha = (k / 2) * gamma * sigma^2,    eta = A * (1 + gamma / k) ** (-(1 + k / gamma)),

and ``M`` the (2Q+1) x (2Q+1) symmetric tridiagonal matrix (rows q = -Q .. Q)

    M[q, q] = alpha * q^2,    M[q, q +/- 1] = -eta,

the solution is ``v(t) = exp(-M (T - t)) . 1`` (so ``dv/dt = M v``, ``v(T) = 1``), and the optimal
depths from the mid are

    bid(q) = (1/k) ln(v_q / v_{q+1}) + (1/gamma) ln(1 + gamma/k)      (q < Q; no bid at q = Q)
    ask(q) = (1/k) ln(v_q / v_{q-1}) + (1/gamma) ln(1 + gamma/k)      (q > -Q; no ask at q = -Q)

Numerics (:func:`glft_log_v`): ``M = V diag(lam) V^T`` by ``np.linalg.eigh``; ``v`` is computed up
to a positive factor as ``V (exp(-(lam - lam_min) tau) * (V^T 1))`` -- every exponent is <= 0, so
nothing overflows however long the horizon, and the factor ``exp(-lam_min tau)`` cancels in the
ratios; the quotes only need ``ln v``. The eigen-sum is accurate to ~1e-16 *relative to the largest
entry* of ``v``, so when ``v`` spans many decades (large Q or T) its smallest entries lose
precision. Each entry's rounding error is about ``n * eps * sum|w|`` (eigenvector entries are
accurate only in absolute terms); if that exceeds 1e-8 of any entry, :func:`glft_log_v` switches
to uniformization in log space (:func:`log_v_uniformized`):
``exp(-M tau) 1 = sum_n Poisson(n; c tau) P^n 1`` with
``P = I - M / c`` entrywise non-negative (``c = alpha Q^2 + 2 eta``), a sum of positive terms
evaluated with log-sum-exp -- full relative precision in every entry, no overflow or underflow,
cost ~ ``c tau`` tridiagonal products.

The approximation rows are the engine's closed form, :func:`avmm.core.model.glft_depths` with order size
``delta = 1`` and ``xi = gamma`` (the 2013 paper's formula).

Units follow the paper's illustration: prices in ticks, time in seconds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
from numba import njit

from avmm.core.model import glft_depths, log1p_over
from avmm.errors import UserError, require_memory
from avmm.jit import NJIT
from avmm.replicate._checks import require_int, require_nonnegative, require_positive
from avmm.replicate.plotting import pyplot, save_png

PAPER = "Gueant, Lehalle & Fernandez-Tapia (2013), Dealing with the inventory risk"
PLOT_FEATURE = "avmm replicate glft --plot"  # named in the error when matplotlib is missing

ROW_KEYS = ("q", "bid_exact", "ask_exact", "bid_approx", "ask_approx")


class GLFTRow(TypedDict):
    """One row of the results (keys in the order of ROW_KEYS); None where a side is not quoted."""

    q: int
    bid_exact: float | None
    ask_exact: float | None
    bid_approx: float | None
    ask_approx: float | None


@dataclass(frozen=True)
class GLFTParams:
    """The paper's illustration (section 6): sigma in tick/sqrt(s), A in 1/s, k and gamma in
    1/tick, T in s, Q in lots."""

    sigma: float = 0.3
    A: float = 0.9
    k: float = 0.3
    gamma: float = 0.01
    T: float = 600.0
    Q: int = 30

    def validate(self) -> None:
        """Raise :class:`UserError` on a parameter the ODE solution cannot use."""
        require_positive(self, "A", "k", "gamma")
        require_nonnegative(self, "sigma", "T")
        require_int(self.Q, "the inventory limit Q", 1)
        require_memory(memory_bytes(int(self.Q)), f"the inventory limit Q = {self.Q}", "lower Q")

    @property
    def alpha(self) -> float:
        """``(k / 2) * gamma * sigma^2``: the diagonal of M is ``alpha * q^2``."""
        return 0.5 * self.k * self.gamma * self.sigma * self.sigma

    @property
    def eta(self) -> float:
        """``A * (1 + gamma / k) ** (-(1 + k / gamma))``: the off-diagonal of M is ``-eta``."""
        y = self.gamma / self.k
        return self.A * math.exp(-(1.0 + 1.0 / y) * math.log1p(y))

    def to_dict(self) -> dict[str, Any]:
        """The parameters, plus ``alpha``, ``eta`` and the time ``t = 0`` of the quotes."""
        d = asdict(self)
        d.update(alpha=self.alpha, eta=self.eta, t=0.0)
        return d


def memory_bytes(Q: int) -> int:
    """What the exact solution allocates at its peak for inventory limit ``Q``: the (2Q+1)^2 matrix
    M, its eigenvectors and LAPACK's workspace (about two more), float64."""
    n = 2 * Q + 1
    return 4 * 8 * n * n


def glft_matrix(params: GLFTParams) -> np.ndarray:
    """The (2Q+1) x (2Q+1) matrix M of the paper, rows/columns ordered q = -Q .. Q."""
    Q = int(params.Q)
    q = np.arange(-Q, Q + 1, dtype=np.float64)
    M = np.diag(params.alpha * q * q)
    idx = np.arange(2 * Q)
    M[idx, idx + 1] = -params.eta
    M[idx + 1, idx] = -params.eta
    return M


@njit(**NJIT)
def _logsumexp3(a, b, c):
    m = max(a, max(b, c))
    if m == -np.inf:
        return m
    return m + math.log(math.exp(a - m) + math.exp(b - m) + math.exp(c - m))


UNIFORMIZATION_STEPS = 2000  # terms per kernel call: a signal is handled between two calls


@njit(**NJIT)
def _uniformization_setup(alpha, eta, Q, tau):
    """The uniformization's constants and its first term: ``(acc, w, log_diag, log_off, lam)``."""
    n = 2 * Q + 1
    acc = np.zeros(n)
    w = np.zeros(n)  # ln (P^m 1)
    log_diag = np.empty(n)
    lam = (alpha * Q * Q + 2.0 * eta) * tau
    if lam <= 0.0:
        return acc, w, log_diag, 0.0, lam
    c = alpha * Q * Q + 2.0 * eta
    log_off = math.log(eta / c)
    for j in range(n):
        q = j - Q
        d = 1.0 - alpha * q * q / c
        log_diag[j] = math.log(d) if d > 0.0 else -np.inf
    acc[:] = -lam  # ln Poisson(0; lam) + ln (P^0 1)
    return acc, w, log_diag, log_off, lam


@njit(**NJIT)
def _uniformization_terms(acc, w, w_new, log_diag, log_off, lam, log_pi, m, max_terms):
    """Add up to ``max_terms`` terms to ``acc`` from term ``m`` on; returns ``(log_pi, m, done)``."""
    n = acc.size
    log_lam = math.log(lam)
    for _ in range(max_terms):
        m += 1
        for j in range(n):
            left = w[j - 1] + log_off if j > 0 else -np.inf
            right = w[j + 1] + log_off if j < n - 1 else -np.inf
            w_new[j] = _logsumexp3(w[j] + log_diag[j], left, right)
        w[:] = w_new
        log_pi += log_lam - math.log(m)
        for j in range(n):
            t = log_pi + w[j]
            a = acc[j]
            hi = max(a, t)
            if hi > -np.inf:
                acc[j] = hi + math.log1p(math.exp(min(a, t) - hi))
        if m + 2 > lam:
            # sum_{i > m} pi_i <= pi_{m+1} / (1 - lam / (m + 2))
            log_tail = log_pi + log_lam - math.log(m + 1.0) - math.log1p(-lam / (m + 2.0))
            done = True
            for j in range(n):
                if log_tail + w[j] > acc[j] - 40.0:
                    done = False
                    break
            if done:
                return log_pi, m, True
    return log_pi, m, False


def log_v_uniformized(alpha: float, eta: float, Q: int, tau: float) -> np.ndarray:
    """``ln(exp(-M tau) . 1)`` (entries q = -Q .. Q) by uniformization in log space.

    With ``c = alpha Q^2 + 2 eta`` and ``P = I - M/c`` (non-negative, rows summing to <= 1):
    ``exp(-M tau) = sum_n e^{-c tau} (c tau)^n / n! P^n``. The terms are accumulated with
    log-sum-exp and the sum stops once the Poisson tail bound ``(P^n 1)_q * P(N > n)`` is below
    e^-40 of every accumulated entry (``P^n 1`` is non-increasing in n). The terms are added in
    compiled batches of ``UNIFORMIZATION_STEPS``, so a long sum can be interrupted.
    """
    acc, w, log_diag, log_off, lam = _uniformization_setup(float(alpha), float(eta), int(Q), float(tau))
    if lam <= 0.0:
        return acc
    w_new = np.empty_like(w)
    log_pi, m, done = -lam, 0, False
    while not done:
        log_pi, m, done = _uniformization_terms(acc, w, w_new, log_diag, log_off, lam, log_pi, m, UNIFORMIZATION_STEPS)
    return acc


def glft_log_v(params: GLFTParams, tau: float, method: str = "auto") -> np.ndarray:
    """``ln v`` at remaining horizon ``tau = T - t``, up to an additive constant (which cancels
    in the quotes). Entries ordered q = -Q .. Q.

    ``method``: ``"eigh"`` (eigendecomposition; raises UserError if it cannot reach 1e-8 relative
    precision), ``"uniformization"`` (:func:`log_v_uniformized`), or ``"auto"`` (eigh, falling back
    to uniformization when eigh's error bound is too large).
    """
    if not (math.isfinite(tau) and tau >= 0.0):
        raise UserError(f"the remaining horizon must be a finite number >= 0, got {tau!r}")
    if method not in ("auto", "eigh", "uniformization"):
        raise ValueError(f"unknown method {method!r}")
    if method != "uniformization":
        lam, V = np.linalg.eigh(glft_matrix(params))
        weights = np.exp(-(lam - lam[0]) * tau) * V.sum(axis=0)  # lam ascending: exponents <= 0
        v = V @ weights
        # rounding error of every entry (eigenvector entries are accurate to ~eps absolutely)
        bound = v.size * np.finfo(float).eps * np.abs(weights).sum()
        if np.all(v > 1e8 * bound):
            return np.log(v)
        if method == "eigh":
            raise UserError(
                "the eigendecomposition cannot evaluate the GLFT ODE solution to 1e-8 relative "
                "precision for these parameters (use the uniformization method)"
            )
    return log_v_uniformized(params.alpha, params.eta, int(params.Q), float(tau))


def glft_exact_depths(params: GLFTParams, t: float = 0.0, method: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Exact optimal (bid_depth, ask_depth) at time t (0 <= t <= T) for q = -Q .. Q; NaN where the
    side is not quoted (bid at q = Q, ask at q = -Q). ``method``: see :func:`glft_log_v`."""
    params.validate()
    if not (math.isfinite(t) and 0.0 <= t <= params.T):
        raise UserError(f"t must lie in [0, T = {params.T}], got {t!r}")
    lv = glft_log_v(params, params.T - t, method)
    c = log1p_over(1.0 / params.k, params.gamma)  # (1/gamma) ln(1 + gamma/k)
    n = lv.size
    bid = np.full(n, np.nan)
    ask = np.full(n, np.nan)
    bid[:-1] = (lv[:-1] - lv[1:]) / params.k + c
    ask[1:] = (lv[1:] - lv[:-1]) / params.k + c
    return bid, ask


def glft_approx_depths(params: GLFTParams) -> tuple[np.ndarray, np.ndarray]:
    """The engine's closed form (:func:`avmm.core.model.glft_depths`, delta = 1, xi = gamma) for
    q = -Q .. Q, with the same NaN at the inventory limits as the exact quotes."""
    Q = int(params.Q)
    qs = range(-Q, Q + 1)
    pairs = [glft_depths(float(q), params.gamma, params.sigma, params.A, params.k, 1.0, params.gamma) for q in qs]
    bid = np.array([b for b, _ in pairs])
    ask = np.array([a for _, a in pairs])
    bid[-1] = np.nan
    ask[0] = np.nan
    return bid, ask


def _num(x: float) -> float | None:
    """JSON value of a depth: None for NaN (a side that is not quoted)."""
    return None if not math.isfinite(x) else float(x)


@dataclass
class GLFTResult:
    """Exact and approximate depths at t = 0 for q = -Q .. Q (NaN where a side is not quoted)."""

    params: GLFTParams
    q: np.ndarray
    bid_exact: np.ndarray
    ask_exact: np.ndarray
    bid_approx: np.ndarray
    ask_approx: np.ndarray

    @property
    def rows(self) -> list[GLFTRow]:
        """One row per q, keyed as ROW_KEYS."""
        return [
            GLFTRow(q=int(q), bid_exact=_num(be), ask_exact=_num(ae), bid_approx=_num(ba), ask_approx=_num(aa))
            for q, be, ae, ba, aa in zip(
                self.q, self.bid_exact, self.ask_exact, self.bid_approx, self.ask_approx, strict=True
            )
        ]

    @property
    def max_abs_diff(self) -> float:
        """max |exact - approx| over both sides and all quoted q."""
        d = np.concatenate([self.bid_exact - self.bid_approx, self.ask_exact - self.ask_approx])
        return float(np.nanmax(np.abs(d)))

    def to_json(self) -> dict[str, Any]:
        """``{"paper": ..., "parameters": {...}, "max_abs_diff": x, "rows": [...]}``; rows keyed as
        ROW_KEYS, null where a side is not quoted."""
        return {
            "paper": PAPER,
            "parameters": self.params.to_dict(),
            "max_abs_diff": self.max_abs_diff,
            "rows": self.rows,
        }


def run_glft(params: GLFTParams | None = None, **overrides: Any) -> GLFTResult:
    """Exact quotes at t = 0 and the engine's approximation, for q = -Q .. Q.

    Parameters
    ----------
    params : GLFTParams, optional
        The model; default ``GLFTParams()``, the paper's illustration (section 6) with Q = 30.
    **overrides
        Fields of :class:`GLFTParams` to replace, e.g. ``run_glft(Q=10)``.

    Returns
    -------
    GLFTResult
        The parameters used, ``q = -Q .. Q`` and the exact (ODE, :func:`glft_exact_depths`) and
        approximate (closed form, :func:`glft_approx_depths`) bid and ask depths in ticks.

    Raises
    ------
    UserError
        A parameter the model cannot use (see :meth:`GLFTParams.validate`).
    """
    params = replace(params if params is not None else GLFTParams(), **overrides)
    params.validate()
    bid_e, ask_e = glft_exact_depths(params, 0.0)
    bid_a, ask_a = glft_approx_depths(params)
    q = np.arange(-int(params.Q), int(params.Q) + 1)
    return GLFTResult(params, q, bid_e, ask_e, bid_a, ask_a)


def plot_glft(result: GLFTResult, path: str | Path) -> None:
    """PNG: exact and approximate bid and ask depths against q (unquoted sides omitted).

    Needs matplotlib (the ``report`` extra); without it, a :class:`UserError` naming the install.
    """
    plt = pyplot(PLOT_FEATURE)
    fig, ax = plt.subplots(figsize=(8, 5))
    q = result.q
    curves: tuple[tuple[np.ndarray, dict[str, Any], str], ...] = (
        (result.bid_exact, dict(color="tab:green", marker="o", ms=3, lw=0), "bid, exact (ODE)"),
        (result.bid_approx, dict(color="tab:green", lw=1.2), "bid, closed-form approximation"),
        (result.ask_exact, dict(color="tab:red", marker="o", ms=3, lw=0), "ask, exact (ODE)"),
        (result.ask_approx, dict(color="tab:red", lw=1.2, ls="--"), "ask, closed-form approximation"),
    )
    for y, style, label in curves:
        ok = np.isfinite(y)
        ax.plot(q[ok], y[ok], label=label, **style)
    p = result.params
    ax.set_title(
        f"GLFT optimal quotes at t = 0 (sigma={p.sigma:g}, A={p.A:g}, k={p.k:g}, "
        f"gamma={p.gamma:g}, T={p.T:g}, Q={p.Q})",
        fontsize=9,
    )
    ax.set_xlabel("inventory q (lots)")
    ax.set_ylabel("depth from the mid (ticks)")
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.legend(loc="best", fontsize=8)
    save_png(fig, path)
