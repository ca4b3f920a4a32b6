"""``avmm paper``'s outputs beside the journal, against the emulator replaying 30 s of the USD-M
capture at --speed 20: ``--record`` (converts back to the quotes and trades served), ``--status-json``
lines, the Prometheus metrics (``--metrics-port``), the panel on a terminal; how a session ends
(SIGTERM, a second signal, a recording that cannot be written, a user's signal that raises)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.builders import assert_one_line_error
from tests.live.test_paper_emulator import _avmm, _env, capture

pytest.importorskip("picows")
pytest.importorskip("aiohttp")

pytestmark = pytest.mark.xdist_group("live")

NAME, VENUE = "usdm_btcusdt_20240808", "binance-um"
SPAN_S, SPEED = 30.0, 20.0  # 1.5 s of replay
STATUS_KEYS = {
    "healthy", "reason", "bid", "ask", "bid_qty", "ask_qty", "our_bids", "our_asks", "position", "pnl",
    "fees", "fills", "orders", "cancels", "markout_1s_bps", "markout_10s_bps", "feed_lag_ms", "frames",
    "reconnects", "gaps", "resyncs", "stale_periods", "halts", "latency_us", "journal_rows", "recorded_lines",
}  # fmt: skip


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("paper_outputs")


@pytest.fixture(scope="module")
def store(root: Path) -> Path:
    return capture(NAME, root, SPAN_S)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def paper_cmd(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "avmm", "paper", "--venue", VENUE, "--symbol", "BTCUSDT", "--url", url, *args]


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("avmm_paper_"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def status_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in text.splitlines() if x.strip()]


@pytest.fixture(scope="module")
def session(root: Path, store: Path) -> dict[str, Any]:
    """One session with every output: --record, --journal, --status-json, --metrics-port; the
    metrics scraped while it runs, between two status lines."""
    from avmm.emulator import EmulatorProcess

    rec, j, port = root / "rec", root / "rec.db", free_port()
    with EmulatorProcess([store, "--venue", VENUE, "--speed", str(SPEED)], env=_env()) as emu:
        args = ["--record", str(rec), "--journal", str(j), "--status-json", "--metrics-port", str(port)]
        # one connection for every stream: with USD-M's two (/public, /market) the replay starts at the
        # first subscription, and the other link, a few ms later, misses the first trades served
        args += ["--set", "venue.um_streams=combined"]
        p = subprocess.Popen(
            paper_cmd(emu.url, *args, "--duration", "5"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        assert p.stdout is not None
        before = metrics = after = None
        lines = []
        for line in p.stdout:  # the lines as they come, until the process closes stdout
            lines.append(line)
            st = json.loads(line)
            if before is None and st["healthy"] and st["fills"] > 0:
                before, metrics = st, scrape(port)
            elif before is not None and after is None:
                after = st
        out, err = p.communicate(timeout=120)
    return {"rc": p.returncode, "out": "".join(lines) + out, "err": err, "rec": rec, "journal": j,
            "before": before, "metrics": metrics, "after": after}  # fmt: skip


def test_the_recording_converts_to_the_quotes_and_trades_served(session, store, root):
    """``avmm data convert DIR/*.gz`` of what the session recorded gives the store's quotes and
    trades, every one in order (the emulator serves each row of the store once); the session's
    fills are there."""
    from avmm.data.store import read_events
    from avmm.events import QUOTE, TRADE

    assert session["rc"] == 0, session["err"]
    files = sorted(session["rec"].glob("BTCUSDT-binance-um-*.gz"))
    assert len(files) == 1
    assert f"avmm paper: recorded 1 file(s) in {session['rec']}" in session["err"]  # (stdout: the JSON)
    assert str(files[0]) in session["err"]
    out = root / "rec.parquet"
    c = _avmm("data", "convert", *map(str, files), "-o", str(out))
    assert c.returncode == 0, c.stderr
    got, want = read_events(out), read_events(store)
    for kind, cols in ((QUOTE, ("px", "qty", "px2", "qty2")), (TRADE, ("px", "qty", "side"))):
        g, w = got[got["kind"] == kind], want[want["kind"] == kind]
        assert len(g) == len(w) > 0, kind
        for c_ in cols:
            assert (g[c_] == w[c_]).all(), (kind, c_)
    r = _avmm("report", str(session["journal"]), "--json", str(root / "rec.json"))
    assert r.returncode == 0, r.stderr
    assert json.loads((root / "rec.json").read_text())["fills"] > 0


def test_status_json_lines(session):
    """Each stdout line is one JSON object with the documented keys, every second, the last one
    after the stop (nothing left working, not quoting: "stopping")."""
    lines = status_lines(session["out"])
    assert len(lines) >= 3
    for st in lines:
        assert st.keys() >= STATUS_KEYS, STATUS_KEYS - st.keys()
        assert set(st["latency_us"]) == {"feed", "venue", "core"}
    fills = [st["fills"] for st in lines]
    assert fills == sorted(fills) and fills[-1] > 0
    assert max(st["frames"] for st in lines) > 1000 and lines[-1]["recorded_lines"] > 1000
    for v in lines[-1]["latency_us"].values():  # p50 <= p99, in µs
        assert v is not None and 0 < v[0] <= v[1]
    last = lines[-1]
    assert not last["healthy"] and last["reason"] == "stopping"
    assert last["our_bids"] == [] and last["our_asks"] == []
    assert last["journal_rows"] > 0


def test_metrics_agree_with_the_status_lines(session):
    """Scraped between two status lines, each gauge lies between their values."""
    m, a, b = session["metrics"], session["before"], session["after"]
    assert m is not None and b is not None, session["out"]
    for k in ("fills", "orders", "cancels", "frames", "halts", "gaps", "reconnects"):
        assert a[k] <= m[f"avmm_paper_{k}"] <= b[k], k
    assert m["avmm_paper_healthy"] == 1.0
    assert a["recorded_lines"] <= m["avmm_paper_recorded_lines"] <= b["recorded_lines"]
    assert a["position"] == m["avmm_paper_position"] or b["position"] == m["avmm_paper_position"]
    assert (
        m['avmm_paper_latency_us{quantile="0.99",stage="core"}']
        >= m['avmm_paper_latency_us{quantile="0.5",stage="core"}']
    )


def test_the_panel_of_the_sessions_status_on_a_terminal(session):
    """The terminal's path (rich Live on a console that is a terminal) with the session's own
    status lines: the rows the issue lists, and the reason it stopped quoting."""
    import io

    from rich.console import Console

    from avmm.cli.paper import _Status

    lines = status_lines(session["out"])
    con = Console(file=io.StringIO(), force_terminal=True, width=120, record=True)
    st = _Status(False, None, console=con)
    st.start()
    assert st.live is not None
    for line in lines:
        st(line)
        st.live.refresh()
    st.stop()
    text = con.export_text()
    for row in ("book", "our bids", "position", "PnL", "fills", "markout", "feed lag", "reconnects", "latency"):
        assert row in text, row
    assert "NOT QUOTING: stopping" in text and re.search(r"feed\s+│\s+ok\s", text), text


def test_sigterm_ends_a_session_without_recording_with_fills(root, store, session):
    """No --duration: SIGTERM is the end (exit 0, orders cancelled, journal flushed); without
    --record the session fills as the recorded one does (timing makes the counts differ run to run:
    both > 0)."""
    from avmm.emulator import EmulatorProcess

    j = root / "term.db"
    with EmulatorProcess([store, "--venue", VENUE, "--speed", str(SPEED)], env=_env()) as emu:
        p = subprocess.Popen(
            paper_cmd(emu.url, "--journal", str(j), "--status-json"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
        )  # fmt: skip
        assert p.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and json.loads(p.stdout.readline())["fills"] == 0:
            pass
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "avmm paper: stopped by SIGTERM; orders cancelled" in err
    last = status_lines(out)[-1]
    assert last["our_bids"] == [] and last["our_asks"] == [] and last["fills"] > 0
    r = _avmm("report", str(j), "--json", str(root / "term.json"))
    assert r.returncode == 0, r.stderr
    recorded = status_lines(session["out"])[-1]["fills"]
    print(f"fills: {json.loads((root / 'term.json').read_text())['fills']} without --record, {recorded} with")
    assert json.loads((root / "term.json").read_text())["fills"] > 0 and recorded > 0


def test_a_second_signal_exits_at_once(root, store):
    """SIGINT starts the clean stop; SIGTERM right behind it exits at once with 143 and one line."""
    from avmm.emulator import EmulatorProcess

    with EmulatorProcess([store, "--venue", VENUE, "--speed", str(SPEED)], env=_env()) as emu:
        p = subprocess.Popen(
            paper_cmd(emu.url, "--status-json"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
        )
        assert p.stdout is not None
        p.stdout.readline()  # a status line: the session runs
        p.send_signal(signal.SIGINT)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    assert p.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith("avmm: interrupted again by SIGTERM; exiting now"), err


RAISES = """
from numba import njit

@njit
def signal(ts_ns, v, params, st):
    st[0] += 1.0
    if st[0] > 2000.0:
        raise ValueError("too many events")
    return 0.0, 1.0, 1.0
"""


def test_a_signal_that_raises_stops_the_session_with_the_backtests_line(root, store):
    """The user's signal raises inside the core, mid-session: every order cancelled, the journal
    flushed (``avmm report`` reads it), exit 2 with the line the backtest gives."""
    from avmm.emulator import EmulatorProcess

    sig = root / "raising.py"
    sig.write_text(RAISES)
    cfg = root / "raising.toml"
    cfg.write_text(f'[signals]\nfile = "{sig}"\n')
    j = root / "raising.db"
    with EmulatorProcess([store, "--venue", VENUE, "--speed", str(SPEED)], env=_env()) as emu:
        cmd = paper_cmd(emu.url, "--config", str(cfg), "--journal", str(j), "--status-json", "--duration", "30")
        p = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)
    assert_one_line_error(p, f"{sig}: signal raised ValueError: too many events (at run time)")
    last = status_lines(p.stdout)[-1]
    assert last["reason"] == "stopping" and last["our_bids"] == [] and last["our_asks"] == []
    assert last["orders"] > 0 and last["uptime_s"] < 20  # it traded, then stopped long before --duration
    r = _avmm("report", str(j), "--json", str(root / "raising.json"))
    assert r.returncode == 0, r.stderr
    assert json.loads((root / "raising.json").read_text())["orders"] == last["orders"]


FULL_DISK = """
import errno, sys
from avmm.live import record
def write(self, data):
    raise OSError(errno.ENOSPC, "No space left on device", str(self._path))
record.Recorder._write = write
from avmm.cli import main
sys.argv = ["avmm", *sys.argv[1:]]
main()
"""


def test_a_recording_that_cannot_be_written_stops_the_session_cleanly(root, store):
    """The disk is full (every write fails): one line naming the file, exit 2; the orders
    cancelled and the journal flushed as at a normal end."""
    from avmm.emulator import EmulatorProcess

    rec, j = root / "full", root / "full.db"
    with EmulatorProcess([store, "--venue", VENUE, "--speed", str(SPEED)], env=_env()) as emu:
        args = paper_cmd(emu.url, "--record", str(rec), "--journal", str(j), "--status-json", "--duration", "30")[3:]
        p = subprocess.run(
            [sys.executable, "-c", FULL_DISK, *args], capture_output=True, text=True, env=_env(), timeout=600
        )
    assert_one_line_error(p, f"recording to {rec}", "No space left on device", "BTCUSDT-binance-um-")
    last = status_lines(p.stdout)[-1]
    assert last["reason"] == "stopping" and last["our_bids"] == [] and last["our_asks"] == []
    assert last["uptime_s"] < 20
    r = _avmm("report", str(j), "--json", str(root / "full.json"))
    assert r.returncode == 0, r.stderr


def test_a_recording_folder_removed_stops_the_session_cleanly(root, store):
    """The recording's folder deleted mid-session (the lines would go to an unlinked file): one
    line naming the file, exit 2; orders cancelled, the journal flushed."""
    import shutil

    from avmm.emulator import EmulatorProcess

    rec, j = root / "gone", root / "gone.db"
    with EmulatorProcess([store, "--venue", VENUE, "--speed", "10"], env=_env()) as emu:
        args = ["--record", str(rec), "--journal", str(j), "--status-json", "--duration", "30"]
        p = subprocess.Popen(
            paper_cmd(emu.url, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
        )
        assert p.stdout is not None
        first = p.stdout.readline()
        assert json.loads(first)["recorded_lines"] > 0
        shutil.rmtree(rec)
        out, err = p.communicate(timeout=60)
    r = subprocess.CompletedProcess(p.args, p.returncode, first + out, err)
    assert_one_line_error(r, f"recording to {rec}", "removed while recording", "BTCUSDT-binance-um-")
    last = status_lines(out)[-1]
    assert last["reason"] == "stopping" and last["our_bids"] == [] and last["our_asks"] == []
    assert last["uptime_s"] < 20
    r = _avmm("report", str(j), "--json", str(root / "gone.json"))
    assert r.returncode == 0, r.stderr


def test_a_metrics_port_in_use_is_one_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = _avmm(
            "paper", "--venue", VENUE, "--symbol", "BTCUSDT", "--url", "http://127.0.0.1:9", "--metrics-port", str(port)
        )
    assert_one_line_error(p, f"--metrics-port {port}: cannot listen")


def test_record_folder_errors_are_avmm_records(tmp_path):
    (tmp_path / "file").write_text("x")
    p = _avmm("paper", "--venue", VENUE, "--symbol", "BTCUSDT", "--record", str(tmp_path / "file"))
    assert_one_line_error(p, f"{tmp_path / 'file'}: not a folder")
    p = _avmm("paper", "--venue", VENUE, "--symbol", "BTCUSDT", "--record", str(tmp_path / "no" / "such"))
    assert_one_line_error(p, "does not exist")
    assert os.listdir(tmp_path) == ["file"]
