"""Opening sources (`avmm.data.files`): a convert that stops early (a user error part-way through a
large CSV) exits cleanly -- Arrow's background reader is wound down before the interpreter shuts
down (it used to abort the process with "Fatal Python error: PyGILState_Release", exit code 134);
``ReadGate.stop`` ends reads; a truncated gzip stream is salvaged up to the damage."""

from __future__ import annotations

import gzip

import numpy as np

from avmm.data.convert import convert
from avmm.data.files import ReadGate
from tests.builders import TRADES_HDR, trade_rows


def _big_trades_csv(path, rows: int, bad_row: int) -> None:
    i = np.arange(rows, dtype=np.int64)
    ts = 1_582_329_600_000_000 + 1000 * (i + 1)
    lts = ts + 500
    lts[bad_row] = ts[bad_row] - 100_000_000  # 100 s back: beyond the reorder window
    px = 9000.0 + (i % 50) * 0.5
    body = "\n".join(
        f"binance-futures,BTCUSDT,{a},{b},{c},buy,{d},0.01"
        for a, b, c, d in zip(ts.tolist(), lts.tolist(), i.tolist(), px.tolist(), strict=True)
    )
    path.write_text("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n" + body + "\n")


def test_early_user_error_on_large_csv_exits_2_without_abort(tmp_path, run_cli):
    src = tmp_path / "binance-futures_trades_2020-02-22_BTCUSDT.csv"
    _big_trades_csv(src, 400_000, 1000)  # ~32 MB: far more than the reader's gated read-ahead
    for _ in range(3):  # the abort was a race at shutdown: try a few times
        r = run_cli("data", "convert", str(src), "-o", str(tmp_path / "o.parquet"))
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("avmm: error: ")
        assert f"{src.name}:1002: local timestamp goes back" in lines[0]
        assert not (tmp_path / "o.parquet").exists()


def test_read_gate_stop_ends_reads():
    import io

    g = ReadGate(io.BytesIO(b"x" * 100), ahead=1)
    assert g.read(10) == b"x" * 10
    g.stop()
    assert g.read(10) == b""  # no blocking, no more data once stopped


def test_corrupt_gzip_truncated_stream_is_counted(tmp_path):
    data = gzip.compress(("\n".join([TRADES_HDR] + trade_rows(200_000)) + "\n").encode())
    f = tmp_path / "t.csv.gz"
    f.write_bytes(data[: len(data) // 2])
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues.get("corrupt_gzip") == 1
    assert s.rows >= 0  # what could be decoded before the damage is kept


# ---------------------------------------------------------------- prefetch: a reader on a worker thread
def _prefetch_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name == "t-prefetch"]


def test_prefetch_stays_one_item_ahead_and_ends_with_its_consumer():
    """``depth=1``: while the consumer holds item i, the worker has made at most item i + 1 (memory:
    two items); the thread is gone once the stream is exhausted."""
    import time

    from avmm.data.files import prefetch
    from avmm.data.issues import Counters

    made: list[int] = []

    def make(c, progress):
        for i in range(8):
            made.append(i)
            c.add("x")
            yield i

    c = Counters()
    got = []
    for x in prefetch(make, c, depth=1, name="t-prefetch"):
        time.sleep(0.02)  # time for the worker to run ahead, if it would
        assert len(made) <= x + 2
        got.append(x)
    assert got == list(range(8))
    assert c.issues == {"x": 8}  # counter updates replayed on the consumer's side
    assert _prefetch_threads() == []


def test_prefetch_error_and_early_close_end_the_thread():
    import pytest

    from avmm.data.files import prefetch
    from avmm.data.issues import Counters
    from avmm.errors import UserError

    closed = []

    def make(c, progress):
        try:
            for i in range(1000):
                if i == 3:
                    raise UserError("bad row 3")
                yield i
        finally:
            closed.append(True)

    it = prefetch(make, Counters(), depth=1, name="t-prefetch")
    assert [next(it), next(it), next(it)] == [0, 1, 2]
    with pytest.raises(UserError, match="bad row 3"):
        next(it)
    assert _prefetch_threads() == [] and closed == [True]

    def endless(c, progress):
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.append(True)

    it = prefetch(endless, Counters(), depth=1, name="t-prefetch")
    assert next(it) == 0
    it.close()  # the consumer stops early: the worker is stopped, its stream closed, and joined
    assert _prefetch_threads() == [] and closed == [True, True]
