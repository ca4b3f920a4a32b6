"""Binance websocket captures: lines ``<local_ts_ns> <JSON>`` (gzip or plain).

Handled messages (combined-stream envelope ``{"stream": ..., "data": ...}``, spot and USD-M):

* ``bookTicker``  -> QUOTE. Spot has no exchange time: ``exch_ts = local_ts``, ``F_EXCH_TS`` clear.
  USD-M uses ``T`` (transaction time, ms). ``seq`` = ``u``. An update id below the last one seen is
  a duplicate.
* ``trade`` / ``aggTrade`` -> TRADE at ``T`` (trade time, ms); aggressor = SELL when ``m`` (buyer is
  the maker) else BUY; ``seq`` = trade id ``t`` / aggregate id ``a``; an id not above the last one
  is a duplicate.
* REST depth snapshot line ``{"lastUpdateId", "bids", "asks"}`` (USD-M also ``E``/``T``) -> CLEAR,
  then one SNAPSHOT row per level (``level`` = 0-based depth per side), ``F_LAST_IN_BATCH`` on the
  last row; ``seq`` = ``lastUpdateId``.
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
timestamp, so the book state carries across files.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

import msgspec
import numpy as np

from avmm.data.common import Counters, ProgressFn, check_price, check_quotes, check_size, is_gzip
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

Levels = list[tuple[float, float]]


class BookTicker(msgspec.Struct):
    u: int
    b: float
    B: float
    a: float
    A: float
    s: str = ""
    T: int = 0
    E: int = 0


class Trade(msgspec.Struct):
    t: int
    p: float
    q: float
    T: int
    m: bool
    s: str = ""


class AggTrade(msgspec.Struct):
    a: int
    p: float
    q: float
    T: int
    m: bool
    s: str = ""


class Depth(msgspec.Struct):
    U: int
    u: int
    b: Levels
    a: Levels
    E: int = 0
    T: int = 0
    pu: int = -1
    s: str = ""


class Snapshot(msgspec.Struct):
    lastUpdateId: int
    bids: Levels
    asks: Levels
    E: int = 0
    T: int = 0


class EnvBookTicker(msgspec.Struct):
    data: BookTicker


class EnvTrade(msgspec.Struct):
    data: Trade


class EnvAggTrade(msgspec.Struct):
    data: AggTrade


class EnvDepth(msgspec.Struct):
    data: Depth


class EnvSnapshot(msgspec.Struct):
    data: Snapshot


_DEC = {
    name: msgspec.json.Decoder(t, strict=False)
    for name, t in (
        ("bt", EnvBookTicker),
        ("tr", EnvTrade),
        ("agg", EnvAggTrade),
        ("depth", EnvDepth),
        ("snap_env", EnvSnapshot),
        ("snap", Snapshot),
    )
}

MS = 1_000_000
MAX_PENDING = 10_000  # buffered depth diffs while waiting for a snapshot


def first_local_ts(path: Path) -> int:
    """Local timestamp of the first line (for ordering the files of one capture)."""
    try:
        with (gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")) as f:
            line = f.readline(1 << 16)
        return int(line.split(b" ", 1)[0])
    except (OSError, EOFError, ValueError, zlib.error):
        return 0


def looks_like(path: Path) -> bool:
    try:
        with (gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")) as f:
            head = f.read(4096)
    except (OSError, EOFError, zlib.error):
        return False
    line = head.split(b"\n", 1)[0]
    parts = line.split(b" ", 1)
    return len(parts) == 2 and parts[0].isdigit() and parts[1][:1] == b"{"


class _Rows:
    """Column lists for the rows of one chunk."""

    __slots__ = ("exch", "local", "seq", "px", "qty", "px2", "qty2", "kind", "side", "flags",
                 "level", "line")

    def __init__(self):
        for s in self.__slots__:
            setattr(self, s, [])

    def __len__(self):
        return len(self.local)

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
        last = np.ones(len(idx), dtype=bool)
        last[:-1] = ln[1:] != ln[:-1]
        ev["flags"][idx[last]] |= F_LAST_IN_BATCH
    return ev, lines


class _State:
    """Sequence state shared across the files of one capture."""

    def __init__(self):
        self.synced = False
        self.need_first = False
        self.last_u = 0
        self.lid = 0
        self.pending: list[tuple[Depth, int, int]] = []  # (diff, local_ts, line)
        self.last_trade = -1
        self.last_agg = -1
        self.last_bt = -1
        self.um: bool | None = None
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
    for path in paths:
        yield from _read_file(path, st, c, progress, chunk_rows)
    if st.pending:
        c.add("depth_unsynced", len(st.pending), f"{paths[-1].name}:{st.pending[0][2]}")
        st.pending.clear()


def _blocks(path: Path, c: Counters, progress: ProgressFn | None) -> Iterator[tuple[list[bytes], int]]:
    """Yield (complete lines, first line number) from the file; the last piece of the file is
    yielded even without a trailing newline. Gzip corruption ends the file (counted)."""
    raw = open(path, "rb")
    gz = is_gzip(path)
    f = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
    rest = b""
    lineno = 1
    pos = 0
    try:
        while True:
            try:
                block = f.read(1 << 22)
            except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
                if lineno == 1 and not rest:
                    raise UserError(f"{path}:1: corrupt gzip file ({e})") from None
                c.add("corrupt_gzip", 1, f"{path.name}:{lineno}: {e}; rest of file skipped")
                if rest:  # the partial line before the corruption is lost
                    c.add("truncated_line", 1, f"{path.name}:{lineno}")
                return
            if progress is not None:
                now = raw.tell()
                progress(now - pos)
                pos = now
            if not block:
                if rest:
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
        raw.close()


def _read_file(path: Path, st: _State, c: Counters, progress, chunk_rows: int):
    rows = _Rows()
    dec_bt, dec_tr, dec_agg = _DEC["bt"], _DEC["tr"], _DEC["agg"]
    dec_depth, dec_snap, dec_snap_env = _DEC["depth"], _DEC["snap"], _DEC["snap_env"]
    name = path.name
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
            body = line[sp + 1:]
            head = body[:72]
            try:
                if b'"stream"' in head:
                    if b"@bookTicker" in head:
                        m = dec_bt.decode(body).data
                        if not _sym_ok(st, m.s, c, name, ln):
                            continue
                        if m.u <= st.last_bt:
                            c.add("duplicate", 1, f"{name}:{ln}")
                            continue
                        st.last_bt = m.u
                        if m.T or m.E:
                            rows.one((m.T or m.E) * MS, local, m.u, m.b, m.B, m.a, m.A, QUOTE, 0,
                                     F_EXCH_TS, -1, ln)
                        else:
                            rows.one(local, local, m.u, m.b, m.B, m.a, m.A, QUOTE, 0, 0, -1, ln)
                    elif b"@aggTrade" in head:
                        m = dec_agg.decode(body).data
                        if not _sym_ok(st, m.s, c, name, ln):
                            continue
                        if m.a <= st.last_agg:
                            c.add("duplicate", 1, f"{name}:{ln}")
                            continue
                        st.last_agg = m.a
                        rows.one(m.T * MS, local, m.a, m.p, m.q, 0.0, 0.0, TRADE,
                                 SELL if m.m else BUY, F_EXCH_TS, -1, ln)
                    elif b"@trade" in head:
                        m = dec_tr.decode(body).data
                        if not _sym_ok(st, m.s, c, name, ln):
                            continue
                        if m.t <= st.last_trade:
                            c.add("duplicate", 1, f"{name}:{ln}")
                            continue
                        st.last_trade = m.t
                        rows.one(m.T * MS, local, m.t, m.p, m.q, 0.0, 0.0, TRADE,
                                 SELL if m.m else BUY, F_EXCH_TS, -1, ln)
                    elif b"@depth" in head:
                        if b'"lastUpdateId"' in body[:200]:
                            s = dec_snap_env.decode(body).data
                            _on_snapshot(s, local, ln, st, rows, c, name)
                        else:
                            m = dec_depth.decode(body).data
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
                    _on_snapshot(s, local, ln, st, rows, c, name)
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
    st.last_u = m.u


def _gap(m: Depth, local: int, ln: int, st: _State, rows: _Rows, c: Counters, name: str) -> None:
    c.add("seq_gap", 1, f"{name}:{ln}: U={m.U} u={m.u} pu={m.pu} after u={st.last_u}")
    rows.one(local, local, m.u, 0.0, 0.0, 0.0, 0.0, CLEAR, 0, F_SEQ_GAP, -1, ln)
    st.synced = False
    st.need_first = False
    st.pending = [(m, local, ln)]


def _try_apply(m: Depth, local: int, ln: int, st: _State, rows: _Rows, c: Counters, name: str) -> None:
    """Apply a diff while synced (sequence rules); detect gaps."""
    um = m.pu != -1
    if st.um is None:
        st.um = um
    if st.need_first:
        lid = st.lid
        if (m.u <= lid) if not um else (m.u < lid):
            c.add("depth_stale", 1, f"{name}:{ln}")
            return
        ok = (m.U <= lid + 1 <= m.u) if not um else (m.U <= lid <= m.u)
        if not ok:
            _gap(m, local, ln, st, rows, c, name)
            return
        st.need_first = False
        _emit_diff(m, local, ln, st, rows)
        return
    if m.u <= st.last_u:
        c.add("duplicate", 1, f"{name}:{ln}")
        return
    ok = (m.pu == st.last_u) if um else (m.U == st.last_u + 1)
    if not ok:
        _gap(m, local, ln, st, rows, c, name)
        return
    _emit_diff(m, local, ln, st, rows)


def _on_diff(m: Depth, local: int, ln: int, st: _State, rows: _Rows, c: Counters, name: str) -> None:
    if not st.synced:
        st.pending.append((m, local, ln))
        if len(st.pending) > MAX_PENDING:
            _, _, l0 = st.pending.pop(0)
            c.add("depth_unsynced", 1, f"{name}:{l0}")
        return
    _try_apply(m, local, ln, st, rows, c, name)


def _on_snapshot(s: Snapshot, local: int, ln: int, st: _State, rows: _Rows, c: Counters, name: str) -> None:
    exch = (s.T or s.E) * MS
    fl = F_EXCH_TS if exch else 0
    if not exch:
        exch = local
    rows.one(exch, local, s.lastUpdateId, 0.0, 0.0, 0.0, 0.0, CLEAR, 0, fl, -1, ln)
    rows.levels(exch, local, s.lastUpdateId, s.bids, SNAPSHOT, BUY, fl, ln, True)
    rows.levels(exch, local, s.lastUpdateId, s.asks, SNAPSHOT, SELL, fl, ln, True)
    st.synced = True
    st.need_first = True
    st.lid = s.lastUpdateId
    st.last_u = s.lastUpdateId
    pending, st.pending = st.pending, []
    for k, (m, _lt, pln) in enumerate(pending):
        if not st.synced:  # a gap among the buffered diffs: keep the rest for the next snapshot
            st.pending.extend(pending[k:])
            break
        # applied now, at the snapshot's arrival time
        _try_apply(m, local, pln, st, rows, c, name)
