"""The conversion pipeline (`avmm.data.convert`): format detection of the real samples; the output
and the options checked before anything is read."""

from __future__ import annotations

import os

import pytest

from avmm.data.convert import convert, detect_format
from avmm.errors import UserError
from tests.builders import QUOTES_HDR, assert_one_line_error, quote_rows, write_lines


def test_detect_formats(shared_data):
    assert detect_format(shared_data / "binance_ws_capture" / "spot_btcusdt_20240808.gz") == "binance-ws"
    assert (
        detect_format(
            shared_data / "tardis_binance-futures_btcusdt_2020-02-22" / "binance-futures_quotes_2020-02-22_BTCUSDT.csv"
        )
        == "tardis"
    )
    assert (
        detect_format(
            shared_data / "lobster_amzn_2012-06-21_level1" / "AMZN_2012-06-21_34200000_57600000_message_1.csv"
        )
        == "lobster"
    )


# ---------------------------------------------------------------- outputs and options checked up front


@pytest.fixture
def quotes(tmp_path):
    return write_lines(tmp_path / "q.csv", [QUOTES_HDR] + quote_rows(5))


def test_output_checked_before_reading(tmp_path, quotes, run_cli):
    with pytest.raises(UserError, match="is a folder"):
        convert([quotes], tmp_path)
    with pytest.raises(UserError, match="is one of the inputs"):
        convert([quotes], quotes)
    with pytest.raises(UserError, match="does not exist"):
        convert([quotes], tmp_path / "nowhere" / "o.parquet")
    assert quotes.read_text().startswith(QUOTES_HDR)  # the input is untouched
    r = run_cli("data", "convert", quotes, "-o", tmp_path)
    assert_one_line_error(r, "-o", "is a folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(tmp_path, quotes):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    with pytest.raises(UserError, match="not writable"):
        convert([quotes], ro / "o.parquet")


@pytest.mark.parametrize("w", [float("inf"), 1e300, -1.0, float("nan")])
def test_reorder_window_at_its_limits(tmp_path, quotes, w):
    """Before: inf crashed (OverflowError converting it to ns); huge windows held every row."""
    with pytest.raises(UserError, match="--reorder-window-ms must be between 0 and"):
        convert([quotes], tmp_path / "o.parquet", reorder_window_ms=w)


# ---------------------------------------------------------------- the market in the metadata


def _tardis(path, exchange):
    rows = [r.replace("x,", f"{exchange},", 1) for r in quote_rows(5)]
    return write_lines(path, [QUOTES_HDR, *rows])


def _archive(path, text):
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr(path.stem + ".csv", text)
    return path


@pytest.mark.parametrize(
    ("make", "market"),
    [
        (lambda d: [_tardis(d / "q.csv", "binance-futures")], "perpetual"),
        (lambda d: [_tardis(d / "q.csv", "binance")], "spot"),
        (lambda d: [_tardis(d / "q.csv", "deribit")], "perpetual"),
        (
            lambda d: [_archive(d / "BTCUSDT-trades-2024-08-01.zip", "1,65000.1,0.001,65.0,1722470400000,true,true\n")],
            "spot",
        ),
        (
            lambda d: [
                _archive(
                    d / "BTCUSDT-trades-2024-08-01.zip",
                    "id,price,qty,quote_qty,time,is_buyer_maker\n1,65000.1,0.001,65.0,1722470400000,true\n",
                )
            ],
            "perpetual",
        ),
        (
            lambda d: [_archive(d / "BTCUSDT-trades-2024-08-01.zip", "1,65000.1,0.001,65.0,1722470400000,true\n")],
            "perpetual",
        ),
        (
            lambda d: [
                _archive(d / "BTCUSDT-trades-2024-08-01.zip", "1,65000.1,0.001,65.0,1722470400000,true,true\n"),
                _tardis(d / "q.csv", "binance-futures"),
            ],
            None,
        ),
    ],
)
def test_convert_records_the_market(tmp_path, make, market):
    """``market`` in the store's metadata (what ``backtest.market = "auto"`` reads): from the
    tardis exchange, the archive's columns (USD-M: a header, no is_best_match), the capture's
    messages; None when the files disagree."""
    s = convert(make(tmp_path), tmp_path / "out.parquet")
    assert s.meta["market"] == market


@pytest.mark.parametrize(
    ("name", "market"),
    [("spot_btcusdt_20240808.gz", "spot"), ("usdm_btcusdt_20240808.gz", "perpetual")],
)
def test_capture_market(shared_data, name, market):
    from avmm.data.convert import market_of

    assert market_of({"binance-ws": [shared_data / "binance_ws_capture" / name]}) == market
    lob = shared_data / "lobster_amzn_2012-06-21_level1" / "AMZN_2012-06-21_34200000_57600000_message_1.csv"
    assert market_of({"lobster": [lob]}) == "spot"
