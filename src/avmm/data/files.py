"""Opening source files: plain or gzip (``SalvageGzip`` keeps everything before damage), zip
members, the ``ReadGate`` that lets a reader stop at a byte limit, and ``prefetch``, which runs a
reader on a worker thread while the consumer replays its counter updates in pull order.
"""

from __future__ import annotations

import gzip
import io
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from avmm.data.issues import Counters, ProgressFn, Recorder, replay
from avmm.errors import UserError

_END = object()


def prefetch(
    make: Callable[[Counters, ProgressFn | None], Iterator],
    c: Counters,
    progress: ProgressFn | None = None,
    depth: int = 2,
    name: str = "avmm-prefetch",
) -> Iterator:
    """Run the stream ``make(counters, progress)`` on a worker thread, ``depth`` items ahead.

    Parsing (Arrow) and the NumPy work of a reader release the GIL, so the readers of several
    files and the merge / write stage overlap on several cores. Behaviour is unchanged: counter
    updates and progress calls are replayed here, in pull order; an exception is raised here at
    the point of the stream where it occurred. Memory: the item the consumer holds and at most
    ``depth`` more (the one being made included): the worker starts item ``i + depth + 1`` only
    once the consumer has taken item ``i + 1``. The thread (named ``name``) starts on the first
    ``next()``; when this generator ends, fails or is closed (``close()``, or an exception such as
    Ctrl-C in the consumer), it stops the worker and waits for it: the thread never outlives it.
    """
    import queue
    import threading

    rec = Recorder()
    q: queue.SimpleQueue = queue.SimpleQueue()
    slots = threading.Semaphore(max(1, depth))  # items made and not yet taken (the one being made included)
    stop = threading.Event()

    def slot() -> bool:
        slots.acquire()
        return not stop.is_set()

    def work() -> None:
        it = None
        try:
            it = make(rec, rec.progress if progress is not None else None)
            while slot():
                item = next(it, _END)
                q.put((item, rec.take(), None))
                if item is _END:
                    return
        except BaseException as e:  # handed to the consumer
            q.put((_END, rec.take(), e))
        finally:
            if it is not None and hasattr(it, "close"):
                it.close()

    t = threading.Thread(target=work, name=name, daemon=True)
    t.start()
    try:
        while True:
            item, log, err = q.get()
            slots.release()
            replay(c, log, progress)
            if err is not None:
                raise err
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        slots.release()  # wakes the worker if it waits for a slot: it sees ``stop`` and ends
        if not sys.is_finalizing():  # (a daemon thread is frozen at interpreter exit: never join it then)
            t.join()


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


class SalvageGzip(io.RawIOBase):
    """Read-only gzip stream (multi-member) that ends cleanly at the first corruption.

    The error is kept in ``error`` (None if the stream was intact) and ``raw_pos`` is the number
    of compressed bytes consumed (progress). Everything decodable before the damage is returned,
    so a reader can keep it and count the damage instead of losing the whole file.
    """

    def __init__(self, path: Path, chunk: int = 1 << 20) -> None:
        self.f = open(path, "rb")  # noqa: SIM115  (the stream owns it: closed by ``close()``)
        self.d = zlib.decompressobj(wbits=31)
        self.buf = b""
        self.chunk = chunk
        self.error: str | None = None
        self.raw_pos = 0
        self.out_pos = 0
        self.eof = False

    def readable(self) -> bool:
        return True

    def _fill(self, n: int) -> None:
        while len(self.buf) < n and not self.eof:
            data = self.f.read(self.chunk)
            self.raw_pos += len(data)
            if not data:
                if not self.d.eof:
                    self.error = "truncated gzip stream (no end-of-stream marker)"
                self.eof = True
                break
            try:
                out = self.d.decompress(data)
                while self.d.eof and self.d.unused_data:  # next gzip member
                    rest = self.d.unused_data
                    self.d = zlib.decompressobj(wbits=31)
                    out += self.d.decompress(rest)
            except zlib.error as e:
                self.error = f"corrupt gzip data ({e})"
                self.eof = True
                break
            self.buf += out

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 62
        self._fill(n)
        out, self.buf = self.buf[:n], self.buf[n:]
        self.out_pos += len(out)
        return out

    def readinto(self, b: Any) -> int:  # (a writable buffer)
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.f.close()
        super().close()


class ReadGate(io.RawIOBase):
    """Read-only stream over ``inner`` that lets a background reader run at most ``ahead`` reads
    ahead of the batches taken (``took()``).

    Arrow's streaming CSV reader reads up to 32 blocks ahead on its I/O thread (4 MiB each: 128 MiB
    a file, or the whole file when smaller), so without a gate peak memory grows with the input
    until that cap. ``release()`` (or ``close()``) lifts the gate for good.
    """

    def __init__(self, inner: io.RawIOBase | pa.NativeFile, ahead: int = 3) -> None:
        import threading

        self.inner = inner
        self.ahead = ahead
        self.reads = 0
        self.taken = 0
        self.gated = True
        self.stopped = False
        self.cv = threading.Condition()

    def readable(self) -> bool:
        return True

    def took(self) -> None:
        with self.cv:
            self.taken += 1
            self.cv.notify_all()

    def release(self) -> None:
        with self.cv:
            self.gated = False
            self.cv.notify_all()

    def stop(self) -> None:
        """The consumer is done (finished or failed): every further read is end-of-file, so the
        background reader winds down at once instead of reading the rest of the file."""
        with self.cv:
            self.stopped = True
            self.gated = False
            self.cv.notify_all()

    def read(self, n: int = -1) -> bytes:
        import sys

        with self.cv:
            while self.gated and self.reads >= self.taken + self.ahead:
                if self.cv.wait(timeout=1.0) is False and sys.is_finalizing():
                    break
            if self.stopped:
                return b""
            self.reads += 1
        return self.inner.read(n)

    def readinto(self, b: Any) -> int:  # (a writable buffer)
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.release()
        if not self.closed:
            self.inner.close()
        super().close()


def open_source(path: Path) -> tuple[pa.NativeFile | SalvageGzip, SalvageGzip | pa.NativeFile]:
    """(stream, raw): ``stream`` decompresses gzip transparently (``SalvageGzip``: stops cleanly at
    a corruption, see its ``error``), ``raw`` reports progress via ``tell()`` / ``raw_pos``."""
    raw = open_raw(path)
    if isinstance(raw, SalvageGzip):
        return pa.PythonFile(raw, mode="r"), raw
    return raw, raw


def open_raw(path: Path) -> SalvageGzip | pa.NativeFile:
    """The file as ``SalvageGzip`` (gzip) or ``pa.OSFile`` (see ``open_source``)."""
    try:
        if is_gzip(path):
            return SalvageGzip(path)
        return pa.OSFile(str(path), "rb")
    except (OSError, pa.ArrowException) as e:
        raise UserError(f"{path}: cannot open: {e}") from None


def open_text_lines(path: Path) -> io.BufferedIOBase:
    """Binary file object over the (possibly gzip) file: ``gzip.GzipFile`` or plain file."""
    if is_gzip(path):
        return gzip.open(path, "rb")
    return open(path, "rb")


def file_size(paths: Iterable[Path]) -> int:
    """Total size of the files, in bytes."""
    return sum(Path(p).stat().st_size for p in paths)
