"""Opt-in tuning of a live or paper session, reported in its status (``tuning``, ``gc``).

* ``--cpu LIST`` pins every thread of the process to those CPUs (``os.sched_setaffinity`` on each
  thread of ``/proc/self/task``; the threads started later inherit it).
* ``--rt-priority P`` runs the event loop's thread under ``SCHED_FIFO`` at priority ``P``, with
  ``SCHED_RESET_ON_FORK`` (an alert command runs at normal priority); the journal's writer thread,
  started before, stays at normal priority. Not permitted (no ``CAP_SYS_NICE``, ``RLIMIT_RTPRIO``
  too low, a container without it): one warning line, the session goes on without it.
* ``--busy-poll``: the event loop never sleeps. A task yields back to the loop at once, forever, so
  each turn of the loop polls its sockets with a zero timeout instead of blocking in ``epoll_wait``:
  a frame is handled the moment it lands, on a CPU whose caches and clock were never let go cold
  (``make bench-live``: the p99 from the frame to the order intent 27.7 -> 10.2 µs). It
  costs one CPU at 100 % for the whole session: give it one of its own (``--cpu``). Refused with
  ``--rt-priority``: a ``SCHED_FIFO`` thread that never blocks starves the kernel's own work on its
  CPU (only RT throttling's 5 % is left to it). Threads of the process (the journal's writer) get
  the interpreter lock at each turn of the loop, as when it sleeps.
* The garbage collector: the session's setup is frozen out of it (``PaperSession.run``: ``gc.freeze``).
  ``--gc auto`` (the default) leaves the automatic collections on; ``--gc manual`` turns them off
  for the session and runs them from a timer task, between two events: the young generations
  (``gc.collect(1)``) every ``GC_YOUNG_S`` and a full collection every ``GC_FULL_S``, each at a quiet
  moment (no frame for ``QUIET_S``, waited for up to ``QUIET_WAIT_S``). ``GcPauses`` times every
  collection after the setup's freeze (``gc.callbacks``) in both modes: the status's ``gc`` keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from avmm.errors import UserError

GC_MODES = ("auto", "manual")
GC_YOUNG_S = 1.0
GC_FULL_S = 60.0
QUIET_S = 0.001
QUIET_WAIT_S = 0.05
PAUSE_RING = 4096  # pauses kept per generation for the percentiles
RT_MAX = 99


def parse_cpus(text: str) -> list[int]:
    """``0``, ``0,2``, ``0-3``: the CPUs, each one this process may run on."""
    out: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            a, b = int(lo), int(hi) if hi else int(lo)
            if a < 0 or b < a:
                raise ValueError
            out.update(range(a, b + 1))
    except ValueError:
        raise UserError(f"--cpu {text}: expected CPU numbers like 0, 0,2 or 0-3") from None
    allowed = os.sched_getaffinity(0)
    bad = sorted(out - allowed)
    if bad:
        raise UserError(f"--cpu {text}: CPU {bad[0]} is not available (this process may use {_span(allowed)})")
    return sorted(out)


def check_rt_priority(p: int) -> int:
    lo, hi = os.sched_get_priority_min(os.SCHED_FIFO), os.sched_get_priority_max(os.SCHED_FIFO)
    if not lo <= p <= hi:
        raise UserError(f"--rt-priority {p}: SCHED_FIFO priorities are {lo}-{hi}")
    return p


def check_busy_poll(busy_poll: bool, rt_priority: int | None) -> bool:
    """``--busy-poll``, refused with ``--rt-priority`` (see the module's docstring)."""
    if busy_poll and rt_priority is not None:
        raise UserError(
            f"--busy-poll with --rt-priority {rt_priority}: a SCHED_FIFO thread that never sleeps starves "
            "the kernel's work on its CPU; use one or the other (--busy-poll with --cpu)"
        )
    return busy_poll


async def busy_poll() -> None:
    """The loop never sleeps: yield to it at once, forever (cancel the task to stop). Each turn
    runs the ready callbacks and polls the sockets with a zero timeout."""
    sleep = asyncio.sleep
    while True:
        await sleep(0)


def _span(cpus: set[int]) -> str:
    return ",".join(map(str, sorted(cpus)))


def pin(cpus: list[int]) -> list[int]:
    """Every thread of this process on ``cpus``; returns the affinity in effect."""
    want = set(cpus)
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread gone meanwhile
            os.sched_setaffinity(int(tid), want)
    os.sched_setaffinity(0, want)
    return sorted(os.sched_getaffinity(0))


def realtime(priority: int) -> str | None:
    """``SCHED_FIFO`` at ``priority`` for the calling thread; None, or why it was not permitted."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
    except OSError as e:
        return e.strerror or str(e)
    return None


def normal() -> None:
    """Back to ``SCHED_OTHER`` (the session's end: what follows is not latency-critical)."""
    with contextlib.suppress(OSError):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


class GcPauses:
    """Every garbage collection's pause once ``start`` is called (after the setup's freeze), by
    generation: count, p50 / p99 / max and total (ms). (The callback does nothing else: even
    ``gc.get_freeze_count()`` walks the frozen objects, 0.5 ms for a session's 140 k.)"""

    def __init__(self) -> None:
        self.t0 = 0
        self.n = [0, 0, 0]
        self.total_ns = [0, 0, 0]
        self.max_ns = [0, 0, 0]
        self.ring = np.zeros((3, PAUSE_RING), np.int64)
        self.on = False

    def _cb(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.t0 = time.perf_counter_ns()
            return
        if self.t0 == 0:
            return
        d = time.perf_counter_ns() - self.t0
        g = info["generation"]
        self.ring[g, self.n[g] % PAUSE_RING] = d
        self.n[g] += 1
        self.total_ns[g] += d
        if d > self.max_ns[g]:
            self.max_ns[g] = d
        self.t0 = 0

    def start(self) -> None:
        if not self.on:
            gc.callbacks.append(self._cb)
            self.on = True

    def stop(self) -> None:
        if self.on:
            gc.callbacks.remove(self._cb)
            self.on = False

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for g in range(3):
            n = self.n[g]
            if n == 0:
                out[f"gen{g}"] = {"n": 0}
                continue
            r = self.ring[g, : min(n, PAUSE_RING)] / 1e6
            p50, p99 = np.percentile(r, [50.0, 99.0])
            out[f"gen{g}"] = {
                "n": n,
                "p50_ms": round(float(p50), 3),
                "p99_ms": round(float(p99), 3),
                "max_ms": round(self.max_ns[g] / 1e6, 3),
                "total_ms": round(self.total_ns[g] / 1e6, 1),
            }
        return out


class GcPolicy:
    """The collector during a session: ``auto`` (automatic collections) or ``manual`` (off, run by
    ``run()`` from a timer at quiet moments). ``frames`` counts the feed's frames (quiet: no change)."""

    def __init__(self, mode: str, frames: Callable[[], int]) -> None:
        if mode not in GC_MODES:
            raise UserError(f"--gc {mode}: use {' or '.join(GC_MODES)}")
        self.mode = mode
        self.frames = frames
        self.pauses = GcPauses()
        self.was_enabled = gc.isenabled()
        self.runs = [0, 0, 0]  # explicit collections (manual)
        self.frozen = 0

    def start(self) -> None:
        """Before the session runs: the automatic collections off (``manual``)."""
        if self.mode == "manual":
            gc.disable()

    def stop(self) -> None:
        self.pauses.stop()
        if self.mode == "manual" and self.was_enabled:
            gc.enable()

    async def _quiet(self) -> None:
        """Until no frame arrives for ``QUIET_S`` (at most ``QUIET_WAIT_S``)."""
        end = time.monotonic() + QUIET_WAIT_S
        while time.monotonic() < end:
            n = self.frames()
            await asyncio.sleep(QUIET_S)
            if self.frames() == n:
                return

    async def run(self) -> None:
        """A task started with the session: its first step comes after the session's setup is
        frozen (``PaperSession.run`` freezes before its first wait); from there every pause is
        timed. Then the manual mode's timer (``auto``: returns)."""
        self.frozen = gc.get_freeze_count()
        self.pauses.start()
        if self.mode != "manual":
            return
        next_full = time.monotonic() + GC_FULL_S
        while True:
            await asyncio.sleep(GC_YOUNG_S)
            await self._quiet()
            gen = 2 if time.monotonic() >= next_full else 1
            gc.collect(gen)
            self.runs[gen] += 1
            if gen == 2:
                next_full = time.monotonic() + GC_FULL_S

    def status(self) -> dict[str, Any]:
        return {"mode": self.mode, "frozen": self.frozen, "pauses": self.pauses.summary()}
