"""The trading runtime without its I/O: the strategy core (``Engine``), a gateway, the journal, the
timer and the feed's health, driven one event at a time.

Each market event has two sides, called in the backtest loop's order (``backtest/loop.py``):

* ``venue_quote`` / ``venue_trade`` / ``venue_depth`` / ``venue_clear`` -- the event at the venue,
  at its exchange time: the paper gateway's book, queues and fills;
* ``core_quote`` / ``core_trade`` / ``core_depth`` -- the event at the strategy, at its local time:
  the core's handlers, whose actions are journaled and sent.

Before either, everything due earlier runs in time order: requests arriving at the venue, responses
(journaled, then handed to the core, whose new actions leave at the response's time) and the timer.
Ties are the loop's: market data at the venue first; at the strategy, everything else first.
``tick(t)`` runs what is due by ``t`` (the live runtime's clock between events).

Health: ``set_health(t, False, why)`` (a stale feed, a resync, a crossed book, a lost connection)
cancels every working order (``Engine.cancel_all``) and stops quoting: the core gets no market
events and no timer until the feed is healthy again (its book is marked empty, so a fill meanwhile
does not requote); the first quote after that requotes. So does a feed lagging the venue's clock
by more than ``risk.max_feed_lag_ms`` (``feed_lag``: the session measures it on the events with a
venue stamp; healthy again under half of it) -- a rule of the runtime, as the core sees one clock.
``pause(t, True)`` (``avmm ctl pause``) does the same until ``pause(t, False)``, whatever the
feed's health meanwhile; it is not a halt. ``notify`` (optional) hears of every health change
(``"health"``, the reason) and every halt (``"halt"``): rare events, never per market event.

Risk: the core's limits (``core/risk.py``) act inside the core; the trader journals each change of
what they did (``risk`` events: 'halted: max_loss', 'reduce-only: max_loss_day', 'resumed', ...)
when the core's ``risk_seq`` moves. ``kill(t, flatten)`` halts the core from outside (the kill
switch: every order cancelled; with ``flatten``, taker orders until the position is 0) and
``resume(t)`` lifts it. ``day_pnl0`` is the PnL of UTC day ``day_pnl_day`` (days since the
epoch; -1: the session's first) before this session: the core's ``risk.max_loss_day`` counts from
it when the session starts on that day.

Control (``live/control.py``): ``apply_params`` changes the running core's parameters (the live
keys of ``avmm ctl set``); the kill switch calls ``kill``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from avmm.backtest.config import BacktestConfig
from avmm.backtest.state import RS_ACK, RS_CANCELED, RS_FILL, RS_REJECT
from avmm.backtest.venue import PaperGateway, PaperRecords
from avmm.core.config import StrategyConfig
from avmm.core.engine import Engine
from avmm.core.risk import reason as risk_reason
from avmm.core.state import ACT_CANCEL
from avmm.events import CLEAR
from avmm.live.gateway import Responses
from avmm.live.journal import Journal


class Trader(Responses):
    """One symbol's strategy and its gateway (paper), with an optional journal.

    ``healthy`` starts True (a replay); the live runtime sets it from the feed's health.
    """

    def __init__(
        self,
        cfg: StrategyConfig,
        backtest: BacktestConfig,
        *,
        meta: dict[str, Any] | None = None,
        journal: Journal | None = None,
        healthy: bool = True,
        day_pnl0: float = 0.0,
        day_pnl_day: int = -1,
    ) -> None:
        self.cfg, self.bt = cfg, backtest
        self.engine = Engine(cfg)
        self.engine.params["log_rate"] = 0.0
        self.engine.params["day_pnl0"] = day_pnl0
        self.engine.params["day_pnl_day"] = day_pnl_day
        self._risk_seq = self.engine.state["risk_seq"]  # a view: read after each call of the core
        self._risk_seen = 0
        self.journal = journal
        recs = PaperRecords()
        if journal is not None:
            recs.on_fills = journal.fills
            recs.on_samples = journal.samples
        self.gw = PaperGateway(cfg, backtest, self, self.engine.params, meta, recs)
        bp = self.gw.bp[0]
        self.bs = self.gw.bs  # the venue's records (counters, position, PnL)
        # the counters bumped per event, as views (``v[0] += 1``: a fifth of ``bs["n_events"] += 1``)
        self._n_events, self._n_quotes, self._n_trades, self._n_depth, self._n_timer = (
            self.bs[k] for k in ("n_events", "n_quotes", "n_trades", "n_depth", "n_timer")
        )
        self.timer_ns = int(bp["timer_ns"])
        self.timer_grid = int(bp["timer_grid"])
        self.next_timer = 0
        self.healthy = healthy
        self.reason = "ok" if healthy else "starting"
        self.crossed = False
        self.paused = False
        self.stopping = False  # halt(): the session ends
        self.go = healthy  # quoting: healthy, not crossed, not lagging, not paused (kept by _apply_health)
        self.notify: Callable[[str, str], None] | None = None
        self.lagging = False
        self.max_lag_ns = round(cfg.risk.limit("max_feed_lag_ms") * 1e6)
        self.n_lag_periods = 0
        self.t_core = 0  # the core's clock: the last time it was called at
        self.n_halts = 0
        self.sends = 0  # calls that sent actions (a runtime compares it around an event)
        self.t_wall0 = time.perf_counter()
        self.last_fill: tuple[int, int, float, float] | None = None
        self.n_dup_fills = 0  # fills whose trade id the journal had counted

    # --- the core's actions -----------------------------------------------------------------------
    def _send(self, t: int, n: int) -> None:
        if n > 0:
            self.sends += 1
            a = self.engine.actions
            if self.journal is not None:
                self.journal.actions(t, a, n)
            self.gw.send(t, a, n)
        if self._risk_seq[0] != self._risk_seen:
            self._risk_changed(t)

    def _risk_changed(self, t: int) -> None:
        """The core's limits changed what it does: journaled (the time the core gives)."""
        self._risk_seen = int(self._risk_seq[0])
        st = self.engine.state[0]
        text = risk_reason(self.engine.state) or "resumed"
        if self.journal is not None:
            self.journal.event(int(st["limit_ns"]) or t, "risk", f"{text} (pnl {float(st['pnl']):.6g})")

    # --- the kill switch ----------------------------------------------------------------------------
    def kill(self, t: int, flatten: bool = False) -> int:
        """Halt the core: every order cancelled, nothing quoted until ``resume``; with ``flatten``,
        taker orders (marketable limits at the touch, immediate-or-cancel) until the position is 0
        (``flattening``). Returns the cancels sent."""
        t = max(t, self.t_core)
        self._until(t, True)
        self._clock(t)
        if flatten and self.paused:  # a pause would keep the market from the core: no taker order
            self.paused = False
            self.go = self.quoting()
            if self.journal is not None:
                self.journal.event(t, "control", "resumed (to flatten)")
        n = self.engine.flatten(t) if flatten else self.engine.halt(t)
        cancels = int(np.count_nonzero(self.engine.actions["kind"][:n] == ACT_CANCEL))
        self._send(t, n)
        return cancels

    def flattening(self) -> bool:
        """The core is still closing the position after ``kill(t, flatten=True)``."""
        return bool(self.engine.state["flatten"][0])

    def resume(self, t: int) -> None:
        """Lift a halt or reduce-only (a loss limit still breached binds again at the next event)."""
        t = max(t, self.t_core)
        self._until(t, True)
        self._clock(t)
        self._send(t, self.engine.resume(t))

    # --- responses (Responses): journaled, then to the core ------------------------------------------
    def ack(self, t: int, oid: int) -> None:
        if self.journal is not None:
            self.journal.answer(t, RS_ACK, oid)
        self.engine.on_ack(oid)

    def reject(self, t: int, oid: int) -> None:
        if self.journal is not None:
            self.journal.answer(t, RS_REJECT, oid)
        self.engine.on_reject(oid)

    def canceled(self, t: int, oid: int) -> None:
        if self.journal is not None:
            self.journal.answer(t, RS_CANCELED, oid)
        self.engine.on_canceled(oid)

    def fill(self, t: int, oid: int, side: int, px: float, qty: float, fee: float, trade_id: int = 0) -> None:
        """A fill; one with a ``trade_id`` the journal has counted already (a venue's replay, a
        reconciliation after a restart) is counted in ``n_dup_fills`` and goes no further."""
        j = self.journal
        if j is not None:
            if trade_id and j.fill_seen(trade_id):
                self.n_dup_fills += 1
                return
            j.response(t, RS_FILL, oid, side, px, qty, fee, trade_id)
        self.last_fill = (t, side, px, qty)
        self._clock(t)
        self._send(t, self.engine.on_fill(t, oid, side, px, qty, fee))

    # --- time -------------------------------------------------------------------------------------
    def _clock(self, t: int) -> None:
        if t > self.t_core:
            self.t_core = t

    def _until(self, t: int, inclusive: bool) -> None:
        """Requests, responses and timer ticks due before ``t`` (at ``t`` too when ``inclusive``)."""
        gw = self.gw
        while self.next_timer > 0 and (self.next_timer < t or (inclusive and self.next_timer == t)):
            tt = self.next_timer
            gw.advance(tt, True)
            self._n_timer[0] += 1
            if self.healthy and not self.paused:
                self._clock(tt)
                self._send(tt, self.engine.on_timer(tt))
            self.next_timer = tt + self.timer_ns
        gw.advance(t, inclusive)

    def tick(self, t: int) -> None:
        """Everything due by ``t`` (the clock between market events)."""
        self._until(t, True)

    def _start_timer(self, t: int) -> None:
        if self.next_timer == 0 and self.timer_ns > 0:
            if self.timer_grid:
                self.next_timer = (t // self.timer_ns + 1) * self.timer_ns
            else:
                self.next_timer = t + self.timer_ns

    # --- market data at the venue (exchange time) -------------------------------------------------
    def venue_quote(self, t: int, bid: float, bid_qty: float, ask: float, ask_qty: float) -> None:
        self._until(t, False)
        self.gw.quote(t, bid, bid_qty, ask, ask_qty)

    def venue_trade(self, t: int, px: float, qty: float, side: int) -> None:
        self._until(t, False)
        self.gw.trade(t, px, qty, side)

    def venue_depth(self, t: int, kind: int, side: int, px: float, qty: float) -> None:
        self._until(t, False)
        if kind == CLEAR:
            self.gw.clear(t)
        else:
            self.gw.depth(t, side, px, qty)

    # --- market data at the strategy (local time) -------------------------------------------------
    def core_quote(self, t: int, bid: float, bid_qty: float, ask: float, ask_qty: float) -> None:
        self._until(t, True)
        self._n_events[0] += 1
        self._n_quotes[0] += 1
        if (bid >= ask) != self.crossed:
            self._crossed(t, bid >= ask)
        if self.go:
            self._clock(t)
            self._send(t, self.engine.on_quote(t, bid, bid_qty, ask, ask_qty))
        self._start_timer(t)

    def core_trade(self, t: int, px: float, qty: float, side: int) -> None:
        self._until(t, True)
        self._n_events[0] += 1
        self._n_trades[0] += 1
        if self.go:
            self._clock(t)
            self._send(t, self.engine.on_trade(t, px, qty, side))
        self._start_timer(t)

    def core_depth(self, t: int, kind: int, side: int, px: float, qty: float) -> None:
        self._until(t, True)
        self._n_events[0] += 1
        self._n_depth[0] += 1
        self.engine.on_depth(kind, side, px, qty)
        self._start_timer(t)

    # --- health -----------------------------------------------------------------------------------
    def quoting(self) -> bool:
        """The feed lets the core quote: healthy, not crossed, not lagging."""
        return self.healthy and not self.crossed and not self.lagging

    def why(self) -> str:
        """Why the feed stops the core quoting (``reason`` when it does not)."""
        if self.crossed:
            return "crossed book"
        if self.lagging:
            return f"feed lag > {self.max_lag_ns / 1e6:g} ms"
        return self.reason

    def set_health(self, t: int, healthy: bool, reason: str) -> None:
        """The feed's health changed: unhealthy cancels everything and stops quoting."""
        was = self.go
        self.healthy, self.reason = healthy, reason
        if self.journal is not None:
            self.journal.event(t, "health", reason)
        if self.notify is not None:
            self.notify("health", reason)
        self._apply_health(t, was)

    def _crossed(self, t: int, crossed: bool) -> None:
        was = self.go
        self.crossed = crossed
        why = "crossed book" if crossed else "uncrossed"
        if self.journal is not None:
            self.journal.event(t, "health", why)
        if self.notify is not None:
            self.notify("health", why)
        self._apply_health(t, was)

    def feed_lag(self, t: int, lag_ns: int) -> None:
        """The venue's time at an event's arrival - its venue stamp (``risk.max_feed_lag_ms``: over
        it, every order cancelled and no quotes until it is under half of it again)."""
        if self.max_lag_ns <= 0:
            return
        lagging = lag_ns > (self.max_lag_ns // 2 if self.lagging else self.max_lag_ns)
        if lagging != self.lagging:
            was = self.go
            self.lagging = lagging
            if lagging:
                self.n_lag_periods += 1
            if self.journal is not None:
                text = f"feed lag {lag_ns / 1e6:.1f} ms" + (" > max_feed_lag_ms" if lagging else ": back under half")
                self.journal.event(t, "health", text)
            self._apply_health(t, was)

    def _apply_health(self, t: int, was: bool) -> None:
        now = self.go = self.quoting() and not self.paused
        if was and not now:
            if not self.paused:
                self.n_halts += 1
                if self.notify is not None:
                    self.notify("halt", self.why())
            self._cancel_all(t)

    def _cancel_all(self, t: int) -> int:
        t = max(t, self.t_core)
        self._until(t, True)
        self._clock(t)
        n = self.engine.cancel_all(t)
        self._send(t, n)
        self.engine.state["has_book"] = 0  # no requote on a fill or a timer until a quote
        return n

    def halt(self, t: int) -> None:
        """Cancel every working order (the end of a session, the kill switch)."""
        self._cancel_all(t)
        self.healthy, self.reason, self.go, self.stopping = False, "stopping", False, True

    # --- control ----------------------------------------------------------------------------------
    def pause(self, t: int, on: bool) -> int:
        """Pause (cancel every working order, quote nothing) or resume quoting; journaled. Returns the
        cancels sent (0 when nothing changed)."""
        if on == self.paused:
            return 0
        was = self.go
        self.paused = on
        if self.journal is not None:
            self.journal.event(t, "control", "paused" if on else "resumed")
        n = int(self.engine.state["n_actions"][0])
        self._apply_health(t, was)
        return int(self.engine.state["n_actions"][0]) - n

    def apply_params(self, cfg: StrategyConfig, params: np.ndarray, changed: list[str]) -> None:
        """The core's ``changed`` params fields set from ``params`` (``to_params(cfg)``) between two
        events; the gateway told (the paper venue's position limit, post-only, timer); the next
        market event requotes, and an implied gamma / k is solved again."""
        ep = self.engine.params
        for name in changed:
            ep[name] = params[name]
        self.cfg = cfg
        self.gw.params_changed(cfg, ep)
        self.timer_ns = int(self.gw.bp[0]["timer_ns"])
        st = self.engine.state
        st["dirty"] = 1
        if int(st["g_nsolve"][0]) > 0:
            st["g_last_ns"] = 0  # due at once

    # --- the end ----------------------------------------------------------------------------------
    def finish(self, t: int | None = None) -> dict[str, Any]:
        """Run what is due by ``t``, close the session's records; the summary."""
        if t is not None:
            self._until(t, True)
        self.gw.finish()
        s = self.summary()
        if self.journal is not None:
            self.journal.finish(self.gw.bs, self.engine.state, s)
        return s

    def summary(self) -> dict[str, Any]:
        return self.gw.summary(self.engine.state, time.perf_counter() - self.t_wall0)

    def orders(self) -> list[tuple[int, float, float]]:
        """Our working orders at the venue: (side, price, leaves)."""
        xo = self.gw.xo
        n = int(self.bs["x_hwm"][0])
        live = xo[:n][xo["live"][:n] != 0]
        return [(int(r["side"]), float(r["px"]), float(r["leaves"])) for r in live]

    def state(self) -> np.ndarray:
        return self.bs


def replay(trader: Trader, ev: np.ndarray, feed_ns: int = 0) -> dict[str, Any]:
    """Drive ``trader`` with ``EVENT_DTYPE`` rows merged as the backtest loop merges them: each row
    at the venue at its exchange time (never back in time), at the strategy at its local time +
    ``feed_ns``; at the end, the requests and responses still in flight. Returns the summary."""
    from avmm.backtest.state import INF_NS
    from avmm.events import QUOTE, TRADE

    n = ev.shape[0]
    exch, loc = ev["exch_ts"].astype(np.int64), ev["local_ts"].astype(np.int64)
    kind, side = ev["kind"], ev["side"]
    px, qty, px2, qty2 = ev["px"], ev["qty"], ev["px2"], ev["qty2"]
    ie = il = 0
    clock = -int(INF_NS)
    inf = int(INF_NS)
    while ie < n or il < n:
        te = max(int(exch[ie]), clock) if ie < n else inf
        tl = int(loc[il]) + feed_ns if il < n else inf
        if te <= tl:
            clock = te
            k = kind[ie]
            if k == QUOTE:
                trader.venue_quote(te, float(px[ie]), float(qty[ie]), float(px2[ie]), float(qty2[ie]))
            elif k == TRADE:
                trader.venue_trade(te, float(px[ie]), float(qty[ie]), int(side[ie]))
            else:
                trader.venue_depth(te, int(k), int(side[ie]), float(px[ie]), float(qty[ie]))
            ie += 1
        else:
            k = kind[il]
            if k == QUOTE:
                trader.core_quote(tl, float(px[il]), float(qty[il]), float(px2[il]), float(qty2[il]))
            elif k == TRADE:
                trader.core_trade(tl, float(px[il]), float(qty[il]), int(side[il]))
            else:
                trader.core_depth(tl, int(k), int(side[il]), float(px[il]), float(qty[il]))
            il += 1
    trader.next_timer = 0  # the loop ticks no more after the last row at the strategy
    trader.gw.advance(inf, True)
    return trader.finish()
