"""``avmm live`` running unattended against the emulator's private side, as ``avmm paper`` does
(``live/control.py``): ``avmm ctl`` status / set / pause / resume / kill on a live session, the
kill switch with ``--flatten`` (the core's taker orders until the venue's position is 0), SIGUSR1,
the log file without the keys; after each, no order of ours open at the venue and every fill
journaled once (127.0.0.1 only)."""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.live.test_control_emulator import Paper, _alert_command, _kinds, _until
from tests.live.test_live_emulator import API_KEY, check_reconciled, emulator, journal_fills, keys, venue_state
from tests.live.test_paper_emulator import _avmm, _env

pytest.importorskip("picows")
pytest.importorskip("aiohttp")
pytest.importorskip("cryptography")

pytestmark = pytest.mark.xdist_group("live")
__all__ = ["keys"]  # the fixture, shared


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live_ctl")


def _live(url: str, venue: str, client: Path, *args: str) -> Paper:
    cmd = [sys.executable, "-m", "avmm", "live", "--venue", venue, "--symbol", "BTCUSDT", "--url", url,
           "--status-json", "--set", f"venue.keys_file={client}", *args]  # fmt: skip
    return Paper(cmd, _env())


def _quoting(st: dict[str, Any]) -> bool:
    return bool(st.get("quoting") and st.get("our_bids") and st.get("our_asks"))


def _events(j: Path, kinds: tuple[str, ...]) -> list[tuple[str, str]]:
    con = sqlite3.connect(f"file:{j}?mode=ro", uri=True)
    try:
        q = f"SELECT kind, text FROM events WHERE kind IN ({','.join('?' * len(kinds))}) ORDER BY seq"  # noqa: S608
        return [(str(k), str(t)) for k, t in con.execute(q, kinds).fetchall()]
    finally:
        con.close()


def _secrets(client: Path) -> list[str]:
    text = client.read_text()
    return [API_KEY, "".join(text.split('"""')[1].splitlines()[1:-1])]


def test_ctl_set_pause_resume_kill_on_a_live_spot_session(root, keys):
    """Spot, busy-polling (``--busy-poll``): ``set`` changes the running core (journaled); ``pause``
    leaves no order of ours at the venue until ``resume``; ``kill`` cancels everything at the venue
    and ends the session (exit 0, one line, the kill alert); the log file holds the ctl lines and
    neither key."""
    from avmm.live.control import request

    venue = "binance-spot"
    sock, j, log, alerts = root / "a.sock", root / "a.db", root / "a.log", root / "a.alerts"
    cfg = root / "a.toml"
    cfg.write_text(f"[alerts]\ncommand = {json.dumps(_alert_command(alerts))}\nmin_interval_s = 0\n")
    with emulator(root, venue, keys) as emu:
        p = _live(emu.url, venue, keys[1], "--journal", str(j), "--ctl", str(sock), "--log", str(log), "-c", str(cfg),
                  "--busy-poll")  # fmt: skip
        p.wait_for(_quoting)

        def status() -> dict[str, Any]:
            return request(sock, {"cmd": "status"})["status"]

        st = status()
        assert st["mode"] == "live" and st["ctl"] == str(sock) and st["killed"] is None and not st["paused"]
        assert st["tuning"]["busy_poll"] is True  # the whole session below on a loop that never sleeps
        r = _avmm("ctl", str(sock), "set", "risk.max_orders_per_10s=100")
        assert r.returncode == 0 and r.stdout.startswith("risk.max_orders_per_10s: "), r.stderr
        assert request(sock, {"cmd": "pause"})["paused"] is True
        _until(lambda: (lambda s: s["paused"] and s["our_bids"] == s["our_asks"] == [])(status()))
        mine = [o for o in venue_state(emu.url, venue, keys[1])["open"] if o["clientOrderId"].startswith("avmm-")]
        assert mine == []  # nothing of ours at the venue while paused
        assert request(sock, {"cmd": "resume"})["paused"] is False
        _until(lambda: _quoting(status()))
        r = _avmm("ctl", str(sock), "kill")
        assert r.returncode == 0 and r.stdout.startswith("killed: "), r.stderr
        rc, err = p.end()
        state = venue_state(emu.url, venue, keys[1])
    assert rc == 0, err[-3000:]
    assert "avmm live: killed by ctl; orders cancelled at the venue" in err and "Traceback" not in err
    assert not sock.exists()
    last = p.lines[-1]
    assert last["killed"] == "ctl" and last["param_changes"] == 1 and last["our_bids"] == last["our_asks"] == []
    check_reconciled(state, journal_fills(j), float(last["position_core"]), 1e-5)
    ev = _events(j, ("set", "control", "kill"))
    texts = [t for _, t in ev]
    assert texts[0].startswith("risk.max_orders_per_10s: ") and texts[0].endswith(" -> 100"), ev
    assert texts[1:4] == ["paused", "resumed", "ctl"], ev
    assert _kinds(alerts) == ["kill"]
    text = log.read_text()
    for line in ("ctl: set risk.max_orders_per_10s: ", "ctl: paused", "ctl: resumed", "kill switch (ctl)"):
        assert line in text, line
    blob = text + err + "".join(json.dumps(x) for x in p.lines)
    blob += "".join(Path(str(j) + s).read_bytes().decode("latin-1") for s in ("", "-wal") if Path(str(j) + s).exists())
    for secret in _secrets(keys[1]):
        assert secret not in blob


def test_kill_flatten_on_usdm_leaves_the_venue_flat(root, keys):
    """USD-M, a position open (held while paused): ``kill --flatten`` cancels our orders, the core's
    taker (IOC) orders close the position, then the session stops: the emulator's position is 0,
    every fill journaled once, the kill journaled."""
    from avmm.live.control import request

    venue = "binance-um"
    sock, j = root / "b.sock", root / "b.db"
    with emulator(root, venue, keys) as emu:
        p = _live(emu.url, venue, keys[1], "--journal", str(j), "--ctl", str(sock))

        def status() -> dict[str, Any]:
            return request(sock, {"cmd": "status"})["status"]

        p.wait_for(_quoting)
        end = time.monotonic() + 180.0
        while time.monotonic() < end:  # a position held still: paused (nothing working) with |position| >= a lot
            # the session's status now (the status lines on stdout are history: an old one may show a
            # position the session has since closed)
            if not (lambda s: _quoting(s) and abs(float(s["position_core"])) >= 0.001)(status()):
                time.sleep(0.05)
                continue
            request(sock, {"cmd": "pause"})
            _until(lambda: (lambda s: s["paused"] and s["our_bids"] == s["our_asks"] == [])(status()))
            time.sleep(0.3)
            if abs(float(status()["position_core"])) >= 0.001:
                break
            request(sock, {"cmd": "resume"})
        pos = float(status()["position_core"])
        assert abs(pos) >= 0.001
        r = _avmm("ctl", str(sock), "kill", "--flatten")  # paused: the kill resumes the market to the core
        assert r.returncode == 0 and "flattening" in r.stdout, (r.stdout, r.stderr)
        rc, err = p.end(timeout=90.0)
        state = venue_state(emu.url, venue, keys[1])
    assert rc == 0, err[-3000:]
    con = sqlite3.connect(f"file:{j}?mode=ro", uri=True)
    rej = con.execute("SELECT * FROM responses WHERE kind = 'reject' ORDER BY seq DESC LIMIT 5").fetchall()
    con.close()
    assert "avmm live: killed by ctl; orders cancelled at the venue; flattened" in err, (str(rej), err[:3000])
    assert abs(state["position"]) < 0.0005, state["position"]
    last = p.lines[-1]
    assert abs(float(last["position_core"])) < 0.0005 and last["risk_flatten_orders"] >= 1
    check_reconciled(state, journal_fills(j), float(last["position_core"]), 1e-3)
    assert ("kill", "ctl (flatten)") in _events(j, ("kill",))
    assert ("control", "resumed (to flatten)") in _events(j, ("control",))


def test_sigusr1_kills_a_live_session(root, keys):
    """SIGUSR1 is the kill switch: every order cancelled at the venue, exit 0, journaled."""
    venue = "binance-spot"
    j = root / "c.db"
    with emulator(root, venue, keys) as emu:
        p = _live(emu.url, venue, keys[1], "--journal", str(j))
        p.wait_for(_quoting)
        p.p.send_signal(signal.SIGUSR1)
        t0 = time.monotonic()
        rc, err = p.end()
        dt = time.monotonic() - t0
        state = venue_state(emu.url, venue, keys[1])
    assert rc == 0, err[-3000:]
    assert "avmm live: killed by SIGUSR1; orders cancelled at the venue" in err and dt < 30
    assert p.lines[-1]["killed"] == "SIGUSR1"
    check_reconciled(state, journal_fills(j), float(p.lines[-1]["position_core"]), 1e-5)
    assert _events(j, ("kill",)) == [("kill", "SIGUSR1")]


def test_a_loss_limit_halts_a_live_session_as_in_paper(root, keys):
    """Spot with a tight ``risk.max_loss`` (0.0005 USDT, ``on_limit = halt``): after the first losing fill the
    core halts -- every order of ours cancelled at the venue, none placed after -- journaled as a
    ``risk`` event at the core's time, shown in the status; the end is reconciled."""
    from avmm.live.control import request

    venue = "binance-spot"
    j, sock = root / "d.db", root / "d.sock"
    with emulator(root, venue, keys) as emu:
        p = _live(emu.url, venue, keys[1], "--journal", str(j), "--ctl", str(sock),
                  "--set", "risk.max_loss=0.0005", "--set", "risk.on_limit=halt")  # fmt: skip
        st = p.wait_for(lambda st: st.get("risk_halted") is True, timeout=60.0)
        assert st["risk_reason"] == "halted: max_loss" and st["risk_loss_breaches"] >= 1
        _until(lambda: (lambda s: s["our_bids"] == s["our_asks"] == [])(request(sock, {"cmd": "status"})["status"]))
        mine = [o for o in venue_state(emu.url, venue, keys[1])["open"] if o["clientOrderId"].startswith("avmm-")]
        assert mine == []
        time.sleep(1.0)  # the market goes on: the core stays halted
        st = request(sock, {"cmd": "status"})["status"]
        assert st["risk_halted"] and not st["quoting"] and st["our_bids"] == st["our_asks"] == []
        p.p.send_signal(signal.SIGINT)
        rc, err = p.end()
        state = venue_state(emu.url, venue, keys[1])
    assert rc == 0, err[-3000:]
    check_reconciled(state, journal_fills(j), float(p.lines[-1]["position_core"]), 1e-5)
    risk = _events(j, ("risk",))
    assert risk and risk[0][1].startswith("halted: max_loss (pnl -"), risk
    con = sqlite3.connect(f"file:{j}?mode=ro", uri=True)
    t_halt = con.execute("SELECT min(seq) FROM events WHERE kind = 'risk'").fetchone()[0]
    after = con.execute("SELECT count(*) FROM actions WHERE kind = 'place' AND seq > ?", (t_halt,)).fetchone()[0]
    con.close()
    assert after == 0  # nothing placed once halted
