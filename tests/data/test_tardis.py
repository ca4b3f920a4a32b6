"""tardis.dev files (`avmm.data.readers.tardis`): ``incremental_book_L2`` and ``book_snapshot_N``.

Small hand-written files in tardis.dev's column layout (plain and gzip), checked row by row: kinds,
sides, prices, sizes, both clocks (microseconds -> ns), flags, levels; the CLEAR before each
snapshot; level removals; bad rows counted by kind and skipped; format detection; a file without a
usable row is a user error. And the real quotes + trades sample, merged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avmm.data import store
from avmm.data.convert import convert, detect_format
from avmm.data.issues import Counters
from avmm.data.readers import tardis
from avmm.errors import UserError
from avmm.events import (
    BUY,
    CLEAR,
    DEPTH,
    EVENT_DTYPE,
    F_DERIVED,
    F_EXCH_TS,
    F_LAST_IN_BATCH,
    QUOTE,
    SELL,
    SNAPSHOT,
)
from tests.builders import (
    L0,
    L1,
    L2,
    L2_HDR,
    L2_SAMPLE,
    L3,
    L4,
    SNAP_B1,
    SNAP_B2,
    US,
    check_sample_events,
    event_rows,
    l2_row,
    snap_hdr,
    snap_row,
    write_lines,
)
from tests.builders import TARDIS_T0 as T0

X = F_EXCH_TS
XL = F_EXCH_TS | F_LAST_IN_BATCH
XD = F_EXCH_TS | F_DERIVED  # a QUOTE derived from the depth book by the converter


def table(ev: np.ndarray) -> list[tuple]:
    """(kind, side, px, qty, px2, qty2, level, flags, exch_ts, local_ts) per row."""
    return event_rows(ev, "kind", "side", "px", "qty", "px2", "qty2", "level", "flags", "exch_ts", "local_ts")


def read(path: Path, **kw) -> tuple[np.ndarray, np.ndarray, Counters]:
    """The reader's own output (source order, line numbers)."""
    c = Counters()
    evs, lns = [], []
    for ev, lines, _ in tardis.read_tardis(path, c, **kw):
        evs.append(ev)
        lns.append(lines)
    if not evs:
        return np.zeros(0, dtype=EVENT_DTYPE), np.zeros(0, dtype=np.int64), c
    return np.concatenate(evs), np.concatenate(lns), c


# ---------------------------------------------------------------- incremental_book_L2


INC_EXPECTED = [
    (CLEAR, 0, 0.0, 0.0, 0.0, 0.0, -1, X, T0 * US, L0 * US),
    (SNAPSHOT, SELL, 100.5, 1.0, 0.0, 0.0, -1, X, T0 * US, L0 * US),
    (SNAPSHOT, SELL, 100.6, 2.0, 0.0, 0.0, -1, X, T0 * US, L0 * US),
    (SNAPSHOT, BUY, 100.0, 3.0, 0.0, 0.0, -1, X, T0 * US, L0 * US),
    (SNAPSHOT, BUY, 99.9, 4.0, 0.0, 0.0, -1, XL, T0 * US, L0 * US),
    (DEPTH, BUY, 100.1, 0.5, 0.0, 0.0, -1, X, (T0 + 1_000) * US, L1 * US),
    (DEPTH, SELL, 100.5, 0.0, 0.0, 0.0, -1, XL, (T0 + 1_000) * US, L1 * US),
    (DEPTH, SELL, 100.7, 1.25, 0.0, 0.0, -1, XL, (T0 + 2_000) * US, L2 * US),
    (CLEAR, 0, 0.0, 0.0, 0.0, 0.0, -1, X, (T0 + 60_000_000) * US, L3 * US),
    (SNAPSHOT, BUY, 100.2, 1.0, 0.0, 0.0, -1, X, (T0 + 60_000_000) * US, L3 * US),
    (SNAPSHOT, SELL, 100.4, 1.0, 0.0, 0.0, -1, XL, (T0 + 60_000_000) * US, L3 * US),
    (DEPTH, BUY, 100.2, 0.0, 0.0, 0.0, -1, XL, (T0 + 60_001_000) * US, L4 * US),
]


INC_STORE = (
    INC_EXPECTED[:5]
    + [(QUOTE, 0, 100.0, 3.0, 100.5, 1.0, -1, XD, T0 * US, L0 * US)]
    + INC_EXPECTED[5:7]
    + [(QUOTE, 0, 100.1, 0.5, 100.6, 2.0, -1, XD, (T0 + 1_000) * US, L1 * US)]
    + INC_EXPECTED[7:11]
    + [(QUOTE, 0, 100.2, 1.0, 100.4, 1.0, -1, XD, (T0 + 60_000_000) * US, L3 * US)]
    + INC_EXPECTED[11:]
)


@pytest.mark.parametrize("gz", [False, True])
def test_incremental_rows_exact(tmp_path, gz):
    f = write_lines(
        tmp_path / ("binance-futures_incremental_book_L2_2020-02-22_BTCUSDT.csv" + (".gz" if gz else "")), L2_SAMPLE
    )
    assert tardis.detect_kind(f) == "incremental_book_L2" and detect_format(f) == "tardis"
    ev, lines, c = read(f)
    assert table(ev) == INC_EXPECTED
    # each CLEAR carries the line of the first snapshot row it precedes
    assert lines.tolist() == [2, 2, 3, 4, 5, 6, 7, 8, 9, 9, 10, 11]
    assert c.issues == {}
    out = tmp_path / "o.parquet"
    s = convert([f], out)
    assert s.formats == ["tardis"] and s.symbol == "BTCUSDT" and s.issues == {"derived_quote": 3}
    # the reader gives no best bid/ask (QUOTE) rows; the converter derives them from the book
    assert s.kinds == {"quote": 3, "trade": 0, "depth": 4, "snapshot": 6, "clear": 2}
    assert s.notes["derived_quote"] == [f"{f.name}:5", f"{f.name}:7", f"{f.name}:10"]
    assert table(store.read_events(out)) == INC_STORE  # already in local-time order


def test_incremental_snapshot_runs_and_batches(tmp_path):
    """Two snapshots back to back (different local times) each get a CLEAR; a diff sharing the
    snapshot's local time ends its own batch; rows sharing a local time form one batch."""
    a, b, c_ = T0 + 10, T0 + 20, T0 + 30
    f = write_lines(
        tmp_path / "l2.csv",
        [
            L2_HDR,
            l2_row(T0, a, True, "bid", "10.0", "1"),
            l2_row(T0, a, True, "ask", "10.5", "1"),
            l2_row(T0 + 5, b, True, "bid", "10.1", "2"),  # a new snapshot: new local time
            l2_row(T0 + 5, b, True, "ask", "10.4", "2"),
            l2_row(T0 + 5, b, False, "bid", "10.2", "3"),  # diff at the snapshot's local time
            l2_row(T0 + 6, c_, False, "bid", "10.2", "0"),
            l2_row(T0 + 6, c_, False, "ask", "10.3", "1"),
        ],
    )
    ev, _, cnt = read(f)
    got = [
        (int(r["kind"]), int(r["side"]), float(r["px"]), float(r["qty"]), int(r["flags"]), int(r["local_ts"]))
        for r in ev
    ]
    assert got == [
        (CLEAR, 0, 0.0, 0.0, X, a * US),
        (SNAPSHOT, BUY, 10.0, 1.0, X, a * US),
        (SNAPSHOT, SELL, 10.5, 1.0, XL, a * US),
        (CLEAR, 0, 0.0, 0.0, X, b * US),
        (SNAPSHOT, BUY, 10.1, 2.0, X, b * US),
        (SNAPSHOT, SELL, 10.4, 2.0, XL, b * US),
        (DEPTH, BUY, 10.2, 3.0, XL, b * US),
        (DEPTH, BUY, 10.2, 0.0, X, c_ * US),
        (DEPTH, SELL, 10.3, 1.0, XL, c_ * US),
    ]
    assert cnt.issues == {}


def test_incremental_chunking_does_not_change_rows(tmp_path):
    """Batches and snapshot runs that straddle the CSV blocks come out the same as in one block."""
    rows = [L2_HDR]
    t = T0
    for m in range(40):
        t += 1_000
        snap = m in (0, 13, 14, 30)
        for i in range(1 + m % 4):
            side = "bid" if (m + i) % 2 else "ask"
            rows.append(
                l2_row(
                    t,
                    t + 50,
                    snap,
                    side,
                    f"{100 + (i + 1) * (1 if side == 'ask' else -1) * 0.1:.1f}",
                    "0" if (m + i) % 5 == 0 and not snap else f"{i + 1}.5",
                )
            )
    f = write_lines(tmp_path / "l2.csv", rows)
    ref, ref_lines, ref_c = read(f)
    assert np.count_nonzero(ref["kind"] == CLEAR) == 4
    assert len(ref) == len(rows) - 1 + 4
    for bs in (100, 257, 1000):
        ev, lines, c = read(f, block_size=bs)
        assert table(ev) == table(ref) and lines.tolist() == ref_lines.tolist() and c.issues == ref_c.issues == {}


@pytest.mark.parametrize("gz", [False, True])
def test_incremental_bad_rows_counted_and_skipped(tmp_path, gz):
    a, b = T0 + 100, T0 + 200
    f = write_lines(
        tmp_path / ("l2.csv.gz" if gz else "l2.csv"),
        [
            L2_HDR,
            l2_row(T0, a, True, "bid", "100.0", "3"),  # 2
            l2_row(T0, a, True, "bid", "abc", "3"),  # 3 non-numeric price (inside the snapshot run)
            l2_row(T0, a, True, "ask", "100.5", "1"),  # 4
            l2_row(T0 + 50, b, False, "bid", "NaN", "1"),  # 5 NaN price
            l2_row(T0 + 50, b, False, "bid", "99.9", "-2"),  # 6 negative amount
            l2_row(T0 + 50, b, False, "ask", "100.6", "nan"),  # 7 NaN amount
            l2_row(T0 + 50, b, False, "ask", "0", "1"),  # 8 zero price
            l2_row(T0 + 50, b, False, "buy", "100.7", "1"),  # 9 unknown book side
            l2_row(T0 + 50, b, False, "ask", "100.6", ""),  # 10 empty amount
            f"binance-futures,BTCUSDT,x,{b},false,ask,100.6,1",  # 11 bad timestamp
            l2_row(T0 + 50, b, False, "ask", "100.6", "2"),  # 12 good
        ],
    )
    ev, lines, c = read(f)
    assert c.issues == {
        "non_numeric": 2,
        "non_finite_price": 1,
        "non_positive_size": 1,
        "non_finite_size": 1,
        "non_positive_price": 1,
        "malformed_row": 1,
        "bad_timestamp": 1,
    }
    assert c.notes["non_numeric"] == ["l2.csv" + (".gz" if gz else "") + ":3", f.name + ":10"]
    assert c.notes["non_finite_price"] == [f"{f.name}:5"] and c.notes["non_positive_size"] == [f"{f.name}:6"]
    assert c.notes["non_finite_size"] == [f"{f.name}:7"] and c.notes["non_positive_price"] == [f"{f.name}:8"]
    assert c.notes["malformed_row"] == [f"{f.name}:9"] and c.notes["bad_timestamp"] == [f"{f.name}:11"]
    assert table(ev) == [
        (CLEAR, 0, 0.0, 0.0, 0.0, 0.0, -1, X, T0 * US, a * US),  # one CLEAR: the run is not split
        (SNAPSHOT, BUY, 100.0, 3.0, 0.0, 0.0, -1, X, T0 * US, a * US),
        (SNAPSHOT, SELL, 100.5, 1.0, 0.0, 0.0, -1, XL, T0 * US, a * US),
        (DEPTH, SELL, 100.6, 2.0, 0.0, 0.0, -1, XL, (T0 + 50) * US, b * US),
    ]
    assert lines.tolist() == [2, 2, 4, 12]
    s = convert([f], tmp_path / "o.parquet")  # the same counts reach the summary and the store
    # (+ one QUOTE derived after the snapshot; the diff at b is behind the best ask)
    assert s.issues == {**c.issues, "derived_quote": 1} and s.rows == 5 and s.kinds["quote"] == 1
    assert store.read_meta(tmp_path / "o.parquet")["counters"] == s.issues


def test_incremental_other_symbol_counted(tmp_path):
    f = write_lines(tmp_path / "l2.csv", L2_SAMPLE[:6] + [L2_SAMPLE[6].replace("BTCUSDT", "ETHUSDT")] + L2_SAMPLE[7:])
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"other_symbol": 1, "derived_quote": 3} and s.kinds["depth"] == 3
    # a file with rows of another symbol only is not an error: nothing of this symbol in it
    s = convert([f], tmp_path / "o2.parquet", symbol="XRPUSDT")
    assert s.rows == 0 and s.issues == {"other_symbol": len(L2_SAMPLE) - 1}


# ---------------------------------------------------------------- book_snapshot_N


def snap_expected(ts_us, lt_us, asks, bids):
    """CLEAR, bid levels, ask levels (F_LAST_IN_BATCH on the last), QUOTE of the top level."""
    e, lt = ts_us * US, lt_us * US
    rows = [(CLEAR, 0, 0.0, 0.0, 0.0, 0.0, -1, X, e, lt)]
    rows += [(SNAPSHOT, BUY, float(p), float(q), 0.0, 0.0, i, X, e, lt) for i, (p, q) in enumerate(bids)]
    rows += [(SNAPSHOT, SELL, float(p), float(q), 0.0, 0.0, i, X, e, lt) for i, (p, q) in enumerate(asks)]
    k = rows[-1]
    rows[-1] = k[:7] + (XL,) + k[8:]
    if asks and bids:
        rows.append(
            (QUOTE, 0, float(bids[0][0]), float(bids[0][1]), float(asks[0][0]), float(asks[0][1]), -1, X, e, lt)
        )
    return rows


@pytest.mark.parametrize("gz", [False, True])
def test_book_snapshot_25_rows_exact(tmp_path, gz):
    f = write_lines(
        tmp_path / ("binance-futures_book_snapshot_25_2020-02-22_BTCUSDT.csv" + (".gz" if gz else "")),
        [
            snap_hdr(25),
            snap_row(T0, T0 + 100, 25, *SNAP_B1),
            snap_row(T0 + 100_000, T0 + 100_150, 25, *SNAP_B2),
        ],
    )
    assert tardis.detect_kind(f) == "book_snapshot" and detect_format(f) == "tardis"
    ev, lines, c = read(f)
    exp = snap_expected(T0, T0 + 100, *SNAP_B1) + snap_expected(T0 + 100_000, T0 + 100_150, *SNAP_B2)
    assert table(ev) == exp
    assert lines.tolist() == [2] * 7 + [3] * 6
    assert c.issues == {}
    out = tmp_path / "o.parquet"
    s = convert([f], out)
    assert s.kinds == {"quote": 2, "trade": 0, "depth": 0, "snapshot": 9, "clear": 2} and s.issues == {}
    assert table(store.read_events(out)) == exp


def test_book_snapshot_5_all_levels_and_one_sided(tmp_path):
    """book_snapshot_5: every level given; a one-sided book gives no QUOTE row."""
    asks = [(f"{100.5 + i / 10:.1f}", str(i + 1)) for i in range(5)]
    bids = [(f"{100.0 - i / 10:.1f}", str(i + 2)) for i in range(5)]
    f = write_lines(
        tmp_path / "binance-futures_book_snapshot_5_2020-02-22_BTCUSDT.csv",
        [
            snap_hdr(5),
            snap_row(T0, T0 + 7, 5, asks, bids),
            snap_row(T0 + 9, T0 + 17, 5, [], bids[:2]),  # asks side empty
        ],
    )
    ev, _, c = read(f)
    assert table(ev) == snap_expected(T0, T0 + 7, asks, bids) + snap_expected(T0 + 9, T0 + 17, [], bids[:2])
    assert c.issues == {}
    assert ev["level"][ev["kind"] == SNAPSHOT].tolist() == list(range(5)) * 2 + [0, 1]


@pytest.mark.parametrize("gz", [False, True])
def test_book_snapshot_bad_rows_counted_and_skipped(tmp_path, gz):
    n = 3
    good = ([("100.5", "1"), ("100.6", "3")], [("100.0", "2"), ("99.9", "4")])
    f = write_lines(
        tmp_path / ("s.csv.gz" if gz else "s.csv"),
        [
            snap_hdr(n),
            snap_row(T0, T0 + 1, n, *good),  # 2 good
            snap_row(T0, T0 + 2, n, [("abc", "1")], good[1]),  # 3 non-numeric price
            snap_row(T0, T0 + 3, n, good[0], [("100.0", "2"), ("99.9", "-4")]),  # 4 negative amount
            snap_row(T0, T0 + 4, n, [("100.5", "1"), ("NaN", "3")], good[1]),  # 5 NaN price
            snap_row(T0, T0 + 5, n, [("100.5", "1"), ("100.6", "nan")], good[1]),  # 6 NaN amount
            snap_row(T0, T0 + 6, n, [("100.5", "1"), ("100.6", "")], good[1]),  # 7 half-empty level
            snap_row(T0, T0 + 7, n, [("100.5", "1"), ("0", "3")], good[1]),  # 8 zero price
            snap_row(T0, T0 + 8, n, [("99.5", "1")], [("100.0", "2")]),  # 9 crossed: quote skipped
            snap_row(T0, T0 + 9, n, *good),  # 10 good
        ],
    )
    ev, lines, c = read(f)
    name = f.name
    assert c.issues == {
        "non_numeric": 2,
        "non_positive_size": 1,
        "non_finite_price": 1,
        "non_finite_size": 1,
        "non_positive_price": 1,
        "crossed_book": 1,
    }
    assert c.notes == {
        "non_numeric": [f"{name}:3", f"{name}:7"],
        "non_positive_size": [f"{name}:4"],
        "non_finite_price": [f"{name}:5"],
        "non_finite_size": [f"{name}:6"],
        "non_positive_price": [f"{name}:8"],
        "crossed_book": [f"{name}:9"],
    }
    crossed = snap_expected(T0, T0 + 8, [("99.5", "1")], [("100.0", "2")])[:-1]  # levels kept, no QUOTE
    assert table(ev) == snap_expected(T0, T0 + 1, *good) + crossed + snap_expected(T0, T0 + 9, *good)
    assert sorted(set(lines.tolist())) == [2, 9, 10]
    assert np.all(np.isfinite(ev["px"])) and np.all(ev["qty"][ev["kind"] == SNAPSHOT] > 0)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == c.issues and s.kinds["quote"] == 2 and s.kinds["clear"] == 3


# ---------------------------------------------------------------- unusable files


def test_all_bad_snapshot_rows_is_a_user_error(tmp_path):
    f = write_lines(
        tmp_path / "s.csv",
        [
            snap_hdr(2),
            f"binance-futures,BTCUSDT,{T0},{T0 + 1},x,1,100,1,,,,",
            f"binance-futures,BTCUSDT,{T0},{T0 + 2},101,-1,100,1,,,,",
        ],
    )
    with pytest.raises(UserError, match=r"s\.csv:2: no usable row .*non_numeric, non_positive_size"):
        convert([f], tmp_path / "o.parquet")
    # a header-only file is empty, not unusable
    e = write_lines(tmp_path / "e.csv", [L2_HDR])
    assert convert([e], tmp_path / "e.parquet").rows == 0


# ---------------------------------------------------------------- the real sample


def test_tardis_quotes_and_trades_merged(tmp_path, shared_data):
    out = tmp_path / "t.parquet"
    s = convert([shared_data / "tardis_binance-futures_btcusdt_2020-02-22"], out)
    ev = store.read_events(out)
    q, t = check_sample_events(ev, 8_000, 11_000)
    assert len(q) == 9999 and len(t) == 9999
    assert np.all(ev["flags"] & F_EXCH_TS)
    assert np.all(ev["local_ts"] >= ev["exch_ts"])  # tardis receive time after exchange time
    assert np.all(t["seq"] > 0)
    assert s.issues == {}
    assert store.read_meta(out)["symbol"] == "BTCUSDT"
