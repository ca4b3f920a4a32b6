"""LOBSTER message / orderbook pairs (`avmm.data.readers.lobster`): a cut last line, a malformed row
in the middle, an empty book side, unusable times, and the real level-1 sample."""

from __future__ import annotations

import re
from pathlib import Path

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


# ---------------------------------------------------------------- pairs out of step, numbers at their limits


def _book_pair(folder, n: int = 80, drop_msg: int | None = None, drop_ob: int | None = None):
    """A LOBSTER level-1 pair that follows LOBSTER's rules (each message changes its own side at
    its price; hidden executions change nothing); row ``drop_*`` (0-based) left out of one file."""
    bid, bsz, ask, asz = 1_000_000, 10, 1_010_000, 10
    msg, ob = [], []
    for i in range(n):
        side = -1 if i % 3 == 0 else 1
        typ = 5 if i % 7 == 0 else 1
        if typ == 1 and side == 1:
            bsz += 1 + i % 4
        elif typ == 1:
            asz += 1 + i % 5
        msg.append(f"{34200 + i * 0.25},{typ},{100 + i},{1 + i % 4},{bid if side == 1 else ask},{side}")
        ob.append(f"{ask},{asz},{bid},{bsz}")
    if drop_msg is not None:
        del msg[drop_msg]
    if drop_ob is not None:
        del ob[drop_ob]
    base = folder / "TEST_2012-06-21_34200000_57600000"
    m = Path(f"{base}_message_1.csv")
    o = Path(f"{base}_orderbook_1.csv")
    m.write_text("\n".join(msg) + "\n")
    o.write_text("\n".join(ob) + "\n")
    return m, o


def test_pair_in_step_converts(tmp_path):
    m, _ = _book_pair(tmp_path)
    s = convert([m], tmp_path / "o.parquet")
    assert s.issues == {} and s.kinds["quote"] > 40


@pytest.mark.parametrize("what", ["message", "orderbook"])
def test_one_missing_row_stops_with_where_they_diverge(tmp_path, run_cli, what):
    """Before: every row after the missing one was paired with the wrong message (exit 0)."""
    m, _ = _book_pair(tmp_path, **{"drop_msg" if what == "message" else "drop_ob": 40})
    with pytest.raises(
        UserError, match=rf"out of step by here: an? {what} row is missing at or after \S+_{what}_1\.csv:(\d+)"
    ) as e:
        convert([m], tmp_path / "o.parquet")
    near = int(re.search(rf"_{what}_1\.csv:(\d+) \(", str(e.value)).group(1))
    assert 30 <= near <= 41  # the row left out is line 41
    r = run_cli("data", "convert", m, "-o", tmp_path / "o.parquet")
    assert_one_line_error(r, "out of step")
    assert not (tmp_path / "o.parquet").exists()


def test_one_damaged_value_is_noted_not_fatal(tmp_path):
    m, o = _book_pair(tmp_path)
    rows = o.read_text().splitlines()
    rows[50] = rows[50].replace(",10,", ",11,", 1) if ",10," in rows[50] else rows[50] + "0"
    o.write_text("\n".join(rows) + "\n")
    s = convert([m], tmp_path / "o.parquet")
    assert set(s.issues) == {"book_mismatch"} and 1 <= s.issues["book_mismatch"] <= 2


def test_real_pair_missing_a_row(tmp_path, shared_data, run_cli):
    src = shared_data / "lobster_amzn_2012-06-21_level1"
    for f in src.glob("*_1.csv"):
        lines = f.read_bytes().split(b"\n")
        if "orderbook" in f.name:
            del lines[2000]
        (tmp_path / f.name).write_bytes(b"\n".join(lines))
    r = run_cli("data", "convert", *sorted(tmp_path.glob("*_1.csv")), "-o", tmp_path / "o.parquet")
    assert_one_line_error(r, "out of step", "an orderbook row is missing")


def test_times_and_ids_at_their_limits(tmp_path):
    m, _ = lobster_pair(tmp_path, n=9)
    rows = m.read_text().splitlines()
    rows[1] = "1e308," + rows[1].split(",", 1)[1]  # seconds after midnight: not within a day
    rows[0] = "-0.0," + rows[0].split(",", 1)[1]  # negative zero: midnight, kept
    rows[4] = ",".join(rows[4].split(",")[:2] + ["99999999999999999999"] + rows[4].split(",")[3:])  # OrderId
    m.write_text("\n".join(rows) + "\n")
    s = convert([m], tmp_path / "o.parquet")
    assert s.issues == {"bad_timestamp": 1, "non_numeric": 1}
    ev = store.read_events(tmp_path / "o.parquet")
    assert ev["local_ts"].max() - ev["local_ts"].min() < 86_400 * 10**9


def test_header_without_rows_is_zero_events_with_a_note(tmp_path):
    base = tmp_path / "TEST_2012-06-21_34200000_57600000"
    m = Path(f"{base}_message_1.csv")
    m.write_text("Time,Type,OrderId,Size,Price,Direction\n")
    Path(f"{base}_orderbook_1.csv").write_text("")
    s = convert([m], tmp_path / "o.parquet")
    assert s.rows == 0 and s.issues == {"empty_file": 2}
