"""``avmm live``: the paper session's runtime (the feed, the core, the journal, the status) with its
orders sent to Binance by ``BinanceGateway`` instead of the paper exchange model.

``LiveTrader`` is the ``Trader`` with the gateway plugged in: the core's actions are journaled (the
journal's intent log when it has one: the action's record seq becomes its client id) and then sent;
the gateway's answers (``ack``, ``reject``, ``canceled``, ``fill`` with its trade id, ``unknown``)
are journaled, then given to the core. The backtester's records (``backtest/venue.PaperGateway``,
sent no order) still follow the market at the venue's time, and every real fill is booked into them
(``backtest/paper.x_fill``, with the venue's fee): the status, the summary, the journal's fill
records (with markouts) and ``avmm report`` are the paper session's.

``LiveSession`` quotes only while both the feed and the gateway are healthy (connected, the user
data stream on, reconciled); either going down cancels every order and stops quoting until both are
back. Its end (``stop()``, a signal, ``--duration``, a halt): the core cancels everything, the
gateway waits for the answers, cancels what is left at the venue, settles every order, and the
summary is written.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

from avmm.backtest.config import BacktestConfig
from avmm.backtest.paper import ADV_FULL, x_fill
from avmm.backtest.state import INF_NS, RS_ACK, RS_CANCELED, RS_FILL, RS_REJECT
from avmm.core.config import StrategyConfig
from avmm.jit import bind
from avmm.live.binance import BinanceGateway
from avmm.live.config import VenueConfig
from avmm.live.intents import K_UNKNOWN
from avmm.live.journal import Journal
from avmm.live.keys import Keys
from avmm.live.paper import PaperSession
from avmm.live.trader import Trader

# an order refused for a reason that passes (0: held back by the gateway -- no order budget,
# reconciling; -1021: the clock, resynced; -1003 / -1015: the rate, waited out)
PASSING_CODES = frozenset({0, -1021, -1003, -1015})


class LiveTrader(Trader):
    """The trader of ``avmm live``: the core's actions to ``self.live`` (``BinanceGateway``)."""

    def __init__(
        self,
        cfg: StrategyConfig,
        backtest: BacktestConfig,
        meta: dict[str, Any],
        journal: Journal | None,
        day_pnl0: float = 0.0,
        day: int = -1,
    ) -> None:
        super().__init__(cfg, backtest, meta=meta, journal=journal, healthy=False, day_pnl0=day_pnl0, day_pnl_day=day)
        self.reason = "connecting"
        self.live: BinanceGateway | None = None
        g = self.gw
        # compiled on copies of the records: binding calls it once (a fill of 1 at 1)
        self._x_fill = bind(
            x_fill, g.bp.copy(), g.bs.copy(), g.xo.copy(), g.ring.copy(), g.fout.copy(), g.sout.copy(),
            g.acc.fund_ts, g.acc.fund_rate, 1, 1, 1, 1.0, 1.0, 0.0, 1,
        )  # fmt: skip
        self._unvalued = 0.0  # a position set before the records had a mid: valued at the first
        self.n_external = 0  # fills of earlier sessions' orders (position only)
        self.n_corrections = 0
        self.n_unknown = 0
        self.n_dup = 0
        self.seen: set[int] = set()  # trade ids delivered (with no journal to ask)

    # --- the core's actions -------------------------------------------------------------------------
    def _send(self, t: int, n: int) -> None:
        if n > 0:
            self.sends += 1
            a = self.engine.actions
            seq0 = 0
            if self.journal is not None:
                seq0 = self.journal.actions(t, a, n)  # the first record's seq: the client ids' numbers
            live = self.live
            if live is not None:
                live.seq0 = seq0
                live.send(t, a, n)
        if self._risk_seq[0] != self._risk_seen:
            self._risk_changed(t)

    # --- answers: journaled, then to the core ----------------------------------------------------
    def _t(self, t: int) -> int:
        return t if t > self.t_core else self.t_core

    def ack(self, t: int, oid: int, venue_oid: int = 0) -> None:
        if self.journal is not None:
            self.journal.response(self._t(t), RS_ACK, oid, 0, 0.0, 0.0, 0.0, venue_oid=venue_oid)
        self.engine.on_ack(oid)

    def reject(self, t: int, oid: int, code: int = 0) -> None:
        if self.journal is not None:
            self.journal.response(self._t(t), RS_REJECT, oid, 0, 0.0, 0.0, 0.0, code=code)
        st = self.engine.state
        held = code in PASSING_CODES and oid == int(st["flat_oid"][0])
        self.engine.on_reject(oid)
        if held:  # a flatten order held back (no order budget, reconciling) or refused for a passing
            st["flat_rejects"] -= 1  # reason: it never ends the flatten; the next quote retries

    def canceled(self, t: int, oid: int) -> None:
        if self.journal is not None:
            self.journal.answer(self._t(t), RS_CANCELED, oid)
        self.engine.on_canceled(oid)

    def unknown(self, t: int, oid: int, code: int) -> None:
        self.n_unknown += 1
        if self.journal is not None:
            self.journal.response(self._t(t), K_UNKNOWN, oid, 0, 0.0, 0.0, 0.0, code=code)

    def _dup(self, trade_id: int) -> bool:
        """A fill counted already (by the journal, this session or one before; else here)."""
        if not trade_id:
            return False
        j = self.journal
        seen = j.fill_seen(trade_id) if j is not None else trade_id in self.seen
        if seen:
            self.n_dup += 1
            return True
        if j is None:
            self.seen.add(trade_id)
        return False

    def fill(
        self, t: int, oid: int, side: int, px: float, qty: float, fee: float, trade_id: int = 0, maker: int = 1
    ) -> None:
        if self._dup(trade_id):
            return
        t = self._t(t)
        if self.journal is not None:
            self.journal.response(t, RS_FILL, oid, side, px, qty, fee, trade_id)
        self.last_fill = (t, side, px, qty)
        self._clock(t)
        try:
            self._send(t, self.engine.on_fill(t, oid, side, px, qty, fee))
        finally:
            self._book(t, oid, side, px, qty, fee, maker)  # the records after the replacement left

    def external_fill(self, t: int, side: int, px: float, qty: float, fee: float, trade_id: int) -> None:
        """A fill of an order of an earlier session (a restart): the position's and the records',
        not the core's order table's."""
        if self._dup(trade_id):
            return
        t = self._t(t)
        self.n_external += 1
        if self.journal is not None:
            self.journal.response(t, RS_FILL, 0, side, px, qty, fee, trade_id)
        self._book(t, 0, side, px, qty, fee, 1)
        s = self.engine.state
        self.engine.set_position(float(s["pos"][0]) + side * qty, float(s["cash"][0]) - side * px * qty - fee)

    def set_position(self, t: int, pos: float, reason: str) -> None:
        """The venue's position replaces the core's and the records' (their equity kept: the change
        is valued at the mid, or at the first mid when there is none yet)."""
        self.n_corrections += 1
        if self.journal is not None:
            self.journal.event(self._t(t), "position", f"set to {pos:g}: {reason}")
        st = self.engine.state
        old, mid = float(st["pos"][0]), float(st["mid"][0])
        self.engine.set_position(pos, float(st["cash"][0]) - (pos - old) * (mid if math.isfinite(mid) else 0.0))
        bs = self.bs
        dq = pos - float(bs["pos"][0])
        bmid = float(bs["mid"][0])
        if math.isfinite(bmid):
            bs["cash"] -= dq * bmid
        else:
            self._unvalued += dq
        bs["pos"] = pos

    def venue_quote(self, t: int, bid: float, bid_qty: float, ask: float, ask_qty: float) -> None:
        super().venue_quote(t, bid, bid_qty, ask, ask_qty)
        if self._unvalued:
            bmid = float(self.bs["mid"][0])
            if math.isfinite(bmid):  # a position set before any mid: valued at the first one
                self.bs["cash"] -= self._unvalued * bmid
                self._unvalued = 0.0

    def gateway_event(self, kind: str, text: str) -> None:
        if self.journal is not None:
            self.journal.event(self.t_core, kind, text)

    def _book(self, t: int, oid: int, side: int, px: float, qty: float, fee: float, maker: int) -> None:
        g = self.gw
        args = (
            g.bp,
            g.bs,
            g.xo,
            g.ring,
            g.fout,
            g.sout,
            g.acc.fund_ts,
            g.acc.fund_rate,
            t,
            oid,
            side,
            px,
            qty,
            fee,
            maker,
        )
        while self._x_fill(*args) == ADV_FULL:
            g._drain()
        if g._n_fout[0] or g._n_sout[0]:
            g._drain()

    def orders(self) -> list[tuple[int, float, float]]:
        return self.live.working() if self.live is not None else []


class LiveSession(PaperSession):
    """One live session of ``symbol`` on ``venue``."""

    def __init__(
        self,
        venue: str,
        symbol: str,
        cfg: StrategyConfig,
        backtest: BacktestConfig,
        venue_cfg: VenueConfig,
        keys: Keys,
        *,
        session_id: str,
        journal: Journal | None = None,
        recovery: Any = None,
        dry_run: bool = False,
        on_status: Any = None,
        status_s: float = 1.0,
        recorder: Any = None,
        close_wait_s: float = 5.0,
        start_position: float = 0.0,
        day_pnl: tuple[int, float] | None = None,
        latency_cap: int = 4096,
    ) -> None:
        super().__init__(
            venue, symbol, cfg, backtest, venue_cfg, journal=journal, recorder=recorder, on_status=on_status,
            status_s=status_s, day_pnl=day_pnl, latency_cap=latency_cap,
        )  # fmt: skip
        tr = self.trader
        assert isinstance(tr, LiveTrader)
        self.gwy = BinanceGateway(
            venue, self.symbol, venue_cfg, keys, tr.engine.actions, tr, session=session_id, dry_run=dry_run,
            on_ready=self._gw_ready,
        )  # fmt: skip
        tr.live = self.gwy
        warm_encoder(venue, tr.engine.actions)
        state = tr.engine.state
        self.gwy.position = lambda: float(state["pos"][0])
        self.venue_after = True  # Binance is the venue: the records after the orders left (live/paper.py)
        self.recovery = recovery
        self.dry_run = dry_run
        self.feed_ok = False
        self.feed_reason = "connecting"
        self.close_wait_s = close_wait_s
        self.halted: str | None = None
        if start_position:
            tr.set_position(0, start_position, "the journal's position (the fills of its sessions)")

    def _new_trader(
        self,
        cfg: StrategyConfig,
        backtest: BacktestConfig,
        meta: dict[str, Any],
        journal: Journal | None,
        day_pnl0: float = 0.0,
        day: int = -1,
    ) -> Trader:
        return LiveTrader(cfg, backtest, meta, journal, day_pnl0, day)

    def _sent(self, local_ns: int) -> None:
        """Tick-to-order, wire to wire: to the requests handed to the socket (none went out, held
        back or not ready: no sample)."""
        w = self.gwy.sent_ns
        if w >= local_ns:
            self.tick_to_order.add(w - local_ns)

    # --- health: the feed's and the gateway's -------------------------------------------------------
    def on_health(self, local_ns: int, healthy: bool, reason: str) -> None:
        self.feed_ok, self.feed_reason = healthy, reason
        try:
            self._health(local_ns)
        except Exception as e:
            self._fail(e)

    def _gw_ready(self, ok: bool, reason: str) -> None:
        try:
            self._health(time.time_ns())
        except Exception as e:
            self._fail(e)
        if self.gwy.halted is not None and self.halted is None:
            self.halted = self.gwy.halted
            self.stop()

    def _health(self, local_ns: int) -> None:
        ok = self.feed_ok and self.gwy.ready
        if ok:
            reason = "ok"
        elif not self.gwy.ready:
            reason = self.gwy.reason
        else:
            reason = self.feed_reason
        tr = self.trader
        if ok != tr.healthy or reason != tr.reason:
            tr.set_health(self._core_t(self.clock.after_stamps(local_ns)), ok, reason)

    # --- the session ------------------------------------------------------------------------------
    def _side_tasks(self, loop: asyncio.AbstractEventLoop) -> list[asyncio.Task[Any]]:
        return [loop.create_task(self.gwy.run(self.recovery))]

    async def _finish(self) -> dict[str, Any]:
        return await self.finish_live()

    async def finish_live(self) -> dict[str, Any]:
        """Cancel every order (the core's cancel-all, then the gateway's sweep at the venue), let
        the answers come, close the records."""
        tr = self.trader
        t = self._core_t(self.clock.after_stamps(time.time_ns()))
        tr.halt(t)
        await self.gwy.close(self.close_wait_s)
        tr.next_timer = 0
        tr.gw.advance(int(INF_NS), True)
        s = tr.finish()
        s["feed"] = {k: getattr(self.feed.counters, k) for k in self.feed.counters.__struct_fields__}
        s["halts"] = tr.n_halts
        s["gateway"] = self.gwy.status()
        s["live"] = self.live_figures()
        if self.gwy.halted:
            s["halted"] = self.gwy.halted
        if self.journal is not None:
            self.journal.put_meta("summary", json.dumps(s, default=str))
        if self.on_status is not None:
            self.on_status(self.status())
        return s

    def live_figures(self) -> dict[str, Any]:
        tr = self.trader
        assert isinstance(tr, LiveTrader)
        g = self.gwy
        rec = g.first_reconcile
        return {
            "venue": self.venue,
            "dry_run": self.dry_run,
            "position_core": float(tr.engine.state["pos"][0]),
            "external_fills": tr.n_external,
            "position_corrections": tr.n_corrections,
            "dup_fills": tr.n_dup + g.c.dup_fills,
            "unknown": tr.n_unknown,
            "start_open_ours": rec.open_ours if rec is not None else None,
            "start_open_foreign": rec.open_foreign if rec is not None else None,
            "start_foreign_cancelled": rec.foreign_cancelled if rec is not None else None,
            "close_error": g.close_error or None,
            "order_age_cancels": g.order_age_cancels,
            "countdowns": g.countdowns,
        }

    def status(self) -> dict[str, Any]:
        st = super().status()
        g = self.gwy
        st["orders"] = g.c.orders
        st["cancels"] = g.c.cancels
        st["mode"] = "dry-run" if self.dry_run else "live"
        st.update(g.status())
        st["position_core"] = float(self.trader.engine.state["pos"][0])
        return st


def warm_encoder(venue: str, actions: Any) -> None:
    """Compile the order encoder now (a cold cache takes seconds): the gateway builds its own on
    the venue's grid once connected, inside the event loop, where a compilation would stall it."""
    from avmm.venues.binance.ws_api import OrderEncoder, Requests

    Requests(OrderEncoder(venue, "BTCUSDT", 0.01, 0.001, "avmm", "1"), actions)


def journal_position(path: Any) -> float:
    """The position of a journal's fills, every session's (a restart of spot starts from it;
    USD-M's is the venue's)."""
    import sqlite3

    from avmm.live.intents import K_FILL

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = con.execute(f"SELECT coalesce(sum(side * qty), 0.0) FROM intents WHERE kind = {K_FILL}").fetchone()  # noqa: S608
    finally:
        con.close()
    return float(row[0])


def session_token() -> str:
    """The client ids' session part when there is no journal to number them: the start time, in
    unix seconds (increasing from one session to the next)."""
    return str(int(time.time()))
