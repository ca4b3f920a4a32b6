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


# ---------------------------------------------------------------- damaged or foreign stores
def _table(ev):
    import pyarrow as pa

    from avmm.events import ARROW_SCHEMA

    return pa.Table.from_arrays([pa.array(ev[n]) for n in EVENT_DTYPE.names], schema=ARROW_SCHEMA)


def _meta(ev, **kw):
    m = {"symbol": "X", "source": "test", "tick_size": 0.01, "lot_size": 0.001, "schema_version": 1}
    m.update(rows=len(ev), start_ns=int(ev["local_ts"][0]), end_ns=int(ev["local_ts"][-1]))
    m.update(kw)
    return m


def raw_store(path, table, meta=None, raw_meta=None, **write_kw):
    """A Parquet file written around ``write_events``' checks: ``meta`` as the avmm JSON,
    ``raw_meta`` as its bytes, neither: no avmm metadata."""
    import json

    import pyarrow.parquet as pq

    if meta is not None:
        raw_meta = json.dumps(meta).encode()
    if raw_meta is not None:
        table = table.replace_schema_metadata({b"avmm": raw_meta})
    pq.write_table(table, str(path), **write_kw)
    return path


def _events(n=3000, seed=4):
    return np.concatenate(list(synth.generate(n, seed)))


def _damaged(kind, tmp_path):
    """(path, words the one error line must contain) for each kind of damaged or foreign store."""
    import pyarrow as pa

    ev = _events()
    p = tmp_path / f"{kind}.parquet"
    t = _table(ev)
    if kind == "footer":
        store.write_events(p, [ev], {})
        raw = bytearray(p.read_bytes())
        raw[-40:-8] = b"\xff" * 32  # the footer's Thrift, before its length and the magic
        p.write_bytes(bytes(raw))
        return p, ["not a Parquet event store"]
    if kind == "truncated":
        store.write_events(p, [ev], {})
        p.write_bytes(p.read_bytes()[:-100])
        return p, ["not a Parquet event store"]
    if kind == "columns":
        t2 = t.drop_columns(["seq"]).append_column("foo", pa.array(np.zeros(len(ev))))
        return raw_store(p, t2, _meta(ev)), ["not an avmm event store", "missing seq", "unexpected foo"]
    if kind == "types":
        t2 = t.set_column(3, "px", pa.array(ev["px"].astype(np.float32)))
        return raw_store(p, t2, _meta(ev)), ["column px is float, expected double"]
    if kind == "no_meta":
        return raw_store(p, t), ["no avmm metadata"]
    if kind == "bad_json":
        return raw_store(p, t, raw_meta=b'{"symbol": "X", '), ["damaged avmm metadata"]
    if kind == "json_list":
        return raw_store(p, t, raw_meta=b"[1, 2]"), ["damaged avmm metadata", "list"]
    if kind == "bad_tick":
        return raw_store(p, t, _meta(ev, tick_size="0.01")), ["damaged avmm metadata", "tick_size"]
    if kind == "huge_rows":
        return raw_store(p, t, _meta(ev, rows=10**25)), ["damaged avmm metadata", "rows"]
    if kind == "rows_mismatch":
        return raw_store(p, t, _meta(ev, rows=5)), ["rows 5, the file has 3,000"]
    if kind == "future_version":
        return raw_store(p, t, _meta(ev, schema_version=7)), [
            "schema version 7",
            "reads version 1",
            "avmm data convert",
        ]
    if kind == "null_time":
        lt = pa.array(ev["local_ts"], mask=np.arange(len(ev)) == 1234)
        t2 = t.set_column(1, pa.field("local_ts", pa.int64()), lt)
        return raw_store(p, t2, _meta(ev)), ["row index 1,234", "local_ts is null"]
    if kind == "null_px":
        px = pa.array(ev["px"], mask=np.arange(len(ev)) == 7)
        return raw_store(p, t.set_column(3, pa.field("px", pa.float64()), px), _meta(ev)), ["row index 7", "px is null"]
    if kind == "unsorted":
        ev2 = ev.copy()
        ev2["local_ts"][2000], ev2["local_ts"][2001] = ev["local_ts"][2001], ev["local_ts"][2000] - 5
        return raw_store(p, _table(ev2), _meta(ev2)), ["rows not sorted by local_ts", "row index 2,001"]
    if kind == "unsorted_groups":  # each row group sorted, the second starting before the first ends
        ev2 = np.concatenate([ev[1500:], ev[:1500]])
        return raw_store(p, _table(ev2), _meta(ev2), row_group_size=1500), ["not sorted", "row index 1,500"]
    raise AssertionError(kind)


DAMAGES = [
    "footer",
    "truncated",
    "columns",
    "types",
    "no_meta",
    "bad_json",
    "json_list",
    "bad_tick",
    "huge_rows",
    "rows_mismatch",
    "future_version",
    "null_time",
    "null_px",
    "unsorted",
    "unsorted_groups",
]


@pytest.mark.parametrize("kind", DAMAGES)
def test_damaged_or_foreign_store_is_one_user_error(kind, tmp_path):
    """Every reader of stores stops with one line naming the file (and the row where it helps):
    the library's readers and the backtest's own column reader."""
    from avmm.backtest.runner import run_backtest

    p, words = _damaged(kind, tmp_path)
    readers = [
        lambda: store.read_meta(p) and list(store.iter_columns(p, chunk_events=1000)),
        lambda: list(store.iter_events(p)),
        lambda: run_backtest(p),
    ]
    for read in readers:
        with pytest.raises(UserError) as e:
            read()
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith(str(p)), msg
        for w in words:
            assert w in msg, (w, msg)


@pytest.mark.parametrize("kind", ["footer", "types", "bad_json", "future_version", "null_time", "unsorted"])
def test_damaged_store_cli_one_line_exit_2(kind, tmp_path, run_main):
    from tests.builders import error_lines

    p, words = _damaged(kind, tmp_path)
    for args in (["backtest", p, "--no-progress"], ["data", "inspect", p]):
        if kind == "unsorted" and args[0] == "data":
            continue  # inspect reports it instead (tests/data/test_inspect.py)
        code, out, err = run_main(*args)
        assert code == 2, (args, out, err)
        lines = error_lines(err)
        assert len(lines) == 1 and lines[0].startswith(f"avmm: error: {p}"), err
        assert all(w in lines[0] for w in words), lines[0]


def test_compatible_store_reads_and_old_meta_keys_are_kept(tmp_path):
    """A store of a version this avmm reads, with keys it does not know, reads as written."""
    ev = _events()
    p = raw_store(tmp_path / "ok.parquet", _table(ev), _meta(ev, extra={"a": 1}, counters={"x": 2}))
    assert store.read_meta(p)["extra"] == {"a": 1}
    assert store.read_events(p).tobytes() == ev.tobytes()


# ---------------------------------------------------------------- the time window
def test_window_reads_only_its_rows_and_skips_row_groups(tmp_path, monkeypatch):
    """``[start_ns, end_ns)`` selects exactly those rows; row groups outside are not read at all (a
    corrupt one there does not matter)."""
    monkeypatch.setattr(store, "ROW_GROUP_ROWS", 5_000)
    ev = _events(20_000, 9)
    p = tmp_path / "w.parquet"
    store.write_events(p, [ev[i : i + 5_000] for i in range(0, 20_000, 5_000)], {})
    lt = ev["local_ts"]
    a, b = int(lt[12_345]), int(lt[17_000])
    got = np.concatenate(list(store.iter_events(p, 3000, start_ns=a, end_ns=b)))
    assert got.tobytes() == ev[(lt >= a) & (lt < b)].tobytes()
    _corrupt_px_page(p)  # row group 0 (rows 0 .. 4,999)
    with pytest.raises(UserError, match="corrupt"):
        list(store.iter_columns(p))
    assert np.concatenate(list(store.iter_events(p, start_ns=a))).tobytes() == ev[lt >= a].tobytes()
    assert list(store.iter_columns(p, start_ns=int(lt[-1]) + 1)) == []


def test_infer_grid_huge_values_no_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store.infer_grid(np.array([1e308, 1.5e308]))  # no overflow warning on stderr


def test_reader_groups_are_the_chunks_of_each_row_group(tmp_path, monkeypatch):
    """``StoreReader.groups()`` gives the chunks ``iter`` gives, one list per row group read (the
    unit a reader thread reads ahead), the window and the checks applied alike."""
    monkeypatch.setattr(store, "ROW_GROUP_ROWS", 5_000)
    ev = _events(20_000, 9)
    p = tmp_path / "g.parquet"
    store.write_events(p, [ev[i : i + 5_000] for i in range(0, 20_000, 5_000)], {})
    lt = ev["local_ts"]
    for kw in ({}, {"start_ns": int(lt[7_000]), "end_ns": int(lt[16_000])}):
        flat = list(store.StoreReader(p, chunk_events=3_000, **kw))
        groups = list(store.StoreReader(p, chunk_events=3_000, **kw).groups())
        assert [len(g) for g in groups] == ([2, 2, 2, 2] if not kw else [2, 2, 1])
        assert len(flat) == sum(len(g) for g in groups)
        for a, b in zip(flat, [c for g in groups for c in g], strict=True):
            assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
