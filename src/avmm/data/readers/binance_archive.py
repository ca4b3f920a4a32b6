"""Binance public data archives (data.binance.vision): daily zip CSVs, spot and USD-M futures.

File names: ``SYMBOL-KIND-YYYY-MM-DD.zip`` (or the extracted ``.csv``), KIND one of ``trades``,
``aggTrades``, ``bookTicker``. Columns (a header row is optional; spot files have none):

* trades:     ``id, price, qty, quote_qty, time, is_buyer_maker[, is_best_match]``
* aggTrades:  ``agg_trade_id, price, quantity, first_trade_id, last_trade_id, transact_time,
  is_buyer_maker[, is_best_match]``
* bookTicker: ``update_id, best_bid_price, best_bid_qty, best_ask_price, best_ask_qty,
  transaction_time, event_time``

Times are ms (µs in spot files from 2025; detected per value). Trades have one clock, the
exchange's: ``exch_ts == local_ts``, ``F_EXCH_TS`` set; aggressor = SELL when ``is_buyer_maker``.
bookTicker: ``exch_ts`` = transaction time, ``local_ts`` = event time (the push time, the closest
thing to a receive time). A repeated id / update id is a duplicate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from avmm.data.columns import I64_MAX, check_price, check_quotes, check_size, to_float, to_int
from avmm.data.csv import CsvSource, csv_batches, open_csv
from avmm.data.issues import Counters, ProgressFn
from avmm.data.ordering import RecentIds
from avmm.errors import UserError
from avmm.events import BUY, EVENT_DTYPE, F_EXCH_TS, QUOTE, SELL, TRADE

KINDS = ("trades", "aggTrades", "bookTicker")
_NAME = re.compile(
    r"^(?P<symbol>[A-Z0-9]+)-(?P<kind>trades|aggTrades|bookTicker)-(?P<date>\d{4}-\d{2}(-\d{2})?)\.(zip|csv)$"
)

COLS = {
    "trades": ["id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match"],
    "aggTrades": [
        "agg_trade_id",
        "price",
        "quantity",
        "first_trade_id",
        "last_trade_id",
        "transact_time",
        "is_buyer_maker",
        "is_best_match",
    ],
    "bookTicker": [
        "update_id",
        "best_bid_price",
        "best_bid_qty",
        "best_ask_price",
        "best_ask_qty",
        "transaction_time",
        "event_time",
    ],
}


def parse_name(path: Path) -> dict[str, str] | None:
    m = _NAME.match(Path(path).name)
    return m.groupdict() if m else None


def looks_like(path: Path) -> bool:
    return parse_name(path) is not None


def to_ns(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ms / µs / ns epoch timestamps -> (ns, overflow mask), the unit by magnitude. A time whose ns
    value would not fit int64 (a ms time past the year 2262, ...) is marked, its value 0."""
    over = ((t > I64_MAX // 1_000_000) & (t < 10**14)) | ((t > I64_MAX // 1000) & (t < 10**17))
    if over.any():
        t = np.where(over, 0, t)
    return np.where(t < 10**14, t * 1_000_000, np.where(t < 10**17, t * 1000, t)), over


def read_binance_archive(
    path: Path,
    c: Counters,
    symbol: str | None = None,
    progress: ProgressFn | None = None,
    block_size: int = 1 << 22,
) -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
    path = Path(path)
    info = parse_name(path)
    if info is None:
        raise UserError(f"{path}: not a Binance archive file name (SYMBOL-KIND-DATE.zip|csv)")
    if symbol and symbol.upper() != info["symbol"]:
        raise UserError(f"{path}: file is for {info['symbol']}, not {symbol.upper()}")
    kind = info["kind"]
    with open_csv(path) as src:
        _check_content(src, info)
        ncols = src.first.count(b",") + 1
        names = COLS[kind][:ncols] + [f"x{i}" for i in range(max(0, ncols - len(COLS[kind])))]
        if kind == "bookTicker":
            yield from _book_ticker(src, c, names, block_size)
        else:
            yield from _trades(src, c, names, block_size, kind)
    if progress is not None:
        progress(path.stat().st_size)


def market_of(path: Path) -> str | None:
    """``perpetual`` for a USD-M futures archive, ``spot`` for a spot one (None: unreadable). Only
    USD-M publishes bookTicker; its trades files have a header row and no ``is_best_match`` column,
    spot ones neither a header nor fewer columns."""
    info = parse_name(path)
    if info is None:
        return None
    if info["kind"] == "bookTicker":
        return "perpetual"
    try:
        with open_csv(path) as src:
            first = src.first
    except UserError:
        return None
    if not first.strip():
        return None
    if not first[:1].isdigit():
        return "perpetual"
    return "spot" if first.count(b",") + 1 >= len(COLS[info["kind"]]) else "perpetual"


# the field of a headerless first row that tells the kind: (index, what it holds)
_BOOL = {b"true", b"false"}
_FIRST_ROW = {"trades": (5, "is_buyer_maker"), "aggTrades": (6, "is_buyer_maker"), "bookTicker": (6, "event_time")}


def _check_content(src: CsvSource, info: dict[str, str]) -> None:
    """The file holds what its name says, else one line: a zip's CSV member named for another
    symbol or kind, a header of another kind, a first row whose fields do not fit the kind."""
    path, kind = src.path, info["kind"]
    if src.member is not None:
        inner = parse_name(Path(src.member))
        if inner is not None and (inner["kind"], inner["symbol"]) != (kind, info["symbol"]):
            raise UserError(
                f"{path}: the archive holds {src.member}, not a {info['symbol']} {kind} file; "
                "rename it or convert the right file"
            )
    if not src.first.strip():
        return  # empty: counted by ``csv_batches``
    cells = [x.strip().strip(b'"').lower() for x in src.first.split(b",")]
    if not cells[0][:1].isdigit():  # a header row
        if cells[0].decode("utf-8", "replace") != COLS[kind][0]:
            other = [k for k in KINDS if COLS[k][0] == cells[0].decode("utf-8", "replace")]
            what = f"a {other[0]} header" if other else f"header {src.first[:60]!r}"
            raise UserError(f"{path}:1: not a Binance {kind} archive ({what})")
        return
    i, field = _FIRST_ROW[kind]
    ok = len(cells) > i and (cells[i] in _BOOL if field == "is_buyer_maker" else cells[i].isdigit())
    if kind == "bookTicker":
        ok = ok and len(cells) == 7
    if not ok:
        raise UserError(
            f"{path}:1: not a Binance {kind} archive (field {i + 1} of the first row should be {field}: "
            f"{src.first[:60]!r})"
        )


def _batches(
    src: CsvSource, c: Counters, names: list[str], include: list[str], block_size: int
) -> Iterator[tuple[pa.RecordBatch, int]]:
    """Batches of the columns ``include``; ``names``: all columns (a header row, if any, is skipped)."""
    header = not src.first[:1].isdigit()
    return csv_batches(
        src.path, c, include=include, column_names=names, skip_header=header, block_size=block_size, stream=src.stream
    )


def _trades(
    src: CsvSource, c: Counters, names: list[str], block_size: int, kind: str
) -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
    path, name = src.path, src.path.name
    if len(names) < 6:
        raise UserError(f"{path}:1: {kind} archive needs at least 6 columns, found {len(names)}")
    idc, pxc, qc = names[0], names[1], names[2]
    tc = "time" if kind == "trades" else "transact_time"
    mc = "is_buyer_maker"
    recent = RecentIds()
    for batch, first in _batches(src, c, names, [idc, pxc, qc, tc, mc], block_size):
        n = batch.num_rows
        lines = np.arange(first, first + n, dtype=np.int64)
        ids, b0 = to_int(batch.column(idc))
        px, b1 = to_float(batch.column(pxc))
        qty, b2 = to_float(batch.column(qc))
        t, b3 = to_int(batch.column(tc))
        mk = pc.utf8_lower(batch.column(mc))
        maker = np.asarray(pc.equal(mk, "true").fill_null(False))
        taker = np.asarray(pc.equal(mk, "false").fill_null(False))
        nn = b0 | b1 | b2 | b3 | ~(maker | taker)
        c.add_mask("non_numeric", nn, name, lines)
        bad = nn.copy()
        ts, over = to_ns(t)
        badt = ~bad & ((t <= 0) | over)
        c.add_mask("bad_timestamp", badt, name, lines)
        bad |= badt
        ok = ~bad
        bad[ok] |= check_price(px[ok], c, name, lines[ok]) | check_size(qty[ok], c, name, lines[ok])
        dup = recent.dup(ids, ~bad)
        c.add_mask("duplicate", dup, name, lines)
        keep = ~(bad | dup)
        m = int(keep.sum())
        if not m:
            continue
        ev = np.empty(m, dtype=EVENT_DTYPE)
        ev["exch_ts"] = ts[keep]
        ev["local_ts"] = ts[keep]
        ev["seq"] = ids[keep]
        ev["px"] = px[keep]
        ev["qty"] = qty[keep]
        ev["px2"] = 0.0
        ev["qty2"] = 0.0
        ev["kind"] = TRADE
        ev["side"] = np.where(maker[keep], SELL, BUY)
        ev["flags"] = F_EXCH_TS
        ev["level"] = -1
        yield ev, lines[keep], str(path)


def _book_ticker(
    src: CsvSource, c: Counters, names: list[str], block_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
    path, name = src.path, src.path.name
    if len(names) < 7:
        raise UserError(f"{path}:1: bookTicker archive needs 7 columns, found {len(names)}")
    recent = RecentIds()
    for batch, first in _batches(src, c, names, names[:7], block_size):
        n = batch.num_rows
        lines = np.arange(first, first + n, dtype=np.int64)
        uid, b0 = to_int(batch.column(names[0]))
        bp, b1 = to_float(batch.column(names[1]))
        bq, b2 = to_float(batch.column(names[2]))
        ap, b3 = to_float(batch.column(names[3]))
        aq, b4 = to_float(batch.column(names[4]))
        tt, b5 = to_int(batch.column(names[5]))
        et, b6 = to_int(batch.column(names[6]))
        nn = b0 | b1 | b2 | b3 | b4 | b5 | b6
        c.add_mask("non_numeric", nn, name, lines)
        bad = nn.copy()
        exch, o1 = to_ns(tt)
        local, o2 = to_ns(et)
        badt = ~bad & ((tt <= 0) | (et <= 0) | o1 | o2)
        c.add_mask("bad_timestamp", badt, name, lines)
        bad |= badt
        ev = np.empty(n, dtype=EVENT_DTYPE)
        ev["exch_ts"] = exch
        ev["local_ts"] = local
        ev["seq"] = uid
        ev["px"], ev["qty"], ev["px2"], ev["qty2"] = bp, bq, ap, aq
        ev["kind"] = QUOTE
        ev["side"] = 0
        ev["flags"] = F_EXCH_TS
        ev["level"] = -1
        ok = ~bad
        bad[ok] |= check_quotes(ev[ok], c, name, lines[ok])
        dup = recent.dup(uid, ~bad)
        c.add_mask("duplicate", dup, name, lines)
        keep = ~(bad | dup)
        if keep.any():
            yield ev[keep], lines[keep], str(path)
