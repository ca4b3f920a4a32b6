"""``--optimize METRIC --trials N``: Optuna's TPE sampler over the ``--range`` keys (and the
``--grid`` keys, as categorical choices), a batch of trials at a time (one batch keeps every
worker busy); the same seed gives the same first batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from avmm.errors import UserError, missing_extra
from avmm.sweep.space import Space


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise missing_extra("--optimize", "sweep", "optuna") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def require_optuna() -> None:
    _optuna()


def distributions(space: Space) -> dict[str, Any]:
    optuna = _optuna()
    d: dict[str, Any] = {}
    for k, r in space.ranges.items():
        if r.kind == "int":
            d[k] = optuna.distributions.IntDistribution(int(r.lo), int(r.hi), log=r.log)
        else:
            d[k] = optuna.distributions.FloatDistribution(r.lo, r.hi, log=r.log)
    for k, vals in space.grid.items():
        if any(isinstance(v, list | dict) for v in vals):
            raise UserError(f"--grid {k}: --optimize takes numbers, booleans or strings as choices")
        d[k] = optuna.distributions.CategoricalDistribution(vals)
    if not d:
        raise UserError("--optimize: give the keys to search with --range KEY=LO:HI (or --grid)")
    return d


def optimize(
    space: Space,
    evaluate: Callable[[list[dict[str, Any]]], list[float | None]],
    *,
    trials: int,
    minimize: bool = False,
    batch: int = 1,
    seed: int = 0,
    prior: list[tuple[dict[str, Any], float | None]] | None = None,
) -> Any:
    """Run ``trials`` trials (less the ``prior`` ones, already evaluated: a resumed sweep) of
    ``evaluate(points) -> values`` (None: a failed trial, e.g. no fills so no Sharpe); returns the
    Optuna study."""
    optuna = _optuna()
    dists = distributions(space)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, trials // 4)))
    study = optuna.create_study(direction="minimize" if minimize else "maximize", sampler=sampler)
    from optuna.trial import TrialState, create_trial

    for params, value in prior or []:
        ok = value is not None and math.isfinite(value)
        study.add_trial(
            create_trial(
                params=params,
                distributions=dists,
                value=value if ok else None,
                state=TrialState.COMPLETE if ok else TrialState.FAIL,
            )
        )
    done = len(prior or [])
    while done < trials:
        n = min(max(1, batch), trials - done)
        ts = [study.ask(dists) for _ in range(n)]
        values = evaluate([dict(t.params) for t in ts])
        for t, v in zip(ts, values, strict=True):
            if v is None or not math.isfinite(v):
                study.tell(t, state=TrialState.FAIL)
            else:
                study.tell(t, v)
        done += n
    return study
