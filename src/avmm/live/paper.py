"""``avmm paper``: the live feed drives the strategy core, its orders filled on paper by the
backtester's exchange model (``trader.Trader`` + ``gateway.PaperGateway``), in real time.

Times: the core and the paper venue run on the venue's clock. Events carrying a venue stamp
(trades' ``T``, USD-M bookTicker ``T``/``E``, depth diffs' ``T``/``E``) are taken at it, by the
venue and by the core; the others (spot bookTicker) at the last stamp advanced by the wall time
since at the stamps' rate (``VenueClock.after_stamps``: a replay at ``--speed 20`` runs 20 x).
So do the pump, the health changes and the end: one time base. The clock anchored on the venue's
``time`` (``VenueClock.now``, polled every ``SYNC_S``) measures the feed's lag (the status's
``feed_lag_ms``: the venue's time at arrival - the event's stamp). Between events, a pump calls ``Trader.tick``
every ``PUMP_S`` wall seconds: responses come due and the timer ticks.

Tick-to-order: for each market event whose handling sent orders, the wall time from the frame's
arrival (``local_ns``, taken on entering the websocket callback) to the trader's return, the
orders sent (``latency.LatencyRing``: the last ``latency_cap`` samples); the status shows its
p50 / p99 in µs (``tick_to_order_us_p50`` / ``_p99``).

``PaperSession.run(duration)`` runs until ``stop()`` (a signal) or ``duration`` wall seconds; then
every order is cancelled, what is in flight completes, the journal is flushed and the summary
returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from avmm.backtest.config import BacktestConfig
from avmm.backtest.state import INF_NS
from avmm.core.config import StrategyConfig
from avmm.live.config import VenueConfig
from avmm.live.feed import Feed, FeedSink
from avmm.live.journal import Journal
from avmm.live.latency import LatencyRing
from avmm.live.trader import Trader

PUMP_S = 0.001
PUMP_HOLD_NS = 100_000_000  # wall time without a stamp before the pump moves the clock past it
SYNC_S = 0.5  # between two reads of the venue's time
RATE_MIN_NS = 50_000_000  # wall time of stamps before their rate is used
TIME_PATH = {"binance-spot": "/api/v3/time", "binance-um": "/fapi/v1/time"}
MARKET = {"binance-spot": "spot", "binance-um": "perpetual"}


class VenueClock:
    """The venue's clock: anchored on its ``time`` endpoint (``serverTime``, polled every
    ``SYNC_S``), advancing at the rate its event stamps advance against wall time (1 on a live
    venue, the replay's speed on the emulator). Before the first anchor, the last stamp advanced
    at that rate."""

    __slots__ = ("v0", "w0", "v", "w", "rate", "n", "av", "aw")

    def __init__(self) -> None:
        self.v0 = self.w0 = self.v = self.w = 0
        self.av = self.aw = 0
        self.rate = 1.0
        self.n = 0

    def stamp(self, v: int, wall: int) -> None:
        if self.n == 0:
            self.v0, self.w0 = v, wall
        self.n += 1
        if v >= self.v:
            self.v, self.w = v, wall
        dw = wall - self.w0
        if dw > RATE_MIN_NS and self.v > self.v0:
            self.rate = (self.v - self.v0) / dw

    def anchor(self, v: int, wall: int) -> None:
        self.av, self.aw = v, wall

    def after_stamps(self, wall: int) -> int:
        """The last stamp advanced by the wall time since, at the stamps' rate (one time base with
        the stamped events)."""
        if self.n == 0:
            return self.now(wall)
        return self.v + int((wall - self.w) * self.rate)

    def now(self, wall: int) -> int:
        if self.aw:
            return self.av + int((wall - self.aw) * self.rate)
        if self.n == 0:
            return wall
        return self.v + int((wall - self.w) * self.rate)


class _Feed(Feed):
    """The feed, telling the session each depth diff's venue stamp (``T``, else ``E``) before its
    rows."""

    def _apply(self, m: Any, t: int) -> None:
        sink = self.sink
        ms = m.T or m.E  # USD-M: the transaction time of the diff's last change
        if isinstance(sink, PaperSession) and ms:
            sink.depth_E = ms * 1_000_000
            sink.clock.stamp(sink.depth_E, t)
        super()._apply(m, t)


@dataclass
class Totals:
    """What the status shows beyond the venue's records."""

    started: float = 0.0
    lag_ns: int = 0  # venue clock - the last event's stamp, at its arrival (feed lag x rate)


class PaperSession(FeedSink):
    """One paper-trading session of ``symbol`` on ``venue``."""

    def __init__(
        self,
        venue: str,
        symbol: str,
        cfg: StrategyConfig,
        backtest: BacktestConfig,
        venue_cfg: VenueConfig,
        *,
        journal: Journal | None = None,
        on_status: Callable[[dict[str, Any]], None] | None = None,
        status_s: float = 1.0,
        seed: int | None = None,
        latency_cap: int = 4096,
    ) -> None:
        self.venue, self.symbol = venue, symbol.upper()
        meta = {"market": MARKET[venue], "symbol": self.symbol, "source": venue}
        self.trader = Trader(cfg, backtest, meta=meta, journal=journal, healthy=False)
        self.trader.reason = "connecting"
        self.journal = journal
        self.feed = _Feed(venue, symbol, venue_cfg, self, seed=seed)
        self.venue_cfg = venue_cfg
        self.depth_E = 0  # the venue stamp of the depth diff being applied (0: none)
        self.clock = VenueClock()
        self.on_status = on_status
        self.status_s = status_s
        self.totals = Totals()
        self.t_last = 0
        self.summary: dict[str, Any] | None = None
        self.tick_to_order = LatencyRing(latency_cap)  # frame arrival -> orders sent, ns

    # --- FeedSink: the feed's events ------------------------------------------------------------
    def _core_t(self, te: int) -> int:
        t = te if te > self.t_last else self.t_last
        self.t_last = t
        return t

    def on_quote(self, ts_ns: int, local_ns: int, bid: float, bid_qty: float, ask: float, ask_qty: float) -> None:
        clock = self.clock
        if ts_ns != local_ns:  # a venue stamp: the core takes the event at it
            clock.stamp(ts_ns, local_ns)
            te = tl = ts_ns
        else:
            te = tl = clock.after_stamps(local_ns)
        tr = self.trader
        sends = tr.sends
        tr.venue_quote(te, bid, bid_qty, ask, ask_qty)
        tr.core_quote(self._core_t(tl), bid, bid_qty, ask, ask_qty)
        if tr.sends != sends:
            self.tick_to_order.add(time.time_ns() - local_ns)

    def on_trade(self, ts_ns: int, local_ns: int, px: float, qty: float, side: int) -> None:
        self.clock.stamp(ts_ns, local_ns)
        self.totals.lag_ns = self.clock.now(local_ns) - ts_ns
        tr = self.trader
        sends = tr.sends
        tr.venue_trade(ts_ns, px, qty, side)
        tr.core_trade(self._core_t(ts_ns), px, qty, side)
        if tr.sends != sends:
            self.tick_to_order.add(time.time_ns() - local_ns)

    def on_depth(self, local_ns: int, kind: int, side: int, px: float, qty: float) -> None:
        te = self.depth_E or self.clock.after_stamps(local_ns)
        tr = self.trader
        tr.venue_depth(te, kind, side, px, qty)
        tr.core_depth(self._core_t(te), kind, side, px, qty)

    def on_health(self, local_ns: int, healthy: bool, reason: str) -> None:
        self.trader.set_health(self._core_t(self.clock.after_stamps(local_ns)), healthy, reason)

    # --- the session ------------------------------------------------------------------------------
    async def _pump(self) -> None:
        tr, clock = self.trader, self.clock
        while True:
            await asyncio.sleep(PUMP_S)
            if clock.n:
                w = time.time_ns()
                # up to the last stamp while events flow: the venue's next events may carry
                # earlier times than the wall clock suggests (frames late or bunched); past it only
                # when the venue has been quiet for PUMP_HOLD_NS (the timer, late responses)
                tr.tick(self._core_t(clock.after_stamps(w) if w - clock.w > PUMP_HOLD_NS else clock.v))

    async def _sync(self) -> None:
        """The venue's time every ``SYNC_S`` once its events flow (a replay's clock starts then):
        the anchor of the clock, at the middle of the request."""
        from avmm.live.rest import Rest, RestError

        rest_url, _, _ = self.venue_cfg.urls(self.venue)
        rest = Rest(rest_url, self.venue, self.venue_cfg.connect_timeout_s)
        path = TIME_PATH[self.venue]
        try:
            while True:
                if self.clock.n == 0:
                    await asyncio.sleep(0.005)
                    continue
                w0 = time.time_ns()
                try:
                    body = await rest.get(path, {})
                except RestError:
                    await asyncio.sleep(SYNC_S)
                    continue
                w1 = time.time_ns()
                try:
                    ms = int(json.loads(body)["serverTime"])
                except (ValueError, KeyError, TypeError):
                    await asyncio.sleep(SYNC_S)
                    continue
                self.clock.anchor(ms * 1_000_000, (w0 + w1) // 2)
                await asyncio.sleep(SYNC_S)
        finally:
            await rest.close()

    async def _status(self) -> None:
        if self.on_status is None:
            return
        while True:
            await asyncio.sleep(self.status_s)
            self.on_status(self.status())

    def stop(self) -> None:
        self.feed.stop()

    async def run(self, duration: float | None = None) -> dict[str, Any]:
        """Trade until ``stop()`` or ``duration`` wall seconds; the summary."""
        self.totals.started = time.monotonic()
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._pump()), loop.create_task(self._status()), loop.create_task(self._sync())]
        try:
            await self.feed.run(duration)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            self.summary = self.finish()
        return self.summary

    def finish(self) -> dict[str, Any]:
        """Cancel every order, let what is in flight complete, close the records."""
        tr = self.trader
        t = self._core_t(self.clock.after_stamps(time.time_ns()))
        tr.halt(t)
        tr.next_timer = 0
        tr.gw.advance(int(INF_NS), True)
        s = tr.finish()
        s["feed"] = {k: getattr(self.feed.counters, k) for k in self.feed.counters.__struct_fields__}
        s["halts"] = tr.n_halts
        if self.journal is not None:
            self.journal.put_meta("summary", json.dumps(s, default=str))
        if self.on_status is not None:
            self.on_status(self.status())
        return s

    # --- status -----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        tr = self.trader
        bs = tr.bs[0]
        c = self.feed.counters
        mid = float(bs["mid"])
        pos = float(bs["pos"])
        pnl = float(bs["cash"] + pos * mid * tr.bt.contract_size) if math.isfinite(mid) else float(bs["cash"])
        orders = tr.orders()
        mo = tr.gw.rec.fills.markouts_bps()
        t2o = self.tick_to_order.percentiles_us((50.0, 99.0))
        return {
            "t": time.time(),
            "venue_ns": self.t_last,
            "symbol": self.symbol,
            "healthy": bool(tr.healthy and not tr.crossed),
            "reason": "crossed book" if tr.crossed else tr.reason,
            "bid": _num(bs["bid"]),
            "ask": _num(bs["ask"]),
            "bid_qty": _num(bs["bid_qty"]),
            "ask_qty": _num(bs["ask_qty"]),
            "our_bids": [[p, q] for s, p, q in orders if s > 0],
            "our_asks": [[p, q] for s, p, q in orders if s < 0],
            "position": pos,
            "pnl": _num(pnl),
            "fees": float(bs["fees"]),
            "fills": int(bs["n_fills"]),
            "orders": int(bs["n_orders"]),
            "cancels": int(bs["n_cancels"]),
            "markout_1s_bps": _num(mo[2]),
            "markout_10s_bps": _num(mo[5]),
            "feed_lag_ms": self.totals.lag_ns / 1e6,
            "tick_to_order_us_p50": t2o[0],
            "tick_to_order_us_p99": t2o[1],
            "clock_rate": self.clock.rate,
            "frames": c.frames,
            "reconnects": c.reconnects,
            "gaps": c.gaps,
            "resyncs": c.resyncs,
            "stale_periods": c.stale_periods,
            "halts": tr.n_halts,
            "journal_rows": self.journal.rows if self.journal is not None else None,
            "uptime_s": time.monotonic() - self.totals.started,
        }


def _num(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


async def instrument(venue: str, symbol: str, venue_cfg: VenueConfig) -> dict[str, float]:
    """``tick_size`` / ``lot_size`` of ``symbol`` from the venue's exchangeInfo (empty when it
    does not say)."""
    import msgspec

    from avmm.live.rest import Rest, RestError

    rest_url, _, _ = venue_cfg.urls(venue)
    rest = Rest(rest_url, venue, venue_cfg.connect_timeout_s)
    path = "/api/v3/exchangeInfo" if venue == "binance-spot" else "/fapi/v1/exchangeInfo"
    try:
        body = await rest.get(path, {"symbol": symbol.upper()})
    except RestError:
        return {}
    finally:
        await rest.close()
    try:
        info = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return {}
    out: dict[str, float] = {}
    for s in info.get("symbols", []) if isinstance(info, dict) else []:
        if str(s.get("symbol", "")).upper() != symbol.upper():
            continue
        for f in s.get("filters", []):
            if f.get("filterType") == "PRICE_FILTER" and f.get("tickSize"):
                out["tick_size"] = float(f["tickSize"])
            elif f.get("filterType") == "LOT_SIZE" and f.get("stepSize"):
                out["lot_size"] = float(f["stepSize"])
    return out
