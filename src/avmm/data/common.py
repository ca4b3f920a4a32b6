"""Shared pieces of the readers: issue counters, robust numeric columns, validation, the bounded
reorder window and the k-way merge of sorted event streams.

Every reader yields ``(events, lines)`` pairs: an ``EVENT_DTYPE`` array in source order and the
1-based source line number of each row (for error messages). ``reorder`` turns that into chunks
sorted by ``local_ts`` with memory bounded by the reorder window; ``merge_sorted`` merges several
such streams (e.g. a quotes file and a trades file) into one.
"""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from avmm.data import _fast
from avmm.errors import UserError
from avmm.events import DEPTH, EVENT_DTYPE, F_REORDERED, QUOTE

ProgressFn = Callable[[int], None]  # called with the number of source bytes consumed since last call

# Issue counter keys (see ConvertSummary): what was skipped (S), repaired (R) or only noted (N).
ISSUE_HELP: dict[str, str] = {
    "corrupt_gzip": "S: gzip stream corrupt or truncated; the rest of that file was skipped",
    "truncated_line": "S: a line with too few fields or cut JSON (usually the last line)",
    "malformed_row": "S: a CSV row with too many fields / unparsable line",
    "bad_json": "S: a line whose JSON could not be decoded",
    "non_numeric": "S: a numeric field that is not a number (or empty)",
    "non_finite_price": "S: NaN or infinite price",
    "non_positive_price": "S: zero or negative price",
    "non_finite_size": "S: NaN or infinite size",
    "non_positive_size": "S: zero or negative size (negative for depth rows)",
    "crossed_book": "S: quote with best bid above best ask",
    "locked_book": "N: quote with best bid equal to best ask (kept)",
    "empty_book_side": "S: quote with one side empty (LOBSTER dummy price)",
    "duplicate": "S: duplicated message (same trade id / update id / identical row)",
    "reordered": "R: row moved back to restore local_ts order (flag F_REORDERED)",
    "seq_gap": "N: depth sequence gap detected (a CLEAR flagged F_SEQ_GAP is written at the gap; resync at the next snapshot)",
    "depth_unsynced": "S: depth diff dropped while waiting for a snapshot (before the first / after a gap)",
    "depth_stale": "S: depth diff older than the snapshot it follows (normal at sync)",
    "unknown_message": "S: message of a kind the reader does not use",
    "unknown_side": "N: trade with unknown aggressor side (kept, side 0)",
    "unpaired_row": "S: LOBSTER message row without an orderbook row (or vice versa)",
    "trading_halt": "N: LOBSTER trading halt message (type 7)",
    "bad_timestamp": "S: zero, negative or non-numeric timestamp",
    "other_symbol": "S: message for another symbol than the one converted (or a bare snapshot that no diff of the symbol brackets)",
    "agg_trade_skipped": "S: aggTrade message not stored: the capture has @trade messages, which carry the same executions",
    "derived_quote": "N: QUOTE derived from the depth book after a batch (a file without quotes of its own; flag F_DERIVED)",
}

MAX_NOTES = 5


@dataclass
class Counters:
    """Counts of every skipped / repaired record by kind, with a few located examples."""

    issues: dict[str, int] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def add(self, key: str, n: int = 1, where: str | None = None) -> None:
        if n <= 0:
            return
        self.issues[key] = self.issues.get(key, 0) + int(n)
        if where is not None:
            lst = self.notes.setdefault(key, [])
            if len(lst) < MAX_NOTES:
                lst.append(where)

    def add_mask(self, key: str, bad: np.ndarray, path: Path | str, lines: np.ndarray | None) -> None:
        """Count the True entries of ``bad``; note the first few lines."""
        n = int(np.count_nonzero(bad))
        if n == 0:
            return
        self.issues[key] = self.issues.get(key, 0) + n
        lst = self.notes.setdefault(key, [])
        if lines is not None and len(lst) < MAX_NOTES:
            for ln in lines[np.flatnonzero(bad)[: MAX_NOTES - len(lst)]]:
                lst.append(f"{Path(path).name}:{int(ln)}")


class _Recorder(Counters):
    """Counters stand-in for a reader running on a worker thread (``prefetch``): every call is
    logged, to be replayed into the real counters by the consumer in pull order, so counts and
    notes come out exactly as if the reader had run on the consumer's thread."""

    def __init__(self):
        super().__init__()
        self.log: list[tuple] = []

    def add(self, key: str, n: int = 1, where: str | None = None) -> None:
        if n <= 0:
            return
        self.log.append((key, int(n), None if where is None else [where]))

    def add_mask(self, key: str, bad: np.ndarray, path: Path | str, lines: np.ndarray | None) -> None:
        n = int(np.count_nonzero(bad))
        if n == 0:
            return
        notes: list[str] = []
        if lines is not None:
            name = Path(path).name
            notes = [f"{name}:{int(ln)}" for ln in lines[np.flatnonzero(bad)[:MAX_NOTES]]]
        self.log.append((key, n, notes))

    def progress(self, nbytes: int) -> None:
        self.log.append((None, nbytes, None))

    def take(self) -> list[tuple]:
        log, self.log = self.log, []
        return log


def _replay(c: Counters, log: list[tuple], progress: ProgressFn | None) -> None:
    for key, n, notes in log:
        if key is None:
            if progress is not None:
                progress(n)
            continue
        c.issues[key] = c.issues.get(key, 0) + n
        if notes is not None:
            lst = c.notes.setdefault(key, [])
            for w in notes[: max(MAX_NOTES - len(lst), 0)]:
                lst.append(w)


_END = object()


def prefetch(
    make: Callable[[Counters, ProgressFn | None], Iterator],
    c: Counters,
    progress: ProgressFn | None = None,
    depth: int = 2,
) -> Iterator:
    """Run the stream ``make(counters, progress)`` on a worker thread, ``depth`` items ahead.

    Parsing (Arrow) and the NumPy work of a reader release the GIL, so the readers of several
    files and the merge / write stage overlap on several cores. Behaviour is unchanged: counter
    updates and progress calls are replayed here, in pull order; an exception is raised here at
    the point of the stream where it occurred. Memory: ``depth`` items. The thread starts on the
    first ``next()`` and stops when this generator is closed.
    """
    import queue
    import threading

    rec = _Recorder()
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def work() -> None:
        it = None
        try:
            it = make(rec, rec.progress if progress is not None else None)
            for item in it:
                if not put((item, rec.take(), None)):
                    return
            put((_END, rec.take(), None))
        except BaseException as e:  # handed to the consumer
            put((_END, rec.take(), e))
        finally:
            if it is not None and hasattr(it, "close"):
                it.close()

    t = threading.Thread(target=work, name="avmm-prefetch", daemon=True)
    t.start()
    try:
        while True:
            item, log, err = q.get()
            _replay(c, log, progress)
            if err is not None:
                raise err
            if item is _END:
                return
            yield item
    finally:
        stop.set()


# ---------------------------------------------------------------- files
def is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


class SalvageGzip(io.RawIOBase):
    """Read-only gzip stream (multi-member) that ends cleanly at the first corruption.

    The error is kept in ``error`` (None if the stream was intact) and ``raw_pos`` is the number
    of compressed bytes consumed (progress). Everything decodable before the damage is returned,
    so a reader can keep it and count the damage instead of losing the whole file.
    """

    def __init__(self, path: Path, chunk: int = 1 << 20):
        self.f = open(path, "rb")
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

    def readinto(self, b) -> int:
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

    def __init__(self, inner, ahead: int = 3):
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

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.release()
        if not self.closed:
            self.inner.close()
        super().close()


def open_source(path: Path):
    """(stream, raw): ``stream`` decompresses gzip transparently (``SalvageGzip``: stops cleanly at
    a corruption, see its ``error``), ``raw`` reports progress via ``tell()`` / ``raw_pos``."""
    raw = open_raw(path)
    if isinstance(raw, SalvageGzip):
        return pa.PythonFile(raw, mode="r"), raw
    return raw, raw


def open_raw(path: Path):
    """The file as ``SalvageGzip`` (gzip) or ``pa.OSFile`` (see ``open_source``)."""
    try:
        if is_gzip(path):
            return SalvageGzip(path)
        return pa.OSFile(str(path), "rb")
    except (OSError, pa.ArrowException) as e:
        raise UserError(f"{path}: cannot open: {e}") from None


def open_text_lines(path: Path):
    """Binary file object over the (possibly gzip) file: ``gzip.GzipFile`` or plain file."""
    if is_gzip(path):
        return gzip.open(path, "rb")
    return open(path, "rb")


def file_size(paths: Iterable[Path]) -> int:
    return sum(Path(p).stat().st_size for p in paths)


# ---------------------------------------------------------------- robust numbers
def to_float(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """String column -> (float64 values, non-numeric mask). Fast path: one Arrow cast."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        bad = np.asarray(col.is_null(), dtype=bool)
        return col.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False), bad
    try:
        if col.null_count == 0:
            return col.cast(pa.float64()).to_numpy(zero_copy_only=False), np.zeros(len(col), bool)
    except pa.ArrowInvalid:
        pass
    out = np.zeros(len(col), dtype=np.float64)
    bad = np.zeros(len(col), dtype=bool)
    for i, s in enumerate(col.to_pylist()):
        try:
            out[i] = float(s)
        except (TypeError, ValueError):
            bad[i] = True
    return out, bad


def to_int(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """String column -> (int64 values, non-numeric mask)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_integer(col.type):
        bad = np.asarray(col.is_null(), dtype=bool)
        return col.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False), bad
    try:
        if col.null_count == 0:
            return col.cast(pa.int64()).to_numpy(zero_copy_only=False), np.zeros(len(col), bool)
    except pa.ArrowInvalid:
        pass
    out = np.zeros(len(col), dtype=np.int64)
    bad = np.zeros(len(col), dtype=bool)
    for i, s in enumerate(col.to_pylist()):
        try:
            out[i] = int(s)
        except (TypeError, ValueError):
            try:  # "1.582e15" style
                f = float(s)
                if np.isfinite(f) and abs(f) < 9.2e18:
                    out[i] = int(f)
                else:
                    bad[i] = True
            except (TypeError, ValueError):
                bad[i] = True
    return out, bad


# ---------------------------------------------------------------- validation
def check_price(px: np.ndarray, c: Counters, path, lines) -> np.ndarray:
    """Mask of bad prices (counted)."""
    nf = ~np.isfinite(px)
    npos = ~nf & (px <= 0)
    c.add_mask("non_finite_price", nf, path, lines)
    c.add_mask("non_positive_price", npos, path, lines)
    return nf | npos


def check_size(qty: np.ndarray, c: Counters, path, lines, allow_zero: bool = False) -> np.ndarray:
    nf = ~np.isfinite(qty)
    npos = ~nf & ((qty < 0) if allow_zero else (qty <= 0))
    c.add_mask("non_finite_size", nf, path, lines)
    c.add_mask("non_positive_size", npos, path, lines)
    return nf | npos


def check_quotes(ev: np.ndarray, c: Counters, path, lines) -> np.ndarray:
    """Validate QUOTE rows in ``ev`` (bid px/qty, ask px2/qty2). Returns the bad mask."""
    bad = check_price(ev["px"], c, path, lines)
    bad |= check_price(ev["px2"], c, path, lines)
    bad |= check_size(ev["qty"], c, path, lines)
    bad |= check_size(ev["qty2"], c, path, lines)
    crossed = ~bad & (ev["px"] > ev["px2"])
    c.add_mask("crossed_book", crossed, path, lines)
    locked = ~bad & (ev["px"] == ev["px2"])
    c.add_mask("locked_book", locked, path, lines)
    return bad | crossed


def check_timestamps(ts: np.ndarray, c: Counters, path, lines) -> np.ndarray:
    bad = ts <= 0
    c.add_mask("bad_timestamp", bad, path, lines)
    return bad


# ---------------------------------------------------------------- ordering
def reorder(
    chunks: Iterable[tuple[np.ndarray, np.ndarray, str]],
    window_ns: int,
    c: Counters,
) -> Iterator[np.ndarray]:
    """Sort a nearly-sorted stream by ``local_ts`` with a bounded window.

    A row whose ``local_ts`` is below the running maximum is moved back (stable) and flagged
    ``F_REORDERED`` (counted ``reordered``) -- except book rows (DEPTH / SNAPSHOT / CLEAR), which
    must stay in source (update-id) order: a late one keeps its place and takes the running maximum
    as its ``local_ts`` (also flagged and counted); if it is more than ``window_ns`` below, the stream is
    not recoverable and a ``UserError`` names the file and line. Rows are held back only while a
    later row could still precede them, so memory is bounded by the window.
    """
    pend = np.empty(0, dtype=EVENT_DTYPE)
    hi = np.iinfo(np.int64).min
    for ev, lines, path in chunks:
        name = Path(path).name
        if len(ev) == 0:
            continue
        ts = ev["local_ts"]
        if not _fast.no_late(ts, hi):  # one pass; the common case: nothing is late
            runmax = np.maximum.accumulate(ts)
            prev = np.empty_like(runmax)
            prev[0] = hi
            prev[1:] = runmax[:-1]
            np.maximum(prev, hi, out=prev)
            late = ts < prev
            behind = np.where(late, prev - ts, 0)
            beyond = np.flatnonzero(behind > window_ns)
            if len(beyond):
                i = int(beyond[0])
                raise UserError(
                    f"{path}:{int(lines[i])}: local timestamp goes back by "
                    f"{behind[i] / 1e6:.3f} ms, beyond the reorder window of "
                    f"{window_ns / 1e6:g} ms (sort the file or raise --reorder-window-ms)"
                )
            ev = _fast.copy(ev)
            ev["flags"][late] |= F_REORDERED
            c.add_mask("reordered", late, name, lines)
            # book rows (DEPTH / SNAPSHOT / CLEAR) apply in source order (update ids): a late one is
            # not moved before earlier rows but takes the running maximum local time
            book = late & (ev["kind"] >= DEPTH)
            if book.any():
                ev["local_ts"][book] = prev[book]
            allev = _fast.concat([pend, ev])
            allev = _fast.select(allev, np.argsort(np.ascontiguousarray(allev["local_ts"]), kind="stable"))
            hi = max(hi, int(runmax[-1]))
        else:
            allev = _fast.concat([pend, ev]) if len(pend) else ev
            hi = max(hi, int(ts[-1]))
        cut = int(_fast.search_right(allev["local_ts"], max(hi - window_ns, _I64_MIN)))
        if cut:
            yield allev[:cut]
        pend = allev[cut:]
    if len(pend):
        yield pend


_I64_MIN = int(np.iinfo(np.int64).min)


def merge_sorted(streams: list[Iterator[np.ndarray]]) -> Iterator[np.ndarray]:
    """Merge streams of chunks each sorted by ``local_ts`` into one sorted stream.

    Ties keep the order of ``streams`` (stable). Memory: about one chunk per stream.
    """
    if len(streams) == 1:
        yield from (ch for ch in streams[0] if len(ch))
        return
    its = [iter(s) for s in streams]
    bufs: list[np.ndarray | None] = [None] * len(its)
    alive = [True] * len(its)

    def refill(i: int) -> None:
        while alive[i] and (bufs[i] is None or len(bufs[i]) == 0):
            try:
                bufs[i] = next(its[i])
            except StopIteration:
                alive[i] = False
                bufs[i] = None

    for i in range(len(its)):
        refill(i)
    while any(alive):
        live = [i for i in range(len(its)) if alive[i]]
        bound = min(int(bufs[i]["local_ts"][-1]) for i in live)
        parts = []
        for i in live:
            k = int(_fast.search_right(bufs[i]["local_ts"], bound))
            if k:
                parts.append(bufs[i][:k])
                bufs[i] = bufs[i][k:]
        out = parts[0]
        for p in parts[1:]:  # pairwise stable merges: ties keep the order of ``streams``
            out = _merge2(out, p)
        yield out
        for i in live:
            refill(i)


def _merge2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) and len(b) and a["local_ts"][-1] <= b["local_ts"][0]:
        return _fast.concat([a, b])  # already in order
    if _fast.FAST_LAYOUT:
        return _fast.merge2(a, b)
    out = np.concatenate([a, b])
    return out[np.argsort(np.ascontiguousarray(out["local_ts"]), kind="stable")]


def dedupe_quotes(ev: np.ndarray, prev: np.ndarray | None) -> np.ndarray:
    """Mask of QUOTE rows identical (both clocks and all values) to the row before."""
    if len(ev) == 0:
        return np.zeros(0, bool)
    keys = ("exch_ts", "local_ts", "px", "qty", "px2", "qty2")
    same = np.ones(len(ev), dtype=bool)
    for k in keys:
        a = ev[k]
        p = np.empty_like(a)
        p[1:] = a[:-1]
        if prev is not None:
            p[0] = prev[k]
        same &= a == p
    if prev is None:
        same[0] = False
    return same & (ev["kind"] == QUOTE)


# ---------------------------------------------------------------- CSV
def read_first_line(path: Path) -> bytes:
    """First line of a (possibly gzip) file, without the newline ('' if unreadable/empty)."""
    try:
        with open_text_lines(path) as f:
            return f.readline(1 << 16).rstrip(b"\r\n")
    except (OSError, EOFError, zlib.error):
        return b""


def csv_batches(
    path: Path,
    c: Counters,
    *,
    include: list[str],
    column_names: list[str] | None = None,
    skip_header: bool = False,
    progress: ProgressFn | None = None,
    block_size: int = 1 << 22,
    stream: pa.NativeFile | None = None,
) -> Iterator[tuple[pa.RecordBatch, int]]:
    """Stream a CSV file as Arrow batches of *string* columns ``include``.

    ``column_names`` given: the file has no header (unless ``skip_header``); else the first line is
    the header. Rows with too few fields are counted ``truncated_line``, too many ``malformed_row``
    (noted ``FILE:LINE: ...``); gzip corruption ends the file (``corrupt_gzip``).

    Yields ``(batch, first_line_number)``: row ``i`` of ``batch`` is line ``first_line_number + i``
    of the file. A batch is split where the parser rejected a row, so the line numbers stay exact
    after rejected rows. (Blank lines are dropped by the parser without a trace: lines after one
    are numbered one too low.)
    """
    import pyarrow.csv as pacsv

    name = Path(path).name
    gate = None
    if stream is None:
        raw = open_raw(Path(path))
        gate = ReadGate(raw)  # bounded read-ahead: memory does not grow with the file
        stream = pa.PythonFile(gate, mode="r")
    else:
        raw = None
    header_lines = 0 if (column_names and not skip_header) else 1
    rejected: deque = deque()  # rows the parser rejected, counted by ``_csv_loop`` (see there)

    def on_invalid(row) -> str:
        # May run on an Arrow thread, and blocks ahead of the batch being consumed: only queue.
        rejected.append((row.number, row.actual_columns, row.expected_columns, row.text))
        return "skip"

    read_opts = pacsv.ReadOptions(
        block_size=block_size,
        # Serial parsing: only then does Arrow give the row number of a rejected row (None with
        # threads), which the line numbers of all later rows depend on. Not slower here
        # (benchmarks/data_bench.py csv_convert: same speed; I/O read-ahead stays on its thread).
        use_threads=False,
        column_names=column_names,
        skip_rows=1 if (column_names and skip_header) else 0,
    )
    conv = pacsv.ConvertOptions(
        include_columns=include,
        column_types={n: pa.string() for n in include},
        strings_can_be_null=True,
        null_values=[""],  # "nan"/"NaN" stay strings: counted as non-finite, not as missing
    )
    parse = pacsv.ParseOptions(invalid_row_handler=on_invalid)
    salvage = raw if isinstance(raw, SalvageGzip) else None
    try:
        reader = pacsv.open_csv(stream, read_options=read_opts, parse_options=parse, convert_options=conv)
    except (OSError, pa.ArrowException) as e:
        if gate is not None:
            gate.release()
        msg = str(e).split("\n")[0]
        if salvage is not None and salvage.error and salvage.out_pos == 0:
            msg = salvage.error
        raise UserError(f"{path}:1: cannot read as CSV ({msg})") from None
    try:
        yield from _csv_loop(reader, c, path, name, header_lines, progress, raw, salvage, gate, rejected)
    finally:
        # Wind Arrow's background reader down before anything else happens: left blocked in (or
        # re-entering) ``ReadGate.read`` it would call into Python during interpreter shutdown,
        # which aborts the process (e.g. after a UserError ends the convert early).
        if gate is not None:
            gate.stop()
        try:
            reader.close()
        except (OSError, pa.ArrowException):
            pass
    stream.close()


def _csv_loop(reader, c, path, name, header_lines, progress, raw, salvage, gate, rejected):
    """Batches of ``reader`` with the line number of their first row (see ``csv_batches``).

    ``rejected`` receives ``(row_number, actual_columns, expected_columns, text)`` from the parser's
    invalid-row handler; ``row_number`` is the 1-based line in the file (header included). They
    are counted here, on the consumer's thread, and a batch is cut into slices of consecutive
    lines at every rejected row inside it.
    """
    pos = 0
    line = header_lines + 1  # line of the next row not yet yielded nor rejected
    skip: deque[int] = deque()  # lines of rejected rows not yet passed, ascending

    def take_rejected() -> None:
        while rejected:
            num, got, want, text = rejected.popleft()
            key = "truncated_line" if got < want else "malformed_row"
            txt = (text or "")[:60]
            if num is None:  # not known (threaded parsing): count it, but it cannot be placed
                c.add(key, 1, f"{name}: {got} fields: {txt!r}")
                continue
            # (lobster._check_pairing / _find_line read the "N fields: 'text'" end of this note)
            c.add(key, 1, f"{name}:{int(num)}: {got} fields: {txt!r}")
            skip.append(int(num))

    def pass_rejected() -> None:
        nonlocal line
        while skip and skip[0] <= line:
            if skip.popleft() == line:
                line += 1

    while True:
        try:
            batch = reader.read_next_batch()
            if gate is not None:
                gate.took()
        except StopIteration:
            break
        except pa.ArrowInvalid as e:
            take_rejected()
            pass_rejected()
            msg = str(e).split("\n")[0]
            raise UserError(f"{path}:{line}: unreadable CSV ({msg})") from None
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as e:
            take_rejected()
            pass_rejected()
            c.add("corrupt_gzip", 1, f"{name}:~{line}: {e}; rest of file skipped")
            skip.clear()
            break
        take_rejected()  # every rejected row up to the end of ``batch`` has been reported by now
        if progress is not None and raw is not None:
            try:
                now = raw.raw_pos if salvage is not None else raw.tell()
                progress(now - pos)
                pos = now
            except (OSError, pa.ArrowException):
                pass
        n, off = batch.num_rows, 0
        while off < n:
            pass_rejected()
            k = n - off if not skip else min(n - off, skip[0] - line)
            yield (batch if k == n else batch.slice(off, k)), line
            off += k
            line += k
        pass_rejected()
    take_rejected()
    pass_rejected()
    if salvage is not None and salvage.error:
        c.add("corrupt_gzip", 1, f"{name}:~{line}: {salvage.error}; rest of file skipped")


class RecentIds:
    """Duplicate detection on ids: an id seen earlier in this chunk or in the previous chunk."""

    def __init__(self):
        self.prev = np.empty(0, dtype=np.int64)

    def dup(self, ids: np.ndarray, valid: np.ndarray) -> np.ndarray:
        out = np.zeros(len(ids), dtype=bool)
        idx = np.flatnonzero(valid & (ids != 0))
        if len(idx) == 0:
            return out
        v = ids[idx]
        if len(v) > 1 and np.all(v[1:] > v[:-1]):  # the common case: strictly increasing ids
            d = np.zeros(len(v), dtype=bool)
        else:
            _, first = np.unique(v, return_index=True)
            d = np.ones(len(v), dtype=bool)
            d[first] = False
        if len(self.prev):
            if v.min() <= self.prev.max():
                d |= np.isin(v, self.prev)
        out[idx] = d
        self.prev = v
        return out
