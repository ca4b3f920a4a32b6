"""``live/control.py`` without a feed: the commands on a real ``Trader`` (set changes the next orders,
refused keys and values are one line, pause cancels and quotes nothing until resume, kill stops),
the control socket (JSON lines, mode 0600, stale and foreign files), the supervisor's once-a-second
watch (the disconnect and reconciliation alerts, the log lines)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from avmm.backtest.config import BacktestConfig
from avmm.config import parse_override
from avmm.core.config import StrategyConfig
from avmm.core.state import ACT_CANCEL, ACT_PLACE
from avmm.errors import UserError
from avmm.live import control
from avmm.live.alerts import Alerts
from avmm.live.config import AlertsConfig
from avmm.live.control import Controller, ControlServer, Supervisor, check_socket_path, request
from avmm.live.trader import Trader

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
# fixed sigma, A and k: the core quotes at the first quote
CFG = StrategyConfig.model_validate(
    {"model": {"kind": "as-rolling", "gamma": 0.1, "sigma": 0.01, "A": 1.0, "k": 5.0}, "quoting": {"tick": 0.01}}
)


class FakeJournal:
    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def actions(self, t: int, a: Any, n: int) -> None:
        for j in range(n):
            r = a[j]
            self.rows.append(("a", t, int(r["kind"]), int(r["side"]), float(r["px"]), float(r["qty"])))

    def response(self, t: int, *args: Any) -> None:
        self.rows.append(("r", t, *args))

    def answer(self, t: int, *args: Any) -> None:
        self.rows.append(("r", t, *args))

    def fill_seen(self, trade_id: int) -> bool:
        return False

    def event(self, t: int, kind: str, text: str) -> None:
        self.rows.append(("e", t, kind, text))

    def fills(self, f: Any) -> None:
        pass

    def samples(self, s: Any) -> None:
        pass

    def places(self) -> list[tuple[int, float, float]]:
        return [(r[3], r[4], r[5]) for r in self.rows if r[0] == "a" and r[2] == ACT_PLACE]


class FakeRuntime:
    """What control needs of a session, around a real ``Trader``."""

    def __init__(self, trader: Any, journal: Any = None) -> None:
        self.trader = trader
        self.journal = journal
        self.status_extra: Any = None
        self.t = T0
        self.stopped = 0
        self.is_connected = True
        self.counters: dict[str, int] = {"frames": 0, "snapshots": 1, "snapshot_errors": 0, "snapshot_retries": 0}

    def now(self) -> int:
        return self.t

    def status(self) -> dict[str, Any]:
        return {"reason": "ok", **(self.status_extra() if self.status_extra else {})}

    def stop(self) -> None:
        self.stopped += 1

    def frames(self) -> int:
        return self.counters["frames"]

    def connected(self) -> bool:
        return self.is_connected

    def feed_counters(self) -> dict[str, int]:
        return dict(self.counters)


def _session(cfg: StrategyConfig = CFG) -> tuple[Trader, FakeJournal, FakeRuntime, Controller]:
    j = FakeJournal()
    tr = Trader(cfg, BacktestConfig(), journal=j)  # type: ignore[arg-type]
    rt = FakeRuntime(tr, j)
    log = logging.getLogger("test.control")
    ctl = Controller(rt, cfg, parse_override, log, Alerts(AlertsConfig(), log))
    return tr, j, rt, ctl


def _quote(tr: Trader, rt: FakeRuntime, dt_ms: int, bid: float = 99.99, ask: float = 100.01) -> None:
    rt.t = T0 + dt_ms * MS
    tr.venue_quote(rt.t, bid, 1.0, ask, 1.0)
    tr.core_quote(rt.t, bid, 1.0, ask, 1.0)


def test_set_changes_the_next_orders_and_is_journaled():
    tr, j, rt, ctl = _session()
    _quote(tr, rt, 0)
    first = j.places()
    assert first and {q for _, _, q in first} == {0.001}  # size 'auto': one lot
    bid0 = max(p for s, p, _ in first if s > 0)
    ans = ctl.handle({"cmd": "set", "arg": "quoting.size=0.005"})
    assert ans == {"ok": True, "key": "quoting.size", "old": "auto", "new": 0.005, "params": ans["params"]}
    assert {"sizes", "max_position"} <= set(ans["params"])  # max_position 'auto' follows the size
    assert tr.gw.bp[0]["max_position"] == pytest.approx(0.05)  # the paper venue's risk check too
    n = len(j.places())
    _quote(tr, rt, 50)
    assert {q for _, _, q in j.places()[n:]} == {0.005}
    assert ("e", rt.t - 50 * MS, "set", 'quoting.size: "auto" -> 0.005') in j.rows
    # a higher gamma: a smaller liquidity term, quotes closer to the mid
    n = len(j.places())
    assert ctl.handle({"cmd": "set", "arg": "model.gamma=2"})["new"] == 2.0
    _quote(tr, rt, 100)
    bid1 = max(p for s, p, _ in j.places()[n:] if s > 0)
    assert bid1 > bid0
    assert ctl.changes == 2 and ctl.cfg.model.gamma == 2.0


@pytest.mark.parametrize(
    ("arg", "needle"),
    [
        ("model.gamma=-1", "set: model.gamma = -1: Input should be greater than 0"),
        ("model.gama=1", "model.gama"),
        ("quoting.tick=0.5", "set quoting.tick: cannot change while running (the keys that can: model.{gamma"),
        ("quoting.levels=2", "set quoting.levels: cannot change while running"),
        ("model.k='auto'", "set model.k = 'auto': cannot change while running (it changes int_on)"),
        ("signals.vamp.weight=1", "set signals.vamp.weight: cannot change while running"),
        ("backtest.maker_fee=0", "set backtest.maker_fee: [backtest] is read at start"),
        ("gamma=1", "set 'gamma=1': the key needs a section"),
        ("model.gamma", "set 'model.gamma': expected section.key=value"),
    ],
)
def test_a_refused_set_is_one_line_and_changes_nothing(arg, needle):
    tr, j, rt, ctl = _session()
    before = tr.engine.params.copy()
    ans = ctl.handle({"cmd": "set", "arg": arg})
    assert ans["ok"] is False and needle in ans["error"], ans
    assert "\n" not in ans["error"]
    assert tr.engine.params.tobytes() == before.tobytes()
    assert not [r for r in j.rows if r[0] == "e"]


def test_pause_cancels_and_quotes_nothing_until_resume():
    tr, j, rt, ctl = _session()
    _quote(tr, rt, 0)
    tr.tick(rt.t + 100 * MS)  # acked
    assert len(tr.orders()) == 2
    ans = ctl.handle({"cmd": "pause"})
    assert ans == {"ok": True, "paused": True, "cancels": 2}
    n = len(j.rows)
    assert [r[2] for r in j.rows if r[0] == "a"][-2:] == [ACT_CANCEL, ACT_CANCEL]
    for k in range(1, 20):  # quotes, trades, a health change and the timer: nothing placed
        _quote(tr, rt, 100 + 200 * k, 99.99 + 0.01 * (k % 3), 100.01 + 0.01 * (k % 3))
        tr.core_trade(rt.t, 100.0, 0.5, 1)
    tr.set_health(rt.t, False, "stale: bookTicker")
    tr.set_health(rt.t, True, "ok")
    _quote(tr, rt, 5000)
    tr.tick(rt.t + 10_000 * MS)
    assert tr.orders() == []
    assert not [r for r in j.rows[n:] if r[0] == "a" and r[2] == ACT_PLACE]
    assert tr.n_halts == 0 and tr.paused  # the pause is not a halt; nor a stale feed while not quoting
    assert ctl.handle({"cmd": "pause"}) == {"ok": True, "paused": True, "cancels": 0}
    assert ctl.handle({"cmd": "resume"})["paused"] is False
    _quote(tr, rt, 20_000)
    assert [r for r in j.rows[n:] if r[0] == "a" and r[2] == ACT_PLACE]
    events = [r[3] for r in j.rows if r[0] == "e" and r[2] == "control"]
    assert events == ["paused", "resumed"]


def test_kill_cancels_stops_and_refuses_what_follows():
    tr, j, rt, ctl = _session()

    async def go() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        _quote(tr, rt, 0)
        a = ctl.handle({"cmd": "kill", "flatten": True})
        b = ctl.handle({"cmd": "resume"})
        c = ctl.handle({"cmd": "status"})
        await asyncio.sleep(0)
        return a, b, c

    a, b, c = asyncio.run(go())
    assert a == {"ok": True, "killed": "ctl", "cancels": 2, "flatten": True}  # flat already: stops at once
    assert b == {"ok": False, "error": "the session is stopping (killed by ctl)"}
    assert c["ok"] and c["status"]["reason"] == "ok"  # status still answers
    assert rt.stopped == 1 and ctl.killed_by == "ctl"
    assert ("e", T0, "kill", "ctl (flatten)") in j.rows
    _quote(tr, rt, 100)
    assert len(j.places()) == 2  # the first quote's two, nothing after


def test_kill_with_flatten_closes_the_position_then_stops():
    tr, j, rt, ctl = _session()

    async def go() -> dict[str, Any]:
        _quote(tr, rt, 0)
        bid = max(px for side, px, _ in j.places() if side == 1)
        for dt in (50, 100):  # our bid filled by a sell through it, after the order's latency
            rt.t = T0 + dt * MS
            tr.venue_trade(rt.t, bid - 0.05, 5.0, -1)
            tr.core_trade(rt.t, bid - 0.05, 5.0, -1)
        assert float(tr.engine.state["pos"][0]) > 0
        a = ctl.handle({"cmd": "kill", "flatten": True})
        await asyncio.sleep(0.1)
        assert rt.stopped == 0 and tr.flattening()  # still long: not stopped
        for dt in range(200, 1000, 50):  # the taker order meets the book
            _quote(tr, rt, dt, bid=99.0, ask=99.02)
            await asyncio.sleep(0.06)
            if rt.stopped:
                break
        return a

    a = asyncio.run(go())
    assert a["ok"] and a["killed"] == "ctl" and a["flatten"] is True
    assert rt.stopped == 1 and not tr.flattening()
    assert float(tr.engine.state["pos"][0]) == 0.0
    takes = [r for r in j.rows if r[0] == "a" and r[2] == ACT_PLACE and r[3] == -1 and r[4] == 99.0]
    assert takes  # a sell at the bid: the taker order


# --- the socket ----------------------------------------------------------------------------------------
@contextmanager
def serving(path: Path, handle: Any):
    """A ``ControlServer`` at ``path`` on a thread's event loop."""
    loop = asyncio.new_event_loop()
    srv = ControlServer(path, handle, logging.getLogger("test.control"))
    ready = threading.Event()
    err: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(srv.start())
        except BaseException as e:  # noqa: BLE001 - handed to the test
            err.append(e)
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(srv.close())
        loop.close()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    ready.wait(10)
    if err:
        raise err[0]
    try:
        yield srv
    finally:
        loop.call_soon_threadsafe(loop.stop)
        th.join(10)


def _echo(req: Any) -> dict[str, Any]:
    if req.get("cmd") == "status":
        return {"ok": True, "status": {"fills": 3}}
    return {"ok": False, "error": f"refused {req.get('arg')}"}


def test_the_socket_answers_json_lines_with_mode_0600_and_is_removed_at_the_end(tmp_path):
    path = tmp_path / "ctl.sock"
    with serving(path, _echo):
        assert stat.S_ISSOCK(path.lstat().st_mode)
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600
        assert request(path, {"cmd": "status"}) == {"ok": True, "status": {"fills": 3}}
        assert request(path, {"cmd": "set", "arg": "x=1"}) == {"ok": False, "error": "refused x=1"}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:  # two lines on one connection, one bad
            s.connect(str(path))
            s.sendall(b'not json\n{"cmd": "status"}\n')
            f = s.makefile("rb")
            assert f.readline() == b'{"ok": false, "error": "not a JSON line"}\n'
            assert b'"fills": 3' in f.readline()
        with pytest.raises(UserError, match="another session is listening there"):
            check_socket_path(path)
    assert not path.exists()
    with pytest.raises(UserError, match="no such socket"):
        request(path, {"cmd": "status"})


def test_a_stale_socket_is_replaced_and_a_file_is_not(tmp_path):
    path = tmp_path / "ctl.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))  # a crashed session's: bound, never unlinked, nothing listening
    s.close()
    with pytest.raises(UserError, match="nothing listens there"):
        request(path, {"cmd": "status"})
    with serving(path, _echo):
        assert request(path, {"cmd": "status"})["ok"]
    other = tmp_path / "notes.txt"
    other.write_text("mine")
    with pytest.raises(UserError, match="exists and is not a socket"):
        check_socket_path(other)
    assert other.read_text() == "mine"
    with pytest.raises(UserError, match="too long for a Unix socket"):
        check_socket_path(tmp_path / ("x" * 120))
    with pytest.raises(UserError, match="does not exist"):
        check_socket_path(tmp_path / "none" / "ctl.sock")


# --- the supervisor's watch -------------------------------------------------------------------------------
class FakeTrader:
    def __init__(self) -> None:
        self.notify: Any = None
        self.paused = False
        self.stopping = False


def test_the_watch_alerts_on_a_long_disconnect_and_failing_snapshots_and_logs_what_moved(tmp_path, monkeypatch):
    monkeypatch.setattr(control, "WATCH_S", 0.02)
    out = tmp_path / "alerts"
    cmd = f"sh -c 'cat >> {out}; echo >> {out}'"
    rt = FakeRuntime(FakeTrader())
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, r: logging.LogRecord) -> None:
            records.append(r.getMessage())

    log = logging.getLogger("test.watch")
    log.setLevel(logging.INFO)
    log.addHandler(Keep())
    cfg = AlertsConfig(command=cmd, disconnect_s=0.05, resync_failures=3, min_interval_s=0)

    async def go() -> None:
        async with Supervisor(rt, CFG, parse_set=parse_override, alerts=cfg, log=log):  # type: ignore[arg-type]
            rt.is_connected = False
            await asyncio.sleep(0.3)
            rt.is_connected = True
            rt.counters["reconnects"] = 1
            for _ in range(3):
                rt.counters["snapshot_errors"] += 1
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.1)
            rt.trader.notify("halt", "stale: bookTicker")

    asyncio.run(go())
    import json

    kinds = [json.loads(x)["kind"] for x in out.read_text().splitlines() if x.strip()]
    assert kinds == ["disconnect", "reconcile", "halt"]
    assert any(r.startswith("feed: reconnects +1") for r in records), records
    assert any("the feed is connected again" in r for r in records)
    assert any(r == "reconciliation failed: the book's snapshot failed 3 times in a row" for r in records)
    assert any(r.startswith("alert halt: command sh ran") for r in records)


def test_rt_priority_not_permitted_is_one_warning_and_the_session_goes_on(monkeypatch):
    def refuse(*a: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    rt = FakeRuntime(FakeTrader())
    warnings: list[str] = []

    async def go() -> dict[str, Any]:
        sup = Supervisor(rt, CFG, parse_set=parse_override, rt_priority=5, cpus=[0], warn=warnings.append)  # type: ignore[arg-type]
        async with sup:
            return rt.status()

    st = asyncio.run(go())
    assert warnings == ["--rt-priority 5: SCHED_FIFO not permitted (Operation not permitted); going on without it"]
    assert st["tuning"] == {
        "cpus": [0], "rt_priority": "not permitted: Operation not permitted", "gc": "auto", "busy_poll": False,
    }  # fmt: skip


def test_busy_poll_keeps_the_loop_from_sleeping_for_the_session_only():
    """``busy_poll``: while the supervisor runs, the loop never blocks in its selector (every poll
    has a zero timeout), the status says so; after it, the loop sleeps again."""
    import selectors

    rt = FakeRuntime(FakeTrader())
    timeouts: list[float | None] = []

    class Sel(selectors.DefaultSelector):
        def select(self, timeout: float | None = None) -> Any:
            timeouts.append(timeout)
            return super().select(timeout)

    async def go() -> tuple[dict[str, Any], list[float | None], list[float | None]]:
        sup = Supervisor(rt, CFG, parse_set=parse_override, busy_poll=True)  # type: ignore[arg-type]
        async with sup:
            await asyncio.sleep(0.05)
            timeouts.clear()
            await asyncio.sleep(0.05)  # a wait: the loop polls instead of sleeping 50 ms
            during = list(timeouts)
            st = rt.status()
        timeouts.clear()
        await asyncio.sleep(0.05)
        return st, during, list(timeouts)

    loop = asyncio.SelectorEventLoop(Sel())
    try:
        st, during, after = loop.run_until_complete(go())
    finally:
        loop.close()
    assert st["tuning"]["busy_poll"] is True
    assert len(during) > 50 and all(t == 0 for t in during), during[:5]
    assert any(t is not None and t > 0.01 for t in after), after
