"""The backtester's exchange model driven one call at a time: orders, market events and the
backtester's records, for any runtime that is not the compiled backtest loop (a paper gateway, the
emulator's matching engine).

``PaperGateway`` fills orders with the backtester's exchange model (latency, queue position, fees,
post-only and risk checks: ``exchange.py`` through the compiled entry points of ``paper.py``)
against the market events it is given (``quote``, ``trade``, ``depth``, ``clear``, at their exchange
time). ``send(t, actions, n)`` takes the core's place / cancel / amend records (``ACTION_DTYPE``;
``place`` / ``cancel`` / ``amend`` for one order); the venue's answers go to the ``responses`` object
given (``ack``, ``reject``, ``canceled``, ``fill``: ``VenueResponses``) as ``advance(t)`` delivers
them. Its records are the backtester's, so a session ends with the backtester's summary
(``summary``), fill records (with markouts) and equity samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import numpy as np

from avmm.backtest.config import BacktestConfig
from avmm.backtest.latency import latency_table
from avmm.backtest.market import Accounting, accounting_summary, setup_accounting
from avmm.backtest.metrics import FillStats, summarize
from avmm.backtest.paper import (
    ADV_FULL,
    ADV_RESPONSE,
    x_advance,
    x_clear,
    x_depth,
    x_depth_rows,
    x_finish,
    x_quote,
    x_send,
    x_trade,
)
from avmm.backtest.queue import depth_rehash
from avmm.backtest.runner import bt_params
from avmm.backtest.state import (
    FILL_DTYPE,
    MAX_X,
    MO_CAP,
    MSG_DTYPE,
    QCAP,
    RS_ACK,
    RS_CANCELED,
    RS_FILL,
    RS_REJECT,
    SAMPLE_DTYPE,
    XORDER_DTYPE,
    new_bt_state,
    new_cache,
)
from avmm.core.config import StrategyConfig, max_position_of
from avmm.core.risk import risk_summary
from avmm.core.state import ACT_AMEND, ACT_CANCEL, ACT_PLACE, ACTION_DTYPE
from avmm.jit import bind

FOUT_CAP = 4096
LIVE_BT_PARAMS = ("max_position", "post_only", "timer_ns", "timer_grid")  # follow the strategy's params
SOUT_CAP = 4096


class VenueResponses(Protocol):
    """What receives the venue's answers (``live.gateway.Responses`` is one)."""

    def ack(self, t: int, oid: int) -> None: ...

    def reject(self, t: int, oid: int) -> None: ...

    def canceled(self, t: int, oid: int) -> None: ...

    def fill(self, t: int, oid: int, side: int, px: float, qty: float, fee: float) -> None: ...


def one_action(kind: int, oid: int, side: int, px: float, qty: float) -> np.ndarray:
    """One ``ACTION_DTYPE`` record (a place, cancel or amend of one order)."""
    a = np.zeros(1, dtype=ACTION_DTYPE)
    a["kind"], a["oid"], a["side"], a["px"], a["qty"] = kind, oid, side, px, qty
    return a


@dataclass
class PaperRecords:
    """What the paper gateway hands out: completed fill records and equity samples."""

    on_fills: Callable[[np.ndarray], None] | None = None
    on_samples: Callable[[np.ndarray], None] | None = None
    fills: FillStats = field(default_factory=FillStats)
    samples: list[np.ndarray] = field(default_factory=list)


class PaperGateway:
    """Orders filled by the backtester's exchange model against the market events given.

    Parameters
    ----------
    cfg : StrategyConfig
        The strategy (tick, lot, position limit, post-only).
    backtest : BacktestConfig
        The exchange model: latencies, fees, queue model, market (spot balances / perpetual).
    responses : VenueResponses
        Receives the acks, rejects, cancels and fills as they come due.
    meta : dict, optional
        What the backtest takes from a store's metadata (``market``, ``source``, ``symbol``).
    """

    def __init__(
        self,
        cfg: StrategyConfig,
        backtest: BacktestConfig,
        responses: VenueResponses,
        params: np.ndarray,
        meta: dict[str, Any] | None = None,
        records: PaperRecords | None = None,
    ) -> None:
        self.cfg, self.bt, self.resp = cfg, backtest, responses
        self.meta = meta or {}
        self.bp = bt_params(cfg, backtest, params)
        self.bs = new_bt_state()
        self.acc: Accounting = setup_accounting(cfg, backtest, self.meta, self.bp, self.bs)
        self.xo = np.zeros(MAX_X, dtype=XORDER_DTYPE)
        self.keys, self.vals = new_cache(self.bs)
        self.lat = latency_table(backtest)
        self.rq = np.zeros(QCAP, dtype=MSG_DTYPE)
        self.rs = np.zeros(QCAP, dtype=MSG_DTYPE)
        self.ring = np.zeros(MO_CAP, dtype=FILL_DTYPE)
        self.fout = np.zeros(FOUT_CAP + 2 * MAX_X + 16, dtype=FILL_DTYPE)
        self.sout = np.zeros(SOUT_CAP, dtype=SAMPLE_DTYPE)
        self.msg = np.zeros(1, dtype=MSG_DTYPE)
        self.rec = records if records is not None else PaperRecords()
        self.finished = False
        self._n_fout, self._n_sout = self.bs["n_fout"], self.bs["n_sout"]  # views: one read each
        self._compile()

    def _compile(self) -> None:
        """Compile every entry point now, on copies of the records (the state is not touched): a
        first compilation (tens of seconds on a cold cache) must not happen during the session.
        The per-event ones are kept as their compiled entry points (``jit.bind``: no type dispatch
        per call, ~half the cost of a call with this many arrays)."""
        bp, bs, xo, lat = self.bp.copy(), self.bs.copy(), self.xo.copy(), self.lat.copy()
        keys, vals, rq, rs = self.keys.copy(), self.vals.copy(), self.rq.copy(), self.rs.copy()
        ring, fout, sout, msg = self.ring.copy(), self.fout.copy(), self.sout.copy(), self.msg.copy()
        fts, frate = self.acc.fund_ts, self.acc.fund_rate
        self._x_send = bind(x_send, bs, np.zeros(1, dtype=ACTION_DTYPE), 0, lat, rq, 1)
        self._x_advance = bind(x_advance, bp, bs, xo, keys, vals, lat, rq, rs, ring, fout, sout, fts, frate, 1, 1, msg)
        self._x_quote = bind(x_quote, bp, bs, xo, keys, vals, lat, rs, ring, fout, fts, 2, math.nan, 0.0, math.nan, 0.0)
        self._x_trade = bind(x_trade, bp, bs, xo, keys, vals, lat, rs, ring, fout, fts, 3, math.nan, 0.0, 0)
        self._x_depth = bind(x_depth, bp, bs, xo, keys, vals, ring, fout, fts, 4, 1, math.nan, 0.0)
        self._x_depth_rows = bind(x_depth_rows, bp, bs, xo, keys, vals, ring, fout, fts, 4, np.zeros((1, 3)), 0)
        x_clear(bp, bs, xo, keys, ring, fout, fts, 5)
        x_finish(bp, bs, xo, ring, fout, sout)
        k2, v2 = new_cache(bs, 2 * keys.shape[1])  # a depth book outgrowing its table (a burst of levels)
        depth_rehash(bs, keys, vals, k2, v2)
        self._bind_records()

    def _bind_records(self) -> None:
        """The per-event entry points with the records bound in front (C-level ``partial``s, as
        ``Engine`` binds its block): again whenever the depth cache is replaced."""
        bp, bs, xo, keys, vals, lat, rs, ring, fout = (
            self.bp, self.bs, self.xo, self.keys, self.vals, self.lat, self.rs, self.ring, self.fout,
        )  # fmt: skip
        fts = self.acc.fund_ts
        self._advance = partial(
            self._x_advance, bp, bs, xo, keys, vals, lat, self.rq, rs, ring, fout, self.sout, fts, self.acc.fund_rate
        )
        self._quote = partial(self._x_quote, bp, bs, xo, keys, vals, lat, rs, ring, fout, fts)
        self._trade = partial(self._x_trade, bp, bs, xo, keys, vals, lat, rs, ring, fout, fts)
        self._depth = partial(self._x_depth, bp, bs, xo, keys, vals, ring, fout, fts)
        self._depth_rows = partial(self._x_depth_rows, bp, bs, xo, keys, vals, ring, fout, fts)

    # --- the core's orders ------------------------------------------------------------------------
    def send(self, t: int, actions: np.ndarray, n: int) -> None:
        """The first ``n`` records of ``actions`` (``ACTION_DTYPE``) leave at ``t``."""
        if n > 0:
            self._x_send(self.bs, actions, n, self.lat, self.rq, t)

    # one order at a time (scripts, tests): the same path as ``send``
    def place(self, t: int, oid: int, side: int, px: float, qty: float) -> None:
        self.send(t, one_action(ACT_PLACE, oid, side, px, qty), 1)

    def cancel(self, t: int, oid: int) -> None:
        self.send(t, one_action(ACT_CANCEL, oid, 0, 0.0, 0.0), 1)

    def amend(self, t: int, oid: int, side: int, px: float, qty: float) -> None:
        self.send(t, one_action(ACT_AMEND, oid, side, px, qty), 1)

    def params_changed(self, cfg: StrategyConfig, params: np.ndarray) -> None:
        """The exchange model's fields that follow the strategy's parameters: the position limit
        of the risk check, post-only, the timer (a refresh grid's step)."""
        bp = bt_params(cfg, self.bt, params)
        for name in LIVE_BT_PARAMS:
            self.bp[name] = bp[name]

    def advance(self, t: int, inclusive: bool = True) -> None:
        """The requests arriving and the responses due before ``t`` (at ``t`` too when
        ``inclusive``), in time order; each response goes to ``responses`` (which may send more)."""
        m, adv, inc = self.msg, self._advance, int(inclusive)
        nf, ns = self._n_fout, self._n_sout
        while True:
            st = adv(t, inc, m)
            if nf[0] or ns[0]:
                self._drain()
            if st == ADV_RESPONSE:
                self._deliver(*m.item(0))
            elif st != ADV_FULL:
                return

    def _deliver(self, ts: int, kind: int, oid: int, side: int, px: float, qty: float, fee: float) -> None:
        """One response (a ``MSG_DTYPE`` record's fields, in order) to ``responses``."""
        if kind == RS_FILL:
            self.resp.fill(ts, oid, side, px, qty, fee)
        elif kind == RS_ACK:
            self.resp.ack(ts, oid)
        elif kind == RS_REJECT:
            self.resp.reject(ts, oid)
        elif kind == RS_CANCELED:
            self.resp.canceled(ts, oid)

    # --- market data at the venue -----------------------------------------------------------------
    def quote(self, t: int, bid: float, bid_qty: float, ask: float, ask_qty: float) -> None:
        self._quote(t, bid, bid_qty, ask, ask_qty)
        if self._n_fout[0]:
            self._drain()

    def trade(self, t: int, px: float, qty: float, side: int) -> None:
        self._trade(t, px, qty, side)
        if self._n_fout[0]:
            self._drain()

    def depth(self, t: int, side: int, px: float, qty: float) -> None:
        while self._depth(t, side, px, qty):
            old_keys, old_vals = self.keys, self.vals
            self.keys, self.vals = new_cache(self.bs, 2 * old_keys.shape[1])
            depth_rehash(self.bs, old_keys, old_vals, self.keys, self.vals)
            self._bind_records()
        if self._n_fout[0]:
            self._drain()

    def depth_rows(self, t: int, rows: np.ndarray) -> None:
        """The levels of one depth update at ``t`` in one call: ``rows`` (n, 3) float64 of
        ``(side, px, qty)``, applied in order (as ``depth`` one by one)."""
        rows = np.ascontiguousarray(rows, dtype=np.float64)
        k, n = 0, rows.shape[0]
        while True:
            k = self._depth_rows(t, rows, k)
            if k >= n:
                break
            old_keys, old_vals = self.keys, self.vals
            self.keys, self.vals = new_cache(self.bs, 2 * old_keys.shape[1])
            depth_rehash(self.bs, old_keys, old_vals, self.keys, self.vals)
            self._bind_records()
        if self._n_fout[0]:
            self._drain()

    def clear(self, t: int) -> None:
        x_clear(self.bp, self.bs, self.xo, self.keys, self.ring, self.fout, self.acc.fund_ts, t)
        if self._n_fout[0]:
            self._drain()

    # --- records and the end ----------------------------------------------------------------------
    def _drain(self) -> None:
        bs = self.bs
        nf, ns = int(bs["n_fout"][0]), int(bs["n_sout"][0])
        if nf:
            f = self.fout[:nf]
            self.rec.fills.add(f)
            if self.rec.on_fills is not None:
                self.rec.on_fills(f)
            bs["n_fout"] = 0
        if ns:
            s = self.sout[:ns].copy()
            self.rec.samples.append(s)
            if self.rec.on_samples is not None:
                self.rec.on_samples(s)
            bs["n_sout"] = 0

    def finish(self) -> None:
        """The end of the session: the last sample and the fills waiting for their markouts."""
        if self.finished:
            return
        while x_finish(self.bp, self.bs, self.xo, self.ring, self.fout, self.sout) > 0:
            self._drain()
        self._drain()
        self.finished = True

    def samples(self) -> np.ndarray:
        s = self.rec.samples
        return np.concatenate(s) if s else np.zeros(0, dtype=SAMPLE_DTYPE)

    def summary(self, engine_state: np.ndarray, wall_s: float) -> dict[str, Any]:
        """The backtester's summary of the session so far (``Backtester.finish``'s figures)."""
        samples = self.samples()
        return paper_summary(self.cfg, self.bt, self.acc, self.bs[0], samples, self.rec.fills, engine_state, wall_s)


def capital_of(cfg: StrategyConfig, b: BacktestConfig, first_mid: float) -> float:
    capital = b.initial_cash
    if capital <= 0 and math.isfinite(first_mid):
        mp = max_position_of(cfg) * b.contract_size
        capital = mp / first_mid if b.contract == "inverse" else mp * first_mid
    return capital


def paper_summary(
    cfg: StrategyConfig,
    b: BacktestConfig,
    acc: Accounting,
    bs: Any,
    samples: np.ndarray,
    fills: FillStats,
    engine_state: np.ndarray,
    wall_s: float,
) -> dict[str, Any]:
    """The figures of ``backtest/metrics.py summarize`` and ``market.accounting_summary``, and the
    core's counters, as ``Backtester.finish`` reports them."""
    capital = capital_of(cfg, b, float(bs["first_mid"]))
    inverse = b.contract == "inverse"
    out = summarize(
        bs,
        samples,
        fills,
        tick=cfg.quoting.tick,
        capital=capital,
        interval_s=b.equity_interval_s,
        inverse=inverse,
        csize=b.contract_size,
        wall_s=wall_s,
    )
    out.update(accounting_summary(acc, cfg, b, bs, samples, capital))
    from avmm.backtest.runner import _with_e2e

    out = _with_e2e(out, wall_s)
    st = engine_state[0]
    out["requotes"] = int(st["n_requotes"])
    out["bad_quotes"] = int(st["n_bad_quotes"])
    out["bad_trades"] = int(st["n_bad_trades"])
    out["signal_calls"] = int(st["n_sig_calls"])
    out["signal_bad"] = int(st["n_sig_bad"])
    out["signal_depth_dropped"] = int(st["n_depth_dropped"])
    out.update(risk_summary(engine_state))
    return out
