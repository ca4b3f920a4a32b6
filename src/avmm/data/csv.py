"""Streaming CSV files as Arrow batches of string columns, with exact ``file:line`` for every row
the parser rejects (counted, never dropped silently).
"""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pyarrow as pa

from avmm.data.files import ReadGate, SalvageGzip, open_raw, open_text_lines
from avmm.data.issues import Counters, ProgressFn
from avmm.errors import UserError

if TYPE_CHECKING:
    import pyarrow.csv as pacsv

_Rejected = tuple[int | None, int, int, str | None]  # (row number, fields, fields expected, text)


def read_first_line(path: Path) -> bytes:
    """First line of a (possibly gzip) file, without the newline ('' if unreadable/empty)."""
    try:
        with open_text_lines(path) as f:
            return _first_line(f)
    except (OSError, EOFError, zlib.error):
        return b""


def _first_line(f: io.BufferedIOBase | IO[bytes]) -> bytes:
    return f.readline(1 << 16).rstrip(b"\r\n")


def header_names(first: bytes) -> list[str]:
    """The column names of a header line (unquoted, stripped)."""
    return [h.strip().strip('"') for h in first.decode("utf-8", "replace").split(",")]


@dataclass
class CsvSource:
    """A CSV file opened by ``open_csv``: its first line (a header or the first row) and the stream
    ``csv_batches`` reads."""

    path: Path
    first: bytes  # without the newline; b"" when empty or unreadable
    stream: pa.NativeFile | None  # a zip archive's CSV member; None: ``csv_batches`` opens ``path``
    member: str | None = None  # the name of that member


@contextmanager
def open_csv(path: Path) -> Iterator[CsvSource]:
    """Open the CSV file ``path`` -- plain, gzip, or (``.zip``) the first CSV member of a zip
    archive -- and read its first line. The zip member is closed when the block ends.

    Raises
    ------
    UserError
        A file that cannot be opened; a zip archive that is corrupt or holds no CSV file.
    """
    path = Path(path)
    if path.suffix != ".zip":
        try:
            with open_text_lines(path) as f:
                first = _first_line(f)
        except (gzip.BadGzipFile, EOFError, zlib.error):
            first = b""  # (``csv_batches`` reports the damage)
        except OSError as e:
            raise UserError(f"{path}: cannot open: {e}") from None
        yield CsvSource(path, first, None)
        return
    try:
        zf = zipfile.ZipFile(path)
        members = [n for n in zf.namelist() if n.endswith(".csv")]
        if not members:
            raise UserError(f"{path}: zip archive without a CSV file")
        with zf.open(members[0]) as f:
            first = _first_line(f)
        fh = zf.open(members[0])
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, RuntimeError, NotImplementedError, ValueError) as e:
        # (RuntimeError: an encrypted member; NotImplementedError: an unknown compression method)
        raise UserError(f"{path}: corrupt or unreadable zip archive ({_clean(str(e))})") from None
    try:
        yield CsvSource(path, first, pa.PythonFile(fh, mode="r"), members[0])
    finally:
        fh.close()


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
    rejected: deque[_Rejected] = deque()  # rows the parser rejected, counted by ``_LineNumbers``

    def on_invalid(row: pacsv.InvalidRow) -> str:
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
    _quiet_invalid_rows()
    try:
        reader = pacsv.open_csv(stream, read_options=read_opts, parse_options=parse, convert_options=conv)
    except (OSError, pa.ArrowException, EOFError, zlib.error, zipfile.BadZipFile) as e:
        if gate is not None:
            gate.release()
        msg = _clean(str(e).split("\n")[0])
        if salvage is not None and salvage.error and salvage.out_pos == 0:
            msg = salvage.error
        elif msg.startswith("Empty CSV file") and not (salvage is not None and salvage.error):
            c.add("empty_file", 1, f"{name}:1: no data rows")
            return
        raise UserError(f"{path}:1: cannot read as CSV ({msg})") from None
    try:
        yield from _csv_loop(reader, c, path, name, header_lines, progress, raw, gate, rejected)
    finally:
        # Wind Arrow's background reader down before anything else happens: left blocked in (or
        # re-entering) ``ReadGate.read`` it would call into Python during interpreter shutdown,
        # which aborts the process (e.g. after a UserError ends the convert early).
        if gate is not None:
            gate.stop()
        with suppress(OSError, pa.ArrowException):
            reader.close()
    stream.close()


def _clean(msg: str, limit: int = 120) -> str:
    """An error message from a parser, fit for one line: printable ASCII, at most ``limit`` chars
    (the parser quotes the offending row, which may be binary)."""
    out = "".join(ch if " " <= ch <= "~" else "?" for ch in " ".join(msg.split()))
    return out if len(out) <= limit else out[: limit - 3] + "..."


def _quiet_invalid_rows() -> None:
    """Keep Arrow's report of a rejected row that is not UTF-8 off stderr.

    Arrow decodes a rejected row's text before it calls our handler; for bytes that are not
    UTF-8 that decoding fails inside Arrow, which prints it as an "Exception ignored" traceback
    (``sys.unraisablehook``) and then fails the read, which the reader reports as one line. This
    hook drops exactly that report and passes every other one on.
    """
    import sys

    prev = sys.unraisablehook
    if getattr(prev, "_avmm_csv", False):
        return

    def hook(u: sys.UnraisableHookArgs) -> None:
        if isinstance(u.exc_value, UnicodeDecodeError) and getattr(u.object, "__name__", "") == "on_invalid":
            return
        prev(u)

    hook._avmm_csv = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook


class _LineNumbers:
    """The file line of each row of a CSV reader's batches, past the rows the parser rejected.

    ``rejected`` receives ``(row_number, actual_columns, expected_columns, text)`` from the parser's
    invalid-row handler; ``row_number`` is the 1-based line in the file (header included). They
    are counted here, on the consumer's thread, and a batch is cut into slices of consecutive
    lines at every rejected row inside it.
    """

    def __init__(self, c: Counters, name: str, header_lines: int, rejected: deque[_Rejected]) -> None:
        self.c = c
        self.name = name
        self.rejected = rejected
        self.line = header_lines + 1  # line of the next row not yet yielded nor rejected
        self.skip: deque[int] = deque()  # lines of rejected rows not yet passed, ascending
        self.seen_rejected = False

    def take_rejected(self) -> None:
        """Count the rows rejected so far."""
        c, name = self.c, self.name
        while self.rejected:
            self.seen_rejected = True
            num, got, want, text = self.rejected.popleft()
            key = "truncated_line" if got < want else "malformed_row"
            txt = (text or "")[:60]
            if num is None:  # not known (threaded parsing): count it, but it cannot be placed
                c.add(key, 1, f"{name}: {got} fields: {txt!r}")
                continue
            # (lobster._check_pairing / _find_line read the "N fields: 'text'" end of this note)
            c.add(key, 1, f"{name}:{int(num)}: {got} fields: {txt!r}")
            self.skip.append(int(num))

    def pass_rejected(self) -> None:
        """Move ``line`` past the rejected rows at it."""
        while self.skip and self.skip[0] <= self.line:
            if self.skip.popleft() == self.line:
                self.line += 1

    def settle(self) -> None:
        self.take_rejected()
        self.pass_rejected()

    def slices(self, batch: pa.RecordBatch) -> Iterator[tuple[pa.RecordBatch, int]]:
        """``batch`` in slices of consecutive lines, with the line of their first row."""
        n, off = batch.num_rows, 0
        while off < n:
            self.pass_rejected()
            k = n - off if not self.skip else min(n - off, self.skip[0] - self.line)
            yield (batch if k == n else batch.slice(off, k)), self.line
            off += k
            self.line += k
        self.pass_rejected()


def _advance(progress: ProgressFn, raw: SalvageGzip | pa.NativeFile, pos: int) -> int:
    """Report the bytes of ``raw`` read since ``pos``; returns the new position."""
    try:
        now = raw.raw_pos if isinstance(raw, SalvageGzip) else raw.tell()
        progress(now - pos)
        return now
    except (OSError, pa.ArrowException):
        return pos


def _csv_loop(
    reader: pacsv.CSVStreamingReader,
    c: Counters,
    path: Path | str,
    name: str,
    header_lines: int,
    progress: ProgressFn | None,
    raw: SalvageGzip | pa.NativeFile | None,
    gate: ReadGate | None,
    rejected: deque[_Rejected],
) -> Iterator[tuple[pa.RecordBatch, int]]:
    """Batches of ``reader`` with the line number of their first row (see ``csv_batches`` and
    ``_LineNumbers``)."""
    ln = _LineNumbers(c, name, header_lines, rejected)
    pos = 0
    while True:
        try:
            batch = reader.read_next_batch()
            if gate is not None:
                gate.took()
        except StopIteration:
            break
        except pa.ArrowInvalid as e:
            ln.settle()
            msg = _clean(str(e).split("\n")[0])
            raise UserError(f"{path}:{ln.line}: unreadable CSV ({msg})") from None
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as e:
            ln.settle()
            key = "corrupt_gzip" if raw is not None else "corrupt_zip"
            c.add(key, 1, f"{name}:~{ln.line}: {_clean(str(e))}; rest of file skipped")
            ln.skip.clear()
            break
        ln.take_rejected()  # every rejected row up to the end of ``batch`` has been reported by now
        if progress is not None and raw is not None:
            pos = _advance(progress, raw, pos)
        yield from ln.slices(batch)
    ln.settle()
    if isinstance(raw, SalvageGzip) and raw.error:
        c.add("corrupt_gzip", 1, f"{name}:~{ln.line}: {raw.error}; rest of file skipped")
    elif ln.line == header_lines + 1 and not ln.seen_rejected:
        c.add("empty_file", 1, f"{name}:{ln.line}: no data rows")
