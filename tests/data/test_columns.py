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
