"""The options ``avmm paper`` and ``avmm live`` share for running unattended (``live/control.py``)
and tuned (``live/tuning.py``), declared and checked once: ``--ctl``, ``--kill-file``, ``--log``,
``--log-max-mb``, ``--log-backups``, ``--cpu``, ``--rt-priority``, ``--gc``, ``--busy-poll``.

``ops(...)`` checks them (one line, exit 2, for a bad value) into ``Ops``, which the session's
``Supervisor`` takes (``supervisor_kwargs``) and which carries back what ended the session.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from avmm.errors import UserError

CTL = typer.Option(
    None, "--ctl", metavar="SOCKET", help="listen for 'avmm ctl SOCKET ...' on this Unix socket (mode 0600)"
)
KILL_FILE = typer.Option(
    None,
    "--kill-file",
    metavar="PATH",
    help="kill switch: when PATH appears, cancel all our orders and stop (checked each second)",
)
LOG = typer.Option(None, "--log", metavar="FILE", help="log the session's events to FILE (rotated)")
LOG_MAX_MB = typer.Option(16.0, "--log-max-mb", help="rotate the log file at this size, MB")
LOG_BACKUPS = typer.Option(5, "--log-backups", help="rotated log files kept (FILE.1 ... FILE.N)")
CPU = typer.Option(None, "--cpu", metavar="LIST", help="pin the process to these CPUs, e.g. 1 or 0,2 or 0-3")
RT_PRIORITY = typer.Option(
    None, "--rt-priority", metavar="P", help="run the event loop under SCHED_FIFO at priority P where permitted"
)
GC = typer.Option(
    "auto",
    "--gc",
    metavar="<auto|manual>",
    help="auto: automatic collections; manual: none during the session, run from a timer between events",
)
BUSY_POLL = typer.Option(
    False,
    "--busy-poll",
    help="the event loop never sleeps: a lower latency tail for one CPU kept at 100% (give it its own: --cpu)",
)


@dataclass
class Ops:
    """Control, kill switch, log and tuning (``live/control.py``); what ended the session."""

    ctl: Path | None = None
    kill_file: Path | None = None
    log: Path | None = None
    log_max_bytes: int = 16 << 20
    log_backups: int = 5
    cpus: list[int] | None = None
    rt_priority: int | None = None
    gc_mode: str = "auto"
    busy_poll: bool = False
    killed_by: str | None = None
    flattened: bool | None = None

    def supervisor_kwargs(self) -> dict[str, Any]:
        """The ``Supervisor``'s control and tuning arguments."""
        return {
            "ctl": self.ctl,
            "kill_file": self.kill_file,
            "cpus": self.cpus,
            "rt_priority": self.rt_priority,
            "gc_mode": self.gc_mode,
            "busy_poll": self.busy_poll,
        }


def ops(
    ctl: Path | None,
    kill_file: Path | None,
    log: Path | None,
    log_max_mb: float,
    log_backups: int,
    cpu: str | None,
    rt_priority: int | None,
    gc_mode: str,
    busy_poll: bool,
) -> Ops:
    """The options checked (a bad one: ``UserError``, one line)."""
    from avmm.live.control import check_kill_file, check_socket_path
    from avmm.live.tuning import GC_MODES, check_busy_poll, check_rt_priority, parse_cpus

    if gc_mode not in GC_MODES:
        raise UserError(f"--gc {gc_mode}: use {' or '.join(GC_MODES)}")
    if not (math.isfinite(log_max_mb) and log_max_mb > 0):
        raise UserError(f"--log-max-mb {log_max_mb}: must be a positive number of MB")
    if log_backups < 1:
        raise UserError(f"--log-backups {log_backups}: must be at least 1")
    return Ops(
        ctl=check_socket_path(ctl) if ctl is not None else None,
        kill_file=check_kill_file(kill_file) if kill_file is not None else None,
        log=log,
        log_max_bytes=max(1, int(log_max_mb * (1 << 20))),
        log_backups=log_backups,
        cpus=parse_cpus(cpu) if cpu is not None else None,
        rt_priority=check_rt_priority(rt_priority) if rt_priority is not None else None,
        gc_mode=gc_mode,
        busy_poll=check_busy_poll(busy_poll, rt_priority),
    )
