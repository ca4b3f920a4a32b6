"""The sweep's points: grid products, seeded random draws, and every bad key, value or syntax as one
line naming the flag."""

from __future__ import annotations

import pytest

from avmm.config import Config, validate
from avmm.errors import UserError
from avmm.sweep.space import parse_space, with_keys

BASE = {"quoting": {"refresh_s": 2.0}}


def space(grids=(), ranges=()):
    return parse_space(Config, validate, BASE, list(grids), list(ranges))


def test_grid_is_the_cartesian_product_in_order():
    s = space(["quoting.refresh_s=0.5,1", "backtest.maker_fee=0.0002,-0.0001,0"])
    pts = s.grid_points()
    assert len(pts) == 6
    assert pts[0] == {"quoting.refresh_s": 0.5, "backtest.maker_fee": 0.0002}
    assert pts[1] == {"quoting.refresh_s": 0.5, "backtest.maker_fee": -0.0001}
    assert pts[-1] == {"quoting.refresh_s": 1, "backtest.maker_fee": 0}
    assert with_keys(BASE, pts[0]) == {"quoting": {"refresh_s": 0.5}, "backtest": {"maker_fee": 0.0002}}
    assert BASE == {"quoting": {"refresh_s": 2.0}}  # the base is not touched


def test_keys_of_a_subsection_are_swept_like_any_other():
    s = space(["signals.imbalance.weight=0,0.5"], ["signals.flow.window_s=1:30", "signals.vamp.levels=1:5"])
    pts = s.random_points(5, 3)
    assert [p["signals.imbalance.weight"] for p in pts[:2]] == [0, 0.5]
    assert all(isinstance(p["signals.vamp.levels"], int) and 1 <= p["signals.vamp.levels"] <= 5 for p in pts)
    data = with_keys(BASE, pts[1])
    assert data["signals"]["imbalance"] == {"weight": 0.5} and data["quoting"] == {"refresh_s": 2.0}
    assert validate(data).signals.flow.window_s == pts[1]["signals.flow.window_s"]


def test_grid_of_strings_and_booleans():
    s = space(['model.kind="as","glft"', "backtest.markouts=true,false"])
    assert [p["model.kind"] for p in s.grid_points()] == ["as", "as", "glft", "glft"]


def test_random_draws_are_seeded_and_inside_the_ranges():
    s = space(
        ["quoting.levels=1,2"], ["quoting.refresh_s=0.5:4", "estimators.vol_min_obs=5:50", "model.gamma=0.01:1:log"]
    )
    a, b, c = s.random_points(20, 1), s.random_points(20, 1), s.random_points(20, 2)
    assert a == b and a != c
    assert len(a) == 40  # each draw crossed with the grid
    for p in a:
        assert 0.5 <= p["quoting.refresh_s"] <= 4
        assert isinstance(p["estimators.vol_min_obs"], int) and 5 <= p["estimators.vol_min_obs"] <= 50
        assert 0.01 <= p["model.gamma"] <= 1


@pytest.mark.parametrize(
    ("grids", "ranges", "needle"),
    [
        (["quoting.refresh_s"], [], "expected KEY=V1,V2"),
        (["quoting.refresh_s="], [], "no values"),
        (["quoting.refresh_s=1,,2"], [], "an empty value"),
        (["refresh_s=1,2"], [], "needs a section"),
        (["quotin.refresh_s=1,2"], [], "no section [quotin]"),
        (["quoting.refresh=1,2"], [], "no key 'refresh' in [quoting]"),
        (["quoting.refresh_s=1,-1"], [], "quoting.refresh_s"),
        (["signals.imbalance=0,1"], [], "[signals.imbalance] is a section"),
        (["quoting.refresh_s.x=0,1"], [], "quoting.refresh_s is a key, not a section"),
        (["signals.imbalance.wieght=0,1"], [], "no key 'wieght' in [signals.imbalance]"),
        (["signals.vamp.levels=1,9"], [], "signals.vamp.levels"),
        (["quoting.refresh_s=1,x"], [], "quoting.refresh_s"),
        (["quoting.refresh_s=1,1"], [], "given twice"),
        (["quoting.refresh_s=1,2", "quoting.refresh_s=3"], [], "already swept"),
        (['model.kind="as","nope"'], [], "model.kind"),
        ([], ["quoting.refresh_s=1"], "expected KEY=LO:HI"),
        ([], ["quoting.refresh_s=2:1"], "LO must be below HI"),
        ([], ["quoting.refresh_s=1:1"], "LO must be below HI"),
        ([], ["quoting.refresh_s=a:2"], "is not a number"),
        ([], ["quoting.refresh_s=1:2:lin"], "expected KEY=LO:HI"),
        ([], ["quoting.refresh_s=0:2"], "quoting.refresh_s"),  # refresh_s > 0
        ([], ["model.gamma=0:1:log"], "a log range needs LO > 0"),
        ([], ["estimators.vol_min_obs=1.5:9"], "whole numbers"),
        ([], ["model.kind=1:2"], "not a number"),
        ([], ["quoting.post_only=0:1"], "not a number"),
        (["quoting.refresh_s=1,2"], ["quoting.refresh_s=1:2"], "already swept"),
    ],
)
def test_bad_grid_and_range_one_line(grids, ranges, needle):
    with pytest.raises(UserError) as e:
        space(grids, ranges)
    msg = str(e.value)
    assert "\n" not in msg
    assert needle in msg, msg
    assert ("--grid" in msg) or ("--range" in msg), msg
