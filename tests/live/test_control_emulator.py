"""Running unattended, end to end: ``avmm paper`` against the emulator replaying the real USD-M
capture, controlled by ``avmm ctl`` (status, set, pause, resume, kill), killed by SIGUSR1 and by a
kill file; the alert hook (a command and a webhook on 127.0.0.1) on a halt (the emulator's ``stall``)
and on the kill switch; the log file rotated and free of the API key in the environment; ``--cpu``
and ``--rt-priority`` (not permitted: one warning line)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.builders import assert_one_line_error
from tests.live.test_paper_emulator import _avmm, _env, capture

pytest.importorskip("picows")
aiohttp = pytest.importorskip("aiohttp")

pytestmark = pytest.mark.xdist_group("live")

NAME, VENUE, SPAN_S = "usdm_btcusdt_20240808", "binance-um", 120.0
KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"  # a fake API key


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ctl")


@pytest.fixture(scope="module")
def store(root: Path) -> Path:
    return capture(NAME, root, SPAN_S)


@contextmanager
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook on 127.0.0.1 (a thread's event loop) keeping what is POSTed to it."""
    from aiohttp import web

    got: list[dict[str, Any]] = []
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box: dict[str, Any] = {}

    async def hook(req: web.Request) -> web.Response:
        got.append(await req.json())
        return web.Response(text="ok")

    async def start() -> None:
        app = web.Application()
        app.router.add_post("/alert", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        box["runner"], box["port"] = runner, runner.addresses[0][1]

    def run() -> None:
        loop.run_until_complete(start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(box["runner"].cleanup())
        loop.close()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    started.wait(10)
    try:
        yield f"http://127.0.0.1:{box['port']}/alert", got
    finally:
        loop.call_soon_threadsafe(loop.stop)
        th.join(10)


class Paper:
    """``avmm paper`` in the background, its status lines read as they come."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[dict[str, Any]] = []
        self.err: list[str] = []
        self.th = [threading.Thread(target=self._read, daemon=True), threading.Thread(target=self._errs, daemon=True)]
        for th in self.th:
            th.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            if line.startswith("{"):
                self.lines.append(json.loads(line))

    def _errs(self) -> None:
        assert self.p.stderr is not None
        for line in self.p.stderr:
            self.err.append(line)

    def wait_for(self, what: Callable[[dict[str, Any]], bool], timeout: float = 120.0) -> dict[str, Any]:
        end = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < end:
            for st in self.lines[seen:]:
                if what(st):
                    return st
            seen = len(self.lines)
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        self.p.kill()
        rc, err = self.end()
        raise AssertionError(f"not seen; exit {rc}; last status {self.lines[-1:]}; stderr {err[-2000:]}")

    def end(self, timeout: float = 60.0) -> tuple[int, str]:
        rc = self.p.wait(timeout)
        for th in self.th:
            th.join(10)
        return rc, "".join(self.err)


def _cmd(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "avmm", "paper", "--venue", VENUE, "--symbol", "BTCUSDT", "--url", url,
            "--status-json", *args]  # fmt: skip


def _until(fn: Callable[[], Any], timeout: float = 20.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("not reached")


def _quoting(st: dict[str, Any]) -> bool:
    return bool(st["quoting"] and st["our_bids"] and st["our_asks"])


def _alert_command(out: Path, fail: bool = False) -> str:
    """A command that appends the alert (stdin) as one line to ``out``; ``fail``: then prints the API
    key of its environment on stderr and exits 3 (the log must not show the key)."""
    code = "import os, sys; open(sys.argv[1], 'a').write(sys.stdin.read() + chr(10))"  # one write: atomic
    if fail:
        code += "; print(os.environ['AVMM_API_KEY'], file=sys.stderr); sys.exit(3)"
    return f'{sys.executable} -c "{code}" {out}'


def _config(path: Path, command: str, url: str, *extra: str) -> Path:
    path.write_text(
        "[alerts]\n"
        f"command = {json.dumps(command)}\n"
        f"webhook_url = {json.dumps(url)}\n"
        "min_interval_s = 0\n" + "".join(f"{x}\n" for x in extra)
    )
    return path


def _kinds(path: Path) -> list[str]:
    return [json.loads(x)["kind"] for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def test_ctl_status_set_pause_resume_kill(root, store):
    """The session quotes; ``set quoting.size`` changes the orders that follow it (journaled); bad
    values and keys fixed at start are one line, exit 2; ``pause`` leaves no working order and none
    is placed until ``resume``; ``kill`` ends the session: exit 0, the summary, the socket gone, the
    kill alert delivered to the command and the webhook."""
    from avmm.emulator import EmulatorProcess
    from avmm.live.control import request

    sock, j, log, alerts = root / "a.sock", root / "a.db", root / "a.log", root / "a.alerts"
    with webhook() as (url, posted), EmulatorProcess([store, "--venue", VENUE, "--speed", "1.5"], env=_env()) as emu:
        cfg = _config(root / "a.toml", _alert_command(alerts), url)
        paper = Paper(_cmd(emu.url, "--ctl", str(sock), "--journal", str(j), "--log", str(log), "-c", str(cfg)), _env())
        paper.wait_for(_quoting)
        r = _avmm("ctl", str(sock), "status")
        assert r.returncode == 0, r.stderr
        st = json.loads(r.stdout)
        assert st["quoting"] and not st["paused"] and st["ctl"] == str(sock) and st["killed"] is None
        assert {q for _, q in st["our_bids"] + st["our_asks"]} == {0.001}
        r = _avmm("ctl", str(sock), "set", "quoting.size=0.005")
        assert (r.returncode, r.stdout) == (0, 'quoting.size: "auto" -> 0.005\n'), r.stderr
        assert_one_line_error(_avmm("ctl", str(sock), "set", "model.gamma=-1"), "model.gamma = -1")
        assert_one_line_error(_avmm("ctl", str(sock), "set", "quoting.tick=1"), "cannot change while running")

        def status() -> dict[str, Any]:
            return request(sock, {"cmd": "status"})["status"]

        _until(lambda: {q for _, q in status()["our_bids"] + status()["our_asks"]} == {0.005})
        assert request(sock, {"cmd": "pause"})["paused"] is True
        _until(lambda: (lambda s: s["paused"] and not s["quoting"] and s["our_bids"] == s["our_asks"] == [])(status()))
        time.sleep(1.5)  # the market moves on: still nothing
        st = status()
        assert st["our_bids"] == st["our_asks"] == [] and st["paused"] and st["reason"].startswith("paused")
        assert request(sock, {"cmd": "resume"})["paused"] is False
        _until(lambda: _quoting(status()))
        r = _avmm("ctl", str(sock), "kill")
        assert r.returncode == 0 and r.stdout.startswith("killed: "), r.stderr
        rc, err = paper.end()
    assert rc == 0, err
    assert "avmm paper: killed by ctl; orders cancelled" in err and "fills" in err
    assert not sock.exists()
    last = paper.lines[-1]
    assert last["our_bids"] == last["our_asks"] == [] and last["killed"] == "ctl" and last["param_changes"] == 1
    assert _kinds(alerts) == ["kill"] and [a["kind"] for a in posted] == ["kill"]
    assert posted[0]["text"].startswith("kill switch (ctl): ")
    con = sqlite3.connect(j)
    ev = con.execute("SELECT text, seq FROM events WHERE kind IN ('set', 'control', 'kill') ORDER BY seq").fetchall()
    assert [t for t, _ in ev] == ['quoting.size: "auto" -> 0.005', "paused", "resumed", "ctl", "paused"]
    s_set, s_pause, s_resume = (s for _, s in ev[:3])
    places = con.execute("SELECT seq, qty FROM actions WHERE kind = 'place' ORDER BY seq").fetchall()
    con.close()
    assert {q for s, q in places if s < s_set} == {0.001}
    after = [q for s, q in places if s > s_set]  # the new size (what is left of it after a partial fill)
    assert max(after) == 0.005 and min(after) > 0.001 and after.count(0.005) > len(after) / 2
    assert not [s for s, _ in places if s_pause < s < s_resume]  # none placed while paused
    text = log.read_text()
    ran = f"alert kill: command {Path(sys.executable).name} ran"
    for line in ('ctl: set quoting.size: "auto" -> 0.005', "ctl: paused", "ctl: resumed", "kill switch (ctl)", ran,
                 "alert kill: webhook http://127.0.0.1:"):  # fmt: skip
        assert line in text, line


@pytest.mark.slow  # paper's flatten is tested in-process (test_control.py), live's on USD-M (test_live_control.py)
def test_kill_with_flatten_ends_flat(root, store):
    """``avmm ctl kill --flatten`` once the session holds a position: the core's taker orders close it
    at the paper venue, then the session stops; the summary's position is 0."""
    from avmm.emulator import EmulatorProcess

    sock = root / "f.sock"
    with EmulatorProcess([store, "--venue", VENUE, "--speed", "2"], env=_env()) as emu:
        paper = Paper(_cmd(emu.url, "--ctl", str(sock)), _env())
        paper.wait_for(lambda st: st["position"] != 0)
        r = _avmm("ctl", str(sock), "kill", "--flatten")
        assert (r.returncode, r.stdout) == (
            0,
            r.stdout.split(" orders cancelled")[0]
            + " orders cancelled; flattening (stops once flat); the session is stopping\n",
        ), r.stderr
        rc, err = paper.end()
    assert rc == 0, err
    assert "avmm paper: killed by ctl; orders cancelled; flattened to position 0\n" in err
    last = paper.lines[-1]
    assert last["position"] == 0 and last["our_bids"] == last["our_asks"] == []


def test_a_halt_and_sigusr1_alert_and_the_log_rotates_without_the_key(root, store):
    """The emulator stalls 1.5 s: the feed turns stale, quoting halts and the hook runs (the command
    fails after writing: counted, its stderr -- the API key -- logged masked); quoting resumes; SIGUSR1
    is the kill switch (exit 0, a second alert). The 1 KB log rotates, no file holds the key.
    ``--cpu`` pins; ``--rt-priority`` under a bounding set without CAP_SYS_NICE: one warning line."""
    from avmm.emulator import EmulatorProcess

    j, log, alerts = root / "b.db", root / "b.log", root / "b.alerts"
    cpu = str(min(os.sched_getaffinity(0)))
    env = {**_env(), "AVMM_API_KEY": KEY}
    setpriv = shutil.which("setpriv") if os.geteuid() == 0 else None
    rt = ["--rt-priority", "1"] if setpriv or os.geteuid() != 0 else []
    emu_args = [store, "--venue", VENUE, "--speed", "5", "--fault", "stall:1.5@25"]
    with webhook() as (url, posted), EmulatorProcess(emu_args, env=_env()) as emu:
        cfg = _config(root / "b.toml", _alert_command(alerts, fail=True), url, "[venue]", "stale_s = 0.2")
        args = ["--journal", str(j), "--log", str(log), "--log-max-mb", "0.001", "--log-backups", "20", "-c", str(cfg)]
        cmd = _cmd(emu.url, *args, "--cpu", cpu, *rt)
        paper = Paper([setpriv, "--bounding-set=-sys_nice", *cmd] if setpriv else cmd, env)
        paper.wait_for(_quoting)
        paper.wait_for(lambda st: st["halts"] >= 1 and not st["quoting"])
        paper.wait_for(lambda st: _quoting(st) and st["halts"] >= 1)
        _until(lambda: "halt" in _kinds(alerts))
        paper.p.send_signal(signal.SIGUSR1)
        rc, err = paper.end()
    assert rc == 0, err
    assert "avmm paper: killed by SIGUSR1; orders cancelled" in err
    kinds = _kinds(alerts)  # a halt when the feed turns stale, another at the resync (diffs lost in the stall)
    assert kinds[-1] == "kill" and len(kinds) >= 2 and set(kinds[:-1]) == {"halt"}
    assert [a["kind"] for a in posted] == kinds
    assert posted[0]["text"].startswith("quoting halted: stale: ") and posted[0]["text"].endswith("orders cancelled")
    last = paper.lines[-1]
    assert last["killed"] == "SIGUSR1" and last["our_bids"] == last["our_asks"] == []
    assert last["alerts"]["alerts"] == len(kinds)  # (the kill's delivery ends after this line: the log's end line)
    assert last["tuning"]["gc"] == "auto" and last["gc"]["mode"] == "auto"
    assert last["tuning"]["cpus"] == [int(cpu)]
    if rt:
        assert last["tuning"]["rt_priority"].startswith("not permitted: ")
        assert "avmm paper: warning: --rt-priority 1: SCHED_FIFO not permitted (" in err
    files = sorted(root.glob("b.log*"))
    assert len(files) >= 3  # rotated
    texts = [f.read_text() for f in files]
    assert not any(KEY in t for t in texts)
    assert any(f"alert halt: command failed: {Path(sys.executable).name}: exit 3: ***" in t for t in texts)
    assert any("halt: stale" in t for t in texts) and any("kill switch (SIGUSR1)" in t for t in texts)
    end = [x for t in texts for x in t.splitlines() if " INFO end: killed by SIGUSR1; gc " in x]
    assert len(end) == 1 and f'"command_failed": {len(kinds)}, "webhook_ok": {len(kinds)}' in end[0], end
    assert KEY not in err and not any(KEY in json.dumps(x) for x in paper.lines)
    con = sqlite3.connect(j)
    assert con.execute("SELECT text FROM events WHERE kind = 'kill'").fetchall() == [("SIGUSR1",)]
    con.close()


def test_the_kill_file(root, store):
    """The kill file appears: cancel all, stop, exit 0 with the summary; journaled."""
    from avmm.emulator import EmulatorProcess

    j, kf = root / "c.db", root / "c.kill"
    with EmulatorProcess([store, "--venue", VENUE, "--speed", "5"], env=_env()) as emu:
        paper = Paper(_cmd(emu.url, "--journal", str(j), "--kill-file", str(kf)), _env())
        paper.wait_for(_quoting)
        kf.write_text("")
        t = time.monotonic()
        rc, err = paper.end()
        dt = time.monotonic() - t
    assert rc == 0, err
    assert f"avmm paper: killed by kill file {kf}; orders cancelled" in err and "fills" in err
    assert dt < 30
    last = paper.lines[-1]
    assert last["our_bids"] == last["our_asks"] == [] and last["killed"] == f"kill file {kf}"
    con = sqlite3.connect(j)
    assert con.execute("SELECT text FROM events WHERE kind = 'kill'").fetchall() == [(f"kill file {kf}",)]
    con.close()
    assert_one_line_error(_avmm(*_cmd(emu.url, "--kill-file", str(kf))[3:]), "exists already")
