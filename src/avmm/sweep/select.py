"""Ranking points by a metric, the walk-forward folds, the Pareto front.

Walk-forward (``--folds N``): the data's span ``[lo, hi)`` is cut into N + 1 consecutive parts of
equal time (``fold_bounds``); fold i (1..N) chooses on part i - 1 and reports on part i. With
``--train-until T``: one split, ``[lo, T)`` and ``[T, hi)``.
"""

from __future__ import annotations

import math
from typing import Any

from avmm.errors import UserError


def metric_value(rec: dict[str, Any], metric: str) -> float | None:
    v = rec["figures"].get(metric)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def ranked(recs: list[dict[str, Any]], metric: str, minimize: bool) -> list[dict[str, Any]]:
    """Best first; points without a finite value last (in their order)."""
    with_v = [r for r in recs if metric_value(r, metric) is not None]
    without = [r for r in recs if metric_value(r, metric) is None]
    sign = 1.0 if minimize else -1.0
    return sorted(with_v, key=lambda r: sign * metric_value(r, metric)) + without  # type: ignore[operator]


def fold_bounds(lo_ns: int, hi_ns: int, folds: int) -> list[int]:
    """N + 2 boundaries cutting ``[lo_ns, hi_ns)`` into N + 1 parts of equal time (integer ns: the
    parts meet exactly; each part ``[b[j], b[j + 1])``)."""
    if folds < 1:
        raise UserError(f"--folds {folds}: at least 1")
    span = hi_ns - lo_ns
    if span < folds + 1:
        raise UserError(f"--folds {folds}: the data spans {span} ns, too short for {folds + 1} parts")
    return [lo_ns + span * j // (folds + 1) for j in range(folds + 2)]


def walk_forward(lo_ns: int, hi_ns: int, folds: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(train window, test window) of each fold: consecutive parts, each test part right after its
    train part."""
    b = fold_bounds(lo_ns, hi_ns, folds)
    return [((b[i - 1], b[i]), (b[i], b[i + 1])) for i in range(1, folds + 1)]


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points (risk, reward) not dominated by another (less or equal risk and more
    or equal reward, one of them strictly), by rising risk."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front
