"""Parameter sweeps: many backtests of one base config with some keys set, on a local process pool
or Ray, several configs per pass over the data.

Modules: ``space`` (grid, ranges, random draws; keys and values validated), ``jobs`` (a job: some
points in one pass, ``backtest.many.run_many``, in a worker), ``executors`` (inline, local pool,
Ray), ``partial`` (``<json>.partial``: finished points, resume), ``select`` (ranking, walk-forward
folds, Pareto front), ``optimize`` (Optuna TPE), ``run`` (``Sweep``: search and honest selection),
``report`` (the HTML report).
"""

from __future__ import annotations

from typing import Any

__all__ = ["metric_keys"]


def metric_keys() -> list[str]:
    """The numeric figures of a backtest's summary (what ``avmm backtest --json`` writes): the
    metrics a sweep can sort by or optimize."""
    from avmm.backtest.runner import run_backtest
    from avmm.core.config import StrategyConfig
    from avmm.data.synth import generate

    summary: dict[str, Any] = run_backtest(next(generate(2000, 1)), StrategyConfig()).summary
    return [
        k
        for k, v in summary.items()
        if (v is None and not k.endswith("_note")) or (isinstance(v, int | float) and not isinstance(v, bool))
    ]
