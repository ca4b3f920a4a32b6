"""avmm: a low-latency Avellaneda-Stoikov market maker.

The entry points a user scripts with, imported on first use so that ``import avmm`` stays cheap::

    import avmm

    cfg = avmm.load_config("cfg.toml", ["model.gamma=0.05"])
    result = avmm.run_backtest("btcusdt.parquet", cfg)
    print(result.summary["pnl_net"])

    engine = avmm.Engine(cfg)  # the compiled core, driven from Python
    n = engine.on_quote(ts_ns, bid, bid_qty, ask, ask_qty)

========================  ===========================================================
``Engine``                the strategy core driven from Python (``avmm.core.engine``)
``StrategyConfig``        the strategy's sections (``avmm.core.config``)
``to_params``             a strategy config as the core's params record
``one_quote``             one quote from fixed inputs (``avmm.core.quote``)
``Config``                the whole config file (``avmm.config``)
``load_config``           read and validate a config file, with ``--set`` overrides
``BacktestConfig``        the ``[backtest]`` section (``avmm.backtest.config``)
``run_backtest``          one backtest over stores, arrays or chunks (``avmm.backtest.runner``)
``Backtester``            the same, one chunk at a time
``BacktestResult``        what a backtest returns
``convert``               exchange files to one event store (``avmm.data.convert``)
``write_events``          write an event store (``avmm.data.store``)
``iter_columns``          read a store back in bounded chunks of columns
``iter_events``           read a store back in bounded chunks of ``EVENT_DTYPE`` rows
``read_meta``             a store's metadata
``EVENT_DTYPE``           the one event format (``avmm.events``)
``UserError``             bad input: one line, exit code 2 (``avmm.errors``)
========================  ===========================================================
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from avmm._numba_cache import set_cache_dir as _set_cache_dir
from avmm._version import __version__

_set_cache_dir()

_EXPORTS = {
    "Engine": "avmm.core.engine",
    "StrategyConfig": "avmm.core.config",
    "to_params": "avmm.core.config",
    "one_quote": "avmm.core.quote",
    "Config": "avmm.config",
    "load_config": "avmm.config",
    "BacktestConfig": "avmm.backtest.config",
    "run_backtest": "avmm.backtest.runner",
    "Backtester": "avmm.backtest.runner",
    "BacktestResult": "avmm.backtest.runner",
    "convert": "avmm.data.convert",
    "write_events": "avmm.data.store",
    "iter_columns": "avmm.data.store",
    "iter_events": "avmm.data.store",
    "read_meta": "avmm.data.store",
    "EVENT_DTYPE": "avmm.events",
    "UserError": "avmm.errors",
}

__all__ = [
    "EVENT_DTYPE",
    "BacktestConfig",
    "BacktestResult",
    "Backtester",
    "Config",
    "Engine",
    "StrategyConfig",
    "UserError",
    "__version__",
    "convert",
    "iter_columns",
    "iter_events",
    "load_config",
    "one_quote",
    "read_meta",
    "run_backtest",
    "to_params",
    "write_events",
]
assert sorted(__all__) == sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:
    from avmm.backtest.config import BacktestConfig
    from avmm.backtest.runner import Backtester, BacktestResult, run_backtest
    from avmm.config import Config, load_config
    from avmm.core.config import StrategyConfig, to_params
    from avmm.core.engine import Engine
    from avmm.core.quote import one_quote
    from avmm.data.convert import convert
    from avmm.data.store import iter_columns, iter_events, read_meta, write_events
    from avmm.errors import UserError
    from avmm.events import EVENT_DTYPE


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'avmm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
