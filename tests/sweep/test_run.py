"""How a sweep cuts its points into jobs: at most ``per_pass`` a job, dealt round the jobs so that
neighbours in the grid's order (a short ``quoting.refresh_s`` costs more) land in different ones."""

from __future__ import annotations

import pytest

from avmm.config import Config, validate
from avmm.sweep import run as run_mod
from avmm.sweep.run import Sweep, SweepSpec
from avmm.sweep.space import parse_space

GRID = ["quoting.refresh_s=0.5,1,2,4", "backtest.maker_fee=0.0002,0.0001,0,-0.0001"]


def _jobs(monkeypatch, workers: int, per_pass: int | None) -> list[list[dict]]:
    seen: list[list[dict]] = []

    def fake_local(jobs, n, on_result, on_rows):
        for job in jobs:
            seen.append([data for _, data in job.points])
            on_result(job.job_id, [(i, {"figures": {"pnl_net": float(i)}, "config": {}}) for i, _ in job.points], {})

    monkeypatch.setattr(run_mod, "execute_local", fake_local)
    spec = SweepSpec(paths=[], base={}, space=parse_space(Config, validate, {}, GRID, []), validate=validate)
    doc = Sweep(spec, workers=workers, per_pass=per_pass).run()
    assert sorted(p["figures"]["pnl_net"] for p in doc["points"]) == [float(i) for i in range(16)]  # each point once
    return seen


@pytest.mark.parametrize(("workers", "per_pass", "sizes"), [(2, None, [8, 8]), (4, None, [4] * 4), (2, 5, [4] * 4)])
def test_points_are_dealt_round_the_jobs(monkeypatch, workers, per_pass, sizes):
    jobs = _jobs(monkeypatch, workers, per_pass)
    assert [len(j) for j in jobs] == sizes
    for job in jobs:  # every job gets each refresh_s: the jobs cost about the same
        assert sorted({p["quoting"]["refresh_s"] for p in job}) == [0.5, 1, 2, 4]
