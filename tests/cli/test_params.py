"""Time arguments (`avmm.cli.params`): ISO-8601 (UTC unless an offset is given, up to 9 fractional
digits) or integer ns since the epoch, and one clear line for anything else."""

from __future__ import annotations

import pytest

from avmm.cli.params import parse_time_ns
from avmm.errors import UserError

T = 1_721_309_405_000_000_000  # 2024-07-18T13:30:05Z


@pytest.mark.parametrize(
    "text, ns",
    [
        ("2024-07-18T13:30:05Z", T),
        ("2024-07-18T13:30:05", T),  # UTC without an offset
        ("2024-07-18 13:30:05+00:00", T),
        ("2024-07-18T15:30:05+02:00", T),
        ("2024-07-18T09:30:05-0400", T),
        ("2024-07-18T13:30:05.5Z", T + 500_000_000),
        ("2024-07-18T13:30:05,25", T + 250_000_000),
        ("2024-07-18T13:30:05.123456789Z", T + 123_456_789),
        ("2024-07-18T13:30:05.000000001+00:00", T + 1),
        ("2024-07-18", T - (13 * 3600 + 30 * 60 + 5) * 10**9),
        ("2024-07-18T13:30", T - 5 * 10**9),
        (str(T + 7), T + 7),
        (" 0 ", 0),
        ("2262-04-11T23:47:16.854775807Z", 2**63 - 1),
        ("1677-09-21T00:12:43.145224192Z", -(2**63)),
    ],
)
def test_times(text, ns):
    assert parse_time_ns(text, "--from") == ns


@pytest.mark.parametrize(
    "text, words",
    [
        ("yesterday", "not a time; give ISO-8601 or integer ns"),
        ("1.7e18", "not a time"),
        ("2024-13-01", "not a time"),
        ("", "not a time"),
        ("12345678901234567890", "20-digit integer is outside int64"),
        ("-99999999999999999999", "outside int64"),
        ("2262-04-12", "outside the times int64 nanoseconds hold"),
        ("9999-12-31T23:59:59Z", "outside the times"),
        ("0001-01-01", "outside the times"),
        ("2024-07-18T13:30:05.1234567891Z", "more than 9 fractional digits"),
    ],
)
def test_bad_times_one_line(text, words):
    with pytest.raises(UserError) as e:
        parse_time_ns(text, "--to")
    msg = str(e.value)
    assert msg.startswith(f"--to {text}:") and words in msg and "\n" not in msg
