"""Ranking, the walk-forward split boundaries and the Pareto front."""

from __future__ import annotations

import pytest

from avmm.errors import UserError
from avmm.sweep.select import fold_bounds, pareto_front, ranked, walk_forward


def rec(v):
    return {"keys": {}, "figures": {"pnl_net": v}}


def test_ranked_best_first_missing_last():
    rs = [rec(1.0), rec(None), rec(3.0), rec(float("nan")), rec(-2.0)]
    assert [r["figures"]["pnl_net"] for r in ranked(rs, "pnl_net", False)][:3] == [3.0, 1.0, -2.0]
    assert [r["figures"]["pnl_net"] for r in ranked(rs, "pnl_net", True)][:3] == [-2.0, 1.0, 3.0]
    assert len(ranked(rs, "pnl_net", False)) == 5


def test_fold_bounds_cut_the_span_exactly():
    b = fold_bounds(1000, 1000 + 10, 3)  # 4 parts of 10 ns
    assert b == [1000, 1002, 1005, 1007, 1010]
    assert b[0] == 1000 and b[-1] == 1010
    assert all(x < y for x, y in zip(b, b[1:], strict=False))


def test_walk_forward_folds_are_consecutive_and_adjacent():
    lo, hi = 1_700_000_000_000_000_000, 1_700_000_000_000_000_000 + 3_600_000_000_007
    folds = walk_forward(lo, hi, 4)
    assert len(folds) == 4
    assert folds[0][0][0] == lo and folds[-1][1][1] == hi
    for tr, te in folds:
        assert tr[1] == te[0]  # the test part starts where its training part ends
        assert tr[0] < tr[1] < te[1]
    for a, b in zip(folds, folds[1:], strict=False):
        assert b[0] == a[1]  # rolling: the next fold trains on this fold's test part
    sizes = [te[1] - te[0] for _, te in folds] + [folds[0][0][1] - folds[0][0][0]]
    assert max(sizes) - min(sizes) <= 1


def test_folds_too_many_for_the_span():
    with pytest.raises(UserError, match="too short"):
        fold_bounds(0, 3, 3)


def test_pareto_front():
    pts = [(1.0, 1.0), (2.0, 3.0), (1.5, 0.5), (3.0, 2.0), (0.5, 0.2), (2.0, 2.5)]
    assert pareto_front(pts) == [4, 0, 1]
