"""Binance public data archives (`avmm.data.readers.binance_archive`): zipped and plain CSVs."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from avmm.data import store
from avmm.data.convert import convert
from avmm.errors import UserError
from avmm.events import (
    BUY,
    QUOTE,
    SELL,
    TRADE,
)
from tests.builders import assert_one_line_error


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


# ---------------------------------------------------------------- hostile archives

TRADE_ROW = "1,65000.10,0.001,65.0001,1722470400000,true,true\n"


def _zip(path, member, text):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(member, text)
    return path


def test_archive_times_and_ids_at_their_limits(tmp_path):
    f = tmp_path / "BTCUSDT-trades-2024-08-01.csv"
    f.write_text(
        TRADE_ROW
        + "2,65000.2,0.002,130.0,99999999999999,false,true\n"  # ms past 2262: overflows ns
        + "3,65000.2,0.002,130.0,9300000000000000,false,true\n"  # µs past 2262
        + "99999999999999999999,65000.2,0.002,130.0,1722470400001,false,true\n"  # 20-digit id
        + "5,65000.2,0.002,130.0,1722470400002,false,true\n"
    )
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"bad_timestamp": 2, "non_numeric": 1} and s.rows == 2
    assert s.notes["bad_timestamp"] == [f"{f.name}:2", f"{f.name}:3"] and s.notes["non_numeric"] == [f"{f.name}:4"]


def test_zip_holding_another_kind_is_one_line(tmp_path, run_cli):
    z = _zip(tmp_path / "BTCUSDT-trades-2024-08-01.zip", "BTCUSDT-bookTicker-2024-08-01.csv", TRADE_ROW)
    with pytest.raises(UserError, match=r"holds BTCUSDT-bookTicker-2024-08-01\.csv, not a BTCUSDT trades file"):
        convert([z], tmp_path / "o.parquet")
    # a member named right but holding bookTicker rows; a header of another kind
    z2 = _zip(
        tmp_path / "BTCUSDT-trades-2024-08-02.zip",
        "BTCUSDT-trades-2024-08-02.csv",
        "10,64999.9,1.5,65000.0,2.0,1722470400100,1722470400105\n",
    )
    with pytest.raises(UserError, match=r"trades-2024-08-02\.zip:1: not a Binance trades archive"):
        convert([z2], tmp_path / "o.parquet")
    z3 = _zip(
        tmp_path / "BTCUSDT-aggTrades-2024-08-03.zip",
        "BTCUSDT-aggTrades-2024-08-03.csv",
        "update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time\n",
    )
    r = run_cli("data", "convert", z3, "-o", tmp_path / "o.parquet")
    assert_one_line_error(r, "aggTrades-2024-08-03.zip:1", "a bookTicker header")


def test_truncated_or_corrupt_zip_is_one_line(tmp_path, run_cli):
    z = _zip(tmp_path / "BTCUSDT-trades-2024-08-01.zip", "BTCUSDT-trades-2024-08-01.csv", TRADE_ROW * 5000)
    data = z.read_bytes()
    cut = tmp_path / "BTCUSDT-trades-2024-08-02.zip"
    cut.write_bytes(data[: len(data) // 2])
    bad = tmp_path / "BTCUSDT-trades-2024-08-03.zip"
    bad.write_bytes(data[:100] + b"\0" * 50 + data[150:])  # damaged deflate data: bad CRC
    for f in (cut, bad):
        r = run_cli("data", "convert", f, "-o", tmp_path / "o.parquet")
        assert_one_line_error(r, f.name)
        assert not (tmp_path / "o.parquet").exists()


def test_archive_header_without_rows_is_zero_events_with_a_note(tmp_path):
    f = tmp_path / "BTCUSDT-aggTrades-2024-08-01.csv"
    f.write_text("agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n")
    s = convert([f], tmp_path / "o.parquet")
    assert s.rows == 0 and s.issues == {"empty_file": 1} and s.notes["empty_file"] == [f"{f.name}:2: no data rows"]
