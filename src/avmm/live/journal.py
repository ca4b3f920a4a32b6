"""The session's journal: SQLite in WAL mode, written by a thread fed through a queue.

Every action the core sends, every response the venue gives (each recorded before it is acted
on: queued before the gateway or the core sees it, written in that order), the completed fill
records (the backtester's ``FILL_DTYPE``, markouts included), the equity samples
(``SAMPLE_DTYPE``), the feed's health changes, and at the end the venue's and the core's records
and the summary. The event loop never waits for the disk: it only puts tuples on the queue
(the crash-safe design is the next issue's).

``load_journal(path)`` reads it back as the backtester's records (``avmm report``): the summary
is recomputed from them by the backtest's own ``summarize``. ``journal_day_pnl(path)``: the UTC
day's PnL at its last sample, which the next session's ``risk.max_loss_day`` counts from.

Tables: ``meta(key, value)``, ``actions(seq, ts, kind, oid, side, px, qty)``,
``responses(seq, ts, kind, oid, side, px, qty, fee)``, ``fills(ts, oid, side, maker, px, qty, fee,
mid, pos, mo)`` (``mo``: the markouts' mids, 8 float64 as a blob), ``samples(ts, mid, bid, ask,
our_bid, our_ask, pos, pnl, fees)``, ``events(seq, ts, kind, text)``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import queue
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avmm.backtest.state import BT_STATE_DTYPE, FILL_DTYPE, RS_ACK, RS_CANCELED, RS_FILL, RS_REJECT, SAMPLE_DTYPE
from avmm.core.state import ACTION_NAMES, AF_TAKE, DAY_NS, STATE_DTYPE
from avmm.errors import UserError

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value);
CREATE TABLE actions (seq INTEGER, ts INTEGER, kind TEXT, oid INTEGER, side INTEGER, px REAL, qty REAL);
CREATE TABLE responses (seq INTEGER, ts INTEGER, kind TEXT, oid INTEGER, side INTEGER, px REAL, qty REAL, fee REAL);
CREATE TABLE fills (ts INTEGER, oid INTEGER, side INTEGER, maker INTEGER, px REAL, qty REAL, fee REAL, mid REAL,
                    pos REAL, mo BLOB);
CREATE TABLE samples (ts INTEGER, mid REAL, bid REAL, ask REAL, our_bid REAL, our_ask REAL, pos REAL, pnl REAL,
                      fees REAL);
CREATE TABLE events (seq INTEGER, ts INTEGER, kind TEXT, text TEXT);
"""
INSERT = {
    "a": "INSERT INTO actions VALUES (?,?,?,?,?,?,?)",
    "r": "INSERT INTO responses VALUES (?,?,?,?,?,?,?,?)",
    "f": "INSERT INTO fills VALUES (?,?,?,?,?,?,?,?,?,?)",
    "s": "INSERT INTO samples VALUES (?,?,?,?,?,?,?,?,?)",
    "e": "INSERT INTO events VALUES (?,?,?,?)",
    "m": "INSERT OR REPLACE INTO meta VALUES (?,?)",
}
RESPONSE_NAMES = {RS_ACK: "ack", RS_REJECT: "reject", RS_CANCELED: "canceled", RS_FILL: "fill"}
BATCH = 4096
FORMAT = "avmm-journal-1"


class Journal:
    """The journal of one session at ``path`` (replaced when it exists). ``meta`` (JSON-ready: the
    config as run, the venue, the symbol) is its first record."""

    def __init__(self, path: Path | str, meta: dict[str, Any]) -> None:
        self.path = Path(path)
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(str(self.path) + suffix).unlink()
        try:
            con = sqlite3.connect(self.path, check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.executescript(SCHEMA)
            con.execute(INSERT["m"], ("format", FORMAT))
            con.execute(INSERT["m"], ("meta", json.dumps(meta, default=str)))
            con.commit()
        except sqlite3.Error as e:
            raise UserError(f"--journal {self.path}: cannot write the journal ({e})") from None
        self.con = con
        self.q: queue.SimpleQueue[tuple[str, tuple] | None] = queue.SimpleQueue()
        self.seq = itertools.count()
        self.rows = 0
        self.error: str | None = None
        self.thread = threading.Thread(target=self._write, name="avmm-journal", daemon=True)
        self.thread.start()
        self.closed = False

    # --- the event loop's side: tuples on the queue -------------------------------------------------
    def actions(self, t: int, a: np.ndarray, n: int) -> None:
        put, seq = self.q.put, self.seq
        for j in range(n):
            r = a[j]
            put(
                (
                    "a",
                    (next(seq), t, "take" if r["flags"] & AF_TAKE else ACTION_NAMES.get(int(r["kind"]), "?"),
                     int(r["oid"]), int(r["side"]), float(r["px"]), float(r["qty"])),
                )
            )  # fmt: skip

    def response(self, t: int, kind: int, oid: int, side: int, px: float, qty: float, fee: float) -> None:
        self.q.put(("r", (next(self.seq), t, RESPONSE_NAMES[kind], oid, side, px, qty, fee)))

    def fills(self, f: np.ndarray) -> None:
        for r in f:
            self.q.put(
                (
                    "f",
                    (int(r["ts"]), int(r["oid"]), int(r["side"]), int(r["maker"]), float(r["px"]), float(r["qty"]),
                     float(r["fee"]), float(r["mid"]), float(r["pos"]), r["mo"].tobytes()),
                )
            )  # fmt: skip

    def samples(self, s: np.ndarray) -> None:
        for r in s:
            self.q.put(("s", tuple(int(r[k]) if k == "ts" else float(r[k]) for k in SAMPLE_DTYPE.names or ())))

    def event(self, t: int, kind: str, text: str) -> None:
        self.q.put(("e", (next(self.seq), t, kind, text)))

    def put_meta(self, key: str, value: Any) -> None:
        self.q.put(("m", (key, value)))

    def finish(self, bt_state: np.ndarray, core_state: np.ndarray, summary: dict[str, Any]) -> None:
        """The session's end: the venue's and the core's records and the summary."""
        self.put_meta("bt_state", bt_state.tobytes())
        self.put_meta("core_state", core_state.tobytes())
        self.put_meta("summary", json.dumps(summary, default=str))

    def close(self) -> None:
        """Write what is queued and close (the writer thread joined)."""
        if self.closed:
            return
        self.closed = True
        self.q.put(None)
        self.thread.join()
        with contextlib.suppress(sqlite3.Error):
            self.con.close()
        if self.error is not None:
            raise UserError(f"--journal {self.path}: write failed ({self.error})")

    # --- the writer thread ------------------------------------------------------------------------
    def _write(self) -> None:
        q, con = self.q, self.con
        done = False
        while not done:
            item = q.get()
            batch: dict[str, list[tuple]] = {}
            order: list[str] = []
            n = 0
            while True:
                if item is None:
                    done = True
                    break
                key, row = item
                rows = batch.get(key)
                if rows is None:
                    rows = batch[key] = []
                    order.append(key)
                rows.append(row)
                n += 1
                if n >= BATCH:
                    break
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
            if not n or self.error is not None:
                continue
            try:
                for key in order:
                    con.executemany(INSERT[key], batch[key])
                con.commit()
                self.rows += n
            except sqlite3.Error as e:
                self.error = str(e)


@dataclass
class JournalData:
    """A journal read back as the backtester's records."""

    meta: dict[str, Any]
    config: dict[str, Any]  # the strategy's sections and "backtest", as run
    fills: np.ndarray  # FILL_DTYPE
    samples: np.ndarray  # SAMPLE_DTYPE
    bt_state: np.ndarray  # BT_STATE_DTYPE x1
    core_state: np.ndarray  # core STATE_DTYPE x1
    summary: dict[str, Any]  # as the run printed it
    counts: dict[str, int]


def _nan(x: Any) -> float:
    return math.nan if x is None else float(x)


def load_journal(path: Path | str) -> JournalData:
    """Read a journal (``avmm report``). One line for a missing file, another kind of file, or a
    session that did not end (no end records)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such file")
    try:
        con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            meta_rows = dict(con.execute("SELECT key, value FROM meta").fetchall())
            if meta_rows.get("format") != FORMAT:
                raise UserError(f"{p}: not an avmm journal (no format record {FORMAT!r})")
            fills_rows = con.execute("SELECT * FROM fills ORDER BY rowid").fetchall()
            sample_rows = con.execute("SELECT * FROM samples ORDER BY rowid").fetchall()
            counts = {
                t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # noqa: S608 (fixed names)
                for t in ("actions", "responses", "fills", "samples", "events")
            }
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise UserError(f"{p}: not an avmm journal ({e})") from None
    for key in ("bt_state", "core_state", "summary"):
        if key not in meta_rows:
            raise UserError(f"{p}: the session did not end (no {key} record): it was killed before its summary")
    meta = json.loads(meta_rows["meta"])
    fills = np.zeros(len(fills_rows), dtype=FILL_DTYPE)
    for i, r in enumerate(fills_rows):
        f = fills[i]
        f["ts"], f["oid"], f["side"], f["maker"] = r[0], r[1], r[2], r[3]
        f["px"], f["qty"], f["fee"], f["mid"], f["pos"] = (_nan(x) for x in r[4:9])
        f["mo"] = np.frombuffer(r[9], dtype=np.float64)
    samples = np.zeros(len(sample_rows), dtype=SAMPLE_DTYPE)
    for i, r in enumerate(sample_rows):
        samples[i] = (int(r[0]), *(_nan(x) for x in r[1:]))
    for key, dt in (("bt_state", BT_STATE_DTYPE), ("core_state", STATE_DTYPE)):
        if len(meta_rows[key]) != dt.itemsize:
            raise UserError(f"{p}: its {key} record was written by another version of avmm (its layout differs)")
    bts = np.frombuffer(meta_rows["bt_state"], dtype=BT_STATE_DTYPE).copy()
    cs = np.frombuffer(meta_rows["core_state"], dtype=STATE_DTYPE).copy()
    return JournalData(meta, meta.get("config", {}), fills, samples, bts, cs, json.loads(meta_rows["summary"]), counts)


def journal_day_pnl(path: Path | str) -> tuple[int, float] | None:
    """The PnL of the UTC day of a journal's last equity sample, for the next session's
    ``risk.max_loss_day``: ``(day, pnl)``, day in days since the epoch, pnl in the samples'
    currency. It is the session's PnL since the day began, + the day's PnL before the session (its
    ``day_pnl0`` record) when the session began on that day. None: not an avmm journal, or no
    samples. A journal killed mid-session counts up to its last sample written."""
    p = Path(path)
    try:
        con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            meta = dict(con.execute("SELECT key, value FROM meta WHERE key IN ('format', 'day_pnl0')").fetchall())
            if meta.get("format") != FORMAT:
                return None
            last = con.execute("SELECT ts, pnl FROM samples ORDER BY ts DESC LIMIT 1").fetchone()
            first = con.execute("SELECT ts FROM samples ORDER BY ts LIMIT 1").fetchone()
            if last is None or first is None or last[1] is None:
                return None
            day = int(last[0]) // DAY_NS
            prev = con.execute(
                "SELECT pnl FROM samples WHERE ts < ? ORDER BY ts DESC LIMIT 1", (day * DAY_NS,)
            ).fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError:
        return None
    d0: dict[str, Any] = json.loads(meta["day_pnl0"]) if meta.get("day_pnl0") else {"day": -1, "pnl": 0.0}
    start_day = int(first[0]) // DAY_NS
    own_day = int(d0.get("day", -1)) if int(d0.get("day", -1)) >= 0 else start_day
    if prev is None or prev[0] is None:  # the session began this day
        base = -float(d0.get("pnl", 0.0)) if own_day == day else 0.0
    else:
        base = float(prev[0])
    return day, float(last[1]) - base
