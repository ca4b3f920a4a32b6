"""Latencies (`avmm.backtest.latency`): recorded latencies from a file."""

from __future__ import annotations

import pytest

from avmm.backtest.runner import run_backtest
from tests.builders import BOOK, T, fills_of, stream
from tests.builders import bt_config as cfg


def test_recorded_latencies(tmp_path):
    f = tmp_path / "lat.csv"
    f.write_text("entry_ns,response_ns\n10000000,1000000\n")
    c = cfg('backtest.latency_model="recorded"', f'backtest.latency_file="{f}"')
    r = run_backtest(stream(BOOK, T(5, 99.98, 1.0, -1), T(11, 99.98, 1.0, -1)), c)
    assert fills_of(r) == [(11000, 1, 99.99, 1.0)]  # 10 ms entry latency from the file
    from avmm.errors import UserError

    f.write_text("entry_ns,response_ns\n-5,1\n")
    with pytest.raises(UserError):
        run_backtest(stream(BOOK), c)
