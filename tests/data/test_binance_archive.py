"""Binance public data archives (`avmm.data.readers.binance_archive`): zipped and plain CSVs."""

from __future__ import annotations

import zipfile

import numpy as np

from avmm.data import store
from avmm.data.convert import convert
from avmm.events import (
    BUY,
    QUOTE,
    SELL,
    TRADE,
)


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
