"""The order-arrival intensity lambda(delta) = A * exp(-k * delta), per side and pooled.

The data: per side, the histogram of the trades' *reach* from the mid in half ticks (``scan``: 0 for
a trade at or inside the touch, ``depth - tick`` beyond it) and the observed time ``T``. The
empirical intensity at depth ``x`` is the number of trades reaching at least ``x`` per second,
``N(reach >= x) / T``.

The fit is a Poisson maximum likelihood on binned counts, not a least-squares line through the log
rates: the counts of the deep bins are small (a handful of trades, often none), where the log of a
rate is undefined or badly biased and a least-squares weight is a guess; the likelihood uses every
trade with its exact weight and an empty bin as the information it is. Bins ``[x_j, x_j+1)`` start at
0 and half a tick, then step by ``width`` ticks; the last is open. With counts ``n_j`` independent
Poisson of mean ``T * A * (exp(-k x_j) - exp(-k x_j+1))``, the likelihood in ``A`` is maximised at
``A = N / T`` (the trades per second on that side: every trade reaches depth 0) and in ``k`` at the
root of the score, which is decreasing in ``k`` (the interval probabilities of an exponential are
log-concave): found by bisection, vectorised over bootstrap resamples.

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


def _score(k: np.ndarray, n: np.ndarray, x: np.ndarray) -> np.ndarray:
    """d loglik / dk for each row of counts ``n`` (R, J) at ``k`` (R,) with bin edges ``x`` (J,).

    A closed bin ``[a, b)`` adds ``n * d/dk log(e^-ka - e^-kb) = n * (b e^-k(b-a) - a) / (1 - e^-k(b-a))``;
    the open last bin ``[x_J, inf)`` adds ``-n * x_J``.
    """
    kk = k[:, None]
    a = x[None, :-1]
    w = x[None, 1:] - a
    e = np.exp(-kk * w)
    term = (x[None, 1:] * e - a) / -np.expm1(-kk * w)
    return np.asarray((n[:, :-1] * term).sum(axis=1) - n[:, -1] * x[-1])


def fit_k(n: np.ndarray, x: np.ndarray, tick: float, iters: int = 80) -> np.ndarray:
    """The maximum-likelihood ``k`` (1/price) for each row of bin counts ``n`` (R, J)."""
    n = np.atleast_2d(np.asarray(n, dtype=np.float64))
    lo = np.full(n.shape[0], np.log(K_TICKS_LO / tick))
    hi = np.full(n.shape[0], np.log(K_TICKS_HI / tick))
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        pos = _score(np.exp(mid), n, x) > 0
        lo = np.where(pos, mid, lo)
        hi = np.where(pos, hi, mid)
    return np.asarray(np.exp(0.5 * (lo + hi)))


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


def fit_side(counts: np.ndarray, bins: Bins, T: float, tick: float) -> SideFit:
    """A, k (and quality) from one side's bin counts over ``T`` observed seconds."""
    counts = np.asarray(counts, dtype=np.float64)
    N = float(counts.sum())
    A = N / T
    k = float(fit_k(counts[None, :], bins.x, tick)[0])
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
