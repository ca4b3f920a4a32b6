"""Chunks and the reader (`avmm.backtest.runner`): results are bit-identical whatever the chunk size
and with or without the read-ahead thread (built-in session, a real sample, cursors seconds apart);
moving from one chunk to the next copies a few rows, not the chunk; the reader thread never
outlives a run, a failed run or one stopped early; a corrupt store read ahead is one line."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from avmm.backtest.runner import Backtester, run_backtest
from avmm.config import load_config
from avmm.data import store, synth
from avmm.errors import UserError
from avmm.outputs import Terminated
from tests.builders import error_lines

CHUNKS = (1000, 1001, 4096, 65536, 1_000_000)
TIMING = {"wall_s", "events_per_s", "wall_s_e2e", "events_per_s_e2e"}


def _same(a, b, what: str) -> None:
    assert a.fills.tobytes() == b.fills.tobytes(), what
    assert a.samples.tobytes() == b.samples.tobytes(), what
    sa = {k: v for k, v in a.summary.items() if k not in TIMING}
    sb = {k: v for k, v in b.summary.items() if k not in TIMING}
    assert sa == sb, what


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "avmm-read-ahead"]


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """The built-in session (what ``default_session_path`` generates), in a store of its own."""
    p = tmp_path_factory.mktemp("session") / "session.parquet"
    synth.write_synth(p, synth.DEFAULT_EVENTS, synth.DEFAULT_SEED)
    return p


@pytest.fixture(scope="module")
def spot(tmp_path_factory):
    """A real sample: Binance spot BTCUSDT, bookTicker + trades + depth diffs, 11 min, ~600 events/s."""
    from tests.builders import SHARED_DATA

    src = SHARED_DATA / "binance_ws_capture"
    files = [src / "spot_btcusdt_20240808.gz", src / "spot_btcusdt_20240809.gz"]
    if not all(f.is_file() for f in files):
        pytest.skip(f"shared data not found at {src}")
    from avmm.data.convert import convert

    p = tmp_path_factory.mktemp("spot") / "spot.parquet"
    convert(files, p)
    return p


@pytest.mark.parametrize("data, feed_ms", [("session", 0.0), ("spot", 0.0), ("spot", 3000.0)])
def test_results_identical_for_every_chunk_size_with_and_without_read_ahead(data, feed_ms, request):
    """The reference is the whole stream in one loop call (an array, one chunk: no carry-over at
    all); every chunk size, read ahead or not, gives the same figures, fills and equity samples bit
    for bit -- also with the strategy 3 s behind the exchange (on the real sample ~1,800 rows: more
    than a chunk of 1000)."""
    path = request.getfixturevalue(data)
    sets = [f"backtest.feed_latency_ms={feed_ms}"]
    whole = store.read_events(path)
    one_call = load_config(None, [*sets, "backtest.chunk_events=100000000"])
    ref = run_backtest(whole, one_call, meta=store.read_meta(path))  # (tick and lot as the store's)
    assert ref.summary["fills"] > 50
    for ch in CHUNKS:
        for ahead in (True, False):
            cfg = load_config(None, [*sets, f"backtest.chunk_events={ch}", f"backtest.read_ahead={str(ahead).lower()}"])
            _same(run_backtest(path, cfg), ref, f"{data}, chunk {ch}, read_ahead {ahead}")
    assert _reader_threads() == []


@pytest.mark.parametrize("skew_s", [-3.0, 3.0])
def test_cursors_seconds_apart_either_way(skew_s):
    """Exchange stamps 3 s before or after the local ones (the exchange cursor far ahead of the
    strategy's, or far behind): chunks of 1000 and 1001 rows give the one-call results."""
    ev = np.concatenate(list(synth.generate(30_000, 5, quote_rate=400.0, trade_rate=100.0)))
    ev["exch_ts"] = ev["local_ts"] + round(skew_s * 1e9)
    ref = run_backtest(ev, load_config(None, ["backtest.chunk_events=100000000"]))
    assert ref.summary["fills"] > 50
    for ch in (1000, 1001, 4096):
        _same(run_backtest(ev, load_config(None, [f"backtest.chunk_events={ch}"])), ref, f"chunk {ch}")


def test_next_chunk_is_not_copied():
    """Carrying the cursors into the next chunk copies a few rows (the unseen tail and a little of
    the next chunk's head), not the chunk."""
    ev = np.concatenate(list(synth.generate(200_000, 3, quote_rate=800.0, trade_rate=200.0)))
    cfg = load_config(None, [])
    bt = Backtester(cfg, backtest=cfg.backtest)
    n = 20_000
    for i in range(0, len(ev), n):
        bt.feed(ev[i : i + n])
    r = bt.finish()
    boundaries = len(ev) // n - 1
    assert 0 < bt.n_bridge_rows <= 200 * boundaries  # rows copied per boundary: ~70, not 20,000
    _same(r, run_backtest(ev, load_config(None, ["backtest.chunk_events=100000000"])), "fed by hand")


def _corrupt_row_group(path, g: int) -> None:
    """Flip 64 bytes inside the ``px`` column chunk of row group ``g`` (its page CRC then fails)."""
    import pyarrow.parquet as pq

    md = pq.ParquetFile(str(path)).metadata
    names = [md.row_group(g).column(c).path_in_schema for c in range(md.num_columns)]
    cc = md.row_group(g).column(names.index("px"))
    off = cc.data_page_offset + cc.total_compressed_size // 2
    raw = bytearray(path.read_bytes())
    raw[off : off + 64] = bytes(b ^ 0x5A for b in raw[off : off + 64])
    path.write_bytes(bytes(raw))


@pytest.fixture
def grouped_store(tmp_path, monkeypatch):
    """A store of 4 row groups of 5,000 rows (the unit the reader thread reads ahead)."""
    monkeypatch.setattr(store, "ROW_GROUP_ROWS", 5_000)
    p = tmp_path / "g.parquet"
    ev = np.concatenate(list(synth.generate(20_000, 3, quote_rate=100.0, trade_rate=25.0)))
    store.write_events(p, [ev[i : i + 5_000] for i in range(0, 20_000, 5_000)], {"symbol": "X"})
    return p


@pytest.fixture
def corrupt_store(grouped_store):
    """The same, its third row group corrupt."""
    _corrupt_row_group(grouped_store, 2)
    return grouped_store


def test_corrupt_store_read_ahead_is_the_same_one_line_error(corrupt_store):
    msgs = []
    for ahead in ("true", "false"):
        cfg = load_config(None, ["backtest.chunk_events=1000", f"backtest.read_ahead={ahead}"])
        with pytest.raises(UserError) as e:
            run_backtest(corrupt_store, cfg)
        msgs.append(str(e.value))
        assert _reader_threads() == []
    assert msgs[0] == msgs[1]
    assert msgs[0].startswith(f"{corrupt_store}: corrupt event store after row 10,000 (")


def test_corrupt_store_read_ahead_cli_exit_2(corrupt_store, run_cli):
    r = run_cli(
        "backtest", str(corrupt_store), "--set", "backtest.chunk_events=1000", "--set", "backtest.read_ahead=true"
    )
    assert r.returncode == 2, r.stderr
    lines = error_lines(r.stderr)
    assert len(lines) == 1 and "corrupt event store after row 10,000" in lines[0], r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("exc", [KeyboardInterrupt, Terminated, UserError])
def test_reader_thread_ends_when_the_run_stops_early(grouped_store, exc):
    """Ctrl-C (KeyboardInterrupt), a signal (``Terminated``) or an error in the consumer after the
    first chunk: the exception comes out as it is and the reader thread is gone."""
    cfg = load_config(None, ["backtest.chunk_events=1000"])
    seen = []

    def progress(done, total):
        seen.append(done)
        assert len(_reader_threads()) == 1  # reading ahead while the loop runs
        raise exc(15) if exc is Terminated else exc("stop")

    with pytest.raises(exc):
        run_backtest(grouped_store, cfg, progress=progress)
    assert seen == [1000]
    assert _reader_threads() == []


def test_no_reader_thread_left_after_runs(session):
    before = set(threading.enumerate())
    r = run_backtest(session, load_config(None, ["backtest.chunk_events=65536"]))
    assert r.summary["events"] == synth.DEFAULT_EVENTS
    assert set(threading.enumerate()) <= before
    s = r.summary
    assert s["wall_s_e2e"] >= s["wall_s"] > 0  # from the first read to the end of finish: includes the loop
    assert s["events_per_s_e2e"] == pytest.approx(s["events"] / s["wall_s_e2e"])
