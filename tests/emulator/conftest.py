"""Stores and clients for the emulator's tests: a hand-built depth store (snapshot, diffs, a resync,
quotes, trades), a synthetic L1 store, the real Binance captures cut short, and a client that keeps
a book by Binance's rules (``DepthSync``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avmm.events import BUY, CLEAR, DEPTH, F_EXCH_TS, F_LAST_IN_BATCH, F_SEQ_GAP, QUOTE, SELL, SNAPSHOT, TRADE, empty

pytest.importorskip("aiohttp")

T0 = 1_720_000_000_000_000_000
MS = 1_000_000


def run(coro: Any, timeout: float = 60.0) -> Any:
    """Run a coroutine to completion (the tests are synchronous; no pytest-asyncio here)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def depth_rows(seed: int = 3, n_msgs: int = 300, levels: int = 15) -> np.ndarray:
    """A depth store's rows: CLEAR + a snapshot of ``levels`` a side, then ``n_msgs`` messages every
    ~7 ms: diffs of 1-4 levels (one message = rows with one exch_ts, the last flagged), a quote of
    the book's best levels after each diff, a trade now and then, and at the middle a resync (CLEAR
    flagged F_SEQ_GAP, then a new snapshot)."""
    rng = np.random.default_rng(seed)
    rows: list[tuple] = []
    bids = {round(100.0 - 0.01 * (i + 1), 2): float(rng.integers(1, 50)) for i in range(levels)}
    asks = {round(100.0 + 0.01 * i, 2): float(rng.integers(1, 50)) for i in range(levels)}
    t = T0

    def snap(t: int, flags: int = 0) -> None:
        rows.append((t, t + MS, 500, 0.0, 0.0, CLEAR, 0, F_EXCH_TS | flags))
        lv = [(p, q, BUY) for p, q in sorted(bids.items(), reverse=True)]
        lv += [(p, q, SELL) for p, q in sorted(asks.items())]
        for k, (p, q, s) in enumerate(lv):
            last = F_LAST_IN_BATCH if k == len(lv) - 1 else 0
            rows.append((t, t + MS, 500, p, q, SNAPSHOT, s, F_EXCH_TS | last))

    snap(t)
    for m in range(n_msgs):
        t += int(rng.integers(1, 14)) * MS
        if m == n_msgs // 2:
            for _ in range(3):  # the book moves while the capture is resyncing
                p = round(100.0 + 0.01 * int(rng.integers(-levels, levels)), 2)
                (bids if p < 100.0 else asks)[p] = float(rng.integers(1, 50))
            snap(t, F_SEQ_GAP)
            continue
        k = int(rng.integers(1, 5))
        ch: dict[tuple[float, int], float] = {}
        for _ in range(k):
            side = BUY if rng.random() < 0.5 else SELL
            book = bids if side == BUY else asks
            p = round(
                (99.99 if side == BUY else 100.0)
                + 0.01 * int(rng.integers(-levels, levels)) * (1 if side == SELL else 1),
                2,
            )
            if side == BUY and p >= min(asks):
                p = round(min(asks) - 0.01, 2)
            if side == SELL and p <= max(bids):
                p = round(max(bids) + 0.01, 2)
            q = 0.0 if (p in book and rng.random() < 0.4) else float(rng.integers(1, 50))
            if q == 0.0:
                book.pop(p, None)
            else:
                book[p] = q
            ch[(p, side)] = q
        items = list(ch.items())
        for j, ((p, side), q) in enumerate(items):
            last = F_LAST_IN_BATCH if j == len(items) - 1 else 0
            rows.append((t, t + MS, 0, p, q, DEPTH, side, F_EXCH_TS | last))
        bb, ba = max(bids), min(asks)
        rows.append((t, t + MS + 10, 0, bb, bids[bb], QUOTE, 0, F_EXCH_TS, ba, asks[ba]))
        if m % 5 == 0:
            side = BUY if rng.random() < 0.5 else SELL
            rows.append((t + MS, t + 2 * MS, 7000 + m, ba if side == BUY else bb, 0.5, TRADE, side, F_EXCH_TS))
    ev = empty(len(rows))
    for i, r in enumerate(rows):
        ev["exch_ts"][i], ev["local_ts"][i], ev["seq"][i] = r[0], r[1], r[2]
        ev["px"][i], ev["qty"][i], ev["kind"][i], ev["side"][i], ev["flags"][i] = r[3], r[4], r[5], r[6], r[7]
        if r[5] == QUOTE:
            ev["px2"][i], ev["qty2"][i] = r[8], r[9]
    order = np.argsort(ev["local_ts"], kind="stable")
    return ev[order]


def store_book(path: Path) -> tuple[dict[float, float], dict[float, float]]:
    """The book at the end of a store, rebuilt from its rows (CLEAR, SNAPSHOT, DEPTH) alone; for a
    store without depth rows, its last quote's two levels."""
    from avmm.data.store import read_events

    ev = read_events(path)
    d = (ev["kind"] == DEPTH) | (ev["kind"] == SNAPSHOT) | (ev["kind"] == CLEAR)
    if not d.any():
        q = ev[ev["kind"] == QUOTE][-1]
        return {float(q["px"]): float(q["qty"])}, {float(q["px2"]): float(q["qty2"])}
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    for r in ev[d]:
        if r["kind"] == CLEAR:
            bids, asks = {}, {}
            continue
        book = bids if r["side"] > 0 else asks
        if r["qty"] > 0:
            book[float(r["px"])] = float(r["qty"])
        else:
            book.pop(float(r["px"]), None)
    return bids, asks


@pytest.fixture
def depth_store(tmp_path: Path) -> Path:
    from avmm.data.store import write_events

    p = tmp_path / "depth.parquet"
    write_events(p, [depth_rows()], {"symbol": "BTCUSDT", "source": "test", "tick_size": 0.01, "lot_size": 0.001})
    return p


@pytest.fixture
def l1_store(tmp_path: Path) -> Path:
    from avmm.data.synth import write_synth

    p = tmp_path / "l1.parquet"
    write_synth(p, 600, 5, quote_rate=200.0, trade_rate=40.0)
    return p


_CAPTURES: dict[str, Path] = {}


def capture_store(shared: Path, tmp_root: Path, name: str, rows: int = 20_000) -> Path:
    """A real capture converted to a store and cut to its first ``rows`` rows (cached per session)."""
    if name in _CAPTURES and _CAPTURES[name].exists():
        return _CAPTURES[name]
    from avmm.data.convert import convert
    from avmm.data.store import read_events, read_meta, write_events

    full = tmp_root / f"{name}.full.parquet"
    convert([shared / "binance_ws_capture" / f"{name}.gz"], full)
    meta = read_meta(full)
    ev = read_events(full)[:rows]
    out = tmp_root / f"{name}.parquet"
    keep = {k: meta[k] for k in ("symbol", "source", "tick_size", "lot_size")}
    write_events(out, [ev], keep)
    _CAPTURES[name] = out
    return out


@pytest.fixture(scope="session")
def capture_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("captures")


class BookClient:
    """A client keeping a book from REST snapshot + diffs by Binance's rules (``DepthSync``)."""

    def __init__(self, url: str, um: bool, stream: str = "btcusdt@depth", symbol: str = "BTCUSDT") -> None:
        from avmm.venues.binance.depth_sync import DepthSync

        self.url, self.um, self.stream, self.symbol = url, um, stream, symbol
        self.sync = DepthSync()
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.outcomes: list[int] = []
        self.frames: list[dict] = []
        self.last_u = 0

    def apply(self, d: Any) -> None:
        for book, lv in ((self.bids, d.b), (self.asks, d.a)):
            for p, q in lv:
                if q > 0:
                    book[p] = q
                else:
                    book.pop(p, None)
        self.last_u = d.u

    def on_frame(self, text: str) -> None:
        from avmm.venues.binance import depth_sync as ds
        from avmm.venues.binance.messages import DECODE_DEPTH

        d = DECODE_DEPTH.decode(text).data
        self.frames.append(json.loads(text))
        out = self.sync.on_diff(d)
        self.outcomes.append(out)
        if out == ds.APPLY:
            self.apply(d)

    async def snapshot(self, session: Any) -> int:
        from avmm.venues.binance import depth_sync as ds
        from avmm.venues.binance.messages import DECODE_SNAPSHOT

        pre = "/fapi/v1" if self.um else "/api/v3"
        async with session.get(f"{self.url}{pre}/depth", params={"symbol": self.symbol, "limit": "1000"}) as r:
            s = DECODE_SNAPSHOT.decode(await r.read())
        self.bids = {p: q for p, q in s.bids}
        self.asks = {p: q for p, q in s.asks}
        self.last_u = s.lastUpdateId
        for d, _, out in self.sync.on_snapshot(s.lastUpdateId):
            self.outcomes.append(out)
            if out == ds.APPLY:
                self.apply(d)
        return s.lastUpdateId


# -- the private side ----------------------------------------------------------------------------------
def churn_rows(seconds: float = 60.0, step_ms: int = 50) -> np.ndarray:
    """An L1 store whose market comes back through fixed prices every cycle of three quotes,
    ``step_ms`` apart: 100.00/100.01, 100.01/100.02, 99.99/100.00, with a sell of 50 at 99.98 and a
    buy of 50 at 100.03 in every cycle. A bid at 99.99 or below and an ask at 100.02 or above never
    cross and fill in the next cycle (a trade through them); a buy at 100.02 or more always crosses."""
    quotes = [(100.00, 100.01), (100.01, 100.02), (99.99, 100.00)]
    rows: list[tuple] = []
    t = T0
    n = int(seconds * 1000 / step_ms)
    for i in range(n):
        b, a = quotes[i % 3]
        rows.append((t, t + MS, 0, b, 5.0, QUOTE, 0, F_EXCH_TS, a, 5.0))
        if i % 3 == 2:
            rows.append((t + MS, t + 2 * MS, 9000 + i, 99.98, 50.0, TRADE, SELL, F_EXCH_TS, 0.0, 0.0))
            rows.append((t + 2 * MS, t + 3 * MS, 9001 + i, 100.03, 50.0, TRADE, BUY, F_EXCH_TS, 0.0, 0.0))
        t += step_ms * MS
    ev = empty(len(rows))
    for i, r in enumerate(rows):
        ev["exch_ts"][i], ev["local_ts"][i], ev["seq"][i] = r[0], r[1], r[2]
        ev["px"][i], ev["qty"][i], ev["kind"][i], ev["side"][i], ev["flags"][i] = r[3], r[4], r[5], r[6], r[7]
        ev["px2"][i], ev["qty2"][i] = r[8], r[9]
    return ev


def write_store(path: Path, rows: np.ndarray) -> Path:
    from avmm.data.store import write_events

    write_events(path, [rows], {"symbol": "BTCUSDT", "source": "test", "tick_size": 0.01, "lot_size": 0.001})
    return path


class Keyring:
    """API keys for the tests: HMAC keys ``h0``.. (secret ``secret-<name>``) and Ed25519 keys ``e0``..."""

    def __init__(self, n_hmac: int = 4, n_ed: int = 2) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.secrets = {f"h{i}": f"secret-h{i}" for i in range(n_hmac)}
        self.private: dict[str, Any] = {}
        self.entries: list[dict[str, str]] = [
            {"api_key": k, "type": "hmac", "secret": v} for k, v in self.secrets.items()
        ]
        for i in range(n_ed):
            priv = Ed25519PrivateKey.generate()
            pem = (
                priv.public_key()
                .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
                .decode()
            )
            self.private[f"e{i}"] = priv
            self.entries.append({"api_key": f"e{i}", "type": "ed25519", "public_key": pem})

    def keys(self) -> Any:
        from avmm.emulator.keys import parse_keys

        return parse_keys(self.entries)

    def sign(self, key: str, payload: str) -> str:
        import base64
        import hashlib
        import hmac

        if key in self.secrets:
            return hmac.new(self.secrets[key].encode(), payload.encode(), hashlib.sha256).hexdigest()
        return base64.b64encode(self.private[key].sign(payload.encode())).decode()


def now_ms() -> int:
    import time

    return time.time_ns() // 1_000_000


class WsApi:
    """A WebSocket API client: requests by id, the user-data events collected with their arrival."""

    def __init__(self, session: Any, url: str, ring: Keyring | None = None) -> None:
        self.session, self.url, self.ring = session, url, ring
        self.ws: Any = None
        self.responses: dict[Any, asyncio.Future] = {}
        self.events: list[tuple[float, dict]] = []  # (monotonic arrival, frame)
        self.log: list[
            tuple[float, str, Any]
        ] = []  # everything received, in order: (t, "response", id) / (t, "event", ev)
        self._new = asyncio.Event()
        self._next = 0
        self._reader: asyncio.Task | None = None
        self.closed = asyncio.Event()

    async def __aenter__(self) -> WsApi:
        self.ws = await self.session.ws_connect(self.url)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()

    async def _read(self) -> None:
        import time

        try:
            async for m in self.ws:
                if m.type != 1:  # TEXT
                    continue
                d = json.loads(m.data)
                t = time.monotonic()
                if "status" in d and "id" in d:
                    self.log.append((t, "response", d["id"]))
                    fut = self.responses.pop(d["id"], None)
                    if fut is not None and not fut.done():
                        fut.set_result(d)
                else:
                    ev = d.get("event", d)
                    self.log.append((t, "event", ev))
                    self.events.append((t, d))
                    self._new.set()
        finally:
            self.closed.set()

    def signed(self, key: str, params: dict | None = None, ts: int | None = None) -> dict:
        from avmm.emulator.keys import ws_payload

        assert self.ring is not None
        p = dict(params or {})
        p["apiKey"] = key
        p["timestamp"] = now_ms() if ts is None else ts
        p["signature"] = self.ring.sign(key, ws_payload(p))
        return p

    async def send(self, method: str, params: dict | None = None) -> asyncio.Future:
        self._next += 1
        rid = self._next
        fut = asyncio.get_running_loop().create_future()
        self.responses[rid] = fut
        msg = {"id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        await self.ws.send_str(json.dumps(msg))
        return fut

    async def call(self, method: str, params: dict | None = None, key: str | None = None, timeout: float = 5.0) -> dict:
        """A request; with ``key`` signed with it (apiKey, timestamp, signature)."""
        if key is not None:
            params = self.signed(key, params)
        fut = await self.send(method, params)
        return await asyncio.wait_for(fut, timeout)

    async def logon(self, key: str) -> dict:
        return await self.call("session.logon", self.signed(key))

    async def event(self, pred: Any, timeout: float = 5.0, after: int = 0) -> dict:
        """The first user-data event (the frame's ``event``, or the frame) from index ``after`` on
        for which ``pred`` holds."""
        import time

        end = time.monotonic() + timeout
        i = after
        while True:
            while i < len(self.events):
                d = self.events[i][1]
                ev = d.get("event", d)
                if pred(ev):
                    return ev
                i += 1
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no such event")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), left)


async def rest(
    session: Any,
    ring: Keyring | None,
    verb: str,
    url: str,
    params: dict | None = None,
    key: str | None = None,
    sign: bool = True,
    ts: int | None = None,
) -> tuple[int, Any, Any]:
    """A REST request (signed with ``key`` unless ``sign`` is False): status, JSON body, headers."""
    import urllib.parse

    p = dict(params or {})
    headers = {}
    if key is not None:
        headers["X-MBX-APIKEY"] = key
        if sign:
            assert ring is not None
            p["timestamp"] = now_ms() if ts is None else ts
            q = urllib.parse.urlencode(p)
            p["signature"] = ring.sign(key, q)
    q = urllib.parse.urlencode(p)
    if verb in ("POST", "PUT"):
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        async with session.request(verb, url, data=q, headers=headers) as r:
            return r.status, await r.json(content_type=None), r.headers
    async with session.request(verb, url + ("?" + q if q else ""), headers=headers) as r:
        return r.status, await r.json(content_type=None), r.headers
