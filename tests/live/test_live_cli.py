"""``avmm live`` as a command: the emulator's market data, the scripted private side in a thread,
the process stopped by SIGINT (every order cancelled, exit 0), the API key in none of its outputs;
bad keys are one line (127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("picows")
pytest.importorskip("aiohttp")

from tests.builders import assert_one_line_error  # noqa: E402
from tests.live.fake_private import FakePrivate  # noqa: E402
from tests.live.test_paper_emulator import _env, capture  # noqa: E402

pytestmark = pytest.mark.xdist_group("live")
API_KEY = "AVMMTESTKEY0123456789abcdefSECRETISH"


class FakeThread:
    """``FakePrivate`` served from a thread of its own (the test is synchronous)."""

    def __init__(self, **kw: Any) -> None:
        self.kw = kw
        self.fake: FakePrivate | None = None
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.fake = FakePrivate(**self.kw)
        self.loop.run_until_complete(self.fake.start())
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self) -> FakePrivate:
        self.thread.start()
        self.ready.wait(30)
        assert self.fake is not None
        return self.fake

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def __exit__(self, *a: Any) -> None:
        assert self.fake is not None
        self.call(self.fake.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _keys(tmp: Path) -> tuple[Path, Any]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    k = Ed25519PrivateKey.generate()
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    f = tmp / "keys.toml"
    f.write_text(f'api_key = "{API_KEY}"\nprivate_key = """{pem.decode()}"""\n')
    f.chmod(0o600)
    return f, k.public_key()


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "avmm", "live", *args]


def test_keys_missing_or_readable_by_others_is_one_line(tmp_path):
    env = {k: v for k, v in _env().items() if not k.startswith("AVMM_API") and k != "AVMM_PRIVATE_KEY_FILE"}
    r = subprocess.run(_cmd("--venue", "binance-spot", "--symbol", "BTCUSDT"), capture_output=True, text=True, env=env)
    assert_one_line_error(r, "no API keys", "AVMM_API_KEY")
    f, _ = _keys(tmp_path)
    f.chmod(0o644)
    r = subprocess.run(
        _cmd("--venue", "binance-spot", "--symbol", "BTCUSDT", "--set", f"venue.keys_file={f}"),
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert_one_line_error(r, "readable by others", "chmod 600")
    assert API_KEY not in r.stderr


def test_sigint_cancels_everything_exit_0_and_the_key_is_nowhere(tmp_path):
    store = capture("spot_btcusdt_20240808", tmp_path, 60.0)
    f, pub = _keys(tmp_path)
    j = tmp_path / "live.db"
    from avmm.emulator import EmulatorProcess

    ft = FakeThread(public_key=pub, api_key=API_KEY)
    with ft as fake, EmulatorProcess([store, "--venue", "binance-spot", "--speed", "20"], env=_env()) as emu:
        ws = emu.url.replace("http", "ws")
        furl = fake.url.replace("http", "ws") + "/ws-api/v3"
        cmd = _cmd(
            "--venue", "binance-spot", "--symbol", "BTCUSDT", "--journal", str(j), "--status-json",
            "--set", f"venue.keys_file={f}", "--set", f"venue.rest_url={emu.url}", "--set", f"venue.stream_url={ws}",
            "--set", f"venue.ws_api_url={furl}",
        )  # fmt: skip
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        assert p.stdout is not None
        deadline = time.monotonic() + 240
        lines: list[str] = []
        filled = False
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            lines.append(line)
            if not line.startswith("{"):
                continue
            st = json.loads(line)
            if not filled and st["orders"] > 0:
                live = [c for c, o in fake.orders.items() if o["status"] == "NEW"]
                if live:
                    ft.call(fake.fill(live[0], 0.001))
                    filled = True
            elif filled and st["fills"] >= 1:
                break
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
        out = "".join(lines) + out
        open_left = [c for c, o in fake.orders.items() if o["status"] in ("NEW", "PARTIALLY_FILLED")]
    assert p.returncode == 0, err
    assert "stopped by SIGINT" in err and "live: binance-spot BTCUSDT" in err
    assert not open_left, open_left
    last = json.loads([x for x in out.splitlines() if x.startswith("{")][-1])
    assert last["mode"] == "live" and last["fills"] == 1 and last["open_orders"] == 0
    assert last["our_bids"] == [] and last["our_asks"] == []
    # the key: in no output, not in the journal
    assert API_KEY not in out and API_KEY not in err
    blob = b"".join(Path(str(j) + s).read_bytes() for s in ("", "-wal") if Path(str(j) + s).exists())
    assert API_KEY.encode() not in blob
    con = sqlite3.connect(j)
    kinds = dict(con.execute("SELECT kind, count(*) FROM responses GROUP BY kind").fetchall())
    con.close()
    assert kinds.get("fill") == 1 and kinds.get("ack", 0) >= 1 and kinds.get("canceled", 0) >= 1
    r = subprocess.run([sys.executable, "-m", "avmm", "report", str(j)], capture_output=True, text=True, env=_env())
    assert r.returncode == 0, r.stderr


def test_a_refused_key_halts_with_one_line(tmp_path):
    """The venue refuses the key (a bad signature): no retry loop, one line, exit 2."""
    store = capture("spot_btcusdt_20240808", tmp_path, 60.0)
    (tmp_path / "venue").mkdir()
    _, other = _keys(tmp_path / "venue")  # the venue knows this key pair's public key
    f2, _ = _keys(tmp_path)  # the client signs with another
    from avmm.emulator import EmulatorProcess

    with (
        FakeThread(public_key=other, api_key=API_KEY) as fake,
        EmulatorProcess([store, "--venue", "binance-spot", "--speed", "20"], env=_env()) as emu,
    ):
        ws = emu.url.replace("http", "ws")
        furl = fake.url.replace("http", "ws") + "/ws-api/v3"
        r = subprocess.run(
            _cmd(
                "--venue", "binance-spot", "--symbol", "BTCUSDT", "--duration", "60",
                "--set", f"venue.keys_file={f2}", "--set", f"venue.rest_url={emu.url}",
                "--set", f"venue.stream_url={ws}", "--set", f"venue.ws_api_url={furl}",
            ),
            capture_output=True, text=True, env=_env(), timeout=240,
        )  # fmt: skip
    assert r.returncode == 2, r.stderr
    err = [x for x in r.stderr.strip().splitlines() if x.startswith("avmm: error:")]
    assert len(err) == 1 and "refused the API key" in err[0] and "-1022" in err[0], r.stderr
    assert "Traceback" not in r.stderr and API_KEY not in r.stderr + r.stdout
