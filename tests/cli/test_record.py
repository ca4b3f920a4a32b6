"""``avmm record``: a recording from the emulator converts to the store's book; a signal ends it
cleanly (exit 0), a second one at once; bad arguments are one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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


def _recording(out: Path, emu_url: str) -> subprocess.Popen[str]:
    """``avmm record`` without --duration, once its first file is written."""
    p = subprocess.Popen(
        [*avmm_cmd(), "record", "--venue", "binance-spot", "--symbol", "BTCUSDT", "--url", emu_url, str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    end = time.monotonic() + 60
    while not list(out.glob("*.gz")) and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(0.3)
    return p


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_the_recording_and_keeps_the_files(tmp_path, store, sig):
    """The normal end of an unbounded recording: the files closed, the summary printed, one line
    on stderr, exit 0."""
    from avmm.emulator import EmulatorThread

    out = tmp_path / "rec"
    out.mkdir()
    with EmulatorThread(store, venue="binance-spot", speed=1.0, heartbeat=None) as emu:
        p = _recording(out, emu.url)
        p.send_signal(sig)
        stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 0, stderr
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert lines == [f"avmm record: stopped by {sig.name}"], stderr
    assert "avmm record: binance-spot BTCUSDT: 1 file(s)" in stdout
    from avmm.data.convert import convert

    s = convert(sorted(out.glob("*.gz")), tmp_path / "x.parquet")
    assert s.kinds["quote"] > 0


def test_a_second_signal_ends_the_recording_at_once(tmp_path, store):
    """SIGINT starts the clean stop; SIGTERM right behind it exits at once, 143, one line."""
    from avmm.emulator import EmulatorThread

    out = tmp_path / "rec"
    out.mkdir()
    with EmulatorThread(store, venue="binance-spot", speed=1.0, heartbeat=None) as emu:
        p = _recording(out, emu.url)
        p.send_signal(signal.SIGINT)
        p.send_signal(signal.SIGTERM)
        _, stderr = p.communicate(timeout=60)
    assert p.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1].startswith("avmm: interrupted again by SIGTERM; exiting now"), stderr


SLOW_STOP = """
import asyncio, sys, time
from avmm.cli import signals
from avmm.live.run import StopOnSignal, new_loop

signals.install()
loop = new_loop("test")

async def main():
    done = asyncio.Event()
    def stop():  # a clean stop that takes its time: a second signal meanwhile ends it at once
        print("stopping", flush=True)
        time.sleep(20)
        done.set()
    with StopOnSignal(asyncio.get_running_loop(), stop, signals.stopped):
        print("ready", flush=True)
        await done.wait()

loop.run_until_complete(main())
print("finished cleanly", flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_second_signal_during_a_slow_stop_exits_at_once(sig):
    """The commands' signal handling (``live.run.StopOnSignal``): the first signal calls the stop,
    the same signal again while it runs exits at once with 128 + its number."""
    p = subprocess.Popen([sys.executable, "-c", SLOW_STOP], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    assert p.stdout.readline() == "ready\n"
    p.send_signal(sig)
    assert p.stdout.readline() == "stopping\n"
    t0 = time.monotonic()
    p.send_signal(sig)
    out, err = p.communicate(timeout=15)
    assert p.returncode == 128 + sig and time.monotonic() - t0 < 10, (out, err)
    assert err.strip() == f"avmm: interrupted again by {sig.name}; exiting now" and "finished" not in out


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
