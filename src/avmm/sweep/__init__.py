"""Parameter sweeps: many backtests of one base config with some keys set, on a local process pool
or Ray, several configs per pass over the data.

Modules: ``space`` (grid, ranges, random draws; keys and values validated), ``jobs`` (a job: some
points in one pass, ``backtest.many.run_many``, in a worker), ``executors`` (inline, local pool,
Ray), ``partial`` (``<json>.partial``: finished points, resume), ``select`` (ranking, walk-forward
folds, Pareto front), ``optimize`` (Optuna TPE), ``run`` (``Sweep``: search and honest selection),
``report`` (the HTML report).
"""

from __future__ import annotations

__all__ = ["METRIC_KEYS", "metric_keys"]

# The numeric figures of a backtest's summary, in its order (what ``avmm backtest --json`` writes):
# the metrics a sweep can sort by or optimize. Written out so that the command checks --metric
# without loading the compiled loop; tests/sweep/test_metrics.py checks them against a backtest's.
METRIC_KEYS: tuple[str, ...] = (
    "events",
    "quotes",
    "trades",
    "depth_rows",
    "session_s",
    "gaps",
    "gaps_s",
    "wall_s",
    "events_per_s",
    "wall_s_e2e",
    "events_per_s_e2e",
    "pnl_net",
    "pnl_gross",
    "fees",
    "realized",
    "unrealized",
    "capital",
    "return",
    "sharpe",
    "sortino",
    "equity_interval_s",
    "max_drawdown",
    "return_over_max_dd",
    "fills",
    "maker_fills",
    "taker_fills",
    "fills_bid",
    "fills_ask",
    "fill_qty",
    "maker_volume",
    "taker_volume",
    "orders",
    "cancels",
    "amends",
    "rejects_post_only",
    "rejects_risk",
    "rejects_other",
    "fill_ratio",
    "spread_captured_bps",
    "spread_captured",
    "quote_distance_ticks",
    "market_spread_ticks",
    "quoted_both_fraction",
    "markout_1s",
    "markout_10s",
    "markout_60s",
    "position",
    "inventory_mean",
    "inventory_std",
    "max_abs_position",
    "timer_calls",
    "overflows",
    "bad_exch_ts",
    "bad_depth_rows",
    "rejects_balance",
    "initial_base",
    "initial_quote",
    "final_base",
    "final_quote",
    "funding",
    "funding_payments",
    "funding_no_mark",
    "leverage",
    "max_initial_margin",
    "min_liquidation_distance_pct",
    "requotes",
    "bad_quotes",
    "bad_trades",
    "signal_calls",
    "signal_bad",
    "signal_depth_dropped",
    "risk_halts",
    "risk_position_cuts",
    "risk_notional_cuts",
    "risk_rate_waits",
    "risk_loss_breaches",
    "risk_loss_day_breaches",
    "risk_flatten_orders",
)


def metric_keys() -> list[str]:
    """The numeric figures of a backtest's summary (``METRIC_KEYS``)."""
    return list(METRIC_KEYS)
