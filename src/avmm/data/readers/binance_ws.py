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
from collections.abc import Iterator
from pathlib import Path

import msgspec
import numpy as np

from avmm.data.columns import check_price, check_quotes, check_size
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
from avmm.venues.binance.messages import DECODERS, AggTrade, Depth, Levels, Snapshot, Trade

MS = 1_000_000
MAX_PENDING = 10_000  # buffered depth diffs while waiting for a snapshot
HOLD_NS = 10 * 1_000_000_000  # how long a bare snapshot may wait for the diff that brackets it
MAX_HELD = 16  # bare snapshots waiting at once (a multi-symbol capture: one per symbol)

SPOT, USDM = False, True  # market of a capture (``um``)
_MARKET = {SPOT: "spot", USDM: "USD-M futures"}


def _trade_market(m: Trade) -> bool | None:
    return USDM if m.X else (SPOT if m.M is not None else None)


def _agg_market(m: AggTrade) -> bool | None:
    return SPOT if m.M is not None else None


def _line_market(line: bytes) -> bool | None:
    """The market a capture line shows (None: it shows none, or is not readable)."""
    sp = line.find(b" ")
    if sp <= 0 or not line[:sp].isdigit():
        return None
    body = line[sp + 1 :]
    head = body[:72]
    try:
        if b'"stream"' in head:
            if b"@bookTicker" in head:
                return DECODERS["bt"].decode(body).data.T != 0
            if b"@aggTrade" in head:
                return _agg_market(DECODERS["agg"].decode(body).data)
            if b"@trade" in head:
                return _trade_market(DECODERS["tr"].decode(body).data)
            if b"@depth" in head:
                if b'"lastUpdateId"' in body[:200]:
                    return DECODERS["snap_env"].decode(body).data.T != 0
                return DECODERS["depth"].decode(body).data.pu != -1
        elif b'"lastUpdateId"' in head:
            return DECODERS["snap"].decode(body).T != 0
    except msgspec.MsgspecError:
        return None
    return None


def _head(path: Path, n: int) -> bytes:
    """The first ``n`` bytes of the (possibly gzip) file, or what precedes damage to it."""
    if is_gzip(path):
        f = SalvageGzip(path, chunk=1 << 14)
        try:
            return f.read(n)
        finally:
            f.close()
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

    def __init__(self):
        for s in self.COLS:
            setattr(self, s, [])
        self.serial = next(_serial)

    def __len__(self):
        return len(self.local)

    def insert(self, pos: int, other: _Rows) -> None:
        """Insert the rows of ``other`` before row ``pos``."""
        for s in self.COLS:
            getattr(self, s)[pos:pos] = getattr(other, s)

    def one(self, exch, local, seq, px, qty, px2, qty2, kind, side, flags, level, line):
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

    def levels(self, exch, local, seq, lv: Levels, kind, side, flags, line, with_level: bool):
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
        self.__init__()
        return ev, lines


def _validate(ev: np.ndarray, lines: np.ndarray, c: Counters, path: Path):
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


class _State:
    """Sequence state shared across the files of one capture."""

    def __init__(self):
        self.sync = ds.DepthSync(MAX_PENDING)  # buffered diffs carry their line number
        self.held: list[_Held] = []  # bare snapshots not yet attributed to the symbol
        self.book_n = 0  # book-changing messages written so far (diffs, snapshots, gaps)
        self.last_trade = -1
        self.last_agg = -1
        self.last_bt = -1
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
    gz = is_gzip(path)
    # small compressed pieces: data damage loses at most the piece the decoder fails in
    f = SalvageGzip(path, chunk=1 << 16) if gz else open(path, "rb")
    rest = b""
    lineno = 1
    pos = 0
    try:
        while True:
            block = f.read(1 << 22)
            if progress is not None:
                now = f.raw_pos if gz else f.tell()
                progress(now - pos)
                pos = now
            if not block:
                err = f.error if gz else None
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
    finally:
        f.close()


def _read_file(path: Path, st: _State, c: Counters, progress, chunk_rows: int):
    rows = _Rows()
    dec_bt, dec_tr, dec_agg = DECODERS["bt"], DECODERS["tr"], DECODERS["agg"]
    dec_depth, dec_snap, dec_snap_env = DECODERS["depth"], DECODERS["snap"], DECODERS["snap_env"]
    name = path.name
    fum: bool | None = None  # the market this file has shown (SPOT / USDM), None: not yet
    used = 0
    bad_lines = 0
    first_bad: int | None = None
    total_lines = 0
    for lines, lineno in _blocks(path, c, progress):
        last_block_line = lineno + len(lines) - 1
        for i, line in enumerate(lines):
            ln = lineno + i
            total_lines += 1
            if not line.strip():
                continue
            sp = line.find(b" ")
            try:
                local = int(line[:sp]) if sp > 0 else -1
            except ValueError:
                local = -1
            if local <= 0:
                key = "truncated_line" if sp < 0 and ln == last_block_line else "bad_timestamp"
                c.add(key, 1, f"{name}:{ln}")
                bad_lines += 1
                first_bad = first_bad or ln
                continue
            body = line[sp + 1 :]
            head = body[:72]
            try:
                if b'"stream"' in head:
                    if b"@bookTicker" in head:
                        m = dec_bt.decode(body).data
                        if (m.T != 0) is not fum:
                            fum = _check_market(st, m.T != 0, fum, path, ln)
                        if not _sym_ok(st, m.s, c, name, ln):
                            continue
                        if m.u <= st.last_bt:
                            c.add("duplicate", 1, f"{name}:{ln}")
                            continue
                        st.last_bt = m.u
                        if m.T or m.E:
                            rows.one((m.T or m.E) * MS, local, m.u, m.b, m.B, m.a, m.A, QUOTE, 0, F_EXCH_TS, -1, ln)
                        else:
                            rows.one(local, local, m.u, m.b, m.B, m.a, m.A, QUOTE, 0, 0, -1, ln)
                    elif b"@aggTrade" in head:
                        m = dec_agg.decode(body).data
                        um = _agg_market(m)
                        if um is not None and um is not fum:
                            fum = _check_market(st, um, fum, path, ln)
                        if not _sym_ok(st, m.s, c, name, ln):
                            continue
                        if st.saw_trade:  # the @trade messages carry these executions
                            c.add("agg_trade_skipped", 1, f"{name}:{ln}")
                            continue
                        if m.a <= st.last_agg:
                            c.add("duplicate", 1, f"{name}:{ln}")
                            continue
                        st.last_agg = m.a
                        if 0 <= m.f <= m.l:
                            if st.agg_lo < 0:
                                st.agg_lo = m.f
                            st.agg_hi = max(st.agg_hi, m.l)
                        rows.one(
                            m.T * MS, local, m.a, m.p, m.q, 0.0, 0.0, TRADE, SELL if m.m else BUY, F_EXCH_TS, -1, ln
                        )
                    elif b"@trade" in head:
                        m = dec_tr.decode(body).data
                        um = _trade_market(m)
                        if um is not None and um is not fum:
                            fum = _check_market(st, um, fum, path, ln)
                        if not _sym_ok(st, m.s, c, name, ln):
                            continue
                        st.saw_trade = True
                        if m.t <= st.last_trade:
                            c.add("duplicate", 1, f"{name}:{ln}")
                            continue
                        st.last_trade = m.t
                        if st.agg_lo <= m.t <= st.agg_hi:  # stored already, in an aggTrade
                            c.add("duplicate", 1, f"{name}:{ln}")
                            continue
                        rows.one(
                            m.T * MS, local, m.t, m.p, m.q, 0.0, 0.0, TRADE, SELL if m.m else BUY, F_EXCH_TS, -1, ln
                        )
                    elif b"@depth" in head:
                        if b'"lastUpdateId"' in body[:200]:
                            env = dec_snap_env.decode(body)
                            s = env.data
                            if (s.T != 0) is not fum:
                                fum = _check_market(st, s.T != 0, fum, path, ln)
                            if not _sym_ok(st, env.stream.split("@", 1)[0], c, name, ln):
                                continue
                            _on_snapshot(s, local, ln, st, rows, c, name)
                        else:
                            m = dec_depth.decode(body).data
                            if (m.pu != -1) is not fum:
                                fum = _check_market(st, m.pu != -1, fum, path, ln)
                            if not _sym_ok(st, m.s, c, name, ln):
                                continue
                            _on_diff(m, local, ln, st, rows, c, name)
                    else:
                        c.add("unknown_message", 1, f"{name}:{ln}")
                        bad_lines += 1
                        first_bad = first_bad or ln
                        continue
                elif b'"lastUpdateId"' in head:
                    s = dec_snap.decode(body)
                    if (s.T != 0) is not fum:
                        fum = _check_market(st, s.T != 0, fum, path, ln)
                    _on_bare_snapshot(s, local, ln, st, rows, c, name)
                else:
                    c.add("unknown_message", 1, f"{name}:{ln}")
                    bad_lines += 1
                    first_bad = first_bad or ln
                    continue
            except msgspec.ValidationError as e:
                c.add("non_numeric", 1, f"{name}:{ln}: {e}")
                bad_lines += 1
                first_bad = first_bad or ln
                continue
            except msgspec.DecodeError as e:
                if ln == last_block_line and not line.endswith(b"}"):
                    c.add("truncated_line", 1, f"{name}:{ln}")
                else:
                    c.add("bad_json", 1, f"{name}:{ln}: {e}")
                bad_lines += 1
                first_bad = first_bad or ln
                continue
            used += 1
            if len(rows) >= chunk_rows:
                ev, lns = _validate(*rows.take(), c, path)
                yield ev, lns, str(path)
        # end of block
    if len(rows):
        ev, lns = _validate(*rows.take(), c, path)
        yield ev, lns, str(path)
    if used == 0 and bad_lines > 0:
        raise UserError(f"{path}:{first_bad}: not a Binance websocket capture (no usable line)")


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
    elif out == ds.EVICTED:
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
        if r == 0:
            h, conf = conf, h  # the latest bracketed one wins
        if h is not None:
            c.add("other_symbol", 1, f"{h.name}:{h.ln}")
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
