"""Regressions found in review: LOBSTER rows with an unusable time are counted, and the reorder
window never moves a book row before an earlier one."""

from __future__ import annotations

import numpy as np

from avmm.data import store
from avmm.data.convert import convert
from avmm.data.issues import Counters
from avmm.data.ordering import reorder
from avmm.events import CLEAR, DEPTH, EVENT_DTYPE, F_REORDERED, QUOTE, SNAPSHOT, TRADE


def test_lobster_nan_or_negative_time_is_counted_not_dropped(tmp_path):
    d = tmp_path / "lob"
    d.mkdir()
    (d / "X_2012-06-21_34200000_57600000_message_1.csv").write_text(
        "Time,Type,OrderId,Size,Price,Direction\n"
        "34200.1,1,11,100,2238100,1\n"
        "nan,4,11,50,2238100,1\n"  # line 3
        "-5,5,0,10,2238200,-1\n"  # line 4
        "34200.5,4,11,7,2238100,1\n"
    )
    (d / "X_2012-06-21_34200000_57600000_orderbook_1.csv").write_text(
        "BestAsk,BestAskVolume,BestBid,BestBidVolume\n"
        "2239500,100,2238100,100\n2239500,100,2238100,50\n2239500,100,2238100,50\n2239500,100,2238100,43\n"
    )
    s = convert([d], tmp_path / "o.parquet")
    assert s.issues == {"bad_timestamp": 2}
    assert s.notes["bad_timestamp"] == [
        "X_2012-06-21_34200000_57600000_message_1.csv:3",
        "X_2012-06-21_34200000_57600000_message_1.csv:4",
    ]
    ev = store.read_events(tmp_path / "o.parquet")
    assert (ev["kind"] == TRADE).sum() == 1 and ev[ev["kind"] == TRADE]["qty"][0] == 7


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
