"""A scripted Binance for the feed's tests (127.0.0.1): the test decides every frame.

It keeps one symbol's book with Binance's update ids and serves ``/stream`` (combined streams,
every client gets every frame), USD-M's routed ``/public/stream`` (every stream but aggTrade) and
``/market/stream`` (aggTrade), and the REST depth snapshot
(``/api/v3/depth``, ``/fapi/v1/depth``).
``diff()`` changes the book and sends the diff (or drops it, or holds it back to send later:
reordering); ``close_all()``, ``server_shutdown()`` are the faults the feed must survive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random

from aiohttp import WSMsgType, web


def _dumps(x: object) -> str:
    return json.dumps(x, separators=(",", ":"))  # as Binance writes it


class FakeBinance:
    def __init__(self, um: bool = False, symbol: str = "BTCUSDT", seed: int = 1) -> None:
        self.um = um
        self.symbol = symbol
        self.sym = symbol.lower()
        self.rng = random.Random(seed)
        self.u = 1000
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        for i in range(1, 21):
            self.bids[round(100.0 - 0.01 * i, 2)] = float(i)
            self.asks[round(100.0 + 0.01 * i, 2)] = float(i)
        self.clients: list[web.WebSocketResponse] = []
        self.path: dict[web.WebSocketResponse, str] = {}  # each client's path
        self.connects = 0
        self.connects_by_path: dict[str, int] = {}
        self.snapshots = 0
        self.used_weight: int | None = None  # X-MBX-USED-WEIGHT-1M on snapshots (None: no header)
        self.bt_u = 0
        self.trade_id = 0
        self.held: list[bytes] = []
        self.runner: web.AppRunner | None = None
        self.url = ""
        self.connected = asyncio.Event()

    # ---------------------------------------------------------------- server
    async def start(self) -> str:
        app = web.Application()
        for path in ("/stream", "/public/stream", "/market/stream"):
            app.router.add_get(path, self._ws)
        app.router.add_get("/api/v3/depth", self._depth)
        app.router.add_get("/fapi/v1/depth", self._depth)
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

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connects += 1
        self.connects_by_path[request.path] = self.connects_by_path.get(request.path, 0) + 1
        self.path[ws] = request.path
        self.clients.append(ws)
        self.connected.set()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.CLOSE:
                    break
        finally:
            if ws in self.clients:
                self.clients.remove(ws)
        return ws

    async def _depth(self, request: web.Request) -> web.Response:
        self.snapshots += 1
        body = self.snapshot_body()
        headers = {} if self.used_weight is None else {"X-MBX-USED-WEIGHT-1M": str(self.used_weight)}
        return web.Response(body=body, content_type="application/json", headers=headers)

    def snapshot_body(self) -> bytes:
        snap: dict = {"lastUpdateId": self.u}
        if self.um:
            snap.update(E=1_700_000_000_000, T=1_700_000_000_000)
        snap["bids"] = [[f"{p:.2f}", f"{q:.8f}"] for p, q in sorted(self.bids.items(), reverse=True)]
        snap["asks"] = [[f"{p:.2f}", f"{q:.8f}"] for p, q in sorted(self.asks.items())]
        return _dumps(snap).encode()

    # ---------------------------------------------------------------- frames
    def routed(self, ws: web.WebSocketResponse, data: str) -> bool:
        """Whether ``ws`` is sent ``data``: the legacy ``/stream`` and the frames of no stream
        (serverShutdown, junk) go to every client; ``/market`` gets aggTrade, ``/public`` the rest."""
        path = self.path.get(ws, "/stream")
        if path == "/stream" or not data.startswith('{"stream"'):
            return True
        return ('@aggTrade"' in data[:60]) == (path == "/market/stream")

    async def send(self, frame: bytes | str, path: str | None = None) -> None:
        """``frame`` to each client it is routed to (``path``: to the clients on that path only)."""
        data = frame.decode() if isinstance(frame, bytes) else frame
        for ws in list(self.clients):
            if not ws.closed and (self.path[ws] == path if path else self.routed(ws, data)):
                with contextlib.suppress(ConnectionError):
                    await ws.send_str(data)

    def _env(self, stream: str, data: dict) -> bytes:
        return _dumps({"stream": f"{self.sym}@{stream}", "data": data}).encode()

    def make_diff(self, n: int = 3) -> bytes:
        """Change ``n`` levels of the book and return the diff frame (ids advanced)."""
        b, a = [], []
        for _ in range(n):
            side = self.rng.choice((1, -1))
            book = self.bids if side == 1 else self.asks
            px = round(100.0 - side * 0.01 * self.rng.randint(1, 30), 2)
            q = 0.0 if (px in book and self.rng.random() < 0.3) else float(self.rng.randint(1, 50))
            if q == 0.0:
                book.pop(px, None)
            else:
                book[px] = q
            (b if side == 1 else a).append([f"{px:.2f}", f"{q:.8f}"])
        pu = self.u
        U = self.u + 1
        self.u += self.rng.randint(1, 3)
        data = {"e": "depthUpdate", "E": 1_700_000_000_000 + self.u, "s": self.symbol, "U": U, "u": self.u}
        if self.um:
            data.update(T=1_700_000_000_000 + self.u, pu=pu)
        data.update(b=b, a=a)
        return self._env("depth@100ms", data)

    async def diff(self, n: int = 3, drop: bool = False, hold: bool = False) -> None:
        frame = self.make_diff(n)
        if hold:
            self.held.append(frame)
        elif not drop:
            await self.send(frame)
            for f in self.held:  # reordered: the held diffs after this one
                await self.send(f)
            self.held.clear()

    async def book_ticker(self) -> None:
        self.bt_u += 1
        bid = max(self.bids)
        ask = min(self.asks)
        data: dict = {"u": self.bt_u, "s": self.symbol, "b": f"{bid:.2f}", "B": f"{self.bids[bid]:.8f}"}
        data.update(a=f"{ask:.2f}", A=f"{self.asks[ask]:.8f}")
        if self.um:
            data.update(e="bookTicker", E=1_700_000_000_000 + self.bt_u, T=1_700_000_000_000 + self.bt_u)
        await self.send(self._env("bookTicker", data))

    async def trade(self) -> None:
        self.trade_id += 1
        t = 1_700_000_000_000 + self.trade_id
        px = f"{100.0 + 0.01 * self.rng.randint(-3, 3):.2f}"
        if self.um:
            data = {"e": "aggTrade", "E": t, "a": self.trade_id, "s": self.symbol, "p": px, "q": "0.5"}
            data.update(f=self.trade_id * 2, l=self.trade_id * 2 + 1, T=t, m=self.rng.random() < 0.5)
            await self.send(self._env("aggTrade", data))
        else:
            data = {"e": "trade", "E": t, "s": self.symbol, "t": self.trade_id, "p": px, "q": "0.5", "T": t}
            data.update(m=self.rng.random() < 0.5, M=True)
            await self.send(self._env("trade", data))

    async def close_all(self, path: str | None = None) -> None:
        for ws in list(self.clients):
            if path is None or self.path.get(ws) == path:
                await ws.close()

    async def server_shutdown(self, path: str | None = None) -> None:
        await self.send(_dumps({"e": "serverShutdown", "E": 1_700_000_000_000}), path)

    def levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return sorted(self.bids.items(), reverse=True), sorted(self.asks.items())
