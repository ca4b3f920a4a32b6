"""tardis.dev CSV (plain or gzip): ``quotes``, ``trades``, ``incremental_book_L2``, ``book_snapshot_N``.

Timestamps are microseconds: ``timestamp`` -> ``exch_ts``, ``local_timestamp`` -> ``local_ts`` (ns),
``F_EXCH_TS`` set.

* quotes -> QUOTE (bid_price/bid_amount, ask_price/ask_amount); identical consecutive rows are
  duplicates.
* trades -> TRADE, ``side`` the aggressor (``buy``/``sell``; anything else is 0, counted
  ``unknown_side``), ``seq`` = numeric trade id (else 0); a repeated id is a duplicate.
* incremental_book_L2 -> DEPTH rows (``is_snapshot`` false) and CLEAR + SNAPSHOT rows (a run of
  ``is_snapshot`` rows with one local timestamp); ``F_LAST_IN_BATCH`` on the last row of each run
  of rows sharing a local timestamp; ``amount`` 0 removes a level.
* book_snapshot_N -> per row: CLEAR, SNAPSHOT rows for the non-empty levels (bids then asks,
  ``level`` = index), ``F_LAST_IN_BATCH`` on the last one, then the QUOTE of the top level. A row
  with a bad level (text, one cell empty, NaN / inf, price or size <= 0) is skipped and counted.

A file with data rows of which not one is usable is a ``UserError`` (``FILE:LINE``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from avmm.data import _fast
from avmm.data.columns import check_price, check_quotes, check_size, scale_to_ns, to_float, to_int
from avmm.data.csv import CsvSource, csv_batches, header_names, open_csv, read_first_line
from avmm.data.files import file_size, open_text_lines
from avmm.data.issues import Counters, ProgressFn
from avmm.data.ordering import RecentIds
from avmm.errors import UserError
from avmm.events import (
    BUY,
    CLEAR,
    DEPTH,
    EVENT_DTYPE,
    F_EXCH_TS,
    F_LAST_IN_BATCH,
    QUOTE,
    SELL,
    SNAPSHOT,
    TRADE,
)

US = 1000


def detect_kind(path: Path) -> str | None:
    """``quotes`` / ``trades`` / ``incremental_book_L2`` / ``book_snapshot`` or None."""
    return _kind(read_first_line(path))


def _kind(first: bytes) -> str | None:
    """The kind of tardis.dev CSV whose header line is ``first`` (see ``detect_kind``)."""
    cols = set(header_names(first))
    if not {"exchange", "symbol", "timestamp", "local_timestamp"} <= cols:
        return None
    if "is_snapshot" in cols:
        return "incremental_book_L2"
    if "asks[0].price" in cols:
        return "book_snapshot"
    if {"bid_price", "ask_price", "bid_amount", "ask_amount"} <= cols:
        return "quotes"
    if {"side", "price", "amount"} <= cols:
        return "trades"
    return None


# tardis.dev exchange ids of derivatives venues (perpetual swaps and futures)
DERIVATIVE_EXCHANGES = frozenset({"bitmex", "deribit", "bybit", "dydx", "cryptofacilities", "huobi-dm"})


def market_of(path: Path) -> str | None:
    """``perpetual`` or ``spot`` from the ``exchange`` column of the first data row (``*-futures``,
    ``*-swap``, ``*-delivery``, ``*-derivatives`` and the derivatives-only venues are perpetual);
    None when unreadable."""
    try:
        with open_text_lines(path) as fh:
            hdr = header_names(fh.readline(1 << 16).rstrip(b"\r\n"))
            row = fh.readline(1 << 16).decode("utf-8", "replace").split(",")
        ex = row[hdr.index("exchange")].strip().strip('"').lower()
    except (OSError, EOFError, ValueError, IndexError):
        return None
    if not ex:
        return None
    deriv = ex in DERIVATIVE_EXCHANGES or ex.endswith(("-futures", "-swap", "-delivery", "-derivatives", "-perp"))
    return "perpetual" if deriv else "spot"


class _Sym:
    def __init__(self, symbol: str | None):
        self.symbol = symbol.upper() if symbol else None

    def mask(self, col: pa.Array | pa.ChunkedArray, c: Counters, name: str) -> np.ndarray | None:
        """Rows of another symbol (counted); None when all rows match."""
        if self.symbol is None:
            first = col[0].as_py()
            self.symbol = (first or "").upper()
        other = np.asarray(pc.invert(pc.equal(pc.utf8_upper(col), self.symbol)).fill_null(True))
        if other.any():
            c.add("other_symbol", int(other.sum()), f"{name}: {col[int(np.argmax(other))]}")
            return other
        return None

    def exclude(self, batch: pa.RecordBatch, c: Counters, name: str, bad: np.ndarray) -> None:
        """Mark the rows of another symbol in ``bad`` (counted)."""
        other = self.mask(batch.column("symbol"), c, name)
        if other is not None:
            bad |= other


def _times(
    batch: pa.RecordBatch, first: int, c: Counters, name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(lines, exch_ts, local_ts, bad)`` of a batch whose first row is line ``first``: the line
    numbers, both clocks in ns, and the rows with a bad timestamp (counted): not a number, not
    positive, or past what int64 ns can hold."""
    lines = _lines(first, batch.num_rows)
    exch, b1 = to_int(batch.column("timestamp"))
    local, b2 = to_int(batch.column("local_timestamp"))
    exch, o1 = scale_to_ns(exch, US)
    local, o2 = scale_to_ns(local, US)
    bad = b1 | b2 | o1 | o2 | (exch <= 0) | (local <= 0)
    c.add_mask("bad_timestamp", bad, name, lines)
    return lines, exch, local, bad


def _floats(
    batch: pa.RecordBatch, cols: Sequence[str], bad: np.ndarray, c: Counters, name: str, lines: np.ndarray
) -> list[np.ndarray]:
    """The float columns ``cols`` of a batch. A row with a value that is not a number is counted
    ``non_numeric`` (unless already ``bad``) and marked in ``bad``."""
    out = []
    nn = np.zeros(batch.num_rows, dtype=bool)
    for col in cols:
        v, b = to_float(batch.column(col))
        out.append(v)
        nn |= b
    c.add_mask("non_numeric", nn & ~bad, name, lines)
    bad |= nn
    return out


def read_tardis(
    path: Path,
    c: Counters,
    symbol: str | None = None,
    progress: ProgressFn | None = None,
    block_size: int = 1 << 22,
) -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
    """Yield ``(events, lines, path)`` chunks in file order."""
    path = Path(path)
    t = _Tally(c)
    used = 0
    with open_csv(path) as src:
        kind = _kind(src.first)
        if kind is None and file_size([path]) == 0:
            c.add("empty_file", 1, f"{path.name}:1: no data rows")  # (nor a header)
            return
        if kind is None:
            raise UserError(f"{path}:1: not a tardis.dev CSV (header {src.first[:80]!r})")
        for ev, lines, p in _READERS[kind](src, t, _Sym(symbol), progress, block_size):
            used += len(ev)
            yield ev, lines, p
    if used == 0 and t.keys:  # rows, but not one usable (rows of another symbol do not count)
        raise UserError(
            f"{path}:{t.first or 2}: no usable row in this tardis.dev {kind} file "
            f"(skipped: {', '.join(sorted(t.keys))})"
        )


# what does not make a file unusable: rows of another symbol, no rows at all
_NOT_UNUSABLE = ("other_symbol", "empty_file")


class _Tally(Counters):
    """Forwards to ``inner``; remembers why rows of this file were skipped and the first line."""

    def __init__(self, inner: Counters):
        super().__init__()
        self.inner = inner
        self.keys: set[str] = set()
        self.first: int | None = None

    def add(self, key: str, n: int = 1, where: str | None = None) -> None:
        self.inner.add(key, n, where)
        if n > 0 and key not in _NOT_UNUSABLE:
            self.keys.add(key)

    def add_mask(self, key: str, bad: np.ndarray, path: Path | str, lines: np.ndarray | None) -> None:
        self.inner.add_mask(key, bad, path, lines)
        if key not in _NOT_UNUSABLE and np.any(bad):
            self.keys.add(key)
            if lines is not None:
                ln = int(lines[int(np.argmax(bad))])
                self.first = ln if self.first is None else min(self.first, ln)


def _lines(first: int, n: int) -> np.ndarray:
    return np.arange(first, first + n, dtype=np.int64)


_QUOTE_FIELDS = (("px", "bid_price"), ("qty", "bid_amount"), ("px2", "ask_price"), ("qty2", "ask_amount"))


def _batches(
    src: CsvSource, c: Counters, cols: list[str], progress: ProgressFn | None, block_size: int
) -> Iterator[tuple[pa.RecordBatch, int]]:
    return csv_batches(src.path, c, include=cols, progress=progress, block_size=block_size, stream=src.stream)


def _quotes(
    src: CsvSource, c: Counters, sym: _Sym, progress: ProgressFn | None, block_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
    # Works on whole columns; the event array is packed once from the rows that survive.
    path, name = src.path, src.path.name
    cols = ["symbol", "timestamp", "local_timestamp", "ask_amount", "ask_price", "bid_price", "bid_amount"]
    prev = None  # the last row yielded (column name -> value), for duplicates across chunks
    for batch, first in _batches(src, c, cols, progress, block_size):
        lines, exch, local, bad = _times(batch, first, c, name)
        f = {"exch_ts": exch, "local_ts": local}
        values = _floats(batch, [col for _, col in _QUOTE_FIELDS], bad, c, name, lines)
        f.update((field, v) for (field, _), v in zip(_QUOTE_FIELDS, values, strict=True))
        sym.exclude(batch, c, name, bad)
        if not bad.any():
            bad = check_quotes(f, c, name, lines)
        else:
            ok = ~bad
            bad[ok] |= check_quotes({k: f[k][ok] for k, _ in _QUOTE_FIELDS}, c, name, lines[ok])
        if bad.any():
            keep = ~bad
            f = {k: v[keep] for k, v in f.items()}
            lines = lines[keep]
        dup = _dup_quotes(f, prev)
        if dup is not None:
            c.add_mask("duplicate", dup, name, lines)
            keep = ~dup
            f = {k: v[keep] for k, v in f.items()}
            lines = lines[keep]
        m = len(lines)
        if m:
            prev = {k: v[-1] for k, v in f.items()}
            ev = _fast.pack(m, seq=0, kind=QUOTE, side=0, flags=F_EXCH_TS, level=-1, **f)
            yield ev, lines, str(path)


def _dup_quotes(f: dict[str, np.ndarray], prev: dict[str, Any] | None) -> np.ndarray | None:
    """Mask of rows identical (both clocks and all values) to the row before, None if there are
    none (``ordering.dedupe_quotes`` on columns)."""
    n = len(f["local_ts"])
    if n == 0:
        return None
    same = np.ones(n, dtype=bool)
    for k in ("exch_ts", "local_ts", "px", "qty", "px2", "qty2"):
        a = f[k]
        np.logical_and(same[1:], a[1:] == a[:-1], out=same[1:])
        same[0] &= prev is not None and bool(a[0] == prev[k])
    return same if same.any() else None


def _trades(
    src: CsvSource, c: Counters, sym: _Sym, progress: ProgressFn | None, block_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
    path, name = src.path, src.path.name
    cols = ["symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount"]
    recent = RecentIds()
    for batch, first in _batches(src, c, cols, progress, block_size):
        lines, exch, local, bad = _times(batch, first, c, name)
        px, qty = _floats(batch, ("price", "amount"), bad, c, name, lines)
        ids, _ = to_int(batch.column("id"))  # non-numeric ids are allowed: seq 0, no dedupe
        sides = batch.column("side")
        buy = np.asarray(pc.equal(sides, "buy").fill_null(False))
        sell = np.asarray(pc.equal(sides, "sell").fill_null(False))
        side = np.where(buy, BUY, np.where(sell, SELL, 0)).astype(np.int8)
        sym.exclude(batch, c, name, bad)
        if not bad.any():
            bad = check_price(px, c, name, lines) | check_size(qty, c, name, lines)
        else:
            ok = ~bad
            bad[ok] |= check_price(px[ok], c, name, lines[ok]) | check_size(qty[ok], c, name, lines[ok])
        dup = recent.dup(ids, ~bad)
        c.add_mask("duplicate", dup, name, lines)
        bad |= dup
        c.add_mask("unknown_side", (side == 0) & ~bad, name, lines)
        if bad.any():
            keep = ~bad
            exch, local, ids, px, qty, side, lines = (
                exch[keep],
                local[keep],
                ids[keep],
                px[keep],
                qty[keep],
                side[keep],
                lines[keep],
            )
        m = len(lines)
        if m == 0:
            continue
        ev = _fast.pack(
            m,
            exch_ts=exch,
            local_ts=local,
            seq=ids,
            px=px,
            qty=qty,
            px2=0.0,
            qty2=0.0,
            kind=TRADE,
            side=side,
            flags=F_EXCH_TS,
            level=-1,
        )
        yield ev, lines, str(path)


def _incremental(
    src: CsvSource, c: Counters, sym: _Sym, progress: ProgressFn | None, block_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
    path, name = src.path, src.path.name
    cols = ["symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price", "amount"]
    carry = None  # rows of the last (possibly incomplete) batch, kept for the next chunk
    prev_snap_ts = None  # local_ts of the last snapshot row emitted, and whether last row was snapshot
    prev_was_snap = False
    batches = _batches(src, c, cols, progress, block_size)
    done = False
    while not done:
        try:
            batch, first = next(batches)
        except StopIteration:
            done = True
            batch = None
        if batch is not None:
            lines, exch, local, bad = _times(batch, first, c, name)
            px, qty = _floats(batch, ("price", "amount"), bad, c, name, lines)
            snap = np.asarray(pc.equal(pc.utf8_lower(batch.column("is_snapshot")), "true").fill_null(False))
            sides = batch.column("side")
            bid = np.asarray(pc.equal(sides, "bid").fill_null(False))
            ask = np.asarray(pc.equal(sides, "ask").fill_null(False))
            c.add_mask("malformed_row", ~(bid | ask) & ~bad, name, lines)
            bad |= ~(bid | ask)
            sym.exclude(batch, c, name, bad)
            ok = ~bad
            bad[ok] |= check_price(px[ok], c, name, lines[ok]) | check_size(
                qty[ok], c, name, lines[ok], allow_zero=True
            )
            keep = ~bad
            ev = np.empty(int(keep.sum()), dtype=EVENT_DTYPE)
            ev["exch_ts"] = exch[keep]
            ev["local_ts"] = local[keep]
            ev["seq"] = 0
            ev["px"] = px[keep]
            ev["qty"] = qty[keep]
            ev["px2"] = 0.0
            ev["qty2"] = 0.0
            ev["kind"] = np.where(snap[keep], SNAPSHOT, DEPTH)
            ev["side"] = np.where(bid[keep], BUY, SELL)
            ev["flags"] = F_EXCH_TS
            ev["level"] = -1
            lines = lines[keep]
            if carry is not None:
                ev = np.concatenate([carry[0], ev])
                lines = np.concatenate([carry[1], lines])
        else:
            if carry is None:
                break
            ev, lines = carry
        if len(ev) == 0:
            continue
        # message runs: same local_ts and same snapshot-ness
        lt = ev["local_ts"]
        isn = ev["kind"] == SNAPSHOT
        brk = np.ones(len(ev), dtype=bool)  # brk[i]: row i is the last of its run
        brk[:-1] = (lt[1:] != lt[:-1]) | (isn[1:] != isn[:-1])
        if not done:  # hold back the last run: it may continue in the next chunk
            ends = np.flatnonzero(brk[:-1])
            cut = int(ends[-1]) + 1 if len(ends) else 0
            carry = (ev[cut:], lines[cut:])
            ev, lines, brk, isn, lt = ev[:cut], lines[:cut], brk[:cut], isn[:cut], lt[:cut]
        else:
            carry = None
        if len(ev) == 0:
            continue
        ev["flags"][brk] |= F_LAST_IN_BATCH
        # a snapshot run starts where the previous row was not a snapshot row of the same time
        pl = np.empty_like(lt)
        pn = np.empty_like(isn)
        pl[1:], pn[1:] = lt[:-1], isn[:-1]
        pl[0] = prev_snap_ts if prev_snap_ts is not None else -1
        pn[0] = prev_was_snap
        start = isn & (~pn | (pl != lt))
        prev_was_snap = bool(isn[-1])
        prev_snap_ts = int(lt[-1])
        if start.any():
            pos = np.flatnonzero(start)
            clr = np.zeros(len(pos), dtype=EVENT_DTYPE)
            clr["exch_ts"] = ev["exch_ts"][pos]
            clr["local_ts"] = lt[pos]
            clr["kind"] = CLEAR
            clr["flags"] = F_EXCH_TS
            clr["level"] = -1
            ev = np.insert(ev, pos, clr)
            lines = np.insert(lines, pos, lines[pos])
        yield ev, lines, str(path)


def _snapshots(
    src: CsvSource, c: Counters, sym: _Sym, progress: ProgressFn | None, block_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
    path, name = src.path, src.path.name
    head = header_names(src.first)
    nlev = 0
    while f"asks[{nlev}].price" in head and f"bids[{nlev}].price" in head:
        nlev += 1
    if nlev == 0:
        raise UserError(f"{path}:1: book snapshot file without asks[0]/bids[0] columns")
    lvl_cols = []
    for i in range(nlev):
        lvl_cols += [f"bids[{i}].price", f"bids[{i}].amount"]
    for i in range(nlev):
        lvl_cols += [f"asks[{i}].price", f"asks[{i}].amount"]
    cols = ["symbol", "timestamp", "local_timestamp"] + lvl_cols
    width = 2 * nlev + 2  # CLEAR, 2*nlev levels, QUOTE
    for batch, first in _batches(src, c, cols, progress, block_size):
        n = batch.num_rows
        lines, exch, local, bad = _times(batch, first, c, name)
        sym.exclude(batch, c, name, bad)
        P = np.zeros((n, 2 * nlev))
        Q = np.zeros((n, 2 * nlev))
        valid = np.zeros((n, 2 * nlev), dtype=bool)  # level given (both cells numeric)
        nn = np.zeros(n, dtype=bool)
        for j in range(2 * nlev):
            pcol = batch.column(lvl_cols[2 * j])
            qcol = batch.column(lvl_cols[2 * j + 1])
            empty = np.asarray(pcol.is_null()) & np.asarray(qcol.is_null())  # a missing level
            p, b1 = to_float(pcol)
            q, b2 = to_float(qcol)
            nn |= (b1 | b2) & ~empty  # text, or one cell of a level empty
            P[:, j], Q[:, j] = p, q
            valid[:, j] = ~(b1 | b2)
        c.add_mask("non_numeric", nn & ~bad, name, lines)
        bad |= nn
        # NaN / inf / non-positive price or size in a given level: the row is skipped, counted
        # once per kind (check_price / check_size on the worst value of the row)
        ok = ~bad
        if ok.any():
            Pv, Qv, Vv = P[ok], Q[ok], valid[ok]
            worst = []
            for X in (Pv, Qv):
                nf = (~np.isfinite(X) & Vv).any(axis=1)
                worst.append(np.where(nf, np.nan, np.where(Vv, X, 1.0).min(axis=1)))
            bad[ok] |= check_price(worst[0], c, name, lines[ok]) | check_size(worst[1], c, name, lines[ok])
        rows = np.flatnonzero(~bad)
        if len(rows) == 0:
            continue
        m = len(rows)
        blk = np.zeros((m, width), dtype=EVENT_DTYPE)
        blk["exch_ts"] = exch[rows][:, None]
        blk["local_ts"] = local[rows][:, None]
        blk["flags"] = F_EXCH_TS
        blk["level"] = -1
        blk["kind"][:, 0] = CLEAR
        blk["kind"][:, 1:-1] = SNAPSHOT
        blk["px"][:, 1:-1] = P[rows]
        blk["qty"][:, 1:-1] = Q[rows]
        blk["side"][:, 1 : 1 + nlev] = BUY
        blk["side"][:, 1 + nlev : -1] = SELL
        blk["level"][:, 1 : 1 + nlev] = np.arange(nlev)
        blk["level"][:, 1 + nlev : -1] = np.arange(nlev)
        # quote from the top level
        blk["kind"][:, -1] = QUOTE
        blk["px"][:, -1] = P[rows, 0]
        blk["qty"][:, -1] = Q[rows, 0]
        blk["px2"][:, -1] = P[rows, nlev]
        blk["qty2"][:, -1] = Q[rows, nlev]
        keep = np.ones((m, width), dtype=bool)
        keep[:, 1:-1] = valid[rows]
        qv = valid[rows, 0] & valid[rows, nlev]
        crossed = qv & (P[rows, 0] > P[rows, nlev])
        c.add_mask("crossed_book", crossed, name, lines[rows])
        keep[:, -1] = qv & ~crossed
        # last snapshot row of each message
        lvl_keep = keep[:, 1:-1]
        has = lvl_keep.any(axis=1)
        last = (2 * nlev - 1) - np.argmax(lvl_keep[:, ::-1], axis=1)
        r = np.flatnonzero(has)
        blk["flags"][r, 1 + last[r]] |= F_LAST_IN_BATCH
        ev = blk[keep]
        ln = np.repeat(lines[rows], keep.sum(axis=1))
        yield ev, ln, str(path)


# the reader of each kind of file: (source, counters, symbol filter, progress, block size) -> chunks
_Kind = Callable[[CsvSource, Counters, _Sym, ProgressFn | None, int], Iterator[tuple[np.ndarray, np.ndarray, str]]]
_READERS: dict[str, _Kind] = {
    "quotes": _quotes,
    "trades": _trades,
    "incremental_book_L2": _incremental,
    "book_snapshot": _snapshots,
}
