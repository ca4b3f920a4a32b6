"""Optuna TPE over the --range keys: the budget is run, a known optimum is found, a resumed study
counts the trials it had."""

from __future__ import annotations

import pytest

pytest.importorskip("optuna")

from avmm.config import Config, validate  # noqa: E402
from avmm.sweep.optimize import optimize  # noqa: E402
from avmm.sweep.space import parse_space  # noqa: E402


def test_finds_a_known_optimum_within_the_budget():
    s = parse_space(Config, validate, {}, [], ["model.gamma=0.01:1", "quoting.levels=1:4"])
    calls = []

    def evaluate(points):
        calls.extend(points)
        return [-((p["model.gamma"] - 0.3) ** 2) - 0.1 * abs(p["quoting.levels"] - 3) for p in points]

    study = optimize(s, evaluate, trials=60, batch=4, seed=1)
    assert len(calls) == 60
    assert len(study.trials) == 60
    best = study.best_params
    assert abs(best["model.gamma"] - 0.3) < 0.08
    assert best["quoting.levels"] == 3


def test_minimize_and_failed_trials_and_prior():
    s = parse_space(Config, validate, {}, ['model.kind="as","glft"'], ["model.gamma=0.01:1"])
    seen = []

    def evaluate(points):
        seen.extend(points)
        return [None if p["model.gamma"] > 0.9 else p["model.gamma"] for p in points]

    prior = [({"model.gamma": 0.5, "model.kind": "as"}, 0.5), ({"model.gamma": 0.95, "model.kind": "glft"}, None)]
    study = optimize(s, evaluate, trials=12, minimize=True, batch=3, seed=0, prior=prior)
    assert len(seen) == 10  # the 2 prior trials count in the budget
    assert len(study.trials) == 12
    assert study.best_value <= 0.5
