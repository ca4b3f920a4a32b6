"""Opt-in tuning (``live/tuning.py``): CPU lists, the SCHED_FIFO priority (in a child process: the
test worker stays as it is), the collector's manual mode and its pause timing."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import time

import pytest

from avmm.errors import UserError
from avmm.live import tuning
from avmm.live.tuning import GcPolicy, check_busy_poll, check_rt_priority, parse_cpus


def test_cpu_lists():
    allowed = sorted(os.sched_getaffinity(0))
    assert parse_cpus(str(allowed[0])) == [allowed[0]]
    assert parse_cpus(",".join(map(str, allowed))) == allowed
    assert parse_cpus(f"{allowed[0]}-{allowed[-1]}") == list(range(allowed[0], allowed[-1] + 1))
    for bad in ("x", "1-0", "-1", ""):
        with pytest.raises(UserError, match="expected CPU numbers"):
            parse_cpus(bad)
    with pytest.raises(UserError, match="CPU 4096 is not available"):
        parse_cpus("4096")


def test_busy_poll_is_refused_with_a_realtime_priority():
    assert check_busy_poll(True, None) is True and check_busy_poll(False, 5) is False
    with pytest.raises(UserError, match=r"^--busy-poll with --rt-priority 5: a SCHED_FIFO thread that never sleeps"):
        check_busy_poll(True, 5)


def test_rt_priority_range():
    assert check_rt_priority(1) == 1
    with pytest.raises(UserError, match="SCHED_FIFO priorities are 1-99"):
        check_rt_priority(0)


def test_pinning_and_realtime_in_a_child():
    """What the child gets: its affinity pinned, SCHED_FIFO (reset on fork: its own children run
    normally) -- or, where not permitted, the reason and the normal policy."""
    cpu = min(os.sched_getaffinity(0))
    code = f"""
import os, subprocess, sys
from avmm.live.tuning import pin, realtime, normal
print(pin([{cpu}]))
why = realtime(1)
print(why)
if why is None:
    print(os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK == os.SCHED_FIFO)
    print(subprocess.run([sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"],
                         capture_output=True, text=True).stdout.strip())
    normal()
print(os.sched_getscheduler(0))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert lines[0] == f"[{cpu}]"
    if lines[1] == "None":  # permitted here (root, CAP_SYS_NICE)
        assert lines[2] == "True" and lines[3] == str(os.SCHED_OTHER)
    else:
        assert lines[1]  # the reason
    assert lines[-2] == str(os.SCHED_OTHER)


def test_manual_gc_turns_the_automatic_collections_off_and_runs_them_on_a_timer(monkeypatch):
    monkeypatch.setattr(tuning, "GC_YOUNG_S", 0.02)
    monkeypatch.setattr(tuning, "GC_FULL_S", 0.2)
    frames = [0]
    pol = GcPolicy("manual", lambda: frames[0])
    assert gc.isenabled()

    async def go() -> bool:
        pol.start()
        task = asyncio.get_running_loop().create_task(pol.run())
        end = time.monotonic() + 30  # (a full collection of the test process takes a while)
        while time.monotonic() < end and not (pol.runs[1] >= 3 and pol.runs[2] >= 1):
            await asyncio.sleep(0.01)
        off = not gc.isenabled()
        task.cancel()
        return off

    try:
        assert asyncio.run(go())
    finally:
        pol.stop()
    assert gc.isenabled()
    st = pol.status()
    assert st["mode"] == "manual"
    assert pol.runs[1] >= 3 and pol.runs[2] >= 1
    assert st["pauses"]["gen1"]["n"] >= pol.runs[1] and st["pauses"]["gen2"]["n"] >= pol.runs[2]
    assert st["pauses"]["gen2"]["max_ms"] > 0
    with pytest.raises(UserError, match="--gc later: use auto or manual"):
        GcPolicy("later", lambda: 0)
