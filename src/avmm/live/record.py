"""The received feed written as a Binance websocket capture: ``<local_ns> <json>`` lines in gzip
files, one per UTC hour, the format ``avmm data convert`` reads (``data.readers.binance_ws``).

Each file starts with the snapshot of the book it continues: the first file and every resync with
the REST snapshot used (written when it is applied, after the diffs it replays, as a capture
has it); the later files with the feed's own book written as a snapshot at the first diff past
the hour, followed by that diff (its update ids bracket the snapshot, so a reader applies the
file on its own, and a reader of the whole recording applies it in place -- depth sizes are
absolute, so the diff applied twice leaves the book as it is). That diff also ends the file before
(it may be the one that confirms that file's last REST snapshot).

Compression and disk writes run on one worker thread, in order, from buffers of lines handed over
every ``FLUSH_BYTES`` bytes or ``flush()`` call: the event loop only appends bytes. A write that
fails (a full disk), or a file removed while it is written (its folder deleted: the lines would go
nowhere), is one ``UserError`` at the next ``flush()``.
"""

from __future__ import annotations

import errno
import gzip
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from avmm.errors import UserError
from avmm.outputs import check_output, mark_kept

HOUR_NS = 3600 * 1_000_000_000
FLUSH_BYTES = 1 << 18


def _stamp(t_ns: int) -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(t_ns // 1_000_000_000))


class Recorder:
    """Writes the capture files of one symbol into ``folder``.

    Parameters
    ----------
    folder : Path
        An existing, writable folder.
    name : str
        The file name prefix (``BTCUSDT-binance-spot``); files are ``<name>-<UTC start>.gz``.
    period_ns : int
        A new file at every multiple of this (wall time; default one hour).
    """

    def __init__(self, folder: Path, name: str, period_ns: int = HOUR_NS, level: int = 5) -> None:
        if not folder.is_dir():
            raise UserError(f"{folder}: not a folder (the recording folder must exist)")
        self.folder = folder
        self.name = name
        self.period = period_ns
        self.level = level
        self.buf = bytearray()
        self.next_t = 0  # when the open file is due to be replaced (0: no file open)
        self.files: list[Path] = []
        self.lines = 0
        self.closed = False
        self.error: UserError | None = None
        self._f: gzip.GzipFile | None = None
        self._path: Path | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="avmm-record")
        self._last: Future[None] | None = None

    @property
    def is_open(self) -> bool:
        return self.next_t != 0

    def due(self, t: int) -> bool:
        """A file is open and ``t`` is past its hour."""
        return self.next_t != 0 and t >= self.next_t

    def line(self, t: int, raw: bytes) -> None:
        """One received message at local time ``t`` (ns); the first opens the first file."""
        if self.next_t == 0:
            if self.closed:
                return
            self.start(t)
        self.buf += b"%d %s\n" % (t, raw)
        self.lines += 1
        if len(self.buf) >= FLUSH_BYTES:
            self._handoff()

    def start(self, t: int, first: bytes | None = None) -> None:
        """Close the open file (if any) and start a new one at ``t`` with ``first`` as its first line."""
        self._handoff()
        try:
            path = check_output(self.folder / f"{self.name}-{_stamp(t)}.gz")
        except UserError as e:  # (the folder went away): reported by the next flush
            self.error = e
            path = self.folder / f"{self.name}-{_stamp(t)}.gz"
        k = 1
        while path in self.files or path.exists():
            k += 1
            path = self.folder / f"{self.name}-{_stamp(t)}-{k}.gz"
        self.files.append(path)
        self._submit(self._open, path)
        self.next_t = (t // self.period + 1) * self.period  # (never 0: "open")
        if first is not None:
            self.line(t, first)

    def _handoff(self) -> None:
        if self.buf:
            data, self.buf = bytes(self.buf), bytearray()
            self._submit(self._write, data)

    def flush(self) -> None:
        """Hand the buffered lines to the writer thread (nothing buffered: the open file checked);
        a write that failed is a ``UserError``."""
        if self.buf:
            self._handoff()
        elif self.next_t:
            self._submit(self._write, b"")
        if self.error is not None:
            raise UserError(f"recording to {self.folder}: {self.error}")

    def close(self) -> None:
        """Write what is buffered, close the file and stop the writer (waits for it)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.flush()
        finally:
            self._submit(self._close, None)
            self._pool.shutdown(wait=True)
            self.next_t = 0
        if self.error is not None:
            raise UserError(f"recording to {self.folder}: {self.error}")

    # the writer thread
    def _submit(self, fn: object, arg: object) -> None:
        if self.error is None:
            self._last = self._pool.submit(self._guard, fn, arg)

    def _guard(self, fn: object, arg: object) -> None:
        try:
            fn(arg)  # type: ignore[operator]
        except OSError as e:
            self.error = UserError(f"{getattr(e, 'filename', None) or self.folder}: {e.strerror or e}")

    def _open(self, path: Path) -> None:
        self._close(None)
        self._f = gzip.GzipFile(path, "wb", compresslevel=self.level)  # noqa: SIM115 (closed by _close)
        self._path = path

    def _write(self, data: bytes) -> None:
        if self._f is not None:
            self._f.write(data)
            if os.fstat(self._f.fileno()).st_nlink == 0:  # removed (its folder too): the data would go nowhere
                raise FileNotFoundError(errno.ENOENT, "removed while recording", str(self._path))

    def _close(self, _: object) -> None:
        if self._f is not None:
            f, self._f = self._f, None
            f.close()
            if self._path is not None:
                mark_kept(self._path)
