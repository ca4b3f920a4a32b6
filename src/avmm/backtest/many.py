"""Many backtests in one pass over the data: each chunk is read and decoded once and stepped
through K independent strategy + exchange states (``Backtester``), on ``threads`` threads (the
compiled loop releases the GIL).

Public API:

* ``run_many(data, configs, *, start_ns, end_ns, progress, threads) -> list[BacktestResult]`` --
  ``configs`` is a list of ``(StrategyConfig, BacktestConfig)``; result ``i`` is, figure for figure
  and bit for bit, what ``run_backtest(data, configs[i][0], backtest=configs[i][1])`` gives (only
  the timing figures differ: ``wall_s``, ``events_per_s`` and their end-to-end twins).

Each ``Backtester`` keeps its own cursors and bridge between chunks; the chunks are read-only
column views shared by all of them. The results do not depend on the chunk size (see
``runner``), so the pass reads with the first config's ``chunk_events`` and ``read_ahead``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from avmm.backtest.config import BacktestConfig
from avmm.backtest.runner import (
    Backtester,
    BacktestResult,
    _chunks_of,
    adapt_config,
    available_memory,
    sample_memory,
)
from avmm.core.config import StrategyConfig
from avmm.errors import UserError

__all__ = ["run_many"]


def _check_samples(backtests: Sequence[BacktestConfig], active_ns: int) -> None:
    """The equity samples of all K runs together must fit in half the free memory."""
    need = sum(sample_memory(b, active_ns) for b in backtests)
    have = available_memory()
    if need > have // 2:
        raise UserError(
            f"the equity samples of {len(backtests)} backtests over {active_ns / 3.6e12:,.1f} h of data need "
            f"{need / 2**20:,.0f} MiB ({have / 2**20:,.0f} MiB free); raise backtest.equity_interval_s or run "
            "fewer points per pass"
        )


def run_many(
    data: Any,
    configs: Sequence[tuple[StrategyConfig, BacktestConfig]],
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    threads: int = 1,
    keep_fills: int = 200_000,
) -> list[BacktestResult]:
    """Run K backtests over ``data`` in one pass (see the module's docstring).

    Parameters
    ----------
    data : path, list of paths or ndarray
        As ``run_backtest``'s ``data``.
    configs : list of (StrategyConfig, BacktestConfig)
        One pair per backtest.
    start_ns, end_ns : int, optional
        The window ``[start_ns, end_ns)``.
    progress : callable, optional
        ``progress(rows_done, rows_total_or_None)`` after each chunk (rows of the data, once).
    threads : int
        Threads stepping the K backtests over each chunk (1: in this thread).
    keep_fills : int
        How many fills each result keeps (``Backtester``; the summaries count every fill).

    Returns
    -------
    list of BacktestResult
        In the order of ``configs``.
    """
    if not configs:
        return []
    b0 = configs[0][1]
    chunks, meta0, total, plan = _chunks_of(data, b0.chunk_events, start_ns, end_ns, read_ahead=b0.read_ahead)
    try:
        if plan is not None:
            _check_samples([b for _, b in configs], plan.active_ns(round(b0.gap_s * 1e9)))
        elif isinstance(data, np.ndarray) and data.shape[0] > 1:
            lt = data["local_ts"]
            _check_samples([b for _, b in configs], max(0, int(lt[-1]) - int(lt[0])))
        meta = dict(meta0)
        bts = [Backtester(adapt_config(c, meta), backtest=b, meta=meta, keep_fills=keep_fills) for c, b in configs]
        t0 = time.perf_counter()
        for bt in bts:
            bt.t_start = t0
        with ThreadPoolExecutor(max(1, threads), thread_name_prefix="avmm-many") if threads > 1 else _nopool() as pool:
            done = 0
            for ch in chunks:
                if pool is None:
                    for bt in bts:
                        bt.feed(ch)
                else:
                    list(pool.map(lambda bt, c=ch: bt.feed(c), bts))
                done += len(ch[0]) if not isinstance(ch, np.ndarray) else ch.shape[0]
                if progress is not None:
                    progress(done, total)
    finally:
        if plan is not None:
            chunks.close()  # type: ignore[attr-defined]
    return [bt.finish() for bt in bts]


class _nopool:  # noqa: N801  (a context manager standing for "no pool")
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
