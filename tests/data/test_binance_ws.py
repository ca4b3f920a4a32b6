"""Binance websocket captures (`avmm.data.readers.binance_ws`): the depth sequence (gaps, resyncs,
stale diffs), bad lines counted by kind, out of order lines; a truncated gzip keeps every complete
line; spot and USD-M captures are never chained; a bare REST snapshot is applied only to the
symbol whose diffs it brackets; a capture with both @trade and @aggTrade stores each execution
once; the real samples."""

from __future__ import annotations

import gzip
import re
import zlib

import numpy as np
import pytest

from avmm.data import store
from avmm.data.convert import convert
from avmm.data.issues import ISSUE_HELP
from avmm.data.readers import binance_ws
from avmm.errors import UserError
from avmm.events import (
    BUY,
    CLEAR,
    DEPTH,
    F_DERIVED,
    F_EXCH_TS,
    F_LAST_IN_BATCH,
    F_SEQ_GAP,
    QUOTE,
    SNAPSHOT,
    TRADE,
)
from tests.builders import (
    MS,
    WS_SNAP,
    assert_one_line_error,
    check_sample_events,
    kinds,
    write_lines,
    ws_agg,
    ws_diff,
    ws_env,
    ws_snap,
    ws_ticker,
    ws_trade,
)
from tests.builders import WS_T0 as T0


@pytest.fixture
def ws(shared_data):
    """The real captures in ../shared/data (skipped without them)."""
    return shared_data / "binance_ws_capture"


SNAP_ETH = ([["3000.0", "1.0"]], [["3000.5", "1.0"]])


def test_ws_sequence_gap_resync(tmp_path):
    ms = 10**6
    lines = [
        ws_diff(T0, 90, 99, a=[("100.3", "0.7")]),  # before the snapshot, stale (u <= 100)
        ws_diff(T0 + 1 * ms, 100, 105, a=[("100.3", "0.7")]),  # straddles lid 100: applied at the snapshot
        ws_snap(T0 + 2 * ms, 100),
        ws_diff(T0 + 3 * ms, 106, 110, a=[("100.3", "0.7")]),
        ws_diff(T0 + 4 * ms, 115, 120, a=[("100.3", "0.7")]),  # gap: expected U == 111
        ws_diff(T0 + 5 * ms, 121, 125, a=[("100.3", "0.7")]),  # dropped until the next snapshot
        ws_snap(T0 + 6 * ms, 123),
        ws_diff(T0 + 7 * ms, 126, 130, a=[("100.3", "0.7")]),
        ws_trade(T0 + 8 * ms, 1, um=None),
    ]
    f = write_lines(tmp_path / "c.gz", lines)
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
        ws_ticker(T0, 1),
        ws_ticker(T0 + ms, 2, b="nan"),  # NaN price
        ws_ticker(T0 + 2 * ms, 3, b="100.2", a="100.1"),  # crossed
        ws_ticker(T0 + 3 * ms, 3),  # duplicate update id
        ws_trade(T0 + 4 * ms, 10, um=None),
        ws_trade(T0 + 4 * ms, 10, um=None),  # duplicated message
        ws_trade(T0 + 5 * ms, 11, p="abc", um=None),  # non-numeric
        ws_trade(T0 + 6 * ms, 12, q="-1", um=None),  # negative size
        ws_trade(T0 + 7 * ms, 13, p="0", um=None),  # zero price
        "notanumber {}",
        f'{T0 + 8 * ms} {{"stream":"btcusdt@trade","data":{{broken',
        ws_trade(T0 + 9 * ms, 14, m=True, um=None),
        ws_trade(T0 + 10 * ms, 15, um=None)[:60],  # truncated last line
    ]
    f = write_lines(tmp_path / "c.gz", lines, end=False)
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


def test_ws_out_of_order_and_corrupt(tmp_path, run_cli):
    ms = 10**6
    lines = [ws_ticker(T0 + 5 * ms, 1), ws_ticker(T0 + 3 * ms, 2), ws_ticker(T0 + 6 * ms, 3)]
    f = write_lines(tmp_path / "c.gz", lines)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"reordered": 1}
    lines = [ws_ticker(T0 + 5000 * ms, 1), ws_ticker(T0, 2)]
    f2 = write_lines(tmp_path / "d.gz", lines)
    assert_one_line_error(run_cli("data", "convert", f2, "-o", tmp_path / "o2.parquet"), "d.gz:2")
    # corrupt gzip in the middle of a capture: counted, the lines before it kept
    big = [ws_ticker(T0 + i * ms, i + 1, b=f"{100 + (i % 50) / 100:.2f}", a="101.0") for i in range(100_000)]
    data = gzip.compress(("\n".join(big) + "\n").encode())
    f3 = tmp_path / "e.gz"
    f3.write_bytes(data[: len(data) * 2 // 3])
    s = convert([f3], tmp_path / "o3.parquet")
    assert s.issues["corrupt_gzip"] == 1 and s.rows > 1000


# ---------------------------------------------------------------- a truncated gzip keeps every complete line


def _complete_lines(cut: bytes) -> tuple[int, bool]:
    """(complete lines, whether a partial line follows) in what a truncated gzip decodes to."""
    data = zlib.decompressobj(wbits=31).decompress(cut)
    return data.count(b"\n"), not data.endswith(b"\n")


def test_truncated_gzip_keeps_every_complete_line(tmp_path):
    # ~9 MiB of text: the old reader lost the last (up to 4 MiB) read before the cut
    lines = [ws_ticker(T0 + i * MS, i + 1) for i in range(60_000)]
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    cut = data[: len(data) * 2 // 3]
    f = tmp_path / "cut.gz"
    f.write_bytes(cut)
    n, partial = _complete_lines(cut)
    assert partial and 30_000 < n < 60_000
    s = convert([f], tmp_path / "o.parquet")
    assert s.rows == n and s.kinds["quote"] == n
    assert s.issues == {"corrupt_gzip": 1, "truncated_line": 1}
    assert s.notes["corrupt_gzip"][0].startswith(f"cut.gz:{n + 1}: truncated gzip stream")
    assert s.notes["truncated_line"] == [f"cut.gz:{n + 1}"]
    ev = store.read_events(tmp_path / "o.parquet")
    assert ev["seq"].tolist() == list(range(1, n + 1))


def test_truncated_gzip_cut_at_a_line_end(tmp_path):
    """Cut where a line ends: nothing is truncated, the damage is at the next line."""
    lines = [ws_ticker(T0 + i * MS, i + 1) for i in range(3)]
    raw = ("\n".join(lines) + "\n").encode()
    co = zlib.compressobj(wbits=31)
    cut = co.compress(raw) + co.flush(zlib.Z_SYNC_FLUSH)  # all of it decodable, no end marker
    f = tmp_path / "c.gz"
    f.write_bytes(cut)
    s = convert([f], tmp_path / "o.parquet")
    assert s.rows == 3 and s.issues == {"corrupt_gzip": 1}
    assert s.notes["corrupt_gzip"][0].startswith("c.gz:4: ")


def test_corrupt_gzip_at_the_start_is_an_error(tmp_path):
    f = tmp_path / "c.gz"
    f.write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 40)
    with pytest.raises(UserError, match=r"c\.gz:1: corrupt gzip file"):
        convert([f], tmp_path / "o.parquet", fmt="binance-ws")


def test_truncated_real_capture(tmp_path, ws):
    """The reviewer's repro: the first 1,000,000 bytes of usdm_btcusdt_20240808.gz decode to
    24,473 complete lines (``zcat | wc -l``) and a cut line 24,474."""
    f = tmp_path / "t.gz"
    f.write_bytes((ws / "usdm_btcusdt_20240808.gz").read_bytes()[:1_000_000])
    assert _complete_lines(f.read_bytes()) == (24_473, True)
    s = convert([f], tmp_path / "t.parquet")
    # the same lines converted from a clean file give the same store
    with gzip.open(ws / "usdm_btcusdt_20240808.gz", "rb") as fh:
        head = b"".join(fh.readline() for _ in range(24_473))
    g = tmp_path / "h.txt"
    g.write_bytes(head)
    s2 = convert([g], tmp_path / "h.parquet")
    assert s.rows == s2.rows == 146_059
    assert s.notes["corrupt_gzip"][0].startswith("t.gz:24474: ")
    assert s.notes["truncated_line"] == ["t.gz:24474"]
    a, b = store.read_events(tmp_path / "t.parquet"), store.read_events(tmp_path / "h.parquet")
    assert all(np.array_equal(a[k], b[k]) for k in a.dtype.names)


# ---------------------------------------------------------------- spot and USD-M never chained


def _spot(tmp_path, name="spot.gz", t=T0):
    return write_lines(
        tmp_path / name,
        [
            ws_diff(t, 101, 103),
            ws_snap(t + MS, 100),
            ws_ticker(t + 2 * MS, 200),
            ws_trade(t + 3 * MS, 1),
            ws_diff(t + 4 * MS, 104, 105),
        ],
    )


def _usdm(tmp_path, name="usdm.gz", t=T0 + 500 * MS):
    return write_lines(
        tmp_path / name,
        [
            ws_diff(t, 5001, 5003, pu=5000),
            ws_ticker(t + MS, 6000, um=True),
            ws_trade(t + 2 * MS, 7, um=True),
            ws_diff(t + 3 * MS, 5004, 5006, pu=5003),
        ],
    )


def test_spot_and_usdm_in_one_convert_is_an_error(tmp_path):
    sp, um = _spot(tmp_path), _usdm(tmp_path)
    with pytest.raises(UserError) as e:
        convert([sp, um], tmp_path / "o.parquet")
    msg = str(e.value)
    assert msg == f"{um}: USD-M futures capture mixed with spot capture {sp}; convert them separately"
    assert not (tmp_path / "o.parquet").exists()
    # the files alone convert
    assert convert([sp], tmp_path / "a.parquet").rows > 0
    assert convert([um], tmp_path / "b.parquet").rows > 0


@pytest.mark.parametrize("first", ["spot", "usdm"])
def test_market_mix_found_while_reading(tmp_path, monkeypatch, first):
    """Files whose head shows no market (here: the head check disabled) are caught by the reader
    at their first line that shows one."""
    monkeypatch.setattr(binance_ws, "head_market", lambda path: None)
    sp = _spot(tmp_path, t=T0 if first == "spot" else T0 + 900 * MS)
    um = _usdm(tmp_path)
    later, earlier = (um, sp) if first == "spot" else (sp, um)
    m1, m2 = ("USD-M futures", "spot") if first == "spot" else ("spot", "USD-M futures")
    want = f"{later}: {m1} capture mixed with {m2} capture {earlier}; convert them separately"
    with pytest.raises(UserError, match="^" + re.escape(want) + "$"):
        convert([sp, um], tmp_path / "o.parquet")


@pytest.mark.parametrize(
    "line",
    [
        ws_ticker(T0 + 5 * MS, 300, um=True),
        ws_diff(T0 + 5 * MS, 106, 107, pu=105),
        ws_trade(T0 + 5 * MS, 2, um=True),
        ws_snap(T0 + 5 * MS, 100).replace('"bids"', '"E": 1, "T": 1, "bids"'),
    ],
)
def test_market_change_part_way_through_a_file(tmp_path, line):
    f = write_lines(
        tmp_path / "x.gz",
        [
            ws_ticker(T0, 1),
            ws_trade(T0 + MS, 1),
            ws_diff(T0 + 2 * MS, 101, 103),
            ws_snap(T0 + 3 * MS, 100),
            ws_ticker(T0 + 4 * MS, 2),
            line,
        ],
    )
    with pytest.raises(
        UserError,
        match=r"x\.gz:6: USD-M futures message in a spot capture \(the market "
        r"changes part-way through the file\)",
    ):
        convert([f], tmp_path / "o.parquet")


def test_market_markers_of_each_message():
    assert binance_ws._line_market(ws_ticker(T0, 1).encode()) is False
    assert binance_ws._line_market(ws_ticker(T0, 1, um=True).encode()) is True
    assert binance_ws._line_market(ws_diff(T0, 1, 2).encode()) is False
    assert binance_ws._line_market(ws_diff(T0, 1, 2, pu=0).encode()) is True
    assert binance_ws._line_market(ws_trade(T0, 1).encode()) is False
    assert binance_ws._line_market(ws_trade(T0, 1, um=True).encode()) is True
    assert binance_ws._line_market(ws_trade(T0, 1, um=None).encode()) is None
    assert binance_ws._line_market(ws_agg(T0, 1, 1, 1).encode()) is False
    assert binance_ws._line_market(ws_snap(T0, 1).encode()) is False
    assert binance_ws._line_market(b"123 {garbage") is None


def test_real_sample_folder_is_refused(tmp_path, ws):
    with pytest.raises(
        UserError,
        match=r"spot_btcusdt_20240808\.gz: spot capture mixed with USD-M futures "
        r"capture .*usdm_btcusdt_20240718\.gz; convert them separately",
    ):
        convert([ws], tmp_path / "o.parquet")


# ---------------------------------------------------------------- the bare snapshot's symbol


def test_snapshot_not_applied_to_another_symbol(tmp_path):
    """--symbol ETHUSDT on a BTCUSDT capture: the BTC snapshot is not stored, no quote derived."""
    f = write_lines(tmp_path / "btc.gz", [ws_diff(T0, 101, 103), ws_snap(T0 + MS, 100), ws_diff(T0 + 2 * MS, 104, 105)])
    s = convert([f], tmp_path / "o.parquet", symbol="ETHUSDT")
    assert s.rows == 0 and s.issues == {"other_symbol": 3}
    s = convert([f], tmp_path / "o.parquet", symbol="BTCUSDT")
    assert s.kinds["snapshot"] == 4 and s.issues == {"derived_quote": 1}


def test_enveloped_snapshot_symbol_from_its_stream(tmp_path):
    eth = ws_env(T0 + MS, "ethusdt@depth20@100ms", {"lastUpdateId": 100, "bids": SNAP_ETH[0], "asks": SNAP_ETH[1]})
    btc = ws_env(T0 + MS, "btcusdt@depth20@100ms", {"lastUpdateId": 100, "bids": WS_SNAP[0], "asks": WS_SNAP[1]})
    f = write_lines(
        tmp_path / "c.gz", [ws_ticker(T0, 1), ws_diff(T0, 101, 103), eth, btc, ws_diff(T0 + 2 * MS, 104, 105)]
    )
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"other_symbol": 1} and s.notes["other_symbol"] == ["c.gz:3"]
    ev = store.read_events(tmp_path / "o.parquet")
    assert sorted(ev["px"][ev["kind"] == SNAPSHOT].tolist()) == [99.9, 100.0, 100.1, 100.2]


def test_foreign_bare_snapshots_in_a_capture(tmp_path):
    """Another symbol's snapshots (update ids unrelated to BTC's: one below the buffered diffs, one
    far above) are not applied; BTC's own is, with the diff that brackets it."""
    lines = [
        ws_ticker(T0, 1),
        ws_diff(T0 + 1 * MS, 101, 103),
        ws_snap(T0 + 2 * MS, 7, SNAP_ETH),  # older than every buffered diff: refused at once
        ws_snap(T0 + 3 * MS, 10**9, SNAP_ETH),  # ahead of them: held, never bracketed
        ws_snap(T0 + 4 * MS, 100),  # BTC's: brackets the buffered diff
        ws_diff(T0 + 5 * MS, 104, 105),
    ]
    f = write_lines(tmp_path / "c.gz", lines)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"other_symbol": 2}
    assert sorted(s.notes["other_symbol"]) == ["c.gz:3", "c.gz:4"]
    ev = store.read_events(tmp_path / "o.parquet")
    assert kinds(ev) == [QUOTE, CLEAR, SNAPSHOT, SNAPSHOT, SNAPSHOT, SNAPSHOT, DEPTH, DEPTH]
    assert ev["seq"][1] == 100 and ev["local_ts"][1] == T0 + 4 * MS


def test_snapshot_before_the_diff_that_brackets_it(tmp_path):
    """The REST answer arrives before the diff that covers its id: held, then written in place
    (its own time, before the rows that followed it) once that diff brackets it."""
    lines = [
        ws_diff(T0, 90, 99),  # stale for snapshot 100
        ws_snap(T0 + 1 * MS, 100),
        ws_ticker(T0 + 2 * MS, 1),
        ws_trade(T0 + 3 * MS, 1),
        ws_diff(T0 + 4 * MS, 95, 100),  # still stale (u <= 100)
        ws_diff(T0 + 5 * MS, 101, 104),  # brackets 100 + 1
    ]
    f = write_lines(tmp_path / "c.gz", lines)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"depth_stale": 2}
    ev = store.read_events(tmp_path / "o.parquet")
    assert kinds(ev) == [CLEAR] + [SNAPSHOT] * 4 + [QUOTE, TRADE, DEPTH]
    assert ev["local_ts"][0] == T0 + 1 * MS and ev["local_ts"][-1] == T0 + 5 * MS
    assert ev["seq"][-1] == 104


def test_resync_snapshot_while_synced(tmp_path):
    """A snapshot read while the book is synced: one that the next diff brackets is applied in
    place; one older than the book is not applied (no false sequence gap); one newer than a
    diff that came between is applied when bracketed, after that diff."""
    lines = [
        ws_diff(T0, 101, 103),
        ws_snap(T0 + 1 * MS, 100),
        ws_diff(T0 + 2 * MS, 104, 105),
        ws_snap(T0 + 3 * MS, 105),  # 1) the next diff 106.. brackets 105 + 1: in place
        ws_ticker(T0 + 4 * MS, 1),
        ws_diff(T0 + 5 * MS, 106, 107),
        ws_snap(T0 + 6 * MS, 104),  # 2) older than the book (107): not applied
        ws_diff(T0 + 7 * MS, 108, 109),
        ws_snap(T0 + 8 * MS, 111),  # 3) the next diff is older (u 110 <= 111): applied after it ...
        ws_diff(T0 + 9 * MS, 110, 110),
        ws_diff(T0 + 10 * MS, 111, 112),  # ... when this one brackets 111 + 1
    ]
    f = write_lines(tmp_path / "c.gz", lines)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"other_symbol": 1}
    assert s.notes["other_symbol"] == ["c.gz:7"]
    ev = store.read_events(tmp_path / "o.parquet")
    clears = ev[ev["kind"] == CLEAR]
    assert clears["seq"].tolist() == [100, 105, 111]
    assert clears["local_ts"].tolist() == [T0 + 1 * MS, T0 + 3 * MS, T0 + 10 * MS]
    book = ev[ev["kind"] >= DEPTH]
    assert book["seq"].tolist() == [100] * 5 + [103, 105] + [105] * 5 + [107, 109, 110] + [111] * 5 + [112]
    assert s.kinds["quote"] == 1  # the capture's own bookTicker: nothing derived


def test_held_snapshot_confirmed_in_the_next_file(tmp_path):
    """A bare snapshot at the end of a file, bracketed by the next file's first diff: written with
    that diff (its time), still a message of its own (F_LAST_IN_BATCH on its last level)."""
    a = write_lines(tmp_path / "a.gz", [ws_diff(T0, 101, 103), ws_diff(T0 + MS, 104, 105), ws_snap(T0 + 2 * MS, 110)])
    b = write_lines(tmp_path / "b.gz", [ws_diff(T0 + 3 * MS, 106, 112), ws_diff(T0 + 4 * MS, 113, 113)])
    s = convert([a, b], tmp_path / "o.parquet")
    assert s.issues == {"depth_stale": 2, "derived_quote": 1}
    ev = store.read_events(tmp_path / "o.parquet")
    assert kinds(ev) == [CLEAR] + [SNAPSHOT] * 4 + [DEPTH, QUOTE, DEPTH]
    assert np.all(ev["local_ts"][:7] == T0 + 3 * MS) and ev["seq"][0] == 110
    last = (ev["flags"] & F_LAST_IN_BATCH) != 0
    assert last.tolist() == [False, False, False, False, True, True, False, True]


def test_held_snapshot_expires(tmp_path):
    """A bare snapshot that a diff brackets only after HOLD_NS is not applied (an unrelated
    symbol's update id reached by chance)."""
    late = T0 + binance_ws.HOLD_NS + 10 * MS
    lines = [
        ws_ticker(T0, 1),
        ws_diff(T0, 101, 103),
        ws_snap(T0 + MS, 100),
        ws_diff(T0 + 2 * MS, 104, 105),
        ws_snap(T0 + 3 * MS, 200, SNAP_ETH),
        ws_diff(T0 + 4 * MS, 106, 150),
        ws_diff(late, 151, 210),  # would bracket 200 + 1, too late
    ]
    f = write_lines(tmp_path / "c.gz", lines)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"other_symbol": 1} and s.notes["other_symbol"] == ["c.gz:5"]
    ev = store.read_events(tmp_path / "o.parquet")
    assert ev["seq"][ev["kind"] == CLEAR].tolist() == [100]
    assert 3000.0 not in ev["px"].tolist()


def test_usdm_bare_snapshot_rule(tmp_path):
    """USD-M: the first diff must satisfy U <= L <= u; stale is u < L."""
    lines = [
        ws_diff(T0, 90, 99, pu=89),
        ws_diff(T0 + MS, 100, 102, pu=99),  # brackets L = 100
        ws_snap(T0 + 2 * MS, 100).replace('"bids"', '"E": 1723161254002, "T": 1723161254002, "bids"'),
        ws_diff(T0 + 3 * MS, 103, 105, pu=102),
    ]
    f = write_lines(tmp_path / "c.gz", [ws_ticker(T0, 1, um=True)] + lines)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"depth_stale": 1}
    ev = store.read_events(tmp_path / "o.parquet")
    assert ev["seq"][ev["kind"] == DEPTH].tolist() == [102, 105]


@pytest.mark.parametrize(
    "names,rows",
    [
        (["spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"], 393_173),
        (["usdm_btcusdt_20240808.gz"], 532_665),
        (["usdm_btcusdt_20240718.gz", "usdm_btcusdt_20240719.gz"], 465_630),
    ],
)
def test_real_samples_unchanged(tmp_path, names, rows, ws):
    s = convert([ws / n for n in names], tmp_path / "o.parquet")
    assert s.rows == rows and s.kinds["clear"] == 1 and s.kinds["snapshot"] == 2000
    assert set(s.issues) == {"depth_stale"}
    s = convert([ws / n for n in names], tmp_path / "e.parquet", symbol="ETHUSDT")
    assert s.rows == 0 and set(s.issues) == {"other_symbol"}


# ---------------------------------------------------------------- @trade and @aggTrade


def test_agg_trade_help_registered():
    assert ISSUE_HELP["agg_trade_skipped"].startswith("S: ")


def test_trade_and_agg_trade_streams_store_each_execution_once(tmp_path):
    lines = [
        ws_agg(T0, 1, 1, 3),  # before any @trade: stored (executions 1..3)
        ws_agg(T0 + 1 * MS, 2, 4, 5),  # 4..5
        ws_trade(T0 + 2 * MS, 4),  # in a stored aggTrade: duplicate
        ws_trade(T0 + 3 * MS, 5),  # idem
        ws_trade(T0 + 4 * MS, 6),  # new: stored
        ws_agg(T0 + 5 * MS, 3, 6, 7),  # a @trade was seen: not stored
        ws_trade(T0 + 6 * MS, 7),
        ws_agg(T0 + 7 * MS, 4, 8, 8),
        ws_trade(T0 + 8 * MS, 8),
        ws_ticker(T0 + 9 * MS, 1),
    ]
    f = write_lines(tmp_path / "c.gz", lines)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"duplicate": 2, "agg_trade_skipped": 2}
    assert s.notes["duplicate"] == ["c.gz:3", "c.gz:4"] and s.notes["agg_trade_skipped"] == ["c.gz:6", "c.gz:8"]
    ev = store.read_events(tmp_path / "o.parquet")
    t = ev[ev["kind"] == TRADE]
    assert t["seq"].tolist() == [1, 2, 6, 7, 8]  # aggregate ids 1, 2; then trade ids
    assert any("agg_trade_skipped" in ln and "@trade" in ln for ln in s.lines())


def test_trade_before_agg_trade(tmp_path):
    lines = [
        ws_trade(T0, 10),
        ws_agg(T0 + MS, 1, 10, 10),
        ws_trade(T0 + 2 * MS, 11),
        ws_agg(T0 + 3 * MS, 2, 11, 12),
        ws_trade(T0 + 4 * MS, 12),
        ws_ticker(T0 + 5 * MS, 1),
    ]
    s = convert([write_lines(tmp_path / "c.gz", lines)], tmp_path / "o.parquet")
    assert s.kinds["trade"] == 3 and s.issues == {"agg_trade_skipped": 2}


def test_agg_trade_only_capture_unchanged(tmp_path):
    lines = [ws_agg(T0 + i * MS, i + 1, 2 * i, 2 * i + 1) for i in range(5)] + [ws_ticker(T0 + 9 * MS, 1)]
    s = convert([write_lines(tmp_path / "c.gz", lines)], tmp_path / "o.parquet")
    assert s.kinds["trade"] == 5 and s.issues == {}


def test_derived_quotes_not_made_from_a_foreign_snapshot(tmp_path):
    """Depth-only capture, --symbol of another coin: nothing derived (was: quotes from BTC's book)."""
    f = write_lines(tmp_path / "c.gz", [ws_diff(T0, 101, 103), ws_snap(T0 + MS, 100), ws_diff(T0 + 2 * MS, 104, 105)])
    s = convert([f], tmp_path / "o.parquet", symbol="ETHUSDT")
    ev = store.read_events(tmp_path / "o.parquet")
    assert len(ev) == 0 and not np.any(ev["flags"] & F_DERIVED) and "derived_quote" not in s.issues


# ---------------------------------------------------------------- the real samples


def _book_check(ev):
    """Replay depth rows into a book; at every message end the book must not be crossed."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    checked = 0
    have = False
    for row in ev[np.isin(ev["kind"], [CLEAR, SNAPSHOT, DEPTH])]:
        k = row["kind"]
        if k == CLEAR:
            bids.clear(), asks.clear()
            have = False
            continue
        book = bids if row["side"] == BUY else asks
        if row["qty"] == 0:
            book.pop(row["px"], None)
        else:
            book[row["px"]] = row["qty"]
        if k == SNAPSHOT:
            have = True
        if row["flags"] & F_LAST_IN_BATCH and have and bids and asks:
            assert max(bids) < min(asks)
            checked += 1
    return checked


def test_binance_ws_spot_two_files(tmp_path, ws):
    out = tmp_path / "spot.parquet"
    s = convert([ws / "spot_btcusdt_20240809.gz", ws / "spot_btcusdt_20240808.gz"], out)
    ev = store.read_events(out)
    assert s.rows == len(ev) and s.symbol == "BTCUSDT"
    q, t = check_sample_events(ev, 50_000, 70_000)
    # spot bookTicker: no exchange time -> exch_ts == local_ts, flag clear
    assert np.all(q["exch_ts"] == q["local_ts"]) and not np.any(q["flags"] & F_EXCH_TS)
    # trades: exchange time T, flag set, the other clock kept
    assert np.all(t["flags"] & F_EXCH_TS) and np.any(t["exch_ts"] != t["local_ts"])
    assert s.kinds["clear"] == 1 and s.kinds["snapshot"] == 2000 and s.kinds["depth"] > 100_000
    assert s.issues.get("seq_gap", 0) == 0  # the two files form one continuous window
    assert s.issues.get("depth_unsynced", 0) == 0
    # one F_LAST_IN_BATCH per depth message
    d = ev[ev["kind"] == DEPTH]
    assert 3000 < np.count_nonzero(d["flags"] & F_LAST_IN_BATCH) <= 3451 + 3044
    meta = store.read_meta(out)
    assert meta["tick_size"] == 0.01 and meta["symbol"] == "BTCUSDT" and meta["source"] == "binance-ws"
    assert _book_check(ev) > 1000


def test_binance_ws_usdm(tmp_path, ws):
    out = tmp_path / "um.parquet"
    s = convert([ws / "usdm_btcusdt_20240718.gz", ws / "usdm_btcusdt_20240719.gz"], out)
    ev = store.read_events(out)
    q, t = check_sample_events(ev, 50_000, 70_000)
    assert np.all(q["flags"] & F_EXCH_TS)  # USD-M bookTicker has T
    assert s.issues.get("seq_gap", 0) == 0
    assert s.kinds["depth"] > 100_000
    assert store.read_meta(out)["tick_size"] == 0.1
    assert _book_check(ev) > 1000


def test_binance_ws_second_file_alone_waits_for_snapshot(tmp_path, ws):
    """Without its first file, a capture has no snapshot: diffs are dropped and counted."""
    s = convert([ws / "usdm_btcusdt_20240719.gz"], tmp_path / "o.parquet")
    assert s.kinds["depth"] == 0 and s.kinds["snapshot"] == 0
    assert s.issues["depth_unsynced"] == 5696
    assert s.kinds["quote"] > 0 and s.kinds["trade"] > 0


# ---------------------------------------------------------------- hostile captures


def test_one_corrupt_id_far_ahead_does_not_drop_the_rest(tmp_path):
    """One bookTicker ``u``, trade ``t`` or aggTrade ``a`` far in the future: counted ``corrupt_id``;
    the messages after it are kept (before: every later message was a "duplicate")."""
    lines = [ws_ticker(T0, 100), ws_ticker(T0 + MS, 10**15)]  # the corrupt one (kept, its prices are fine)
    lines += [ws_ticker(T0 + (2 + i) * MS, 101 + i) for i in range(20)]
    lines += [ws_trade(T0 + 30 * MS, 5), ws_trade(T0 + 31 * MS, 9 * 10**17)]
    lines += [ws_trade(T0 + (32 + i) * MS, 6 + i) for i in range(10)]
    lines += [ws_ticker(T0 + 50 * MS, 120)]  # a real duplicate is still one
    f = write_lines(tmp_path / "cap.txt", lines)
    s = convert([f], tmp_path / "o.parquet")
    assert s.kinds["quote"] == 22 and s.kinds["trade"] == 12
    assert s.issues == {"corrupt_id": 2, "duplicate": 1}
    assert s.notes["corrupt_id"] == [
        "cap.txt:2: bookTicker update id u 1000000000000000, then 101",
        "cap.txt:24: trade id t 900000000000000000, then 6",
    ]
    assert s.notes["duplicate"] == ["cap.txt:35"]
    assert "corrupt_id" in ISSUE_HELP


def test_corrupt_agg_id_and_span(tmp_path):
    lines = [ws_agg(T0, 10, 1, 3), ws_agg(T0 + MS, 10**16, 4, 4)]
    lines += [ws_agg(T0 + (2 + i) * MS, 11 + i, 5 + i, 5 + i) for i in range(5)]
    lines += [ws_agg(T0 + 10 * MS, 20, 10, 10**15)]  # f..l spans a billion trades: corrupt
    lines += [ws_trade(T0 + 11 * MS, 11)]  # not inside the stored aggTrades' ids: kept
    f = write_lines(tmp_path / "cap.txt", lines)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"corrupt_id": 2} and s.kinds["trade"] == 9


@pytest.mark.parametrize(
    "line, key",
    [
        (ws_ticker(T0 + 2 * MS, 99999999999999999999), "non_numeric"),  # 20-digit id: not an int64
        (f"99999999999999999999 {ws_ticker(T0, 3).split(' ', 1)[1]}", "bad_timestamp"),  # 20-digit local time
        (ws_trade(T0 + 2 * MS, 7).replace(f'"T":{(T0 + 2 * MS) // MS}', '"T":99999999999999'), "non_numeric"),
        (ws_ticker(T0 + 2 * MS, 4, b="1e400"), "non_numeric"),  # beyond float64
        (ws_ticker(T0 + 2 * MS, 4, b="-0.0"), "non_positive_price"),
    ],
)
def test_numbers_at_their_limits_counted(tmp_path, line, key):
    f = write_lines(tmp_path / "cap.txt", [ws_ticker(T0, 1), line, ws_ticker(T0 + 3 * MS, 10)])
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {key: 1} and s.notes[key][0].startswith("cap.txt:2")
    ev = store.read_events(tmp_path / "o.parquet")
    assert len(ev) == 2 and ev["local_ts"].max() < T0 + 10**9 and ev["exch_ts"].max() < T0 + 10**9


def test_binary_garbage_and_a_huge_line(tmp_path, run_cli, monkeypatch):
    f = tmp_path / "cap.txt"
    f.write_bytes(ws_ticker(T0, 1).encode() + b"\n" + f"{T0 + 1} ".encode() + b'{"stream":\xff\xfe\x00}\n')
    s = convert([f], tmp_path / "o.parquet")
    assert s.rows == 1 and s.issues == {"unknown_message": 1}
    monkeypatch.setattr(binance_ws, "MAX_LINE", 1 << 10)
    big = tmp_path / "big.txt"
    big.write_bytes(ws_ticker(T0, 1).encode() + b"\n" + f"{T0 + 1} ".encode() + b"{" + b"x" * (1 << 23))
    with pytest.raises(UserError, match=r"big\.txt:2: line longer than"):
        convert([big], tmp_path / "o.parquet")


def test_empty_capture_is_zero_events(tmp_path):
    f = tmp_path / "cap.gz"
    f.write_bytes(gzip.compress(b""))
    s = convert([f], tmp_path / "o.parquet", fmt="binance-ws")
    assert s.rows == 0 and s.issues == {"empty_file": 1}
