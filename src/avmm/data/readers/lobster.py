"""LOBSTER ``message`` + ``orderbook`` file pairs (any level; plain or gzip; with or without header).

File names follow LOBSTER: ``TICKER_YYYY-MM-DD_START_END_message_L.csv`` and ``..._orderbook_L.csv``.
Times are seconds after midnight in New York time (converted to UTC ns with the file's date);
prices are USD x 10000. LOBSTER has one clock, the exchange's: ``exch_ts == local_ts``,
``F_EXCH_TS`` set.

* message type 4 (visible execution) or 5 (hidden execution) -> TRADE at ``Price``, ``Size``; the
  aggressor is opposite to the resting order's ``Direction``; ``seq`` = order id.
* orderbook row i (the book after message i) -> QUOTE from level 1 when the top of book changed.
  Deeper levels are read past (only level 1 feeds quotes). A side with LOBSTER's dummy price
  (+-9999999999, empty book side) gives no quote (counted ``empty_book_side``).
* type 7 (trading halt) is counted (``trading_halt``). LOBSTER messages carry no unique id and
  identical rows are genuine (e.g. several hidden executions at one rounded time), so there is no
  duplicate detection for LOBSTER.

The two files are read in lockstep; a final row present in only one of them (e.g. a truncated last
line) is counted ``unpaired_row``. A malformed row in the middle of either file breaks the pairing
and stops the conversion with the file and line.

The pairing is checked on the data (``_Pairing``): a message changes the book on its own side only
(``Direction``), at its own ``Price`` (the best price before or after it), and hidden executions,
cross trades and halts (types 5-7) change nothing; an orderbook row that does not follow from its
message and the row before breaks this. (The check applies once ``PROOF_ROWS`` rows in a row have
followed: data made by hand that never does cannot be checked.) Rows out of step (one row
missing from one file) break it at nearly every other row: several breaks close together stop
the conversion with one line naming the message and orderbook lines where the files stop
agreeing, instead of pairing every later row with the wrong message. A lone break (one damaged
value) is counted ``book_mismatch`` and kept.

Times are seconds after midnight: a time that is not a number, negative, or more than a day is
counted ``bad_timestamp``. A file without data rows is counted ``empty_file``.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from avmm.data.columns import Column, check_price, check_quotes, check_size, to_float, to_int
from avmm.data.csv import csv_batches, read_first_line
from avmm.data.files import SalvageGzip, is_gzip
from avmm.data.issues import Counters, ProgressFn
from avmm.errors import UserError
from avmm.events import EVENT_DTYPE, F_EXCH_TS, QUOTE, TRADE

MSG_COLS = ["Time", "Type", "OrderId", "Size", "Price", "Direction"]
OB_COLS = ["AskPrice1", "AskSize1", "BidPrice1", "BidSize1"]
_NAME = re.compile(
    r"^(?P<ticker>[^_]+)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<a>\d+)_(?P<b>\d+)_(?P<what>message|orderbook)_(?P<lvl>\d+)"
)
DUMMY = 9_999_999_999
DAY_S = 86_400.0  # a time is seconds after midnight
# out of step: this many breaks of the pairing (see ``_Pairing``) within ``STEP_WINDOW`` rows
STEP_BREAKS = 3
STEP_WINDOW = 16
PROOF_ROWS = 16  # the check applies once this many rows in a row have followed their messages


def parse_name(path: Path) -> dict[str, str] | None:
    m = _NAME.match(Path(path).name)
    return m.groupdict() if m else None


def pair_files(paths: list[Path]) -> list[tuple[Path, Path]]:
    """Group message/orderbook files into pairs (a lone file's partner is looked up beside it)."""
    pairs: dict[Path, Path] = {}
    for p in paths:
        p = Path(p)
        info = parse_name(p)
        if info is None:
            raise UserError(f"{p}: not a LOBSTER file name (TICKER_DATE_START_END_message|orderbook_LEVEL.csv)")
        if info["what"] == "message":
            msg = p
            ob = p.with_name(p.name.replace("_message_", "_orderbook_", 1))
        else:
            ob = p
            msg = p.with_name(p.name.replace("_orderbook_", "_message_", 1))
        if not msg.exists():
            raise UserError(f"{ob}: its LOBSTER message file {msg.name} is missing")
        if not ob.exists():
            raise UserError(f"{msg}: its LOBSTER orderbook file {ob.name} is missing")
        pairs[msg] = ob
    return sorted(pairs.items())


def looks_like(path: Path) -> bool:
    return parse_name(path) is not None


def midnight_ns(date: str) -> int:
    """UTC ns of midnight New York time on ``date``."""
    d = dt.date.fromisoformat(date)
    try:
        from zoneinfo import ZoneInfo

        tz = ZoneInfo("America/New_York")
    except Exception:  # no tz database: fall back to EST/EDT by the US DST rule of thumb
        tz = None
    if tz is not None:
        t = dt.datetime(d.year, d.month, d.day, tzinfo=tz)
        return int(t.timestamp()) * 1_000_000_000
    edt = 3 <= d.month <= 10
    return (
        int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone(dt.timedelta(hours=-4 if edt else -5))).timestamp())
        * 1_000_000_000
    )


def _has_header(path: Path) -> bool:
    first = read_first_line(path).split(b",", 1)[0].strip()
    try:
        float(first)
        return False
    except ValueError:
        return True


def _ncols(path: Path) -> int:
    return read_first_line(path).count(b",") + 1


def _lines_of(path: Path) -> io.BufferedReader:
    """The (possibly gzip) file as a binary stream of lines; a damaged gzip ends at the damage
    (``SalvageGzip``), as it did for the reader."""
    if is_gzip(path):
        return io.BufferedReader(SalvageGzip(path))
    return open(path, "rb")  # noqa: SIM115  (the caller closes it)


def _last_line(path: Path) -> bytes:
    if is_gzip(path):
        last = b""
        with _lines_of(path) as f:  # (up to any damage: what the reader read)
            for line in f:
                last = line
        return last.rstrip(b"\r\n")
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 65536))
        tail = f.read()
    tail = tail.rstrip(b"\r\n") if not tail.endswith(b"\n") else tail[:-1].rstrip(b"\r")
    return tail.rsplit(b"\n", 1)[-1]


Chunk = dict[str, np.ndarray]  # named columns of a run of rows, with ``bad`` and ``line``
_Column = Callable[[Column], tuple[np.ndarray, np.ndarray]]

# chunk key -> (CSV column, conversion), for each file of a pair
MSG_FIELDS: dict[str, tuple[str, _Column]] = {
    "t": ("Time", to_float),
    "typ": ("Type", to_int),
    "oid": ("OrderId", to_int),
    "size": ("Size", to_float),
    "price": ("Price", to_float),
    "d": ("Direction", to_int),
}
OB_FIELDS: dict[str, tuple[str, _Column]] = {
    "ap": ("AskPrice1", to_float),
    "asz": ("AskSize1", to_float),
    "bp": ("BidPrice1", to_float),
    "bsz": ("BidSize1", to_float),
}


def _chunks(
    path: Path, c: Counters, progress: ProgressFn | None, fields: dict[str, tuple[str, _Column]], names: list[str]
) -> Iterator[tuple[Chunk, int]]:
    """``(chunk, rows)`` per CSV batch: the ``fields`` as numbers, ``bad`` (a field is not a number)
    and ``line`` (line numbers); ``names`` are all the file's columns."""
    include = [col for col, _ in fields.values()]
    hdr = _has_header(path)
    for batch, first in csv_batches(path, c, include=include, column_names=names, skip_header=hdr, progress=progress):
        chunk: Chunk = {}
        bad = np.zeros(batch.num_rows, dtype=bool)
        for key, (col, conv) in fields.items():
            chunk[key], b = conv(batch.column(col))
            bad |= b
        chunk["bad"] = bad
        chunk["line"] = np.arange(first, first + batch.num_rows, dtype=np.int64)
        yield chunk, batch.num_rows


def _msg_chunks(path: Path, c: Counters, progress: ProgressFn | None) -> Iterator[tuple[Chunk, int]]:
    n = _ncols(path)
    names = MSG_COLS + [f"extra{i}" for i in range(max(0, n - len(MSG_COLS)))]
    yield from _chunks(path, c, progress, MSG_FIELDS, names)


def _ob_chunks(path: Path, c: Counters, progress: ProgressFn | None) -> Iterator[tuple[Chunk, int]]:
    if not read_first_line(path).strip():
        c.add("empty_file", 1, f"{path.name}:1: no data rows")
        return
    n = _ncols(path)
    if n < 4 or n % 4:
        raise UserError(f"{path}:1: a LOBSTER orderbook file has 4 x level columns, found {n}")
    names = OB_COLS + [f"c{i}" for i in range(n - 4)]
    yield from _chunks(path, c, progress, OB_FIELDS, names)


_ROW = ("typ", "price", "d", "ap", "asz", "bp", "bsz", "mline", "oline", "usable")  # ``_Pairing`` rows


def _follows(r: dict[str, np.ndarray], m: int, o: int, po: int, n: int) -> np.ndarray:
    """For ``i`` in ``range(n)``: does orderbook row ``o + i`` follow from message row ``m + i``
    and orderbook row ``po + i`` (the book before it)? (``r``: columns of ``_ROW``; offsets may
    pair rows out of step, to test a hypothesis.)"""
    ap, asz, bp, bsz = (r[k][o : o + n] for k in ("ap", "asz", "bp", "bsz"))
    pap, pas, pbp, pbs = (r[k][po : po + n] for k in ("ap", "asz", "bp", "bsz"))
    typ, price, d = (r[k][m : m + n] for k in ("typ", "price", "d"))
    ask_same = (ap == pap) & (asz == pas)
    bid_same = (bp == pbp) & (bsz == pbs)
    buy = d == 1
    at_best = np.where(buy, (price == pbp) | (price == bp), (price == pap) | (price == ap))
    quiet = (typ >= 5) & (typ <= 7)  # hidden execution, cross trade, halt: the book stays
    ok = np.where(buy, ask_same, bid_same) & (np.where(buy, bid_same, ask_same) | (at_best & ~quiet))
    usable = r["usable"]
    return ok | ~usable[m : m + n] | ~usable[o : o + n] | ~usable[po : po + n]


class _Pairing:
    """Checks, row by row, that each orderbook row follows from its message and the row before
    (see the module docstring); counts a lone break ``book_mismatch``, and raises when breaks come
    close together (the files are out of step), naming where they went out of step."""

    KEEP = 512  # rows kept to find where the files went out of step

    def __init__(self, msg_path: Path, ob_path: Path, c: Counters) -> None:
        self.msg_path, self.ob_path, self.c = msg_path, ob_path, c
        self.rows: dict[str, np.ndarray] | None = None  # the last rows
        self.row = 0  # ordinal of the first row in ``rows``
        self.breaks: deque[tuple[int, int]] = deque()  # (row, orderbook line)
        self.run = 0  # rows in a row that followed, up to ``PROOF_ROWS``: the check applies

    def check(self, m: Chunk, o: Chunk, usable: np.ndarray) -> None:
        n = len(usable)
        if n == 0:
            return
        new = {"mline": m["line"], "oline": o["line"], "usable": usable}
        new.update((k, m[k]) for k in ("typ", "price", "d"))
        new.update((k, o[k]) for k in ("ap", "asz", "bp", "bsz"))
        r = new if self.rows is None else {k: np.concatenate([self.rows[k], new[k]]) for k in _ROW}
        r["usable"] = r["usable"].copy()
        k0 = len(r["usable"]) - n  # the first new row
        if k0 == 0:  # the first row has no row before it
            r["usable"][0] = False
        lo = max(k0, 1)
        ok = _follows(r, lo, lo, lo - 1, len(r["usable"]) - lo)
        fails = np.flatnonzero(~ok)
        if self.run < PROOF_ROWS:
            fails = self._prove(fails, len(ok))
        for i in fails + lo:
            self._break(r, int(i))
        cut = max(0, len(r["usable"]) - self.KEEP)
        self.rows = {k: v[cut:] for k, v in r.items()}
        self.row += cut

    def _prove(self, fails: np.ndarray, n: int) -> np.ndarray:
        """The breaks among ``n`` rows (``fails``) that count: those after the first
        ``PROOF_ROWS`` rows in a row that followed (data that never follows LOBSTER's rules,
        hand-made files, cannot be checked)."""
        last = -1 - self.run  # the last break before the run of rows that follow
        for f in fails:
            if f - last - 1 >= PROOF_ROWS:
                self.run = PROOF_ROWS
                return fails[fails > f - 1]
            last = int(f)
        self.run = n - last - 1
        if self.run >= PROOF_ROWS:
            self.run = PROOF_ROWS
        return fails[:0]

    def _break(self, r: dict[str, np.ndarray], i: int) -> None:
        b = self.breaks
        row = self.row + i
        while b and b[0][0] < row - STEP_WINDOW:
            self.c.add("book_mismatch", 1, f"{self.ob_path.name}:{b.popleft()[1]}")  # a lone one
        b.append((row, int(r["oline"][i])))
        if len(b) >= STEP_BREAKS:
            raise UserError(self._where(r, i, b[0][0] - self.row))

    def _where(self, r: dict[str, np.ndarray], end: int, first: int) -> str:
        """The message: where the files went out of step, from the rows before ``end`` (the
        first break of the cluster at ``first``): the earliest row from which pairing them one
        row apart -- a row missing from the message file, or from the orderbook file -- holds."""
        best: tuple[int, str] | None = None
        for what, (dm, do) in (("message", (-1, 0)), ("orderbook", (0, -1))):
            # row i paired as message i + dm with orderbook i + do (and its row before)
            start = 2
            ok = _follows(r, start + dm, start + do, start + do - 1, end + 1 - start)
            bad = np.flatnonzero(~ok)
            j = start + (int(bad[-1]) + 1 if len(bad) else 0)
            if j <= first and (best is None or j < best[0]):
                best = (j, what)
        ml, ol = int(r["mline"][first]), int(r["oline"][first])
        head = f"{self.msg_path}:{ml}: message and orderbook files out of step"
        if best is None:
            return (
                f"{head} by here ({self.ob_path.name}:{ol} and rows after it do not follow from their messages; "
                "a row missing from one file?)"
            )
        j, what = best
        jl = int(r["mline" if what == "message" else "oline"][j])
        name = (self.msg_path if what == "message" else self.ob_path).name
        return (
            f"{head} by here: {'an' if what == 'orderbook' else 'a'} {what} row is missing at or after "
            f"{name}:{max(jl - 1, 1)} "
            f"(the rows pair up again one row apart from there; {self.ob_path.name}:{ol} does not follow from "
            "its message)"
        )

    def close(self) -> None:
        for _, ol in self.breaks:
            self.c.add("book_mismatch", 1, f"{self.ob_path.name}:{ol}")
        self.breaks.clear()


class _Aligned:
    """Pull rows from a chunk stream ``n`` at a time."""

    def __init__(self, it: Iterator[tuple[Chunk, int]]) -> None:
        self.it = it
        self.buf: Chunk | None = None
        self.done = False

    def avail(self) -> int:
        while not self.done and (self.buf is None or len(self.buf["line"]) == 0):
            try:
                self.buf, _ = next(self.it)
            except StopIteration:
                self.done = True
        return 0 if self.buf is None else len(self.buf["line"])

    def take(self, n: int) -> Chunk:
        buf = self.buf or {}  # (``avail()`` came first: a chunk)
        out = {k: v[:n] for k, v in buf.items()}
        self.buf = {k: v[n:] for k, v in buf.items()}
        return out


def read_lobster(
    msg_path: Path,
    ob_path: Path,
    c: Counters,
    progress: ProgressFn | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
    msg_path, ob_path = Path(msg_path), Path(ob_path)
    info = parse_name(msg_path)
    if info is None:
        raise UserError(f"{msg_path}: not a LOBSTER message file name")
    base = midnight_ns(info["date"])
    cm, co = Counters(), Counters()  # per-file CSV problems, to check the pairing at the end
    M = _Aligned(_msg_chunks(msg_path, cm, progress))
    O = _Aligned(_ob_chunks(ob_path, co, progress))
    name = msg_path.name
    prev_q = None  # last emitted quote (bp, bsz, ap, asz)
    pairing = _Pairing(msg_path, ob_path, c)
    n_msg = n_ob = 0
    while True:
        a, b = M.avail(), O.avail()
        if a == 0 or b == 0:
            break
        n = min(a, b)
        m, o = M.take(n), O.take(n)
        n_msg += n
        n_ob += n
        lines = m["line"]
        pairing.check(m, o, ~m["bad"] & ~o["bad"])
        t_ok = np.isfinite(m["t"]) & (m["t"] >= 0) & (m["t"] <= DAY_S)
        ts = base + np.rint(np.where(t_ok, m["t"], 0.0) * 1e9).astype(np.int64)
        bad_m = m["bad"] | ~t_ok
        c.add_mask("non_numeric", m["bad"], name, lines)
        c.add_mask("bad_timestamp", ~m["bad"] & ~t_ok, name, lines)
        c.add_mask("trading_halt", (m["typ"] == 7) & ~bad_m, name, lines)
        # trades
        is_tr = ((m["typ"] == 4) | (m["typ"] == 5)) & ~bad_m
        tpx = m["price"] / 1e4
        if is_tr.any():
            ti = np.flatnonzero(is_tr)
            badp = check_price(tpx[ti], c, name, lines[ti]) | check_size(m["size"][ti], c, name, lines[ti])
            is_tr[ti[badp]] = False
        # quotes: after every message, when the top of book changed
        ob_bad = o["bad"]
        c.add_mask("non_numeric", ob_bad, ob_path.name, o["line"])
        empty = ~ob_bad & ((np.abs(o["ap"]) >= DUMMY) | (np.abs(o["bp"]) >= DUMMY))
        c.add_mask("empty_book_side", empty, ob_path.name, o["line"])
        qv = ~ob_bad & ~empty & ~bad_m
        bp, bsz, ap, asz = o["bp"] / 1e4, o["bsz"], o["ap"] / 1e4, o["asz"]
        changed = np.ones(n, dtype=bool)
        # compare with the previous *valid* quote: carry forward by index of last valid row
        vi = np.flatnonzero(qv)
        if len(vi):
            cur = np.stack([bp[vi], bsz[vi], ap[vi], asz[vi]], axis=1)
            prv = np.empty_like(cur)
            prv[1:] = cur[:-1]
            prv[0] = prev_q if prev_q is not None else np.nan
            ch = np.any(cur != prv, axis=1)
            changed[:] = False
            changed[vi] = ch
            prev_q = cur[-1].copy()
        else:
            changed[:] = False
        qrow = qv & changed
        n_t, n_q = int(is_tr.sum()), int(qrow.sum())
        ev = np.zeros(n_t + n_q, dtype=EVENT_DTYPE)
        # interleave: per message row, the trade first, then the quote
        order_key = np.concatenate([np.flatnonzero(is_tr) * 2, np.flatnonzero(qrow) * 2 + 1])
        src_row = np.concatenate([np.flatnonzero(is_tr), np.flatnonzero(qrow)])
        is_trade_row = np.concatenate([np.ones(n_t, bool), np.zeros(n_q, bool)])
        o_ = np.argsort(order_key, kind="stable")
        src_row, is_trade_row = src_row[o_], is_trade_row[o_]
        ev["exch_ts"] = ts[src_row]
        ev["local_ts"] = ts[src_row]
        ev["flags"] = F_EXCH_TS
        ev["level"] = -1
        ev["kind"] = np.where(is_trade_row, TRADE, QUOTE)
        ev["seq"] = np.where(is_trade_row, m["oid"][src_row], 0)
        ev["side"] = np.where(is_trade_row, -np.sign(m["d"][src_row]), 0).astype(np.int8)
        ev["px"] = np.where(is_trade_row, tpx[src_row], bp[src_row])
        ev["qty"] = np.where(is_trade_row, m["size"][src_row], bsz[src_row])
        ev["px2"] = np.where(is_trade_row, 0.0, ap[src_row])
        ev["qty2"] = np.where(is_trade_row, 0.0, asz[src_row])
        ln = lines[src_row]
        q = ~is_trade_row
        if q.any():
            badq = np.zeros(len(ev), dtype=bool)
            badq[q] = check_quotes(ev[q], c, ob_path.name, ln[q])
            if badq.any():
                ev, ln = ev[~badq], ln[~badq]
        if len(ev):
            yield ev, ln, str(msg_path)
    pairing.close()
    # the rest of the longer file, if any, is unpaired
    extra_m = extra_o = 0
    while M.avail():
        extra_m += len(M.take(M.avail())["line"])
    while O.avail():
        extra_o += len(O.take(O.avail())["line"])
    _check_pairing(msg_path, ob_path, cm, co, c)
    if extra_m or extra_o:
        c.add(
            "unpaired_row", extra_m + extra_o, f"{(msg_path if extra_m else ob_path).name}:{n_msg + 2}: no partner row"
        )


def _check_pairing(msg_path: Path, ob_path: Path, cm: Counters, co: Counters, c: Counters) -> None:
    """Merge the per-file CSV counters; a skipped row that is not the last line misaligns the
    two files: that is not recoverable."""
    for path, cc in ((msg_path, cm), (ob_path, co)):
        skipped = cc.issues.get("truncated_line", 0) + cc.issues.get("malformed_row", 0)
        if skipped:
            ok = skipped == 1
            if ok:
                last = _last_line(path).decode("utf-8", "replace")
                note = (cc.notes.get("truncated_line") or cc.notes.get("malformed_row") or [""])[0]
                ok = note.endswith(repr(last[:60]))
            if not ok:
                lineno = _find_line(path, cc)
                raise UserError(
                    f"{path}:{lineno}: malformed LOBSTER row in the middle of the file breaks the "
                    f"message/orderbook pairing"
                )
        for k, v in cc.issues.items():
            c.issues[k] = c.issues.get(k, 0) + v
            c.notes.setdefault(k, []).extend(cc.notes.get(k, [])[:5])


def _find_line(path: Path, cc: Counters) -> int:
    """Line number of the first skipped row (searched by its text)."""
    note = (cc.notes.get("truncated_line") or cc.notes.get("malformed_row") or [""])[0]
    m = re.search(r": (\d+) fields: (.*)$", note)
    if not m:
        return 0
    import ast

    try:
        text = ast.literal_eval(m.group(2)).encode()
    except (ValueError, SyntaxError):
        return 0
    with _lines_of(path) as f:
        for i, line in enumerate(f, 1):
            if (
                line.rstrip(b"\r\n").startswith(text)
                and len(line.rstrip(b"\r\n")) == len(text)
                or (len(text) == 60 and line.startswith(text))
            ):
                return i
    return 0
