"""The conversion pipeline (`avmm.data.convert`): format detection of the real samples."""

from __future__ import annotations

from avmm.data.convert import detect_format


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
