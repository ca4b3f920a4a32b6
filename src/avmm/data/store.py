"""The event store: one Parquet file of ``EVENT_DTYPE`` rows sorted by ``local_ts``.

* ``write_events(path, chunks, meta)`` streams chunks into row groups of about ``ROW_GROUP_ROWS``
  rows (memory: one row group), then stores ``meta`` as JSON under the key ``avmm`` of the Parquet
  key-value metadata. ``meta`` is serialised *after* the last chunk, so a generator feeding the
  chunks may still fill in its counters; ``tick_size`` / ``lot_size`` are inferred from the data
  when missing or None.
* ``iter_columns(path, chunk_events)`` yields ``EventColumns`` (one contiguous NumPy array per
  field, zero-copy from Arrow) -- the fast path for the backtester.
* ``iter_events`` / ``read_events`` give structured ``EVENT_DTYPE`` arrays (convenience).

Columns are stored uncompressed without dictionary encoding: the store is read far more often
than written, and plain encoding decodes at memory speed (see benchmarks/data_bench.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from avmm.data import _fast
from avmm.errors import UserError
from avmm.events import ARROW_SCHEMA, DEPTH, EVENT_DTYPE, QUOTE, SNAPSHOT, TRADE
from avmm.outputs import atomic_output

SCHEMA_VERSION = 1
META_KEY = b"avmm"
ROW_GROUP_ROWS = 1 << 20
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1


class EventColumns(NamedTuple):
    """One chunk of the store as column arrays (fields exactly ``EVENT_DTYPE.names``)."""

    exch_ts: np.ndarray
    local_ts: np.ndarray
    seq: np.ndarray
    px: np.ndarray
    qty: np.ndarray
    px2: np.ndarray
    qty2: np.ndarray
    kind: np.ndarray
    side: np.ndarray
    flags: np.ndarray
    level: np.ndarray


assert EventColumns._fields == EVENT_DTYPE.names


# ---------------------------------------------------------------- grid inference
_GRID = sorted({m * 10.0**e for e in range(-10, 5) for m in (1.0, 2.0, 2.5, 5.0)}, reverse=True)


class GridSampler:
    """Collects a bounded sample of values and infers the coarsest grid they all lie on."""

    def __init__(self, cap: int = 200_000):
        self.cap = cap
        self.parts: list[np.ndarray] = []
        self.n = 0

    def add(self, v: np.ndarray) -> None:
        if self.n >= self.cap:
            return
        if len(v) > 20_000:  # a strided sample per chunk is plenty to find the grid
            v = v[:: len(v) // 20_000]
        self._add_sample(v)

    def add_where(self, v: np.ndarray, idx: np.ndarray) -> None:
        """``add(v[idx])`` for an index array, gathering only the sampled rows."""
        if self.n >= self.cap:
            return
        if len(idx) > 20_000:
            idx = idx[:: len(idx) // 20_000]
        self._add_sample(v[idx])

    def _add_sample(self, v: np.ndarray) -> None:
        v = v[np.isfinite(v) & (v > 0)]
        if len(v) == 0:
            return
        v = np.unique(v[: self.cap - self.n])
        self.parts.append(v)
        self.n += len(v)

    def infer(self) -> float | None:
        if not self.parts:
            return None
        v = np.unique(np.concatenate(self.parts))
        return infer_grid(v)


def infer_grid(v: np.ndarray) -> float | None:
    """The largest of 1, 2, 2.5, 5 x 10^e (1e-10 .. 5e4) dividing every value, else None."""
    v = np.asarray(v, dtype=np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    if len(v) == 0:
        return None
    for g in _GRID:
        if g > v.min() * 1.000001:
            continue
        with np.errstate(over="ignore", invalid="ignore"):  # huge prices: inf ratios are not on the grid
            r = v / g
            on_grid = bool(np.all(np.abs(r - np.rint(r)) <= 1e-6 + 1e-12 * r))
        if on_grid:
            return float(f"{g:.12g}")
    return None


class GridInference:
    """Tick size from quoted / book prices (trade prices only when there are none: trades may
    print between ticks, e.g. mid-point executions); lot size from trade sizes (else quoted)."""

    def __init__(self) -> None:
        self.tick_book, self.tick_trade = GridSampler(), GridSampler()
        self.lot_trade, self.lot_book = GridSampler(), GridSampler()

    def add(self, kind: np.ndarray, px: np.ndarray, qty: np.ndarray, px2: np.ndarray, qty2: np.ndarray) -> None:
        kind = np.ascontiguousarray(kind)
        q = np.flatnonzero(kind == QUOTE)
        b = np.flatnonzero((kind == DEPTH) | (kind == SNAPSHOT))
        t = np.flatnonzero(kind == TRADE)
        if len(q):
            self.tick_book.add_where(px, q)
            self.tick_book.add_where(px2, q)
            self.lot_book.add_where(qty, q)
            self.lot_book.add_where(qty2, q)
        if len(b):
            self.tick_book.add_where(px, b)
        if len(t):
            self.tick_trade.add_where(px, t)
            self.lot_trade.add_where(qty, t)

    def tick(self) -> float | None:
        return self.tick_book.infer() or self.tick_trade.infer()

    def lot(self) -> float | None:
        return self.lot_trade.infer() or self.lot_book.infer()


# ---------------------------------------------------------------- write
_NAMES: tuple[str, ...] = tuple(EVENT_DTYPE.names or ())


def _to_table(ev: np.ndarray) -> pa.Table:
    arrays = [pa.array(np.ascontiguousarray(ev[name])) for name in _NAMES]
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)


def _check_chunk(ch: np.ndarray, last_ts: int) -> None:
    """A chunk must be ``EVENT_DTYPE`` rows sorted by ``local_ts``, from ``last_ts`` on."""
    if ch.dtype != EVENT_DTYPE:
        raise TypeError(f"write_events: chunk dtype {ch.dtype} is not EVENT_DTYPE")
    lt = ch["local_ts"]
    if lt[0] < last_ts or (len(lt) > 1 and np.any(lt[1:] < lt[:-1])):
        raise ValueError("write_events: chunks are not sorted by local_ts")


class _RowGroups:
    """Chunks buffered into row groups of about ``ROW_GROUP_ROWS`` rows (or the chunk size, if
    chunks are larger)."""

    def __init__(self, writer: pq.ParquetWriter) -> None:
        self.writer = writer
        self.buf: list[np.ndarray] = []
        self.nbuf = 0

    def add(self, ch: np.ndarray) -> None:
        if self.nbuf + len(ch) > ROW_GROUP_ROWS and self.nbuf:
            self.flush()
        self.buf.append(ch)
        self.nbuf += len(ch)
        if self.nbuf >= ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.buf:
            return
        arrays = [pa.array(a) for a in _fast.unpack(self.buf)]  # one pass, no concatenation
        self.writer.write_table(pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA), row_group_size=max(self.nbuf, 1))
        self.buf, self.nbuf = [], 0


def _stored_meta(
    meta: dict[str, Any], grid: GridInference, rows: int, first_ts: int | None, last_ts: int
) -> dict[str, Any]:
    """``meta`` completed: symbol, source, tick / lot size (inferred when missing), row count, span."""
    m = dict(meta)
    m.setdefault("symbol", None)
    m.setdefault("source", None)
    if m.get("tick_size") is None:
        m["tick_size"] = grid.tick()
    if m.get("lot_size") is None:
        m["lot_size"] = grid.lot()
    m["schema_version"] = SCHEMA_VERSION
    m["rows"] = rows
    m["start_ns"] = first_ts
    m["end_ns"] = last_ts if rows else None
    return m


def write_events(
    path: Path | str,
    chunks: Iterable[np.ndarray],
    meta: dict[str, Any],
    *,
    flag: str = "",
    inputs: Sequence[Path | str] = (),
) -> int:
    """Write ``EVENT_DTYPE`` chunks (sorted by ``local_ts``) to a Parquet event store.

    The file is written through ``avmm.outputs.atomic_output``: to a temporary file beside ``path``,
    renamed when complete (a device such as ``/dev/null`` is written in place, never replaced), so
    ``path`` is either the complete store or untouched, whatever stops the write.

    Parameters
    ----------
    path : Path or str
        The store to write (its folder is created if missing).
    chunks : iterable of numpy.ndarray
        ``EVENT_DTYPE`` arrays, each sorted by ``local_ts`` and not before the previous one; empty
        chunks are skipped. May be a generator that fills in ``meta`` as it goes: ``meta`` is
        read after the last chunk.
    meta : dict
        Metadata stored as JSON under the key ``avmm`` (``symbol``, ``source``, ``counters``, ...);
        ``tick_size`` / ``lot_size`` missing or None are inferred from the data. ``rows``,
        ``start_ns``, ``end_ns`` and ``schema_version`` are added.
    flag : str
        How the user named ``path`` (``"-o"``), for messages.
    inputs : sequence of paths
        The files being converted: ``path`` must not be one of them.

    Returns
    -------
    int
        The number of rows written.

    Raises
    ------
    TypeError
        A chunk is not an ``EVENT_DTYPE`` array.
    ValueError
        The chunks are not sorted by ``local_ts``.
    UserError
        ``path`` cannot be written (a folder, a read-only folder, a full disk): one line, and nothing
        is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, flag, inputs) as tmp:
        return _write(tmp, chunks, meta)


def _write(tmp: Path, chunks: Iterable[np.ndarray], meta: dict[str, Any]) -> int:
    """``write_events`` into ``tmp`` (the caller renames it, or removes it on failure)."""
    grid = GridInference()
    rows = 0
    last_ts = int(np.iinfo(np.int64).min)
    first_ts = None
    writer = pq.ParquetWriter(
        str(tmp),
        ARROW_SCHEMA,
        compression="none",
        use_dictionary=False,
        write_statistics=["local_ts"],
        data_page_size=1 << 20,
        write_page_checksum=True,  # CRC32 per page, verified on read: a corrupt store is an error
    )
    try:
        groups = _RowGroups(writer)
        for ch in chunks:
            if len(ch) == 0:
                continue
            _check_chunk(ch, last_ts)
            if first_ts is None:
                first_ts = int(ch["local_ts"][0])
            last_ts = int(ch["local_ts"][-1])
            grid.add(ch["kind"], ch["px"], ch["qty"], ch["px2"], ch["qty2"])
            rows += len(ch)
            groups.add(ch)
        groups.flush()
        m = _stored_meta(meta, grid, rows, first_ts, last_ts)
        writer.add_key_value_metadata({META_KEY: json.dumps(m, default=json_default).encode()})
    finally:
        writer.close()
    return rows


def json_default(o: object) -> int | float | str:
    """``json.dumps(default=...)`` for NumPy scalars and paths; anything else is a TypeError."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


# ---------------------------------------------------------------- read
SCHEMA_VERSIONS_READ = frozenset({1})  # versions of the store this avmm reads as they are
CONVERT_HINT = "convert its source files again with `avmm data convert`"


def _open(path: Path | str, memory_map: bool = True) -> pq.ParquetFile:
    """The Parquet file, checked to be an event store: its columns by name and type."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not an event store")
    try:
        pf = pq.ParquetFile(str(path), memory_map=memory_map, page_checksum_verification=True)
        schema = pf.schema_arrow
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, pa.ArrowException, ValueError, IndexError, MemoryError, UnicodeDecodeError) as e:
        # a damaged footer can fail in the Thrift decoder, the schema conversion, or ask for a huge buffer
        raise UserError(f"{path}: not a Parquet event store ({_one_line(e)})") from None
    _check_schema(path, schema)
    return pf


def _one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg if len(msg) <= 200 else msg[:197] + "..."


def _check_schema(path: Path, schema: pa.Schema) -> None:
    names = list(schema.names)
    if names != list(_NAMES):
        missing = [n for n in _NAMES if n not in names]
        extra = [n for n in names if n not in _NAMES]
        what = []
        if missing:
            what.append("missing " + ", ".join(missing))
        if extra:
            what.append("unexpected " + ", ".join(extra[:5]) + (" ..." if len(extra) > 5 else ""))
        if not what:
            what.append("columns in another order: " + ", ".join(names))
        raise UserError(f"{path}: not an avmm event store ({'; '.join(what)})")
    for f in ARROW_SCHEMA:
        got = schema.field(f.name).type
        if got != f.type:
            raise UserError(f"{path}: not an avmm event store (column {f.name} is {got}, expected {f.type})")


def _meta_of(path: Path, pf: pq.ParquetFile) -> dict[str, Any]:
    kv = pf.schema_arrow.metadata or {}
    raw = kv.get(META_KEY)
    if raw is None:  # written by the footer key-value metadata
        kv = pf.metadata.metadata or {}
        raw = kv.get(META_KEY)
    if raw is None:
        raise UserError(f"{path}: no avmm metadata (not written by avmm?); {CONVERT_HINT}")
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise UserError(f"{path}: damaged avmm metadata ({_one_line(e)})") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: damaged avmm metadata (a JSON {type(meta).__name__}, expected an object)")
    _check_version(path, meta.get("schema_version"))
    _check_meta_values(path, meta, pf.metadata.num_rows)
    return meta


def _check_version(path: Path, v: object) -> None:
    if not isinstance(v, int) or isinstance(v, bool):
        raise UserError(f"{path}: damaged avmm metadata (schema_version {v!r}); {CONVERT_HINT}")
    if v not in SCHEMA_VERSIONS_READ:
        newer = "a newer" if v > SCHEMA_VERSION else "an older"
        raise UserError(
            f"{path}: event store of schema version {v} ({newer} avmm); this avmm reads version "
            f"{SCHEMA_VERSION}: {CONVERT_HINT}"
        )


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_meta_values(path: Path, meta: dict[str, Any], num_rows: int) -> None:
    """The values the readers use: sizes positive and finite, times and counts int64."""
    for key in ("tick_size", "lot_size"):
        v = meta.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
            raise UserError(f"{path}: damaged avmm metadata ({key} {v!r}: expected a positive number)")
    for key in ("rows", "start_ns", "end_ns"):
        v = meta.get(key)
        if v is None and key != "rows":
            continue
        if not _is_int(v) or not (_I64_MIN <= v <= _I64_MAX) or (key == "rows" and v < 0):  # type: ignore[operator]
            raise UserError(f"{path}: damaged avmm metadata ({key} {v!r}: expected an integer)")
    if meta["rows"] != num_rows:
        raise UserError(f"{path}: damaged avmm metadata (rows {meta['rows']:,}, the file has {num_rows:,})")
    if not isinstance(meta.get("counters", {}), dict):
        raise UserError(f"{path}: damaged avmm metadata (counters {meta['counters']!r}: expected an object)")


def read_meta(path: Path | str) -> dict[str, Any]:
    """The store's metadata, checked.

    Parameters
    ----------
    path : Path or str
        The event store.

    Returns
    -------
    dict
        What ``write_events`` stored: ``symbol``, ``source``, ``tick_size``, ``lot_size``,
        ``rows``, ``start_ns``, ``end_ns``, ``schema_version``, ``counters``, ...

    Raises
    ------
    UserError
        The file is missing, not Parquet, a Parquet file of other columns or column types, without
        avmm metadata or with damaged metadata, or of a schema version this avmm does not read.
    """
    pf = _open(path)
    return _meta_of(Path(path), pf)


def span_ns(path: Path | str) -> tuple[int, int] | None:
    """``(first, last)`` ``local_ts`` of the store from its metadata (None when empty)."""
    m = read_meta(path)
    if not m["rows"] or m.get("start_ns") is None or m.get("end_ns") is None:
        return None
    return int(m["start_ns"]), int(m["end_ns"])


class StoreReader:
    """Checked, bounded reading of some columns of one store: the common path of ``iter_columns``
    and the backtester.

    Every chunk is checked on the way, at the cost of one vectorised comparison over its
    ``local_ts`` (Arrow's null counts are free): no nulls, rows sorted by ``local_ts`` within the
    chunk and against the previous one (``after_ns``: the last time before this store, for a
    sequence of stores). ``start_ns`` / ``end_ns`` select the window ``[start_ns, end_ns)``; row groups
    outside it are skipped on their ``local_ts`` statistics without being read. ``check_order=False``
    (for ``avmm data inspect``, which counts the rows out of order) reads every row as stored and
    ignores the window.
    """

    def __init__(
        self,
        path: Path | str,
        columns: tuple[str, ...] = _NAMES,
        chunk_events: int = 1 << 20,
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
        after_ns: int | None = None,
        memory_map: bool = True,
        check_order: bool = True,
    ) -> None:
        self.path = Path(path)
        self.check_order = check_order
        if "local_ts" not in columns:
            columns = (*columns, "local_ts")
        self.columns = list(columns)
        self.i_lt = self.columns.index("local_ts")
        self.chunk_events = max(1, int(chunk_events))
        self.start_ns, self.end_ns = start_ns, end_ns
        self.last_ts = after_ns
        self.pf = _open(self.path, memory_map)
        self.meta = _meta_of(self.path, self.pf)
        self.row = 0  # rows of the file before the current chunk (0-based index of its first row)

    def _skip(self, g: int) -> bool:
        """Whether row group ``g`` lies outside the window, from its statistics (kept for the
        order check: a skipped group must still lie after the previous one)."""
        if (self.start_ns is None and self.end_ns is None) or not self.check_order:
            return False
        md = self.pf.metadata.row_group(g)
        st = md.column(_NAMES.index("local_ts")).statistics
        if st is None or not st.has_min_max:
            return False
        lo, hi = int(st.min), int(st.max)
        out = (self.end_ns is not None and lo >= self.end_ns) or (self.start_ns is not None and hi < self.start_ns)
        if out:
            if self.last_ts is not None and lo < self.last_ts:
                raise self._unsorted_error(self.row, lo, self.last_ts)
            self.last_ts = hi
        return out

    def __iter__(self) -> Iterator[list[np.ndarray]]:
        for table in self._tables():
            for batch in table.to_batches(max_chunksize=self.chunk_events):
                part = self._checked([_np(batch.column(i)) for i in range(batch.num_columns)])
                self.row += batch.num_rows
                if part is not None:
                    yield part
            del table

    def groups(self) -> Iterator[list[list[np.ndarray]]]:
        """The chunks of one row group at a time, checked (as ``__iter__`` gives them): the unit in
        which the store is read, for a reader thread to stay one read ahead of its consumer."""
        for table in self._tables():
            parts = []
            for batch in table.to_batches(max_chunksize=self.chunk_events):
                part = self._checked([_np(batch.column(i)) for i in range(batch.num_columns)])
                self.row += batch.num_rows
                if part is not None:
                    parts.append(part)
            del table
            if parts:
                yield parts

    def _tables(self) -> Iterator[pa.Table]:
        """The row groups in the window, read and checked for nulls, one at a time."""
        pf = self.pf
        for g in range(pf.num_row_groups):
            n_g = pf.metadata.row_group(g).num_rows
            if self._skip(g):
                self.row += n_g
                continue
            try:
                table = pf.read_row_group(g, columns=self.columns, use_threads=False)
            except (OSError, pa.ArrowException, ValueError, MemoryError) as e:
                raise corrupt_store(self.path, self.row, e) from None
            self._check_nulls(table)
            yield table
            del table

    def _check_nulls(self, table: pa.Table) -> None:
        for name, col in zip(table.column_names, table.columns, strict=True):
            if col.null_count:
                import pyarrow.compute as pc

                first = int(np.flatnonzero(pc.is_null(col).to_numpy(zero_copy_only=False))[0])
                raise UserError(f"{self.path}: row index {self.row + first:,}: {name} is null (a missing value)")

    def _checked(self, arrays: list[np.ndarray]) -> list[np.ndarray] | None:
        """The chunk after the order check, cut to the window (None when nothing is left)."""
        lt = arrays[self.i_lt]
        n = lt.shape[0]
        if n == 0:
            return None
        if not self.check_order:
            return arrays
        if self.last_ts is not None and lt[0] < self.last_ts:
            raise self._unsorted_error(self.row, int(lt[0]), self.last_ts)
        if n > 1 and (lt[1:] < lt[:-1]).any():
            i = int(np.flatnonzero(lt[1:] < lt[:-1])[0]) + 1
            raise self._unsorted_error(self.row + i, int(lt[i]), int(lt[i - 1]))
        self.last_ts = int(lt[-1])
        if self.start_ns is None and self.end_ns is None:
            return arrays
        lo = 0 if self.start_ns is None else int(np.searchsorted(lt, self.start_ns, "left"))
        hi = n if self.end_ns is None else int(np.searchsorted(lt, self.end_ns, "left"))
        if lo >= hi:
            return None
        if lo == 0 and hi == n:
            return arrays
        return [a[lo:hi] for a in arrays]

    def _unsorted_error(self, row: int, ts: int, prev: int) -> UserError:
        where = f"row index {row:,}" if row else "its first row (index 0)"
        return UserError(
            f"{self.path}: rows not sorted by local_ts: {where} is at {ts}, before {prev} "
            f"(an event store is sorted; {CONVERT_HINT})"
        )


def iter_columns(
    path: Path | str, chunk_events: int = 1 << 20, *, start_ns: int | None = None, end_ns: int | None = None
) -> Iterator[EventColumns]:
    """Stream the store as column arrays: the fast path for the backtester.

    Parameters
    ----------
    path : Path or str
        The event store.
    chunk_events : int
        The most rows per chunk.
    start_ns, end_ns : int, optional
        Only the rows with ``start_ns <= local_ts < end_ns`` (row groups outside are not read).

    Returns
    -------
    Iterator of EventColumns
        Chunks of at most ``chunk_events`` rows, in store order: one contiguous NumPy array per
        ``EVENT_DTYPE`` field (zero-copy from Arrow where it can).

    Raises
    ------
    UserError
        The file is missing, not an event store (see ``read_meta``), corrupt (page checksum,
        damaged data), has a null value, or rows out of ``local_ts`` order.
    """
    for arrays in StoreReader(path, _NAMES, chunk_events, start_ns=start_ns, end_ns=end_ns):
        yield EventColumns(*arrays)


def corrupt_store(path: Path | str, rows_read: int, err: Exception) -> UserError:
    """The one-line error for a store that fails while being read (bad page checksum, truncated
    or damaged data page)."""
    return UserError(f"{path}: corrupt event store after row {rows_read:,} ({_one_line(err)})")


def _np(a: pa.Array) -> np.ndarray:
    try:
        return a.to_numpy(zero_copy_only=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return np.ascontiguousarray(a.to_numpy(zero_copy_only=False))


def iter_events(
    path: Path | str, chunk_events: int = 1 << 20, *, start_ns: int | None = None, end_ns: int | None = None
) -> Iterator[np.ndarray]:
    """Stream the store as structured arrays (a convenience: ``iter_columns`` is faster).

    Parameters
    ----------
    path : Path or str
        The event store.
    chunk_events : int
        The most rows per chunk.
    start_ns, end_ns : int, optional
        Only the rows with ``start_ns <= local_ts < end_ns``.

    Returns
    -------
    Iterator of numpy.ndarray
        ``EVENT_DTYPE`` chunks of at most ``chunk_events`` rows, in store order (sorted by
        ``local_ts``).

    Raises
    ------
    UserError
        As ``iter_columns``.
    """
    for cols in iter_columns(path, chunk_events, start_ns=start_ns, end_ns=end_ns):
        ev = np.empty(len(cols.local_ts), dtype=EVENT_DTYPE)
        for name, arr in zip(_NAMES, cols, strict=True):  # (``EventColumns`` has exactly these fields)
            ev[name] = arr
        yield ev


def read_events(path: Path | str) -> np.ndarray:
    """The whole store as one ``EVENT_DTYPE`` array."""
    parts = list(iter_events(path))
    if not parts:
        return np.empty(0, dtype=EVENT_DTYPE)
    return np.concatenate(parts) if len(parts) > 1 else parts[0]
