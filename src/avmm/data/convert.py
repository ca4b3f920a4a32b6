"""Conversion pipeline: detect formats, read, validate, reorder, merge, write the store.

``convert(sources, out, fmt="auto", symbol=None, progress=None) -> ConvertSummary``

Per source stream (a Binance websocket capture -- all its files chained so the book state carries
over --, one tardis/archive file, one LOBSTER pair): reader -> ``_derive`` (QUOTE rows from the depth
book for files without quotes of their own, ``book.derive_quotes``) -> ``reorder`` (bounded window)
-> ``merge_sorted`` over all streams -> ``write_events``. Memory is bounded by the chunk sizes and the
reorder window, not by the input size. Every skipped or repaired record is counted by kind in the
summary and stored in the metadata under ``counters`` (see ``issues.ISSUE_HELP``).
"""

from __future__ import annotations

import itertools
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avmm.data.files import file_size, prefetch
from avmm.data.issues import ISSUE_HELP, Counters, ProgressFn
from avmm.data.ordering import merge_sorted, reorder
from avmm.data.readers import binance_archive, binance_ws, lobster, tardis
from avmm.data.store import write_events
from avmm.errors import UserError
from avmm.events import DEPTH, KIND_NAMES, QUOTE
from avmm.outputs import check_output

FORMATS = ("auto", "binance-ws", "binance-archive", "tardis", "lobster")
DEFAULT_REORDER_WINDOW_MS = 1000.0
MAX_REORDER_WINDOW_MS = 3_600_000.0  # one hour: rows held back in memory for that long
CONVERT_VERSION = 1


@dataclass
class ConvertSummary:
    sources: list[str]
    out: str
    formats: list[str]
    symbol: str | None
    rows: int
    kinds: dict[str, int]
    issues: dict[str, int]
    notes: dict[str, list[str]]
    seconds: float
    events_per_s: float
    bytes_in: int
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "sources": self.sources,
            "out": self.out,
            "formats": self.formats,
            "symbol": self.symbol,
            "rows": self.rows,
            "kinds": self.kinds,
            "issues": self.issues,
            "notes": self.notes,
            "seconds": self.seconds,
            "events_per_s": self.events_per_s,
            "bytes_in": self.bytes_in,
        }

    def lines(self) -> list[str]:
        out = [
            f"wrote {self.rows:,} events to {self.out} ({', '.join(self.formats)}, symbol {self.symbol})"
            f" in {self.seconds:.2f} s, {self.events_per_s / 1e6:.2f} M events/s",
            "  by kind: " + ", ".join(f"{k} {v:,}" for k, v in self.kinds.items() if v),
        ]
        if not self.issues:
            out.append("  no skipped or repaired records")
        else:
            out.append("  skipped / repaired / noted records by kind:")
            for k, v in sorted(self.issues.items()):
                help_ = ISSUE_HELP.get(k, "")
                ex = self.notes.get(k) or []
                where = f"  e.g. {'; '.join(ex[:3])}" if ex else ""
                out.append(f"    {k:<20} {v:>10,}  {help_}{where}")
        return out


def detect_format(path: Path) -> str | None:
    path = Path(path)
    if binance_archive.looks_like(path):
        return "binance-archive"
    if lobster.looks_like(path):
        return "lobster"
    if tardis.detect_kind(path) is not None:
        return "tardis"
    if binance_ws.looks_like(path):
        return "binance-ws"
    return None


def _expand(sources: list[Path]) -> list[Path]:
    files: list[Path] = []
    for s in sources:
        s = Path(s)
        if s.is_dir():
            for f in sorted(s.iterdir()):
                if f.is_file() and not f.name.startswith(".") and detect_format(f) is not None:
                    files.append(f)
        elif s.is_file():
            files.append(s)
        else:
            raise UserError(f"{s}: no such file or directory")
    if not files:
        raise UserError("no input files (" + ", ".join(str(s) for s in sources) + ")")
    return files


def _guard(it: Iterator, path: Path) -> Iterator:
    """Turn an unexpected reader exception into a one-line user error naming the file (the
    readers count or report what they know; this is the net under them)."""
    try:
        yield from it
    except UserError:
        raise
    except MemoryError:
        raise UserError(f"{path}: cannot convert: out of memory (a record or line too large?)") from None
    except (
        ValueError,
        OSError,
        KeyError,
        IndexError,
        TypeError,
        EOFError,
        ArithmeticError,
        zlib.error,
        zipfile.BadZipFile,
    ) as e:
        msg = " ".join(str(e).split())[:200]
        raise UserError(f"{path}: cannot convert ({type(e).__name__}: {msg})") from None


def _derive(chunks: Iterator, c: Counters, enabled: bool = True) -> Iterator:
    """A reader's ``(events, lines, path)`` chunks, with QUOTE rows derived from the depth book for
    the files that have depth rows but no quotes of their own (``book.derive_quotes``). Passes
    chunks through untouched, without loading ``book`` (numba), until such a file shows up; and
    always when not ``enabled`` (another source of the same convert carries the quotes)."""
    if not enabled:
        yield from chunks
        return
    quoting: set[str] = set()  # files with quotes of their own
    skipped = False  # depth rows went by unapplied (the book is unknown until a CLEAR)
    chunks = iter(chunks)
    for ev, lines, path in chunks:
        kind = ev["kind"]
        if path in quoting or np.any(kind == QUOTE):
            quoting.add(path)
        elif np.any(kind >= DEPTH):  # DEPTH, SNAPSHOT, CLEAR
            from avmm.data import book

            yield from book.derive_quotes(itertools.chain([(ev, lines, path)], chunks), c, quoting, skipped)
            return
        skipped = skipped or bool(np.any(kind >= DEPTH))
        yield ev, lines, path


def _stream(it: Iterator, path: Path, window: int, c: Counters, derive: bool = True) -> Iterator[np.ndarray]:
    """One source stream, sorted by ``local_ts``: reader -> derived quotes -> reorder window."""
    return reorder(_derive(_guard(it, path), c, derive), window, c)


def carries_quotes(ff: str, f: Path) -> bool:
    """Whether the file is known, before reading it, to hold best bid/ask quotes of its own."""
    if ff == "lobster":
        return True
    if ff == "tardis":
        return tardis.detect_kind(f) in ("quotes", "book_snapshot")
    if ff == "binance-archive":
        info = binance_archive.parse_name(f)
        return info is not None and info["kind"] == "bookTicker"
    return False


StreamFactory = Callable[[Counters, ProgressFn | None], Iterator[np.ndarray]]


def _tardis_stream(f: Path, symbol: str | None, window: int, derive: bool = True) -> StreamFactory:
    def make(c: Counters, progress: ProgressFn | None) -> Iterator[np.ndarray]:
        return _stream(tardis.read_tardis(f, c, symbol, progress), f, window, c, derive)

    return make


def _inputs(
    sources: list[Path], out: Path, fmt: str, reorder_window_ms: float
) -> tuple[list[Path], dict[str, list[Path]]]:
    """The input files, and the same by format, after checking the arguments."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if not (0 <= reorder_window_ms <= MAX_REORDER_WINDOW_MS):
        raise UserError(
            f"--reorder-window-ms must be between 0 and {MAX_REORDER_WINDOW_MS:.0f} (one hour), "
            f"not {reorder_window_ms:g}"
        )
    files = _expand([Path(s) for s in sources])
    check_output(out, "-o", files)
    by_fmt: dict[str, list[Path]] = {}
    for f in files:
        ff = fmt if fmt != "auto" else detect_format(f)
        if ff is None:
            raise UserError(f"{f}:1: cannot detect the format (use --format)")
        by_fmt.setdefault(ff, []).append(f)
    return files, by_fmt


def _streams(
    by_fmt: dict[str, list[Path]], c: Counters, symbol: str | None, progress: ProgressFn | None, window: int
) -> tuple[list[Iterator[np.ndarray]], list[str]]:
    """One sorted stream per source (a Binance capture: all its files), and the symbols that the
    file names tell."""
    # Quotes are derived from a depth book only when no source of this convert carries quotes of its
    # own: a tardis quotes file converted with its incremental_book_L2 file gives one quote stream.
    quoting = [f for ff, fs in by_fmt.items() for f in fs if carries_quotes(ff, f)]

    def derive(f: Path) -> bool:
        return not any(g != f for g in quoting)

    streams: list[Iterator[np.ndarray]] = []
    symbols: list[str] = []
    for ff, fs in by_fmt.items():
        if ff == "binance-ws":
            streams.append(_stream(binance_ws.read_binance_ws(fs, c, symbol, progress), fs[0], window, c, not quoting))
        elif ff == "tardis":
            for f in fs:  # one worker thread per file (see ``prefetch``)
                streams.append(prefetch(_tardis_stream(f, symbol, window, derive(f)), c, progress))
        elif ff == "binance-archive":
            for f in fs:
                info = binance_archive.parse_name(f)
                if info:
                    symbols.append(info["symbol"])
                streams.append(_stream(binance_archive.read_binance_archive(f, c, symbol, progress), f, window, c))
        elif ff == "lobster":
            for msg, ob in lobster.pair_files(fs):
                info = lobster.parse_name(msg)
                if info:  # (always: ``pair_files`` checked the names)
                    symbols.append(info["ticker"])
                streams.append(_stream(lobster.read_lobster(msg, ob, c, progress), msg, window, c))
    return streams, symbols


def convert(
    sources: list[Path],
    out: Path,
    fmt: str = "auto",
    symbol: str | None = None,
    progress: ProgressFn | None = None,
    reorder_window_ms: float = DEFAULT_REORDER_WINDOW_MS,
) -> ConvertSummary:
    """Convert ``sources`` to the event store ``out``.

    Parameters
    ----------
    sources : list of Path
        Input files, or folders (their files of a recognised format, by name order).
    out : Path
        The event store to write (``.parquet``); written to a temporary file and renamed.
    fmt : str
        ``"auto"`` (detect each file's format) or one of ``binance-ws``, ``binance-archive``,
        ``tardis``, ``lobster`` for all files.
    symbol : str or None
        The symbol to keep (rows of other symbols are counted ``other_symbol``); None: the first
        one seen.
    progress : callable or None
        Called with the number of input bytes consumed since the last call (the total,
        ``summary.bytes_in``, is known up front from the file sizes: see ``total_bytes``).
    reorder_window_ms : float
        Rows whose local timestamp goes back by up to this much are moved into order (counted
        ``reordered``); further back is an error.

    Returns
    -------
    ConvertSummary
        Rows written, counts by kind, skipped / repaired records by kind with examples, timing;
        ``meta`` is the metadata stored with the events.

    Raises
    ------
    UserError
        Bad arguments, a missing or unrecognised input, or an input that cannot be converted.
    """
    out = Path(out)
    files, by_fmt = _inputs(sources, out, fmt, reorder_window_ms)
    c = Counters()
    streams, symbols = _streams(by_fmt, c, symbol, progress, int(reorder_window_ms * 1e6))
    kinds = np.zeros(256, dtype=np.int64)
    meta: dict[str, Any] = {
        "symbol": symbol.upper() if symbol else None,
        "source": "+".join(by_fmt),
        "sources": [f.name for f in files],
        "market": market_of(by_fmt),
        "tick_size": None,
        "lot_size": None,
        "convert_version": CONVERT_VERSION,
        "reorder_window_ms": reorder_window_ms,
        "counters": c.issues,
    }

    def counted() -> Iterator[np.ndarray]:
        for ch in merge_sorted(streams):
            kinds[:] += np.bincount(ch["kind"], minlength=256)
            yield ch
        if meta["symbol"] is None:
            meta["symbol"] = _symbol_of(by_fmt, symbols)
        meta["kinds"] = {KIND_NAMES[k]: int(kinds[k]) for k in KIND_NAMES}

    t0 = time.perf_counter()
    rows = write_events(out, counted(), meta, flag="-o", inputs=sources)
    dt = time.perf_counter() - t0
    return ConvertSummary(
        sources=[str(f) for f in files],
        out=str(out),
        formats=list(by_fmt),
        symbol=meta["symbol"],
        rows=rows,
        kinds={KIND_NAMES[k]: int(kinds[k]) for k in KIND_NAMES},
        issues=dict(c.issues),
        notes={k: list(v) for k, v in c.notes.items()},
        seconds=dt,
        events_per_s=rows / dt if dt > 0 else 0.0,
        bytes_in=file_size(files),
        meta=meta,
    )


def total_bytes(sources: list[Path]) -> int:
    """Total input size (for a progress bar)."""
    try:
        return file_size(_expand([Path(s) for s in sources]))
    except UserError:
        return 0


def _file_market(ff: str, f: Path) -> str | None:
    if ff == "binance-ws":
        hm = binance_ws.head_market(f)
        return None if hm is None else ("perpetual" if hm[0] == binance_ws.USDM else "spot")
    if ff == "binance-archive":
        return binance_archive.market_of(f)
    if ff == "tardis":
        return tardis.market_of(f)
    return "spot" if ff == "lobster" else None


def market_of(by_fmt: dict[str, list[Path]]) -> str | None:
    """``spot`` or ``perpetual``: the market of the inputs (stored in the metadata as ``market``;
    the backtest's ``market = "auto"`` reads it); None when the files do not tell or disagree."""
    found = {_file_market(ff, f) for ff, fs in by_fmt.items() for f in fs}
    return found.pop() if len(found) == 1 else None


def _symbol_of(by_fmt: dict[str, list[Path]], symbols: list[str]) -> str | None:
    if symbols:
        return symbols[0]
    for ff, fs in by_fmt.items():
        if ff == "tardis":
            from avmm.data.csv import read_first_line
            from avmm.data.files import open_text_lines

            try:
                with open_text_lines(fs[0]) as fh0:
                    fh0.readline()
                    row = fh0.readline().decode("utf-8", "replace").split(",")
                hdr = read_first_line(fs[0]).decode().split(",")
                return row[hdr.index("symbol")].upper()
            except (OSError, ValueError, IndexError, EOFError):
                return None
        if ff == "binance-ws":
            import re

            for f in fs:
                m = re.search(r"([a-z0-9]+)@", (f.name + " ").lower())
                if m:
                    return m.group(1).upper()
                try:
                    from avmm.data.files import open_text_lines

                    with open_text_lines(f) as fh:
                        for _ in range(50):
                            line = fh.readline()
                            mb = re.search(rb'"s":"([A-Za-z0-9]+)"', line)
                            if mb:
                                return mb.group(1).decode().upper()
                except (OSError, EOFError):
                    pass
    return None
