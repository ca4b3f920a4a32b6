"""A job: some points of a sweep run in one pass over the data (``backtest.many.run_many``), in a
worker process (the local pool, a Ray task) or in this one.

A job carries the stores' paths and each point's config data (the base file's keys and the
point's keys, as ``avmm backtest -c`` would read them, so ``adapt_config`` sees the same keys
set): a few KiB, never the data. The worker validates the configs with the ``validate`` function
the job names (``avmm.config.validate``, pickled by reference).
"""

from __future__ import annotations

import pickle
import signal
from dataclasses import dataclass
from typing import Any

from avmm.errors import UserError
from avmm.sweep.space import Validator

MAX_PAYLOAD = 64 * 1024  # bytes of one pickled job

TIMING_KEYS = ("wall_s", "events_per_s", "wall_s_e2e", "events_per_s_e2e")  # not part of a point's figures' identity

_PROGRESS: Any = None  # a multiprocessing queue in the local pool's workers: (job id, rows done)


@dataclass
class Job:
    job_id: int
    paths: list[str]
    start_ns: int | None
    end_ns: int | None
    points: list[tuple[int, dict[str, Any]]]  # (point id, the config's data)
    validate: Validator
    threads: int = 1

    def payload_bytes(self) -> int:
        return len(pickle.dumps(self))


def check_payload(job: Job) -> None:
    n = job.payload_bytes()
    if n > MAX_PAYLOAD:
        raise UserError(
            f"a sweep job's payload is {n:,} bytes (limit {MAX_PAYLOAD:,}): the base config is too large; "
            "fewer points per pass (--per-pass) or a smaller config"
        )


def init_worker(queue: Any = None) -> None:
    """A local pool worker: Ctrl-C is the parent's to handle (it stops the pool), progress goes to
    ``queue``."""
    global _PROGRESS
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _PROGRESS = queue


def _clean(v: Any) -> Any:
    """Plain Python values (NumPy scalars as numbers; NaN stays NaN, as ``avmm backtest --json``
    writes it)."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if hasattr(v, "item") and callable(v.item):  # a NumPy scalar
        return _clean(v.item())
    return v


def run_job(job: Job) -> tuple[int, list[tuple[int, dict[str, Any]]], dict[str, Any]]:
    """(job id, [(point id, {"figures", "config"})], the data's metadata) for ``job``."""
    from avmm.backtest.many import run_many

    cfgs = []
    for pid, data in job.points:
        cfg = job.validate(data, f"sweep point {pid}")
        cfgs.append((cfg, cfg.backtest))
    queue = _PROGRESS
    progress = None
    if queue is not None:

        def progress(done: int, total: int | None) -> None:
            queue.put((job.job_id, done))

    results = run_many(  # the figures only: no fills kept for a report
        job.paths, cfgs, start_ns=job.start_ns, end_ns=job.end_ns, progress=progress, threads=job.threads, keep_fills=0
    )
    out = []
    meta: dict[str, Any] = {}
    for (pid, _), res in zip(job.points, results, strict=True):
        out.append((pid, {"figures": _clean(res.summary), "config": _clean(res.config_dict())}))
        meta = res.meta
    return job.job_id, out, _json_safe(meta)


def _json_safe(meta: dict[str, Any]) -> dict[str, Any]:
    import json

    from avmm.data.store import json_default

    def default(o: Any) -> Any:
        try:
            return json_default(o)
        except TypeError:
            return str(o)

    return json.loads(json.dumps(_clean(meta), default=default))
