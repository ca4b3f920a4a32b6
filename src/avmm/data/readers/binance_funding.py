"""Binance USD-M funding rates: the published monthly files and the REST answer.

* data.binance.vision ``futures/um/monthly/fundingRate/SYMBOL-fundingRate-YYYY-MM.zip`` (or the
  extracted ``.csv``): ``calc_time,funding_interval_hours,last_funding_rate``, a header row, times in
  ms (a file without the header must hold these three columns in this order);
* ``GET /fapi/v1/fundingRate`` saved as ``.json``: a list of ``{"symbol", "fundingTime",
  "fundingRate", "markPrice"}`` (times in ms, rate and mark as decimal strings; the mark is not used:
  the backtest marks at its own mid).

``read_funding(paths) -> FundingSeries``: the funding times (int64 ns, increasing), the rate of each
(a fraction of the position's notional per funding interval; positive: longs pay shorts), the
interval the file states, and the symbol. Files may overlap (monthly files, REST pages): a row
repeated exactly (same time, same rate) is dropped and counted (``duplicates``).

Every other row is used or stops the read with one line naming ``file:line`` (a JSON entry: its
index): a funding series with a hole or a wrong rate would change the PnL without a trace, so
nothing here is skipped silently. Also one line: a file that is not a funding file, holds no rates,
names two symbols, or gives one time two different rates.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avmm.data.csv import open_csv
from avmm.data.files import open_text_lines
from avmm.errors import UserError

MAX_BYTES = 64 << 20  # a month of 1-hour funding is ~30 kB; a larger file is not a funding file
MAX_ABS_RATE = 1.0  # a rate of 100 % per interval is not a funding rate
MAX_INTERVAL_H = 24.0
CSV_COLS = ("calc_time", "funding_interval_hours", "last_funding_rate")
_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]+)-fundingRate-(?P<month>\d{4}-\d{2})\.(zip|csv)$")
_MS_MAX = np.iinfo(np.int64).max // 1_000_000


@dataclass
class FundingSeries:
    """Funding times and rates, sorted by time, one rate a time."""

    ts_ns: np.ndarray  # int64, strictly increasing
    rate: np.ndarray  # float64, per funding interval
    interval_h: np.ndarray  # float64, the interval each row states (NaN: not stated)
    symbol: str | None = None
    files: list[str] = field(default_factory=list)
    duplicates: int = 0  # rows given twice (same time and rate), dropped

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])


@dataclass
class _Row:
    ts_ns: int
    rate: float
    interval_h: float
    where: str


def parse_name(path: Path) -> dict[str, str] | None:
    m = _NAME.match(Path(path).name)
    return m.groupdict() if m else None


def read_funding(paths: Sequence[Path | str] | Path | str) -> FundingSeries:
    """Read one or more funding files (monthly CSV / zip, REST JSON) into one series.

    Raises
    ------
    UserError
        One line naming the file (and line or entry): unreadable, not a funding file, a bad row,
        no rates at all, two symbols, one time with two rates.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    rows: list[_Row] = []
    symbols: dict[str, str] = {}
    for p in map(Path, paths):
        text = _read_text(p)
        if text.lstrip()[:1] in ("[", "{"):
            got, sym = _json_rows(p, text)
        else:
            got, sym = _csv_rows(p, text)
        info = parse_name(p)
        if sym is None and info is not None:
            sym = info["symbol"]
        if not got:
            raise UserError(f"{p}: no funding rates in the file")
        if sym is not None:
            symbols.setdefault(sym, str(p))
        rows.extend(got)
    if len(symbols) > 1:
        (s1, f1), (s2, f2) = list(symbols.items())[:2]
        raise UserError(f"{f2}: funding rates of {s2}, but {f1} holds {s1}; give the files of one symbol")
    rows.sort(key=lambda r: r.ts_ns)  # stable: the first of two equal rows is kept
    keep: list[_Row] = []
    dups = 0
    for r in rows:
        if keep and keep[-1].ts_ns == r.ts_ns:
            if keep[-1].rate != r.rate:
                raise UserError(
                    f"{r.where}: funding time {r.ts_ns // 1_000_000} ms has rate {r.rate!r}, but {keep[-1].where} "
                    f"gives it {keep[-1].rate!r}"
                )
            dups += 1
            continue
        keep.append(r)
    return FundingSeries(
        np.array([r.ts_ns for r in keep], dtype=np.int64),
        np.array([r.rate for r in keep], dtype=np.float64),
        np.array([r.interval_h for r in keep], dtype=np.float64),
        next(iter(symbols), None),
        [str(p) for p in map(Path, paths)],
        dups,
    )


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise UserError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        if path.suffix.lower() == ".zip":
            with open_csv(path) as src:
                assert src.stream is not None
                data = src.stream.read(MAX_BYTES + 1)
        else:
            with open_text_lines(path) as fh:
                data = fh.read(MAX_BYTES + 1)
    except (OSError, EOFError) as e:
        raise UserError(f"{path}: cannot read: {e}") from None
    if len(data) > MAX_BYTES:
        raise UserError(f"{path}: larger than {MAX_BYTES >> 20} MB: not a funding-rate file")
    try:
        return bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not a text file (byte {e.start}: {e.reason})") from None


def _time_ns(v: Any, where: str, name: str) -> int:
    """A ms time (an integer or its decimal string) as ns."""
    try:
        ms = int(v) if not isinstance(v, (bool, float)) else None
    except (TypeError, ValueError):
        ms = None
    if ms is None or not 0 < ms <= _MS_MAX:
        raise UserError(f"{where}: {name} {v!r} is not a time in ms since the epoch")
    return ms * 1_000_000


def _rate(v: Any, where: str, name: str) -> float:
    try:
        x = float(v) if not isinstance(v, bool) else math.nan
    except (TypeError, ValueError):
        x = math.nan
    if not (math.isfinite(x) and abs(x) < MAX_ABS_RATE):
        raise UserError(f"{where}: {name} {v!r} is not a funding rate (a fraction, |rate| < {MAX_ABS_RATE:g})")
    return x


def _interval(v: Any, where: str, name: str) -> float:
    if v is None or (isinstance(v, str) and not v.strip()):
        return math.nan
    try:
        x = float(v)
    except (TypeError, ValueError):
        x = math.nan
    if not (math.isfinite(x) and 0 < x <= MAX_INTERVAL_H):
        raise UserError(f"{where}: {name} {v!r} is not a funding interval in hours (0 < h <= {MAX_INTERVAL_H:g})")
    return x


def _csv_rows(path: Path, text: str) -> tuple[list[_Row], str | None]:
    reader = csv.reader(io.StringIO(text))
    rows: list[_Row] = []
    cols: dict[str, int] | None = None
    for cells in reader:
        ln = reader.line_num
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue  # a blank line
        if cols is None:
            if not cells[0][:1].isdigit():  # the header
                names = [c.strip('"').lower() for c in cells]
                missing = [c for c in (CSV_COLS[0], CSV_COLS[2]) if c not in names]
                if missing:
                    raise UserError(
                        f"{path}:{ln}: not a Binance fundingRate file (columns {', '.join(CSV_COLS)}; "
                        f"no {', '.join(missing)} in the header)"
                    )
                cols = {c: names.index(c) for c in CSV_COLS if c in names}
                continue
            cols = {c: i for i, c in enumerate(CSV_COLS)}
        where = f"{path}:{ln}"
        need = max(cols.values()) + 1
        if len(cells) < need:
            raise UserError(f"{where}: {len(cells)} fields, expected {need} ({', '.join(cols)})")
        rows.append(
            _Row(
                _time_ns(cells[cols["calc_time"]], where, "calc_time"),
                _rate(cells[cols["last_funding_rate"]], where, "last_funding_rate"),
                _interval(cells[cols["funding_interval_hours"]], where, "funding_interval_hours")
                if "funding_interval_hours" in cols
                else math.nan,
                where,
            )
        )
    return rows, None


def _json_rows(path: Path, text: str) -> tuple[list[_Row], str | None]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if isinstance(doc, dict) and "code" in doc and "msg" in doc:
        raise UserError(f"{path}: a Binance error answer ({doc['code']}: {doc['msg']}), not funding rates")
    if not isinstance(doc, list):
        raise UserError(f"{path}: expected the JSON list of GET /fapi/v1/fundingRate, got a {type(doc).__name__}")
    rows: list[_Row] = []
    symbol: str | None = None
    for i, ent in enumerate(doc):
        where = f"{path}: entry {i + 1}"
        if not isinstance(ent, dict) or "fundingTime" not in ent or "fundingRate" not in ent:
            raise UserError(f"{where}: not a funding entry (fundingTime, fundingRate): {str(ent)[:80]}")
        sym = ent.get("symbol")
        if isinstance(sym, str) and sym:
            if symbol is None:
                symbol = sym.upper()
            elif sym.upper() != symbol:
                raise UserError(f"{where}: symbol {sym} after {symbol}; give the rates of one symbol")
        rows.append(
            _Row(
                _time_ns(ent["fundingTime"], where, "fundingTime"),
                _rate(ent["fundingRate"], where, "fundingRate"),
                math.nan,
                where,
            )
        )
    return rows, symbol
