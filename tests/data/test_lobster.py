"""LOBSTER message / orderbook pairs (`avmm.data.readers.lobster`): a cut last line, a malformed row
in the middle, an empty book side, unusable times, and the real level-1 sample."""

from __future__ import annotations

import numpy as np
import pytest

from avmm.data import store
from avmm.data.convert import convert
from avmm.errors import UserError
from avmm.events import (
    SELL,
    TRADE,
)
from tests.builders import assert_one_line_error, check_sample_events, lobster_pair


def test_lobster_truncated_last_line(tmp_path):
    m, o = lobster_pair(tmp_path, msg_tail="34300,4,99")
    ob_extra = "1020000,5,1010000,7\n"
    o.write_text(o.read_text() + ob_extra)
    s = convert([m], tmp_path / "o.parquet")
    assert s.issues == {"truncated_line": 1, "unpaired_row": 1}
    assert s.kinds["trade"] == 7 and s.kinds["quote"] == 20


def test_lobster_bad_row_in_middle_exit_2(tmp_path, run_cli):
    m, o = lobster_pair(tmp_path, bad_mid=True)
    with pytest.raises(UserError, match=r"message_1\.csv:6: malformed LOBSTER row"):
        convert([m], tmp_path / "o.parquet")
    assert_one_line_error(run_cli("data", "convert", m, o, "-o", tmp_path / "o.parquet"), "message_1.csv:6")


def test_lobster_empty_side_and_headerless(tmp_path):
    m, o = lobster_pair(tmp_path)
    rows = o.read_text().splitlines()
    rows[3] = "9999999999,0,1000300,7"
    o.write_text("\n".join(rows) + "\n")
    s = convert([o], tmp_path / "o.parquet")  # the orderbook file finds its message file
    assert s.issues == {"empty_book_side": 1}
    assert s.kinds["quote"] == 19


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


def test_lobster_level1(tmp_path, shared_data):
    out = tmp_path / "l.parquet"
    s = convert(
        [shared_data / "lobster_amzn_2012-06-21_level1" / "AMZN_2012-06-21_34200000_57600000_message_1.csv"], out
    )
    ev = store.read_events(out)
    q, t = check_sample_events(ev, 200, 250)
    assert s.symbol == "AMZN"
    # 09:30 New York = 13:30 UTC on 2012-06-21 (EDT)
    assert ev["local_ts"][0] // 10**9 == 1340285400
    assert np.all(ev["exch_ts"] == ev["local_ts"])
    # execution of a resting buy order (direction 1) => aggressor SELL
    # message line 3: "34200.19023,4,11885113,21,2238100,1"
    first_visible = t[t["seq"] == 11885113]
    assert len(first_visible) == 1 and first_visible["side"][0] == SELL
    assert first_visible["px"][0] == pytest.approx(223.81)
    assert store.read_meta(out)["tick_size"] == 0.01
