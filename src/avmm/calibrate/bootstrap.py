"""Confidence intervals from a block bootstrap over time blocks.

Every estimate is a function of sums over blocks (squared mid increments and their count for sigma;
observed seconds and per-bin trade counts for A and k). A resample draws as many blocks as there
are observed blocks, with replacement, from a seeded generator; its estimate is the same function
of the resampled sums (a weight per block: how often it was drawn). Blocks keep the dependence
within them (volatility clusters, trade bursts) that an i.i.d. bootstrap of single increments or
trades would lose. The interval is the 2.5 % and 97.5 % percentiles of the resampled estimates.
"""

from __future__ import annotations

import numpy as np

DEFAULT_RESAMPLES = 200
DEFAULT_SEED = 0
LEVEL = 0.95


def weights(observed: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n_blocks) draw counts over the observed blocks (zero for the others)."""
    live = np.flatnonzero(observed > 0)
    rng = np.random.Generator(np.random.PCG64(seed))
    w = np.zeros((resamples, len(observed)), dtype=np.float64)
    for r in range(resamples):
        w[r, live] = np.bincount(rng.integers(0, len(live), len(live)), minlength=len(live))
    return w


def interval(samples: np.ndarray) -> list[float] | None:
    """The central ``LEVEL`` percentile interval (None when no resample gave a finite value)."""
    s = np.asarray(samples, dtype=np.float64)
    s = s[np.isfinite(s)]
    if len(s) == 0:
        return None
    lo, hi = np.percentile(s, [50 * (1 - LEVEL), 50 * (1 + LEVEL)])
    return [float(lo), float(hi)]
