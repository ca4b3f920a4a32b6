"""Binance funding-rate files (`avmm.data.readers.binance_funding`): the monthly CSV / zip and the
REST JSON give the same series; overlapping files; every bad row is one line naming file:line."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from avmm.data.readers.binance_funding import read_funding
from avmm.errors import UserError
from tests.builders import write_lines

T0_MS = 1_722_470_400_000  # 2024-08-01 00:00 UTC
H8_MS = 8 * 3_600_000
CSV_HEADER = "calc_time,funding_interval_hours,last_funding_rate"


def csv_rows(rates, t0_ms=T0_MS):
    return [f"{t0_ms + i * H8_MS},8,{r}" for i, r in enumerate(rates)]


def funding_zip(path, rows, header=True):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(path.stem + ".csv", "\n".join(([CSV_HEADER] if header else []) + rows) + "\n")
    return path


def rest_json(path, rates, t0_ms=T0_MS, symbol="BTCUSDT"):
    doc = [
        {"symbol": symbol, "fundingTime": t0_ms + i * H8_MS, "fundingRate": f"{r:.8f}", "markPrice": "64000.1"}
        for i, r in enumerate(rates)
    ]
    path.write_text(json.dumps(doc))
    return path


RATES = [0.0001, -0.00005, 0.00012]


def test_csv_zip_and_json_give_the_same_series(tmp_path):
    a = read_funding(funding_zip(tmp_path / "BTCUSDT-fundingRate-2024-08.zip", csv_rows(RATES)))
    b = read_funding(write_lines(tmp_path / "BTCUSDT-fundingRate-2024-08.csv", [CSV_HEADER, *csv_rows(RATES)]))
    c = read_funding(rest_json(tmp_path / "funding.json", RATES))
    d = read_funding(funding_zip(tmp_path / "x.zip", csv_rows(RATES), header=False))
    for s in (a, b, c, d):
        assert s.ts_ns.tolist() == [(T0_MS + i * H8_MS) * 1_000_000 for i in range(3)]
        assert s.rate.tolist() == RATES
    assert a.symbol == b.symbol == c.symbol == "BTCUSDT"
    assert d.symbol is None
    assert a.interval_h.tolist() == [8.0] * 3
    assert np.isnan(c.interval_h).all()


def test_overlapping_files_are_joined_and_repeats_counted(tmp_path):
    f1 = write_lines(tmp_path / "BTCUSDT-fundingRate-2024-08.csv", [CSV_HEADER, *csv_rows(RATES)])
    f2 = rest_json(tmp_path / "page.json", [RATES[2], 0.0003], t0_ms=T0_MS + 2 * H8_MS)
    s = read_funding([f2, f1])
    assert s.rate.tolist() == [*RATES, 0.0003]
    assert np.all(np.diff(s.ts_ns) > 0)
    assert s.duplicates == 1


@pytest.mark.parametrize(
    ("lines", "needles"),
    [
        ([CSV_HEADER, f"{T0_MS},8,0.0001", f"{T0_MS + H8_MS},8,abc"], [".csv:3", "last_funding_rate 'abc'"]),
        ([CSV_HEADER, f"{T0_MS},8,0.0001", f"x{T0_MS},8,0.0001"], [".csv:3", "calc_time"]),
        ([CSV_HEADER, f"{T0_MS},8,nan"], [".csv:2", "not a funding rate"]),
        ([CSV_HEADER, f"{T0_MS},8,1.5"], [".csv:2", "not a funding rate"]),
        ([CSV_HEADER, f"{T0_MS},0,0.0001"], [".csv:2", "funding_interval_hours '0'"]),
        ([CSV_HEADER, f"{T0_MS},8"], [".csv:2", "2 fields, expected 3"]),
        ([CSV_HEADER, f"{T0_MS},8,0.0001", f"{T0_MS},8,0.0002"], [".csv:3", "two", ".csv:2"]),
        (["time,rate", f"{T0_MS},0.0001"], [".csv:1", "not a Binance fundingRate file"]),
        ([CSV_HEADER], ["no funding rates"]),
    ],
)
def test_a_bad_csv_row_is_one_line_naming_file_and_line(tmp_path, lines, needles):
    f = write_lines(tmp_path / "BTCUSDT-fundingRate-2024-08.csv", lines)
    with pytest.raises(UserError) as e:
        read_funding(f)
    msg = str(e.value)
    assert "\n" not in msg
    for n in needles:
        if n == "two":  # the same time with two rates names both rows
            assert "gives it" in msg
        else:
            assert n in msg, msg


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ('[{"fundingTime": 1722470400000, "fundingRate": "x"}]', ["entry 1", "fundingRate 'x'"]),
        ('[{"fundingTime": "soon", "fundingRate": "0.0001"}]', ["entry 1", "fundingTime 'soon'"]),
        ('[{"fundingRate": "0.0001"}]', ["entry 1", "not a funding entry"]),
        ('[{"fundingTime": 1722470400000, "fundingRate": "0.0001"},', ["json:1", "not valid JSON"]),
        ('{"code": -1121, "msg": "Invalid symbol."}', ["Binance error answer", "-1121"]),
        ('{"a": 1}', ["expected the JSON list"]),
        (
            '[{"symbol": "BTCUSDT", "fundingTime": 1722470400000, "fundingRate": "0.0001"},'
            ' {"symbol": "ETHUSDT", "fundingTime": 1722499200000, "fundingRate": "0.0001"}]',
            ["entry 2", "ETHUSDT after BTCUSDT"],
        ),
    ],
)
def test_a_bad_json_entry_is_one_line(tmp_path, text, needles):
    f = tmp_path / "funding.json"
    f.write_text(text)
    with pytest.raises(UserError) as e:
        read_funding(f)
    msg = str(e.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, msg


def test_files_of_two_symbols_and_unreadable_files(tmp_path):
    a = write_lines(tmp_path / "BTCUSDT-fundingRate-2024-08.csv", [CSV_HEADER, *csv_rows(RATES)])
    b = rest_json(tmp_path / "eth.json", RATES, symbol="ETHUSDT")
    with pytest.raises(UserError, match="ETHUSDT.*BTCUSDT"):
        read_funding([a, b])
    with pytest.raises(UserError, match="no such file"):
        read_funding(tmp_path / "missing.csv")
    bad = tmp_path / "BTCUSDT-fundingRate-2024-09.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UserError, match="zip"):
        read_funding(bad)
    binary = tmp_path / "f.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UserError, match="not a text file"):
        read_funding(binary)
