"""The crash-safe journal: intents appended to a memory-mapped log, copied into SQLite by a thread,
replayed by a resume. The core guarantee is proven with real ``kill -9``s of a process that journals
as fast as it can; the rest: a full ring, a failing commit, client ids, fills deduplicated by trade
id, the recovery view, old formats, the report of a resumed journal."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from avmm.core.state import ACTION_DTYPE
from avmm.errors import UserError
from avmm.live.intents import (
    CID_RE,
    COLUMNS,
    H_HEAD,
    H_VERSION,
    HDR_BYTES,
    K_ACK,
    K_AMEND,
    K_CANCEL,
    K_CANCELED,
    K_EVENT,
    K_FILL,
    K_PLACE,
    K_REJECT,
    K_UNKNOWN,
    ClientIds,
    IntentLog,
    recovery,
)
from avmm.live.journal import Journal, load_journal

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
META = {"venue": "binance-spot", "symbol": "BTCUSDT"}


def _rows(db: Path, where: str = "") -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(f"SELECT {', '.join(COLUMNS)} FROM intents {where} ORDER BY seq").fetchall()  # noqa: S608
    finally:
        con.close()


def _one_line(e: pytest.ExceptionInfo[UserError], *needles: str) -> None:
    msg = str(e.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, msg


def _acts(*rows: tuple[int, int, int, float, float]) -> np.ndarray:
    a = np.zeros(len(rows), dtype=ACTION_DTYPE)
    for i, (kind, oid, side, px, qty) in enumerate(rows):
        a[i]["kind"], a[i]["oid"], a[i]["side"], a[i]["px"], a[i]["qty"] = kind, oid, side, px, qty
    return a


class _Con:
    """A connection whose ``executemany`` waits for ``gate`` and whose ``commit`` may fail."""

    def __init__(self, con: sqlite3.Connection, gate: threading.Event | None = None, fail: bool = False) -> None:
        self.con, self.gate, self.fail = con, gate, fail

    def executemany(self, sql: str, rows: list) -> None:
        if self.gate is not None:
            self.gate.wait()
        self.con.executemany(sql, rows)

    def commit(self) -> None:
        if self.fail:
            raise sqlite3.OperationalError("database or disk is full")
        self.con.commit()

    def rollback(self) -> None:
        self.con.rollback()

    def close(self) -> None:
        self.con.close()


def _wait(cond, timeout_s: float = 10.0) -> None:
    end = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.002)


# --- append, read back ------------------------------------------------------------------------------
def test_every_field_appended_is_read_back_from_sqlite_with_its_client_id(tmp_path):
    db = tmp_path / "j.db"
    j = Journal(db, META, capacity=8)
    s0 = j.actions(10, _acts((K_PLACE, 1, 1, 99.5, 0.25), (K_PLACE, 2, -1, 100.5, 0.5)), 2)
    assert s0 == 0
    for k in range(5):  # past the ring's end: slots are reused once copied
        _wait(lambda: j.copied == j.log.head)
        s = j.actions(20 + k, _acts((K_CANCEL, 1, 1, 0.0, 0.0)), 1)
        assert s == 2 + 2 * k
        assert j.response(21 + k, K_REJECT, 1, 1, 0.0, 0.0, 0.0, code=-2011) == s + 1
    assert j.response(40, K_FILL, 2, -1, 100.5, 0.5, 0.01, trade_id=555, venue_oid=9_000_000_001) == 12
    j.event(41, "health", "stale feed")
    j.close()
    rows = _rows(db)
    assert [r[0] for r in rows] == list(range(14))
    ses = j.session
    assert rows[0] == (0, 10, K_PLACE, ses, 1, 0, 0, 1, 0, 99.5, 0.25, 0.0)
    assert rows[1] == (1, 10, K_PLACE, ses, 2, 0, 0, -1, 0, 100.5, 0.5, 0.0)
    assert rows[3] == (3, 21, K_REJECT, ses, 1, 0, 0, 1, -2011, 0.0, 0.0, 0.0)
    assert rows[12] == (12, 40, K_FILL, ses, 2, 9_000_000_001, 555, -1, 0, 100.5, 0.5, 0.01)
    assert rows[13][2] == K_EVENT
    con = sqlite3.connect(db)
    cids = [r[0] for r in con.execute("SELECT cid FROM actions ORDER BY seq")]
    assert cids[:2] == [f"avmm-{ses}-0", f"avmm-{ses}-1"] == [j.client_id(0), j.client_id(1)]
    assert con.execute("SELECT kind, trade_id FROM responses WHERE seq = 12").fetchone() == ("fill", 555)
    assert con.execute("SELECT seq, kind, text FROM events").fetchall() == [(13, "health", "stale feed")]
    con.close()
    with pytest.raises(UserError) as e:  # appends after close are refused
        j.response(50, K_ACK, 1, 0, 0.0, 0.0, 0.0)
    _one_line(e, "closed")
    with pytest.raises(UserError) as e:  # no summary: it did not end
        load_journal(db)
    _one_line(e, "did not end")


def test_a_new_journal_replaces_the_old_and_its_log(tmp_path):
    db = tmp_path / "j.db"
    j = Journal(db, META)
    j.actions(1, _acts((K_PLACE, 1, 1, 1.0, 1.0)), 1)
    j.close()
    j = Journal(db, META)
    assert j.log.head == 0 and j.recovery.open == []
    j.close()
    assert _rows(db) == []


# --- kill -9 ----------------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _run_and_kill(db: Path, rng: random.Random, after_ready: bool) -> tuple[list[tuple[int, int, int, int]], list[str]]:
    """One writer process killed with SIGKILL: the records it reported, and its 'ready' line's words.
    Its stdout is a file (a pipe would block it when full: the writer thread would catch up)."""
    out_path = db.with_name("writer.out")
    with out_path.open("wb") as out:
        p = subprocess.Popen(
            [sys.executable, str(HERE / "intent_writer.py"), str(db)],
            stdout=out,
            stderr=subprocess.PIPE,
            env=_env(),
        )
    try:
        if after_ready:
            _wait(lambda: out_path.read_bytes().startswith(b"ready") or p.poll() is not None, 60.0)
            time.sleep(rng.uniform(0.02, 0.3))
        else:  # anywhere: importing, replaying the log, resuming, journaling
            time.sleep(rng.uniform(0.3, 2.0))
        os.kill(p.pid, signal.SIGKILL)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == -signal.SIGKILL, err.decode()  # killed, not ended on its own (exit 3: a fill counted twice)
    lines = out_path.read_text().split("\n")[:-1]  # the last one may be cut by the kill
    ready = lines[0].split() if lines and lines[0].startswith("ready") else []
    recs = [tuple(int(x) for x in ln.split()) for ln in lines if ln and not ln.startswith("ready")]
    return recs, ready  # type: ignore[return-value]


@pytest.mark.xdist_group("live")  # a process journaling flat out
def test_kill_9_at_any_moment_then_resume_loses_no_intent_and_counts_no_fill_twice(tmp_path):
    db = tmp_path / "j.db"
    Journal(db, META).close()  # compiles the kernels (the cache the writers load)
    rng = random.Random(int.from_bytes(os.urandom(4), "little"))
    reported: list[tuple[int, int, int, int]] = []
    sessions, replayed = set(), 0
    for k in range(5):
        recs, ready = _run_and_kill(db, rng, after_ready=k != 2)
        reported += recs
        if ready:
            sessions.add(int(ready[1]))
            replayed += int(ready[2])
    j = Journal(db, META, resume=True)  # the last kill's records are replayed here
    replayed += j.replayed
    j.close()
    rows = _rows(db)
    seqs = [r[0] for r in rows]
    assert seqs == list(range(len(rows)))  # contiguous: nothing lost in the middle; a primary key: nothing twice
    assert len(reported) > 100
    print(f"{len(reported)} reported, {len(rows)} journaled, {replayed} replayed, {len(sessions)} sessions")
    assert replayed > 0  # kills left records only the log held: the replay was exercised
    by_seq = {r[0]: r for r in rows}
    for seq, kind, oid, tid in reported:  # every intent appended before a kill is in SQLite, as appended
        r = by_seq[seq]
        assert (r[2], r[4], r[6]) == (kind, oid, tid), (seq, r)
    assert [s for s, *_ in reported] == sorted(s for s, *_ in reported)  # in order
    tids = [r[6] for r in rows if r[2] == K_FILL]
    assert tids == list(range(1, len(tids) + 1))  # each fill once: none lost, none counted twice
    known = set(_sessions(db))
    assert sessions <= known and {r[3] for r in rows} <= known


def _sessions(db: Path) -> list[int]:
    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("SELECT session FROM sessions ORDER BY session")]
    finally:
        con.close()


# --- a full ring, a failing writer -----------------------------------------------------------------
def test_a_full_ring_waits_for_the_writer_then_raises_one_line_and_loses_nothing(tmp_path):
    db = tmp_path / "j.db"
    j = Journal(db, META, capacity=16, full_wait_s=0.05)
    gate = threading.Event()
    j.con = _Con(j.con, gate)  # type: ignore[assignment]
    for i in range(16):
        assert j.response(i, K_ACK, i, 0, 0.0, 0.0, 0.0) == i
    with pytest.raises(UserError) as e:
        j.response(16, K_ACK, 16, 0, 0.0, 0.0, 0.0)
    _one_line(e, "intent log is full", "16 intents", str(j.log_path))
    # the writer frees slots while an append waits: the append goes through
    j.full_wait_s = 5.0
    threading.Timer(0.05, gate.set).start()
    assert j.response(17, K_ACK, 17, 0, 0.0, 0.0, 0.0) == 16
    assert j.n_full_waits == 1
    j.close()
    assert [r[0] for r in _rows(db)] == list(range(17))
    assert [r[4] for r in _rows(db)] == [*range(16), 17]  # the refused one (oid 16) is not there


def test_a_failing_commit_raises_one_line_once_and_a_resume_copies_what_the_log_kept(tmp_path):
    db = tmp_path / "j.db"
    j = Journal(db, META, capacity=64)
    j.actions(1, _acts((K_PLACE, 1, 1, 99.0, 1.0)), 1)
    _wait(lambda: j.copied == 1)
    j.con = _Con(j.con, fail=True)  # type: ignore[assignment]
    j.response(2, K_ACK, 1, 0, 0.0, 0.0, 0.0)
    _wait(lambda: j.error is not None)
    with pytest.raises(UserError) as e:  # refused before the record: nothing sent unjournaled
        j.actions(3, _acts((K_PLACE, 2, -1, 101.0, 1.0)), 1)
    _one_line(e, "write failed", "database or disk is full", "1 intents", str(j.log_path), "resume")
    s = j.actions(4, _acts((K_CANCEL, 1, 1, 0.0, 0.0)), 1)  # the cleanup's cancels go on, into the log
    j.response(5, K_CANCELED, 1, 0, 0.0, 0.0, 0.0)
    j.close()  # raised once already
    assert [r[0] for r in _rows(db)] == [0]
    j = Journal(db, META, resume=True)
    assert j.replayed == 3 and j.recovery.open == []
    j.close()
    rows = _rows(db)
    assert [(r[0], r[1], r[2]) for r in rows] == [(0, 1, K_PLACE), (1, 2, K_ACK), (s, 4, K_CANCEL), (3, 5, K_CANCELED)]


def test_a_failing_commit_unseen_by_any_append_is_raised_by_close(tmp_path):
    j = Journal(tmp_path / "j.db", META)
    j.con = _Con(j.con, fail=True)  # type: ignore[assignment]
    j.response(1, K_ACK, 1, 0, 0.0, 0.0, 0.0)
    _wait(lambda: j.error is not None)
    with pytest.raises(UserError) as e:
        j.close()
    _one_line(e, "write failed", "1 intents")


# --- client ids -------------------------------------------------------------------------------------
def test_client_ids_are_binances_alphabet_within_36_characters_and_unique_across_sessions(tmp_path):
    worst = ClientIds("abcdefgh", 9_999_999_999)(10**15 - 1)
    assert len(worst) <= 36 and CID_RE.match(worst)
    assert ClientIds.parse(worst) == ("abcdefgh", 9_999_999_999, 10**15 - 1)
    assert ClientIds.parse("web_1234abcd") is None and ClientIds.parse("x-1-y") is None
    for bad in ("", "a-b", "toolongprefix", "é"):
        with pytest.raises(UserError) as e:
            Journal(tmp_path / "bad.db", META, prefix=bad)
        _one_line(e, "prefix")
    db = tmp_path / "j.db"
    cids, sessions = [], []
    for k in range(3):  # three sessions within a second: the session ids still increase
        j = Journal(db, META, resume=k > 0, prefix="mm_1")
        sessions.append(j.session)
        s = j.actions(k, _acts((K_PLACE, 1, 1, 1.0, 1.0), (K_PLACE, 2, -1, 2.0, 1.0)), 2)
        cids += [j.client_id(s), j.client_id(s + 1)]
        j.close()
    assert sessions == sorted(sessions) and len(set(sessions)) == 3
    assert len(set(cids)) == 6 and all(CID_RE.match(c) and c.startswith("mm_1-") for c in cids)
    con = sqlite3.connect(db)
    assert [r[0] for r in con.execute("SELECT cid FROM actions ORDER BY seq")] == cids
    con.close()
    with pytest.raises(UserError) as e:
        Journal(db, META, resume=True, prefix="avmm")
    _one_line(e, "prefix 'mm_1'")


# --- fills deduplicated by trade id -----------------------------------------------------------------
def test_fills_replayed_twice_are_counted_once_in_a_session_and_after_a_resume(tmp_path):
    from avmm.backtest.config import BacktestConfig
    from avmm.core.config import StrategyConfig
    from avmm.live.trader import Trader

    db = tmp_path / "j.db"
    j = Journal(db, META)
    tr = Trader(StrategyConfig(), BacktestConfig(), journal=j, meta={"market": "spot"})
    fills = [(100 + k, 7, 1, 99.0, 0.1, 0.0, 1000 + k) for k in range(5)]
    for f in fills + fills[2:]:  # a venue's replay of the last three
        tr.fill(*f[:6], trade_id=f[6])
    assert tr.n_dup_fills == 3
    j.close()
    assert [r[6] for r in _rows(db, f"WHERE kind = {K_FILL}")] == [1000, 1001, 1002, 1003, 1004]
    j = Journal(db, META, resume=True)
    assert j.recovery.trade_ids == {1000, 1001, 1002, 1003, 1004} and j.recovery.last_fill_ns == 104
    tr = Trader(StrategyConfig(), BacktestConfig(), journal=j, meta={"market": "spot"})
    for f in [*fills, (200, 8, -1, 101.0, 0.1, 0.0, 1005)]:  # a reconciliation's fills: one is new
        tr.fill(*f[:6], trade_id=f[6])
    assert tr.n_dup_fills == 5
    j.close()
    assert [r[6] for r in _rows(db, f"WHERE kind = {K_FILL}")] == [1000, 1001, 1002, 1003, 1004, 1005]


def test_the_trade_id_table_holds_every_id_through_collisions_and_growth():
    from avmm.live.intents import TradeIds

    ids = TradeIds([5, 7], bits=3)  # 8 slots: grows past 4
    assert ids.seen(5) and ids.seen(7) and not ids.seen(0) and not ids.seen(0) and len(ids) == 2
    new = [1 << 20, 2 << 20, 3 << 20, *range(100, 160), 2**62 + 1]  # strided, sequential, large
    assert not any(ids.seen(t) for t in new)
    assert all(ids.seen(t) for t in [5, 7, *new])
    assert len(ids) == 2 + len(new) and ids.ids() == {5, 7, *new} and ids.bits == 8
    assert 100 in ids and 99 not in ids


# --- the recovery view ------------------------------------------------------------------------------
def test_the_recovery_view_names_every_order_not_known_final_and_the_unknown_ones():
    rows: list[tuple] = []

    def rec(kind: int, oid: int, qty: float = 0.0, px: float = 0.0, tid: int = 0, code: int = 0, ses: int = 5) -> None:
        rows.append((len(rows), len(rows) * 10, kind, ses, oid, 0, tid, 1, code, px, qty, 0.0))

    rec(K_PLACE, 1, 1.0, 10.0)  # 1: acked, working: open, known
    rec(K_ACK, 1)
    rec(K_PLACE, 2, 1.0)  # 2: no answer: unknown (did it reach the venue?)
    rec(K_PLACE, 3, 1.0)  # 3: rejected: final
    rec(K_REJECT, 3, code=-2010)
    rec(K_PLACE, 4, 1.0)  # 4: canceled: final
    rec(K_ACK, 4)
    rec(K_CANCEL, 4)
    rec(K_CANCELED, 4)
    rec(K_PLACE, 5, 1.0)  # 5: partly filled (fill before ack): open, 0.6 left
    rec(K_FILL, 5, 0.4, tid=77)
    rec(K_PLACE, 6, 1.0)  # 6: filled in two: final
    rec(K_FILL, 6, 0.5, tid=78)
    rec(K_FILL, 6, 0.5, tid=79)
    rec(K_PLACE, 7, 1.0, 10.0)  # 7: amended, acked: 0.3 at 11
    rec(K_ACK, 7)
    rec(K_AMEND, 7, 0.3, 11.0)
    rec(K_ACK, 7)
    rec(K_PLACE, 8, 1.0)  # 8: a cancel with no answer: unknown, pending cancel
    rec(K_ACK, 8)
    rec(K_CANCEL, 8)
    rec(K_PLACE, 9, 1.0)  # 9: a timeout (unknown, -1007)
    rec(K_UNKNOWN, 9, code=-1007)
    rec(K_PLACE, 10, 1.0)  # 10: an amend rejected: working as before, known
    rec(K_ACK, 10)
    rec(K_AMEND, 10, 2.0, 9.0)
    rec(K_REJECT, 10, code=-2010)
    rec(K_PLACE, 11, 1.0)  # 11: a cancel rejected (-2011): unknown
    rec(K_ACK, 11)
    rec(K_CANCEL, 11)
    rec(K_REJECT, 11, code=-2011)
    rec(K_PLACE, 1, 1.0, ses=6)  # the same oid in the next session is another order: no answer
    rec(K_CANCELED, 1, ses=5)  # session 5's order 1 canceled (by a reconciliation)
    rec(K_EVENT, 0, code=1)
    r = recovery(rows, "avmm")
    got = {(i.session, i.oid): i for i in r.open}
    assert sorted(got) == [(5, 2), (5, 5), (5, 7), (5, 8), (5, 9), (5, 10), (5, 11), (6, 1)]
    assert {k for k, i in got.items() if i.unknown} == {(5, 2), (5, 8), (5, 9), (5, 11), (6, 1)}
    assert got[(5, 2)].pending == "place" and got[(5, 2)].cid == "avmm-5-2" == got[(5, 2)].pending_cid
    assert got[(5, 5)].leaves == pytest.approx(0.6) and got[(5, 5)].filled == 0.4 and got[(5, 5)].acked
    assert (got[(5, 7)].leaves, got[(5, 7)].px, got[(5, 7)].pending) == (0.3, 11.0, None)
    assert got[(5, 8)].pending == "cancel" and got[(5, 8)].pending_cid == "avmm-5-20"
    assert got[(5, 9)].code == -1007 and got[(5, 9)].pending == "place"
    assert (got[(5, 10)].leaves, got[(5, 10)].unknown) == (1.0, False)
    assert got[(5, 11)].code == -2011 and got[(5, 11)].pending is None
    assert r.trade_ids == {77, 78, 79} and r.fills == 3 and r.last_fill_ns == 130


# --- old or foreign files ---------------------------------------------------------------------------
def _closed_journal(tmp_path: Path) -> Path:
    db = tmp_path / "j.db"
    j = Journal(db, META, capacity=8)
    j.actions(1, _acts((K_PLACE, 1, 1, 1.0, 1.0)), 1)
    j.close()
    return db


def _words(log: Path) -> np.memmap:
    return np.memmap(log, dtype=np.int64, mode="r+", shape=(HDR_BYTES // 8,))


def test_a_resume_with_a_log_of_an_older_format_or_another_journal_is_one_line(tmp_path):
    db = _closed_journal(tmp_path)
    log = Path(f"{db}.log")
    w = _words(log)
    w[H_VERSION] = 0
    w.flush()
    del w
    with pytest.raises(UserError) as e:
        Journal(db, META, resume=True)
    _one_line(e, str(log), "format version 0", "reads version 1")
    log.write_bytes(b"x" * 4096)
    with pytest.raises(UserError) as e:
        Journal(db, META, resume=True)
    _one_line(e, "not an avmm intent log")
    (tmp_path / "other").mkdir()
    other = _closed_journal(tmp_path / "other")
    os.replace(f"{other}.log", log)
    with pytest.raises(UserError) as e:
        Journal(db, META, resume=True)
    _one_line(e, "another journal")
    log.unlink()  # no log: nothing to replay, the journal goes on
    j = Journal(db, META, resume=True)
    assert j.log.head == 1
    j.close()


def test_a_resume_replays_the_logs_uncopied_records_and_stops_at_a_torn_one(tmp_path):
    db = _closed_journal(tmp_path)
    log = IntentLog.open(Path(f"{db}.log"))
    for s in (1, 2, 3):  # as a kill leaves them: appended, not copied
        r = log.recs[s % log.capacity]
        r["seq"], r["ts"], r["kind"], r["session"], r["oid"] = s, 10 + s, K_ACK, 5, s
    log.words[H_HEAD] = 4
    log.recs[3 % log.capacity]["seq"] = 99  # torn
    log.mm.flush()
    with pytest.raises(UserError) as e:
        Journal(db, META, resume=True)
    _one_line(e, "record 3 is torn", "move the log away")
    log.recs[3 % log.capacity]["seq"] = 3
    log.mm.flush()
    del log
    j = Journal(db, META, resume=True)
    assert j.replayed == 3 and j.log.head == 4
    j.close()
    assert [(r[0], r[2], r[4]) for r in _rows(db)] == [(0, K_PLACE, 1), (1, K_ACK, 1), (2, K_ACK, 2), (3, K_ACK, 3)]


def test_a_resume_of_a_format_1_journal_is_one_line_and_report_still_reads_it(tmp_path):
    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.executescript(
        """CREATE TABLE meta (key TEXT PRIMARY KEY, value);
        CREATE TABLE actions (seq, ts, kind, oid, side, px, qty); CREATE TABLE responses (seq, ts, kind, oid, side,
        px, qty, fee); CREATE TABLE fills (ts, oid, side, maker, px, qty, fee, mid, pos, mo);
        CREATE TABLE samples (ts, mid, bid, ask, our_bid, our_ask, pos, pnl, fees);
        CREATE TABLE events (seq, ts, kind, text);"""
    )
    con.execute("INSERT INTO meta VALUES ('format', 'avmm-journal-1')")
    con.execute("INSERT INTO meta VALUES ('meta', '{}')")
    con.commit()
    con.close()
    with pytest.raises(UserError) as e:
        Journal(db, META, resume=True)
    _one_line(e, "older avmm", "avmm-journal-1", "start a new journal")
    with pytest.raises(UserError) as e:  # read as format 1: the end records are missing
        load_journal(db)
    _one_line(e, "did not end", "bt_state")
    (tmp_path / "text.db").write_text("not sqlite, not a journal\n" * 200)
    with pytest.raises(UserError) as e:
        Journal(tmp_path / "text.db", META, resume=True)
    _one_line(e, "text.db")


# --- the report of a resumed journal ----------------------------------------------------------------
def test_report_reads_the_last_session_that_ended_or_the_one_named(tmp_path):
    from avmm.backtest.config import BacktestConfig
    from avmm.cli.paper import journal_result
    from avmm.core.config import StrategyConfig
    from avmm.data.synth import generate
    from avmm.live.trader import Trader, replay

    cfg, bt = StrategyConfig(), BacktestConfig()
    meta = {"venue": "binance-spot", "config": {**cfg.model_dump(mode="json"), "backtest": bt.model_dump(mode="json")}}
    db = tmp_path / "j.db"
    summaries, sessions = [], []
    for k, seed in enumerate((3, 4)):
        j = Journal(db, meta, resume=k > 0)
        tr = Trader(cfg, bt, journal=j, meta={"market": "spot"})
        summaries.append(replay(tr, next(generate(3000, seed))))
        sessions.append(j.session)
        j.close()
    j = Journal(db, meta, resume=True)  # a third session, killed before its end
    j.actions(1, _acts((K_PLACE, 1, 1, 1.0, 1.0)), 1)
    j.close()
    d = load_journal(db)
    assert (d.session, d.sessions) == (sessions[1], 3)
    assert d.counts["fills"] == summaries[1]["fills"] > 0
    first = load_journal(db, session=sessions[0])
    assert first.counts["fills"] == summaries[0]["fills"] > 0
    assert first.counts["actions"] > 0 and first.counts["fills"] + d.counts["fills"] == len(
        _rows(db, f"WHERE kind = {K_FILL}")
    )
    res = journal_result(db)
    assert res.summary["fills"] == summaries[1]["fills"]
    assert res.summary["pnl_net"] == pytest.approx(summaries[1]["pnl_net"])
    with pytest.raises(UserError) as e:
        load_journal(db, session=1)
    _one_line(e, "no session 1")
    with pytest.raises(UserError) as e:
        load_journal(db, session=j.session)
    _one_line(e, f"session {j.session} did not end")
