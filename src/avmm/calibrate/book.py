"""The book and the trades as distributions: spread in ticks, touch queue sizes, trade sizes.

Spreads and touch sizes are sampled on the mid's grid (time-weighted: a state that lasted ten
seconds counts ten times); trade sizes per trade. Spreads are exact (whole ticks); sizes come from
log histograms 0.5 % wide, each quantile the geometric centre of its bin, snapped to the lot when
the lot is known (exact for sizes of fewer than about 100 lots).
"""

from __future__ import annotations

import numpy as np

from avmm.calibrate.scan import size_edges

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def _key(q: float) -> str:
    return f"p{round(100 * q)}"


def hist_quantiles(counts: np.ndarray, values: np.ndarray) -> dict[str, float] | None:
    """Quantiles of a histogram whose bin ``i`` stands for ``values[i]``; None when empty."""
    total = counts.sum()
    if total == 0:
        return None
    cum = np.cumsum(counts)
    last = len(values) - 1
    return {_key(q): float(values[min(int(np.searchsorted(cum, q * total, "left")), last)]) for q in QUANTILES}


def spread_ticks(spread_h: np.ndarray) -> dict[str, float | int] | None:
    """Quantiles and mean of the spread in ticks (time-weighted)."""
    q = hist_quantiles(spread_h, np.arange(len(spread_h), dtype=np.float64))
    if q is None:
        return None
    mean = float((spread_h * np.arange(len(spread_h))).sum() / spread_h.sum())
    return {**q, "mean": mean, "samples": int(spread_h.sum())}


def sizes(h: np.ndarray, lot: float | None) -> dict[str, float | int] | None:
    """Quantiles of a size histogram (base units), snapped to the lot when known."""
    e = size_edges()
    centres = np.sqrt(e[:-1] * e[1:])
    if lot:
        centres = np.maximum(np.round(centres / lot), 1.0) * lot
    q = hist_quantiles(h, centres)
    if q is None:
        return None
    return {**q, "samples": int(h.sum())}
