"""Local-time order (`avmm.data.ordering`): the reorder window (within it: reordered and flagged;
beyond it: one error line), duplicates, book rows kept in source order."""

from __future__ import annotations

import numpy as np
import pytest

from avmm.data import store
from avmm.data.convert import convert
from avmm.data.issues import Counters
from avmm.data.ordering import reorder
from avmm.errors import UserError
from avmm.events import CLEAR, DEPTH, EVENT_DTYPE, F_REORDERED, QUOTE, SNAPSHOT, TRADE
from tests.builders import QUOTES_HDR, TRADES_HDR, assert_one_line_error, quote_rows, trade_rows, write_lines


def test_out_of_order_within_window_reordered(tmp_path):
    rows = quote_rows(10, step=1000)  # 1 ms apart
    rows[4], rows[6] = rows[6], rows[4]  # 2 ms back: within the 1 s window
    f = write_lines(tmp_path / "q.csv", [QUOTES_HDR] + rows)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"reordered": 2}
    ev = store.read_events(tmp_path / "o.parquet")
    assert np.all(np.diff(ev["local_ts"]) >= 0) and len(ev) == 10
    assert np.count_nonzero(ev["flags"] & F_REORDERED) == 2


def test_out_of_order_beyond_window_stops(tmp_path, run_cli):
    rows = quote_rows(10, step=1_000_000)  # 1 s apart
    rows[2], rows[7] = rows[7], rows[2]  # 5 s back at line 9
    f = write_lines(tmp_path / "q.csv", [QUOTES_HDR] + rows)
    with pytest.raises(UserError, match=r"q\.csv:5: local timestamp goes back"):
        convert([f], tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()
    # a wider window accepts it
    s = convert([f], tmp_path / "o.parquet", reorder_window_ms=10_000)
    assert s.issues["reordered"] >= 1 and s.rows == 10
    r = run_cli("data", "convert", f, "-o", tmp_path / "o2.parquet")
    assert_one_line_error(r, "q.csv:5", "reorder window")


def test_duplicates(tmp_path):
    t = trade_rows(8)
    t.insert(4, t[3])  # repeated trade id
    q = quote_rows(5)
    q.insert(2, q[1])  # identical quote row
    ft = write_lines(tmp_path / "t.csv", [TRADES_HDR] + t)
    fq = write_lines(tmp_path / "q.csv", [QUOTES_HDR] + q)
    s = convert([ft, fq], tmp_path / "o.parquet")
    assert s.issues == {"duplicate": 2} and s.kinds["trade"] == 8 and s.kinds["quote"] == 5


def _rows(spec):
    ev = np.zeros(len(spec), dtype=EVENT_DTYPE)
    for i, (kind, lt, px, seq) in enumerate(spec):
        ev[i]["kind"], ev[i]["local_ts"], ev[i]["exch_ts"], ev[i]["px"], ev[i]["seq"] = kind, lt, lt, px, seq
        ev[i]["level"] = -1
    return ev


def test_reorder_keeps_book_rows_in_source_order():
    ms = 1_000_000
    ev = _rows(
        [
            (CLEAR, 1000 * ms, 0.0, 100),
            (SNAPSHOT, 1000 * ms, 100.0, 100),
            (DEPTH, 1200 * ms, 100.0, 103),  # diff 103 received at 1.200 s
            (DEPTH, 1199 * ms, 99.0, 110),  # diff 110 stamped 1 ms earlier (clock jitter): stays after 103
            (TRADE, 1199 * ms + 500_000, 99.5, 7),  # a late trade is moved back, as before
            (QUOTE, 1201 * ms, 99.0, 0),
        ]
    )
    c = Counters()
    out = np.concatenate(list(reorder([(ev, np.arange(2, 8), "cap.txt")], 1000 * ms, c)))
    assert out["seq"].tolist() == [100, 100, 7, 103, 110, 0]
    book = out[out["kind"] >= DEPTH]
    assert book["seq"].tolist() == [100, 100, 103, 110]  # update-id order kept
    assert np.all(np.diff(out["local_ts"]) >= 0)
    d110 = out[out["seq"] == 110][0]
    assert d110["local_ts"] == 1200 * ms and d110["flags"] & F_REORDERED  # took the running maximum
    t = out[out["kind"] == TRADE][0]
    assert t["local_ts"] == 1199 * ms + 500_000 and t["flags"] & F_REORDERED  # moved, time kept
    assert c.issues["reordered"] == 2
