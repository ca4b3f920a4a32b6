"""The order-arrival intensity lambda(delta) = A * exp(-k * delta), per side and pooled.

The data: per side, the histogram of the trades' *reach* from the mid in half ticks (``scan``: 0 for
a trade at or inside the touch, ``depth - tick`` beyond it) and the observed time ``T``. The
empirical intensity at depth ``x`` is the number of trades reaching at least ``x`` per second,
``N(reach >= x) / T``.

The fit is a Poisson maximum likelihood, not a least-squares line through the log rates: the counts
of the deep bins are small (a handful of trades, often none), where the log of a rate is undefined or
badly biased and a least-squares weight is a guess; the likelihood uses every trade with its exact
weight and an empty bin as the information it is. Each trade is the interval its reach lies in: a
trade beyond the touch printed at the first level its reach passed, so its reach is in
``(depth - tick, depth]``; a trade at the touch reached between 0 and the touch, ``(0, depth]``. With
trades arriving as a Poisson process of rate ``A`` and reaches exponential of rate ``k``, the
likelihood is maximised in ``A`` at ``A = N / T`` (the trades per second on that side: every trade
reaches depth 0) and in ``k`` at the root of the score ``sum n * d/dk log(e^-k lo - e^-k hi)``, which
decreases in ``k`` (the interval probabilities of an exponential are log-concave): found by
bisection, vectorised over bootstrap resamples. On a tick grid this is exact where binning the
printed depths is not (a printed depth overstates the reach by up to a tick, depending on whether
the mid sits on a tick or between two).

Fit quality: the R^2 of the log empirical rates at the bins' lower edges against the fitted line
(edges with at least ``MIN_EDGE_TRADES`` trades beyond them), and per bin the Pearson residual
``(n_j - E_j) / sqrt(E_j)``.

The fill rate of a quote at depth ``delta`` (what it would have had: trades printing at or through
its price) is ``N(depth >= delta) / T`` from the trades' printed depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avmm.errors import UserError

MIN_TRADES = 50  # per side: fewer and A, k are not fitted
MIN_BEYOND = 10  # per side: trades beyond the touch (reach > 0) needed to fit k
MIN_EDGE_TRADES = 5
MAX_BINS = 40
MIN_FAR_H = 15  # the bins reach at least 7.5 ticks
K_TICKS_LO, K_TICKS_HI = 1e-6, 60.0  # k * tick searched in this range
SIDES = ("bid", "ask")


@dataclass
class Bins:
    """Half-tick edges of the fitting bins (the last bin is open) and their depths in price."""

    edges_h: np.ndarray  # int, half ticks, starting at 0
    x: np.ndarray  # price: edges_h * tick / 2

    def counts(self, hist: np.ndarray) -> np.ndarray:
        """Per-bin counts from half-tick histograms (last axis)."""
        return np.add.reduceat(hist, self.edges_h, axis=-1)


def choose_bins(hist: np.ndarray, tick: float) -> Bins:
    """Edges 0, 1/2 tick, then every ``width`` ticks until 99 % of the trades (both sides) lie
    below the last edge (at least 7.5 ticks), at most ``MAX_BINS`` bins; ``width`` is 1 tick unless
    that many one-tick bins do not reach that far."""
    pooled = hist.sum(axis=0) if hist.ndim > 1 else hist
    total = pooled.sum()
    cum = np.cumsum(pooled)
    far = max(int(np.searchsorted(cum, 0.99 * total)) if total else 0, MIN_FAR_H)  # half ticks
    width_h = max(2, 2 * int(np.ceil(max(far - 1, 1) / (2 * (MAX_BINS - 1)))))
    edges = [0, 1]
    while edges[-1] + width_h <= max(far, 1) and len(edges) < MAX_BINS and edges[-1] + width_h < hist.shape[-1]:
        edges.append(edges[-1] + width_h)
    e = np.asarray(edges, dtype=np.int64)
    return Bins(e, e * tick / 2.0)


def _score(k: np.ndarray, n: np.ndarray, lo: np.ndarray, width: np.ndarray) -> np.ndarray:
    """d loglik / dk for each row of interval counts ``n`` (R, J) at ``k`` (R,); interval ``j`` is
    ``(lo_j, lo_j + width_j]`` (``width`` inf: ``r > lo``).

    ``d/dk log(e^-k lo - e^-k hi) = (hi e^-k w - lo) / (1 - e^-k w)`` with ``w = hi - lo``; ``-lo``
    for an open interval.
    """
    kk = k[:, None]
    closed = np.isfinite(width)
    w = np.where(closed, width, 1.0)[None, :]
    e = np.exp(-kk * w)
    term = np.where(closed[None, :], ((lo[None, :] + w) * e - lo[None, :]) / -np.expm1(-kk * w), -lo[None, :])
    return np.asarray((n * term).sum(axis=1))


def intervals(beyond: np.ndarray, touch: np.ndarray, tick: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The trades as reach intervals: (counts (R, J), lower ends (J,), widths (J,)) from the
    half-tick histograms of the trades beyond the touch by reach lower bound and of the trades at
    the touch by depth (last axis; only the columns with a trade are kept)."""
    beyond = np.atleast_2d(np.asarray(beyond, dtype=np.float64))
    touch = np.atleast_2d(np.asarray(touch, dtype=np.float64))
    h = np.arange(beyond.shape[1]) * (tick / 2.0)
    cb = np.flatnonzero(beyond.sum(axis=0) > 0)
    ct = np.flatnonzero(touch.sum(axis=0) > 0)
    ct = ct[ct > 0]  # a trade at the touch of depth 0 (at the mid) says nothing about k
    lo = np.concatenate([h[cb], np.zeros(len(ct))])
    width = np.concatenate([np.where(cb == beyond.shape[1] - 1, np.inf, tick), h[ct]])
    return np.hstack([beyond[:, cb], touch[:, ct]]), lo, width


def fit_k(beyond: np.ndarray, touch: np.ndarray, tick: float, iters: int = 80) -> np.ndarray:
    """The maximum-likelihood ``k`` (1/price) for each row of the two histograms (see
    ``intervals``)."""
    n, lo, width = intervals(beyond, touch, tick)
    a = np.full(n.shape[0], np.log(K_TICKS_LO / tick))
    b = np.full(n.shape[0], np.log(K_TICKS_HI / tick))
    for _ in range(iters):
        mid = 0.5 * (a + b)
        pos = _score(np.exp(mid), n, lo, width) > 0
        a = np.where(pos, mid, a)
        b = np.where(pos, b, mid)
    return np.asarray(np.exp(0.5 * (a + b)))


@dataclass
class SideFit:
    """A, k and the fit's quality for one side (or pooled)."""

    A: float
    k: float
    trades: int
    beyond_touch: int
    counts: np.ndarray
    expected: np.ndarray
    rates: np.ndarray  # empirical N(reach >= x_j) / T, 1/s
    fitted: np.ndarray  # A exp(-k x_j)
    r2: float | None

    def to_json(self, bins: Bins) -> dict[str, object]:
        resid = (self.counts - self.expected) / np.sqrt(np.maximum(self.expected, 1e-300))
        return {
            "A": self.A,
            "k": self.k,
            "trades": self.trades,
            "trades_beyond_touch": self.beyond_touch,
            "r2_log_rate": self.r2,
            "bins": [
                {
                    "depth_from": float(bins.x[j]),
                    "depth_to": float(bins.x[j + 1]) if j + 1 < len(bins.x) else None,
                    "trades": int(self.counts[j]),
                    "expected": float(self.expected[j]),
                    "pearson_residual": float(resid[j]),
                    "rate_at_least_per_s": float(self.rates[j]),
                    "fitted_rate_per_s": float(self.fitted[j]),
                }
                for j in range(len(bins.x))
            ],
        }


def expected_counts(A: float, k: float, x: np.ndarray, T: float) -> np.ndarray:
    tail = A * T * np.exp(-k * x)
    return np.asarray(np.append(tail[:-1] - tail[1:], tail[-1]))


def check_enough(trades: int, beyond: int, what: str) -> None:
    """One line when a side has too few trades to fit."""
    if trades < MIN_TRADES:
        raise UserError(
            f"too few trades to fit the intensity on the {what}: found {trades:,} with a live quote, "
            f"need at least {MIN_TRADES} (give more data or a wider --from/--to window)"
        )
    if beyond < MIN_BEYOND:
        why = (
            "every trade printed at the touch: the data cannot tell how deep trades reach; set model.k by hand"
            if beyond == 0
            else "give more data or a wider --from/--to window"
        )
        raise UserError(
            f"too few trades beyond the touch to fit k on the {what}: found {beyond:,} of {trades:,} "
            f"trades, need at least {MIN_BEYOND} ({why})"
        )


def fit_side(counts: np.ndarray, k: float, bins: Bins, T: float) -> SideFit:
    """A and the quality of the fit with ``k`` (``fit_k``) from one side's bin counts over ``T``
    observed seconds."""
    counts = np.asarray(counts, dtype=np.float64)
    N = float(counts.sum())
    A = N / T
    tail = N - np.concatenate([[0.0], np.cumsum(counts)[:-1]])  # N(reach >= x_j)
    rates = tail / T
    fitted = A * np.exp(-k * bins.x)
    ok = tail >= MIN_EDGE_TRADES
    r2: float | None = None
    if ok.sum() >= 3:
        y = np.log(rates[ok])
        yhat = np.log(fitted[ok])
        ss_tot = float(((y - y.mean()) ** 2).sum())
        r2 = 1.0 - float(((y - yhat) ** 2).sum()) / ss_tot if ss_tot > 0 else None
    return SideFit(A, k, int(N), int(N - counts[0]), counts, expected_counts(A, k, bins.x, T), rates, fitted, r2)


def fill_rates(depth_h: np.ndarray, T: float, tick: float, max_ticks: float = 20.0) -> list[dict[str, float]]:
    """Per side, the fills per second a quote at each half-tick depth from the mid would have had
    (trades printing at or through its price), up to ``max_ticks`` or the deepest trade."""
    tails = depth_h[:, ::-1].cumsum(axis=1)[:, ::-1]  # N(depth >= h half ticks), [side, h]
    deepest = int(np.flatnonzero(depth_h.sum(axis=0))[-1]) if depth_h.any() else 0
    out = []
    for h in range(1, min(int(2 * max_ticks), deepest) + 1):
        out.append(
            {
                "depth_ticks": h / 2.0,
                "depth": h * tick / 2.0,
                "bid_per_s": float(tails[0, h] / T),
                "ask_per_s": float(tails[1, h] / T),
            }
        )
    return out
