"""``EmulatorThread``: an emulator for synchronous code (a sync websocket client, faults and status
from the caller's thread)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from avmm.emulator import EmulatorThread
from avmm.errors import UserError

pytest.importorskip("aiohttp")


def test_thread_serves_sync_clients_and_takes_faults(depth_store):
    from websockets.sync.client import connect

    with EmulatorThread(depth_store, venue="binance-um", max_speed=True) as emu:
        assert emu.url.startswith("http://127.0.0.1:") and not emu.url.endswith(":0")
        with urllib.request.urlopen(emu.url + "/fapi/v1/ping", timeout=10) as r:
            assert json.loads(r.read()) == {}
        assert emu.status()["started"] is False
        emu.fault("drop:3")
        with pytest.raises(UserError):
            emu.fault("explode")
        with connect(emu.ws_url + "/ws/btcusdt@depth", max_queue=None) as ws:
            emu.wait_done(30)
            frames = []
            while True:
                try:
                    frames.append(json.loads(ws.recv(timeout=0.3)))
                except TimeoutError:
                    break
        st = emu.status()
    assert st["done"] and st["dropped"] == 3
    assert frames[0]["pu"] > 1_000_000  # the first three diffs were not sent: the stream starts with a gap
    assert all(frames[i]["pu"] == frames[i - 1]["u"] for i in range(1, len(frames)))  # and none after


def test_bad_arguments_raise_user_errors(depth_store, tmp_path):
    with pytest.raises(UserError, match="--venue"):
        EmulatorThread(depth_store, venue="kraken")
    with pytest.raises(UserError, match="--speed"):
        EmulatorThread(depth_store, speed=-1)
    with pytest.raises(UserError):
        EmulatorThread(tmp_path / "missing.parquet")


def test_a_process_that_does_not_start_is_an_error_not_a_hang(depth_store, tmp_path):
    """``EmulatorProcess``: a bad store is the emulator's own line; no URL within ``timeout`` kills
    the subprocess and says so (it used to wait for its stderr to close: forever)."""
    import time

    from avmm.emulator import EmulatorProcess

    with pytest.raises(RuntimeError, match=r"avmm emulate did not start: .*no such file"):
        EmulatorProcess([tmp_path / "missing.parquet"]).start()
    t0 = time.monotonic()
    emu = EmulatorProcess([depth_store], timeout=0.01)
    with pytest.raises(RuntimeError, match="did not start: nothing within 0.01 s"):
        emu.start()
    assert time.monotonic() - t0 < 15 and emu.proc is None
