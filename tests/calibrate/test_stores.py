"""Several stores: read in time order (a note when given out of order), the same estimates as one
store holding the same rows; overlapping stores and a window without data are one line."""

from __future__ import annotations

import pytest

from avmm.calibrate import calibrate
from avmm.data.store import read_events, read_meta, write_events
from avmm.errors import UserError
from tests.builders import synth_store_without_truth


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("cal_stores")
    whole = synth_store_without_truth(d / "whole.parquet", 120_000, 5, sigma=0.08, k=25.0, trade_rate=4.0)
    ev = read_events(whole)
    meta = {k: v for k, v in read_meta(whole).items() if k not in ("rows", "start_ns", "end_ns", "schema_version")}
    half = len(ev) // 2
    write_events(d / "a.parquet", [ev[:half]], meta)
    write_events(d / "b.parquet", [ev[half:]], meta)
    write_events(d / "overlap.parquet", [ev[half - 1000 : half + 1000]], meta)
    return d


def _values(c):
    return (c.sigma.value, *(e.value for e in c.est.values()), c.sigma.ci, *(e.ci for e in c.est.values()))


def test_two_stores_equal_one(stores):
    one = calibrate([stores / "whole.parquet"], chunk_events=7_001)
    two = calibrate([stores / "b.parquet", stores / "a.parquet"])  # out of order: read in time order
    assert _values(two) == _values(one)
    assert two.stores == [stores / "a.parquet", stores / "b.parquet"]
    assert two.notes[0].startswith("stores given out of time order; read in time order: ")


def test_overlapping_stores_and_windows(stores):
    with pytest.raises(UserError, match="overlap in time"):
        calibrate([stores / "a.parquet", stores / "overlap.parquet"])
    end = read_meta(stores / "b.parquet")["end_ns"]
    with pytest.raises(UserError, match=r"no data in the window \["):
        calibrate([stores / "a.parquet", stores / "b.parquet"], end + 1)
    # a window inside one store reads only that store
    start_b = read_meta(stores / "b.parquet")["start_ns"]
    c = calibrate([stores / "a.parquet", stores / "b.parquet"], start_b)
    assert c.stores == [stores / "b.parquet"] and c.rows == read_meta(stores / "b.parquet")["rows"]
