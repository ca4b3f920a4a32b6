"""The local pool's forkserver: started early it loads the compiled loop before it forks (and
forks with no more threads than it had: numba's fork hazard is threads), never takes a Ctrl-C
(blocked from its start, then ignored), and is stopped (killed) by ``stop_local`` or when a sweep
runs inline after all."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.builders import REPO

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="forkserver and /proc/self/task")


def _python(code: str, *path: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*path, str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr  # no notice (the cache is warm), no traceback
    return json.loads(r.stdout.splitlines()[-1])


def test_the_servers_preload_loads_the_loop_and_starts_no_thread():
    out = _python(
        """
import json, os, signal, threading
import numpy, pyarrow  # the threads these start (OpenBLAS, jemalloc) were in the server before
tasks = lambda: len(os.listdir("/proc/self/task"))
before = tasks()
import avmm.sweep.warm
from avmm.backtest import loop
print(json.dumps({
    "before": before, "after": tasks(), "python_threads": threading.active_count(),
    "sigint_ignored": signal.getsignal(signal.SIGINT) is signal.SIG_IGN,
    "compiled": sum(len(getattr(loop, n).signatures) for n in ("run_chunk",)),
}))
"""
    )
    assert out["after"] == out["before"]
    assert out["python_threads"] == 1
    assert out["sigint_ignored"]
    assert out["compiled"] >= 1  # the loop is loaded: a forked worker does not load it again


def test_a_server_still_loading_is_killed_and_an_inline_run_stops_an_unused_one(tmp_path):
    (tmp_path / "slow_preload.py").write_text("import time\ntime.sleep(120)\n")  # a first run's compile, say
    out = _python(
        """
import json, os, signal, time
from multiprocessing import forkserver
from avmm.sweep import executors, server

def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True

def sigint_blocked(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("SigBlk:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))

server.start_local(["slow_preload"])
pid = forkserver._forkserver._forkserver_pid
started = pid is not None and alive(pid)
blocked = sigint_blocked(pid), sigint_blocked(os.getpid())  # a Ctrl-C while it starts: not its own
time.sleep(1)
t0 = time.monotonic()
server.stop_local()
stop_s = time.monotonic() - t0
stopped = forkserver._forkserver._forkserver_pid is None and not alive(pid)

server.start_local()
pid2 = forkserver._forkserver._forkserver_pid
executors.execute_inline([], lambda *a: None, lambda *a: None)  # one job (none here): no pool after all
inline_stopped = forkserver._forkserver._forkserver_pid is None and not alive(pid2)
print(json.dumps({"started": started, "blocked": blocked, "stopped": stopped, "stop_s": stop_s,
                  "inline_stopped": inline_stopped}))
""",
        str(tmp_path),
    )
    assert out["started"]
    assert out["blocked"] == [True, False]  # the server's SIGINT, not this process's
    assert out["stopped"]
    assert out["stop_s"] < 60  # killed, not waited for (its preload sleeps 120 s)
    assert out["inline_stopped"]
