"""``avmm ctl``: what it prints for each answer, and one line (exit 2) for a refused command, no
session at the socket, or a bad argument; ``avmm paper``'s control and tuning options checked before
anything connects."""

from __future__ import annotations

import json
from typing import Any

from tests.builders import assert_one_line_error
from tests.live.test_control import serving


def _session(req: dict[str, Any]) -> dict[str, Any]:
    cmd = req.get("cmd")
    if cmd == "status":
        return {"ok": True, "status": {"healthy": True, "paused": False, "fills": 3}}
    if cmd == "pause":
        return {"ok": True, "paused": True, "cancels": 2}
    if cmd == "resume":
        return {"ok": True, "paused": False, "cancels": 0}
    if cmd == "set":
        if req["arg"] == "model.gamma=0.2":
            return {"ok": True, "key": "model.gamma", "old": "auto", "new": 0.2, "params": ["gamma"]}
        return {"ok": False, "error": f"set {req['arg']}: cannot change while running"}
    if cmd == "kill":
        return {"ok": True, "killed": "ctl", "cancels": 2, "flatten": True if req.get("flatten") else None}
    return {"ok": False, "error": "?"}


def test_each_command_prints_its_answer(run_cli, tmp_path):
    sock = tmp_path / "ctl.sock"
    with serving(sock, _session):
        r = run_cli("ctl", sock, "status")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"healthy": True, "paused": False, "fills": 3}
        assert run_cli("ctl", sock, "pause").stdout == "paused (2 orders cancelled)\n"
        assert run_cli("ctl", sock, "resume").stdout == "resumed\n"
        assert run_cli("ctl", sock, "set", "model.gamma=0.2").stdout == 'model.gamma: "auto" -> 0.2\n'
        assert_one_line_error(run_cli("ctl", sock, "set", "quoting.tick=1"), "set quoting.tick=1: cannot change")
        r = run_cli("ctl", sock, "kill", "--flatten")
        assert r.stdout == "killed: 2 orders cancelled; flattening (stops once flat); the session is stopping\n"
        assert run_cli("ctl", sock, "kill").stdout == "killed: 2 orders cancelled; the session is stopping\n"


def test_bad_arguments_and_no_session_are_one_line(run_cli, tmp_path):
    sock = tmp_path / "ctl.sock"
    assert_one_line_error(run_cli("ctl", sock, "status"), f"{sock}: no such socket")
    assert_one_line_error(run_cli("ctl", sock, "explode"), "ctl explode: unknown command")
    assert_one_line_error(run_cli("ctl", sock, "set"), "ctl set needs KEY=VALUE")
    assert_one_line_error(run_cli("ctl", sock, "pause", "x=1"), "ctl pause: takes no argument")
    assert_one_line_error(run_cli("ctl", sock, "status", "--flatten"), "--flatten goes with kill")
    (tmp_path / "file").write_text("")
    assert_one_line_error(run_cli("ctl", tmp_path / "file", "status"), "cannot connect")


def test_paper_checks_its_control_options_first(run_cli, tmp_path):
    base = ("paper", "--venue", "binance-um", "--symbol", "BTCUSDT", "--url", "http://127.0.0.1:9")
    (tmp_path / "kill").write_text("")
    assert_one_line_error(run_cli(*base, "--kill-file", tmp_path / "kill"), "exists already (a kill switch thrown)")
    assert_one_line_error(run_cli(*base, "--ctl", tmp_path / "kill"), "exists and is not a socket")
    assert_one_line_error(run_cli(*base, "--ctl", tmp_path / "no" / "s"), "folder", "does not exist")
    assert_one_line_error(run_cli(*base, "--cpu", "4096"), "--cpu 4096: CPU 4096 is not available")
    assert_one_line_error(run_cli(*base, "--rt-priority", "500"), "--rt-priority 500: SCHED_FIFO priorities are")
    assert_one_line_error(run_cli(*base, "--gc", "never"), "--gc never: use auto or manual")
    assert_one_line_error(run_cli(*base, "--log", tmp_path / "no" / "x.log"), "--log", "does not exist")
    assert_one_line_error(run_cli(*base, "--log-max-mb", "0"), "--log-max-mb 0")
    assert_one_line_error(run_cli(*base, "--busy-poll", "--rt-priority", "5"), "--busy-poll with --rt-priority 5")


def test_live_checks_its_control_options_first(run_cli, tmp_path):
    """``avmm live`` takes ``avmm paper``'s control options, checked before the keys or the venue."""
    base = ("live", "--venue", "binance-spot", "--symbol", "BTCUSDT", "--url", "http://127.0.0.1:9")
    (tmp_path / "kill").write_text("")
    assert_one_line_error(run_cli(*base, "--kill-file", tmp_path / "kill"), "exists already (a kill switch thrown)")
    assert_one_line_error(run_cli(*base, "--ctl", tmp_path / "kill"), "exists and is not a socket")
    assert_one_line_error(run_cli(*base, "--cpu", "4096"), "--cpu 4096: CPU 4096 is not available")
    assert_one_line_error(run_cli(*base, "--gc", "never"), "--gc never: use auto or manual")
    assert_one_line_error(run_cli(*base, "--log-backups", "0"), "--log-backups 0")
    assert_one_line_error(run_cli(*base, "--busy-poll", "--rt-priority", "5"), "--busy-poll with --rt-priority 5")


def test_the_status_views_kill_key():
    """On a terminal (a pty here): ``K`` arms, a second ``K`` within 2 s kills; the terminal's mode
    is restored at the end; a slow second ``K`` only arms again."""
    import asyncio
    import os
    import pty
    import termios

    from avmm.cli.paper import _Keys

    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    killed: list[str] = []
    now = [100.0]
    with os.fdopen(slave, "rb", buffering=0) as stream:
        keys = _Keys(stream, killed.append, clock=lambda: now[0])

        async def go() -> None:
            assert keys.start(asyncio.get_running_loop()) is keys
            assert not termios.tcgetattr(slave)[3] & termios.ICANON  # cbreak
            os.write(master, b"xK")
            await asyncio.sleep(0.2)
            assert killed == [] and keys.hint() == "K again to kill (cancel all, stop)"
            os.write(master, b"K")
            await asyncio.sleep(0.2)
            keys.stop()

        asyncio.run(go())
        assert killed == ["key K"]
        assert termios.tcgetattr(slave) == before
    os.close(master)
    slow = _Keys(None, killed.append, clock=lambda: now[0])
    slow.keys(b"K")
    now[0] += 3.0
    slow.keys(b"K")
    assert killed == ["key K"] and slow.hint() == "K again to kill (cancel all, stop)"
    loop = asyncio.new_event_loop()
    assert _Keys(None, killed.append).start(loop) is None  # no terminal: nothing
    loop.close()
