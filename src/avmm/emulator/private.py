"""The emulator's private side: the WebSocket API, the signed REST endpoints and the user data, over
the matching engine (``matching.py``), for the API keys given (``keys.py``).

Spot: the WebSocket API on ``/ws-api/v3`` (``session.logon`` / ``status`` / ``logout``,
``order.place`` / ``cancel`` / ``cancelReplace`` / ``amend.keepPriority`` / ``status``,
``openOrders.status`` / ``cancelAll``, ``account.status``, ``myTrades``,
``userDataStream.subscribe`` (a logged-on Ed25519 session) / ``subscribe.signature`` /
``unsubscribe``, ``ping``, ``time``, ``exchangeInfo``), the user data on the same connection
(``{"subscriptionId":N,"event":{...}}``: ``executionReport``, ``outboundAccountPosition``,
``eventStreamTerminated``), and REST ``/api/v3/order`` (POST, DELETE, GET), ``order/cancelReplace``,
``order/amend/keepPriority``, ``openOrders`` (GET, DELETE), ``account``, ``myTrades``.

USD-M: the WebSocket API on ``/ws-fapi/v1`` (``session.*``, ``order.place`` / ``cancel`` /
``modify`` / ``status``, ``openOrders.status``, ``account.status`` / ``v2/account.status``,
``account.position`` / ``v2/account.position``, ``account.balance``, ``userDataStream.start`` /
``ping`` / ``stop``), REST ``/fapi/v1/order`` (POST, PUT, DELETE, GET), ``openOrders``,
``allOpenOrders`` (DELETE), ``userTrades``, ``countdownCancelAll``, ``listenKey`` (POST, PUT,
DELETE), ``/fapi/v2|v3/account``, ``positionRisk``, ``balance``; the user stream of a listenKey on
``/private/ws?listenKey=K``, ``/private/ws/K``, ``/ws/K`` and ``/stream?streams=K``
(``ORDER_TRADE_UPDATE``, ``TRADE_LITE``, ``ACCOUNT_UPDATE``, ``listenKeyExpired``).

Requests are checked as Binance checks them: the request weight and order budgets (``limits.py``:
429 / -1003 with ``retryAfter``, then 418; -1015), the key (-2014 malformed, -2015 unknown, HTTP-style
status 401), the signature (-1022), ``timestamp`` against ``recvWindow`` on the venue clock (-1021;
at a ``--speed`` other than 1 or ``--max``, where the venue clock runs away from any client's, the
wall clock plus the ``skew`` is accepted too),
the parameters (-1100, -1102, -1106, -1013 filters, -1116, -1117, -1115, -1121). A listenKey lives
60 minutes of wall time from its last keep-alive; ``countdownCancelAll`` counts wall time.

The private fault knobs (``faults.py``) act here: ``ackdelay``, ``fillfirst``, ``partial``,
``exectimeout``, ``noanswer``, ``ratelimit``, ``weightlimit``, ``orderlimit``, ``keyexpired``,
``terminated``, ``foreign``, and ``close`` of the ``api`` / ``user`` sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from avmm.backtest.config import BacktestConfig
from avmm.core.config import StrategyConfig
from avmm.emulator import formats as fm
from avmm.emulator.formats import Fmt, Order
from avmm.emulator.keys import ED25519, KEY_FORMAT, ApiKey, rest_payload, ws_payload
from avmm.emulator.limits import Limits
from avmm.emulator.matching import EV_DONE, EV_TRADE, Account, ApiError, Ids
from avmm.emulator.replay import BT, DIFF, TR

if TYPE_CHECKING:
    from avmm.emulator.server import Emulator

API_PATH = {False: "/ws-api/v3", True: "/ws-fapi/v1"}
LISTEN_KEY_S = 3600.0  # a listenKey's life after its last keep-alive (wall time)
CID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
DEC = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
NONE, USER_STREAM, SIGNED = 0, 1, 2
MSG_TIMEOUT = "Timeout waiting for response from backend server. Send status unknown; execution status unknown."
TIMEOUT = ApiError(-1007, MSG_TIMEOUT, 408)
INT_RANGE = "^[0-9]{1,20}$"
DEC_RANGE = "^([0-9]{1,20})(\\.[0-9]{1,20})?$"
CID_RANGE = "^[\\.A-Z\\:/a-z0-9_-]{1,36}$"


def _mandatory(name: str) -> ApiError:
    return ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _illegal(name: str, legal: str) -> ApiError:
    return ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def _invalid(name: str) -> ApiError:
    return ApiError(-1130, f"Data sent for parameter '{name}' is not valid.")


@dataclass
class Req:
    """One request: its parameters (WS API: JSON values; REST: strings), the session it came on
    (None: REST), the account it acts for, and the venue time it is matched at."""

    method: str
    params: dict[str, Any]
    session: Session | None = None
    rest_key: str | None = None  # REST: X-MBX-APIKEY
    rest_sig: tuple[str, str | None] | None = None  # REST: the signature payload and the signature
    account: Account | None = None
    now_ms: int = 0
    t_ns: int = 0
    orders: bool = False  # it counted an order (its answer shows the order budgets)
    held: int = -1  # the ``fillfirst`` fault: the order whose first fill releases the answer

    # -- parameters -------------------------------------------------------------------------------
    def get(self, name: str) -> Any:
        v = self.params.get(name)
        return None if v is None or v == "" else v

    def text(self, name: str, required: bool = True) -> str | None:
        v = self.get(name)
        if v is None:
            if required:
                raise _mandatory(name)
            return None
        if isinstance(v, bool) or not isinstance(v, str | int):
            raise _mandatory(name)
        return str(v)

    def integer(self, name: str, required: bool = False) -> int | None:
        v = self.get(name)
        if v is None:
            if required:
                raise _mandatory(name)
            return None
        s = str(v)
        if isinstance(v, bool) or not s.isdigit() or len(s) > 20:
            raise _illegal(name, INT_RANGE)
        return int(s)

    def decimal(self, name: str, required: bool = True) -> float | None:
        v = self.get(name)
        if v is None:
            if required:
                raise _mandatory(name)
            return None
        s = str(v)
        if isinstance(v, bool) or not DEC.match(s):
            raise _illegal(name, DEC_RANGE)
        return float(s)

    def choice(self, name: str, allowed: Sequence[str], code: int, msg: str, default: str | None = None) -> str:
        v = self.get(name)
        if v is None:
            if default is not None:
                return default
            raise _mandatory(name)
        if not isinstance(v, str) or v not in allowed:
            raise ApiError(code, msg)
        return v

    def flag(self, name: str) -> bool:
        v = self.get(name)
        if v is None:
            return False
        if v is True or v is False:
            return bool(v)
        if str(v).lower() in ("true", "false"):
            return str(v).lower() == "true"
        raise _invalid(name)


@dataclass(eq=False)
class Session:
    """One WebSocket API connection."""

    ws: Any
    connected_ms: int
    return_limits: bool = True
    key: ApiKey | None = None
    authorized_ms: int | None = None
    subs: dict[int, Account] = field(default_factory=dict)  # subscriptionId -> account
    next_sub: int = 0
    closing: bool = False


@dataclass(eq=False)
class UserConn:
    """One user-data stream connection of a listenKey (USD-M)."""

    ws: Any
    key: str
    combined: bool
    closing: bool = False


@dataclass(eq=False)
class ListenKey:
    key: str
    account: Account
    expires: float  # monotonic
    conns: set[UserConn] = field(default_factory=set)
    live: bool = True


Handler = Callable[[Req], Any]


class Private:
    """The private side of one ``Emulator`` (built when it has keys)."""

    def __init__(
        self,
        emu: Emulator,
        keys: Sequence[ApiKey],
        strategy: StrategyConfig,
        backtest: BacktestConfig,
        meta: dict[str, Any],
    ) -> None:
        from avmm.emulator.server import split_symbol

        self.emu = emu
        self.um = emu.um
        base, quote = split_symbol(emu.symbol)
        self.fmt = Fmt(emu.symbol, base, quote, emu.pdec, emu.qdec)
        self.ids = Ids()
        self.keys = {k.api_key: k for k in keys}
        self.accounts = {
            k.api_key: Account(k.api_key, 100_000 + i, self.fmt, self.um, self.ids, strategy, backtest, meta)
            for i, k in enumerate(keys, 1)
        }
        self.acc_list = list(self.accounts.values())
        self.limits: Limits = emu.limits
        self.sessions: set[Session] = set()
        self.listen_keys: dict[str, ListenKey] = {}
        self.by_account_key: dict[str, ListenKey] = {}
        self.countdowns: dict[str, asyncio.TimerHandle] = {}
        # faults
        self.ack_delay_ms = 0.0
        self.fill_first = 0
        self.exec_timeout = 0
        self.no_answer = 0
        self.foreign_pending = 0
        self._held: dict[int, list[tuple[Any, bytes]]] = {}  # order id -> answers sent after its first fill
        self._tasks: set[asyncio.Task[Any]] = set()
        self._flush_lock = asyncio.Lock()
        self._sweeper: asyncio.Task[None] | None = None
        self.counts = {"requests": 0, "errors": 0, "orders": 0}
        from aiohttp import WSMsgType

        self._text = WSMsgType.TEXT
        self.methods = self._spot_methods() if not self.um else self._um_methods()

    # -- lifecycle --------------------------------------------------------------------------------
    def add_routes(self, router: Any) -> None:
        router.add_get(API_PATH[self.um], self._api)
        if not self.um:
            rest = {
                ("POST", "/api/v3/order"): "order.place",
                ("DELETE", "/api/v3/order"): "order.cancel",
                ("GET", "/api/v3/order"): "order.status",
                ("POST", "/api/v3/order/cancelReplace"): "order.cancelReplace",
                ("PUT", "/api/v3/order/amend/keepPriority"): "order.amend.keepPriority",
                ("GET", "/api/v3/openOrders"): "openOrders.status",
                ("DELETE", "/api/v3/openOrders"): "openOrders.cancelAll",
                ("GET", "/api/v3/account"): "account.status",
                ("GET", "/api/v3/myTrades"): "myTrades",
            }
        else:
            rest = {
                ("POST", "/fapi/v1/order"): "order.place",
                ("DELETE", "/fapi/v1/order"): "order.cancel",
                ("PUT", "/fapi/v1/order"): "order.modify",
                ("GET", "/fapi/v1/order"): "order.status",
                ("GET", "/fapi/v1/openOrders"): "openOrders.status",
                ("DELETE", "/fapi/v1/allOpenOrders"): "openOrders.cancelAll",
                ("GET", "/fapi/v2/account"): "account.status",
                ("GET", "/fapi/v3/account"): "v2/account.status",
                ("GET", "/fapi/v2/positionRisk"): "account.position",
                ("GET", "/fapi/v3/positionRisk"): "v2/account.position",
                ("GET", "/fapi/v2/balance"): "account.balance",
                ("GET", "/fapi/v3/balance"): "v2/account.balance",
                ("GET", "/fapi/v1/userTrades"): "userTrades",
                ("GET", "/fapi/v1/leverageBracket"): "leverageBracket",
                ("GET", "/fapi/v1/positionSide/dual"): "positionSide.dual",
                ("POST", "/fapi/v1/countdownCancelAll"): "countdownCancelAll",
                ("POST", "/fapi/v1/listenKey"): "userDataStream.start",
                ("PUT", "/fapi/v1/listenKey"): "userDataStream.ping",
                ("DELETE", "/fapi/v1/listenKey"): "userDataStream.stop",
            }
            router.add_get("/private/ws", self._private_ws)
            router.add_get("/private/ws/{key}", self._private_ws)
            router.add_get("/private/stream", self._private_ws)
        for (verb, path), name in rest.items():
            router.add_route(verb, path, self._rest_handler(name))

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sweeper
        for h in self.countdowns.values():
            h.cancel()
        for s in list(self.sessions):
            s.closing = True
            with contextlib.suppress(Exception):
                await s.ws.close()
        for lk in self.listen_keys.values():
            for c in list(lk.conns):
                with contextlib.suppress(Exception):
                    await c.ws.close()

    def now_ms(self) -> int:
        return self.emu.venue_ms()

    # -- the market ------------------------------------------------------------------------------
    def on_step(self, st: tuple[Any, ...], off_ms: int) -> bool:
        """Feed one replay step to every account's model (at its venue time); True when there are
        user-data events to send (``flush``)."""
        k = st[0]
        t = (st[2] // 1_000_000 + off_ms) * 1_000_000
        pending = False
        if k == BT:
            for acc in self.acc_list:
                acc.quote(t, st[4], st[5], st[6], st[7])
                pending = pending or bool(acc.outbox)
            if self.foreign_pending:
                self._place_foreign(t)
                pending = True
        elif k == TR:
            for acc in self.acc_list:
                acc.trade(t, st[4], st[5], st[6])
                pending = pending or bool(acc.outbox)
        elif k == DIFF and self.emu.replay.depth_mode:
            for acc in self.acc_list:
                acc.depth(t, st[6], st[7])
                pending = pending or bool(acc.outbox)
        return pending

    def _place_foreign(self, t: int) -> None:
        n = self.foreign_pending
        placed = False
        for acc in self.acc_list:
            placed = bool(acc.foreign(t, n)) or placed
        if placed:
            self.foreign_pending = 0

    # -- faults ----------------------------------------------------------------------------------
    def fire(self, name: str, arg: float | None, scope: str | None) -> None:
        """Apply a private-side fault (``faults.PRIVATE``)."""
        getattr(self, "_fault_" + name)(arg, scope)

    def _fault_ackdelay(self, arg: float | None, scope: str | None) -> None:
        self.ack_delay_ms = float(arg or 0.0)

    def _fault_fillfirst(self, arg: float | None, scope: str | None) -> None:
        self.fill_first += int(arg or 1)

    def _fault_partial(self, arg: float | None, scope: str | None) -> None:
        for acc in self.acc_list:
            acc.split = int(arg or 1)

    def _fault_exectimeout(self, arg: float | None, scope: str | None) -> None:
        self.exec_timeout += int(arg or 1)

    def _fault_noanswer(self, arg: float | None, scope: str | None) -> None:
        self.no_answer += int(arg or 1)

    def _fault_ratelimit(self, arg: float | None, scope: str | None) -> None:
        self.limits.burst += int(arg or 1)

    def _fault_weightlimit(self, arg: float | None, scope: str | None) -> None:
        self.limits.set_weight_limit(int(arg or 0))

    def _fault_orderlimit(self, arg: float | None, scope: str | None) -> None:
        self.limits.set_order_limit(int(arg or 0))

    def _fault_foreign(self, arg: float | None, scope: str | None) -> None:
        self.foreign_pending += int(arg or 1)
        acc = self.acc_list[0]
        if int(acc.bs["has_book"][0]):
            self._place_foreign(acc.t_last)
            self._spawn(self.flush())

    def _fault_keyexpired(self, arg: float | None, scope: str | None) -> None:
        for lk in list(self.listen_keys.values()):
            self._spawn(self._expire(lk))

    def _fault_terminated(self, arg: float | None, scope: str | None) -> None:
        for s in list(self.sessions):
            if s.subs:
                self._spawn(self._terminate(s, list(s.subs)))

    def _fault_close(self, arg: float | None, scope: str | None) -> None:
        if scope in (None, "api"):
            for s in list(self.sessions):
                self._spawn(self._close_ws(s))
        if scope in (None, "user"):
            for lk in self.listen_keys.values():
                for c in list(lk.conns):
                    self._spawn(self._close_ws(c))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close_ws(self, c: Session | UserConn) -> None:
        c.closing = True
        with contextlib.suppress(Exception):
            await c.ws.close()

    # -- sending ---------------------------------------------------------------------------------
    async def _send(self, ws: Any, data: bytes) -> None:
        with contextlib.suppress(Exception):
            await ws.send_frame(data, self._text)

    async def flush(self) -> None:
        """Send every account's user-data events to its subscribers, then the answers held for them
        (one flush at a time: a send that waits for a slow client must not let later events pass)."""
        async with self._flush_lock:
            for acc in self.acc_list:
                while acc.outbox:
                    box, acc.outbox = acc.outbox, []
                    targets = self._targets(acc)
                    for oid, flags, ev in box:
                        data = fm.dumps(ev)
                        for ws, wrap in targets:
                            await self._send(ws, wrap(data))
                        if oid in self._held and flags & (EV_TRADE | EV_DONE):
                            for ws, ans in self._held.pop(oid):
                                await self._send(ws, ans)

    def _targets(self, acc: Account) -> list[tuple[Any, Callable[[bytes], bytes]]]:
        out: list[tuple[Any, Callable[[bytes], bytes]]] = []
        if self.um:
            lk = self.by_account_key.get(acc.api_key)
            if lk is not None and lk.live:
                for c in lk.conns:
                    if c.closing:
                        continue
                    if c.combined:
                        out.append((c.ws, _combined(lk.key)))
                    else:
                        out.append((c.ws, _raw))
            return out
        for s in self.sessions:
            if s.closing:
                continue
            for sid, a in s.subs.items():
                if a is acc:
                    out.append((s.ws, _subscription(sid)))
        return out

    # -- the WebSocket API -----------------------------------------------------------------------
    async def _api(self, request: Any) -> Any:
        from aiohttp import WSMsgType, web

        ws = web.WebSocketResponse(heartbeat=self.emu.heartbeat, max_msg_size=1 << 20, compress=False)
        await ws.prepare(request)
        rl = request.query.get("returnRateLimits", "true").lower() != "false"
        s = Session(ws, self.now_ms(), rl)
        self.sessions.add(s)
        with contextlib.suppress(ApiError):
            self.limits.charge(s.connected_ms, 2)  # connecting costs 2 weight
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._api_message(s, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
                if self.limits.ban_until > self.now_ms():  # banned: disconnected
                    break
        finally:
            s.closing = True
            self.sessions.discard(s)
        return ws

    async def _api_message(self, s: Session, text: str) -> None:
        try:
            req = json.loads(text, parse_float=str)
        except ValueError:
            e = ApiError(-1100, "Illegal characters found in a parameter.")
            await self._send(s.ws, _error_frame(None, e, None))
            return
        if not isinstance(req, dict):
            e = ApiError(-1102, "A mandatory parameter was not sent, was empty/null, or malformed.")
            await self._send(s.ws, _error_frame(None, e, None))
            return
        rid = req.get("id")
        method = req.get("method")
        params = req.get("params", {})
        if not isinstance(method, str) or not isinstance(params, dict):
            e = _mandatory("method" if not isinstance(method, str) else "params")
            await self._send(s.ws, _error_frame(rid, e, None))
            return
        if method.startswith("v3/") or (method.startswith("v1/") and self.um):
            method = method[3:]
        r = Req(method, dict(params), session=s)
        limits_wanted = r.flag("returnRateLimits") if "returnRateLimits" in params else s.return_limits
        status, result, kind = self.dispatch(r)
        if kind == "none":  # the ``noanswer`` fault: matched, never answered
            await self.flush()
            return
        rate = self.limits.rate_limits(r.now_ms, r.account.api_key if r.account else None, r.orders)
        rate_out = rate if limits_wanted else None
        if isinstance(result, ApiError):
            frame = _error_frame(rid, result, rate_out)
        else:
            frame = _ok_frame(rid, result, rate_out)
        await self._answer(s.ws, frame, kind, r)
        await self.flush()

    async def _answer(self, ws: Any, frame: bytes | None, kind: str, r: Req) -> None:
        """Send an answer (WS API), applying the order-answer faults."""
        if frame is None:
            return
        if kind == "order" and self.ack_delay_ms > 0:
            loop = asyncio.get_running_loop()
            loop.call_later(self.ack_delay_ms / 1000.0, lambda: self._spawn(self._send(ws, frame)))
            return
        if kind == "held":
            self._held.setdefault(r.held, []).append((ws, frame))
            return
        await self._send(ws, frame)

    # -- dispatch (both transports) --------------------------------------------------------------
    def dispatch(self, r: Req) -> tuple[int, Any, str]:
        """Run a request: ``(status, result or ApiError, kind)``; kind ``order`` marks an order
        request's answer (the answer faults apply), ``none`` one never answered, ``held`` one sent
        after the order's first fill."""
        self.counts["requests"] += 1
        r.now_ms = self.now_ms()
        r.t_ns = r.now_ms * 1_000_000
        spec = self.methods.get(r.method)
        if spec is None:
            self.counts["errors"] += 1
            return 400, ApiError(-1100, f"Unknown method '{r.method}'."), "plain"
        weight, security, fn, is_order = spec
        try:
            w = weight(r) if callable(weight) else weight
            self.limits.charge(r.now_ms, w)
            if security != NONE:
                r.account = self._auth(r, security)
            result = fn(r)
        except ApiError as e:
            self.counts["errors"] += 1
            return e.status, e, "plain"
        if not is_order:
            return 200, result, "plain"
        self.counts["orders"] += 1
        if self.no_answer > 0:
            self.no_answer -= 1
            return 0, None, "none"
        if self.exec_timeout > 0:
            self.exec_timeout -= 1
            return TIMEOUT.status, TIMEOUT, "plain"
        return 200, result, "held" if r.held >= 0 else "order"

    def _auth(self, r: Req, security: int) -> Account:
        p = r.params
        s = r.session
        if s is not None:  # the WebSocket API
            name = p.get("apiKey")
            if name is None:
                if s.key is None:
                    raise _mandatory("apiKey")
                key = s.key
                if security == SIGNED:
                    self._check_time(r)
                return self.accounts[key.api_key]
            key = self._key(name)
            if security == USER_STREAM:
                return self.accounts[key.api_key]
            sig = p.get("signature")
            if not isinstance(sig, str) or not sig:
                raise _mandatory("signature")
            if not key.verify(ws_payload(p), sig):
                raise ApiError(-1022, "Signature for this request is not valid.")
            self._check_time(r)
            return self.accounts[key.api_key]
        name = r.rest_key
        if name is None:
            raise ApiError(-2014, "API-key format invalid.", 401)
        key = self._key(name)
        if security == USER_STREAM:
            return self.accounts[key.api_key]
        assert r.rest_sig is not None
        payload, sig = r.rest_sig
        if not sig:
            raise _mandatory("signature")
        if not key.verify(payload, urllib.parse.unquote(sig)):
            raise ApiError(-1022, "Signature for this request is not valid.")
        self._check_time(r)
        return self.accounts[key.api_key]

    def _key(self, name: Any) -> ApiKey:
        if not isinstance(name, str) or not KEY_FORMAT.match(name):
            raise ApiError(-2014, "API-key format invalid.", 401)
        key = self.keys.get(name)
        if key is None:
            raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        return key

    def _check_time(self, r: Req) -> None:
        ts = r.get("timestamp")
        if ts is None:
            raise _mandatory("timestamp")
        try:
            t = float(str(ts))
        except ValueError:
            raise _illegal("timestamp", INT_RANGE) from None
        if t > 1e14:  # microseconds
            t /= 1000.0
        rw = r.get("recvWindow")
        window = 5000.0
        if rw is not None:
            try:
                window = float(str(rw))
            except ValueError:
                raise _illegal("recvWindow", DEC_RANGE) from None
            if window > 60000:
                raise ApiError(-1131, "recvWindow must be less than 60000")
        now = r.now_ms
        if t < now + 1000 and now - t <= window:
            return
        emu = self.emu
        if emu.max_speed or emu.speed != 1.0:  # a venue clock no client can follow: the wall clock too
            wall = time.time_ns() // 1_000_000 + emu._skew_ms
            if t < wall + 1000 and wall - t <= window:
                return
            now = wall
        if t >= now + 1000:
            raise ApiError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        raise ApiError(-1021, "Timestamp for this request is outside of the recvWindow.")

    # -- REST ------------------------------------------------------------------------------------
    def _rest_handler(self, name: str) -> Callable[[Any], Any]:
        async def handle(request: Any) -> Any:
            return await self._rest(request, name)

        return handle

    async def _rest(self, request: Any, name: str) -> Any:
        from aiohttp import web

        body = await request.text() if request.can_read_body else ""
        query = request.rel_url.raw_query_string
        params: dict[str, Any] = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        if body:
            params.update(urllib.parse.parse_qsl(body, keep_blank_values=True))
        params.pop("signature", None)
        r = Req(name, params, rest_key=request.headers.get("X-MBX-APIKEY"), rest_sig=rest_payload(query, body))
        status, result, kind = self.dispatch(r)
        acc = r.account.api_key if r.account else None
        headers = self.limits.headers(r.now_ms, acc)
        if isinstance(result, ApiError) and result.status in (418, 429) and result.data:
            headers["Retry-After"] = str(max(0, (int(result.data.get("retryAfter", 0)) - r.now_ms + 999) // 1000))
        await self.flush()  # the user data goes out now, whatever happens to the answer
        if kind == "none":
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPRequestTimeout()
        if kind == "order" and self.ack_delay_ms > 0:
            await asyncio.sleep(self.ack_delay_ms / 1000.0)
        if isinstance(result, ApiError):
            data = fm.dumps({"code": result.code, "msg": result.msg})
        else:
            data = fm.dumps(result)
        return web.Response(body=data, status=status, content_type="application/json", headers=headers)

    # -- the user streams (USD-M listenKey) ------------------------------------------------------
    def listen_key_of(self, names: list[str]) -> str | None:
        """The listenKey a stream connection asks for (``/ws/K``, ``/stream?streams=K``)."""
        if self.um and len(names) == 1 and names[0] in self.listen_keys:
            return names[0]
        return None

    async def _private_ws(self, request: Any) -> Any:
        key = request.match_info.get("key") or request.query.get("listenKey") or request.query.get("streams", "")
        return await self.user_stream(request, key, combined=request.path.startswith("/private/stream"))

    async def user_stream(self, request: Any, key: str, combined: bool) -> Any:
        from aiohttp import WSMsgType, web

        lk = self.listen_keys.get(key)
        if lk is None or not lk.live:
            return web.Response(
                body=fm.dumps({"code": -1125, "msg": "This listenKey does not exist."}),
                status=400,
                content_type="application/json",
            )
        ws = web.WebSocketResponse(heartbeat=self.emu.heartbeat, max_msg_size=1 << 20, compress=False)
        await ws.prepare(request)
        c = UserConn(ws, key, combined)
        lk.conns.add(c)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            c.closing = True
            lk.conns.discard(c)
        return ws

    def _listen_key(self, acc: Account) -> ListenKey:
        lk = self.by_account_key.get(acc.api_key)
        if lk is None or not lk.live:
            lk = ListenKey(secrets.token_hex(32), acc, 0.0)
            self.listen_keys[lk.key] = lk
            self.by_account_key[acc.api_key] = lk
        lk.expires = time.monotonic() + LISTEN_KEY_S
        return lk

    async def _expire(self, lk: ListenKey) -> None:
        """``listenKeyExpired`` on the key's streams; the key is gone (its sockets stay open, silent)."""
        lk.live = False
        ev = fm.dumps({"e": "listenKeyExpired", "E": str(self.now_ms()), "listenKey": lk.key})
        for c in list(lk.conns):
            await self._send(c.ws, _combined(lk.key)(ev) if c.combined else ev)
        self.listen_keys.pop(lk.key, None)
        if self.by_account_key.get(lk.account.api_key) is lk:
            del self.by_account_key[lk.account.api_key]

    async def _terminate(self, s: Session, sids: list[int]) -> None:
        """``eventStreamTerminated`` on a session's subscriptions; they end."""
        for sid in sids:
            if s.subs.pop(sid, None) is not None:
                ev = fm.dumps({"e": "eventStreamTerminated", "E": self.now_ms()})
                await self._send(s.ws, _subscription(sid)(ev))

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for lk in list(self.listen_keys.values()):
                if lk.live and now > lk.expires:
                    await self._expire(lk)

    # -- methods ---------------------------------------------------------------------------------
    def _common(self) -> dict[str, tuple[Any, int, Handler, bool]]:
        return {
            "ping": (1, NONE, lambda r: {}, False),
            "time": (1, NONE, lambda r: {"serverTime": r.now_ms}, False),
            "exchangeInfo": (20 if not self.um else 1, NONE, self._exchange_info, False),
            "session.logon": (2, NONE, self._logon, False),
            "session.status": (2, NONE, self._session_status, False),
            "session.logout": (2, NONE, self._logout, False),
        }

    def _spot_methods(self) -> dict[str, tuple[Any, int, Handler, bool]]:
        return {
            **self._common(),
            "order.place": (1, SIGNED, self._spot_place, True),
            "order.cancel": (1, SIGNED, self._spot_cancel, True),
            "order.status": (4, SIGNED, self._spot_status, False),
            "order.cancelReplace": (1, SIGNED, self._spot_cancel_replace, True),
            "order.amend.keepPriority": (4, SIGNED, self._spot_amend, True),
            "openOrders.status": (lambda r: 6 if r.get("symbol") else 80, SIGNED, self._spot_open, False),
            "openOrders.cancelAll": (1, SIGNED, self._spot_cancel_all, True),
            "account.status": (20, SIGNED, self._spot_account, False),
            "myTrades": (lambda r: 5 if r.get("orderId") else 20, SIGNED, self._spot_trades, False),
            "userDataStream.subscribe": (2, NONE, self._subscribe, False),
            "userDataStream.subscribe.signature": (2, SIGNED, self._subscribe_signed, False),
            "userDataStream.unsubscribe": (2, NONE, self._unsubscribe, False),
        }

    def _um_methods(self) -> dict[str, tuple[Any, int, Handler, bool]]:
        return {
            **self._common(),
            "order.place": (0, SIGNED, self._um_place, True),
            "order.cancel": (1, SIGNED, self._um_cancel, True),
            "order.modify": (1, SIGNED, self._um_modify, True),
            "order.status": (1, SIGNED, self._um_status, False),
            "openOrders.status": (lambda r: 1 if r.get("symbol") else 40, SIGNED, self._um_open, False),
            "openOrders.cancelAll": (1, SIGNED, self._um_cancel_all, True),
            "account.status": (5, SIGNED, lambda r: self._um_account(r, False), False),
            "v2/account.status": (5, SIGNED, lambda r: self._um_account(r, True), False),
            "account.position": (5, SIGNED, lambda r: self._um_position(r, False), False),
            "v2/account.position": (5, SIGNED, lambda r: self._um_position(r, True), False),
            "account.balance": (5, SIGNED, self._um_balance, False),
            "v2/account.balance": (5, SIGNED, self._um_balance, False),
            "userTrades": (5, SIGNED, self._um_trades, False),
            "leverageBracket": (1, SIGNED, self._um_brackets, False),
            "positionSide.dual": (30, SIGNED, lambda r: {"dualSidePosition": False}, False),
            "countdownCancelAll": (10, SIGNED, self._um_countdown, False),
            "userDataStream.start": (1, USER_STREAM, self._lk_start, False),
            "userDataStream.ping": (1, USER_STREAM, self._lk_ping, False),
            "userDataStream.stop": (1, USER_STREAM, self._lk_stop, False),
        }

    # general
    def _exchange_info(self, r: Req) -> Any:
        sym = r.get("symbol")
        syms = r.get("symbols")
        if sym is not None and sym != self.emu.symbol:
            raise ApiError(-1121, "Invalid symbol.")
        if syms is not None and (not isinstance(syms, list) or any(x != self.emu.symbol for x in syms)):
            raise ApiError(-1121, "Invalid symbol.")
        return self.emu.exchange_info()

    def _session_result(self, s: Session, now_ms: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "apiKey": s.key.api_key if s.key else None,
            "authorizedSince": s.authorized_ms,
            "connectedSince": s.connected_ms,
            "returnRateLimits": s.return_limits,
            "serverTime": now_ms,
        }
        if not self.um:
            out["userDataStream"] = bool(s.subs)
        return out

    def _ws_only(self, r: Req) -> Session:
        if r.session is None:
            raise ApiError(-1100, f"Unknown method '{r.method}'.")
        return r.session

    def _logon(self, r: Req) -> Any:
        s = self._ws_only(r)
        key = self._key(r.get("apiKey"))
        sig = r.get("signature")
        if not isinstance(sig, str):
            raise _mandatory("signature")
        if key.kind != ED25519 or not key.verify(ws_payload(r.params), sig):  # Ed25519 keys only
            raise ApiError(-1022, "Signature for this request is not valid.")
        self._check_time(r)
        s.key = key
        s.authorized_ms = r.now_ms
        r.account = self.accounts[key.api_key]
        return self._session_result(s, r.now_ms)

    def _session_status(self, r: Req) -> Any:
        return self._session_result(self._ws_only(r), r.now_ms)

    def _logout(self, r: Req) -> Any:
        s = self._ws_only(r)
        if s.key is not None:
            acc = self.accounts[s.key.api_key]
            ended = [sid for sid, a in s.subs.items() if a is acc]
            if ended:
                self._spawn(self._terminate(s, ended))
                for sid in ended:
                    s.subs.pop(sid, None)
        s.key, s.authorized_ms = None, None
        return self._session_result(s, r.now_ms)

    def _add_sub(self, s: Session, acc: Account) -> Any:
        if any(a is acc for a in s.subs.values()):
            raise ApiError(-2035, "User Data Stream subscription already active.")
        sid = s.next_sub
        s.next_sub += 1
        s.subs[sid] = acc
        return {"subscriptionId": sid}

    def _subscribe(self, r: Req) -> Any:
        s = self._ws_only(r)
        if s.key is None or s.key.kind != ED25519:
            raise ApiError(-1002, "You are not authorized to execute this request.", 401)
        r.account = self.accounts[s.key.api_key]
        return self._add_sub(s, r.account)

    def _subscribe_signed(self, r: Req) -> Any:
        s = self._ws_only(r)
        assert r.account is not None
        return self._add_sub(s, r.account)

    def _unsubscribe(self, r: Req) -> Any:
        s = self._ws_only(r)
        sid = r.integer("subscriptionId")
        sids = list(s.subs) if sid is None else [sid]
        if not s.subs or any(x not in s.subs for x in sids):
            raise ApiError(-2036, "User Data Stream subscription not active.")
        for x in sids:
            s.subs.pop(x, None)
        return {}

    # shared order helpers
    def _symbol(self, r: Req, required: bool = True) -> str | None:
        sym = r.text("symbol", required)
        if sym is not None and sym != self.emu.symbol:
            raise ApiError(-1121, "Invalid symbol.")
        return sym

    def _on_grid(self, x: float, step: float) -> bool:
        k = x / step
        return abs(k - round(k)) < 1e-6 and round(k) >= 1

    def _new_cid(self, r: Req, name: str) -> str:
        cid = r.get(name)
        if cid is None:
            return self.ids.next_client()
        if not isinstance(cid, str) or not CID.match(cid):
            raise _illegal(name, CID_RANGE)
        return cid

    def _order_of(self, r: Req, code: int, id_name: str = "orderId", cid_name: str = "origClientOrderId") -> Order:
        assert r.account is not None
        oid = r.integer(id_name)
        cid = r.text(cid_name, required=False)
        if oid is None and cid is None:
            raise ApiError(-1102, f"Param '{cid_name}' or '{id_name}' must be sent, but both were empty/null!")
        return r.account.find(oid, cid, code)

    def _hold_or_answer(self, r: Req, o: Order) -> None:
        """The ``fillfirst`` fault: the answer waits for the order's first fill (or its end)."""
        if self.fill_first > 0 and r.session is not None and o.is_open and not o.trades:
            self.fill_first -= 1
            self._held.setdefault(o.order_id, [])
            r.held = o.order_id

    # spot
    def _spot_new(self, r: Req, prefix: str = "") -> tuple[Order, bool, str]:
        assert r.account is not None
        self._symbol(r)
        side = r.choice(prefix + "side" if prefix else "side", ("BUY", "SELL"), -1117, "Invalid side.")
        otype = r.choice("type", ("LIMIT", "LIMIT_MAKER"), -1116, "Invalid orderType.")
        if otype == "LIMIT":
            tif = r.choice("timeInForce", ("GTC", "IOC"), -1115, "Invalid timeInForce.")
        else:
            if r.get("timeInForce") is not None:
                raise ApiError(-1106, "Parameter 'timeInForce' sent when not required.")
            tif = "GTC"
        px = r.decimal("price")
        qty = r.decimal("quantity")
        assert px is not None and qty is not None
        if not self._on_grid(px, r.account.tick):
            raise ApiError(-1013, "Filter failure: PRICE_FILTER")
        if not self._on_grid(qty, r.account.lot):
            raise ApiError(-1013, "Filter failure: LOT_SIZE")
        default = "FULL" if otype == "LIMIT" else "ACK"
        resp = r.choice("newOrderRespType", ("ACK", "RESULT", "FULL"), -1130, _invalid("newOrderRespType").msg, default)
        cid = self._new_cid(r, "newClientOrderId")
        o = r.account.new_order(r.t_ns, cid, 1 if side == "BUY" else -1, otype, tif, px, qty)
        return o, otype == "LIMIT_MAKER", resp

    def _charge_order(self, r: Req) -> None:
        assert r.account is not None
        r.orders = True
        self.limits.charge_order(r.account.api_key, r.now_ms)

    def _spot_place(self, r: Req) -> Any:
        assert r.account is not None
        o, post_only, resp = self._spot_new(r)
        self._charge_order(r)
        fills = r.account.place(r.t_ns, o, post_only)
        self._hold_or_answer(r, o)
        return fm.order_response(self.fmt, o, resp, r.t_ns // 1_000_000, fills)

    def _spot_cancel(self, r: Req) -> Any:
        assert r.account is not None
        self._symbol(r)
        o = self._order_of(r, -2011)
        new_cid = self._new_cid(r, "newClientOrderId")
        r.account.cancel(r.t_ns, o, new_cid)
        return fm.cancel_report(self.fmt, o, r.t_ns // 1_000_000)

    def _spot_status(self, r: Req) -> Any:
        self._symbol(r)
        return fm.order_status(self.fmt, self._order_of(r, -2013))

    def _spot_cancel_replace(self, r: Req) -> Any:
        assert r.account is not None
        acc = r.account
        self._symbol(r)
        modes = ("STOP_ON_FAILURE", "ALLOW_FAILURE")
        mode = r.choice("cancelReplaceMode", modes, -1130, _invalid("cancelReplaceMode").msg)
        o_new, post_only, resp = self._spot_new(r)
        self._charge_order(r)
        ms = r.t_ns // 1_000_000
        cancel_res: Any
        cancel_ok = True
        try:
            old = self._order_of(r, -2011, "cancelOrderId", "cancelOrigClientOrderId")
            acc.cancel(r.t_ns, old, self._new_cid(r, "cancelNewClientOrderId"))
            cancel_res = fm.cancel_report(self.fmt, old, ms)
        except ApiError as e:
            if e.code == -1102:
                raise
            cancel_ok, cancel_res = False, e.body()
        new_res: Any = None
        new_ok = False
        if cancel_ok or mode == "ALLOW_FAILURE":
            try:
                fills = acc.place(r.t_ns, o_new, post_only)
                new_res = fm.order_response(self.fmt, o_new, resp, ms, fills)
                new_ok = True
            except ApiError as e:
                new_res = e.body()
        data = {
            "cancelResult": "SUCCESS" if cancel_ok else "FAILURE",
            "newOrderResult": "SUCCESS" if new_ok else ("FAILURE" if new_res is not None else "NOT_ATTEMPTED"),
            "cancelResponse": cancel_res,
            "newOrderResponse": new_res,
        }
        if cancel_ok and new_ok:
            return data
        if not cancel_ok and not new_ok:
            raise ApiError(-2022, "Order cancel-replace failed.", 400, data)
        raise ApiError(-2021, "Order cancel-replace partially failed.", 409, data)

    def _spot_amend(self, r: Req) -> Any:
        assert r.account is not None
        self._symbol(r)
        o = self._order_of(r, -2013)
        qty = r.decimal("newQty")
        assert qty is not None
        if not self._on_grid(qty, r.account.lot):
            raise ApiError(-1013, "Filter failure: LOT_SIZE")
        new_cid = self._new_cid(r, "newClientOrderId")
        r.account.amend_keep(r.t_ns, o, qty, new_cid)
        return fm.amend_response(self.fmt, o, r.t_ns // 1_000_000, self.ids.next_execution())

    def _spot_open(self, r: Req) -> Any:
        assert r.account is not None
        self._symbol(r, required=False)
        return [fm.order_status(self.fmt, o) for o in r.account.open.values()]

    def _spot_cancel_all(self, r: Req) -> Any:
        assert r.account is not None
        self._symbol(r)
        if not r.account.open:
            raise ApiError(-2011, "Unknown order sent.")
        done = r.account.cancel_all(r.t_ns, self.ids.next_client)
        ms = r.t_ns // 1_000_000
        return [fm.cancel_report(self.fmt, o, ms) for o in done]

    def _spot_account(self, r: Req) -> Any:
        assert r.account is not None
        acc = r.account
        bal = acc.balances()
        if r.flag("omitZeroBalances"):
            bal = [b for b in bal if b[1] or b[2]]
        return fm.spot_account(self.fmt, acc.maker_fee, acc.taker_fee, bal, acc.update_ms or r.now_ms, acc.uid)

    def _trades(self, r: Req) -> list[Any]:
        assert r.account is not None
        acc = r.account
        self._symbol(r)
        oid = r.integer("orderId")
        start, end = r.integer("startTime"), r.integer("endTime")
        from_id = r.integer("fromId")
        limit = r.integer("limit") or 500
        if limit > 1000:
            raise ApiError(-1130, "Data sent for parameter 'limit' is not valid.")
        if from_id is not None and (start is not None or end is not None):
            raise ApiError(-1128, "Combination of optional parameters invalid.")
        trades = acc.trades
        if oid is not None:
            o = acc.orders.get(oid)
            sel = [acc.trades[i] for i in o.trades] if o is not None else []
        else:
            sel = trades
        if from_id is not None:
            sel = [t for t in sel if t.trade_id >= from_id][:limit]
        elif start is not None or end is not None:
            lo, hi = start or 0, end if end is not None else 1 << 62
            sel = [t for t in sel if lo <= t.time_ms <= hi][:limit]
        else:
            sel = sel[-limit:]
        return sel

    def _spot_trades(self, r: Req) -> Any:
        return [fm.spot_trade(self.fmt, t) for t in self._trades(r)]

    # USD-M
    def _um_place(self, r: Req) -> Any:
        assert r.account is not None
        acc = r.account
        self._symbol(r)
        side = r.choice("side", ("BUY", "SELL"), -1117, "Invalid side.")
        otype = r.choice("type", ("LIMIT",), -1116, "Invalid orderType.")
        tif = r.choice("timeInForce", ("GTC", "GTX", "IOC"), -1115, "Invalid timeInForce.")
        if r.get("positionSide") not in (None, "BOTH"):
            raise ApiError(-4061, "Order's position side does not match user's setting.")
        px = r.decimal("price")
        qty = r.decimal("quantity")
        assert px is not None and qty is not None
        if not self._on_grid(px, acc.tick):
            raise ApiError(-4014, "Price not increased by tick size.")
        if not self._on_grid(qty, acc.lot):
            raise ApiError(-4023, "Quantity not increased by step size.")
        reduce_only = r.flag("reduceOnly")
        s = 1 if side == "BUY" else -1
        if reduce_only:
            pos = float(acc.bs["pos"][0])
            if pos * s >= 0 or qty > abs(pos) + 1e-9 * acc.lot:
                raise ApiError(-2022, "ReduceOnly Order is rejected.")
        cid = self._new_cid(r, "newClientOrderId")
        o = acc.new_order(r.t_ns, cid, s, otype, tif, px, qty, reduce_only)
        self._charge_order(r)
        acc.place(r.t_ns, o, tif == "GTX")
        self._hold_or_answer(r, o)
        return fm.um_order(self.fmt, o)

    def _um_cancel(self, r: Req) -> Any:
        assert r.account is not None
        self._symbol(r)
        o = self._order_of(r, -2011)
        if not o.is_open:
            raise ApiError(-2011, "Unknown order sent.")
        r.account.cancel(r.t_ns, o, None)
        return fm.um_order(self.fmt, o)

    def _um_modify(self, r: Req) -> Any:
        assert r.account is not None
        acc = r.account
        self._symbol(r)
        o = self._order_of(r, -2013)
        side = r.choice("side", ("BUY", "SELL"), -1117, "Invalid side.")
        if (1 if side == "BUY" else -1) != o.side:
            raise ApiError(-4001, "Side does not match.")
        px = r.decimal("price")
        qty = r.decimal("quantity")
        assert px is not None and qty is not None
        if not self._on_grid(px, acc.tick):
            raise ApiError(-4014, "Price not increased by tick size.")
        if not self._on_grid(qty, acc.lot):
            raise ApiError(-4023, "Quantity not increased by step size.")
        self._charge_order(r)
        acc.modify(r.t_ns, o, px, qty)
        return fm.um_order(self.fmt, o)

    def _um_status(self, r: Req) -> Any:
        self._symbol(r)
        return fm.um_order(self.fmt, self._order_of(r, -2013), with_time=True, cum_qty=False)

    def _um_open(self, r: Req) -> Any:
        assert r.account is not None
        self._symbol(r, required=False)
        return [fm.um_order(self.fmt, o, with_time=True, cum_qty=False) for o in r.account.open.values()]

    def _um_cancel_all(self, r: Req) -> Any:
        assert r.account is not None
        self._symbol(r)
        r.account.cancel_all(r.t_ns, None)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def _um_account(self, r: Req, v3: bool) -> Any:
        assert r.account is not None
        acc = r.account
        return fm.um_account(self.fmt, acc.position(), acc.maker_fee, acc.taker_fee, v3)

    def _um_position(self, r: Req, v3: bool) -> Any:
        assert r.account is not None
        self._symbol(r, required=False)
        return [fm.um_position(self.fmt, r.account.position(), v3)]

    def _um_balance(self, r: Req) -> Any:
        assert r.account is not None
        return [fm.um_balance(self.fmt, r.account.position(), f"emu{r.account.uid}")]

    def _um_trades(self, r: Req) -> Any:
        return [fm.um_trade(self.fmt, t) for t in self._trades(r)]

    def _um_brackets(self, r: Req) -> Any:
        """``/fapi/v1/leverageBracket``: one bracket, the config's maintenance margin rate."""
        assert r.account is not None
        bt = r.account.bt
        bracket = {
            "bracket": 1,
            "initialLeverage": 125,
            "notionalCap": 1_000_000_000,
            "notionalFloor": 0,
            "maintMarginRatio": float(bt.maintenance_margin_rate),
            "cum": 0.0,
        }
        return [{"symbol": self.emu.symbol, "notionalCoef": 1.0, "brackets": [bracket]}]

    def _um_countdown(self, r: Req) -> Any:
        assert r.account is not None
        acc = r.account
        self._symbol(r)
        ms = r.integer("countdownTime", required=True)
        assert ms is not None
        old = self.countdowns.pop(acc.api_key, None)
        if old is not None:
            old.cancel()
        if ms > 0:
            loop = asyncio.get_running_loop()
            self.countdowns[acc.api_key] = loop.call_later(ms / 1000.0, lambda: self._spawn(self._countdown_fire(acc)))
        return {"symbol": self.emu.symbol, "countdownTime": str(ms)}

    async def _countdown_fire(self, acc: Account) -> None:
        """``countdownCancelAll`` ran out: every open order of the account is cancelled."""
        self.countdowns.pop(acc.api_key, None)
        if acc.open:
            acc.cancel_all(self.now_ms() * 1_000_000, None)
        await self.flush()

    def _lk_start(self, r: Req) -> Any:
        assert r.account is not None
        return {"listenKey": self._listen_key(r.account).key}

    def _lk_ping(self, r: Req) -> Any:
        assert r.account is not None
        lk = self.by_account_key.get(r.account.api_key)
        if lk is None or not lk.live:
            raise ApiError(-1125, "This listenKey does not exist.")
        lk.expires = time.monotonic() + LISTEN_KEY_S
        return {"listenKey": lk.key}

    def _lk_stop(self, r: Req) -> Any:
        assert r.account is not None
        lk = self.by_account_key.pop(r.account.api_key, None)
        if lk is not None:
            lk.live = False
            self.listen_keys.pop(lk.key, None)
            for c in list(lk.conns):
                self._spawn(self._close_ws(c))
        return {}

    # -- status ----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {
            "sessions": len(self.sessions),
            "subscriptions": sum(len(s.subs) for s in self.sessions),
            "listen_keys": len(self.listen_keys),
            "user_streams": sum(len(lk.conns) for lk in self.listen_keys.values()),
            **self.counts,
            **self.limits.status(),
        }

    def accounts_summary(self) -> list[dict[str, Any]]:
        return [acc.summary() for acc in self.acc_list]


def _raw(data: bytes) -> bytes:
    return data


def _combined(key: str) -> Callable[[bytes], bytes]:
    head = b'{"stream":"' + key.encode() + b'","data":'
    return lambda data: head + data + b"}"


def _subscription(sid: int) -> Callable[[bytes], bytes]:
    head = b'{"subscriptionId":%d,"event":' % sid
    return lambda data: head + data + b"}"


def _ok_frame(rid: Any, result: Any, rate: list[Any] | None) -> bytes:
    out: dict[str, Any] = {"id": rid, "status": 200, "result": result}
    if rate is not None:
        out["rateLimits"] = rate
    return fm.dumps(out)


def _error_frame(rid: Any, e: ApiError, rate: list[Any] | None) -> bytes:
    out: dict[str, Any] = {"id": rid, "status": e.status, "error": e.body()}
    if rate is not None:
        out["rateLimits"] = rate
    return fm.dumps(out)
