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
