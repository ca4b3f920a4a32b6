"""Python side of the backtest: allocate once, feed chunks to the compiled loop, aggregate.

Public API:

* ``run_backtest(data, cfg, *, backtest, progress, meta, start_ns, end_ns, on_fills) -> BacktestResult``
  -- ``data`` is a path to an event store, a list of paths (run one after the other as one session,
  in time order), an ``EVENT_DTYPE`` array, or an iterable of ``EventColumns`` / ``EVENT_DTYPE``
  chunks; ``[start_ns, end_ns)`` selects a window; ``on_fills`` receives every fill as the run goes;
* ``plan_stores(paths, start_ns, end_ns)`` -- the stores checked and put in time order before a run
  (out of order: a note; overlapping: one line naming both; none in the window: one line);
* ``Backtester(cfg, *, backtest)`` -- the same, one chunk at a time: ``feed(columns)``, then ``finish()``;
* ``adapt_config(cfg, meta)`` -- tick / lot from the store's metadata unless set in the config.

Stores are read through ``avmm.data.store.StoreReader``: every chunk is checked (no nulls, sorted
by ``local_ts``, also across the boundary between stores) at the cost of one vectorised comparison.
With ``backtest.read_ahead`` (the default) the next row group (the unit of reading; about 1M rows)
is read on a thread while the loop runs the chunks of the previous one (``read_ahead_of``); a
reading error comes out where its chunks would have.

From one chunk to the next, the rows of the old chunk one cursor has not passed yet (the strategy
lags the exchange) are run with the head of the new chunk as a small bridge chunk (``_bridge``): a
few rows are copied, never the new chunk. Results are bit-identical whatever the chunk size and with
or without the read-ahead (the summary sums the fills one by one, in fill order: ``metrics.FillStats``).

Memory is bounded by the chunk size: the columns of two Parquet row groups (the one being run, in
chunks, and the one read ahead; one without read-ahead), fixed-size rings, and output buffers
drained after each call.
What grows with the session is only the equity samples (one per ``equity_interval_s`` of data, none
across gaps longer than ``gap_s``; checked against the free memory before the run) and the fills
kept for the report (at most 200,000; the summary aggregates every fill, ``on_fills`` sees each).
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
from avmm.backtest.loop import ST_DONE, ST_FULL, ST_GROW, ST_NEED, loop_with_signal, run_chunk
from avmm.backtest.market import accounting_summary, setup_accounting
from avmm.backtest.metrics import FillStats, summarize
from avmm.backtest.queue import QUEUE_MODELS, depth_rehash
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
from avmm.core.config import StrategyConfig, max_position_of, to_params
from avmm.core.risk import risk_summary
from avmm.core.signals import run_error, signal_source
from avmm.core.state import CoreMemory
from avmm.errors import UserError
from avmm.events import EVENT_DTYPE

S = TypeVar("S", bound=StrategyConfig)
T = TypeVar("T")

COLS = ("exch_ts", "local_ts", "px", "qty", "px2", "qty2", "kind", "side")
COL_DTYPES = (np.int64, np.int64, np.float64, np.float64, np.float64, np.float64, np.uint8, np.int8)
FOUT_CAP = 1 << 16
SOUT_CAP = 1 << 16
BRIDGE_ROWS = 64  # rows of the next chunk, beyond twice the rows still to be seen, in a first bridge


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
    lot (the 'auto' size and position limit are counted in lots)."""
    q = cfg.quoting
    data = cfg.model_dump()
    set_q = q.model_fields_set
    tick, lot = meta.get("tick_size"), meta.get("lot_size")
    if tick and "tick" not in set_q:
        data["quoting"]["tick"] = float(tick)
    if lot and "lot" not in set_q:
        data["quoting"]["lot"] = float(lot)
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
    bp["partial_fills"] = int(b.partial_fills)
    bp["markouts"] = int(b.markouts)
    bp["l1_empty_left"] = int(b.l1_left_level == "empty")
    bp["max_position"] = max_position_of(cfg)
    bp["post_only"] = int(p["post_only"][0])
    bp["feed_ns"] = round(b.feed_latency_ms * 1e6)
    bp["eq_ns"] = max(1, round(b.equity_interval_s * 1e9))
    bp["timer_ns"] = round(b.timer_s * 1e9)
    if p["refresh_grid"][0] != 0:  # the timer also ticks at every refresh grid time
        refresh_ns = int(p["refresh_ns"][0])
        bp["timer_ns"] = math.gcd(int(bp["timer_ns"][0]), refresh_ns)
        bp["timer_grid"] = 1
    bp["gap_ns"] = round(b.gap_s * 1e9)
    bp["mo_ns"][0] = MARKOUT_NS
    bp["fee_lock"] = max(b.maker_fee, b.taker_fee, 0.0)  # the market's fields: ``market.setup_accounting``
    bp["fund_rate"] = b.funding_rate
    bp["fund_ns"] = round(b.funding_interval_h * 3.6e12)
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
    """``backtest``, else the ``[backtest]`` section of a whole-file config (a convenience for
    scripts: ``run_backtest(path, load_config(...))``), else the defaults."""
    if backtest is not None:
        if not isinstance(backtest, BacktestConfig):
            raise TypeError(f"backtest: expected a BacktestConfig, got {type(backtest).__name__}")
        return backtest
    section = getattr(cfg, "backtest", None)
    return section if isinstance(section, BacktestConfig) else BacktestConfig()


def _strategy_only(cfg: StrategyConfig) -> StrategyConfig:
    """The strategy's sections of ``cfg`` (a whole-file config carries ``[backtest]`` too, which the
    result must not echo beside the section actually run). The section objects are kept as they
    are, so which keys the user set (``adapt_config``) is not lost."""
    if type(cfg) is StrategyConfig:
        return cfg
    return StrategyConfig(**{name: getattr(cfg, name) for name in StrategyConfig.model_fields})


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
    on_fills : callable, optional
        Called with each batch of completed fills (a view reused afterwards).
    """

    def __init__(
        self,
        cfg: StrategyConfig,
        *,
        backtest: BacktestConfig | None = None,
        meta: dict | None = None,
        keep_fills: int = 200_000,
        on_fills: Callable[[np.ndarray], None] | None = None,
    ):
        self.bt = _backtest_section(cfg, backtest)
        self.cfg = _strategy_only(cfg)
        self.signal = signal_source(self.cfg.signals.file, self.cfg.signals.function, self.cfg.signals.builtins_on())
        self.run_chunk = run_chunk if self.signal is None else loop_with_signal(self.signal).run_chunk
        self.meta = meta or {}
        self.params = to_params(cfg)
        self.params["log_rate"] = 0.0  # the core's sampled log is for the live runtime; nobody reads it here
        self.mem = CoreMemory(self.params, int(self.params["seed"][0]))
        self.bp = bt_params(cfg, self.bt, self.params)
        self.bs = new_bt_state()
        self.acc = setup_accounting(self.cfg, self.bt, self.meta, self.bp, self.bs)
        self.xo = np.zeros(MAX_X, dtype=XORDER_DTYPE)
        self.keys, self.vals = new_cache(self.bs)
        self.lat = latency_table(self.bt)
        self.rq = np.zeros(QCAP, dtype=MSG_DTYPE)
        self.rs = np.zeros(QCAP, dtype=MSG_DTYPE)
        self.ring = np.zeros(MO_CAP, dtype=FILL_DTYPE)
        self.fout = np.zeros(FOUT_CAP, dtype=FILL_DTYPE)
        self.sout = np.zeros(SOUT_CAP, dtype=SAMPLE_DTYPE)
        self.fills = FillStats(keep_fills)
        self.samples: list[np.ndarray] = []
        self.n_samples = 0
        self.sample_limit = available_memory() // 2
        self.on_fills = on_fills
        self.cols: tuple[np.ndarray, ...] | None = None
        self.n_bridge_rows = 0  # rows copied to carry the cursors from one chunk to the next (``_bridge``)
        self.wall = 0.0
        self.t_start: float | None = None  # the first read (``run_backtest``) or the first ``feed``
        self.done = False

    def _drain(self) -> None:
        bs = self.bs
        nf, ns = int(bs["n_fout"][0]), int(bs["n_sout"][0])
        if nf:
            self.fills.add(self.fout[:nf])  # sums in fill order: the same whatever the chunking
            if self.on_fills is not None:
                self.on_fills(self.fout[:nf])
        if ns:
            self.samples.append(self.sout[:ns].copy())
            self.n_samples += ns
            if self.n_samples * SAMPLE_DTYPE.itemsize * 2 > self.sample_limit:
                raise UserError(
                    f"equity samples every {self.bt.equity_interval_s:g} s need more than "
                    f"{_gib(self.sample_limit)} of memory; raise backtest.equity_interval_s"
                )
        bs["n_fout"] = 0
        bs["n_sout"] = 0

    def _step(self, *args: Any) -> int:
        """One call of the compiled loop; an exception out of it is the signal's (the loop raises
        nothing of its own)."""
        if self.signal is None:
            return int(self.run_chunk(*args))
        try:
            return int(self.run_chunk(*args))
        except Exception as e:  # the user's code raised in compiled code
            raise run_error(self.signal, e) from None

    def _run(self, final: int) -> int:
        m = self.mem
        c = self.cols
        assert c is not None
        while True:
            t0 = time.perf_counter()
            st = self._step(
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
                self.acc.fund_ts,
                self.acc.fund_rate,
                *c,
                final,
            )
            self.wall += time.perf_counter() - t0
            self._drain()
            if st == ST_GROW:
                self._grow_depth()
            elif st != ST_FULL:
                return st

    def _grow_depth(self) -> None:
        """The depth book's table is half full: twice the slots, every level moved over."""
        old_keys, old_vals = self.keys, self.vals
        self.keys, self.vals = new_cache(self.bs, 2 * old_keys.shape[1])
        depth_rehash(self.bs, old_keys, old_vals, self.keys, self.vals)

    def feed(self, chunk: Any) -> None:
        """Process one chunk (``EventColumns`` or an ``EVENT_DTYPE`` array); rows must continue the
        previous chunk in local-time order."""
        if self.t_start is None:
            self.t_start = time.perf_counter()
        new = as_columns(chunk)
        if self.cols is not None and (new[0].shape[0] == 0 or not self._bridge(new)):
            return
        self.cols = new
        st = self._run(0)
        assert st == ST_NEED

    def _shift(self, k: int) -> None:
        """Both cursors ``k`` rows back (the columns lost their first ``k`` rows)."""
        self.bs["ie"] -= k
        self.bs["il"] -= k

    def _bridge(self, new: tuple[np.ndarray, ...]) -> bool:
        """Take both cursors past the rows of the current chunk, to the head of ``new``, copying a
        few rows instead of the whole of ``new``.

        The loop returns (``ST_NEED``, nothing changed in that step) when either cursor reaches the
        end of its columns; the other one may still have ``t`` rows of this chunk to see (the
        strategy lags the exchange by the feed latency, or the reverse with skewed clocks). Those
        rows and the first ``k`` rows of ``new`` (``k`` about ``2 t``) are run as a small chunk of
        their own until both cursors have passed the old rows; then the cursors move onto ``new``,
        which the caller runs. The loop's steps depend only on the rows at its cursors, so the
        results are those of the whole stream run at once, however it is cut. When ``k`` rows do
        not take the lagging cursor past the old rows, ``k`` doubles.

        Returns False when even the whole of ``new`` did not (a lag longer than a chunk): the old
        rows and ``new``, joined, are then the current chunk, already run up to its end."""
        assert self.cols is not None
        lo = min(int(self.bs["ie"][0]), int(self.bs["il"][0]))
        tail = tuple(a[lo:] for a in self.cols)
        self._shift(lo)
        m = new[0].shape[0]
        k = 0
        while (t := tail[0].shape[0]) > 0:
            k = min(m, max(2 * k, 2 * t + BRIDGE_ROWS))
            self.cols = tuple(_readonly(np.concatenate((a, b[:k]))) for a, b in zip(tail, new, strict=True))
            self.n_bridge_rows += t + k
            st = self._run(0)
            assert st == ST_NEED
            lo = min(int(self.bs["ie"][0]), int(self.bs["il"][0]))
            if lo >= t:
                self._shift(t)
                return True
            if k == m:
                return False
            tail = tuple(a[lo:t] for a in self.cols)
            self._shift(lo)
        return True

    def finish(self) -> BacktestResult:
        t_finish = time.perf_counter()
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
            mp = max_position_of(self.cfg) * b.contract_size
            capital = mp / fm if inverse else mp * fm
        summary = summarize(
            bs,
            samples,
            self.fills,
            tick=self.cfg.quoting.tick,
            capital=capital,
            interval_s=b.equity_interval_s,
            inverse=inverse,
            csize=b.contract_size,
            wall_s=self.wall,
        )
        summary.update(accounting_summary(self.acc, self.cfg, b, bs, samples, capital))
        st = self.mem.state[0]
        summary["requotes"] = int(st["n_requotes"])
        summary["bad_quotes"] = int(st["n_bad_quotes"])  # NaN / non-positive / crossed: ignored
        summary["bad_trades"] = int(st["n_bad_trades"])
        # the signals: calls, results ignored (not finite, a negative factor), depth rows not kept
        summary["signal_calls"] = int(st["n_sig_calls"])
        summary["signal_bad"] = int(st["n_sig_bad"])
        summary["signal_depth_dropped"] = int(st["n_depth_dropped"])
        summary.update(risk_summary(self.mem.state))  # the core's risk limits: all 0 / False when none bound
        fills = self.fills.fills()
        summary = _with_e2e(summary, time.perf_counter() - (self.t_start or t_finish))
        return BacktestResult(summary, samples, fills, self.cfg, self.bt, self.meta)


def _with_e2e(summary: dict, wall_s: float) -> dict:
    """``summary`` with the end-to-end figures after ``events_per_s`` (the loop's own rate):
    ``wall_s_e2e``, the wall time from the first read (or ``feed``) to the end of ``finish``, and
    ``events_per_s_e2e``."""
    out = {}
    for key, v in summary.items():
        out[key] = v
        if key == "events_per_s":
            out["wall_s_e2e"] = wall_s
            out["events_per_s_e2e"] = summary["events"] / wall_s if wall_s > 0 else None
    return out


@dataclass
class StorePlan:
    """The stores of one run, in time order, checked before any is read (``plan_stores``)."""

    paths: list[Path]
    metas: list[dict]
    spans: list[tuple[int, int] | None]  # first / last local_ts of each store (None: empty)
    notes: list[str]
    start_ns: int | None = None
    end_ns: int | None = None

    def meta(self) -> dict:
        """The first store's metadata, with the run order, the window and the notes."""
        meta = dict(self.metas[0]) if self.metas else {}
        if len(self.paths) > 1:
            meta["files"] = [str(x) for x in self.paths]
        if self.start_ns is not None or self.end_ns is not None:
            meta["window"] = {"start_ns": self.start_ns, "end_ns": self.end_ns}
        if self.notes:
            meta["notes"] = list(self.notes)
        return meta

    def rows(self) -> int | None:
        """Rows to read (None with a window: only the row groups tell)."""
        if self.start_ns is not None or self.end_ns is not None:
            return None
        return sum(int(m.get("rows", 0)) for m in self.metas)

    def active_ns(self, gap_ns: int) -> int:
        """Time the run samples: the stores' spans inside the window, and the pauses between
        stores shorter than ``gap_ns`` (longer ones are gaps, not sampled)."""
        total = 0
        prev_end: int | None = None
        for sp in self.spans:
            if sp is None:
                continue
            lo, hi = sp
            if self.start_ns is not None:
                lo = max(lo, self.start_ns)
            if self.end_ns is not None:
                hi = min(hi, self.end_ns)
            if hi < lo:
                continue
            total += hi - lo
            if prev_end is not None and 0 < lo - prev_end <= gap_ns:
                total += lo - prev_end
            prev_end = hi
        return total


def _fmt_ns(ns: int) -> str:
    """``ns`` since the epoch as ISO-8601 UTC to the millisecond (the integer when out of range)."""
    import datetime as dt

    try:
        d = dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return f"{ns} ns"
    return f"{d:%Y-%m-%dT%H:%M:%S}.{ns % 1_000_000_000 // 1_000_000:03d}Z"


def _span_text(sp: tuple[int, int]) -> str:
    return f"{_fmt_ns(sp[0])} to {_fmt_ns(sp[1])}"


def plan_stores(
    paths: list[Path] | list[str] | list[Path | str], start_ns: int | None = None, end_ns: int | None = None
) -> StorePlan:
    """Check the stores of one run and put them in time order.

    Stores given out of order run in time order (with a note); stores that overlap in time stop
    the run with one line naming both; stores outside the window ``[start_ns, end_ns)`` are
    dropped (none left: one line naming the window and the data's span).

    Raises
    ------
    UserError
        A store is missing or not an event store, two stores overlap, the window is empty or
        holds no data.
    """
    from avmm.data import store

    if start_ns is not None and end_ns is not None and start_ns >= end_ns:
        raise UserError(
            f"the window [{_fmt_ns(start_ns)}, {_fmt_ns(end_ns)}) is empty: its start is not before its end"
        )
    given = [Path(x) for x in paths]
    metas = [store.read_meta(pth) for pth in given]
    spans: list[tuple[int, int] | None] = []
    for m in metas:
        ok = m.get("rows") and m.get("start_ns") is not None and m.get("end_ns") is not None
        spans.append((int(m["start_ns"]), int(m["end_ns"])) if ok else None)
    full = [i for i in range(len(given)) if spans[i] is not None]
    order = sorted(full, key=lambda i: spans[i][0]) + [i for i in range(len(given)) if spans[i] is None]  # type: ignore[index]
    notes = []
    if order[: len(full)] != full:
        notes.append("stores given out of time order; run in time order: " + ", ".join(str(given[i]) for i in order))
    _check_overlaps([given[i] for i in order], [spans[i] for i in order])
    if start_ns is not None or end_ns is not None:
        order = [i for i in order if _overlaps(spans[i], start_ns, end_ns)]
        if not order:
            raise UserError(_no_data_in_window(spans, start_ns, end_ns))
    return StorePlan(
        [given[i] for i in order], [metas[i] for i in order], [spans[i] for i in order], notes, start_ns, end_ns
    )


def _check_overlaps(paths: list[Path], spans: list[tuple[int, int] | None]) -> None:
    """Stores in time order must follow one another (one may start when the previous ends)."""
    prev: tuple[Path, tuple[int, int]] | None = None
    for pth, sp in zip(paths, spans, strict=True):
        if sp is None:
            continue
        if prev is not None and sp[0] < prev[1][1]:
            raise UserError(
                f"{prev[0]} and {pth} overlap in time ({_span_text(prev[1])} and {_span_text(sp)}); "
                "give stores that follow one another"
            )
        prev = (pth, sp)


def _overlaps(sp: tuple[int, int] | None, start_ns: int | None, end_ns: int | None) -> bool:
    return sp is not None and (start_ns is None or sp[1] >= start_ns) and (end_ns is None or sp[0] < end_ns)


def _no_data_in_window(spans: list[tuple[int, int] | None], start_ns: int | None, end_ns: int | None) -> str:
    known = [s for s in spans if s is not None]
    lo = "-inf" if start_ns is None else _fmt_ns(start_ns)
    hi = "+inf" if end_ns is None else _fmt_ns(end_ns)
    if not known:
        return f"no data in the window [{lo}, {hi}): the stores are empty"
    have = f"{_fmt_ns(min(s[0] for s in known))} to {_fmt_ns(max(s[1] for s in known))}"
    return f"no data in the window [{lo}, {hi}): the data spans {have}"


def _is_paths(data: Any) -> bool:
    return isinstance(data, (str, Path)) or (
        isinstance(data, (list, tuple)) and len(data) > 0 and all(isinstance(x, (str, Path)) for x in data)
    )


def _chunks_of(
    data: Any,
    chunk_events: int,
    start_ns: int | None = None,
    end_ns: int | None = None,
    *,
    read_ahead: bool = False,
) -> tuple[Iterator[Any], dict, int | None, StorePlan | None]:
    """(iterator of chunks, meta, total rows or None, the stores' plan) for the accepted ``data``
    forms. Stores with ``read_ahead``: read on a thread, one chunk ahead (``read_ahead``); the
    caller closes the iterator when it stops early."""
    if isinstance(data, np.ndarray):
        if start_ns is not None or end_ns is not None:
            lt = np.ascontiguousarray(data["local_ts"])
            lo = 0 if start_ns is None else int(np.searchsorted(lt, start_ns, "left"))
            hi = lt.shape[0] if end_ns is None else int(np.searchsorted(lt, end_ns, "left"))
            data = data[lo:hi]
        n = data.shape[0]
        return (data[i : i + chunk_events] for i in range(0, max(n, 1), chunk_events)), {}, n, None
    if _is_paths(data):
        plan = plan_stores([data] if isinstance(data, (str, Path)) else list(data), start_ns, end_ns)

        def groups() -> Iterator[list[_Cols]]:
            last: int | None = None
            for pth in plan.paths:
                reader = _read_columns(pth, chunk_events, start_ns=start_ns, end_ns=end_ns, after_ns=last)
                yield from reader.groups() if read_ahead else ([c] for c in reader)
                last = reader.last_ts if reader.last_ts is not None else last

        return _flat(read_ahead_of(groups) if read_ahead else groups()), plan.meta(), plan.rows(), plan
    if start_ns is not None or end_ns is not None:
        raise TypeError("run_backtest: start_ns / end_ns need a store or an EVENT_DTYPE array")
    return iter(data), {}, None, None


def read_ahead_of(make: Callable[[], Iterator[T]]) -> Iterator[T]:
    """The items of ``make()`` (the chunks of one row group: the unit of reading) read on a thread
    (``avmm-read-ahead``) while the consumer works on the previous one: one item ahead, so memory is
    two (reading Parquet and the compiled loop both release the GIL). An error while reading (a
    corrupt store) is raised here, where the item would have come; the thread ends with the iterator
    (exhausted, failed or closed: close it when stopping early)."""
    from avmm.data.files import prefetch
    from avmm.data.issues import Counters

    return prefetch(lambda _c, _p: make(), Counters(), depth=1, name="avmm-read-ahead")


def _flat(groups: Iterator[list[T]]) -> Iterator[T]:
    """The items of each list in turn; closing this closes ``groups`` (and so its reader thread)."""
    try:
        for g in groups:
            yield from g
    finally:
        close = getattr(groups, "close", None)
        if close is not None:
            close()


class _Cols:
    """The loop's columns of one chunk, by name (what ``as_columns`` reads)."""

    __slots__ = COLS

    def __init__(self, arrays: list[np.ndarray]) -> None:
        for name, arr in zip(COLS, arrays, strict=True):
            setattr(self, name, arr)

    def __getitem__(self, i: int) -> np.ndarray:
        return getattr(self, COLS[i])


class _read_columns:  # noqa: N801  (used as a function: an iterator that remembers its last time)
    """Stream only the eight columns the loop uses, one row group at a time, with buffered reads
    (not a memory map, whose touched pages would count in the resident set): memory is one row
    group plus one chunk, whatever the file size. Checked as ``store.iter_columns`` is (nulls,
    order, also against ``after_ns``, the last time of the previous store)."""

    def __init__(
        self,
        path: Path,
        chunk_events: int,
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
        after_ns: int | None = None,
    ) -> None:
        from avmm.data import store

        self.reader = store.StoreReader(
            path, COLS, chunk_events, start_ns=start_ns, end_ns=end_ns, after_ns=after_ns, memory_map=False
        )

    @property
    def last_ts(self) -> int | None:
        return self.reader.last_ts

    def __iter__(self) -> Iterator[_Cols]:
        for arrays in self.reader:
            yield _Cols(arrays)

    def groups(self) -> Iterator[list[_Cols]]:
        """The chunks of one row group at a time (the unit of reading ahead)."""
        for parts in self.reader.groups():
            yield [_Cols(arrays) for arrays in parts]


def run_backtest(
    data: Any,
    cfg: StrategyConfig | None = None,
    *,
    backtest: BacktestConfig | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    meta: dict | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    on_fills: Callable[[np.ndarray], None] | None = None,
) -> BacktestResult:
    """Run one backtest of the strategy core over ``data``.

    Parameters
    ----------
    data : path, list of paths, ndarray or iterable of chunks
        An event store (``avmm data convert``), several stores run one after the other as one
        session (in time order, whatever the order given; stores overlapping in time are an
        error), an ``EVENT_DTYPE`` array, or an iterable of ``EventColumns`` / ``EVENT_DTYPE``
        chunks in local-time order.
    cfg : StrategyConfig, optional
        The strategy's sections (default: the defaults). A whole ``avmm.config.Config`` may be
        given: its ``[backtest]`` section is then used unless ``backtest`` is given.
    backtest : BacktestConfig, optional
        The exchange model (latency, fees, queue model, ...).
    progress : callable, optional
        ``progress(rows_done, rows_total_or_None)``, called after each chunk.
    meta : dict, optional
        Metadata to add to the store's (``tick_size`` / ``lot_size`` set the instrument).
    start_ns, end_ns : int, optional
        Only the events with ``start_ns <= local_ts < end_ns`` (stores and arrays; a store's row
        groups outside the window are not read).
    on_fills : callable, optional
        ``on_fills(fills)`` with every batch of completed fills (``FILL_DTYPE``, markouts filled
        in) as the run goes; the array is reused afterwards, so copy or write it at once.

    Returns
    -------
    BacktestResult
        The summary figures, equity samples, fills and the config as run.

    Raises
    ------
    UserError
        A store is missing, damaged, not an event store, unsorted or overlapping another; the
        window holds no data; the equity samples would not fit in memory.
    """
    cfg = cfg if cfg is not None else StrategyConfig()
    backtest = _backtest_section(cfg, backtest)
    chunks, meta0, total, plan = _chunks_of(
        data, backtest.chunk_events, start_ns, end_ns, read_ahead=backtest.read_ahead
    )
    if plan is not None:
        check_sample_memory(backtest, plan.active_ns(round(backtest.gap_s * 1e9)))
    elif isinstance(data, np.ndarray) and data.shape[0] > 1:
        lt = data["local_ts"]
        check_sample_memory(backtest, max(0, int(lt[-1]) - int(lt[0])))
    meta = {**meta0, **(meta or {})}
    cfg = adapt_config(cfg, meta)
    bt = Backtester(cfg, backtest=backtest, meta=meta, on_fills=on_fills)
    done = 0
    bt.t_start = time.perf_counter()  # from the first read
    try:
        for ch in chunks:
            bt.feed(ch)
            done += len(ch[0]) if not isinstance(ch, np.ndarray) else ch.shape[0]
            if progress is not None:
                progress(done, total)
    finally:
        if plan is not None:  # our reader (a thread with read-ahead): ended before anything else happens
            chunks.close()  # type: ignore[attr-defined]
    return bt.finish()


def available_memory() -> int:
    """Bytes of memory this process may still use: ``MemAvailable``, within the cgroup's limit."""
    import os

    have = 0
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    have = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if not have:
        try:
            have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (OSError, ValueError, AttributeError):
            have = 1 << 34
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit.isdigit() and used.isdigit():
            have = min(have, max(int(limit) - int(used), 0))
    except (OSError, ValueError):
        pass
    return have


def sample_memory(backtest: BacktestConfig, active_ns: int) -> int:
    """Bytes the equity samples of ``active_ns`` of data take (kept in blocks, then joined)."""
    eq_ns = max(1, round(backtest.equity_interval_s * 1e9))
    return (active_ns // eq_ns + 2) * SAMPLE_DTYPE.itemsize * 2


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 / 10 else f"{n / 2**20:,.0f} MiB"


def check_sample_memory(backtest: BacktestConfig, active_ns: int, limit: int | None = None) -> None:
    """One line, before the run, when the equity samples would take more than half the memory
    the machine has free."""
    need = sample_memory(backtest, active_ns)
    have = available_memory() if limit is None else limit
    if need > have // 2:
        raise UserError(
            f"equity samples every {backtest.equity_interval_s:g} s over {active_ns / 3.6e12:,.1f} h of data need "
            f"{_gib(need)} ({_gib(have)} of memory free); raise backtest.equity_interval_s"
        )


def warm_up(notice_after_s: float | None = None) -> None:
    """Compile (or load from the on-disk cache) the loop for the store's column types; with
    ``notice_after_s``, say so on stderr when that takes longer (the first run after installing or
    editing avmm compiles for about a minute). No thread is left running."""
    import os
    import sys
    import threading

    from avmm.data.synth import generate

    def notice() -> None:
        where = os.environ.get("NUMBA_CACHE_DIR", "the numba cache")
        print(f"avmm: compiling the backtest loop (first run only; cached in {where})", file=sys.stderr, flush=True)

    timer = None
    if notice_after_s is not None:
        timer = threading.Timer(notice_after_s, notice)
        timer.daemon = True
        timer.start()
    try:
        run_backtest(next(generate(2000, 1)), StrategyConfig())
    finally:
        if timer is not None:
            timer.cancel()
            timer.join()
