"""`avmm data inspect` (`avmm.data.inspect`): rows out of order and the local - exchange clock
offset, flagged in the text output and the JSON; the store's own damage is still one error line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avmm.data import inspect, store, synth
from avmm.events import F_EXCH_TS
from tests.data.test_store import _meta, _table, raw_store


def _events(n=5000, seed=2):
    return np.concatenate(list(synth.generate(n, seed)))


def test_sorted_store_has_no_warnings(tmp_path):
    p = tmp_path / "ok.parquet"
    ev = _events()
    ev["exch_ts"] = ev["local_ts"] - 3_000_000  # 3 ms behind the local clock
    ev["flags"] |= F_EXCH_TS
    store.write_events(p, [ev], {})
    r = inspect.inspect_store(p)
    assert r["unsorted_rows"] == 0 and r["first_unsorted_row"] is None
    assert r["exch_clock"]["local_minus_exch_ms"]["median"] == pytest.approx(3.0)
    assert r["warnings"] == []
    text = "\n".join(inspect.format_report(r))
    assert "0 rows out of local_ts order" in text and "WARNING" not in text


def test_unsorted_rows_counted_with_the_first(tmp_path, run_main):
    """A store the backtest refuses: inspect still reads it and says how many rows and where."""
    ev = _events(9000)
    lt = ev["local_ts"]
    lt[4000] = lt[3990] - 1  # one row stamped back...
    lt[7000:7003] = lt[6000]  # ... and three more
    p = raw_store(tmp_path / "u.parquet", _table(ev), _meta(ev), row_group_size=2500)
    r = inspect.inspect_store(p, chunk_events=1000)
    assert r["unsorted_rows"] == 2 and r["first_unsorted_row"] == 4000
    assert len(r["warnings"]) == 1 and "the backtest refuses" in r["warnings"][0]
    code, out, err = run_main("data", "inspect", p)
    assert code == 0, err
    assert "2 rows out of local_ts order (the first at row index 4,000)" in out
    assert "WARNING   2 rows stamped before the previous row (the first at row index 4,000)" in out
    code, out, err = run_main("data", "inspect", p, "--json")
    d = json.loads(out)
    assert d["unsorted_rows"] == 2 and d["first_unsorted_row"] == 4000 and d["warnings"]


def test_large_clock_offset_flagged_with_median_and_extremes(tmp_path, run_main):
    """Local clock an hour ahead (a time-zone error): median and extremes of local - exchange,
    flagged over the threshold; rows beyond the backtest's 600 s skew counted."""
    ev = _events()
    ev["flags"] |= F_EXCH_TS
    ev["exch_ts"] = ev["local_ts"] - 3600 * 10**9
    ev["exch_ts"][:10] = ev["local_ts"][:10] - 5_000_000  # a few rows near
    p = tmp_path / "tz.parquet"
    store.write_events(p, [ev], {})
    r = inspect.inspect_store(p)
    q = r["exch_clock"]["local_minus_exch_ms"]
    assert q["median"] == pytest.approx(3.6e6) and q["max"] == pytest.approx(3.6e6) and q["min"] == pytest.approx(5.0)
    assert r["exch_clock"]["rows_beyond_backtest_skew"] == len(ev) - 10
    w = " | ".join(r["warnings"])
    assert "median 3,600.000 s (over 1 s" in w and "min 0.005 s" in w and "600 s apart" in w
    code, out, err = run_main("data", "inspect", p, "--clock-offset-s", "7200")
    assert code == 0, err
    assert "clock offset" not in out  # under the stated threshold now
    assert "600 s apart" in out
    code, out, err = run_main("data", "inspect", p, "--clock-offset-s", "0")
    assert code == 2 and "--clock-offset-s" in err and len(err.strip().splitlines()) == 1


def test_no_exchange_stamps(tmp_path):
    ev = _events()
    ev["flags"] = 0
    p = tmp_path / "n.parquet"
    store.write_events(p, [ev], {})
    r = inspect.inspect_store(p)
    assert r["exch_clock"]["rows"] == 0 and r["exch_clock"]["local_minus_exch_ms"] is None
    assert r["warnings"] == []
    inspect.format_report(r)


def test_huge_gap_threshold_is_not_an_overflow(tmp_path, run_main):
    p = tmp_path / "s.parquet"
    store.write_events(p, [_events()], {})
    code, out, err = run_main("data", "inspect", p, "--gap-s", "1e308")
    assert code == 0, err
    assert "0 gaps" in out
