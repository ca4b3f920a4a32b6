"""The local pool's forkserver: started early (``start_local``), it loads avmm's backtest and the
compiled loop (``avmm.sweep.warm``) before it forks the pool's workers, while the command goes on
reading its config and planning the stores; ``stop_local`` stops it (killed: it may be compiling
the loop on a first run, which would go on for a minute once the command has gone).

The standard library only: the command line starts the server before it loads itself.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
from collections.abc import Iterator, Sequence
from typing import Any

PRELOAD = ("avmm.sweep.warm",)  # the server's first import: SIGINT ignored, avmm's backtest loaded
_served = False  # the server has forked a pool's workers


def default_workers() -> int:
    """All the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def pool_context() -> Any:
    """The local pool's multiprocessing context: forkserver (numba is not fork-safe), else spawn."""
    return mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")


def start_local(modules: Sequence[str] = ()) -> None:
    """Start the forkserver now, if it does not run (no-op without forkserver): it imports
    avmm's backtest and ``modules`` (the jobs' validator's, say) and loads the compiled loop while
    this process goes on."""
    ctx = pool_context()
    if ctx.get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver, resource_tracker

    ctx.set_forkserver_preload([*PRELOAD, *modules])  # read when the server starts, not after
    # started with SIGINT blocked, as multiprocessing starts its resource tracker (first: it
    # unblocks SIGINT on its way out): Ctrl-C is the command's, never a traceback from the server's
    # start-up (the workers ignore it as well)
    resource_tracker.ensure_running()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def stop_local() -> None:
    """Stop the forkserver if it runs (killed, not waited for)."""
    global _served
    from multiprocessing import forkserver

    _served = False
    server = getattr(forkserver, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    if server is None or pid is None:
        return
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(Exception):
        server._stop()


def mark_served() -> None:
    """The server forks a pool's workers (``stop_unserved`` leaves it)."""
    global _served
    _served = True


def stop_unserved() -> None:
    """Stop a server started for a pool that did not come (the sweep runs in this process after
    all): not loading or compiling beside it."""
    if not _served:
        stop_local()


@contextlib.contextmanager
def local_server(modules: Sequence[str] = ()) -> Iterator[None]:
    """The forkserver started on entry (``start_local(modules)``), stopped on exit."""
    start_local(modules)
    try:
        yield
    finally:
        stop_local()
