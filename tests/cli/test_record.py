"""``avmm record``: a recording from the emulator converts to the store's book; a signal stops it
cleanly; bad arguments are one line."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.builders import assert_one_line_error
from tests.conftest import avmm_cmd

pytest.importorskip("picows")
pytest.importorskip("aiohttp")

pytestmark = pytest.mark.xdist_group("live")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    from avmm.data.store import write_events
    from tests.emulator.conftest import depth_rows

    p = tmp_path / "depth.parquet"
    meta = {"symbol": "BTCUSDT", "source": "test", "tick_size": 0.01, "lot_size": 0.001}
    write_events(p, [depth_rows(seed=4, n_msgs=300)], meta)
    return p


def test_record_from_the_emulator_converts_to_the_stores_book(tmp_path, store, run_cli):
    from avmm.data.convert import convert
    from avmm.emulator import EmulatorThread
    from tests.emulator.conftest import store_book

    out = tmp_path / "rec"
    with EmulatorThread(store, venue="binance-um", speed=2.0, heartbeat=None) as emu:
        args = ["--venue", "binance-um", "--symbol", "btcusdt", "--url", emu.url, "--duration", "2.5"]
        r = run_cli("record", *args, out)
    assert r.returncode == 0, r.stderr
    assert "avmm record: binance-um BTCUSDT: 1 file(s)" in r.stdout and "snapshots" in r.stdout
    files = sorted(out.glob("BTCUSDT-binance-um-*.gz"))
    assert len(files) == 1
    s = convert(files, tmp_path / "rec.parquet")
    assert s.kinds["quote"] > 0 and s.kinds["trade"] > 0 and s.kinds["snapshot"] > 0
    from tests.emulator.conftest import store_book as book_of

    assert book_of(tmp_path / "rec.parquet") == store_book(store)


def test_sigint_stops_the_recording_and_keeps_the_files(tmp_path, store):
    from avmm.emulator import EmulatorThread

    out = tmp_path / "rec"
    out.mkdir()
    with EmulatorThread(store, venue="binance-spot", speed=1.0, heartbeat=None) as emu:
        env = dict(os.environ)
        p = subprocess.Popen(
            [*avmm_cmd(), "record", "--venue", "binance-spot", "--symbol", "BTCUSDT", "--url", emu.url, str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        end = time.monotonic() + 60
        while not list(out.glob("*.gz")) and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("avmm: interrupted by SIGINT; kept "), stderr
    assert "avmm record: binance-spot BTCUSDT: 1 file(s)" in stdout
    from avmm.data.convert import convert

    s = convert(sorted(out.glob("*.gz")), tmp_path / "x.parquet")
    assert s.kinds["quote"] > 0


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--venue", "binance-eu", "--symbol", "BTCUSDT"], ["--venue binance-eu", "binance-spot or binance-um"]),
        (["--venue", "binance-spot", "--symbol", "BTC/USDT"], ["--symbol 'BTC/USDT'"]),
        (["--venue", "binance-spot", "--symbol", "BTCUSDT", "--url", "ftp://x"], ["--url ftp://x", "origin"]),
        (["--venue", "binance-spot", "--symbol", "BTCUSDT", "--duration", "-1"], ["--duration -1"]),
        (["--venue", "binance-spot", "--symbol", "BTCUSDT", "--set", "venue.stream_url=http://x"], ["stream_url"]),
    ],
)
def test_bad_arguments_are_one_line(tmp_path, run_main, args, needles):
    code, _, err = run_main("record", *args, tmp_path)
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("avmm: error: "), err
    for n in needles:
        assert n in lines[0], lines[0]


def test_missing_folder_and_unreachable_url_are_one_line(tmp_path, run_cli):
    r = run_cli("record", "--venue", "binance-spot", "--symbol", "BTCUSDT", tmp_path / "no" / "such")
    assert_one_line_error(r, "does not exist")
    url = "http://127.0.0.1:9"
    r = run_cli("record", "--venue", "binance-spot", "--symbol", "BTCUSDT", "--url", url, "--duration", "5", tmp_path)
    assert_one_line_error(r, "ws://127.0.0.1:9/stream", "cannot connect")
