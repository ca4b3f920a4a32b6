"""A scripted private Binance for the gateway's tests (127.0.0.1): the test decides every answer.

It serves the WebSocket API (``/ws-api/v3`` spot, ``/ws-fapi/v1`` USD-M: ``session.logon`` checked
against the Ed25519 public key given, HMAC signatures checked against the secret), the user data
(spot: inline after ``userDataStream.subscribe``; USD-M: ``/private/ws?listenKey=``), and the REST
endpoints the gateway reads (exchangeInfo, the listenKey, openOrders, userTrades, positionRisk,
countdownCancelAll). Orders are kept by client id; nothing matches on its own: ``fill(cid, qty)``
fills one. ``hooks[method]`` replaces the answer of a method: a coroutine ``(params) -> None |
(status, body)``; returning None sends nothing (a lost answer). ``events_first`` sends an order's
report before its answer (the delayed ack); ``requests`` keeps every request (method, params).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web


def _dumps(x: object) -> str:
    return json.dumps(x, separators=(",", ":"))


def _payload(params: dict[str, Any]) -> bytes:
    def v(x: Any) -> str:
        return ("true" if x else "false") if isinstance(x, bool) else str(x)

    return "&".join(f"{k}={v(params[k])}" for k in sorted(params) if k != "signature").encode()


class FakePrivate:
    def __init__(
        self,
        um: bool = False,
        symbol: str = "BTCUSDT",
        api_key: str = "k1",
        secret: str | None = None,
        public_key: Any = None,
    ) -> None:
        self.um = um
        self.symbol = symbol
        self.api_key, self.secret, self.public_key = api_key, secret, public_key
        self.orders: dict[str, dict[str, Any]] = {}  # client id -> order
        self.trades: list[dict[str, Any]] = []
        self.next_order_id = 1000
        self.next_trade_id = 5000
        self.position = 0.0
        self.balances = {"BTC": 1.0, "USDT": 10000.0}
        self.hooks: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {}
        self.events_first = False
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.rest_calls: list[tuple[str, str, dict[str, str]]] = []
        self.api_clients: list[web.WebSocketResponse] = []
        self.user_clients: list[web.WebSocketResponse] = []
        self.subscribed: set[web.WebSocketResponse] = set()
        self.logged_on: set[web.WebSocketResponse] = set()
        self.listen_key = "lk1"
        self.listen_keys = 0
        self.countdowns: list[int] = []
        self.bad_signatures = 0
        self.time_skew_ms = 0
        self.rate_limits = [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 20},
        ]
        self.order_count_10s: list[float] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    # ---------------------------------------------------------------- server
    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/ws-api/v3", self._api)
        app.router.add_get("/ws-fapi/v1", self._api)
        app.router.add_get("/private/ws", self._user)
        for m, p in (
            ("GET", "/api/v3/exchangeInfo"),
            ("GET", "/fapi/v1/exchangeInfo"),
            ("GET", "/api/v3/time"),
            ("GET", "/fapi/v1/time"),
            ("POST", "/fapi/v1/listenKey"),
            ("PUT", "/fapi/v1/listenKey"),
            ("DELETE", "/fapi/v1/listenKey"),
            ("GET", "/fapi/v1/openOrders"),
            ("GET", "/fapi/v1/userTrades"),
            ("GET", "/fapi/v2/positionRisk"),
            ("POST", "/fapi/v1/countdownCancelAll"),
        ):
            app.router.add_route(m, p, self._rest)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        await self.close_all()
        if self.runner is not None:
            await self.runner.cleanup()

    async def close_all(self) -> None:
        for ws in list(self.api_clients) + list(self.user_clients):
            with contextlib.suppress(Exception):
                await ws.close()

    async def close_api(self) -> None:
        for ws in list(self.api_clients):
            with contextlib.suppress(Exception):
                await ws.close()

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.time_skew_ms

    # ---------------------------------------------------------------- REST
    async def _rest(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.rest_calls.append((request.method, request.path, q))
        p = request.path
        if p.endswith("exchangeInfo"):
            sym = {
                "symbol": self.symbol,
                "baseAsset": "BTC",
                "quoteAsset": "USDT",
                "filters": [
                    {"filterType": "PRICE_FILTER", "tickSize": "0.01"},
                    {"filterType": "LOT_SIZE", "stepSize": "0.001"},
                ],
            }
            return self._json({"rateLimits": self.rate_limits, "symbols": [sym]})
        if p.endswith("/time"):
            return self._json({"serverTime": self.now_ms()})
        if request.headers.get("X-MBX-APIKEY") != self.api_key:
            return self._json({"code": -2015, "msg": "Invalid API-key"}, 401)
        if p == "/fapi/v1/listenKey":
            if request.method == "POST":
                self.listen_keys += 1
                return self._json({"listenKey": self.listen_key})
            return self._json({})
        if not self._rest_signed_ok(request):
            self.bad_signatures += 1
            return self._json({"code": -1022, "msg": "Signature for this request is not valid."}, 400)
        if p == "/fapi/v1/openOrders":
            return self._json(
                [self._order_info(o) for o in self.orders.values() if o["status"] in ("NEW", "PARTIALLY_FILLED")]
            )
        if p == "/fapi/v1/userTrades":
            return self._json(self._trades(q))
        if p == "/fapi/v2/positionRisk":
            return self._json(
                [
                    {
                        "symbol": self.symbol,
                        "positionAmt": f"{self.position:.3f}",
                        "entryPrice": "100.0",
                        "positionSide": "BOTH",
                    }
                ]
            )
        if p == "/fapi/v1/countdownCancelAll":
            self.countdowns.append(int(q["countdownTime"]))
            return self._json({"symbol": self.symbol, "countdownTime": q["countdownTime"]})
        return self._json({"code": -1, "msg": "?"}, 404)

    def _rest_signed_ok(self, request: web.Request) -> bool:
        qs = request.query_string
        if "signature=" not in qs:
            return False
        body, _, sig = qs.rpartition("&signature=")
        from urllib.parse import unquote

        return self._verify(body.encode(), unquote(sig))

    def _verify(self, payload: bytes, sig: str) -> bool:
        if self.secret is not None:
            return hmac.compare_digest(hmac.new(self.secret.encode(), payload, hashlib.sha256).hexdigest(), sig)
        try:
            self.public_key.verify(base64.b64decode(sig), payload)
        except Exception:
            return False
        return True

    @staticmethod
    def _json(x: Any, status: int = 200) -> web.Response:
        return web.Response(text=_dumps(x), status=status, content_type="application/json")

    # ---------------------------------------------------------------- WebSocket API
    async def _api(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.api_clients.append(ws)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                req = json.loads(msg.data)
                asyncio.get_running_loop().create_task(self._answer(ws, req))
        finally:
            self.api_clients.remove(ws)
            self.subscribed.discard(ws)
            self.logged_on.discard(ws)
        return ws

    async def _answer(self, ws: web.WebSocketResponse, req: dict[str, Any]) -> None:
        method, params, rid = req["method"], dict(req.get("params") or {}), req["id"]
        self.requests.append((method, params))
        hook = self.hooks.get(method)
        if hook is not None:
            out = await hook(params)
            if out is None:
                return
            status, body = out
        else:
            status, body = await self._handle(ws, method, params)
        frame: dict[str, Any] = {"id": rid, "status": status}
        if status == 200:
            frame["result"] = body
        else:
            frame["error"] = body
        frame["rateLimits"] = [
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": 20,
                "count": len(self.order_count_10s),
            }
        ]
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(_dumps(frame))

    def _signed_ok(self, ws: web.WebSocketResponse, params: dict[str, Any]) -> bool:
        if ws in self.logged_on:
            return "timestamp" in params
        if params.get("apiKey") != self.api_key or "signature" not in params:
            return False
        return self._verify(_payload(params), params["signature"])

    async def _handle(self, ws: web.WebSocketResponse, method: str, p: dict[str, Any]) -> tuple[int, Any]:
        if method == "time":
            return 200, {"serverTime": self.now_ms()}
        if method == "session.logon":
            if p.get("apiKey") != self.api_key or not self._verify(_payload(p), p.get("signature", "")):
                self.bad_signatures += 1
                return 400, {"code": -1022, "msg": "Signature for this request is not valid."}
            self.logged_on.add(ws)
            return 200, {
                "apiKey": p["apiKey"],
                "authorizedSince": self.now_ms(),
                "connectedSince": self.now_ms(),
                "returnRateLimits": True,
                "serverTime": self.now_ms(),
                "userDataStream": False,
            }
        if method in ("userDataStream.subscribe", "userDataStream.subscribe.signature"):
            if method.endswith("signature") and not self._signed_ok(ws, p):
                return 400, {"code": -1022, "msg": "Signature for this request is not valid."}
            self.subscribed.add(ws)
            return 200, {"subscriptionId": 0}
        if not self._signed_ok(ws, p):
            self.bad_signatures += 1
            return 400, {"code": -1022, "msg": "Signature for this request is not valid."}
        ts = int(p.get("timestamp", 0))
        if ts > self.now_ms() + 1000 or self.now_ms() - ts > float(p.get("recvWindow", 5000)):
            return 400, {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
        if method == "order.place":
            return await self.place(p)
        if method == "order.cancel":
            return await self.cancel(p)
        if method == "order.modify":
            return await self.modify(p)
        if method == "order.cancelReplace":
            return await self.cancel_replace(p)
        if method == "order.amend.keepPriority":
            return await self.amend_keep(p)
        if method == "order.status":
            o = self._find(p)
            if o is None:
                return 400, {"code": -2013, "msg": "Order does not exist."}
            return 200, self._order_info(o)
        if method == "openOrders.status":
            return 200, [
                self._order_info(o) for o in self.orders.values() if o["status"] in ("NEW", "PARTIALLY_FILLED")
            ]
        if method == "myTrades":
            return 200, self._trades(p)
        if method == "account.status":
            return 200, {
                "balances": [{"asset": a, "free": f"{v:.8f}", "locked": "0"} for a, v in self.balances.items()]
            }
        return 400, {"code": -1100, "msg": f"unknown method {method}"}

    # ---------------------------------------------------------------- orders
    def _find(self, p: dict[str, Any]) -> dict[str, Any] | None:
        if "origClientOrderId" in p:
            return self.orders.get(p["origClientOrderId"])
        oid = int(p.get("orderId", 0))
        return next((o for o in self.orders.values() if o["orderId"] == oid), None)

    def _order_info(self, o: dict[str, Any]) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "orderId": o["orderId"],
            "clientOrderId": o["cid"],
            "price": f"{o['price']:.2f}",
            "origQty": f"{o['qty']:.3f}",
            "executedQty": f"{o['executed']:.3f}",
            "status": o["status"],
            "side": o["side"],
            "type": "LIMIT",
            "time": o["time"],
            "updateTime": self.now_ms(),
        }

    def _trades(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for t in self.trades:
            if "orderId" in p and int(p["orderId"]) != t["orderId"]:
                continue
            if "startTime" in p and t["time"] < int(p["startTime"]):
                continue
            if "fromId" in p and t["id"] < int(p["fromId"]):
                continue
            out.append(t)
        return out

    def add_order(self, cid: str, side: str, price: float, qty: float, status: str = "NEW") -> dict[str, Any]:
        self.next_order_id += 1
        o = {
            "cid": cid,
            "orderId": self.next_order_id,
            "side": side,
            "price": price,
            "qty": qty,
            "executed": 0.0,
            "status": status,
            "time": self.now_ms(),
        }
        self.orders[cid] = o
        return o

    async def place(self, p: dict[str, Any]) -> tuple[int, Any]:
        cid = p["newClientOrderId"]
        if cid in self.orders:
            return 400, {"code": -2010, "msg": "Duplicate order sent."}
        now = time.monotonic()
        self.order_count_10s = [x for x in self.order_count_10s if now - x < 10.0] + [now]
        o = self.add_order(cid, p["side"], float(p["price"]), float(p["quantity"]))
        ev = self.report(o, "NEW")
        if self.events_first:
            await self.send_event(ev)
            return 200, self._ack(o)
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.send_event(ev)))
        return 200, self._ack(o)

    def _ack(self, o: dict[str, Any]) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "orderId": o["orderId"],
            "orderListId": -1,
            "clientOrderId": o["cid"],
            "transactTime": self.now_ms(),
        }

    async def cancel(self, p: dict[str, Any]) -> tuple[int, Any]:
        o = self._find(p)
        if o is None or o["status"] not in ("NEW", "PARTIALLY_FILLED"):
            return 400, {"code": -2011, "msg": "Unknown order sent."}
        o["status"] = "CANCELED"
        await self.send_event(self.report(o, "CANCELED"))
        return 200, self._order_info(o)

    async def modify(self, p: dict[str, Any]) -> tuple[int, Any]:
        o = self._find(p)
        if o is None or o["status"] not in ("NEW", "PARTIALLY_FILLED"):
            return 400, {"code": -2013, "msg": "Order does not exist."}
        o["price"], o["qty"] = float(p["price"]), float(p["quantity"])
        await self.send_event(self.report(o, "AMENDMENT"))
        return 200, self._order_info(o)

    async def cancel_replace(self, p: dict[str, Any]) -> tuple[int, Any]:
        old = self.orders.get(p["cancelOrigClientOrderId"])
        if old is None or old["status"] not in ("NEW", "PARTIALLY_FILLED"):
            data = {
                "cancelResult": "FAILURE",
                "newOrderResult": "NOT_ATTEMPTED",
                "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
                "newOrderResponse": None,
            }
            return 400, {"code": -2022, "msg": "Order cancel-replace failed.", "data": data}
        old["status"] = "CANCELED"
        await self.send_event(self.report(old, "CANCELED"))
        o = self.add_order(p["newClientOrderId"], p["side"], float(p["price"]), float(p["quantity"]))
        await self.send_event(self.report(o, "NEW"))
        return 200, {
            "cancelResult": "SUCCESS",
            "newOrderResult": "SUCCESS",
            "cancelResponse": self._order_info(old),
            "newOrderResponse": self._ack(o),
        }

    async def amend_keep(self, p: dict[str, Any]) -> tuple[int, Any]:
        o = self.orders.get(p["origClientOrderId"])
        if o is None or o["status"] not in ("NEW", "PARTIALLY_FILLED"):
            return 400, {"code": -2011, "msg": "Unknown order sent."}
        q = float(p["newQty"])
        if not (o["executed"] < q < o["qty"]):
            return 400, {"code": -2038, "msg": "newQty must be less than the order's quantity."}
        o["qty"] = q
        await self.send_event(self.report(o, "REPLACED"))
        return 200, {"transactTime": self.now_ms(), "executionId": 1, "amendedOrder": self._order_info(o)}

    async def fill(
        self, cid: str, qty: float, price: float | None = None, maker: bool = True, send: bool = True, dup: bool = False
    ) -> dict[str, Any]:
        """Fill ``qty`` of order ``cid`` (its report sent unless ``send`` is False: a fill the
        stream missed; twice with ``dup``)."""
        o = self.orders[cid]
        px = o["price"] if price is None else price
        o["executed"] += qty
        o["status"] = "FILLED" if o["executed"] >= o["qty"] - 1e-12 else "PARTIALLY_FILLED"
        self.next_trade_id += 1
        sgn = 1 if o["side"] == "BUY" else -1
        self.position += sgn * qty
        tr = {
            "symbol": self.symbol,
            "id": self.next_trade_id,
            "orderId": o["orderId"],
            "price": f"{px:.2f}",
            "qty": f"{qty:.3f}",
            "commission": f"{px * qty * 0.0001:.8f}",
            "commissionAsset": "USDT",
            "time": self.now_ms(),
            "isBuyer": sgn > 0,
            "isMaker": maker,
            "buyer": sgn > 0,
            "maker": maker,
            "side": o["side"],
        }
        self.trades.append(tr)
        if send:
            ev = self.report(o, "TRADE", qty, px, tr)
            await self.send_event(ev)
            if dup:
                await self.send_event(ev)
        return tr

    def report(
        self, o: dict[str, Any], x: str, last_qty: float = 0.0, last_px: float = 0.0, tr: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        t = self.now_ms()
        if self.um:
            od = {
                "s": self.symbol,
                "c": o["cid"],
                "S": o["side"],
                "o": "LIMIT",
                "f": "GTX",
                "q": f"{o['qty']:.3f}",
                "p": f"{o['price']:.2f}",
                "x": x,
                "X": o["status"],
                "i": o["orderId"],
                "l": f"{last_qty:.3f}",
                "z": f"{o['executed']:.3f}",
                "L": f"{last_px:.2f}",
                "T": t,
                "t": tr["id"] if tr else 0,
                "m": bool(tr and tr["isMaker"]),
                "N": "USDT",
                "n": tr["commission"] if tr else "0",
            }
            return {"e": "ORDER_TRADE_UPDATE", "E": t, "T": t, "o": od}
        return {
            "e": "executionReport",
            "E": t,
            "s": self.symbol,
            "c": o["cid"] if x != "CANCELED" else "cxl1",
            "C": o["cid"] if x == "CANCELED" else "",
            "S": o["side"],
            "o": "LIMIT_MAKER",
            "q": f"{o['qty']:.3f}",
            "p": f"{o['price']:.2f}",
            "x": x,
            "X": o["status"],
            "i": o["orderId"],
            "l": f"{last_qty:.3f}",
            "z": f"{o['executed']:.3f}",
            "L": f"{last_px:.2f}",
            "n": tr["commission"] if tr else "0",
            "N": "USDT" if tr else None,
            "T": t,
            "t": tr["id"] if tr else -1,
            "m": bool(tr and tr["isMaker"]),
        }

    async def send_event(self, ev: dict[str, Any]) -> None:
        if self.um:
            for ws in list(self.user_clients):
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(_dumps(ev))
        else:
            for ws in list(self.subscribed):
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(_dumps({"subscriptionId": 0, "event": ev}))

    # ---------------------------------------------------------------- USD-M user stream
    async def _user(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if request.query.get("listenKey") != self.listen_key:
            await ws.close()
            return ws
        self.user_clients.append(ws)
        try:
            async for _ in ws:
                pass
        finally:
            self.user_clients.remove(ws)
        return ws

    async def expire_listen_key(self) -> None:
        await self.send_event({"e": "listenKeyExpired", "E": self.now_ms(), "listenKey": self.listen_key})
        self.listen_key = f"lk{self.listen_keys + 1}"
        for ws in list(self.user_clients):
            await ws.close()

    async def terminate_stream(self) -> None:
        await self.send_event({"e": "eventStreamTerminated", "E": self.now_ms()})
        self.subscribed.clear()
