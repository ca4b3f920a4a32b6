"""Each reader on the real samples in ../shared/data (skipped when absent)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from avmm.data import store
from avmm.data.convert import convert, detect_format
from avmm.events import (
    BUY,
    CLEAR,
    DEPTH,
    F_EXCH_TS,
    F_LAST_IN_BATCH,
    QUOTE,
    SELL,
    SNAPSHOT,
    TRADE,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
WS = DATA / "binance_ws_capture"
TARDIS = DATA / "tardis_binance-futures_btcusdt_2020-02-22"
LOBSTER = DATA / "lobster_amzn_2012-06-21_level1"

needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data samples not present")


def _common_checks(ev, lo, hi):
    assert len(ev) > 0
    assert np.all(np.diff(ev["local_ts"]) >= 0), "sorted by local_ts"
    q = ev[ev["kind"] == QUOTE]
    t = ev[ev["kind"] == TRADE]
    assert len(q) > 0 and len(t) > 0
    assert np.all((q["px"] > lo) & (q["px"] < hi) & (q["px2"] > lo) & (q["px2"] < hi))
    assert np.all(q["px"] < q["px2"])
    assert np.all((t["px"] > lo) & (t["px"] < hi) & (t["qty"] > 0))
    assert set(np.unique(t["side"])) <= {BUY, SELL}
    assert np.all(ev["exch_ts"] > 0)
    return q, t


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


@needs_data
def test_detect_formats():
    assert detect_format(WS / "spot_btcusdt_20240808.gz") == "binance-ws"
    assert detect_format(TARDIS / "binance-futures_quotes_2020-02-22_BTCUSDT.csv") == "tardis"
    assert detect_format(LOBSTER / "AMZN_2012-06-21_34200000_57600000_message_1.csv") == "lobster"


@needs_data
def test_binance_ws_spot_two_files(tmp_path):
    out = tmp_path / "spot.parquet"
    s = convert([WS / "spot_btcusdt_20240809.gz", WS / "spot_btcusdt_20240808.gz"], out)
    ev = store.read_events(out)
    assert s.rows == len(ev) and s.symbol == "BTCUSDT"
    q, t = _common_checks(ev, 50_000, 70_000)
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


@needs_data
def test_binance_ws_usdm(tmp_path):
    out = tmp_path / "um.parquet"
    s = convert([WS / "usdm_btcusdt_20240718.gz", WS / "usdm_btcusdt_20240719.gz"], out)
    ev = store.read_events(out)
    q, t = _common_checks(ev, 50_000, 70_000)
    assert np.all(q["flags"] & F_EXCH_TS)  # USD-M bookTicker has T
    assert s.issues.get("seq_gap", 0) == 0
    assert s.kinds["depth"] > 100_000
    assert store.read_meta(out)["tick_size"] == 0.1
    assert _book_check(ev) > 1000


@needs_data
def test_binance_ws_second_file_alone_waits_for_snapshot(tmp_path):
    """Without its first file, a capture has no snapshot: diffs are dropped and counted."""
    s = convert([WS / "usdm_btcusdt_20240719.gz"], tmp_path / "o.parquet")
    assert s.kinds["depth"] == 0 and s.kinds["snapshot"] == 0
    assert s.issues["depth_unsynced"] == 5696
    assert s.kinds["quote"] > 0 and s.kinds["trade"] > 0


@needs_data
def test_tardis_quotes_and_trades_merged(tmp_path):
    out = tmp_path / "t.parquet"
    s = convert([TARDIS], out)
    ev = store.read_events(out)
    q, t = _common_checks(ev, 8_000, 11_000)
    assert len(q) == 9999 and len(t) == 9999
    assert np.all(ev["flags"] & F_EXCH_TS)
    assert np.all(ev["local_ts"] >= ev["exch_ts"])  # tardis receive time after exchange time
    assert np.all(t["seq"] > 0)
    assert s.issues == {}
    assert store.read_meta(out)["symbol"] == "BTCUSDT"


@needs_data
def test_lobster_level1(tmp_path):
    out = tmp_path / "l.parquet"
    s = convert([LOBSTER / "AMZN_2012-06-21_34200000_57600000_message_1.csv"], out)
    ev = store.read_events(out)
    q, t = _common_checks(ev, 200, 250)
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


def test_binance_archive_zip(tmp_path):
    """Archive CSVs (headerless spot, header USD-M), zipped as Binance publishes them."""
    spot = tmp_path / "BTCUSDT-trades-2024-08-01.zip"
    with zipfile.ZipFile(spot, "w") as z:
        z.writestr(
            "BTCUSDT-trades-2024-08-01.csv",
            "1,65000.10,0.001,65.0001,1722470400000,true,true\n"
            "2,65000.20,0.002,130.0004,1722470400500,false,true\n"
            "2,65000.20,0.002,130.0004,1722470400500,false,true\n",
        )
    bt = tmp_path / "BTCUSDT-bookTicker-2024-08-01.zip"
    with zipfile.ZipFile(bt, "w") as z:
        z.writestr(
            "BTCUSDT-bookTicker-2024-08-01.csv",
            "update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time\n"
            "10,64999.9,1.5,65000.0,2.0,1722470400100,1722470400105\n"
            "11,64999.8,1.0,65000.0,2.5,1722470400200,1722470400204\n",
        )
    agg = tmp_path / "BTCUSDT-aggTrades-2024-08-01.csv"
    agg.write_text(
        "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"
        "7,65000.0,0.010,1,3,1722470400300,true\n"
    )
    out = tmp_path / "a.parquet"
    s = convert([spot, bt, agg], out)
    ev = store.read_events(out)
    assert s.formats == ["binance-archive"] and s.symbol == "BTCUSDT"
    assert s.kinds["trade"] == 3 and s.kinds["quote"] == 2
    assert s.issues == {"duplicate": 1}
    assert np.all(np.diff(ev["local_ts"]) >= 0)
    t = ev[ev["kind"] == TRADE]
    assert list(t["side"]) == [SELL, SELL, BUY]  # is_buyer_maker => aggressor SELL
    assert t["local_ts"][0] == 1722470400000 * 10**6
    q = ev[ev["kind"] == QUOTE]
    assert q["exch_ts"][0] == 1722470400100 * 10**6 and q["local_ts"][0] == 1722470400105 * 10**6
