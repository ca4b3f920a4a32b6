"""``METRIC_KEYS`` (what ``--metric`` and ``--optimize`` accept, checked without loading the
compiled loop) are the numeric figures of a backtest's summary, in its order."""

from __future__ import annotations

from avmm.backtest.runner import run_backtest
from avmm.core.config import StrategyConfig
from avmm.data.synth import generate
from avmm.sweep import METRIC_KEYS


def test_metric_keys_are_a_backtests_numeric_figures():
    summary = run_backtest(next(generate(2000, 1)), StrategyConfig()).summary
    numeric = [
        k
        for k, v in summary.items()
        if (v is None and not k.endswith("_note")) or (isinstance(v, int | float) and not isinstance(v, bool))
    ]
    assert list(METRIC_KEYS) == numeric
