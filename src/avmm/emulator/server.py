"""The emulator's server: one aiohttp application on 127.0.0.1 serving Binance's REST market data,
its streams and a control endpoint, driven by one replay task; with ``keys`` also the private side
(``private.py``: the WebSocket API, signed REST and user data over accounts on the backtester's
exchange model, fed every replay step before it is sent).

REST (spot ``/api/v3``, USD-M ``/fapi/v1``): ``ping``, ``time``, ``exchangeInfo``, ``depth``; errors
as Binance's ``{"code":..,"msg":..}`` with HTTP 400. Each request weighs what Binance's does against
the IP's minute budget (``limits.py``, shared with the private side): ``X-MBX-USED-WEIGHT-1M`` on
every answer, 429 / 418 with ``Retry-After`` past it.

Streams: ``/ws``, ``/ws/<stream>[/<stream>...]`` (raw payloads), ``/stream?streams=a/b`` (combined
``{"stream":..,"data":..}``), and USD-M's ``/public/ws``, ``/market/ws`` and their ``/stream`` forms.
USD-M routes as Binance does since 2026-04: ``/public`` delivers the book streams (``bookTicker``,
``depth*``) and ``trade``, ``/market`` delivers ``aggTrade``; a stream subscribed on the other path
is acknowledged and listed like Binance does, and never delivered (``GET /_avmm/connections`` shows
it as undelivered). The legacy ``/ws`` and ``/stream`` deliver every stream. A path segment that is
not a stream name (ccxt connects to ``/ws/0``) is ignored.

Limits, as Binance documents them: more than ``msg_rate`` incoming messages in a second (requests,
pings and pongs; 5 on spot, 10 on USD-M) closes the connection with 1008 "Too many requests"; a
SUBSCRIBE past ``max_streams`` (1024) is answered ``{"error":{"code":4,"msg":"Too many
subscriptions"},"id":..}`` and the connection closed with 1008 "Invalid request" (as measured on
``fstream.binance.com``, polyoxide's docs/specs/binance/OBSERVED.md). The ``msgrate`` and
``maxstreams`` faults move or lift them. Control frames: ``SUBSCRIBE``, ``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``,
``SET_PROPERTY`` / ``GET_PROPERTY`` ``combined``, answered ``{"result":..,"id":..}``; a bad frame is
answered ``{"error":{"code":..,"msg":..},"id":..}`` with Binance's codes (0 unknown property, 1 bad
value type, 2 invalid request, 3 invalid JSON). The server pings every ``heartbeat`` seconds and
answers pings.

Streams of the symbol ``s`` (lower case): ``s@bookTicker``, ``s@trade``, ``s@aggTrade``,
``s@depth`` and ``s@depth@0ms`` (every diff of the store: one source message, or the rows of one
exchange time; Binance's own ``@depth`` is 1000 ms on spot and 250 ms on USD-M),
``s@depth@100ms`` / ``@250ms`` / ``@500ms`` / ``@1000ms`` (the diffs merged over that many ms of
venue time, on a grid of exchange time as Binance's, stamped ``E`` at the end of the interval: a
capture of that stream is served diff for diff), and partial book depth ``s@depth5`` /
``@depth10`` / ``@depth20`` (spot: ``{lastUpdateId,bids,asks}`` every 1000 ms or ``@100ms``; USD-M:
a ``depthUpdate`` of the top levels every 250 ms, ``@500ms`` or ``@100ms``), sent at the end of an
interval in which the book changed. Faults act on every connection at once.

Control (not Binance's): ``POST /_avmm/fault`` with ``{"fault": "drop:2"}`` (``faults`` grammar)
answers ``{"ok":true,"fault":"drop:2"}`` or 400 ``{"code":-1100,"msg":..}``; ``GET /_avmm/status``
answers the replay's state (started, done, steps, frames sent, connections, venue time, the
private side's counts); ``GET /_avmm/accounts`` each account (open orders, trades, fees, balances or
position; never a key's secret);
``POST /_avmm/start`` starts the replay without a subscriber; ``GET /_avmm/connections`` lists the open
stream connections (id, path, streams delivered and undelivered, incoming messages) and counts the
connections opened per path and those closed for a limit.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avmm.emulator import frames as fr
from avmm.emulator.faults import KNOBS, LIMITS, PRIVATE, Fault, parse_fault
from avmm.emulator.limits import Limits
from avmm.emulator.matching import ApiError
from avmm.emulator.replay import BT, CHUNK_EVENTS, DIFF, TR, Replay, capture_lag
from avmm.errors import UserError, missing_extra

if TYPE_CHECKING:
    from avmm.backtest.config import BacktestConfig
    from avmm.core.config import StrategyConfig
    from avmm.emulator.keys import ApiKey
    from avmm.emulator.private import Private

DEPTH_INTERVALS = {"depth": 0, "depth@0ms": 0, "depth@100ms": 100, "depth@250ms": 250, "depth@500ms": 500}
DEPTH_INTERVALS["depth@1000ms"] = 1000
# partial book depth: kind -> (levels, interval ms); spot's default is 1000 ms, USD-M's 250 ms
PARTIAL_SPOT = {f"depth{n}{x}": (n, iv) for n in (5, 10, 20) for x, iv in (("", 1000), ("@100ms", 100))}
PARTIAL_UM = {f"depth{n}{x}": (n, iv) for n in (5, 10, 20) for x, iv in (("", 250), ("@500ms", 500), ("@100ms", 100))}
KINDS_SPOT = ("bookTicker", "trade", "aggTrade", *DEPTH_INTERVALS, *PARTIAL_SPOT)
KINDS_UM = ("bookTicker", "trade", "aggTrade", *DEPTH_INTERVALS, *PARTIAL_UM)
YIELD_EVERY = 256  # at --max, let the loop run other tasks (REST, control frames) this often
WS_PATHS = ("/ws", "/public/ws", "/market/ws")
STREAM_PATHS = ("/stream", "/public/stream", "/market/stream")
# USD-M's routed paths: the kinds each delivers (``/public``: book streams and trade, as ccxt routes
# them and as measured (BYTEX-TRADE/bytex#7); ``/market``: the rest the emulator serves)
MARKET_KINDS = frozenset({"aggTrade"})
MSG_RATE = {fr.SPOT: 5, fr.UM: 10}  # incoming messages a second per connection (Binance's docs)
MAX_STREAMS = 1024
CLOSE_POLICY = 1008  # the close code Binance uses for a broken limit


def scope_of(path: str) -> str:
    """The routing scope of a stream path: ``public``, ``market`` or ``legacy`` (``/ws``, ``/stream``)."""
    for scope in ("public", "market"):
        if path.startswith(f"/{scope}/"):
            return scope
    return "legacy"


def route_of(name: str) -> str:
    """The routed path that delivers stream ``name`` on USD-M: ``public`` or ``market``."""
    return "market" if name.partition("@")[2] in MARKET_KINDS else "public"


def _aiohttp() -> Any:
    try:
        import aiohttp
        from aiohttp import web
    except ImportError:
        raise missing_extra("avmm emulate", "live", "aiohttp") from None
    return aiohttp, web


def _num(x: float, dec: int) -> str:
    return f"{x:.{dec}f}"


def split_symbol(symbol: str) -> tuple[str, str]:
    """Base and quote asset of a Binance symbol (``BTCUSDT`` -> ``BTC``, ``USDT``)."""
    for q in ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "USD"):
        if symbol.endswith(q) and len(symbol) > len(q):
            return symbol[: -len(q)], q
    return symbol, "USDT"


_conn_ids = iter(range(1, 1 << 62))


class _Conn:
    """One stream socket."""

    __slots__ = (
        "ws", "combined", "subs", "opened", "timer", "closing", "id", "path", "scope", "strict", "undelivered",
        "times", "msgs", "kill",
    )  # fmt: skip

    def __init__(self, ws: Any, combined: bool, path: str = "/stream", strict: bool = False) -> None:
        self.ws = ws
        self.combined = combined
        self.subs: list[str] = []
        self.opened = time.monotonic()
        self.timer: asyncio.TimerHandle | None = None
        self.closing = False
        self.id = next(_conn_ids)
        self.path = path
        self.scope = scope_of(path)
        self.strict = strict and self.scope != "legacy"  # USD-M's routed paths deliver their streams only
        self.undelivered: list[str] = []  # subscribed here, routed to the other path: never sent
        self.times: collections.deque[float] = collections.deque()  # incoming messages in the last second
        self.msgs = 0
        self.kill: tuple[int, str] | None = None  # close after the answer (a broken limit)


class _Batch:
    """Depth diffs merged over one interval of venue time."""

    __slots__ = ("U", "pu", "u", "exch", "bids", "asks", "end")

    def __init__(self, U: int, pu: int, end: int) -> None:
        self.U, self.pu, self.u, self.exch = U, pu, 0, 0
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.end = end


class Emulator:
    """A local Binance (market data) replaying event stores.

    Parameters
    ----------
    data : path or sequence of paths
        Event stores (one symbol, following one another in time).
    venue : {"binance-spot", "binance-um"}
        The venue to speak: spot (``/api/v3``, ``trade``) or USD-M futures (``/fapi/v1``, ``pu``).
    symbol : str, optional
        The symbol served (default: the store's).
    speed : float
        The venue clock runs ``speed`` x wall time.
    max_speed : bool
        Send as fast as the clients read (the venue clock follows the replay).
    host, port : str, int
        Where to listen (``port=0``: an ephemeral port; see ``url``).
    start_now : bool
        Start the replay at once instead of at the first subscription.
    autostart : bool
        Start the replay at the first subscription (False: only ``begin()`` or ``POST /_avmm/start``
        starts it: a client of several connections sees the replay from its first step on each).
    faults : sequence of str or Fault
        Fault knobs applied at the start of the replay (or at their ``@`` time).
    heartbeat : float or None
        Seconds between the server's pings (None: no pings).
    msg_rate : int or None
        Incoming messages a second a connection may send (None: Binance's, 5 on spot and 10 on
        USD-M; 0: no limit).
    max_streams : int
        Streams a connection may subscribe (Binance: 1024; 0: no limit).

    Use ``async with Emulator(...) as emu`` (or ``await emu.start()`` / ``await emu.stop()``);
    ``EmulatorThread`` runs one in a thread for synchronous code.
    """

    def __init__(
        self,
        data: Path | str | Sequence[Path | str],
        *,
        venue: str = fr.SPOT,
        symbol: str | None = None,
        speed: float = 1.0,
        max_speed: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        start_now: bool = False,
        autostart: bool = True,
        faults: Sequence[str | Fault] = (),
        heartbeat: float | None = 20.0,
        chunk_events: int = CHUNK_EVENTS,
        msg_rate: int | None = None,
        max_streams: int = MAX_STREAMS,
        keys: Sequence[ApiKey] | Path | str | None = None,
        strategy: StrategyConfig | None = None,
        backtest: BacktestConfig | None = None,
    ) -> None:
        from avmm.backtest.runner import plan_stores

        _aiohttp()  # the extra is missing: one line, before anything is read
        if venue not in fr.VENUES:
            raise UserError(f"--venue {venue}: unknown venue (use {' or '.join(fr.VENUES)})")
        if not (isinstance(speed, int | float) and math.isfinite(speed) and speed > 0):
            raise UserError(f"--speed {speed}: must be a positive number")
        if not (0 <= int(port) <= 65535):
            raise UserError(f"--port {port}: must be 0 to 65535")
        paths = [data] if isinstance(data, str | Path) else list(data)
        if not paths:
            raise UserError("give at least one event store")
        plan = plan_stores(paths)
        self.paths = plan.paths
        meta = plan.metas[0]
        self.t0 = min((sp[0] for sp in plan.spans if sp is not None), default=0)
        sym = symbol or meta.get("symbol") or "BTCUSDT"
        sym = "".join(ch for ch in str(sym).upper() if ch.isalnum())
        if not sym:
            raise UserError(f"--symbol {symbol!r}: not a symbol")
        self.symbol = sym
        self.lsym = sym.lower()
        self.venue = venue
        self.um = venue == fr.UM
        self.tick = meta.get("tick_size")
        self.lot = meta.get("lot_size")
        pdec = 8 if not self.um else fr.decimals(self.tick)
        qdec = 8 if not self.um else fr.decimals(self.lot)
        self.pdec, self.qdec = pdec, qdec
        self.enc = fr.Encoder(venue, sym, pdec, qdec)
        self.speed = float(speed)
        self.max_speed = bool(max_speed)
        self.host = host
        self.port = int(port)
        self.start_now = start_now
        self.autostart = autostart
        self.heartbeat = heartbeat
        self.chunk_events = chunk_events
        if msg_rate is None:
            msg_rate = MSG_RATE[venue]
        if int(msg_rate) < 0 or int(max_streams) < 0:
            raise UserError(f"msg_rate {msg_rate}, max_streams {max_streams}: must be 0 (no limit) or more")
        self.msg_rate = int(msg_rate)
        self.max_streams = int(max_streams)
        self.limits = Limits(self.um)
        self.private: Private | None = None
        if keys is not None:
            self.private = self._make_private(keys, strategy, backtest, meta)
        self.initial_faults = self._initial_faults(faults)
        kinds = KINDS_UM if self.um else KINDS_SPOT
        self.streams = {f"{self.lsym}@{k}": k for k in kinds}
        self._kinds_lower = {k.lower(): k for k in kinds}
        partial = PARTIAL_UM if self.um else PARTIAL_SPOT
        self._partial = {
            ch: [(f"{self.lsym}@{k}", n) for k, (n, iv) in partial.items() if iv == ch] for ch in (100, 250, 500, 1000)
        }
        # the streams fed by the diffs merged over each interval (diff and partial streams)
        self._by_interval = {
            ch: [f"{self.lsym}@{k}" for k, v in DEPTH_INTERVALS.items() if v == ch] + [x for x, _ in self._partial[ch]]
            for ch in (100, 250, 500, 1000)
        }
        self.lag_ns = capture_lag(self.paths[0]) if plan.spans[0] is not None else 0
        self._lag_ms = self.lag_ns // 1_000_000
        self.replay = Replay(self.paths, chunk_events, self.lag_ns)
        # state
        self._subs: dict[str, set[_Conn]] = {}
        self._conns: set[_Conn] = set()
        self._go: asyncio.Event | None = None
        self._done: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._runner: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started = False
        self.done = False
        self.steps = 0
        self.frames = 0
        self.dropped = 0
        self._shift_ms = 0
        self._skew_ms = 0
        self._start_mono = 0.0
        self._end_mono = 0.0
        self._pos = self.t0
        self._stall_until = 0.0
        self._stall_scoped: dict[str, float] = {}  # scope -> until (a stall of some paths only)
        self._lifetime: dict[str | None, float] = {}  # scope (None: every path) -> seconds
        self.opened: dict[str, int] = {}  # stream connections opened, by path
        self.limit_closes = {"msgrate": 0, "maxstreams": 0}
        self._drop: dict[int, int] = {}
        self._reorder: dict[int, bytes | None] = {}
        self._reorder_on: set[int] = set()
        self._timed: list[Fault] = []
        self._batches: dict[int, _Batch] = {}
        self._last_end: dict[int, int] = {}  # the end of each interval stream's last diff
        self._error: BaseException | None = None
        self._op: Any = None
        self._names0: list[str] = []
        self._active: list[int] = []

    def _initial_faults(self, faults: Sequence[str | Fault]) -> list[Fault]:
        """Apply the limits and knobs given without a time now; the others wait for the replay."""
        parsed = [f if isinstance(f, Fault) else parse_fault(f) for f in faults]
        if self.private is None:
            for f in parsed:
                if f.name in PRIVATE:
                    raise UserError(f"--fault {f.spec()}: {f.name} acts on the private side: give --keys FILE")
        out = []
        for f in parsed:
            if f.name in KNOBS and f.at_s is None:  # holds from the first connection
                self._fire(f)
            else:
                out.append(f)
        return out

    def _make_private(
        self,
        keys: Sequence[ApiKey] | Path | str,
        strategy: StrategyConfig | None,
        backtest: BacktestConfig | None,
        meta: dict[str, Any],
    ) -> Private:
        """The private side: the keys' accounts on the backtester's exchange model (the strategy's
        tick and lot are the store's; its position limit and sizes set the "auto" balances)."""
        from avmm.backtest.config import BacktestConfig
        from avmm.core.config import StrategyConfig
        from avmm.emulator.keys import load_keys
        from avmm.emulator.private import Private

        key_list = load_keys(keys) if isinstance(keys, str | Path) else list(keys)
        if not key_list:
            raise UserError("--keys: no keys")
        cfg = strategy if strategy is not None else StrategyConfig()
        tick = float(self.tick) if self.tick else 10.0**-self.pdec
        lot = float(self.lot) if self.lot else 10.0**-self.qdec
        cfg = cfg.model_copy(update={"quoting": cfg.quoting.model_copy(update={"tick": tick, "lot": lot})})
        bt = backtest if backtest is not None else BacktestConfig()
        model_meta = {"market": "perpetual" if self.um else "spot", "symbol": self.symbol, "source": meta.get("source")}
        return Private(self, key_list, cfg, bt, model_meta)

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the origin of REST and streams (``ws://`` for streams)."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def start(self) -> Emulator:
        aiohttp, web = _aiohttp()
        self._op = aiohttp.WSMsgType.TEXT
        self._loop = asyncio.get_running_loop()
        self._go = asyncio.Event()
        self._done = asyncio.Event()
        app = web.Application(middlewares=[self._middleware(web)])
        r = app.router
        pre = "/fapi/v1" if self.um else "/api/v3"
        r.add_get(pre + "/ping", self._ping)
        r.add_get(pre + "/time", self._time)
        r.add_get(pre + "/exchangeInfo", self._exchange_info)
        r.add_get(pre + "/depth", self._depth)
        for p in WS_PATHS:
            r.add_get(p, self._ws)
            r.add_get(p + "/{streams:.*}", self._ws)
        for p in STREAM_PATHS:
            r.add_get(p, self._ws)
        r.add_post("/_avmm/fault", self._ctl_fault)
        r.add_get("/_avmm/status", self._ctl_status)
        r.add_get("/_avmm/connections", self._ctl_connections)
        r.add_post("/_avmm/start", self._ctl_start)
        r.add_get("/_avmm/accounts", self._ctl_accounts)
        if self.private is not None:
            self.private.add_routes(r)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as e:
            await self._runner.cleanup()
            raise UserError(f"--port {self.port}: cannot listen on {self.host} ({e.strerror or e})") from None
        sock = site._server.sockets[0] if site._server is not None else None
        if sock is not None:
            self.port = sock.getsockname()[1]
        self._task = asyncio.get_running_loop().create_task(self._run())
        if self.private is not None:
            self.private.start()
        if self.start_now:
            self._go.set()
        return self

    async def stop(self) -> None:
        if self.private is not None:
            await self.private.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        for c in list(self._conns):
            c.closing = True
            with contextlib.suppress(Exception):
                await c.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_done(self, timeout: float | None = None) -> None:
        """Wait until the replay has sent its last step (the sockets stay open)."""
        assert self._done is not None, "start() first"
        await asyncio.wait_for(self._done.wait(), timeout)
        if self._error is not None:
            raise self._error

    def begin(self) -> None:
        """Start the replay now (it starts by itself at the first subscription)."""
        if self._go is not None:
            self._go.set()

    # -- clock -------------------------------------------------------------------------------
    def venue_ms(self) -> int:
        """The venue clock in ms: the capture's time shifted to start now (wall time before the replay)."""
        if not self.started:
            return time.time_ns() // 1_000_000 + self._skew_ms
        if self.max_speed:
            base = self._pos // 1_000_000 + self._shift_ms
            if self.done:
                base += int((time.monotonic() - self._end_mono) * 1000)
            return base + self._skew_ms
        el = (time.monotonic() - self._start_mono) * self.speed
        return self.t0 // 1_000_000 + self._shift_ms + int(el * 1000) + self._skew_ms

    def _due(self, t: int) -> float:
        return self._start_mono + (t - self.t0) / 1e9 / self.speed

    # -- faults ------------------------------------------------------------------------------
    def apply_fault(self, f: Fault | str) -> Fault:
        """Apply a fault now (or at its ``@`` time): call from the emulator's event loop
        (``EmulatorThread.fault`` does that from another thread)."""
        f = f if isinstance(f, Fault) else parse_fault(f)
        if f.at_s is not None:
            self._timed.append(f)
            self._timed.sort(key=lambda x: x.at_s or 0.0)
            return f
        self._fire(f)
        return f

    fault = apply_fault

    def _fire(self, f: Fault) -> None:
        n = f.name
        if n == "drop":
            for ch in set(DEPTH_INTERVALS.values()):
                self._drop[ch] = self._drop.get(ch, 0) + int(f.arg or 1)
        elif n == "reorder":
            self._reorder_on.update(set(DEPTH_INTERVALS.values()))
        elif n == "skew":
            self._skew_ms = int(round(f.arg or 0))
        elif n == "msgrate":
            self.msg_rate = int(f.arg or 0)
        elif n == "maxstreams":
            self.max_streams = int(f.arg or 0)
        elif n in LIMITS:
            {"weightlimit": self.limits.set_weight_limit, "orderlimit": self.limits.set_order_limit}.get(
                n, self._burst
            )(int(f.arg or (1 if n == "ratelimit" else 0)))
        elif n in PRIVATE:
            if self.private is None:
                raise UserError(f"--fault {f.spec()}: {n} acts on the private side: give --keys FILE")
            self.private.fire(n, f.arg, f.scope)
        else:
            if n == "close" and self.private is not None:
                self.private.fire(n, f.arg, f.scope)
            if f.scope not in ("api", "user"):
                self._fire_sockets(f)

    def _burst(self, n: int) -> None:
        self.limits.burst += n

    def _fire_sockets(self, f: Fault) -> None:
        """``stall``, ``lifetime``, ``close``, ``shutdown``: on every socket or those of ``f.scope``."""
        n = f.name
        if n == "stall":
            until = math.inf if f.arg is None else time.monotonic() + f.arg
            if f.scope is None:
                self._stall_until = until
            else:
                self._stall_scoped[f.scope] = until
        elif n == "lifetime":
            self._lifetime[f.scope] = float(f.arg or 0)
            for c in self._conns:
                self._arm_lifetime(c)
        elif n in ("close", "shutdown"):
            for c in list(self._conns):
                if f.scope is None or f.scope == c.scope:
                    asyncio.get_running_loop().create_task(self._close(c, n == "shutdown"))

    def _arm_lifetime(self, c: _Conn) -> None:
        life = self._lifetime.get(c.scope, self._lifetime.get(None))
        if life is None:
            return
        if c.timer is not None:
            c.timer.cancel()
        delay = max(0.0, c.opened + life - time.monotonic())
        loop = asyncio.get_running_loop()
        c.timer = loop.call_later(delay, lambda: loop.create_task(self._close(c, False)))

    async def _close(self, c: _Conn, shutdown: bool, code: int = 1000, why: str = "") -> None:
        if c.closing:
            return
        c.closing = True
        self._unsubscribe_all(c)
        try:
            if shutdown:
                await c.ws.send_frame(self.enc.shutdown(self.venue_ms()), self._op)
            await c.ws.close(code=code, message=why.encode())
        except Exception:
            pass

    # -- subscriptions ----------------------------------------------------------------------
    def canonical(self, name: str) -> str | None:
        """The stream's canonical name if it is one the emulator serves for its symbol or another
        well-formed symbol (``""``: well formed, another symbol: accepted, never sends)."""
        sym, at, kind = str(name).partition("@")
        if not at or not sym:
            return None
        k = self._kinds_lower.get(kind.lower())
        if k is None:
            return None
        return f"{sym.lower()}@{k}"

    def _subscribe(self, c: _Conn, name: str) -> None:
        if name in c.subs:
            return
        c.subs.append(name)
        if c.strict and route_of(name) != c.scope:  # Binance acknowledges it and never sends it
            c.undelivered.append(name)
            return
        self._subs.setdefault(name, set()).add(c)
        self._recount()
        if name in self.streams and self._go is not None and self.autostart:
            self._go.set()

    def _unsubscribe(self, c: _Conn, name: str) -> None:
        if name in c.subs:
            c.subs.remove(name)
        if name in c.undelivered:
            c.undelivered.remove(name)
            return
        s = self._subs.get(name)
        if s is not None:
            s.discard(c)
        self._recount()

    def _recount(self) -> None:
        """The depth channels with subscribers (read by the replay loop on every diff)."""
        self._names0 = self._depth_names(0)
        self._active = [ch for ch, streams in self._by_interval.items() if any(self._subs.get(x) for x in streams)]
        for ch in [ch for ch in self._batches if ch not in self._active]:
            # nobody left to send it to: the diffs that follow are not merged into it, so it would
            # claim U..u without them (a new subscriber starts on a new batch, its pu a gap)
            del self._batches[ch]

    def _unsubscribe_all(self, c: _Conn) -> None:
        for name in list(c.subs):
            self._unsubscribe(c, name)
        self._conns.discard(c)
        if c.timer is not None:
            c.timer.cancel()

    # -- the replay --------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._go is not None and self._done is not None
        await self._go.wait()
        now_ms = time.time_ns() // 1_000_000
        self._shift_ms = now_ms - self.t0 // 1_000_000
        self._start_mono = time.monotonic()
        self.started = True
        for f in self.initial_faults:
            self.apply_fault(f)
        try:
            await self._loop_steps()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bad store: kept for wait_done / the CLI
            self._error = e
        finally:
            self.done = True
            self._end_mono = time.monotonic()
            self._done.set()

    async def _loop_steps(self) -> None:  # noqa: C901 - the hot loop stays flat
        enc = self.enc
        lsym = self.lsym
        bt_name = f"{lsym}@bookTicker"
        tr_name = f"{lsym}@trade"
        agg_name = f"{lsym}@aggTrade"
        subs = self._subs
        send = self._send
        max_speed = self.max_speed
        priv = self.private
        n = 0
        for st in self.replay.steps():
            t = st[1]
            if self._timed:
                self._fire_timed(t)
            if self._batches:
                await self._flush_due(t)
            if not max_speed:
                delay = self._due(t) - time.monotonic()
                if delay > 0.0005:
                    await asyncio.sleep(delay)
            else:
                n += 1
                if n >= YIELD_EVERY:
                    n = 0
                    await asyncio.sleep(0)
            self._pos = t
            self.steps += 1
            if priv is not None and priv.on_step(st, self._shift_ms + self._lag_ms + self._skew_ms):
                await priv.flush()
            k = st[0]
            if k == BT:
                if subs.get(bt_name):
                    await send(bt_name, enc.book_ticker(st, self._shift_ms + self._lag_ms + self._skew_ms))
            elif k == TR:
                if subs.get(tr_name):
                    await send(tr_name, enc.trade(st, self._shift_ms + self._lag_ms + self._skew_ms))
                if subs.get(agg_name):
                    await send(agg_name, enc.agg_trade(st, self._shift_ms + self._lag_ms + self._skew_ms))
            elif k == DIFF:
                await self._diff(st)
        for ch in list(self._batches):
            await self._flush(ch)
        for ch, held in list(self._reorder.items()):  # a diff held for a reorder that no diff followed
            self._reorder.pop(ch, None)
            self._reorder_on.discard(ch)
            if held is not None:
                for name in self._depth_names(ch):
                    await self._send(name, held)

    def _fire_timed(self, t: int) -> None:
        el = (t - self.t0) / 1e9
        while self._timed and (self._timed[0].at_s or 0.0) <= el:
            f = self._timed.pop(0)
            self._fire(dataclasses.replace(f, at_s=None))

    def _depth_names(self, ch: int) -> list[str]:
        return [
            f"{self.lsym}@{k}" for k, v in DEPTH_INTERVALS.items() if v == ch and self._subs.get(f"{self.lsym}@{k}")
        ]

    async def _diff(self, st: Any) -> None:
        _, t, exch, U, u, pu, bids, asks = st
        off = self._shift_ms + self._lag_ms + self._skew_ms
        names = self._names0
        if names:
            ms = exch // 1_000_000 + off
            await self._send_depth(0, names, self.enc.depth(U, u, pu, bids, asks, ms, ms))
        for ch in self._active:
            b = self._batches.get(ch)
            if b is None:
                # Binance's intervals are a grid of exchange time (E = k x interval): a capture of the
                # same stream is served diff for diff, with its own E; in the replay's time base
                # (stamps are moved by the lag), never two diffs in one interval
                iv = ch * 1_000_000
                end = -(-exch // iv) * iv + self._lag_ms * 1_000_000
                last = self._last_end.get(ch, 0)
                b = self._batches[ch] = _Batch(U, pu, end if end > last else last + iv)
            for p, q in bids:
                b.bids[p] = q
            for p, q in asks:
                b.asks[p] = q
            b.u, b.exch = u, exch

    async def _flush_due(self, t: int) -> None:
        for ch, b in sorted(self._batches.items(), key=lambda x: x[1].end):
            if b.end > t:
                continue
            if not self.max_speed:
                delay = self._due(b.end) - time.monotonic()
                if delay > 0.0005:
                    await asyncio.sleep(delay)
            await self._flush(ch)

    async def _flush(self, ch: int) -> None:
        b = self._batches.pop(ch, None)
        if b is None:
            return
        self._last_end[ch] = b.end
        off = self._shift_ms + self._skew_ms
        E = b.end // 1_000_000 + off
        T = b.exch // 1_000_000 + off + self._lag_ms
        names = self._depth_names(ch)
        if names:
            data = self.enc.depth(b.U, b.u, b.pu, list(b.bids.items()), list(b.asks.items()), E, T)
            await self._send_depth(ch, names, data)
        for name, n in self._partial[ch]:
            if self._subs.get(name):
                book = self.replay.book  # (its id with it: the book may hold the diff being sent next)
                bids, asks = book.top(n)
                if self.um:
                    data = self.enc.depth(b.U, book.last_u, b.pu, bids, asks, E, T)
                else:
                    data = self.enc.snapshot(book.last_u, bids, asks, E, T)
                await self._send(name, data)

    async def _send_depth(self, ch: int, names: list[str], data: bytes) -> None:
        if self._drop.get(ch):
            self._drop[ch] -= 1
            self.dropped += 1
            return
        if ch in self._reorder_on:
            held = self._reorder.get(ch)
            if held is None:
                self._reorder[ch] = data  # held until the next diff of this channel
                return
            self._reorder_on.discard(ch)
            del self._reorder[ch]
            for name in names:
                await self._send(name, data)
                await self._send(name, held)
            return
        for name in names:
            await self._send(name, data)

    async def _send(self, name: str, data: bytes) -> None:
        conns = self._subs.get(name)
        if not conns:
            return
        if self._stall_until and time.monotonic() < self._stall_until:
            return
        wrapped = None
        op = self._op
        stalled = self._stall_scoped
        now = time.monotonic() if stalled else 0.0
        for c in tuple(conns):
            if stalled and now < stalled.get(c.scope, 0.0):
                continue
            if c.combined:
                if wrapped is None:
                    wrapped = fr.wrap(name.encode(), data)
                payload = wrapped
            else:
                payload = data
            try:
                await c.ws.send_frame(payload, op)
                self.frames += 1
            except Exception:
                self._unsubscribe_all(c)

    # -- websocket handler -------------------------------------------------------------------
    async def _ws(self, request: Any) -> Any:
        aiohttp, web = _aiohttp()
        path = request.path
        combined = any(path == p or path.startswith(p + "/") for p in STREAM_PATHS)
        names: list[str] = []
        if combined:
            names = [x for x in request.query.get("streams", "").split("/") if x]
        else:
            names = [x for x in request.match_info.get("streams", "").split("/") if x]
        if self.private is not None:
            lk = self.private.listen_key_of(names)
            if lk is not None:  # a USD-M user stream: /ws/<listenKey>, /stream?streams=<listenKey>
                return await self.private.user_stream(request, lk, combined)
        # pings answered here, not by aiohttp: Binance counts them (and pongs) as incoming messages
        ws = web.WebSocketResponse(
            heartbeat=self.heartbeat, autoping=False, max_msg_size=1 << 20, compress=False, timeout=2.0
        )
        await ws.prepare(request)
        base = next((p for p in (*WS_PATHS, *STREAM_PATHS) if path == p or path.startswith(p + "/")), path)
        self.opened[base] = self.opened.get(base, 0) + 1
        c = _Conn(ws, combined, base, strict=self.um)
        self._conns.add(c)
        canon = list(dict.fromkeys(cn for cn in map(self.canonical, names) if cn is not None))
        if self.max_streams and len(canon) > self.max_streams:
            self.limit_closes["maxstreams"] += 1
            await self._close(c, False, CLOSE_POLICY, "Invalid request")
            return ws
        for cn in canon:
            self._subscribe(c, cn)
        self._arm_lifetime(c)
        try:
            await self._receive(c, aiohttp.WSMsgType)
        except Exception:
            pass
        finally:
            self._unsubscribe_all(c)
        return ws

    async def _receive(self, c: _Conn, T: Any) -> None:
        """The client's messages: control frames answered, pings ponged, each counted against the limit."""
        ws = c.ws
        async for msg in ws:
            mt = msg.type
            if mt not in (T.TEXT, T.BINARY, T.PING, T.PONG):
                if mt == T.ERROR:
                    break
                continue
            if self._over_rate(c):
                self.limit_closes["msgrate"] += 1
                await self._close(c, False, CLOSE_POLICY, "Too many requests")
                break
            if mt == T.PING:
                await ws.pong(msg.data)
            elif mt == T.TEXT:
                reply = self._control(c, msg.data)
                if reply is not None and not c.closing:
                    await ws.send_str(reply)
                if c.kill is not None:
                    await self._close(c, False, *c.kill)
                    break

    def _over_rate(self, c: _Conn) -> bool:
        """Count one incoming message of ``c``: True when it is one more than ``msg_rate`` in a second."""
        c.msgs += 1
        lim = self.msg_rate
        if not lim:
            return False
        now = time.monotonic()
        t = c.times
        while t and now - t[0] >= 1.0:
            t.popleft()
        if len(t) >= lim:
            return True
        t.append(now)
        return False

    def _control(self, c: _Conn, text: str) -> str | None:  # noqa: C901 - one branch per method
        """The answer to a control frame (SUBSCRIBE, ...)."""
        try:
            req = json.loads(text)
        except ValueError as e:
            line, col = getattr(e, "lineno", 1), getattr(e, "colno", 1)
            return _err(3, f"Invalid JSON: expected value at line {line} column {col}", None)
        if not isinstance(req, dict):
            return _err(2, "Invalid request: expected an object", None)
        rid = req.get("id")
        ok_id = isinstance(rid, int) and not isinstance(rid, bool) and rid >= 0
        if "id" in req and not ok_id and not isinstance(rid, str):
            return _err(2, "Invalid request: request ID must be an unsigned integer", None)
        method = req.get("method")
        if method is None:
            return _err(2, "Invalid request: missing field `method`", rid)
        params = req.get("params", [])
        if not isinstance(params, list):
            return _err(2, "Invalid request: params must be an array", rid)
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            canon: list[str] = []
            for p in params:
                cn = self.canonical(p) if isinstance(p, str) else None
                if cn is None:
                    return _err(
                        2,
                        f"Invalid request: invalid stream name {p!r}"
                        if isinstance(p, str)
                        else "Invalid request: stream name must be a string",
                        rid,
                    )
                canon.append(cn)
            if method == "SUBSCRIBE" and self.max_streams:
                new = {cn for cn in canon if cn not in c.subs}
                if len(c.subs) + len(new) > self.max_streams:  # Binance: refused, then the connection closed
                    self.limit_closes["maxstreams"] += 1
                    c.kill = (CLOSE_POLICY, "Invalid request")
                    return _err(4, "Too many subscriptions", rid)
            for cn in canon:
                (self._subscribe if method == "SUBSCRIBE" else self._unsubscribe)(c, cn)
            return json.dumps({"result": None, "id": rid}, separators=(",", ":"))
        if method == "LIST_SUBSCRIPTIONS":
            return json.dumps({"result": list(c.subs), "id": rid}, separators=(",", ":"))
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            if not params or not isinstance(params[0], str):
                return _err(2, "Invalid request: property name must be a string", rid)
            if params[0] != "combined":
                return _err(0, "Unknown property", rid)
            if method == "GET_PROPERTY":
                return json.dumps({"result": c.combined, "id": rid}, separators=(",", ":"))
            if len(params) < 2 or not isinstance(params[1], bool):
                return _err(1, "Invalid value type: expected Boolean", rid)
            c.combined = params[1]
            return json.dumps({"result": None, "id": rid}, separators=(",", ":"))
        return _err(
            2,
            f"Invalid request: unknown variant `{method}`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, "
            "`LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY` at line 1 column 28",
            rid,
        )

    # -- REST --------------------------------------------------------------------------------
    def _rest_weight(self, request: Any) -> int | None:
        """The request weight of a market-data REST request (None: not one)."""
        path = request.path
        pre = "/fapi/v1/" if self.um else "/api/v3/"
        if not path.startswith(pre):
            return None
        name = path[len(pre) :]
        if name in ("ping", "time"):
            return 1
        if name == "exchangeInfo":
            return 1 if self.um else 20
        if name == "depth":
            text = request.query.get("limit", "")
            lim = int(text) if text.isdigit() and len(text) < 10 else (500 if self.um else 100)
            if self.um:
                return 2 if lim <= 50 else 5 if lim <= 100 else 10 if lim <= 500 else 20
            return 5 if lim <= 100 else 25 if lim <= 500 else 50 if lim <= 1000 else 250
        return None

    def _middleware(self, web: Any) -> Any:
        """Request weight and its headers on the REST market data; Binance's error body for an
        ``ApiError`` (429 / 418 with ``Retry-After``)."""

        @web.middleware
        async def mw(request: Any, handler: Any) -> Any:
            w = self._rest_weight(request)
            if w is None:
                return await handler(request)
            now = self.venue_ms()
            try:
                self.limits.charge(now, w)
                resp = await handler(request)
            except ApiError as e:
                resp = self._json({"code": e.code, "msg": e.msg}, e.status)
                if e.data:
                    resp.headers["Retry-After"] = str(max(0, (int(e.data.get("retryAfter", now)) - now + 999) // 1000))
            resp.headers.update(self.limits.headers(now, None))
            return resp

        return mw

    def _json(self, body: Any, status: int = 200) -> Any:
        _, web = _aiohttp()
        data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        return web.Response(body=data, status=status, content_type="application/json")

    def _rest_error(self, code: int, msg: str, status: int = 400) -> Any:
        return self._json({"code": code, "msg": msg}, status)

    async def _ping(self, request: Any) -> Any:
        return self._json({})

    async def _time(self, request: Any) -> Any:
        return self._json({"serverTime": self.venue_ms()})

    def _check_symbol(self, request: Any) -> Any:
        sym = request.query.get("symbol")
        if sym is None or sym == "":
            return self._rest_error(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        if sym != self.symbol:
            return self._rest_error(-1121, "Invalid symbol.")
        return None

    async def _depth(self, request: Any) -> Any:
        bad = self._check_symbol(request)
        if bad is not None:
            return bad
        lim_text = request.query.get("limit")
        limit = 500 if self.um else 100
        if lim_text is not None:
            if not lim_text.isdigit() or len(lim_text) > 20:
                return self._rest_error(
                    -1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."
                )
            limit = int(lim_text)
            if self.um:
                if limit not in (5, 10, 20, 50, 100, 500, 1000):
                    return self._rest_error(-1130, "Data sent for parameter 'limit' is not valid.")
            else:
                if limit < 1:
                    return self._rest_error(
                        -1100, "Illegal characters found in parameter 'limit'; legal range is '[1, 5000]'."
                    )
                limit = min(limit, 5000)
        book = self.replay.book
        bids, asks = book.top(limit)
        now = self.venue_ms()
        return self._json(self.enc.snapshot(book.last_u, bids, asks, now, now))

    async def _exchange_info(self, request: Any) -> Any:
        q = request.query
        if "symbol" in q and q["symbol"] != self.symbol:
            return self._rest_error(-1121, "Invalid symbol.")
        if "symbols" in q:
            try:
                want = json.loads(q["symbols"])
            except ValueError:
                return self._rest_error(-1100, "Illegal characters found in parameter 'symbols'.")
            if not isinstance(want, list) or any(s != self.symbol for s in want):
                return self._rest_error(-1121, "Invalid symbol.")
        return self._json(self.exchange_info())

    def exchange_info(self) -> dict[str, Any]:
        """``exchangeInfo`` of the venue: the symbol's filters from the store's tick and lot size."""
        base, quote = split_symbol(self.symbol)
        tick = float(self.tick) if self.tick else 10.0**-self.pdec
        lot = float(self.lot) if self.lot else 10.0**-self.qdec
        pd, qd = self.pdec, self.qdec
        price_filter = {
            "filterType": "PRICE_FILTER",
            "minPrice": _num(tick, pd),
            "maxPrice": _num(1e7, pd),
            "tickSize": _num(tick, pd),
        }
        lot_filter = {
            "filterType": "LOT_SIZE",
            "minQty": _num(lot, qd),
            "maxQty": _num(9000.0, qd),
            "stepSize": _num(lot, qd),
        }
        mlot = dict(lot_filter, filterType="MARKET_LOT_SIZE")
        limits = self.limits.exchange_info_limits()
        if self.um:
            sym = {
                "symbol": self.symbol,
                "pair": self.symbol,
                "contractType": "PERPETUAL",
                "deliveryDate": 4133404800000,
                "onboardDate": 1569398400000,
                "status": "TRADING",
                "maintMarginPercent": "2.5000",
                "requiredMarginPercent": "5.0000",
                "baseAsset": base,
                "quoteAsset": quote,
                "marginAsset": quote,
                "pricePrecision": pd,
                "quantityPrecision": qd,
                "baseAssetPrecision": 8,
                "quotePrecision": 8,
                "underlyingType": "COIN",
                "underlyingSubType": [],
                "settlePlan": 0,
                "triggerProtect": "0.0500",
                "liquidationFee": "0.012500",
                "marketTakeBound": "0.05",
                "maxMoveOrderLimit": 10000,
                "filters": [
                    price_filter,
                    lot_filter,
                    mlot,
                    {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                    {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                    {"filterType": "MIN_NOTIONAL", "notional": "5"},
                    {
                        "filterType": "PERCENT_PRICE",
                        "multiplierUp": "1.0500",
                        "multiplierDown": "0.9500",
                        "multiplierDecimal": "4",
                    },
                ],
                "orderTypes": [
                    "LIMIT",
                    "MARKET",
                    "STOP",
                    "STOP_MARKET",
                    "TAKE_PROFIT",
                    "TAKE_PROFIT_MARKET",
                    "TRAILING_STOP_MARKET",
                ],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
            }
            return {
                "timezone": "UTC",
                "serverTime": self.venue_ms(),
                "futuresType": "U_MARGINED",
                "rateLimits": limits,
                "exchangeFilters": [],
                "assets": [{"asset": quote, "marginAvailable": True, "autoAssetExchange": "-10000"}],
                "symbols": [sym],
            }
        sym = {
            "symbol": self.symbol,
            "status": "TRADING",
            "baseAsset": base,
            "baseAssetPrecision": 8,
            "quoteAsset": quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT",
                "TAKE_PROFIT_LIMIT",
            ],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "amendAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                price_filter,
                lot_filter,
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                mlot,
                {
                    "filterType": "TRAILING_DELTA",
                    "minTrailingAboveDelta": 10,
                    "maxTrailingAboveDelta": 2000,
                    "minTrailingBelowDelta": 10,
                    "maxTrailingBelowDelta": 2000,
                },
                {
                    "filterType": "PERCENT_PRICE_BY_SIDE",
                    "bidMultiplierUp": "5",
                    "bidMultiplierDown": "0.2",
                    "askMultiplierUp": "5",
                    "askMultiplierDown": "0.2",
                    "avgPriceMins": 5,
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": "5.00000000",
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT"],
        }
        return {
            "timezone": "UTC",
            "serverTime": self.venue_ms(),
            "rateLimits": limits,
            "exchangeFilters": [],
            "symbols": [sym],
        }

    # -- control -----------------------------------------------------------------------------
    async def _ctl_fault(self, request: Any) -> Any:
        try:
            body = await request.json()
            spec = body["fault"] if isinstance(body, dict) else body
            f = self.apply_fault(str(spec))
        except UserError as e:
            return self._rest_error(-1100, str(e))
        except (ValueError, KeyError, TypeError):
            return self._rest_error(-1100, 'expected a JSON body {"fault": "NAME[:ARG][@SECONDS]"}')
        return self._json({"ok": True, "fault": f.spec()})

    async def _ctl_start(self, request: Any) -> Any:
        self.begin()
        return self._json({"ok": True})

    async def _ctl_status(self, request: Any) -> Any:
        return self._json(self.status())

    async def _ctl_connections(self, request: Any) -> Any:
        return self._json(self.connections())

    async def _ctl_accounts(self, request: Any) -> Any:
        return self._json(self.accounts())

    def accounts(self) -> dict[str, Any]:
        """The private side: each account (open orders, trades, fees, balances or position), the
        sessions and user streams, the request counts and the rate limits' state."""
        if self.private is None:
            return {"accounts": [], "private": None}
        return {"accounts": self.private.accounts_summary(), "private": self.private.status()}

    def connections(self) -> dict[str, Any]:
        """The open stream connections (oldest first: id, path, the streams it is sent, the ones
        subscribed on the wrong path and never sent, incoming messages, age), the connections opened
        per path, and those closed for a broken limit."""
        now = time.monotonic()
        conns = [
            {
                "id": c.id,
                "path": c.path,
                "combined": c.combined,
                "streams": [x for x in c.subs if x not in c.undelivered],
                "undelivered": list(c.undelivered),
                "messages": c.msgs,
                "age_s": round(now - c.opened, 3),
            }
            for c in sorted(self._conns, key=lambda c: c.id)
            if not c.closing
        ]
        limits = {"msg_rate": self.msg_rate, "max_streams": self.max_streams}
        return {"connections": conns, "opened": dict(self.opened), "limit_closes": dict(self.limit_closes), **limits}

    def status(self) -> dict[str, Any]:
        """The replay's state: started, done, steps and frames sent, connections, the venue clock."""
        return {
            "venue": self.venue,
            "symbol": self.symbol,
            "started": self.started,
            "done": self.done,
            "steps": self.steps,
            "frames": self.frames,
            "dropped": self.dropped,
            "connections": len(self._conns),
            "last_update_id": self.replay.book.last_u,
            "venue_time": self.venue_ms(),
            "error": None if self._error is None else str(self._error),
            "private": None if self.private is None else self.private.status(),
        }


def _err(code: int, msg: str, rid: Any) -> str:
    return json.dumps({"error": {"code": code, "msg": msg}, "id": rid}, separators=(",", ":"))
