"""sigma, the mid's volatility in price / sqrt(s), from the mid sampled on a fixed grid.

The mid of the last quote at or before each grid point (1 s by default: see ``scan``); sigma^2 is
the sum of the squared increments between consecutive live grid points over their number times
the grid step. Increments of zero (a mid that did not move between two samples) count as they
should: the estimate is the realised variance rate, not a rate of mid changes. Across a gap (no
live quote) no increment is taken.
"""

from __future__ import annotations

import numpy as np


def sigma_of(sum_sq: np.ndarray | float, n_incr: np.ndarray | int, grid_s: float) -> np.ndarray:
    """sigma from summed squared increments and their counts (any shape; NaN where no increment)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(np.asarray(sum_sq, dtype=np.float64) / (np.asarray(n_incr, dtype=np.float64) * grid_s))


def windows(
    sum_sq: np.ndarray, n_incr: np.ndarray, live: np.ndarray, t0_ns: int, slice_ns: int, grid_s: float, n: int = 20
) -> list[dict[str, float | int | None]]:
    """sigma per window of the session: the live time slices (indices ``live`` of slices
    ``[t0 + i * slice_ns, t0 + (i + 1) * slice_ns)``) split into at most ``n`` runs of about the same
    number of slices."""
    out: list[dict[str, float | int | None]] = []
    for idx in np.array_split(live, min(n, len(live))):
        if len(idx) == 0:
            continue
        m = int(n_incr[idx].sum())
        s = float(sigma_of(sum_sq[idx].sum(), m, grid_s)) if m else None
        out.append(
            {
                "start_ns": int(t0_ns + idx[0] * slice_ns),
                "end_ns": int(t0_ns + (idx[-1] + 1) * slice_ns),
                "sigma": s,
                "increments": m,
            }
        )
    return out
