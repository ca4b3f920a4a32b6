"""``<json>.partial``: the finished points of a sweep, one JSON line each, appended (and flushed to
disk) as they finish, after a header line naming the sweep (its base config, search space, data,
windows and mode). ``--resume`` reads it back and skips those points; a partial file of another
sweep is refused with one line naming what differs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from avmm.errors import UserError

MAGIC = "avmm-sweep-partial"
VERSION = 1


def point_key(window: tuple[int | None, int | None], keys: dict[str, Any]) -> str:
    """A point's identity: its window and its keys (canonical JSON)."""
    return json.dumps([list(window), keys], sort_keys=True)


class Partial:
    """The partial file of one sweep (or none: ``path`` None)."""

    def __init__(self, path: Path | None, fingerprint: dict[str, Any]) -> None:
        self.path = path
        self.fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True))
        self.done: dict[str, dict[str, Any]] = {}
        self.meta: dict[str, Any] = {}
        self.fh: Any = None
        self.written = 0

    def start(self, resume: bool) -> None:
        """Read the finished points (``resume``), or refuse to overwrite a partial file."""
        if self.path is None:
            if resume:
                raise UserError("--resume needs --json FILE: the finished points are kept in FILE.partial")
            return
        if self.path.exists():
            if not resume:
                raise UserError(
                    f"{self.path}: the finished points of an earlier sweep; continue it with --resume, or remove it"
                )
            self._load()
        elif resume:
            raise UserError(f"--resume: {self.path} not found (no interrupted sweep to resume)")

    def _load(self) -> None:
        assert self.path is not None
        try:
            lines = self.path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"{self.path}: cannot read: {e}") from None
        try:
            head = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            head = {}
        if not isinstance(head, dict) or head.get("format") != MAGIC:
            raise UserError(f"{self.path}: not an avmm sweep partial file")
        theirs = head.get("fingerprint", {})
        diff = [k for k in sorted(set(theirs) | set(self.fingerprint)) if theirs.get(k) != self.fingerprint.get(k)]
        if diff:
            raise UserError(
                f"{self.path}: from a different sweep ({', '.join(diff)} differ); run that sweep again "
                "to resume it, or remove the file"
            )
        for i, line in enumerate(lines[1:], start=2):
            try:
                rec = json.loads(line)
                self.done[point_key(tuple(rec["window"]), rec["keys"])] = rec
            except (json.JSONDecodeError, KeyError, TypeError):
                if i == len(lines):  # the last line cut short by the interruption: that point runs again
                    continue
                raise UserError(f"{self.path}:{i}: a damaged line; remove the file to start again") from None
        self.meta = head.get("meta", {})

    def get(self, window: tuple[int | None, int | None], keys: dict[str, Any]) -> dict[str, Any] | None:
        return self.done.get(point_key(window, keys))

    def add(self, rec: dict[str, Any]) -> None:
        """Keep a finished point (``window``, ``keys``, ``figures``, ``config``), on disk at once."""
        self.done[point_key(tuple(rec["window"]), rec["keys"])] = rec
        if self.path is None:
            return
        if self.fh is None:
            fresh = not self.path.exists()
            self.fh = open(self.path, "a")  # noqa: SIM115  (open for the sweep's length, closed in close())
            if fresh:
                self.fh.write(json.dumps({"format": MAGIC, "version": VERSION, "fingerprint": self.fingerprint}) + "\n")
        self.fh.write(json.dumps(rec) + "\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.written += 1

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None

    def remove(self) -> None:
        """The sweep finished and its outputs are written: the partial file goes."""
        self.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)
