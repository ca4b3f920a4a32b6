"""The session's journal: SQLite in WAL mode, written by a thread; the orders' intents through a
memory-mapped log first (``live/intents.py``), so that ``kill -9`` loses none.

The hot path's records -- every action the core sends, every response the venue gives, each health
or control event -- are appended to the intent log (``FILE.db.log``) before they are acted on:
one call into compiled code that writes a record into the mapping (~20 ns; ~0.2 us with the call
from Python), no syscall, no allocation, no lock. The writer thread copies the log's new records
into the ``intents`` table every ``poll_s`` (5 ms) and commits, then marks them copied. The rest --
the completed fill records (the backtester's ``FILL_DTYPE``, markouts included), the equity samples
(``SAMPLE_DTYPE``), the events' texts, the end records -- goes through a queue to the same thread,
as before: a crash loses its last few milliseconds of those, never an intent.

``Journal(path, meta)`` replaces a journal; ``Journal(path, meta, resume=True)`` continues one: the
records its log holds beyond the last commit (a ``kill -9``) are copied first, then a new session
starts (its id the start time in unix seconds, above the last one's), the old rows kept;
``journal.recovery`` is what the gateway reconciles (``intents.Recovery``: the orders not known
final, the trade ids of the fills counted, the last fill's time), and ``fill_seen(trade_id)``
dedupes fills from then on (``intents.TradeIds``: a pre-sized table, no growth on the way).
Client order ids: ``journal.client_id(seq)`` = ``prefix-session-seq``.

Failures: a commit that fails (disk full, read-only) stops the copying, keeps every intent not
copied in the log (a resume replays them) and raises one line at the next append -- before the
record, so nothing is sent unjournaled -- and again, if not yet raised, at ``close``; appends
after that go on into the log (the cleanup's cancels). A ring full of records not yet copied
(``capacity`` 65,536) waits up to ``full_wait_s`` for the writer, then raises one line.

``load_journal(path, session=None)`` reads one session back as the backtester's records (``avmm
report``): the last session that ended, unless another is named; the summary is recomputed from
them by the backtest's own ``summarize``. Journals of format 1 (no intent log) are read too.
``journal_day_pnl(path)``: the UTC day's PnL at the last sample, over the journal's sessions, which
the next session's ``risk.max_loss_day`` counts from (a session's own carry-in: the meta record
``day_pnl0.<session>``, ``{"day": days since the epoch or -1, "pnl": ...}``).

Tables (format 2): ``meta(key, value)`` (``format``, ``jid``, ``cid_prefix``, ``meta``: the last
session's), ``sessions(session, started_ns, first_seq, meta, bt_state, core_state, summary)``,
``intents(seq, ts, kind, session, oid, venue_oid, trade_id, side, code, px, qty, fee)`` (kind as
``intents.KIND_NAMES``; ``session`` is the session whose client id the record names), the views
``actions(seq, ts, kind, oid, side, px, qty, session, cid)`` and ``responses(seq, ts, kind, oid,
side, px, qty, fee, session, venue_oid, trade_id, code)`` over it, ``fills(ts, oid, side, maker, px,
qty, fee, mid, pos, mo, session)`` (``mo``: the markouts' mids, 8 float64 as a blob),
``samples(ts, mid, bid, ask, our_bid, our_ask, pos, pnl, fees, session)``, ``events(seq, ts, kind,
text, session)`` (``seq``: the event's record in ``intents``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avmm.backtest.state import BT_STATE_DTYPE, FILL_DTYPE, SAMPLE_DTYPE
from avmm.core.state import ACTION_DTYPE, DAY_NS, STATE_DTYPE
from avmm.errors import UserError
from avmm.live.intents import (
    CLOSED,
    COLUMNS,
    EVENT_CODES,
    FAILED,
    FULL,
    H_CLOSED,
    H_COPIED,
    H_FAILED,
    H_HEAD,
    K_EVENT,
    KIND_NAMES,
    LOG_CAPACITY,
    MAX_SESSION,
    ClientIds,
    IntentLog,
    Recovery,
    TradeIds,
    kernels,
    recovery,
)


def _names(lo: int, hi: int) -> str:
    return " ".join(f"WHEN {k} THEN '{v}'" for k, v in KIND_NAMES.items() if lo <= k <= hi)


SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value);
CREATE TABLE sessions (session INTEGER PRIMARY KEY, started_ns INTEGER, first_seq INTEGER, meta TEXT,
                       bt_state BLOB, core_state BLOB, summary TEXT);
CREATE TABLE intents (seq INTEGER PRIMARY KEY, ts INTEGER, kind INTEGER, session INTEGER, oid INTEGER,
                      venue_oid INTEGER, trade_id INTEGER, side INTEGER, code INTEGER, px REAL, qty REAL, fee REAL);
CREATE VIEW actions AS SELECT seq, ts, CASE kind {_names(1, 3)} END AS kind, oid, side, px, qty, session,
    (SELECT value FROM meta WHERE key = 'cid_prefix') || '-' || session || '-' || seq AS cid
    FROM intents WHERE kind BETWEEN 1 AND 3;
CREATE VIEW responses AS SELECT seq, ts, CASE kind {_names(11, 15)} END AS kind, oid, side, px, qty, fee, session,
    venue_oid, trade_id, code FROM intents WHERE kind BETWEEN 11 AND 15;
CREATE TABLE fills (ts INTEGER, oid INTEGER, side INTEGER, maker INTEGER, px REAL, qty REAL, fee REAL, mid REAL,
                    pos REAL, mo BLOB, session INTEGER);
CREATE TABLE samples (ts INTEGER, mid REAL, bid REAL, ask REAL, our_bid REAL, our_ask REAL, pos REAL, pnl REAL,
                      fees REAL, session INTEGER);
CREATE TABLE events (seq INTEGER, ts INTEGER, kind TEXT, text TEXT, session INTEGER);
"""
INSERT = {
    "f": "INSERT INTO fills VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    "s": "INSERT INTO samples VALUES (?,?,?,?,?,?,?,?,?,?)",
    "e": "INSERT INTO events VALUES (?,?,?,?,?)",
    "m": "INSERT OR REPLACE INTO meta VALUES (?,?)",
    "bt_state": "UPDATE sessions SET bt_state = ? WHERE session = ?",
    "core_state": "UPDATE sessions SET core_state = ? WHERE session = ?",
    "summary": "UPDATE sessions SET summary = ? WHERE session = ?",
}
INSERT_INTENTS = f"INSERT INTO intents ({', '.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))})"
END_KEYS = ("bt_state", "core_state", "summary")
BATCH = 4096
FORMAT_1 = "avmm-journal-1"
FORMAT = "avmm-journal-2"
_WAKE: tuple[str, tuple] = ("w", ())


class Journal:
    """The journal at ``path``: replaced when it exists, unless ``resume``. ``meta`` (JSON-ready:
    the config as run, the venue, the symbol) is the session's first record.

    ``capacity``: the intent log's records (a power of two); ``prefix``: the client ids'; ``poll_s``:
    how often the writer copies the log; ``full_wait_s``: how long an append waits for a writer
    that has fallen a whole ring behind before it raises; ``trade_id_bits``: the trade-id table's
    size (``intents.TradeIds``)."""

    def __init__(
        self,
        path: Path | str,
        meta: dict[str, Any],
        *,
        resume: bool = False,
        capacity: int = LOG_CAPACITY,
        prefix: str = "avmm",
        poll_s: float = 0.005,
        full_wait_s: float = 1.0,
        trade_id_bits: int = 21,
    ) -> None:
        self.path = Path(path)
        self.log_path = Path(str(self.path) + ".log")
        self.poll_s, self.full_wait_s = poll_s, full_wait_s
        self.rows = 0
        self.replayed = 0  # the records a resume copied from the log (left there by a kill)
        self.error: str | None = None
        self.reported = False
        self.closed = True  # until the writer runs
        self.n_full_waits = 0
        self.recovery = Recovery()
        ClientIds(prefix, 1)  # the prefix checked before anything is written
        try:
            if resume and self.path.exists():
                con, jid, session, start = self._resume(meta, prefix)
            else:
                if resume and self.log_path.exists():
                    raise UserError(
                        f"--journal {self.path}: missing, but its intent log {self.log_path} is there: "
                        "move the log away to start anew"
                    )
                con, jid, session, start = self._create(meta, prefix)
        except sqlite3.Error as e:
            raise UserError(f"--journal {self.path}: cannot write the journal ({e})") from None
        self.con = con
        self.jid, self.session = jid, session
        try:
            self.ids = ClientIds(prefix, session)
            self.trade_ids = TradeIds(self.recovery.trade_ids, trade_id_bits)
            # fill_seen(trade_id): True if the fill was counted (this session or one before), else it
            # is now: journal it right after a False (the table's own method: one call less)
            self.fill_seen: Callable[[int], bool] = self.trade_ids.seen
            self.log = IntentLog.create(self.log_path, capacity, jid, session, start)
        except BaseException:
            con.close()
            raise
        self._words = self.log.words
        self._addr = self.log.addr
        self._append, self._answer, self._actions = kernels()  # bound entry points: no per-call dispatch
        self._a: np.ndarray | None = None  # the actions array last seen, its address and length
        self._a_addr = self._a_len = 0
        self.copied = start
        self.q: queue.SimpleQueue[tuple[str, tuple] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._write, name="avmm-journal", daemon=True)
        self.closed = False
        self.thread.start()

    # --- opening ----------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        return con

    def _create(self, meta: dict[str, Any], prefix: str) -> tuple[sqlite3.Connection, int, int, int]:
        for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"), self.log_path):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        con = self._connect()
        con.executescript(SCHEMA)
        jid = int.from_bytes(os.urandom(8), "little") >> 1
        con.executemany(INSERT["m"], [("format", FORMAT), ("jid", jid), ("cid_prefix", prefix)])
        session = self._new_session(con, meta, 0, 0)
        return con, jid, session, 0

    def _new_session(self, con: sqlite3.Connection, meta: dict[str, Any], last: int, start: int) -> int:
        session = max(last + 1, time.time_ns() // 1_000_000_000)
        if session >= MAX_SESSION:
            raise UserError(f"--journal {self.path}: session {session} out of range")
        text = json.dumps(meta, default=str)
        con.execute(
            "INSERT INTO sessions (session, started_ns, first_seq, meta) VALUES (?,?,?,?)",
            (session, time.time_ns(), start, text),
        )
        con.execute(INSERT["m"], ("meta", text))
        con.commit()
        return session

    def _resume(self, meta: dict[str, Any], prefix: str) -> tuple[sqlite3.Connection, int, int, int]:
        """Copy what the log holds beyond the journal's last record, then a new session."""
        con = self._connect()
        try:
            return self._replay(con, meta, prefix)
        except BaseException:
            con.close()
            raise

    def _replay(
        self, con: sqlite3.Connection, meta: dict[str, Any], prefix: str
    ) -> tuple[sqlite3.Connection, int, int, int]:
        p = self.path
        try:
            kv = dict(con.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as e:
            raise UserError(f"--journal {p}: not an avmm journal ({e})") from None
        fmt = kv.get("format")
        if fmt == FORMAT_1:
            raise UserError(f"--journal {p}: written by an older avmm ({fmt}, no intent log): start a new journal")
        if fmt != FORMAT:
            raise UserError(f"--journal {p}: not an avmm journal (format {fmt!r}, this avmm writes {FORMAT!r})")
        if kv.get("cid_prefix") != prefix:
            raise UserError(f"--journal {p}: its client ids have the prefix {kv.get('cid_prefix')!r}, not {prefix!r}")
        jid = int(kv["jid"])
        nxt = int(con.execute("SELECT coalesce(max(seq) + 1, 0) FROM intents").fetchone()[0])
        if self.log_path.exists():
            log = IntentLog.open(self.log_path)
            if log.jid != jid:
                raise UserError(f"{self.log_path}: the intent log of another journal than {p}: move it away")
            head = log.head
            if head > nxt:
                recs = log.records(nxt, head)
                con.executemany(INSERT_INTENTS, recs[list(COLUMNS)].tolist())
                con.commit()
                self.replayed = head - nxt
                nxt = head
            del log
        rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM intents WHERE kind < {K_EVENT} ORDER BY seq").fetchall()  # noqa: S608
        self.recovery = recovery(rows, prefix)
        last = int(con.execute("SELECT coalesce(max(session), 0) FROM sessions").fetchone()[0])
        session = self._new_session(con, meta, last, nxt)
        return con, jid, session, nxt

    # --- the hot path: records into the log ---------------------------------------------------------
    def actions(self, t: int, a: np.ndarray, n: int) -> int:
        """The first ``n`` records of ``a`` (``ACTION_DTYPE``) at ``t``; the first one's seq (the
        i-th's client id: ``client_id(seq + i)``)."""
        if a is not self._a or n > self._a_len:
            self._bind_actions(a, n)
        s: int = self._actions(self._addr, self._a_addr, n, t)
        if s < 0:
            s = self._blocked(s, self._actions, self._addr, self._a_addr, n, t)
        return s

    def response(
        self,
        t: int,
        kind: int,
        oid: int,
        side: int,
        px: float,
        qty: float,
        fee: float,
        trade_id: int = 0,
        venue_oid: int = 0,
        code: int = 0,
        session: int = 0,
    ) -> int:
        """A venue's answer (``intents.K_ACK`` ... ``K_UNKNOWN``) about the order ``oid`` of
        ``session`` (0: this one); its seq."""
        s: int = self._append(self._addr, t, kind, session, oid, side, px, qty, fee, venue_oid, trade_id, code)
        if s < 0:
            s = self._blocked(
                s, self._append, self._addr, t, kind, session, oid, side, px, qty, fee, venue_oid, trade_id, code
            )
        return s

    def answer(self, t: int, kind: int, oid: int) -> int:
        """``response`` of an answer with nothing but the order (``K_ACK``, ``K_REJECT``,
        ``K_CANCELED``): the cheaper call; its seq."""
        s: int = self._answer(self._addr, t, kind, oid)
        if s < 0:
            s = self._blocked(s, self._answer, self._addr, t, kind, oid)
        return s

    def event(self, t: int, kind: str, text: str) -> None:
        s = self.response(t, K_EVENT, 0, 0, 0.0, 0.0, 0.0, code=EVENT_CODES.get(kind, 0))
        self.q.put(("e", (s, t, kind, text, self.session)))

    def client_id(self, seq: int) -> str:
        return self.ids(seq)

    def _bind_actions(self, a: np.ndarray, n: int) -> None:
        if a.dtype != ACTION_DTYPE or not a.flags.c_contiguous or a.ndim != 1 or n > a.shape[0]:
            raise TypeError(f"Journal.actions: {n} records of a C-contiguous ACTION_DTYPE array")
        self._a, self._a_addr, self._a_len = a, int(a.ctypes.data), a.shape[0]

    def _blocked(self, code: int, fn: Any, *args: Any) -> int:
        """An append refused: the writer failed (raised once, then the appends go on into the log),
        the journal is closed, or the ring is full (wait for the writer, then raise)."""
        w = self._words
        if code == FAILED:
            w[H_FAILED] = 2
            self.reported = True
            raise UserError(self._failed_line())
        if code == CLOSED:
            raise UserError(f"--journal {self.path}: closed")
        deadline = time.monotonic() + self.full_wait_s
        while code == FULL and self.error is None and time.monotonic() < deadline:
            self.q.put(_WAKE)
            time.sleep(0.0005)
            code = fn(*args)
        if code >= 0:
            self.n_full_waits += 1
            return code
        if self.error is not None:
            self.reported = True
            raise UserError(self._failed_line())
        raise UserError(
            f"--journal {self.path}: the intent log is full ({self.log.capacity} intents not yet written to the "
            f"journal after {self.full_wait_s:g} s: the disk is too slow or stalled); they are kept in {self.log_path}"
        )

    def _failed_line(self) -> str:
        n = int(self._words[H_HEAD]) - int(self._words[H_COPIED])
        return (
            f"--journal {self.path}: write failed ({self.error}); the {n} intents not in it are kept in "
            f"{self.log_path}, copied by a resume"
        )

    # --- the rest: through the queue ------------------------------------------------------------------
    def fills(self, f: np.ndarray) -> None:
        s = self.session
        for r in f:
            self.q.put(
                (
                    "f",
                    (int(r["ts"]), int(r["oid"]), int(r["side"]), int(r["maker"]), float(r["px"]), float(r["qty"]),
                     float(r["fee"]), float(r["mid"]), float(r["pos"]), r["mo"].tobytes(), s),
                )
            )  # fmt: skip

    def samples(self, s: np.ndarray) -> None:
        names = SAMPLE_DTYPE.names or ()
        for r in s:
            self.q.put(("s", (*(int(r[k]) if k == "ts" else float(r[k]) for k in names), self.session)))

    def put_meta(self, key: str, value: Any) -> None:
        """A meta record; ``bt_state``, ``core_state`` and ``summary`` are the session's."""
        if key in END_KEYS:
            self.q.put((key, (value, self.session)))
        else:
            self.q.put(("m", (key, value)))

    def finish(self, bt_state: np.ndarray, core_state: np.ndarray, summary: dict[str, Any]) -> None:
        """The session's end: the venue's and the core's records and the summary."""
        self.put_meta("bt_state", bt_state.tobytes())
        self.put_meta("core_state", core_state.tobytes())
        self.put_meta("summary", json.dumps(summary, default=str))

    def close(self) -> None:
        """Copy and write what is left and close (the writer thread joined); the log is marked closed.
        Raises the writer's failure if no append did."""
        if self.closed:
            return
        self.closed = True
        self.q.put(None)
        self.thread.join()
        if self.error is None:
            self._words[H_CLOSED] = 1
        with contextlib.suppress(sqlite3.Error):
            self.con.close()
        if self.error is not None and not self.reported:
            self.reported = True
            raise UserError(self._failed_line())

    # --- the writer thread ------------------------------------------------------------------------
    def _write(self) -> None:
        q, w, log = self.q, self._words, self.log
        cols = list(COLUMNS)
        done = False
        while not done:
            try:
                item = q.get(timeout=self.poll_s)
            except queue.Empty:
                item = _WAKE
            order, batch, n, done = _gather(q, item)
            if self.error is not None:
                continue
            head, c = int(w[H_HEAD]), self.copied
            if not n and head == c:
                continue
            try:
                con = self.con
                if head > c:
                    con.executemany(INSERT_INTENTS, log.records(c, head)[cols].tolist())
                for key in order:
                    con.executemany(INSERT[key], batch[key])
                con.commit()
            except (sqlite3.Error, UserError) as e:
                self.error = str(e)
                w[H_FAILED] = 1
                with contextlib.suppress(sqlite3.Error):
                    self.con.rollback()
                continue
            self.copied = head
            w[H_COPIED] = head
            self.rows += n + head - c


def _gather(
    q: queue.SimpleQueue[tuple[str, tuple] | None], item: tuple[str, tuple] | None
) -> tuple[list[str], dict[str, list[tuple]], int, bool]:
    """``item`` and what else is queued (up to ``BATCH`` rows), by table in first-seen order; True
    at the end (None)."""
    batch: dict[str, list[tuple]] = {}
    order: list[str] = []
    n = 0
    while True:
        if item is None:
            return order, batch, n, True
        key, row = item
        if key != "w":
            rows = batch.get(key)
            if rows is None:
                rows = batch[key] = []
                order.append(key)
            rows.append(row)
            n += 1
            if n >= BATCH:
                return order, batch, n, False
        try:
            item = q.get_nowait()
        except queue.Empty:
            return order, batch, n, False


@dataclass
class JournalData:
    """A journal's session read back as the backtester's records."""

    meta: dict[str, Any]
    config: dict[str, Any]  # the strategy's sections and "backtest", as run
    fills: np.ndarray  # FILL_DTYPE
    samples: np.ndarray  # SAMPLE_DTYPE
    bt_state: np.ndarray  # BT_STATE_DTYPE x1
    core_state: np.ndarray  # core STATE_DTYPE x1
    summary: dict[str, Any]  # as the run printed it
    counts: dict[str, int]
    session: int = 0  # 0: a format-1 journal (one session)
    sessions: int = 1


def _nan(x: Any) -> float:
    return math.nan if x is None else float(x)


TABLES = ("actions", "responses", "fills", "samples", "events")


def load_journal(path: Path | str, session: int | None = None) -> JournalData:
    """Read a journal's session (``avmm report``): ``session``, or the last one that ended. One line
    for a missing file, another kind of file, a session that did not end (no end records) or is
    not there."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such file")
    try:
        con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            meta_rows = dict(con.execute("SELECT key, value FROM meta").fetchall())
            fmt = meta_rows.get("format")
            if fmt == FORMAT_1:
                return _load_1(p, con, meta_rows)
            if fmt != FORMAT:
                raise UserError(f"{p}: not an avmm journal (no format record {FORMAT!r})")
            return _load_2(p, con, session)
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise UserError(f"{p}: not an avmm journal ({e})") from None


def _load_2(p: Path, con: sqlite3.Connection, session: int | None) -> JournalData:
    ses = con.execute("SELECT session, meta, bt_state, core_state, summary FROM sessions ORDER BY session").fetchall()
    ended = [r for r in ses if r[2] is not None and r[3] is not None and r[4] is not None]
    if session is not None:
        pick = [r for r in ses if r[0] == session]
        if not pick:
            raise UserError(f"{p}: no session {session} (sessions: {', '.join(str(r[0]) for r in ses)})")
        if pick[0] not in ended:
            raise UserError(f"{p}: session {session} did not end (no summary record): it was killed before its summary")
        row = pick[0]
    elif not ended:
        raise UserError(f"{p}: the session did not end (no summary record): it was killed before its summary")
    else:
        row = ended[-1]
    s = int(row[0])
    where = " WHERE session = ?"
    fills_rows = con.execute("SELECT * FROM fills" + where + " ORDER BY rowid", (s,)).fetchall()
    sample_rows = con.execute("SELECT * FROM samples" + where + " ORDER BY rowid", (s,)).fetchall()
    counts = {t: int(con.execute(f"SELECT count(*) FROM {t}" + where, (s,)).fetchone()[0]) for t in TABLES}  # noqa: S608
    meta = json.loads(row[1])
    return _data(p, meta, fills_rows, sample_rows, row[2], row[3], row[4], counts, s, len(ses))


def _load_1(p: Path, con: sqlite3.Connection, meta_rows: dict[str, Any]) -> JournalData:
    fills_rows = con.execute("SELECT * FROM fills ORDER BY rowid").fetchall()
    sample_rows = con.execute("SELECT * FROM samples ORDER BY rowid").fetchall()
    counts = {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}  # noqa: S608
    for key in END_KEYS:
        if key not in meta_rows:
            raise UserError(f"{p}: the session did not end (no {key} record): it was killed before its summary")
    meta = json.loads(meta_rows["meta"])
    bts, cs, summary = meta_rows["bt_state"], meta_rows["core_state"], meta_rows["summary"]
    return _data(p, meta, fills_rows, sample_rows, bts, cs, summary, counts, 0, 1)


def _data(
    p: Path,
    meta: dict[str, Any],
    fills_rows: list[tuple],
    sample_rows: list[tuple],
    bt_state: bytes,
    core_state: bytes,
    summary: str,
    counts: dict[str, int],
    session: int,
    sessions: int,
) -> JournalData:
    fills = np.zeros(len(fills_rows), dtype=FILL_DTYPE)
    for i, r in enumerate(fills_rows):
        f = fills[i]
        f["ts"], f["oid"], f["side"], f["maker"] = r[0], r[1], r[2], r[3]
        f["px"], f["qty"], f["fee"], f["mid"], f["pos"] = (_nan(x) for x in r[4:9])
        f["mo"] = np.frombuffer(r[9], dtype=np.float64)
    samples = np.zeros(len(sample_rows), dtype=SAMPLE_DTYPE)
    n = len(SAMPLE_DTYPE.names or ())
    for i, r in enumerate(sample_rows):
        samples[i] = (int(r[0]), *(_nan(x) for x in r[1:n]))
    for key, raw, dt in (("bt_state", bt_state, BT_STATE_DTYPE), ("core_state", core_state, STATE_DTYPE)):
        if len(raw) != dt.itemsize:
            raise UserError(f"{p}: its {key} record was written by another version of avmm (its layout differs)")
    bts = np.frombuffer(bt_state, dtype=BT_STATE_DTYPE).copy()
    cs = np.frombuffer(core_state, dtype=STATE_DTYPE).copy()
    summ = json.loads(summary)
    return JournalData(meta, meta.get("config", {}), fills, samples, bts, cs, summ, counts, session, sessions)


def journal_day_pnl(path: Path | str) -> tuple[int, float] | None:
    """The PnL of the UTC day D of a journal's last equity sample, for the next session's
    ``risk.max_loss_day``: ``(D, pnl)``, D in days since the epoch, pnl in the samples' currency.

    Each session's samples start from its own 0: the day's PnL is the carry-in of the last session
    that has one for D (``day_pnl0.<session>``: what D made before it; sessions before it are in
    it) + each session's change on D from then on (its last sample on D - its last one before D,
    or - 0 when it began on D). None: not an avmm journal, or no samples. A session killed mid-way
    counts up to its last sample written."""
    p = Path(path)
    try:
        con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            kv = dict(con.execute("SELECT key, value FROM meta").fetchall())
            fmt = kv.get("format")
            if fmt not in (FORMAT, FORMAT_1):
                return None
            col = "session" if fmt == FORMAT else "0"
            last = con.execute("SELECT ts FROM samples ORDER BY ts DESC LIMIT 1").fetchone()
            if last is None:
                return None
            day = int(last[0]) // DAY_NS
            d0 = day * DAY_NS
            rows = con.execute(
                f"SELECT {col}, min(ts), (SELECT pnl FROM samples b WHERE b.{col} = a.{col} AND b.ts < ? "  # noqa: S608
                f"ORDER BY b.ts DESC LIMIT 1), (SELECT pnl FROM samples c WHERE c.{col} = a.{col} AND c.ts >= ? "
                f"ORDER BY c.ts DESC LIMIT 1) FROM samples a GROUP BY {col} ORDER BY min(ts)",
                (d0, d0),
            ).fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError:
        return None
    total = 0.0
    for ses, first_ts, before, on_day in rows:
        if on_day is None:  # nothing on D
            continue
        carry = json.loads(kv[f"day_pnl0.{ses}"]) if f"day_pnl0.{ses}" in kv else None
        if fmt == FORMAT_1 and "day_pnl0" in kv:
            carry = json.loads(kv["day_pnl0"])
        if carry is not None and before is None:  # it began on D, knowing what D made before it
            cday = int(carry.get("day", -1))
            if (cday if cday >= 0 else int(first_ts) // DAY_NS) == day:
                total = float(carry.get("pnl", 0.0))
        total += float(on_day) - (float(before) if before is not None else 0.0)
    return day, total
