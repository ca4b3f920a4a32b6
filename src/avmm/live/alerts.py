"""The alert hook of a session (``[alerts]``): a command and / or a webhook, run when something
needs a person -- a halt, the kill switch, a feed disconnected for longer than ``disconnect_s``, a
reconciliation that fails (paper: the book's snapshot failing ``resync_failures`` times in a row).

``Alerts.alert(kind, text)`` never waits: it schedules the delivery on the event loop and returns.
The alert is one JSON object (``kind``, ``text``, ``time`` (UTC, ISO 8601), ``time_ns``, ``venue``,
``symbol``, ``host``, ``pid`` and the session's ``status``):

* ``command``: split into words like a shell line and run without a shell
  (``asyncio.create_subprocess_exec``), the JSON on its stdin; killed after ``timeout_s``; a
  non-zero exit is a failure (the end of its stderr logged);
* ``webhook_url``: POSTed as ``application/json`` (aiohttp), ``timeout_s`` per attempt, at most
  ``1 + retries`` attempts (backoff 0.5 s, doubled); a status >= 300 is a failure.

A failure is counted (``counts``: in the status) and logged, never raised: the session goes on. At
most one alert of a kind every ``min_interval_s`` (the others counted as ``suppressed`` and
logged). ``close()`` (the session's end) waits for the deliveries under way, bounded by their time
limits, so the kill switch's alert leaves before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from avmm.live.config import AlertsConfig

KINDS = ("halt", "kill", "disconnect", "reconcile")
BACKOFF_S = 0.5
STDERR_TAIL = 300  # characters of a failed command's stderr logged


def safe_url(url: str) -> str:
    """``scheme://host:port`` of a URL: a webhook's path and query often hold its secret token."""
    u = urlsplit(url)
    return f"{u.scheme}://{u.netloc.rsplit('@', 1)[-1]}/..."


class Alerts:
    """Deliver alerts as ``cfg`` says (nothing configured: alerts are only logged)."""

    def __init__(
        self,
        cfg: AlertsConfig,
        log: logging.Logger,
        where: dict[str, Any] | None = None,
        status: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.log = log
        self.where = where or {}
        self.status = status
        self.argv = shlex.split(cfg.command) if cfg.command else None
        self.url = cfg.webhook_url
        self.last: dict[str, float] = {}
        self.counts = {
            "alerts": 0, "suppressed": 0, "command_ok": 0, "command_failed": 0, "webhook_ok": 0,
            "webhook_failed": 0,
        }  # fmt: skip
        self.tasks: set[asyncio.Task[None]] = set()
        self._http: Any = None

    @property
    def configured(self) -> bool:
        return self.argv is not None or self.url is not None

    def alert(self, kind: str, text: str) -> bool:
        """Schedule the alert ``kind`` (one of ``KINDS``) with ``text``; False when suppressed (too
        soon after the last of its kind) or nothing is configured. Never waits, never raises."""
        now = time.monotonic()
        last = self.last.get(kind)
        if last is not None and now - last < self.cfg.min_interval_s:
            self.counts["suppressed"] += 1
            self.log.info("alert %s suppressed (one per %gs): %s", kind, self.cfg.min_interval_s, text)
            return False
        self.last[kind] = now
        self.counts["alerts"] += 1
        self.log.warning("ALERT %s: %s", kind, text)
        if not self.configured:
            return False
        t = time.time_ns()
        payload: dict[str, Any] = {
            "kind": kind,
            "text": text,
            "time": datetime.fromtimestamp(t / 1e9, UTC).isoformat(timespec="milliseconds"),
            "time_ns": t,
            **self.where,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        if self.status is not None:
            try:
                payload["status"] = self.status()
            except Exception as e:  # the alert leaves without it
                payload["status"] = None
                self.log.warning("alert %s: no status (%s: %s)", kind, type(e).__name__, e)
        body = json.dumps(payload, default=str).encode()
        task = asyncio.get_running_loop().create_task(self._deliver(kind, body))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return True

    async def _deliver(self, kind: str, body: bytes) -> None:
        jobs = []
        if self.argv is not None:
            jobs.append(self._command(kind, body))
        if self.url is not None:
            jobs.append(self._webhook(kind, body))
        await asyncio.gather(*jobs)

    async def _command(self, kind: str, body: bytes) -> None:
        assert self.argv is not None
        name = os.path.basename(self.argv[0])
        err = ""
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as e:
            self._failed("command", kind, f"{name}: cannot run ({e.strerror or e})")
            return
        try:
            _, stderr = await asyncio.wait_for(proc.communicate(body), self.cfg.timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            self._failed("command", kind, f"{name}: no exit after {self.cfg.timeout_s:g}s (killed)")
            return
        if proc.returncode != 0:
            err = stderr.decode(errors="replace").strip()[-STDERR_TAIL:]
            self._failed("command", kind, f"{name}: exit {proc.returncode}" + (f": {err}" if err else ""))
            return
        self.counts["command_ok"] += 1
        self.log.info("alert %s: command %s ran", kind, name)

    async def _webhook(self, kind: str, body: bytes) -> None:
        import aiohttp

        assert self.url is not None
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.cfg.timeout_s))
        err = ""
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                await asyncio.sleep(BACKOFF_S * 2 ** (attempt - 1))
            try:
                async with self._http.post(self.url, data=body, headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    if r.status < 300:
                        self.counts["webhook_ok"] += 1
                        self.log.info("alert %s: webhook %s answered %d", kind, safe_url(self.url), r.status)
                        return
                    err = f"HTTP {r.status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                err = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        self._failed("webhook", kind, f"{safe_url(self.url)}: {err} ({self.cfg.retries + 1} attempts)")

    def _failed(self, how: str, kind: str, why: str) -> None:
        self.counts[f"{how}_failed"] += 1
        self.log.error("alert %s: %s failed: %s", kind, how, why)

    async def close(self) -> None:
        """Wait for the deliveries under way (each bounded by its time limits), then close."""
        if self.tasks:
            limit = self.cfg.timeout_s * (self.cfg.retries + 1) + BACKOFF_S * 2**self.cfg.retries + 1.0
            _, pending = await asyncio.wait(set(self.tasks), timeout=limit)
            for t in pending:
                t.cancel()
        if self._http is not None:
            await self._http.close()
            self._http = None
