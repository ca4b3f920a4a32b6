"""Stores and clients for the emulator's tests: a hand-built depth store (snapshot, diffs, a resync,
quotes, trades), a synthetic L1 store, the real Binance captures cut short, and a client that keeps
a book by Binance's rules (``DepthSync``)."""

from __future__ import annotations

import asyncio
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
