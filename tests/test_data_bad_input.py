"""Bad input: every case is counted by kind, unusable records skipped, unrecoverable files give one
line naming the file and line number with exit code 2."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avmm.data import store
from avmm.data.convert import convert
from avmm.errors import UserError
from avmm.events import CLEAR, DEPTH, F_REORDERED, F_SEQ_GAP, QUOTE, SNAPSHOT, TRADE

Q_HDR = "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount"
T_HDR = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"


def quote_rows(n, t0=1_600_000_000_000_000, step=1000):
    return [f"x,BTCUSDT,{t0 + i * step},{t0 + i * step + 50},1.0,100.{i % 9 + 1},100.0,2.0" for i in range(n)]


def trade_rows(n, t0=1_600_000_000_000_000, step=1000):
    return [
        f"x,BTCUSDT,{t0 + i * step},{t0 + i * step + 50},{i + 1},{'buy' if i % 2 else 'sell'},100.5,0.1"
        for i in range(n)
    ]


def write(path: Path, lines: list[str], gz=False, newline_at_end=True):
    text = "\n".join(lines) + ("\n" if newline_at_end else "")
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avmm", *map(str, args)], capture_output=True, text=True, timeout=120)


def assert_one_line_error(r: subprocess.CompletedProcess, *needles: str):
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


# ---------------------------------------------------------------- CSV (tardis)
def test_truncated_last_line(tmp_path):
    f = write(tmp_path / "q.csv", [Q_HDR] + quote_rows(10) + ["x,BTCUSDT,1600000000010000,16000"], newline_at_end=False)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"truncated_line": 1} and s.rows == 10


def test_non_numeric_fields(tmp_path):
    rows = quote_rows(10)
    rows[3] = rows[3].replace("100.0,2.0", "abc,2.0")
    rows[5] = rows[5].replace(",1.0,", ",,")  # empty ask amount
    f = write(tmp_path / "q.csv", [Q_HDR] + rows)
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
    f = write(tmp_path / ("t.csv.gz" if gz else "t.csv"), [T_HDR] + rows, gz=gz)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"non_finite_price": 2, "non_positive_price": 2, "non_finite_size": 2, "non_positive_size": 2}
    assert s.rows == 4
    ev = store.read_events(tmp_path / "o.parquet")
    assert np.all(np.isfinite(ev["px"])) and np.all(ev["qty"] > 0)


def test_crossed_and_locked_quotes(tmp_path):
    rows = quote_rows(6)
    rows[1] = rows[1].replace(",1.0,100.2,100.0,", ",1.0,99.5,100.0,")  # ask 99.5 < bid 100
    rows[2] = rows[2].replace(",1.0,100.3,100.0,", ",1.0,100.0,100.0,")  # locked: kept, noted
    f = write(tmp_path / "q.csv", [Q_HDR] + rows)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"crossed_book": 1, "locked_book": 1} and s.rows == 5


def test_out_of_order_within_window_reordered(tmp_path):
    rows = quote_rows(10, step=1000)  # 1 ms apart
    rows[4], rows[6] = rows[6], rows[4]  # 2 ms back: within the 1 s window
    f = write(tmp_path / "q.csv", [Q_HDR] + rows)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"reordered": 2}
    ev = store.read_events(tmp_path / "o.parquet")
    assert np.all(np.diff(ev["local_ts"]) >= 0) and len(ev) == 10
    assert np.count_nonzero(ev["flags"] & F_REORDERED) == 2


def test_out_of_order_beyond_window_stops(tmp_path):
    rows = quote_rows(10, step=1_000_000)  # 1 s apart
    rows[2], rows[7] = rows[7], rows[2]  # 5 s back at line 9
    f = write(tmp_path / "q.csv", [Q_HDR] + rows)
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
    ft = write(tmp_path / "t.csv", [T_HDR] + t)
    fq = write(tmp_path / "q.csv", [Q_HDR] + q)
    s = convert([ft, fq], tmp_path / "o.parquet")
    assert s.issues == {"duplicate": 2} and s.kinds["trade"] == 8 and s.kinds["quote"] == 5


def test_corrupt_gzip_truncated_stream_is_counted(tmp_path):
    data = gzip.compress(("\n".join([T_HDR] + trade_rows(200_000)) + "\n").encode())
    f = tmp_path / "t.csv.gz"
    f.write_bytes(data[: len(data) // 2])
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues.get("corrupt_gzip") == 1
    assert s.rows >= 0  # what could be decoded before the damage is kept


def test_corrupt_gzip_unreadable_exits_2(tmp_path):
    f = tmp_path / "t.csv.gz"
    f.write_bytes(b"\x1f\x8b" + b"\x00garbage" * 20)
    r = run_cli("data", "convert", "--format", "tardis", f, "-o", tmp_path / "o.parquet")
    assert_one_line_error(r, "t.csv.gz:1")


def test_unknown_format_and_missing_file_exit_2(tmp_path):
    f = tmp_path / "what.txt"
    f.write_text("hello\nworld\n")
    assert_one_line_error(run_cli("data", "convert", f, "-o", tmp_path / "o.parquet"), "what.txt:1")
    assert_one_line_error(run_cli("data", "convert", tmp_path / "nope.csv", "-o", tmp_path / "o.parquet"), "nope.csv")
    assert_one_line_error(run_cli("data", "inspect", f), "what.txt")


# ---------------------------------------------------------------- Binance websocket
T0 = 1_723_161_254_000_000_000


def ws_line(ts, stream, data):
    return f"{ts} {json.dumps({'stream': f'btcusdt@{stream}', 'data': data}, separators=(',', ':'))}"


def snap_line(ts, lid):
    return f"{ts} {json.dumps({'lastUpdateId': lid, 'bids': [['100.0', '1.0'], ['99.9', '2.0']], 'asks': [['100.1', '1.5'], ['100.2', '3.0']]})}"


def diff(ts, U, u, bid="99.8", ask="100.3"):
    return ws_line(
        ts,
        "depth@100ms",
        {
            "e": "depthUpdate",
            "E": ts // 10**6,
            "s": "BTCUSDT",
            "U": U,
            "u": u,
            "b": [[bid, "0.5"]],
            "a": [[ask, "0.7"]],
        },
    )


def trade(ts, tid, p="100.1", q="0.01", m=False):
    return ws_line(
        ts,
        "trade",
        {"e": "trade", "E": ts // 10**6, "s": "BTCUSDT", "t": tid, "p": p, "q": q, "T": ts // 10**6, "m": m},
    )


def ticker(ts, u, b="100.0", a="100.1"):
    return ws_line(ts, "bookTicker", {"u": u, "s": "BTCUSDT", "b": b, "B": "1.0", "a": a, "A": "1.5"})


def test_ws_sequence_gap_resync(tmp_path):
    ms = 10**6
    lines = [
        diff(T0, 90, 99),  # before the snapshot, stale (u <= 100)
        diff(T0 + 1 * ms, 100, 105),  # straddles lid 100: applied at the snapshot
        snap_line(T0 + 2 * ms, 100),
        diff(T0 + 3 * ms, 106, 110),
        diff(T0 + 4 * ms, 115, 120),  # gap: expected U == 111
        diff(T0 + 5 * ms, 121, 125),  # dropped until the next snapshot
        snap_line(T0 + 6 * ms, 123),
        diff(T0 + 7 * ms, 126, 130),
        trade(T0 + 8 * ms, 1),
    ]
    f = write(tmp_path / "c.gz", lines, gz=True)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues["seq_gap"] == 1
    # 90..99 before the first snapshot and 115..120 (buffered after the gap) are older than the
    # snapshots that follow them; 121..125 straddles the resync snapshot 123 and is applied
    assert s.issues["depth_stale"] == 2
    assert "depth_unsynced" not in s.issues
    ev = store.read_events(tmp_path / "o.parquet")
    clears = ev[ev["kind"] == CLEAR]
    assert len(clears) == 3  # snapshot, gap, snapshot
    assert np.count_nonzero(clears["flags"] & F_SEQ_GAP) == 1
    d = ev[ev["kind"] == DEPTH]
    assert sorted(set(d["seq"].tolist())) == [105, 110, 125, 130]
    # the straddling diff is applied when the snapshot arrives
    assert d[d["seq"] == 105]["local_ts"][0] == T0 + 2 * 10**6
    assert np.count_nonzero(ev["kind"] == SNAPSHOT) == 8
    assert any(":5" in n for n in s.notes["seq_gap"])


def test_ws_bad_lines(tmp_path):
    ms = 10**6
    lines = [
        ticker(T0, 1),
        ticker(T0 + ms, 2, b="nan"),  # NaN price
        ticker(T0 + 2 * ms, 3, b="100.2", a="100.1"),  # crossed
        ticker(T0 + 3 * ms, 3),  # duplicate update id
        trade(T0 + 4 * ms, 10),
        trade(T0 + 4 * ms, 10),  # duplicated message
        trade(T0 + 5 * ms, 11, p="abc"),  # non-numeric
        trade(T0 + 6 * ms, 12, q="-1"),  # negative size
        trade(T0 + 7 * ms, 13, p="0"),  # zero price
        "notanumber {}",
        f'{T0 + 8 * ms} {{"stream":"btcusdt@trade","data":{{broken',
        trade(T0 + 9 * ms, 14, m=True),
        trade(T0 + 10 * ms, 15)[:60],  # truncated last line
    ]
    f = write(tmp_path / "c.gz", lines, gz=True, newline_at_end=False)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {
        "non_finite_price": 1,
        "crossed_book": 1,
        "duplicate": 2,
        "non_numeric": 1,
        "non_positive_size": 1,
        "non_positive_price": 1,
        "bad_timestamp": 1,
        "bad_json": 1,
        "truncated_line": 1,
    }
    ev = store.read_events(tmp_path / "o.parquet")
    assert np.count_nonzero(ev["kind"] == QUOTE) == 1 and np.count_nonzero(ev["kind"] == TRADE) == 2


def test_ws_out_of_order_and_corrupt(tmp_path):
    ms = 10**6
    lines = [ticker(T0 + 5 * ms, 1), ticker(T0 + 3 * ms, 2), ticker(T0 + 6 * ms, 3)]
    f = write(tmp_path / "c.gz", lines, gz=True)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"reordered": 1}
    lines = [ticker(T0 + 5000 * ms, 1), ticker(T0, 2)]
    f2 = write(tmp_path / "d.gz", lines, gz=True)
    assert_one_line_error(run_cli("data", "convert", f2, "-o", tmp_path / "o2.parquet"), "d.gz:2")
    # corrupt gzip in the middle of a capture: counted, the lines before it kept
    big = [ticker(T0 + i * ms, i + 1, b=f"{100 + (i % 50) / 100:.2f}", a="101.0") for i in range(100_000)]
    data = gzip.compress(("\n".join(big) + "\n").encode())
    f3 = tmp_path / "e.gz"
    f3.write_bytes(data[: len(data) * 2 // 3])
    s = convert([f3], tmp_path / "o3.parquet")
    assert s.issues["corrupt_gzip"] == 1 and s.rows > 1000


def test_ws_all_garbage_exit_2(tmp_path):
    f = write(tmp_path / "c.gz", ["123 {nope", "456 {nope"], gz=True)
    assert_one_line_error(
        run_cli("data", "convert", "--format", "binance-ws", f, "-o", tmp_path / "o.parquet"), "c.gz:1"
    )


# ---------------------------------------------------------------- LOBSTER
def _lobster_pair(tmp_path, n=20, msg_tail="", ob_tail="", bad_mid=False):
    base = tmp_path / "TEST_2012-06-21_34200000_57600000"
    msg = [
        f"{34200 + i},{4 if i % 3 == 0 else 1},{1000 + i},10,{1000000 + i * 100},{1 if i % 2 else -1}" for i in range(n)
    ]
    ob = [f"{1010000 + i * 100},5,{1000000 + i * 100},7" for i in range(n)]
    if bad_mid:
        msg[5] = "34205,4,1005"
    m = Path(str(base) + "_message_1.csv")
    o = Path(str(base) + "_orderbook_1.csv")
    m.write_text("\n".join(msg) + "\n" + msg_tail)
    o.write_text("\n".join(ob) + "\n" + ob_tail)
    return m, o


def test_lobster_truncated_last_line(tmp_path):
    m, o = _lobster_pair(tmp_path, msg_tail="34300,4,99")
    ob_extra = "1020000,5,1010000,7\n"
    o.write_text(o.read_text() + ob_extra)
    s = convert([m], tmp_path / "o.parquet")
    assert s.issues == {"truncated_line": 1, "unpaired_row": 1}
    assert s.kinds["trade"] == 7 and s.kinds["quote"] == 20


def test_lobster_bad_row_in_middle_exit_2(tmp_path):
    m, o = _lobster_pair(tmp_path, bad_mid=True)
    with pytest.raises(UserError, match=r"message_1\.csv:6: malformed LOBSTER row"):
        convert([m], tmp_path / "o.parquet")
    assert_one_line_error(run_cli("data", "convert", m, o, "-o", tmp_path / "o.parquet"), "message_1.csv:6")


def test_lobster_empty_side_and_headerless(tmp_path):
    m, o = _lobster_pair(tmp_path)
    rows = o.read_text().splitlines()
    rows[3] = "9999999999,0,1000300,7"
    o.write_text("\n".join(rows) + "\n")
    s = convert([o], tmp_path / "o.parquet")  # the orderbook file finds its message file
    assert s.issues == {"empty_book_side": 1}
    assert s.kinds["quote"] == 19
