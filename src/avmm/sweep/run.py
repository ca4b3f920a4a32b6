"""The sweep: the points of a search (grid, random, Optuna) run as jobs on an executor, over one
window or the honest-selection windows (``--train-until``, ``--folds``), kept in a partial file as
they finish.

``Sweep(spec, ...).run()`` returns the JSON document ``--json`` writes: the metric, the space, the
data's metadata and the points (each with its keys, its full config as run and its figures), or
the train / test tables of the selection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from avmm.errors import UserError
from avmm.sweep.executors import execute_local, execute_ray
from avmm.sweep.jobs import Job
from avmm.sweep.partial import Partial
from avmm.sweep.select import metric_value, ranked, walk_forward
from avmm.sweep.server import default_workers
from avmm.sweep.space import Space, Validator, with_keys

Window = tuple[int | None, int | None]


class Progress(Protocol):
    """What a sweep reports as it goes (the CLI draws a bar)."""

    def add(self, points: int, rows: int | None) -> None:
        """``points`` more points to run, ``rows`` more rows (points x rows of their window)."""

    def points_done(self, n: int) -> None:
        """``n`` more points finished."""

    def rows_done(self, n: int) -> None:
        """``n`` more rows (of all the points) run."""


class NoProgress:
    def add(self, points: int, rows: int | None) -> None:
        pass

    def points_done(self, n: int) -> None:
        pass

    def rows_done(self, n: int) -> None:
        pass


@dataclass
class SweepSpec:
    """What to sweep: the data, the base config's data, the space and the mode."""

    paths: list[str]
    base: dict[str, Any]
    space: Space
    validate: Validator
    mode: str = "grid"  # "grid" | "random" | "optimize"
    n_random: int = 0
    seed: int = 0
    metric: str = "pnl_net"
    minimize: bool = False
    trials: int = 0
    start_ns: int | None = None
    end_ns: int | None = None
    train_until_ns: int | None = None
    folds: int | None = None
    top: int = 5

    def fingerprint(self) -> dict[str, Any]:
        """What a partial file must match to be resumed."""
        search: dict[str, Any] = {"mode": self.mode}
        if self.mode == "random":
            search.update(n=self.n_random, seed=self.seed)
        if self.mode == "optimize":
            search.update(metric=self.metric, minimize=self.minimize, trials=self.trials, seed=self.seed)
        return {
            "base config": self.base,
            "grid / ranges": self.space.spec(),
            "search": search,
            "data": [str(Path(p).resolve()) for p in self.paths],
            "window": [self.start_ns, self.end_ns],
            "selection": {
                "train_until_ns": self.train_until_ns,
                "folds": self.folds,
                "metric": self.metric if (self.train_until_ns or self.folds) else None,
                "minimize": self.minimize if (self.train_until_ns or self.folds) else None,
            },
        }


@dataclass
class Sweep:
    spec: SweepSpec
    executor: str = "local"
    workers: int | None = None
    ray_address: str | None = None
    per_pass: int | None = None
    threads: int = 1
    partial: Partial = field(default_factory=lambda: Partial(None, {}))
    progress: Progress = field(default_factory=NoProgress)
    meta: dict[str, Any] = field(default_factory=dict)
    _job_rows: dict[int, tuple[int, int]] = field(default_factory=dict)  # job id -> (rows done, points)
    _next_job: int = 0
    _rows_cache: dict[Window, int | None] = field(default_factory=dict)

    # ------------------------------------------------------------------ running points
    def evaluate(self, window: Window, points: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records (``window``, ``keys``, ``figures``, ``config``) of ``points`` on ``window``:
        the finished ones from the partial file, the others run."""
        recs: dict[int, dict[str, Any]] = {}
        todo: list[tuple[int, dict[str, Any]]] = []
        seen: dict[str, int] = {}
        for i, keys in enumerate(points):
            done = self.partial.get(window, keys)
            if done is not None:
                recs[i] = done
                continue
            tag = repr(sorted(keys.items()))
            if tag in seen:  # the same point twice (Optuna may ask again): run once
                continue
            seen[tag] = i
            todo.append((i, keys))
        if todo:
            self._run(window, todo, recs)
        for i, keys in enumerate(points):
            if i not in recs:
                recs[i] = recs[seen[repr(sorted(keys.items()))]]
        return [recs[i] for i in range(len(points))]

    def _run(self, window: Window, todo: list[tuple[int, dict[str, Any]]], recs: dict[int, dict[str, Any]]) -> None:
        s = self.spec
        workers = self.workers or default_workers()
        per = self.per_pass or max(1, min(16, math.ceil(len(todo) / workers)))
        jobs: list[Job] = []
        n_jobs = math.ceil(len(todo) / per)
        for j in range(n_jobs):
            # dealt round the jobs, not cut in blocks: a point's cost follows its keys (a short
            # quoting.refresh_s requotes more), so neighbours in the grid's order share them out
            part = todo[j::n_jobs]
            jid = self._next_job
            self._next_job += 1
            pts = []
            for i, keys in part:
                pts.append((i, with_keys(s.base, keys)))
            jobs.append(Job(jid, list(s.paths), window[0], window[1], pts, s.validate, self.threads))
            self._job_rows[jid] = (0, len(part))
        self.progress.add(len(todo), None if (r := self._rows(window)) is None else r * len(todo))
        point_keys = dict(todo)

        def on_result(jid: int, results: list[tuple[int, dict[str, Any]]], meta: dict[str, Any]) -> None:
            for i, out in results:
                rec = {"window": list(window), "keys": point_keys[i], **out}
                self.partial.add(rec)
                recs[i] = rec
            if not self.meta:
                self.meta = meta
            done, n = self._job_rows.pop(jid, (0, 0))
            total = self._rows(window)
            if total is not None:
                self.progress.rows_done(max(0, total - done) * n)
            self.progress.points_done(len(results))

        def on_rows(jid: int, rows: int) -> None:
            done, n = self._job_rows.get(jid, (0, 0))
            if rows > done:
                self.progress.rows_done((rows - done) * n)
                self._job_rows[jid] = (rows, n)

        if self.executor == "ray":
            execute_ray(jobs, self.ray_address, self.workers, on_result, on_rows)
        else:
            execute_local(jobs, workers, on_result, on_rows)

    def _rows(self, window: Window) -> int | None:
        """Rows of the data in ``window`` (estimated from the stores' spans when cut)."""
        if window not in self._rows_cache:
            from avmm.backtest.runner import plan_stores

            try:
                plan = plan_stores(self.spec.paths, window[0], window[1])
            except UserError:
                self._rows_cache[window] = None
                return None
            total = 0
            for m, sp in zip(plan.metas, plan.spans, strict=True):
                rows = int(m.get("rows", 0) or 0)
                if sp is None or sp[1] <= sp[0]:
                    continue
                lo = sp[0] if window[0] is None else max(sp[0], window[0])
                hi = sp[1] if window[1] is None else min(sp[1], window[1])
                total += round(rows * max(0, hi - lo) / (sp[1] - sp[0]))
            self._rows_cache[window] = total
        return self._rows_cache[window]

    # ------------------------------------------------------------------ the search
    def search(self, window: Window) -> list[dict[str, Any]]:
        """Every point of the search on ``window``, best first."""
        s = self.spec
        if s.mode == "optimize":
            from avmm.sweep.optimize import optimize

            found: list[dict[str, Any]] = []

            def evaluate(points: list[dict[str, Any]]) -> list[float | None]:
                recs = self.evaluate(window, points)
                found.extend(recs)
                return [metric_value(r, s.metric) for r in recs]

            prior = [r for r in self.partial.done.values() if tuple(r["window"]) == tuple(window)]
            found.extend(prior)
            optimize(
                s.space,
                evaluate,
                trials=s.trials,
                minimize=s.minimize,
                batch=self.workers or default_workers(),
                seed=s.seed,
                prior=[(r["keys"], metric_value(r, s.metric)) for r in prior[: s.trials]],
            )
            uniq = {repr(sorted(r["keys"].items())): r for r in found}
            return ranked(list(uniq.values()), s.metric, s.minimize)
        if s.mode == "random":
            points = s.space.random_points(s.n_random, s.seed)
        else:
            points = s.space.grid_points()
        return ranked(self.evaluate(window, points), s.metric, s.minimize)

    def _span(self) -> tuple[int, int]:
        """The data's span inside the window, as ``[lo, hi)``."""
        from avmm.backtest.runner import plan_stores

        plan = plan_stores(self.spec.paths, self.spec.start_ns, self.spec.end_ns)
        spans = [sp for sp in plan.spans if sp is not None]
        if not spans:
            raise UserError("the stores are empty: nothing to sweep")
        lo = min(sp[0] for sp in spans)
        hi = max(sp[1] for sp in spans) + 1
        if self.spec.start_ns is not None:
            lo = max(lo, self.spec.start_ns)
        if self.spec.end_ns is not None:
            hi = min(hi, self.spec.end_ns)
        return lo, hi

    def run(self) -> dict[str, Any]:
        s = self.spec
        doc: dict[str, Any] = {
            "metric": s.metric,
            "minimize": s.minimize,
            "mode": s.mode,
            "space": s.space.spec(),
            "window": [s.start_ns, s.end_ns],
        }
        if s.train_until_ns is not None:
            lo, hi = self._span()
            t = s.train_until_ns
            if not lo < t < hi:
                raise UserError(f"--train-until: {t} ns is not inside the data's span [{lo}, {hi}) ns")
            doc["train_until_ns"] = t
            doc["selection"] = [self._fold(0, (lo, t), (t, hi))]
        elif s.folds is not None:
            lo, hi = self._span()
            doc["folds"] = s.folds
            doc["selection"] = [self._fold(i + 1, tr, te) for i, (tr, te) in enumerate(walk_forward(lo, hi, s.folds))]
        else:
            doc["points"] = self.search((s.start_ns, s.end_ns))
        doc["data"] = self.meta
        return doc

    def _fold(self, n: int, train: tuple[int, int], test: tuple[int, int]) -> dict[str, Any]:
        s = self.spec
        tr = self.search(train)
        top = tr[: s.top]
        te = self.evaluate(test, [r["keys"] for r in top])
        return {"fold": n, "train_ns": list(train), "test_ns": list(test), "train": tr, "test": te}
