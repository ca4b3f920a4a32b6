"""``avmm paper``: the live feed drives the strategy core, its orders filled on paper by the
backtester's exchange model (``trader.Trader`` + ``backtest.venue.PaperGateway``), in real time.

Times: the core and the paper venue run on the venue's clock. Events carrying a venue stamp
(trades' ``T``, USD-M bookTicker ``T``/``E``, depth diffs' ``T``/``E``) are taken at it, by the
venue and by the core; the others (spot bookTicker) at the last stamp advanced by the wall time
since at the stamps' rate (``VenueClock.after_stamps``: a replay at ``--speed 20`` runs 20 x).
So do the pump, the health changes and the end: one time base. The clock anchored on the venue's
``time`` (``VenueClock.now``, polled every ``SYNC_S``) measures the feed's lag (the status's
``feed_lag_ms``: the venue's time at arrival - the event's stamp). Between events, a pump calls ``Trader.tick``
every ``PUMP_S`` wall seconds: responses come due and the timer ticks.

``PaperSession.run(duration)`` runs until ``stop()`` (a signal) or ``duration`` wall seconds; then
every order is cancelled, what is in flight completes, the journal is flushed and the summary
returned. It ends the same way, then raises, when the recorder cannot write (the feed's one-line
error) or the user's signal raises inside the core (``core.signals.run_error``: the backtest's
line): the sink methods catch it (a ``try`` costs nothing until it raises), detach the session from
the feed and stop it.

Stage latencies (the status's ``latency_us``): at most one quote or trade every ``LAT_EVERY_NS`` of
wall time is timed -- ``feed`` (received -> the sink: payload copy, decode, dedupe, recording),
``venue`` (the paper exchange model) and ``core`` (the strategy, the journal's intent log, the gateway) --
into a fixed ring; the others take the untimed path (one comparison more).

Tick-to-order (the status's ``tick_to_order_us_p50`` / ``_p99``): for every quote or trade whose
handling sent orders, the wall time from the frame's arrival (``local_ns``, taken on entering the
websocket callback) to the trader's return, the orders sent, kept in ``latency.LatencyRing`` (the
last ``latency_cap`` samples; one comparison and, when orders went out, one clock read and one
store per event).

``venue_after`` (``LiveSession``: the venue is Binance, the exchange model only keeps the records):
the core first and its orders out, then the records follow the market (``venue_quote`` /
``venue_trade``), so they are off the path from the frame to the order; and the tick-to-order
sample is taken where the requests were handed to the socket (``_sent``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from time import time_ns
from typing import Any

import numpy as np

from avmm.backtest.config import BacktestConfig
from avmm.backtest.state import INF_NS
from avmm.core.config import StrategyConfig
from avmm.core.signals import SignalSource, run_error, signal_source
from avmm.live.config import VenueConfig
from avmm.live.feed import Feed, FeedSink
from avmm.live.journal import Journal
from avmm.live.latency import LatencyRing
from avmm.live.record import Recorder
from avmm.live.trader import Trader

PUMP_S = 0.001
PUMP_HOLD_NS = 100_000_000  # wall time without a stamp before the pump moves the clock past it
SYNC_S = 0.5  # between two reads of the venue's time
RATE_MIN_NS = 50_000_000  # wall time of stamps before their rate is used
TIME_PATH = {"binance-spot": "/api/v3/time", "binance-um": "/fapi/v1/time"}
MARKET = {"binance-spot": "spot", "binance-um": "perpetual"}
LAT_EVERY_NS = 10_000_000  # one quote or trade timed per this much wall time, at most
LAT_RING = 1024  # the last timed events the percentiles are taken over
STAGES = ("feed", "venue", "core")


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


def venue_clock_events(ev: np.ndarray) -> np.ndarray:
    """``EVENT_DTYPE`` rows as a paper session's clock takes them: each at its venue stamp
    (``exch_ts``); a row without one (a spot bookTicker) at the previous stamp + the capture time
    since, as ``VenueClock.after_stamps`` stamps it (the capture's clock standing in for the wall
    clock); at the strategy at that time, never back in time (``PaperSession._core_t``). A backtest of
    the result runs on the paper session's clock: what paper trading a replay of the capture is
    compared with. (A capture's local clock may be far off the venue's: then a backtest of the rows
    as they are shows the strategy each event before the venue has it.)"""
    from avmm.events import F_EXCH_TS

    out = ev.copy()
    loc, ex = ev["local_ts"].astype(np.int64), ev["exch_ts"].astype(np.int64)
    stamped = (ev["flags"] & F_EXCH_TS) != 0
    last = np.maximum.accumulate(np.where(stamped, np.arange(len(ev)), -1))  # the last stamped row so far
    has = last >= 0
    te = loc.copy()
    te[has] = ex[last[has]] + (loc[has] - loc[last[has]])
    out["exch_ts"] = te
    out["local_ts"] = np.maximum.accumulate(te) if len(te) else te
    return out


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
        recorder: Recorder | None = None,
        on_status: Callable[[dict[str, Any]], None] | None = None,
        status_s: float = 1.0,
        seed: int | None = None,
        day_pnl: tuple[int, float] | None = None,
        latency_cap: int = 4096,
    ) -> None:
        self.venue, self.symbol = venue, symbol.upper()
        meta = {"market": MARKET[venue], "symbol": self.symbol, "source": venue}
        sig = cfg.signals
        self.signal: SignalSource | None = signal_source(sig.file, sig.function, sig.builtins_on())
        day, pnl0 = day_pnl if day_pnl is not None else (-1, 0.0)
        self.trader = self._new_trader(cfg, backtest, meta, journal, pnl0, day)
        if journal is not None:
            journal.put_meta(f"day_pnl0.{journal.session}", json.dumps({"day": day, "pnl": pnl0}))
        self.trader.reason = "connecting"
        self.journal = journal
        self.recorder = recorder
        self.feed = _Feed(venue, symbol, venue_cfg, self, recorder=recorder, seed=seed)
        self.error: BaseException | None = None  # what stopped the session from inside (raised by run)
        self.lat = [0] * (len(STAGES) * LAT_RING)  # ns, a ring of (feed, venue, core)
        self.n_lat = 0
        self.lat_next = 0  # the wall time (ns) from which the next quote or trade is timed
        self.venue_cfg = venue_cfg
        self.depth_E = 0  # the venue stamp of the depth diff being applied (0: none)
        self.clock = VenueClock()
        self.on_status = on_status
        self.status_s = status_s
        self.totals = Totals()
        self.t_last = 0
        self.summary: dict[str, Any] | None = None
        self.tick_to_order = LatencyRing(latency_cap)  # frame arrival -> orders sent, ns
        self.venue_after = False  # the records after the core (the live session: see the module's docstring)
        self.status_extra: Callable[[], dict[str, Any]] | None = None  # more status keys (live/control.py)

    def _new_trader(
        self,
        cfg: StrategyConfig,
        backtest: BacktestConfig,
        meta: dict[str, Any],
        journal: Journal | None,
        day_pnl0: float = 0.0,
        day: int = -1,
    ) -> Trader:
        """The trader (``avmm live`` puts its own here), the UTC day's PnL before this session
        carried in (``day``: its day number, -1: none)."""
        return Trader(cfg, backtest, meta=meta, journal=journal, healthy=False, day_pnl0=day_pnl0, day_pnl_day=day)

    # --- FeedSink: the feed's events ------------------------------------------------------------
    def _core_t(self, te: int) -> int:
        t = te if te > self.t_last else self.t_last
        self.t_last = t
        return t

    def on_quote(self, ts_ns: int, local_ns: int, bid: float, bid_qty: float, ask: float, ask_qty: float) -> None:
        clock = self.clock
        tr = self.trader
        if ts_ns != local_ns:  # a venue stamp: the core takes the event at it
            clock.stamp(ts_ns, local_ns)
            te = tl = ts_ns
            if tr.max_lag_ns and clock.aw:
                tr.feed_lag(ts_ns, clock.now(local_ns) - ts_ns)
        else:
            te = tl = clock.after_stamps(local_ns)
        sends = tr.sends
        try:
            if self.venue_after:
                self._core_first_quote(local_ns, te, tl, bid, bid_qty, ask, ask_qty)
            elif local_ns < self.lat_next:
                tr.venue_quote(te, bid, bid_qty, ask, ask_qty)
                tr.core_quote(self._core_t(tl), bid, bid_qty, ask, ask_qty)
            else:
                t0, p0 = time.time_ns(), time.perf_counter_ns()
                tr.venue_quote(te, bid, bid_qty, ask, ask_qty)
                p1 = time.perf_counter_ns()
                tr.core_quote(self._core_t(tl), bid, bid_qty, ask, ask_qty)
                self._timed(local_ns, t0, p0, p1, time.perf_counter_ns())
        except Exception as e:
            self._fail(e)
            return
        if tr.sends != sends:
            self._sent(local_ns)

    def _core_first_quote(
        self, local_ns: int, te: int, tl: int, bid: float, bid_qty: float, ask: float, ask_qty: float
    ) -> None:
        tr = self.trader
        if local_ns < self.lat_next:
            tr.core_quote(self._core_t(tl), bid, bid_qty, ask, ask_qty)
            tr.venue_quote(te, bid, bid_qty, ask, ask_qty)
            return
        t0, p0 = time.time_ns(), time.perf_counter_ns()
        tr.core_quote(self._core_t(tl), bid, bid_qty, ask, ask_qty)
        p1 = time.perf_counter_ns()
        tr.venue_quote(te, bid, bid_qty, ask, ask_qty)
        p2 = time.perf_counter_ns()
        self._timed(local_ns, t0, p0, p0 + p2 - p1, p2)  # (venue, core) as the others report them

    def _core_first_trade(self, local_ns: int, ts_ns: int, px: float, qty: float, side: int) -> None:
        tr = self.trader
        if local_ns < self.lat_next:
            tr.core_trade(self._core_t(ts_ns), px, qty, side)
            tr.venue_trade(ts_ns, px, qty, side)
            return
        t0, p0 = time.time_ns(), time.perf_counter_ns()
        tr.core_trade(self._core_t(ts_ns), px, qty, side)
        p1 = time.perf_counter_ns()
        tr.venue_trade(ts_ns, px, qty, side)
        p2 = time.perf_counter_ns()
        self._timed(local_ns, t0, p0, p0 + p2 - p1, p2)

    def _sent(self, local_ns: int) -> None:
        """The handling of the frame that arrived at ``local_ns`` sent orders: a tick-to-order sample."""
        self.tick_to_order.add(time_ns() - local_ns)

    def on_trade(self, ts_ns: int, local_ns: int, px: float, qty: float, side: int) -> None:
        self.clock.stamp(ts_ns, local_ns)
        lag = self.totals.lag_ns = self.clock.now(local_ns) - ts_ns
        tr = self.trader
        if tr.max_lag_ns and self.clock.aw:
            tr.feed_lag(ts_ns, lag)
        sends = tr.sends
        try:
            if self.venue_after:
                self._core_first_trade(local_ns, ts_ns, px, qty, side)
            elif local_ns < self.lat_next:
                tr.venue_trade(ts_ns, px, qty, side)
                tr.core_trade(self._core_t(ts_ns), px, qty, side)
            else:
                t0, p0 = time.time_ns(), time.perf_counter_ns()
                tr.venue_trade(ts_ns, px, qty, side)
                p1 = time.perf_counter_ns()
                tr.core_trade(self._core_t(ts_ns), px, qty, side)
                self._timed(local_ns, t0, p0, p1, time.perf_counter_ns())
        except Exception as e:
            self._fail(e)
            return
        if tr.sends != sends:
            self._sent(local_ns)

    def on_depth(self, local_ns: int, kind: int, side: int, px: float, qty: float) -> None:
        te = self.depth_E or self.clock.after_stamps(local_ns)
        tr = self.trader
        try:
            tr.venue_depth(te, kind, side, px, qty)
            tr.core_depth(self._core_t(te), kind, side, px, qty)
        except Exception as e:
            self._fail(e)

    def on_health(self, local_ns: int, healthy: bool, reason: str) -> None:
        try:
            self.trader.set_health(self._core_t(self.clock.after_stamps(local_ns)), healthy, reason)
        except Exception as e:
            self._fail(e)

    def _timed(self, local_ns: int, t0: int, p0: int, p1: int, p2: int) -> None:
        i = 3 * (self.n_lat % LAT_RING)
        lat = self.lat
        lat[i] = t0 - local_ns
        lat[i + 1] = p1 - p0
        lat[i + 2] = p2 - p1
        self.n_lat += 1
        self.lat_next = local_ns + LAT_EVERY_NS

    def _fail(self, e: BaseException) -> None:
        """An exception out of the core (the user's signal: the compiled code raises nothing of its
        own) or the session: the first one kept, the session detached from the feed and stopped."""
        if self.error is None:
            self.error = run_error(self.signal, e) if self.signal is not None else e
        self.feed.sink = FeedSink()
        self.stop()

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
                try:
                    tr.tick(self._core_t(clock.after_stamps(w) if w - clock.w > PUMP_HOLD_NS else clock.v))
                except Exception as e:
                    self._fail(e)
                    return

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

    # --- what control sees (live/control.py's Runtime) ----------------------------------------------
    def now(self) -> int:
        """The core's clock now (venue time, never back in time)."""
        return self._core_t(self.clock.after_stamps(time.time_ns()))

    def frames(self) -> int:
        return self.feed.counters.frames

    def connected(self) -> bool:
        return self.feed.connected

    def feed_counters(self) -> dict[str, int]:
        c = self.feed.counters
        return {k: getattr(c, k) for k in c.__struct_fields__}

    async def run(self, duration: float | None = None) -> dict[str, Any]:
        """Trade until ``stop()`` or ``duration`` wall seconds; the summary."""
        self.totals.started = time.monotonic()
        loop = asyncio.get_running_loop()
        side = self._side_tasks(loop)
        tasks = [loop.create_task(self._pump()), loop.create_task(self._status()), loop.create_task(self._sync())]
        # Everything built so far (modules, the compiled code, the records) leaves the collector's
        # scans: a full collection during the session then walks only what the session allocated.
        # Without it a full collection stalled the event loop for 130-340 ms (measured), 2.6-6.8 s
        # of venue time at --speed 20, and the events after it reached the core that much late.
        gc.collect()
        gc.freeze()
        try:
            await self.feed.run(duration)
        finally:
            gc.unfreeze()
            failed = await _cancelled(tasks)
            if failed is not None and self.error is None:  # a side task that failed: kept; the end still runs
                self.error = failed
            try:
                self.summary = await self._finish()
            finally:
                failed = await _cancelled(side)
                if failed is not None and self.error is None:
                    self.error = failed
        if self.error is not None:
            raise self.error
        return self.summary

    def _side_tasks(self, loop: asyncio.AbstractEventLoop) -> list[asyncio.Task[Any]]:
        """Tasks that run beside the feed and outlive it until the summary is made (the live
        gateway); none here."""
        return []

    async def _finish(self) -> dict[str, Any]:
        return self.finish()

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
        s["lag_periods"] = tr.n_lag_periods
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
        risk = tr.engine.risk()
        why = risk["risk_reason"] or tr.why()  # the core's limits or the kill switch first
        t2o = self.tick_to_order.percentiles_us((50.0, 99.0))
        if tr.paused and not tr.stopping:
            why = "paused" if tr.quoting() and not risk["risk_halted"] else f"paused; {why}"
        return {
            "t": time.time(),
            "venue_ns": self.t_last,
            "symbol": self.symbol,
            "healthy": bool(tr.quoting() and not risk["risk_halted"]),
            "reason": why,
            "paused": tr.paused,
            "quoting": bool(tr.go and not risk["risk_halted"]),
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
            "lag_periods": tr.n_lag_periods,
            **risk,
            "latency_us": self.latencies(),
            "journal_rows": self.journal.rows if self.journal is not None else None,
            "recorded_lines": self.recorder.lines if self.recorder is not None else None,
            "uptime_s": time.monotonic() - self.totals.started,
            **(self.status_extra() if self.status_extra is not None else {}),
        }

    def latencies(self) -> dict[str, list[float] | None]:
        """Each stage's p50 and p99 (µs) over the last ``LAT_RING`` timed events (None before one)."""
        n = min(self.n_lat, LAT_RING)
        if n == 0:
            return dict.fromkeys(STAGES)
        lat = np.array(self.lat[: 3 * n], np.int64).reshape(n, 3)
        q = np.percentile(lat, [50.0, 99.0], axis=0) / 1e3
        return {k: [round(float(q[0, i]), 2), round(float(q[1, i]), 2)] for i, k in enumerate(STAGES)}


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


async def _cancelled(tasks: list[asyncio.Task[Any]]) -> Exception | None:
    """``tasks`` cancelled and awaited, every one; the first exception one of them had ended with."""
    first: Exception | None = None
    for t in tasks:
        t.cancel()
    for t in tasks:
        try:
            await t
        except asyncio.CancelledError:
            pass
        except Exception as e:  # noqa: BLE001 - returned: the caller decides
            first = first or e
    return first
