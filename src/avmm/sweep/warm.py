"""The local pool's forkserver imports this first (its preload, ``executors.start_local``): avmm's
backtest and the compiled loop are loaded (or compiled, on a first run, with the notice) once,
before the server forks any worker, so each worker starts with them instead of loading the loop
from numba's cache after its job arrives.

Forking the server after this is safe: what numba cannot survive across a fork is its threading
layers' worker threads (``parallel=True`` code, which avmm does not compile); loading or compiling
``@njit`` code starts no thread, and the notice's timer is joined, so the server forks with the
threads it had before (``tests/sweep/test_executors.py`` checks it). SIGINT is ignored here (the
server starts with it blocked, ``server.start_local``), as the forkserver ignores it once its
preload is done: Ctrl-C is the command's, which stops the server, never a traceback from here.
"""

from __future__ import annotations

import contextlib
import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)


def _warm() -> None:
    import avmm.backtest.many
    import avmm.data.store  # what a job reads the stores with (pyarrow.parquet)
    import avmm.sweep.jobs  # noqa: F401
    from avmm.backtest.runner import warm_up

    with contextlib.suppress(Exception):  # a worker runs into the same error with its job, and reports it
        warm_up(notice_after_s=2.0)


_warm()
