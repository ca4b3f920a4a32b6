"""``avmm emulate``: bad arguments are one line (exit 2); a server in a subprocess serves REST,
streams and the control endpoint, says when the replay ends, and stops on SIGTERM (143)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest

from tests.builders import assert_one_line_error

pytest.importorskip("aiohttp")


@pytest.fixture
def l1_store(tmp_path):
    from avmm.data.synth import write_synth

    p = tmp_path / "l1.parquet"
    write_synth(p, 300, 5, quote_rate=200.0, trade_rate=40.0)
    return p


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--fault", "explode"], ["--fault explode", "unknown fault"]),
        (["--fault", "drop:x"], ["--fault drop:x", "not a number"]),
        (["--speed", "2", "--max"], ["--speed and --max"]),
        (["--speed", "0"], ["--speed 0"]),
        (["--venue", "binance-coin"], ["--venue binance-coin"]),
        (["--port", "70000"], ["--port 70000"]),
        (["--fault", "ackdelay:5"], ["--fault ackdelay:5", "--keys"]),
        (["--set", "backtest.maker_fee=0.001"], ["--config / --set", "--keys"]),
        (["--keys", "nope.toml"], ["--keys nope.toml", "file not found"]),
    ],
)
def test_bad_arguments_are_one_line(run_cli, l1_store, args, needles):
    assert_one_line_error(run_cli("emulate", l1_store, *args), *needles)


def test_missing_store_is_one_line(run_cli, tmp_path):
    assert_one_line_error(run_cli("emulate", tmp_path / "nope.parquet"), "nope.parquet")


@pytest.mark.xdist_group("live")
def test_serves_then_stops_on_sigterm(l1_store):
    from websockets.sync.client import connect

    from avmm.emulator import EmulatorProcess

    with EmulatorProcess([str(l1_store), "--venue", "binance-um", "--max", "--symbol", "ETHUSDT"]) as p:
        with urllib.request.urlopen(p.url + "/fapi/v1/exchangeInfo", timeout=10) as r:
            assert json.loads(r.read())["symbols"][0]["symbol"] == "ETHUSDT"
        with connect(p.ws_url + "/stream?streams=ethusdt@bookTicker") as ws:
            first = json.loads(ws.recv(timeout=10))
            assert first["stream"] == "ethusdt@bookTicker" and first["data"]["u"] > 0
            assert p.fault("skew:100") == {"ok": True, "fault": "skew:100"}
            n = 1
            while not p.status()["done"]:
                ws.recv(timeout=10)
                n += 1
            while True:  # what is still in flight (a client that stops reading delays its own close)
                try:
                    ws.recv(timeout=0.3)
                except TimeoutError:
                    break
            done_line = p.proc.stdout.readline()
            assert "replay done" in done_line and "sockets stay open" in done_line
        p.proc.send_signal(signal.SIGTERM)
        assert p.proc.wait(20) == 143
        err = p.proc.stderr.read().strip().splitlines()
        assert err == ["avmm: interrupted by SIGTERM; no output was written (outputs in progress were removed)"]


@pytest.mark.xdist_group("live")
def test_port_in_use_is_one_line(run_cli, l1_store):
    from avmm.emulator import EmulatorProcess

    with EmulatorProcess([str(l1_store)]) as p:
        port = p.url.rsplit(":", 1)[1]
        assert_one_line_error(run_cli("emulate", l1_store, "--port", port, timeout=60), f"--port {port}")


def test_without_the_live_extra_is_one_line(run_cli, l1_store, tmp_path):
    """aiohttp missing: one line naming the extra (the rest of avmm does not need it)."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "aiohttp.py").write_text("raise ImportError('blocked for the test')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run(
        [sys.executable, "-m", "avmm", "emulate", str(l1_store)], capture_output=True, text=True, env=env, timeout=120
    )
    assert_one_line_error(r, "aiohttp", "pip install 'avmm[live]'")


def test_a_bad_keys_file_is_one_line(run_cli, l1_store, tmp_path):
    k = tmp_path / "keys.toml"
    k.write_text('[[keys]]\napi_key = "a"\ntype = "hmac"\n')
    assert_one_line_error(run_cli("emulate", l1_store, "--keys", k), str(k), "needs its secret")


@pytest.mark.xdist_group("live")
def test_keys_and_the_configs_fees(l1_store, tmp_path):
    """``avmm emulate --keys FILE --set backtest.maker_fee=...``: the accounts trade on the config's
    fees; the accounts endpoint shows the account, never its secret."""
    import hashlib
    import hmac
    import time
    import urllib.parse

    from avmm.emulator import EmulatorProcess

    k = tmp_path / "keys.toml"
    k.write_text('[[keys]]\napi_key = "cli"\ntype = "hmac"\nsecret = "cli-secret"\n')
    with EmulatorProcess([str(l1_store), "--keys", str(k), "--set", "backtest.maker_fee=0.001"]) as p:
        q = urllib.parse.urlencode({"timestamp": time.time_ns() // 1_000_000})
        sig = hmac.new(b"cli-secret", q.encode(), hashlib.sha256).hexdigest()
        req = urllib.request.Request(p.url + f"/api/v3/account?{q}&signature={sig}", headers={"X-MBX-APIKEY": "cli"})
        with urllib.request.urlopen(req, timeout=10) as r:
            acct = json.loads(r.read())
        accounts = p.accounts()
    assert acct["makerCommission"] == 10 and acct["commissionRates"]["maker"] == "0.00100000"
    assert [a["api_key"] for a in accounts["accounts"]] == ["cli"]
    assert "cli-secret" not in json.dumps(accounts)
