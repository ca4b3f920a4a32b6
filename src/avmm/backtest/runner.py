"""Python side of the backtest: allocate once, feed chunks to the compiled loop, aggregate.

Public API:

* ``run_backtest(data, cfg, backtest, progress=None) -> BacktestResult`` -- ``data`` is a path to an event
  store, a list of paths (run back to back as one session), an ``EVENT_DTYPE`` array, or an
  iterable of ``EventColumns`` / ``EVENT_DTYPE`` chunks;
* ``Backtester(cfg, backtest)`` -- the same, one chunk at a time: ``feed(columns)``, then ``finish()``;
* ``adapt_config(cfg, meta)`` -- tick / lot from the store's metadata unless set in the config.

Memory is bounded by the chunk size: one chunk of columns (plus the few rows the strategy still
has to see from the previous chunk), fixed-size rings, and output buffers drained after each call.
What grows with the session is only the equity samples (one per ``equity_interval_s``) and the
fills kept for the report (at most 200,000; the summary aggregates every fill).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from avmm.backtest.config import BacktestConfig
from avmm.backtest.latency import latency_table
from avmm.backtest.loop import ST_DONE, ST_FULL, ST_NEED, run_chunk
from avmm.backtest.metrics import FillStats, summarize
from avmm.backtest.queue import QUEUE_MODELS
from avmm.backtest.state import (
    BT_PARAMS_DTYPE,
    FILL_DTYPE,
    MARKOUT_NS,
    MAX_X,
    MO_CAP,
    MSG_DTYPE,
    QCAP,
    SAMPLE_DTYPE,
    XORDER_DTYPE,
    new_bt_state,
    new_cache,
)
from avmm.core.config import StrategyConfig, to_params
from avmm.core.state import CoreMemory
from avmm.errors import UserError
from avmm.events import EVENT_DTYPE

S = TypeVar("S", bound=StrategyConfig)

COLS = ("exch_ts", "local_ts", "px", "qty", "px2", "qty2", "kind", "side")
COL_DTYPES = (np.int64, np.int64, np.float64, np.float64, np.float64, np.float64, np.uint8, np.int8)
FOUT_CAP = 1 << 16
SOUT_CAP = 1 << 16


@dataclass
class BacktestResult:
    summary: dict
    samples: np.ndarray  # SAMPLE_DTYPE
    fills: np.ndarray  # FILL_DTYPE (the first 200,000)
    config: StrategyConfig  # the strategy as run: instrument sizes adapted to the data (``adapt_config``)
    backtest: BacktestConfig
    meta: dict = field(default_factory=dict)

    def config_dict(self) -> dict:
        """The sections as run, as one JSON-ready dict (the config file's layout)."""
        return {**self.config.model_dump(mode="json"), "backtest": self.backtest.model_dump(mode="json")}

    def to_json(self) -> dict:
        """The summary figures, the config used (``config``) and the data's metadata (``data``)."""
        out = dict(self.summary)
        out["config"] = self.config_dict()
        out["data"] = self.meta
        return out


def adapt_config(cfg: S, meta: dict) -> S:
    """Instrument sizes from the store's metadata where the config does not set them: tick and
    lot; a quote size below the lot becomes one lot, and a position limit below 10 quote sizes
    becomes 10 (so a default config quotes e.g. whole shares on an equity)."""
    q = cfg.quoting
    data = cfg.model_dump()
    set_q = q.model_fields_set
    tick, lot = meta.get("tick_size"), meta.get("lot_size")
    if tick and "tick" not in set_q:
        data["quoting"]["tick"] = float(tick)
    if lot and "lot" not in set_q:
        data["quoting"]["lot"] = float(lot)
    lot_v = data["quoting"]["lot"]
    if "size" not in set_q and data["quoting"]["size"] < lot_v:
        data["quoting"]["size"] = lot_v
        if "max_position" not in cfg.risk.model_fields_set:
            data["risk"]["max_position"] = max(data["risk"]["max_position"], 10 * lot_v)
    if data == cfg.model_dump():
        return cfg
    return type(cfg).model_validate(data)


def bt_params(cfg: StrategyConfig, b: BacktestConfig, p: np.ndarray) -> np.ndarray:
    """The exchange model's params record (``BT_PARAMS_DTYPE``) for the strategy's params ``p``."""
    bp = np.zeros(1, dtype=BT_PARAMS_DTYPE)
    bp["tick"] = cfg.quoting.tick
    bp["lot"] = cfg.quoting.lot
    bp["maker_fee"] = b.maker_fee
    bp["taker_fee"] = b.taker_fee
    bp["inverse"] = int(b.contract == "inverse")
    bp["csize"] = b.contract_size
    bp["queue_model"] = QUEUE_MODELS[b.queue_model]
    bp["queue_power"] = b.queue_power
    bp["l1_fraction"] = 0.0 if b.l1_unknown_queue == "front" else b.l1_queue_fraction
    bp["risk_check"] = int(b.risk_check)
    bp["max_position"] = cfg.risk.max_position
    bp["post_only"] = int(p["post_only"][0])
    bp["feed_ns"] = round(b.feed_latency_ms * 1e6)
    bp["eq_ns"] = max(1, round(b.equity_interval_s * 1e9))
    bp["timer_ns"] = round(b.timer_s * 1e9)
    bp["mo_ns"][0] = MARKOUT_NS
    return bp


def _readonly(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


def as_columns(chunk: Any) -> tuple[np.ndarray, ...]:
    """The loop's eight columns, contiguous, in the loop's dtypes (no copy when they already are)
    and read-only: the loop is compiled for one signature, the one Parquet's zero-copy columns
    have, whatever the chunk came from (numba types read-only arrays apart, so a writable chunk
    would compile, or load from the cache, a second copy of the loop in the middle of a run)."""
    if isinstance(chunk, np.ndarray) and chunk.dtype.names:
        return tuple(_readonly(np.ascontiguousarray(chunk[c], dtype=d)) for c, d in zip(COLS, COL_DTYPES, strict=True))
    return tuple(
        _readonly(np.ascontiguousarray(getattr(chunk, c), dtype=d)) for c, d in zip(COLS, COL_DTYPES, strict=True)
    )


def _backtest_section(cfg: StrategyConfig, backtest: BacktestConfig | None) -> BacktestConfig:
    """``backtest``, else the ``[backtest]`` section of a whole-file config, else the defaults."""
    if backtest is not None:
        return backtest
    section = getattr(cfg, "backtest", None)
    return section if isinstance(section, BacktestConfig) else BacktestConfig()


class Backtester:
    """One backtest, one chunk at a time: ``feed`` chunks in local-time order, then ``finish()``.

    Parameters
    ----------
    cfg : StrategyConfig
        The strategy (instrument sizes as they should be run; see ``adapt_config``).
    backtest : BacktestConfig, optional
        The exchange model; default: the ``[backtest]`` section of a whole-file ``Config``, else
        the defaults.
    meta : dict, optional
        The data's metadata, echoed in the result.
    keep_fills : int
        How many fills the result keeps for the report (the summary aggregates every fill).
    """

    def __init__(
        self,
        cfg: StrategyConfig,
        backtest: BacktestConfig | None = None,
        meta: dict | None = None,
        keep_fills: int = 200_000,
    ):
        self.cfg = cfg
        self.bt = _backtest_section(cfg, backtest)
        self.meta = meta or {}
        self.params = to_params(cfg)
        self.params["log_rate"] = 0.0  # the core's sampled log is for the live runtime; nobody reads it here
        self.mem = CoreMemory(self.params, int(self.params["seed"][0]))
        self.bp = bt_params(cfg, self.bt, self.params)
        self.bs = new_bt_state()
        self.xo = np.zeros(MAX_X, dtype=XORDER_DTYPE)
        self.keys, self.vals = new_cache()
        self.lat = latency_table(self.bt)
        self.rq = np.zeros(QCAP, dtype=MSG_DTYPE)
        self.rs = np.zeros(QCAP, dtype=MSG_DTYPE)
        self.ring = np.zeros(MO_CAP, dtype=FILL_DTYPE)
        self.fout = np.zeros(FOUT_CAP, dtype=FILL_DTYPE)
        self.sout = np.zeros(SOUT_CAP, dtype=SAMPLE_DTYPE)
        self.fills = FillStats(keep_fills)
        self.samples: list[np.ndarray] = []
        self.cols: tuple[np.ndarray, ...] | None = None
        self.wall = 0.0
        self.done = False

    def _drain(self) -> None:
        bs = self.bs
        nf, ns = int(bs["n_fout"][0]), int(bs["n_sout"][0])
        if nf:
            self.fills.add(self.fout[:nf])
        if ns:
            self.samples.append(self.sout[:ns].copy())
        bs["n_fout"] = 0
        bs["n_sout"] = 0

    def _run(self, final: int) -> int:
        m = self.mem
        c = self.cols
        assert c is not None
        while True:
            t0 = time.perf_counter()
            st = run_chunk(
                m.params,
                m.state,
                m.orders,
                m.actions,
                self.bp,
                self.bs,
                self.xo,
                self.keys,
                self.vals,
                self.lat,
                self.rq,
                self.rs,
                self.ring,
                self.fout,
                self.sout,
                *c,
                final,
            )
            self.wall += time.perf_counter() - t0
            self._drain()
            if st != ST_FULL:
                return st

    def feed(self, chunk: Any) -> None:
        """Process one chunk (``EventColumns`` or an ``EVENT_DTYPE`` array); rows must continue the
        previous chunk in local-time order."""
        new = as_columns(chunk)
        if self.cols is None:
            self.cols = new
        else:
            # rows that the exchange or the strategy has not seen yet are carried over
            lo = min(int(self.bs["il"][0]), int(self.bs["ie"][0]))
            n = self.cols[0].shape[0]
            if lo < n:
                self.cols = tuple(
                    _readonly(np.concatenate((old[lo:], nw))) for old, nw in zip(self.cols, new, strict=True)
                )
            else:
                self.cols = new
            self.bs["ie"] -= lo
            self.bs["il"] -= lo
        st = self._run(0)
        assert st == ST_NEED

    def finish(self) -> BacktestResult:
        if self.cols is None:
            self.cols = as_columns(np.zeros(0, dtype=EVENT_DTYPE))
        st = self._run(1)
        assert st == ST_DONE
        self.done = True
        b = self.bt
        bs = self.bs[0]
        samples = np.concatenate(self.samples) if self.samples else np.zeros(0, dtype=SAMPLE_DTYPE)
        inverse = b.contract == "inverse"
        capital = b.initial_cash
        fm = float(bs["first_mid"])
        if capital <= 0 and math.isfinite(fm):
            mp = self.cfg.risk.max_position * b.contract_size
            capital = mp / fm if inverse else mp * fm
        summary = summarize(
            bs,
            samples,
            self.fills,
            capital=capital,
            interval_s=b.equity_interval_s,
            inverse=inverse,
            csize=b.contract_size,
            wall_s=self.wall,
        )
        st = self.mem.state[0]
        summary["bad_quotes"] = int(st["n_bad_quotes"])  # NaN / non-positive / crossed: ignored
        summary["bad_trades"] = int(st["n_bad_trades"])
        return BacktestResult(summary, samples, self.fills.fills(), self.cfg, self.bt, self.meta)


def _chunks_of(data: Any, chunk_events: int) -> tuple[Iterator[Any], dict, int | None]:
    """(iterator of chunks, meta, total rows or None) for the accepted ``data`` forms."""
    from avmm.data import store

    if isinstance(data, np.ndarray):
        n = data.shape[0]
        return (data[i : i + chunk_events] for i in range(0, max(n, 1), chunk_events)), {}, n
    if isinstance(data, (str, Path)):
        data = [data]
    if isinstance(data, list) and data and all(isinstance(x, (str, Path)) for x in data):
        paths = [Path(x) for x in data]
        for pth in paths:
            if not pth.exists():
                raise UserError(f"{pth}: no such file")
        metas = [store.read_meta(pth) for pth in paths]
        meta = dict(metas[0])
        if len(paths) > 1:
            meta["files"] = [str(x) for x in paths]
        total = sum(int(m.get("rows", 0)) for m in metas)

        def gen() -> Iterator[_Cols]:
            for pth in paths:
                yield from _read_columns(pth, chunk_events)

        return gen(), meta, total
    return iter(data), {}, None


class _Cols:
    """The loop's columns of one chunk, by name (what ``as_columns`` reads)."""

    __slots__ = COLS

    def __init__(self, arrays: list[np.ndarray]) -> None:
        for name, arr in zip(COLS, arrays, strict=True):
            setattr(self, name, arr)

    def __getitem__(self, i: int) -> np.ndarray:
        return getattr(self, COLS[i])


def _read_columns(path: Path, chunk_events: int) -> Iterator[_Cols]:
    """Stream only the eight columns the loop uses, one row group at a time, with buffered reads
    (not a memory map, whose touched pages would count in the resident set): memory is one row
    group plus one chunk, whatever the file size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from avmm.data import store

    store.read_meta(path)  # validates the file as an event store (UserError otherwise)
    pf = pq.ParquetFile(str(path), memory_map=False, page_checksum_verification=True)
    done = 0
    for g in range(pf.num_row_groups):
        try:
            table = pf.read_row_group(g, columns=list(COLS), use_threads=False)
        except (OSError, pa.ArrowException) as e:
            raise store.corrupt_store(path, done, e) from None
        done += table.num_rows
        for batch in table.to_batches(max_chunksize=int(chunk_events)):
            arrays = []
            for i in range(batch.num_columns):
                col = batch.column(i)
                try:
                    arrays.append(col.to_numpy(zero_copy_only=True))
                except Exception:
                    arrays.append(np.ascontiguousarray(col.to_numpy(zero_copy_only=False)))
            yield _Cols(arrays)
        del table


def run_backtest(
    data: Any,
    cfg: StrategyConfig | None = None,
    backtest: BacktestConfig | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    meta: dict | None = None,
) -> BacktestResult:
    """Run one backtest of the strategy core over ``data``.

    Parameters
    ----------
    data : path, list of paths, ndarray or iterable of chunks
        An event store (``avmm data convert``), several stores run back to back as one session,
        an ``EVENT_DTYPE`` array, or an iterable of ``EventColumns`` / ``EVENT_DTYPE`` chunks in
        local-time order.
    cfg : StrategyConfig, optional
        The strategy's sections (default: the defaults). A whole ``avmm.config.Config`` may be
        given: its ``[backtest]`` section is then used unless ``backtest`` is given.
    backtest : BacktestConfig, optional
        The exchange model (latency, fees, queue model, ...).
    progress : callable, optional
        ``progress(rows_done, rows_total_or_None)``, called after each chunk.
    meta : dict, optional
        Metadata to add to the store's (``tick_size`` / ``lot_size`` set the instrument).

    Returns
    -------
    BacktestResult
        The summary figures, equity samples, fills and the config as run.
    """
    cfg = cfg if cfg is not None else StrategyConfig()
    backtest = _backtest_section(cfg, backtest)
    chunks, meta0, total = _chunks_of(data, backtest.chunk_events)
    meta = {**meta0, **(meta or {})}
    cfg = adapt_config(cfg, meta)
    bt = Backtester(cfg, backtest, meta)
    done = 0
    for ch in chunks:
        bt.feed(ch)
        done += len(ch[0]) if not isinstance(ch, np.ndarray) else ch.shape[0]
        if progress is not None:
            progress(done, total)
    return bt.finish()


def warm_up() -> None:
    """Compile (or load from the on-disk cache) the loop for the store's column types."""
    from avmm.data.synth import generate

    ev = next(generate(2000, 1))
    run_backtest(ev, StrategyConfig())
