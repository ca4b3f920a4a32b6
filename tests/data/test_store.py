"""The event store (`avmm.data.store`): round trip, bounded chunked reading, row groups, errors,
corrupt pages."""

from __future__ import annotations

import numpy as np
import pytest

from avmm.data import store, synth
from avmm.errors import UserError
from avmm.events import EVENT_DTYPE, empty
from tests.builders import error_lines


def test_round_trip_and_meta(tmp_path):
    ev = np.concatenate(list(synth.generate(50_000, 1, chunk=7_000)))
    p = tmp_path / "s.parquet"
    n = store.write_events(p, [ev[:20_000], ev[20_000:]], {"symbol": "X", "source": "test", "foo": [1, 2]})
    assert n == len(ev)
    back = store.read_events(p)
    assert back.dtype == EVENT_DTYPE
    assert back.tobytes() == ev.tobytes()
    meta = store.read_meta(p)
    assert meta["symbol"] == "X" and meta["source"] == "test" and meta["foo"] == [1, 2]
    assert meta["tick_size"] == 0.01 and meta["lot_size"] == 0.001  # inferred
    assert meta["schema_version"] == store.SCHEMA_VERSION
    assert meta["rows"] == len(ev)
    assert meta["start_ns"] == int(ev["local_ts"][0]) and meta["end_ns"] == int(ev["local_ts"][-1])


def test_iter_columns_bounded_and_zero_copy(tmp_path):
    p = tmp_path / "s.parquet"
    synth.write_synth(p, 30_000, 3)
    ref = store.read_events(p)
    sizes = []
    parts = []
    for cols in store.iter_columns(p, chunk_events=4096):
        assert isinstance(cols, store.EventColumns)
        assert cols._fields == EVENT_DTYPE.names
        for name, arr in zip(cols._fields, cols, strict=True):
            assert arr.ndim == 1 and arr.flags["C_CONTIGUOUS"]
            assert arr.dtype == EVENT_DTYPE[name]
        sizes.append(len(cols.local_ts))
        parts.append(cols)
    assert max(sizes) <= 4096 and sum(sizes) == len(ref)
    for name in EVENT_DTYPE.names:
        np.testing.assert_array_equal(np.concatenate([getattr(c, name) for c in parts]), ref[name])
    chunks = list(store.iter_events(p, chunk_events=5000))
    assert max(len(c) for c in chunks) <= 5000
    assert np.concatenate(chunks).tobytes() == ref.tobytes()


def test_row_groups_follow_chunking(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    monkeypatch.setattr(store, "ROW_GROUP_ROWS", 10_000)
    p = tmp_path / "s.parquet"
    store.write_events(p, synth.generate(35_000, 2, chunk=3_000), {})
    md = pq.ParquetFile(p).metadata
    assert md.num_rows == 35_000
    assert all(md.row_group(i).num_rows <= 10_000 for i in range(md.num_row_groups))


def test_write_rejects_unsorted_and_leaves_no_file(tmp_path):
    ev = empty(3)
    ev["local_ts"] = [3, 2, 1]
    p = tmp_path / "bad.parquet"
    with pytest.raises(ValueError):
        store.write_events(p, [ev], {})
    assert not p.exists() and not list(tmp_path.iterdir())


def test_empty_store(tmp_path):
    p = tmp_path / "e.parquet"
    assert store.write_events(p, [], {"symbol": "E"}) == 0
    assert len(store.read_events(p)) == 0
    assert store.read_meta(p)["rows"] == 0


def test_read_errors_are_user_errors(tmp_path):
    with pytest.raises(UserError):
        store.read_meta(tmp_path / "missing.parquet")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    with pytest.raises(UserError):
        list(store.iter_columns(junk))


def test_infer_grid():
    assert store.infer_grid(np.array([100.01, 100.02, 99.5])) == 0.01
    assert store.infer_grid(np.array([61800.1, 61800.2])) == 0.1
    assert store.infer_grid(np.array([0.001, 0.25, 1.0])) == 0.001
    assert store.infer_grid(np.array([100.0, 150.0])) == 50.0
    assert store.infer_grid(np.array([])) is None


def _corrupt_px_page(path):
    """Overwrite 64 bytes inside the first data page of the ``px`` column of row group 0."""
    import pyarrow.parquet as pq

    md = pq.ParquetFile(str(path)).metadata
    names = [md.row_group(0).column(c).path_in_schema for c in range(md.num_columns)]
    cc = md.row_group(0).column(names.index("px"))
    off = cc.data_page_offset + cc.total_compressed_size // 2
    raw = bytearray(path.read_bytes())
    raw[off : off + 64] = bytes((b ^ 0x5A) for b in raw[off : off + 64])
    path.write_bytes(bytes(raw))


def test_corrupt_data_page_is_a_user_error(tmp_path, run_cli):
    """Stores carry a CRC per page: damage inside the data (which the footer cannot reveal) stops
    the read with one line naming the file, in the library, the backtest and the CLI."""
    from avmm.backtest.runner import run_backtest

    p = tmp_path / "s.parquet"
    synth.write_synth(p, 20_000, 3)
    assert len(store.read_events(p)) == 20_000  # intact: reads back
    _corrupt_px_page(p)
    with pytest.raises(UserError, match=r"s\.parquet: corrupt event store after row 0 \(.*CRC"):
        list(store.iter_columns(p))
    with pytest.raises(UserError, match="corrupt event store"):
        run_backtest(p)
    r = run_cli("backtest", str(p))
    assert r.returncode == 2
    lines = error_lines(r.stderr)
    assert len(lines) == 1 and "corrupt event store" in lines[0], r.stderr
    assert "Traceback" not in r.stderr
