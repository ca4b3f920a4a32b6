"""The core's risk limits off (the default) change nothing: the golden runs of ``golden.py`` (main's
figures before the limits existed) give the same summary, figure for figure, and the same fills and
samples, byte for byte; and limits set to values that never bind give the default run's."""

from __future__ import annotations

import json

import pytest

from tests.backtest.golden import CASES, GOLDEN, figures, run_case, spot_store
from tests.builders import SHARED_DATA

NEW_KEYS_OFF = {
    "risk_halted": False,
    "risk_reduce_only": False,
    "risk_reason": "",
    "risk_halts": 0,
    "risk_notional_cuts": 0,
    "risk_rate_waits": 0,
    "risk_loss_breaches": 0,
    "risk_loss_day_breaches": 0,
    "risk_flatten_orders": 0,
}
NEVER_BIND = [
    "risk.max_order_notional=1e14",
    "risk.max_orders_per_10s=1024",
    "risk.max_loss=1e14",
    "risk.max_loss_day=1e14",
    'risk.on_limit="halt"',
]


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text())


def _check(name: str, got: dict, want: dict) -> None:
    assert got["fills_sha256"] == want["fills_sha256"], f"{name}: fills differ ({got['n_fills']} vs {want['n_fills']})"
    assert got["samples_sha256"] == want["samples_sha256"], f"{name}: samples differ"
    s, w = got["summary"], want["summary"]
    diff = {k: (s.get(k), v) for k, v in w.items() if s.get(k) != v}
    assert not diff, f"{name}: summary figures differ (got, golden): {diff}"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_default_run_is_mains_bit_for_bit(case, golden, tmp_path):
    name, data, sets = case
    store = None
    if data == "binance_spot":
        store = spot_store(SHARED_DATA, tmp_path)
        if store is None:
            pytest.skip(f"shared data not found at {SHARED_DATA}")
    got = figures(run_case(data, sets, store))
    _check(name, got, golden[name])
    # the new keys are there, and say nothing happened
    s = got["summary"]
    assert {k: s[k] for k in NEW_KEYS_OFF} == NEW_KEYS_OFF


@pytest.mark.parametrize("case", [CASES[1], CASES[2]], ids=[CASES[1][0], CASES[2][0]])
def test_limits_that_never_bind_change_nothing(case, golden):
    """Every limit on (the per-event checks, the orders budget's ring, the ladder's cuts all run)
    at values the session never reaches: the default run's figures, bit for bit."""
    name, data, sets = case
    got = figures(run_case(data, sets + NEVER_BIND, None))
    _check(name, got, golden[name])
    assert got["summary"]["risk_loss_breaches"] == 0
