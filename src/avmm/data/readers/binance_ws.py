"""Binance websocket captures: lines ``<local_ts_ns> <JSON>`` (gzip or plain).

Handled messages (combined-stream envelope ``{"stream": ..., "data": ...}``, spot and USD-M):

* ``bookTicker``  -> QUOTE. Spot has no exchange time: ``exch_ts = local_ts``, ``F_EXCH_TS`` clear.
  USD-M uses ``T`` (transaction time, ms). ``seq`` = ``u``. An update id below the last one seen is
  a duplicate.
* ``trade`` / ``aggTrade`` -> TRADE at ``T`` (trade time, ms); aggressor = SELL when ``m`` (buyer is
  the maker) else BUY; ``seq`` = trade id ``t`` / aggregate id ``a``; an id not above the last one
  is a duplicate. A capture with both streams would store every execution twice, so ``@trade``
  wins: once the capture has shown a ``@trade`` message (of the converted symbol), ``aggTrade``
  messages are not stored (counted ``agg_trade_skipped``); and a ``@trade`` whose id lies in the
  trade-id range ``[f, l]`` covered by the aggTrades already stored before it (from the first
  stored ``f`` to the highest stored ``l``) is counted ``duplicate`` and dropped. Each execution is
  thus stored once: as part of an aggTrade up to the first ``@trade``, individually after it.
  One corrupt id far ahead of its stream does not make the messages after it duplicates: an id
  between the one before the jump and the jump shows the jump to be corrupt (counted
  ``corrupt_id``, its message kept) and the stream goes on from there (``_Ids``).
* REST depth snapshot line ``{"lastUpdateId", "bids", "asks"}`` (USD-M also ``E``/``T``) -> CLEAR,
  then one SNAPSHOT row per level (``level`` = 0-based depth per side), ``F_LAST_IN_BATCH`` on the
  last row; ``seq`` = ``lastUpdateId``. Which symbol it belongs to: an enveloped snapshot takes it
  from its ``stream`` name (checked like every other message's ``s``); a bare line names none, so it
  is applied only when a depth diff of the converted symbol brackets it by update id (the rule for
  the first diff below, ``L`` = ``lastUpdateId``): a diff already buffered, waiting for a snapshot,
  at once; else the first later diff that is not older than the snapshot, if it comes within
  ``HOLD_NS`` (the REST answer can arrive before that diff); diffs older than it, arriving
  meanwhile, are handled as if it had not come. A confirmed snapshot is written at its own place
  and time when no book row was written since it was read (and its rows are still buffered: same
  file, same chunk), else right before the diff that confirms it, at that diff's time. A bare
  snapshot that no diff of the converted symbol brackets (another symbol's, or one older than the
  book) is counted ``other_symbol`` and not applied -- also when the capture has no diffs of that
  symbol at all.
* ``depthUpdate`` -> one DEPTH row per changed level (``qty`` 0 removes it), ``F_LAST_IN_BATCH`` on
  the last row of the message; ``seq`` = ``u``; ``exch_ts`` = ``T`` (USD-M) or ``E`` (spot).

Depth diffs follow Binance's rules for a local book. Until a snapshot has been seen, diffs are
buffered (the capture usually receives the diff that straddles the snapshot *before* the REST
answer). At a snapshot with id ``L``: buffered diffs with ``u <= L`` (spot) / ``u < L`` (USD-M) are
stale and dropped; the first applied diff must satisfy ``U <= L+1 <= u`` (spot) /
``U <= L <= u`` (USD-M); then each diff must continue the previous one: ``U == prev_u + 1`` (spot)
or ``pu == prev_u`` (USD-M). Buffered diffs applied at a snapshot are emitted at the snapshot's
``local_ts`` (the moment they could be applied). A break is a *sequence gap*: counted, a CLEAR row
flagged ``F_SEQ_GAP`` is emitted (the book is unknown from then on) and diffs are dropped (counted
``depth_unsynced``) until the next snapshot resynchronises the book.

Several files of one continuous capture are read as one stream, in order of their first
timestamp, so the book state carries across files. Spot and USD-M futures captures cannot be
chained (their update ids and books are unrelated): each file's market is decided by its first
message that shows it -- USD-M depth diffs carry ``pu``, bookTicker and REST snapshots ``T``,
trades ``X``; spot trades and aggTrades carry ``M``, spot depth diffs, bookTicker and snapshots lack
those fields -- and a convert of files of both markets, or a file whose market changes part-way,
stops with a one-line error (the heads of all files are checked before anything is read).

A gzip file cut short or damaged is read up to the damage (``files.SalvageGzip``): every complete
line before it is kept, the cut line is counted ``truncated_line`` and the damage ``corrupt_gzip``
at that line number.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import numpy as np

from avmm.data.columns import I64_MAX, check_price, check_quotes, check_size
from avmm.data.files import SalvageGzip, is_gzip
from avmm.data.issues import Counters, ProgressFn
from avmm.errors import UserError
from avmm.events import (
    BUY,
    CLEAR,
    DEPTH,
    EVENT_DTYPE,
    F_EXCH_TS,
    F_LAST_IN_BATCH,
    F_SEQ_GAP,
    QUOTE,
    SELL,
    SNAPSHOT,
    TRADE,
)
from avmm.venues.binance import depth_sync as ds
from avmm.venues.binance.messages import (
    DECODERS,
    AggTrade,
    Depth,
    EnvAggTrade,
    EnvBookTicker,
    EnvDepth,
    EnvSnapshot,
    EnvTrade,
    Levels,
    Snapshot,
    Trade,
)

MS = 1_000_000
MAX_PENDING = 10_000  # buffered depth diffs while waiting for a snapshot
HOLD_NS = 10 * 1_000_000_000  # how long a bare snapshot may wait for the diff that brackets it
MAX_HELD = 16  # bare snapshots waiting at once (a multi-symbol capture: one per symbol)
MAX_AGG_SPAN = 1_000_000  # trade ids one aggTrade may cover (more: corrupt ``f`` / ``l``)
MAX_LINE = 64 << 20  # bytes in one capture line (a depth snapshot of 5000 levels is ~200 KB)

SPOT, USDM = False, True  # market of a capture (``um``)
_MARKET = {SPOT: "spot", USDM: "USD-M futures"}


def _trade_market(m: Trade) -> bool | None:
    return USDM if m.X else (SPOT if m.M is not None else None)


def _agg_market(m: AggTrade) -> bool | None:
    return SPOT if m.M is not None else None


def _stream_kind(body: bytes) -> str | None:
    """Which message the JSON ``body`` of a capture line holds, by its head: a key of ``DECODERS``
    (``bt``, ``agg``, ``tr``, ``snap_env``, ``depth``, ``snap``), None when none."""
    head = body[:72]
    if b'"stream"' in head:
        if b"@bookTicker" in head:
            return "bt"
        if b"@aggTrade" in head:
            return "agg"
        if b"@trade" in head:
            return "tr"
        if b"@depth" in head:
            return "snap_env" if b'"lastUpdateId"' in body[:200] else "depth"
        return None
    if b'"lastUpdateId"' in head:
        return "snap"
    return None


# the market a decoded message shows (SPOT / USDM; None: it shows none), by stream kind
_MARKET_OF: dict[str, Callable[[Any], bool | None]] = {
    "bt": lambda env: env.data.T != 0,
    "agg": lambda env: _agg_market(env.data),
    "tr": lambda env: _trade_market(env.data),
    "snap_env": lambda env: env.data.T != 0,
    "depth": lambda env: env.data.pu != -1,
    "snap": lambda s: s.T != 0,
}


def _line_market(line: bytes) -> bool | None:
    """The market a capture line shows (None: it shows none, or is not readable)."""
    sp = line.find(b" ")
    if sp <= 0 or not line[:sp].isdigit():
        return None
    body = line[sp + 1 :]
    kind = _stream_kind(body)
    if kind is None:
        return None
    try:
        return _MARKET_OF[kind](DECODERS[kind].decode(body))
    except msgspec.MsgspecError:
        return None


def _head(path: Path, n: int) -> bytes:
    """The first ``n`` bytes of the (possibly gzip) file, or what precedes damage to it."""
    if is_gzip(path):
        with SalvageGzip(path, chunk=1 << 14) as g:
            return g.read(n)
    with open(path, "rb") as f:
        return f.read(n)


def head_market(path: Path, max_bytes: int = 1 << 20) -> tuple[bool, int] | None:
    """``(market, line)`` of the first line in the head of the file that shows its market."""
    try:
        lines = _head(path, max_bytes).split(b"\n")[:-1]
    except OSError:
        return None
    for ln, line in enumerate(lines, 1):
        um = _line_market(line)
        if um is not None:
            return um, ln
    return None


def first_local_ts(path: Path) -> int:
    """Local timestamp of the first line (for ordering the files of one capture)."""
    try:
        return int(_head(path, 1 << 16).split(b" ", 1)[0])
    except (OSError, ValueError):
        return 0


def looks_like(path: Path) -> bool:
    try:
        head = _head(path, 4096)
    except OSError:
        return False
    line = head.split(b"\n", 1)[0]
    parts = line.split(b" ", 1)
    return len(parts) == 2 and parts[0].isdigit() and parts[1][:1] == b"{"


_serial = itertools.count()


class _Rows:
    """Column lists for the rows of one chunk. ``serial`` changes at every ``take``: a position in
    the lists stays valid while it is unchanged."""

    COLS = ("exch", "local", "seq", "px", "qty", "px2", "qty2", "kind", "side", "flags", "level", "line")
    __slots__ = COLS + ("serial",)
    exch: list[int]
    local: list[int]
    seq: list[int]
    px: list[float]
    qty: list[float]
    px2: list[float]
    qty2: list[float]
    kind: list[int]
    side: list[int]
    flags: list[int]
    level: list[int]
    line: list[int]
    serial: int

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        for s in self.COLS:
            setattr(self, s, [])
        self.serial = next(_serial)

    def __len__(self) -> int:
        return len(self.local)

    def insert(self, pos: int, other: _Rows) -> None:
        """Insert the rows of ``other`` before row ``pos``."""
        for s in self.COLS:
            getattr(self, s)[pos:pos] = getattr(other, s)

    def one(
        self,
        exch: int,
        local: int,
        seq: int,
        px: float,
        qty: float,
        px2: float,
        qty2: float,
        kind: int,
        side: int,
        flags: int,
        level: int,
        line: int,
    ) -> None:
        self.exch.append(exch)
        self.local.append(local)
        self.seq.append(seq)
        self.px.append(px)
        self.qty.append(qty)
        self.px2.append(px2)
        self.qty2.append(qty2)
        self.kind.append(kind)
        self.side.append(side)
        self.flags.append(flags)
        self.level.append(level)
        self.line.append(line)

    def levels(
        self, exch: int, local: int, seq: int, lv: Levels, kind: int, side: int, flags: int, line: int, with_level: bool
    ) -> None:
        n = len(lv)
        if n == 0:
            return
        self.exch.extend([exch] * n)
        self.local.extend([local] * n)
        self.seq.extend([seq] * n)
        self.px.extend([p for p, _ in lv])
        self.qty.extend([q for _, q in lv])
        self.px2.extend([0.0] * n)
        self.qty2.extend([0.0] * n)
        self.kind.extend([kind] * n)
        self.side.extend([side] * n)
        self.flags.extend([flags] * n)
        self.level.extend(range(n) if with_level else [-1] * n)
        self.line.extend([line] * n)

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.local)
        ev = np.empty(n, dtype=EVENT_DTYPE)
        ev["exch_ts"] = np.array(self.exch, dtype=np.int64)
        ev["local_ts"] = np.array(self.local, dtype=np.int64)
        ev["seq"] = np.array(self.seq, dtype=np.int64)
        ev["px"] = np.array(self.px, dtype=np.float64)
        ev["qty"] = np.array(self.qty, dtype=np.float64)
        ev["px2"] = np.array(self.px2, dtype=np.float64)
        ev["qty2"] = np.array(self.qty2, dtype=np.float64)
        ev["kind"] = np.array(self.kind, dtype=np.uint8)
        ev["side"] = np.array(self.side, dtype=np.int8)
        ev["flags"] = np.array(self.flags, dtype=np.uint16)
        ev["level"] = np.array(self.level, dtype=np.int32)
        lines = np.array(self.line, dtype=np.int64)
        self._reset()
        return ev, lines


def _validate(ev: np.ndarray, lines: np.ndarray, c: Counters, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Drop unusable rows (counted) and set F_LAST_IN_BATCH on the last kept row of each
    depth/snapshot message (rows of one message share a line number)."""
    kind = ev["kind"]
    bad = np.zeros(len(ev), dtype=bool)
    q = kind == QUOTE
    if q.any():
        bad[q] = check_quotes(ev[q], c, path, lines[q])
    t = kind == TRADE
    if t.any():
        bad[t] = check_price(ev["px"][t], c, path, lines[t]) | check_size(ev["qty"][t], c, path, lines[t])
    d = (kind == DEPTH) | (kind == SNAPSHOT)
    if d.any():
        bad[d] = check_price(ev["px"][d], c, path, lines[d]) | check_size(
            ev["qty"][d], c, path, lines[d], allow_zero=True
        )
    if bad.any():
        ev, lines = ev[~bad], lines[~bad]
        kind = ev["kind"]
        d = (kind == DEPTH) | (kind == SNAPSHOT)
    if d.any():
        idx = np.flatnonzero(d)
        ln = lines[idx]
        kd = kind[idx]
        last = np.ones(len(idx), dtype=bool)
        # (a message is all SNAPSHOT or all DEPTH rows: a snapshot written with the diff that
        # confirms it, under that diff's line number, is still its own message)
        last[:-1] = (ln[1:] != ln[:-1]) | (kd[1:] != kd[:-1])
        ev["flags"][idx[last]] |= F_LAST_IN_BATCH
    return ev, lines


class _Held(msgspec.Struct):
    """A bare snapshot waiting for a diff of the converted symbol to bracket it."""

    s: Snapshot
    local: int
    ln: int
    name: str
    serial: int  # ``_Rows.serial`` when it was read, and its position there
    pos: int
    book_n: int  # ``_State.book_n`` when it was read


class _Ids:
    """The ids of one message stream (bookTicker ``u``, trade ``t``, aggTrade ``a``): the highest
    accepted (``last``), the one accepted before it (``prev``), and where ``last`` was read.

    An id not above ``last`` is a duplicate -- unless it lies strictly between ``prev`` and
    ``last``: then ``last`` was a single id far ahead of the stream (corrupt), and it must not turn
    every later message into a "duplicate". That id is counted ``corrupt_id`` (its message was
    kept) and the stream goes on from the new id.
    """

    __slots__ = ("what", "last", "prev", "ln", "name")

    def __init__(self, what: str) -> None:
        self.what = what
        self.last = -1
        self.prev = -1
        self.ln = 0
        self.name = ""

    def corrupt(self, i: int, c: Counters) -> bool:
        """Id ``i`` (not above ``last``) shows ``last`` to be a corrupt id (counted): True."""
        if not self.prev < i < self.last:
            return False
        c.add("corrupt_id", 1, f"{self.name}:{self.ln}: {self.what} {self.last}, then {i}")
        self.last = self.prev
        return True

    def take(self, i: int, ln: int, name: str) -> None:
        self.prev, self.last, self.ln, self.name = self.last, i, ln, name


class _State:
    """Sequence state shared across the files of one capture."""

    def __init__(self) -> None:
        self.sync = ds.DepthSync(MAX_PENDING)  # buffered diffs carry their line number
        self.held: list[_Held] = []  # bare snapshots not yet attributed to the symbol
        self.book_n = 0  # book-changing messages written so far (diffs, snapshots, gaps)
        self.trade_ids = _Ids("trade id t")
        self.agg_ids = _Ids("aggTrade id a")
        self.bt_ids = _Ids("bookTicker update id u")
        self.saw_trade = False  # a @trade message was seen: aggTrades are not stored
        self.agg_lo = -1  # trade ids covered by the stored aggTrades
        self.agg_hi = -1
        self.market: bool | None = None  # SPOT / USDM, and the file that showed it
        self.market_path: Path | None = None
        self.symbol: str | None = None


def read_binance_ws(
    paths: list[Path],
    c: Counters,
    symbol: str | None = None,
    progress: ProgressFn | None = None,
    chunk_rows: int = 1 << 18,
) -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
    """Yield ``(events, lines, path)`` chunks (source order) from the capture files ``paths``."""
    st = _State()
    st.symbol = symbol.upper() if symbol else None
    paths = sorted((Path(p) for p in paths), key=first_local_ts)
    for path in paths:  # spot and USD-M files mixed: stop before reading anything
        hm = head_market(path)
        if hm is not None:
            _check_market(st, hm[0], None, path, hm[1])
    for path in paths:
        yield from _read_file(path, st, c, progress, chunk_rows)
    if st.sync.pending:
        c.add("depth_unsynced", len(st.sync.pending), f"{paths[-1].name}:{st.sync.pending[0][1]}")
        st.sync.reset()
    for h in st.held:
        c.add("other_symbol", 1, f"{h.name}:{h.ln}")
    st.held.clear()


def _check_market(st: _State, um: bool, fum: bool | None, path: Path, ln: int) -> bool:
    """The market of file ``path`` once its line ``ln`` showed market ``um``; ``fum`` is what the
    file showed before (None: nothing yet). Raises when it contradicts the file or the capture."""
    if fum is None:
        if st.market is None:
            st.market, st.market_path = um, path
        elif st.market != um and st.market_path != path:
            raise UserError(
                f"{path}: {_MARKET[um]} capture mixed with {_MARKET[st.market]} capture "
                f"{st.market_path}; convert them separately"
            )
        elif st.market != um:
            fum = st.market  # (the head check saw this file's other market first)
    if fum is not None and fum != um:
        raise UserError(
            f"{path}:{ln}: {_MARKET[um]} message in a {_MARKET[fum]} capture (the market changes "
            f"part-way through the file); convert spot and USD-M captures separately"
        )
    return um


def _blocks(path: Path, c: Counters, progress: ProgressFn | None) -> Iterator[tuple[list[bytes], int]]:
    """Yield (complete lines, first line number) from the file; the last piece of the file is
    yielded even without a trailing newline. Gzip damage ends the file: every complete line before
    it is yielded, the damage is counted ``corrupt_gzip`` at the line it cuts, that line
    ``truncated_line``."""
    rest = b""
    lineno = 1
    pos = 0
    f: SalvageGzip | BinaryIO  # gzip in small compressed pieces: damage loses at most the piece it is in
    with SalvageGzip(path, chunk=1 << 16) if is_gzip(path) else open(path, "rb") as f:
        while True:
            block = f.read(1 << 22)
            if progress is not None:
                now = f.raw_pos if isinstance(f, SalvageGzip) else f.tell()
                progress(now - pos)
                pos = now
            if not block:
                err = f.error if isinstance(f, SalvageGzip) else None
                if err is not None:
                    if lineno == 1 and not rest:
                        raise UserError(f"{path}:1: corrupt gzip file ({err})")
                    c.add("corrupt_gzip", 1, f"{path.name}:{lineno}: {err}; rest of file skipped")
                    if rest:  # the line cut by the damage is lost
                        c.add("truncated_line", 1, f"{path.name}:{lineno}")
                elif rest:
                    yield [rest], lineno
                return
            buf = rest + block
            lines = buf.split(b"\n")
            rest = lines.pop()
            if lines:
                yield lines, lineno
                lineno += len(lines)
            if len(rest) > MAX_LINE:  # not a capture (or a decompression bomb): stop before memory runs out
                raise UserError(f"{path}:{lineno}: line longer than {MAX_LINE >> 20} MiB; not a websocket capture")


def _local_ts(line: bytes, sp: int) -> int:
    """The local timestamp before the first space ``sp`` of a line (-1: none, not a number, or
    past what int64 ns can hold)."""
    try:
        t = int(line[:sp]) if sp > 0 else -1
    except ValueError:
        return -1
    return t if t <= I64_MAX else -1


class _FileReader:
    """The lines of one capture file: each decoded by its stream kind, checked against the file's
    market, and handed to the handler of its stream, which writes its rows or counts it."""

    def __init__(self, path: Path, st: _State, c: Counters) -> None:
        self.path = path
        self.name = path.name
        self.st = st
        self.c = c
        self.rows = _Rows()
        self.fum: bool | None = None  # the market this file has shown (SPOT / USDM), None: not yet
        self.used = 0  # lines written (or buffered)
        self.bad_lines = 0  # lines that are not capture messages (unknown, undecodable)
        self.first_bad: int | None = None
        # stream kind -> handler(message, local_ts, line number) -> written (False: skipped, counted)
        self.handlers: dict[str, Callable[[Any, int, int], bool]] = {
            "bt": self.book_ticker,
            "agg": self.agg_trade,
            "tr": self.trade,
            "snap_env": self.snapshot,
            "depth": self.depth,
            "snap": self.bare_snapshot,
        }

    def take(self) -> tuple[np.ndarray, np.ndarray, str]:
        """The rows read so far, validated, as a reader chunk."""
        ev, lns = _validate(*self.rows.take(), self.c, self.path)
        return ev, lns, str(self.path)

    def line(self, line: bytes, ln: int, last_block_line: int) -> bool:
        """Read line ``ln``; True when it was used (its rows written, or its diff buffered)."""
        if not line.strip():
            return False
        sp = line.find(b" ")
        local = _local_ts(line, sp)
        if local <= 0:
            self._bad("truncated_line" if sp < 0 and ln == last_block_line else "bad_timestamp", ln)
            return False
        body = line[sp + 1 :]
        kind = _stream_kind(body)
        if kind is None:
            self._bad("unknown_message", ln)
            return False
        try:
            msg = DECODERS[kind].decode(body)
        except msgspec.ValidationError as e:
            self._bad("non_numeric", ln, f": {e}")
            return False
        except msgspec.DecodeError as e:
            if ln == last_block_line and not line.endswith(b"}"):
                self._bad("truncated_line", ln)
            else:
                self._bad("bad_json", ln, f": {e}")
            return False
        um = _MARKET_OF[kind](msg)
        if um is not None and um is not self.fum:
            self.fum = _check_market(self.st, um, self.fum, self.path, ln)
        used = self.handlers[kind](msg, local, ln)
        self.used += used
        return used

    def _bad(self, key: str, ln: int, detail: str = "") -> None:
        """Count line ``ln``, which is not a usable capture message."""
        self.c.add(key, 1, f"{self.name}:{ln}{detail}")
        self.bad_lines += 1
        self.first_bad = self.first_bad or ln

    def _skip(self, key: str, ln: int) -> bool:
        """Count message ``ln`` as skipped (``key``); False (not written)."""
        self.c.add(key, 1, f"{self.name}:{ln}")
        return False

    def _bad_span(self, m: AggTrade, ln: int) -> bool:
        """An aggTrade whose trade ids ``f..l`` span more than one order can fill: corrupt ids,
        counted, not used to spot the @trade messages it carries (False)."""
        self.c.add("corrupt_id", 1, f"{self.name}:{ln}: aggTrade trade ids f={m.f} l={m.l}")
        return False

    def _trade_row(self, m: Trade | AggTrade, seq: int, local: int, ln: int) -> bool:
        self.rows.one(m.T * MS, local, seq, m.p, m.q, 0.0, 0.0, TRADE, SELL if m.m else BUY, F_EXCH_TS, -1, ln)
        return True

    def book_ticker(self, env: EnvBookTicker, local: int, ln: int) -> bool:
        m, st = env.data, self.st
        if not _sym_ok(st, m.s, self.c, self.name, ln):
            return False
        ids = st.bt_ids
        if m.u <= ids.last and not ids.corrupt(m.u, self.c):
            return self._skip("duplicate", ln)
        ids.take(m.u, ln, self.name)
        if m.T or m.E:
            self.rows.one((m.T or m.E) * MS, local, m.u, m.b, m.B, m.a, m.A, QUOTE, 0, F_EXCH_TS, -1, ln)
        else:
            self.rows.one(local, local, m.u, m.b, m.B, m.a, m.A, QUOTE, 0, 0, -1, ln)
        return True

    def agg_trade(self, env: EnvAggTrade, local: int, ln: int) -> bool:
        m, st = env.data, self.st
        if not _sym_ok(st, m.s, self.c, self.name, ln):
            return False
        if st.saw_trade:  # the @trade messages carry these executions
            return self._skip("agg_trade_skipped", ln)
        ids = st.agg_ids
        if m.a <= ids.last and not ids.corrupt(m.a, self.c):
            return self._skip("duplicate", ln)
        ids.take(m.a, ln, self.name)
        if 0 <= m.f <= m.l and (m.l - m.f <= MAX_AGG_SPAN or self._bad_span(m, ln)):
            if st.agg_lo < 0:
                st.agg_lo = m.f
            st.agg_hi = max(st.agg_hi, m.l)
        return self._trade_row(m, m.a, local, ln)

    def trade(self, env: EnvTrade, local: int, ln: int) -> bool:
        m, st = env.data, self.st
        if not _sym_ok(st, m.s, self.c, self.name, ln):
            return False
        st.saw_trade = True
        ids = st.trade_ids
        if m.t <= ids.last and not ids.corrupt(m.t, self.c):
            return self._skip("duplicate", ln)
        ids.take(m.t, ln, self.name)
        if st.agg_lo <= m.t <= st.agg_hi:  # stored already, in an aggTrade
            return self._skip("duplicate", ln)
        return self._trade_row(m, m.t, local, ln)

    def snapshot(self, env: EnvSnapshot, local: int, ln: int) -> bool:
        if not _sym_ok(self.st, env.stream.split("@", 1)[0], self.c, self.name, ln):
            return False
        _on_snapshot(env.data, local, ln, self.st, self.rows, self.c, self.name)
        return True

    def depth(self, env: EnvDepth, local: int, ln: int) -> bool:
        m = env.data
        if not _sym_ok(self.st, m.s, self.c, self.name, ln):
            return False
        _on_diff(m, local, ln, self.st, self.rows, self.c, self.name)
        return True

    def bare_snapshot(self, s: Snapshot, local: int, ln: int) -> bool:
        _on_bare_snapshot(s, local, ln, self.st, self.rows, self.c, self.name)
        return True


def _read_file(
    path: Path, st: _State, c: Counters, progress: ProgressFn | None, chunk_rows: int
) -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
    fr = _FileReader(path, st, c)
    blank = True
    for lines, lineno in _blocks(path, c, progress):
        last_block_line = lineno + len(lines) - 1
        blank = blank and not any(line.strip() for line in lines)
        for i, line in enumerate(lines):
            if fr.line(line, lineno + i, last_block_line) and len(fr.rows) >= chunk_rows:
                yield fr.take()
    if len(fr.rows):
        yield fr.take()
    if blank and "corrupt_gzip" not in c.issues:
        c.add("empty_file", 1, f"{path.name}:1: no data rows")
    if fr.used == 0 and fr.bad_lines > 0:
        raise UserError(f"{path}:{fr.first_bad}: not a Binance websocket capture (no usable line)")


def _sym_ok(st: _State, s: str, c: Counters, name: str, ln: int) -> bool:
    if not s:
        return True
    s = s.upper()
    if st.symbol is None:
        st.symbol = s
        return True
    if s != st.symbol:
        c.add("other_symbol", 1, f"{name}:{ln}")
        return False
    return True


def _emit_diff(m: Depth, local: int, ln: int, st: _State, rows: _Rows) -> None:
    exch = (m.T or m.E) * MS
    fl = F_EXCH_TS if exch else 0
    if not exch:
        exch = local
    rows.levels(exch, local, m.u, m.b, DEPTH, BUY, fl, ln, False)
    rows.levels(exch, local, m.u, m.a, DEPTH, SELL, fl, ln, False)
    st.book_n += 1


def _outcome(
    m: Depth, out: int, last_u: int, local: int, ln: int, st: _State, rows: _Rows, c: Counters, name: str
) -> None:
    """Write or count diff ``m`` by its ``DepthSync`` outcome (``last_u``: before the diff)."""
    if out == ds.APPLY:
        _emit_diff(m, local, ln, st, rows)
    elif out == ds.STALE:
        c.add("depth_stale", 1, f"{name}:{ln}")
    elif out == ds.DUPLICATE:
        c.add("duplicate", 1, f"{name}:{ln}")
    elif out == ds.GAP:  # the book is unknown from here: a CLEAR row, resync at the next snapshot
        c.add("seq_gap", 1, f"{name}:{ln}: U={m.U} u={m.u} pu={m.pu} after u={last_u}")
        rows.one(local, local, m.u, 0.0, 0.0, 0.0, 0.0, CLEAR, 0, F_SEQ_GAP, -1, ln)
        st.book_n += 1
    elif out == ds.EVICTED and st.sync.evicted is not None:
        _, l0 = st.sync.evicted
        c.add("depth_unsynced", 1, f"{name}:{l0}")


def _on_diff(m: Depth, local: int, ln: int, st: _State, rows: _Rows, c: Counters, name: str) -> None:
    if st.held:
        _check_held(m, local, ln, st, rows, c, name)
    last_u = st.sync.last_u
    _outcome(m, st.sync.on_diff(m, ln), last_u, local, ln, st, rows, c, name)


def _on_snapshot(s: Snapshot, local: int, ln: int, st: _State, rows: _Rows, c: Counters, name: str) -> None:
    exch = (s.T or s.E) * MS
    fl = F_EXCH_TS if exch else 0
    if not exch:
        exch = local
    rows.one(exch, local, s.lastUpdateId, 0.0, 0.0, 0.0, 0.0, CLEAR, 0, fl, -1, ln)
    rows.levels(exch, local, s.lastUpdateId, s.bids, SNAPSHOT, BUY, fl, ln, True)
    rows.levels(exch, local, s.lastUpdateId, s.asks, SNAPSHOT, SELL, fl, ln, True)
    st.book_n += 1
    last_u = s.lastUpdateId
    for m, pln, out in st.sync.on_snapshot(s.lastUpdateId):
        # buffered diffs are applied now, at the snapshot's arrival time
        _outcome(m, out, last_u, local, pln, st, rows, c, name)
        if out == ds.APPLY:
            last_u = m.u


def _on_bare_snapshot(s: Snapshot, local: int, ln: int, st: _State, rows: _Rows, c: Counters, name: str) -> None:
    """A snapshot line without a symbol: applied if a buffered diff brackets it, held if it may be
    bracketed by a later diff, else counted ``other_symbol`` (see the module docstring)."""
    lid = s.lastUpdateId
    rel = [ds.bracket(m, lid) for m, _ in st.sync.pending]
    if 0 in rel:
        _on_snapshot(s, local, ln, st, rows, c, name)
        return
    if rel and max(rel) > 0:
        c.add("other_symbol", 1, f"{name}:{ln}")
        return
    if len(st.held) >= MAX_HELD:
        h = st.held.pop(0)
        c.add("other_symbol", 1, f"{h.name}:{h.ln}")
    st.held.append(_Held(s, local, ln, name, rows.serial, len(rows), st.book_n))


def _check_held(m: Depth, local: int, ln: int, st: _State, rows: _Rows, c: Counters, name: str) -> None:
    """Diff ``m`` of the converted symbol against the held bare snapshots: one it brackets is
    applied (before ``m``); one it is newer than, or held too long, is dropped (``other_symbol``)."""
    keep: list[_Held] = []
    conf: _Held | None = None
    for h in st.held:
        r = ds.bracket(m, h.s.lastUpdateId) if local - h.local <= HOLD_NS else 1
        if r < 0:
            keep.append(h)
            continue
        drop: _Held | None = h
        if r == 0:
            drop, conf = conf, h  # the latest bracketed one wins
        if drop is not None:
            c.add("other_symbol", 1, f"{drop.name}:{drop.ln}")
    st.held = keep
    if conf is None:
        return
    if conf.serial == rows.serial and conf.book_n == st.book_n:
        # no book row written since it was read (nor the rows taken): in place, at its own time
        tmp = _Rows()
        _on_snapshot(conf.s, conf.local, conf.ln, st, tmp, c, conf.name)
        rows.insert(conf.pos, tmp)
    else:  # after the rows written meanwhile, at the time it is confirmed
        _on_snapshot(conf.s, local, conf.ln if conf.name == name else ln, st, rows, c, name)
