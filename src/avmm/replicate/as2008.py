"""Avellaneda & Stoikov (2008), section 3.3: the inventory strategy against the symmetric strategy.

The simulation of the paper, run on the library's own quote model (:mod:`avmm.core.model`):

* time runs over ``n = T / dt`` steps, ``t_i = i * dt`` (i = 0 .. n-1);
* at the start of step i the strategy quotes a bid and an ask from the current mid ``s``, inventory
  ``q`` and the remaining horizon ``tau = T - t_i`` (finite horizon);
* during the step the bid is hit with probability ``min(1, lambda(delta_b) * dt)`` and the ask is
  lifted with probability ``min(1, lambda(delta_a) * dt)``, independently, with
  ``lambda(delta) = A * exp(-k * delta)`` and ``delta`` the quote's distance from the mid (a
  negative depth -- a quote through the mid -- gives a probability above ``A * dt`` and the clip
  at 1 only matters if ``lambda * dt > 1``). A bid fill buys one unit: ``q += 1``,
  ``cash -= bid``; an ask fill sells one: ``q -= 1``, ``cash += ask``; both may fill in one step;
* then the mid moves by ``+sigma*sqrt(dt)`` or ``-sigma*sqrt(dt)`` with probability 1/2 each;
* profit = final cash + final q * final mid.

Strategies:

* **inventory** -- the A-S quotes of :func:`avmm.core.model.as_depths` (reservation price of
  :func:`avmm.core.model.as_reservation_price` plus/minus half the A-S spread), ``tau = T - t``;
* **symmetric** -- mid plus/minus half a constant spread equal to the inventory strategy's average
  spread (over all paths and steps) for the same gamma.

Random numbers: one NumPy ``Generator(PCG64(seed))`` draws, once per run, the mid moves and the
two fill uniforms of every (path, step). The *same* draws are used for every gamma and both
strategies (common random numbers): identical mid paths, and a fill happens when the shared
uniform is below the strategy's own fill probability. Differences between rows are therefore due to
the strategies, not to sampling noise, and a run is reproducible from its seed.

Standard deviations are population standard deviations (``ddof=0``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypedDict, get_args

import numpy as np
from numba import njit

from avmm.core.model import as_depths, as_reservation_price, as_spread
from avmm.errors import UserError, require_memory
from avmm.jit import NJIT
from avmm.replicate._checks import require_finite, require_int, require_nonnegative, require_positive
from avmm.replicate.plotting import pyplot, save_png

PAPER = "Avellaneda & Stoikov (2008), High-frequency trading in a limit order book, section 3.3"
PLOT_FEATURE = "avmm replicate as2008 --plot"  # named in the error when matplotlib is missing

GAMMA_MAX = 1e6  # as the config's model.gamma: beyond it the A-S spread overflows

STRATEGY_INVENTORY = 0
STRATEGY_SYMMETRIC = 1
STRATEGY_NAMES = ("inventory", "symmetric")

# the statistics of a row (after its gamma and strategy), typed for keyed access to an AS2008Row
StatKey = Literal["spread", "profit_mean", "profit_std", "q_final_mean", "q_final_std"]
STAT_KEYS: tuple[StatKey, ...] = get_args(StatKey)
ROW_KEYS = ("gamma", "strategy", *STAT_KEYS)


class AS2008Row(TypedDict):
    """One row of the results (keys in the order of ROW_KEYS)."""

    gamma: float
    strategy: str
    spread: float
    profit_mean: float
    profit_std: float
    q_final_mean: float
    q_final_std: float


# The paper's Table 1 (gamma = 0.1), for comparison in the CLI output.
PAPER_TABLE: dict[tuple[float, str], dict[str, float]] = {
    (0.1, "inventory"): dict(spread=1.29, profit_mean=62.94, profit_std=5.89, q_final_mean=0.10, q_final_std=2.80),
    (0.1, "symmetric"): dict(spread=1.29, profit_mean=67.21, profit_std=13.43, q_final_mean=-0.018, q_final_std=8.66),
}


@dataclass(frozen=True)
class AS2008Params:
    """The paper's section 3.3 parameters (the defaults) and the Monte Carlo settings."""

    s0: float = 100.0
    T: float = 1.0
    sigma: float = 2.0
    dt: float = 0.005
    q0: float = 0.0
    A: float = 140.0
    k: float = 1.5
    gammas: tuple[float, ...] = (0.1, 0.01, 1.0)
    paths: int = 1000
    seed: int = 0

    @property
    def n_steps(self) -> int:
        """Steps of the simulation, ``T / dt``."""
        return int(round(self.T / self.dt))

    def validate(self) -> None:
        """Raise :class:`UserError` on a parameter the simulation cannot use."""
        require_int(self.paths, "paths", 1)
        if not self.gammas:
            raise UserError("at least one gamma is required")
        for g in self.gammas:
            if not (math.isfinite(g) and 0.0 < g <= GAMMA_MAX):
                raise UserError(f"gamma must be a number > 0 and <= {GAMMA_MAX:g}, got {g!r}")
        require_positive(self, "T", "dt", "A", "k")
        require_finite(self, "s0", "q0")
        require_nonnegative(self, "sigma")
        n = self.n_steps
        if n < 1 or abs(n * self.dt - self.T) > 1e-9 * self.T:
            raise UserError(f"T ({self.T}) must be a whole number (>= 1) of steps dt ({self.dt})")
        require_int(self.seed, "seed", 0)
        need = memory_bytes(int(self.paths), n, len(self.gammas))
        require_memory(need, f"{self.paths} paths x {n} steps", "lower paths")

    def to_dict(self) -> dict[str, Any]:
        """The parameters as JSON values (``gammas`` a list), plus ``n_steps``."""
        d = asdict(self)
        d["gammas"] = list(self.gammas)
        d["n_steps"] = self.n_steps
        return d


@njit(**NJIT)
def fill_probability(depth, A, k, dt):
    """Probability that a quote ``depth`` away from the mid fills within ``dt``:
    ``min(1, A * exp(-k * depth) * dt)``."""
    p = A * math.exp(-k * depth) * dt
    return p if p < 1.0 else 1.0


@njit(**NJIT)
def simulate_block(
    mid_up,
    u_bid,
    u_ask,
    strategy,
    s0,
    T,
    sigma,
    dt,
    A,
    k,
    gamma,
    q0,
    sym_spread,
    path_out,
    record,
    spread_sum,
    cash,
    q_out,
    mid_out,
    nb_out,
    na_out,
):
    """:func:`simulate` over a block of paths (the rows of the draws given), writing the final
    values into ``cash``, ``q_out``, ``mid_out``, ``nb_out``, ``na_out`` (one entry per path) and
    path 0 of the block into ``path_out`` if ``record``. ``spread_sum`` is the quoted spread summed over the
    previous blocks; returns it with this block's added (the same sum, in the same order, as one
    call over all paths)."""
    paths, n = mid_up.shape
    ds = sigma * math.sqrt(dt)
    half_sym = 0.5 * sym_spread
    for p in range(paths):
        s = s0
        q = q0
        x = 0.0
        nb = 0
        na = 0
        keep = record and p == 0
        for i in range(n):
            tau = T - i * dt
            if strategy == STRATEGY_INVENTORY:
                bid_depth, ask_depth = as_depths(q, gamma, sigma, k, tau)
                r = as_reservation_price(s, q, gamma, sigma, tau)
            else:
                bid_depth = half_sym
                ask_depth = half_sym
                r = s
            bid = s - bid_depth
            ask = s + ask_depth
            spread_sum += bid_depth + ask_depth
            if keep:
                path_out[i, 0] = s
                path_out[i, 1] = r
                path_out[i, 2] = bid
                path_out[i, 3] = ask
            if u_bid[p, i] < fill_probability(bid_depth, A, k, dt):
                q += 1.0
                x -= bid
                nb += 1
            if u_ask[p, i] < fill_probability(ask_depth, A, k, dt):
                q -= 1.0
                x += ask
                na += 1
            if mid_up[p, i]:
                s += ds
            else:
                s -= ds
        if keep:
            path_out[n, 0] = s
            path_out[n, 1] = s
            path_out[n, 2] = np.nan
            path_out[n, 3] = np.nan
        cash[p] = x
        q_out[p] = q
        mid_out[p] = s
        nb_out[p] = nb
        na_out[p] = na
    return spread_sum


@njit(**NJIT)
def simulate(mid_up, u_bid, u_ask, strategy, s0, T, sigma, dt, A, k, gamma, q0, sym_spread, path_out):
    """Run one strategy over all paths with the given random draws.

    ``mid_up``: bool[paths, n] (True: the mid moves up after step i); ``u_bid``/``u_ask``:
    float64[paths, n] uniforms in [0, 1) (a side fills when its uniform is below its fill
    probability). ``strategy``: STRATEGY_INVENTORY (A-S quotes with gamma, tau = T - t_i) or
    STRATEGY_SYMMETRIC (mid -/+ sym_spread / 2). ``path_out``: float64[n + 1, 4] receiving path 0
    as rows (mid, reservation price, bid, ask) at t_0 .. t_{n-1}, and (mid_T, mid_T, nan, nan).

    Returns ``(cash, q, mid, n_bid_fills, n_ask_fills, mean_spread)``: final values per path and the
    quoted spread averaged over all paths and steps.
    """
    paths, n = mid_up.shape
    cash = np.zeros(paths)
    q_out = np.empty(paths)
    mid_out = np.empty(paths)
    nb_out = np.zeros(paths, dtype=np.int64)
    na_out = np.zeros(paths, dtype=np.int64)
    spread_sum = simulate_block(
        mid_up,
        u_bid,
        u_ask,
        strategy,
        s0,
        T,
        sigma,
        dt,
        A,
        k,
        gamma,
        q0,
        sym_spread,
        path_out,
        True,
        0.0,
        cash,
        q_out,
        mid_out,
        nb_out,
        na_out,
    )
    return cash, q_out, mid_out, nb_out, na_out, spread_sum / (paths * n)


@njit(**NJIT)
def mean_as_spread(gamma, sigma, k, T, dt, n):
    """The A-S spread averaged over the step grid t_i = i * dt (what the inventory strategy quotes
    on average: its spread does not depend on q or the mid)."""
    acc = 0.0
    for i in range(n):
        acc += as_spread(gamma, sigma, k, T - i * dt)
    return acc / n


Draws = tuple[np.ndarray, np.ndarray, np.ndarray]  # mid_up, u_bid, u_ask


BLOCK_CELLS = 4_000_000  # path-steps per kernel call or draw: a signal is handled within ~0.3 s


def _rows(paths: int, n_steps: int) -> range:
    """The first row of each block of paths."""
    return range(0, paths, max(1, BLOCK_CELLS // max(1, n_steps)))


def draw(paths: int, n_steps: int, seed: int) -> Draws:
    """The run's random numbers: ``(mid_up, u_bid, u_ask)``, each of shape (paths, n_steps).

    Drawn in blocks of paths (the same numbers as one call: the generator fills rows in order), so
    that the only temporary is one block and a signal is handled between blocks."""
    rng = np.random.Generator(np.random.PCG64(seed))
    mid_up = np.empty((paths, n_steps), dtype=bool)
    u_bid = np.empty((paths, n_steps))
    u_ask = np.empty((paths, n_steps))
    rows = _rows(paths, n_steps)
    for a in rows:
        b = min(a + rows.step, paths)
        mid_up[a:b] = rng.random((b - a, n_steps)) < 0.5
    for u in (u_bid, u_ask):
        for a in rows:
            rng.random(out=u[a : min(a + rows.step, paths)])
    return mid_up, u_bid, u_ask


def memory_bytes(paths: int, n_steps: int, n_gammas: int) -> int:
    """What :func:`run_as2008` allocates at its peak: the draws (a bool and two float64 per path and
    step), one block's temporary, and five float64 per path for each of the ``2 * n_gammas`` runs
    (plus one for the profits of a row)."""
    block = min(paths, max(1, BLOCK_CELLS // max(1, n_steps))) * n_steps * 8
    return paths * n_steps * 17 + block + paths * 8 * (5 * 2 * n_gammas + 1)


@dataclass
class StrategyRun:
    """One (gamma, strategy) run: per-path final values and path 0."""

    gamma: float
    strategy: str
    spread: float  # mean quoted spread over all paths and steps
    cash: np.ndarray
    q_final: np.ndarray
    mid_final: np.ndarray
    n_bid_fills: np.ndarray
    n_ask_fills: np.ndarray
    path: np.ndarray  # (n + 1, 4): mid, reservation price, bid, ask of path 0

    @property
    def profit(self) -> np.ndarray:
        """Per-path profit: final cash plus the final inventory marked at the final mid."""
        return self.cash + self.q_final * self.mid_final

    def row(self) -> AS2008Row:
        """Mean spread and the mean and (population) std of profit and final inventory."""
        profit = self.profit
        return AS2008Row(
            gamma=float(self.gamma),
            strategy=self.strategy,
            spread=float(self.spread),
            profit_mean=float(profit.mean()),
            profit_std=float(profit.std()),
            q_final_mean=float(self.q_final.mean()),
            q_final_std=float(self.q_final.std()),
        )


@dataclass
class AS2008Result:
    """The runs of :func:`run_as2008`, in order (per gamma: inventory, then symmetric)."""

    params: AS2008Params
    runs: list[StrategyRun] = field(default_factory=list)
    elapsed_s: float = 0.0  # wall time of the draws and all runs, compilation excluded (not in the JSON)

    @property
    def rows(self) -> list[AS2008Row]:
        """One :meth:`StrategyRun.row` per run."""
        return [r.row() for r in self.runs]

    @property
    def times(self) -> np.ndarray:
        """t_0 .. t_n, matching the rows of each run's ``path``."""
        return np.arange(self.params.n_steps + 1) * self.params.dt

    def run(self, gamma: float, strategy: str) -> StrategyRun:
        """The run of ``strategy`` at ``gamma`` (KeyError if there is none)."""
        for r in self.runs:
            if r.gamma == gamma and r.strategy == strategy:
                return r
        raise KeyError((gamma, strategy))

    def to_json(self) -> dict[str, Any]:
        """``{"paper": ..., "parameters": {...}, "rows": [...]}`` -- rows keyed as ROW_KEYS."""
        return {
            "paper": PAPER,
            "parameters": self.params.to_dict(),
            "rows": self.rows,
        }


def run_strategy(
    params: AS2008Params, gamma: float, strategy: str, draws: Draws, sym_spread: float = 0.0
) -> StrategyRun:
    """Run one strategy on the given draws (see :func:`draw`)."""
    mid_up, u_bid, u_ask = draws
    sid = STRATEGY_NAMES.index(strategy)
    if sid == STRATEGY_SYMMETRIC and not (math.isfinite(sym_spread) and sym_spread > 0.0):
        raise UserError(f"the symmetric strategy needs a spread > 0, got {sym_spread!r}")
    paths, n = mid_up.shape
    path = np.empty((n + 1, 4))
    cash, q, mid = np.zeros(paths), np.empty(paths), np.empty(paths)
    nb, na = np.zeros(paths, dtype=np.int64), np.zeros(paths, dtype=np.int64)
    spread_sum = 0.0
    rows = _rows(paths, n)
    for a in rows:  # blocks of paths: a signal is handled between two kernel calls
        b = min(a + rows.step, paths)
        spread_sum = simulate_block(
            mid_up[a:b],
            u_bid[a:b],
            u_ask[a:b],
            sid,
            float(params.s0),
            float(params.T),
            float(params.sigma),
            float(params.dt),
            float(params.A),
            float(params.k),
            float(gamma),
            float(params.q0),
            float(sym_spread),
            path,
            a == 0,
            spread_sum,
            cash[a:b],
            q[a:b],
            mid[a:b],
            nb[a:b],
            na[a:b],
        )
    return StrategyRun(float(gamma), strategy, float(spread_sum / (paths * n)), cash, q, mid, nb, na, path)


def compile_kernels() -> None:
    """Compile the simulation kernels (or load them from numba's cache) on a one-step run, so
    that a timed run measures the simulation only."""
    run_strategy(AS2008Params(T=1.0, dt=1.0), 1.0, "inventory", draw(1, 1, 0))


def _params(params: AS2008Params | None, overrides: dict[str, Any]) -> AS2008Params:
    """``params`` (default: the paper's) with ``overrides`` applied, gammas as floats, validated."""
    params = replace(params if params is not None else AS2008Params(), **overrides)
    try:
        gammas = tuple(float(g) for g in params.gammas)
    except (TypeError, ValueError):
        raise UserError(f"gammas must be numbers, got {params.gammas!r}") from None
    params = replace(params, gammas=gammas)
    params.validate()
    return params


def run_as2008(params: AS2008Params | None = None, **overrides: Any) -> AS2008Result:
    """The paper's experiment: for each gamma, the inventory strategy, then the symmetric strategy
    with the inventory strategy's mean spread, all on the same random draws.

    The parameters are validated before anything runs; the kernels are compiled before the clock
    starts (:attr:`AS2008Result.elapsed_s` times the simulation alone).

    Parameters
    ----------
    params : AS2008Params, optional
        The experiment; default ``AS2008Params()``, the paper's section 3.3 values with 1000
        paths and seed 0.
    **overrides
        Fields of :class:`AS2008Params` to replace, e.g.
        ``run_as2008(paths=200, seed=1, gammas=(0.1,))``.

    Returns
    -------
    AS2008Result
        The parameters used and one :class:`StrategyRun` per (gamma, strategy), in the order
        (gamma_1, inventory), (gamma_1, symmetric), (gamma_2, inventory), ...

    Raises
    ------
    UserError
        A parameter the simulation cannot use (see :meth:`AS2008Params.validate`).
    """
    params = _params(params, overrides)
    compile_kernels()
    t0 = time.perf_counter()
    draws = draw(int(params.paths), params.n_steps, int(params.seed))
    result = AS2008Result(params)
    for g in params.gammas:
        inv = run_strategy(params, g, "inventory", draws)
        sym = run_strategy(params, g, "symmetric", draws, sym_spread=inv.spread)
        result.runs += [inv, sym]
    result.elapsed_s = time.perf_counter() - t0
    return result


def plot_as2008(result: AS2008Result, path: str | Path) -> None:
    """PNG: one sample path (mid, reservation price, bid, ask) of the inventory strategy for the
    first gamma, and, per gamma, the profit histograms of both strategies (the paper's figures).

    Needs matplotlib (the ``report`` extra); without it, a :class:`UserError` naming the install.
    """
    plt = pyplot(PLOT_FEATURE)
    gammas = result.params.gammas
    n_hist = len(gammas)
    fig, axes = plt.subplots(1 + n_hist, 1, figsize=(8, 3.2 * (1 + n_hist)), squeeze=False)
    axes = axes[:, 0]
    t = result.times
    inv0 = result.run(gammas[0], "inventory")
    ax = axes[0]
    ax.plot(t, inv0.path[:, 0], color="black", lw=1.2, label="mid price")
    ax.plot(t, inv0.path[:, 1], color="tab:purple", lw=1.0, label="reservation price")
    ax.plot(t[:-1], inv0.path[:-1, 3], color="tab:red", lw=0.8, alpha=0.8, label="ask")
    ax.plot(t[:-1], inv0.path[:-1, 2], color="tab:green", lw=0.8, alpha=0.8, label="bid")
    ax.set_title(f"Inventory strategy, one sample path (gamma = {gammas[0]:g})")
    ax.set_xlabel("time")
    ax.set_ylabel("price")
    ax.legend(loc="best", fontsize=8)
    for ax, g in zip(axes[1:], gammas, strict=True):
        inv = result.run(g, "inventory").profit
        sym = result.run(g, "symmetric").profit
        lo, hi = min(inv.min(), sym.min()), max(inv.max(), sym.max())
        bins = np.linspace(lo, hi, 41) if hi > lo else 10
        ax.hist(inv, bins=bins, alpha=0.6, color="tab:blue", label="inventory strategy")
        ax.hist(sym, bins=bins, alpha=0.5, color="tab:orange", label="symmetric strategy")
        ax.set_title(f"Profit over {result.params.paths} paths (gamma = {g:g})")
        ax.set_xlabel("profit")
        ax.set_ylabel("paths")
        ax.legend(loc="best", fontsize=8)
    save_png(fig, path)
