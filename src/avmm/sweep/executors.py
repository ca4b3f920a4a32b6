"""Where a sweep's jobs run: in this process (``workers = 1``), a local process pool (forkserver:
numba is not fork-safe; the workers share the numba cache on disk), or Ray tasks
(``--executor ray``; a cluster at ``address``, else a local Ray started and stopped here).

The local pool's forkserver loads the compiled loop before it forks the workers (``avmm.sweep.server``
starts it early, ``avmm.sweep.warm`` is its preload).

``execute(jobs, on_result, on_rows)`` calls ``on_result(job_id, results, meta)`` in this thread as
each job finishes, and ``on_rows(job_id, rows_done)`` as the local pool's workers report progress.
An interruption (``Terminated``, KeyboardInterrupt) stops the pool (its processes terminated) or
cancels the Ray tasks, and propagates: what finished has already been handed over.
"""

from __future__ import annotations

import contextlib
import os
import queue as queue_mod
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from avmm.errors import UserError, missing_extra
from avmm.outputs import Terminated
from avmm.sweep.jobs import Job, check_payload, init_worker, run_job
from avmm.sweep.server import default_workers, mark_served, pool_context, start_local, stop_unserved

__all__ = ["default_workers", "execute_inline", "execute_local", "execute_ray", "ray_session"]

OnResult = Callable[[int, list[tuple[int, dict[str, Any]]], dict[str, Any]], None]
OnRows = Callable[[int, int], None]
LOCAL_OBJECT_STORE = 256 * 2**20  # bytes: jobs and results are small (no data goes through Ray)


def execute_inline(jobs: list[Job], on_result: OnResult, on_rows: OnRows) -> None:
    from avmm.backtest.runner import warm_up
    from avmm.sweep import jobs as jobs_mod

    stop_unserved()  # a server started for a pool that did not come (one job)
    warm_up(notice_after_s=2.0)  # the compile's notice, on a first run
    for job in jobs:
        q = _DirectQueue(on_rows)
        jobs_mod._PROGRESS = q
        try:
            on_result(*run_job(job))
        finally:
            jobs_mod._PROGRESS = None


class _DirectQueue:
    def __init__(self, on_rows: OnRows) -> None:
        self.on_rows = on_rows

    def put(self, item: tuple[int, int]) -> None:
        self.on_rows(*item)


def execute_local(jobs: list[Job], workers: int, on_result: OnResult, on_rows: OnRows) -> None:
    """The jobs on a pool of ``workers`` processes."""
    if workers <= 1 or len(jobs) <= 1:
        execute_inline(jobs, on_result, on_rows)
        return
    for job in jobs:
        check_payload(job)
    ctx = pool_context()
    start_local()
    mark_served()
    progress_q = ctx.Queue()
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)), mp_context=ctx, initializer=init_worker, initargs=(progress_q,)
    )
    ok = False
    try:
        pending: set[Future] = {pool.submit(run_job, job) for job in jobs}
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(progress_q, on_rows)
            for fut in done:
                on_result(*fut.result())
        ok = True
    finally:
        if not ok:
            _stop(pool)
        pool.shutdown(wait=True, cancel_futures=True)
        progress_q.close()
        progress_q.join_thread()


def _drain(q: Any, on_rows: OnRows) -> None:
    while True:
        try:
            item = q.get_nowait()
        except (queue_mod.Empty, OSError, ValueError):
            return
        on_rows(*item)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Terminate the pool's processes (an interruption: their jobs are lost, finished ones kept)."""
    procs = list(getattr(pool, "_processes", {}).values())
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(5)


@contextlib.contextmanager
def ray_session(address: str | None, workers: int | None) -> Iterator[Any]:
    """``ray`` connected to ``address``, or a local Ray started here (stopped on exit)."""
    try:
        import ray
    except ImportError:
        raise missing_extra("--executor ray", "sweep", "ray") from None
    kwargs: dict[str, Any] = dict(
        log_to_driver=False, include_dashboard=False, configure_logging=False, ignore_reinit_error=True
    )
    if address is None:  # "local": a new Ray, never a cluster found on this machine
        kwargs.update(num_cpus=workers or default_workers(), object_store_memory=LOCAL_OBJECT_STORE)
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    try:  # a local Ray stopped whatever stops its start, too
        with _own_signal_handlers():
            try:
                ray.init(address=address or "local", **kwargs)
            except Exception as e:  # a bad address, a cluster that does not answer
                where = f"at {address}" if address else "locally"
                raise UserError(
                    f"--executor ray: cannot start or reach Ray {where}: {' '.join(str(e).split())[:300]}"
                ) from None
        yield ray
    finally:
        with _own_signal_handlers(), contextlib.suppress(Exception):
            ray.shutdown()


@contextlib.contextmanager
def _own_signal_handlers() -> Iterator[None]:
    """Keep this process's SIGINT, SIGTERM and SIGHUP handlers through ``ray.init`` and
    ``ray.shutdown``: the start sets Ray's own for SIGTERM (``sys.exit(15)`` in Python, a stack
    dump in C++), the shutdown leaves it at the default (the process killed); the CLI's unwinds,
    exits 143 and says what was kept. A SIGTERM that Ray's handler took is raised as
    ``Terminated``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    saved = {sig: signal.getsignal(sig) for sig in sigs}
    try:
        yield
    except SystemExit as e:
        if e.code == signal.SIGTERM and callable(saved[signal.SIGTERM]):
            raise Terminated(signal.SIGTERM) from None
        raise
    finally:
        for sig, handler in saved.items():
            if handler is not None:  # set again even if Python still names it: Ray's C++ sets its own
                signal.signal(sig, handler)


def execute_ray(
    jobs: list[Job], address: str | None, workers: int | None, on_result: OnResult, on_rows: OnRows
) -> None:
    """The jobs as Ray tasks (one CPU each), run in Ray's worker processes."""
    for job in jobs:
        check_payload(job)
    with ray_session(address, workers) as ray:
        task = ray.remote(num_cpus=1, max_retries=0)(run_job)
        refs = [task.remote(job) for job in jobs]
        ok = False
        try:
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                for ref in done:
                    try:
                        on_result(*ray.get(ref))
                    except ray.exceptions.RayTaskError as e:
                        cause = e.as_instanceof_cause()
                        if isinstance(cause, UserError):
                            raise UserError(str(cause)) from None
                        raise
            ok = True
        finally:
            if not ok:
                for ref in refs:
                    with contextlib.suppress(Exception):
                        ray.cancel(ref, force=True)
