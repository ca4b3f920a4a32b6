"""Numeric columns and row checks (`avmm.data.columns`): non-numeric fields, bad prices and sizes,
crossed and locked quotes -- counted by kind with their lines, the rows skipped."""

from __future__ import annotations

import numpy as np
import pytest

from avmm.data import store
from avmm.data.convert import convert
from tests.builders import QUOTES_HDR, TRADES_HDR, quote_rows, trade_rows, write_lines


def test_non_numeric_fields(tmp_path):
    rows = quote_rows(10)
    rows[3] = rows[3].replace("100.0,2.0", "abc,2.0")
    rows[5] = rows[5].replace(",1.0,", ",,")  # empty ask amount
    f = write_lines(tmp_path / "q.csv", [QUOTES_HDR] + rows)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"non_numeric": 2} and s.rows == 8
    assert any(":5" in n for n in s.notes["non_numeric"])  # line numbers reported


@pytest.mark.parametrize("gz", [False, True])
def test_bad_prices_and_sizes(tmp_path, gz):
    rows = trade_rows(12)
    bad = {
        0: ("100.5,0.1", "nan,0.1"),
        1: ("100.5,0.1", "inf,0.1"),
        2: ("100.5,0.1", "0,0.1"),
        3: ("100.5,0.1", "-3,0.1"),
        4: ("100.5,0.1", "100.5,NaN"),
        5: ("100.5,0.1", "100.5,-inf"),
        6: ("100.5,0.1", "100.5,0"),
        7: ("100.5,0.1", "100.5,-0.5"),
    }
    for i, (a, b) in bad.items():
        rows[i] = rows[i].replace(a, b)
    f = write_lines(tmp_path / ("t.csv.gz" if gz else "t.csv"), [TRADES_HDR] + rows)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"non_finite_price": 2, "non_positive_price": 2, "non_finite_size": 2, "non_positive_size": 2}
    assert s.rows == 4
    ev = store.read_events(tmp_path / "o.parquet")
    assert np.all(np.isfinite(ev["px"])) and np.all(ev["qty"] > 0)


def test_crossed_and_locked_quotes(tmp_path):
    rows = quote_rows(6)
    rows[1] = rows[1].replace(",1.0,100.2,100.0,", ",1.0,99.5,100.0,")  # ask 99.5 < bid 100
    rows[2] = rows[2].replace(",1.0,100.3,100.0,", ",1.0,100.0,100.0,")  # locked: kept, noted
    f = write_lines(tmp_path / "q.csv", [QUOTES_HDR] + rows)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"crossed_book": 1, "locked_book": 1} and s.rows == 5


# ---------------------------------------------------------------- numbers at their limits


def test_to_int_outside_int64_is_not_a_number():
    import pyarrow as pa

    from avmm.data.columns import to_int

    v, bad = to_int(pa.array(["1", "99999999999999999999", "-99999999999999999999", "9223372036854775807", "1e300"]))
    assert list(bad) == [False, True, True, False, True]
    assert v[0] == 1 and v[3] == 2**63 - 1


def test_scale_to_ns_marks_overflow_never_wraps():
    from avmm.data.columns import scale_to_ns

    t = np.array([1_600_000_000_000_000, 9_300_000_000_000_000, -5], dtype=np.int64)
    ns, over = scale_to_ns(t, 1000)
    assert list(over) == [False, True, False]
    assert ns[0] == 1_600_000_000_000_000_000 and ns[1] == 0


@pytest.mark.parametrize(
    "cell, key",
    [
        ("99999999999999999999", "bad_timestamp"),  # 20 digits: not an int64
        ("9300000000000000", "bad_timestamp"),  # µs whose ns value overflows int64 (year 2264)
        ("1e308", "bad_timestamp"),  # a float, not a whole int64
    ],
)
def test_tardis_times_at_their_limits_counted(tmp_path, cell, key):
    rows = quote_rows(5)
    parts = rows[2].split(",")
    parts[3] = cell  # local_timestamp
    rows[2] = ",".join(parts)
    f = write_lines(tmp_path / "q.csv", [QUOTES_HDR] + rows)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {key: 1} and s.notes[key] == ["q.csv:4"] and s.rows == 4
    ev = store.read_events(tmp_path / "o.parquet")
    assert ev["local_ts"].min() > 1_500_000_000 * 10**9 and ev["local_ts"].max() < 1_700_000_000 * 10**9


def test_huge_prices_and_negative_zero_sizes_counted(tmp_path):
    rows = trade_rows(6)
    rows[0] = rows[0].replace("100.5,0.1", "1e308,0.1")  # finite: kept (a price, not a crash)
    rows[1] = rows[1].replace("100.5,0.1", "1e400,0.1")  # beyond float64: inf
    rows[2] = rows[2].replace("100.5,0.1", "100.5,-0.0")  # negative zero size
    rows[3] = rows[3].replace(f",{4},", ",99999999999999999999,")  # a 20-digit trade id: seq 0, kept
    f = write_lines(tmp_path / "t.csv", [TRADES_HDR] + rows)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"non_finite_price": 1, "non_positive_size": 1}
    assert s.rows == 4
