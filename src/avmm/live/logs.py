"""The session's log file: rotating, written by a thread, secrets redacted.

``open_log(path)`` returns a ``LogFile``: a ``logging.Logger`` (``avmm.live``, not propagated: the
terminal stays the status's) whose records go through a ``QueueHandler`` to a ``QueueListener``
thread that writes them to a ``RotatingFileHandler`` (size-based: ``max_bytes`` per file, ``backups``
old files ``FILE.1`` .. ``FILE.N``). The event loop only puts a record on a queue: it never waits
for the disk. Nothing is logged per market event: the runtimes log what is rare (connects,
reconnects, gaps, resyncs, health changes, halts, ctl commands, alerts; ``control.Supervisor``
samples the feed's counters once a second and logs what moved) and a status line a minute.

``Redact`` is on the file handler: every registered secret (``add``), every value of an
environment variable whose name says it holds one (``SECRET_ENV``: ``*API_KEY*``, ``*SECRET*``,
``*TOKEN*``, ``*PASSWORD*``, ``*PASSPHRASE*``, ``*PRIVATE_KEY*``), and the values after the names
Binance's APIs and HTTP give secrets (``apiKey``, ``X-MBX-APIKEY``, ``signature``, ``secret``,
``listenKey``, ``Authorization``...) become ``***`` in the message and its traceback, whatever
logged them. The live gateway registers its keys with ``add`` before it connects.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import queue
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from avmm.errors import UserError

LOGGER = "avmm.live"
MASK = "***"
SECRET_ENV = re.compile(r"API_?KEY|SECRET|TOKEN|PASSWORD|PASSPHRASE|PRIVATE_?KEY", re.IGNORECASE)
MIN_SECRET = 6  # shorter values are not masked wherever they appear (they would mask digits and words)
_NAMED = re.compile(
    r"""(?P<name>api[_-]?key|x-mbx-apikey|secret(?:[_-]?key)?|signature|listen[_-]?key|private[_-]?key|token|"""
    r"""passphrase|password|authorization)(?P<sep>["']?\s*[:=]\s*["']?(?:bearer\s+)?)(?P<value>[^\s"',&}]+)""",
    re.IGNORECASE,
)
FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)s %(message)s"
DATEFMT = "%Y-%m-%dT%H:%M:%S"


def env_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """The values of the environment variables whose names say they hold a secret."""
    env = os.environ if env is None else env
    return [v for k, v in env.items() if SECRET_ENV.search(k) and len(v) >= MIN_SECRET]


class Redact(logging.Filter):
    """Masks secrets in a record's message and traceback (a filter that never drops a record)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        self._re: re.Pattern[str] | None = None
        for s in secrets:
            self.add(s)

    def add(self, secret: str) -> None:
        """Mask ``secret`` wherever it appears (values shorter than ``MIN_SECRET`` are refused)."""
        if len(secret) < MIN_SECRET:
            raise ValueError(f"a secret of {len(secret)} characters would mask ordinary text")
        self.secrets.add(secret)
        alts = sorted(self.secrets, key=len, reverse=True)
        self._re = re.compile("|".join(map(re.escape, alts)))

    def text(self, s: str) -> str:
        if self._re is not None:
            s = self._re.sub(MASK, s)
        return _NAMED.sub(lambda m: m["name"] + m["sep"] + MASK, s)

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self.text(msg), None
        if record.exc_text:
            record.exc_text = self.text(record.exc_text)
        if record.stack_info:
            record.stack_info = self.text(record.stack_info)
        return True


class _UTC(logging.Formatter):
    def converter(self, secs: float | None) -> time.struct_time:
        return time.gmtime(secs)


class LogFile:
    """The rotating log file of a session (``open_log``); ``close`` flushes and joins the writer."""

    def __init__(self, path: Path, max_bytes: int, backups: int, secrets: Iterable[str] = ()) -> None:
        self.path = path
        self.redact = Redact([*env_secrets(), *secrets])
        try:
            fh = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        except OSError as e:
            raise UserError(f"--log {path}: cannot write the log ({e.strerror or e})") from None
        fh.setFormatter(_UTC(FORMAT, DATEFMT))
        fh.addFilter(self.redact)
        self.handler = fh
        q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self.listener = logging.handlers.QueueListener(q, fh, respect_handler_level=False)
        self.logger = logging.getLogger(LOGGER)
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        self.qh = logging.handlers.QueueHandler(q)
        self.logger.addHandler(self.qh)
        self.listener.start()
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.logger.removeHandler(self.qh)
        self.listener.stop()
        with contextlib.suppress(OSError):
            self.handler.close()


def open_log(path: Path, max_bytes: int = 16 << 20, backups: int = 5, secrets: Iterable[str] = ()) -> LogFile:
    """The log file at ``path`` (its folder must exist); one line when it cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"--log {path}: is a folder")
    if not path.parent.is_dir():
        raise UserError(f"--log {path}: folder {path.parent} does not exist")
    return LogFile(path, max_bytes, backups, secrets)


def null_logger() -> logging.Logger:
    """A logger that writes nothing (no ``--log``): the runtimes log unconditionally."""
    log = logging.getLogger(LOGGER + ".off")
    log.propagate = False
    log.disabled = True
    return log
