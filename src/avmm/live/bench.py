"""``avmm bench live``: tick-to-order latency on loopback against the emulator, stage by stage.

The emulator replays a store in its own process (the client never shares a GIL with the server);
this process runs the client on uvloop, in four phases, each against a fresh emulator (served
with a key file so its WebSocket API is up, the request-weight and order limits off):

1. **stages** -- the live path, on the runtime's own objects: ``Feed`` (picows, its routing, its
   msgspec decoders, dedupe, depth book) -> a sink that calls ``Engine.on_quote`` (the real core,
   configured to requote on every bookTicker: ``quoting.requote_always``) and encodes the actions
   as Binance WebSocket API requests (``venues.binance.ws_api.Requests``: the bytes a live gateway
   writes), handed to a WebSocket API connection at the emulator as masked client frames in one
   write (``venues/ws_frames.py``; the connection is not logged on, so the emulator answers each
   with an error, which the client reads and drops). Each bookTicker frame is stamped with
   ``time.time_ns()`` (the clock of the runtime's own ``local_ns``) at seven points:

   ============  =============================================================================
   receive       entering the websocket callback (the feed's ``local_ns``) -> the payload bytes
                 routed to the bookTicker decoder (``Feed.on_frame``)
   decode        msgspec decode into ``EnvBookTicker`` (the feed's decoder)
   book          dedupe by ``u``, the feed's counters, the L1 handed to the sink
   core          ``Engine.on_quote`` (the compiled quote cycle) -> n actions
   encode        the n actions -> ``order.place`` / ``order.cancelReplace`` (spot) or
                 ``order.modify`` (USD-M) / ``order.cancel`` request bytes
   send          the requests framed and handed to the socket (the write returned)
   ============  =============================================================================

   The decoder is timed through a stand-in that calls the feed's own decoder between two stamps
   (``_TimedDecoder``, swapped in for the phase); the venue's acks are given to the core after
   the stamps, outside the measured spans.

2. **null client** -- the least a client can do on the same loopback: a picows listener on the
   bookTicker stream that hands one fixed order frame to the WebSocket API socket per frame.
   The stages' total less its figure is avmm's own share (``LiveBenchResult.share``).

3. **runtime** -- ``PaperSession`` as ``avmm paper`` runs it (feed -> ``Trader`` -> paper venue,
   ``Engine``, ``PaperGateway.send``): its own tick-to-order ring (``tick_to_order``: the frame's
   ``local_ns`` to the trader's return, orders sent), the figure its status shows.

4. **live runtime** -- ``LiveSession`` as ``avmm live`` runs it (no journal), logged on to the
   emulator's WebSocket API with a new Ed25519 key (``bench_keys``): real orders at the emulator,
   filled by its matching engine against the replay (the requests' timestamps on the wall clock,
   ``venue.clock = "local"``: no offset estimate follows a venue clock running 200 x). Wire to
   wire through the Binance gateway:
   the frame's ``local_ns`` to the order frames handed to the socket (``live``), and a fill
   report's frame arrival to the replacement orders it caused handed to the socket (``fill``:
   the gateway's ``fill_to_order``). Always paced (``--max`` runs it at ``LIVE_MAX_SPEED``): a
   session with real orders logs on and reconciles before it quotes, and a replay as fast as the
   client reads would be over by then.

With a ``Tuning`` (``avmm bench live --cpu / --rt-priority / --gc manual``), each run is made twice,
without and with it, alternating which goes first, and both totals are reported.

The first ``warmup`` bookTicker frames are not counted (connection, snapshot, caches). Garbage
collection runs as in the runtime (enabled; the objects made at start-up frozen by ``gc.freeze``:
``PaperSession.run``'s own policy, and the stages phase's before it connects); the collections
during the measured frames are counted in the result.
Percentiles are numpy's over int64 arrays allocated before the run; stamps are written to them
after the last stamp of a frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import statistics
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from time import time_ns
from typing import Any, Protocol

import numpy as np
import picows

from avmm.errors import UserError
from avmm.live import ws
from avmm.live.feed import FeedSink
from avmm.live.latency import LatencyRing

TEXT = ws.TEXT

STAGES = ("receive", "decode", "book", "core", "encode", "send")
PCTS = (50.0, 99.0, 99.9)
KEYS = ("p50", "p99", "p999", "max")
NS = 7  # stamps per frame
QUIET_S = 1.0  # no bookTicker for this long: ask the emulator whether its replay has ended
STALL_S = 120.0  # no bookTicker for this long: give up (the emulator does not answer)
MAX_FRAMES = 1_000_000
IDLE_NS = 200_000  # a frame arriving this long after the previous one finds the process idle (caches cold)


@dataclass
class Tuning:
    """The runtime's opt-in tuning (``live/tuning.py``), applied to this process for a run: every
    thread pinned to ``cpus``, the event loop's thread ``SCHED_FIFO`` at ``rt_priority``, the
    automatic garbage collection off during the run (``gc_manual``), the loop never sleeping
    (``busy_poll``: ``polled``)."""

    cpus: list[int] | None = None
    rt_priority: int | None = None
    gc_manual: bool = False
    busy_poll: bool = False

    def describe(self) -> str:
        parts = []
        if self.cpus:
            parts.append("--cpu " + ",".join(map(str, self.cpus)))
        if self.rt_priority is not None:
            parts.append(f"--rt-priority {self.rt_priority}")
        if self.gc_manual:
            parts.append("--gc manual")
        if self.busy_poll:
            parts.append("--busy-poll")
        return " ".join(parts) or "none"


@contextmanager
def applied(tuning: Tuning | None, notes: list[str]) -> Iterator[None]:
    """``tuning`` on this process for the block (the emulator, started before, keeps its own CPUs
    and priority), undone after it; what was not permitted is added to ``notes``."""
    if tuning is None:
        yield
        return
    from avmm.live.tuning import normal, pin, realtime

    cpus0 = sorted(os.sched_getaffinity(0))
    gc_was = gc.isenabled()
    rt_set = False
    try:
        if tuning.cpus:
            pin(tuning.cpus)
        if tuning.rt_priority is not None:
            why = realtime(tuning.rt_priority)
            if why is None:
                rt_set = True
            else:
                notes.append(f"--rt-priority {tuning.rt_priority}: {why}")
        if tuning.gc_manual:
            gc.disable()
        yield
    finally:
        if tuning.gc_manual and gc_was:
            gc.enable()
        if rt_set:
            normal()
        if tuning.cpus:
            pin(cpus0)


async def polled(coro: Any, tuning: Tuning | None) -> Any:
    """``await coro``, with the loop busy-polling meanwhile when ``tuning`` says so (as a session's
    ``Supervisor`` does: ``live/tuning.busy_poll``)."""
    if tuning is None or not tuning.busy_poll:
        return await coro
    from avmm.live.tuning import busy_poll

    spin = asyncio.ensure_future(busy_poll())
    try:
        return await coro
    finally:
        spin.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await spin


class Emulator(Protocol):
    """A running emulator (``avmm.emulator.EmulatorProcess`` / ``EmulatorThread``)."""

    url: str

    def status(self) -> Any: ...


EmulatorFn = Callable[[Path, str, float | None, Path], AbstractContextManager[Emulator]]
"""``(store, venue, speed or None for --max, keys file)`` -> a running emulator serving the
WebSocket API (``avmm emulate --keys``) with its request-weight and order limits off."""
API_PATH = {"binance-spot": "/ws-api/v3", "binance-um": "/ws-fapi/v1"}
# the emulator's private side serves the WebSocket API for a key file; the bench never logs on
BENCH_KEYS = '[[keys]]\napi_key = "avmm-bench"\ntype = "hmac"\nsecret = "avmm-bench-secret"\n'
LIVE_MAX_SPEED = 200.0  # the live runtime phase's pace when the others run --max
BENCH_ED25519 = "avmm-bench-ed25519"  # the live runtime phase's key: logged on, orders unsigned


def bench_keys(folder: Path) -> tuple[Path, Path]:
    """(the emulator's keys file: the HMAC key and a new Ed25519 public key; the client's keys
    file, mode 0600: that Ed25519 private key), written in ``folder``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    k = Ed25519PrivateKey.generate()
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    pub = k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    venue = folder / "keys.toml"
    venue.write_text(
        BENCH_KEYS + f'\n[[keys]]\napi_key = "{BENCH_ED25519}"\ntype = "ed25519"\npublic_key = """{pub.decode()}"""\n'
    )
    client = folder / "client_keys.toml"
    client.touch(0o600)
    client.write_text(f'api_key = "{BENCH_ED25519}"\nprivate_key = """{pem.decode()}"""\n')
    return venue, client


def warmup_for(frames: int) -> int:
    return min(2000, max(100, frames // 10))


def bench_strategy(tick: float, lot: float) -> Any:
    """The strategy the bench runs: the defaults, the instrument's grid, a full quote cycle on
    every event (``quoting.requote_always``)."""
    from avmm.core.config import StrategyConfig

    return StrategyConfig.model_validate({"quoting": {"tick": tick, "lot": lot, "requote_always": True}})


# --- the stages phase ------------------------------------------------------------------------------


class _TimedDecoder:
    """The feed's bookTicker decoder between two stamps."""

    __slots__ = ("dec", "t0", "t1")

    def __init__(self, dec: Any) -> None:
        self.dec = dec
        self.t0 = self.t1 = 0

    def decode(self, raw: bytes) -> Any:
        self.t0 = time_ns()
        m = self.dec.decode(raw)
        self.t1 = time_ns()
        return m


class _Pipeline(FeedSink):
    """The feed's sink on the live path: the core, then the requests; stamps every bookTicker."""

    def __init__(
        self, engine: Any, requests: Any, dec: _TimedDecoder, warmup: int, frames: int, api: Any = None
    ) -> None:
        from avmm.core.state import ACT_CANCEL, MAX_ACTIONS
        from avmm.venues.binance.ws_api import OUT_CAP
        from avmm.venues.ws_frames import ClientFrames

        # the WebSocket API connection's picows transport (None: not sent): a batch of requests goes
        # as masked client frames in one buffer, one write (``venues/ws_frames.py``)
        self.write = api.underlying_transport.write if api is not None else None
        self.frames = ClientFrames(OUT_CAP, MAX_ACTIONS)
        self.engine = engine
        self.core = engine.on_quote
        self.encode = requests.encode
        self.actions = engine.actions
        self.req = requests
        self.dec = dec
        self.warmup = warmup
        self.cap = warmup + frames
        self.rows = array("q", bytes(8 * NS * self.cap))
        self.nact = array("q", bytes(8 * self.cap))
        self.i = 0
        self.done: asyncio.Future[None] | None = None
        self.gc0 = 0
        self.cancel_kind = ACT_CANCEL
        self.last_quote = time.monotonic()

    # FeedSink
    def on_quote(self, ts_ns: int, local_ns: int, bid: float, bid_qty: float, ask: float, ask_qty: float) -> None:
        t_book = time_ns()
        n = self.core(ts_ns, bid, bid_qty, ask, ask_qty)
        t_core = time_ns()
        if n:
            k = self.encode(n, t_core // 1_000_000)
            t_enc = time_ns()
            write = self.write
            if write is not None and k > 0:
                fr = self.frames
                m = fr.frame(self.req.out, self.req.offs, k)
                if m > 0:
                    write(fr.view(m))
            t_send = time_ns()
        else:
            t_enc = t_send = t_core
        i = self.i
        if i < self.cap:
            r, j, d = self.rows, NS * i, self.dec
            r[j] = local_ns
            r[j + 1] = d.t0
            r[j + 2] = d.t1
            r[j + 3] = t_book
            r[j + 4] = t_core
            r[j + 5] = t_enc
            r[j + 6] = t_send
            self.nact[i] = n
            self.i = i + 1
            if i + 1 == self.warmup:
                self.gc0 = _collections()
            elif i + 1 == self.cap and self.done is not None and not self.done.done():
                self.done.set_result(None)
        self.last_quote = time.monotonic()
        if n:
            self._acks(n)

    def on_trade(self, ts_ns: int, local_ns: int, px: float, qty: float, side: int) -> None:
        n = self.engine.on_trade(ts_ns, px, qty, side)
        if n:
            self.encode(n, local_ns // 1_000_000)
            self._acks(n)

    def on_depth(self, local_ns: int, kind: int, side: int, px: float, qty: float) -> None:
        self.engine.on_depth(kind, side, px, qty)

    def on_health(self, local_ns: int, healthy: bool, reason: str) -> None:
        pass

    def _acks(self, n: int) -> None:
        """The venue's answers, at once (the bench's venue accepts everything)."""
        e = self.engine
        for kind, _side, oid, *_ in self.actions[:n].tolist():
            if kind == self.cancel_kind:
                e.on_canceled(oid)
                self.req.forget(oid)
            else:
                e.on_ack(oid)


def _collections() -> int:
    return sum(s["collections"] for s in gc.get_stats())


async def _until(
    done: asyncio.Future[None], last: Callable[[], float], stop: Callable[[], None], emu: Emulator
) -> bool:
    """Wait for ``done``; False when the emulator's replay ended first. The emulator is asked only
    once the frames have stopped for ``QUIET_S`` (never while they are measured)."""
    while not done.done():
        await asyncio.sleep(0.05)
        quiet = time.monotonic() - last()
        if quiet > STALL_S:
            break
        if quiet > QUIET_S:
            try:
                ended = bool((await asyncio.to_thread(emu.status)).get("done"))
            except Exception:  # noqa: BLE001 - an emulator that does not answer: wait for STALL_S
                ended = False
            if ended:
                await asyncio.sleep(0.5)  # frames still in flight
                if done.done():
                    break
                stop()
                return False
    stop()
    return done.done()


async def _setup(emu: Emulator, venue: str, symbol: str) -> tuple[Any, Any]:
    """The venue config pointing at ``emu`` and the bench's strategy on its instrument's grid."""
    from avmm.backtest.runner import adapt_config
    from avmm.live.config import VenueConfig, with_origin
    from avmm.live.paper import instrument

    vcfg = with_origin(VenueConfig(), emu.url, venue)
    info = await instrument(venue, symbol, vcfg)
    return vcfg, adapt_config(bench_strategy(0.01, 0.001), info)


def _ended(seen: int, frames: int, warmup: int) -> UserError:
    return UserError(
        f"the replay ended after {seen:,} bookTicker frames: fewer than --frames {frames:,} + {warmup:,} "
        "of warm-up (a longer --store, or fewer --frames)"
    )


async def _stages(emu: Emulator, venue: str, symbol: str, warmup: int, frames: int) -> dict[str, Any]:
    import avmm.live.feed as feed_mod
    from avmm.core.engine import Engine
    from avmm.live.feed import Feed
    from avmm.venues.binance.ws_api import OrderEncoder, Requests

    vcfg, cfg = await _setup(emu, venue, symbol)
    engine = Engine(cfg)
    engine.params["log_rate"] = 0.0
    req = Requests(OrderEncoder(venue, symbol, cfg.quoting.tick, cfg.quoting.lot), engine.actions)
    api = await _api(emu, venue)
    real = feed_mod.DECODE_BOOK_TICKER
    dec = _TimedDecoder(real)
    sink = _Pipeline(engine, req, dec, warmup, frames, api.transport)
    sink.done = asyncio.get_running_loop().create_future()
    feed = Feed(venue, symbol, vcfg, sink)
    feed_mod.DECODE_BOOK_TICKER = dec  # type: ignore[assignment]
    gc.collect()
    gc.freeze()
    try:
        run = asyncio.ensure_future(feed.run())
        complete = await _until(sink.done, lambda: sink.last_quote, feed.stop, emu)
        await run
    finally:
        feed_mod.DECODE_BOOK_TICKER = real
        gc.unfreeze()
        api.close()
    gc1 = _collections()
    if not complete:
        raise _ended(sink.i, frames, warmup)
    rows = np.frombuffer(sink.rows, dtype=np.int64).reshape(-1, NS)[warmup : sink.i]
    nact = np.frombuffer(sink.nact, dtype=np.int64)[warmup : sink.i]
    return {
        "rows": rows.copy(),
        "nact": nact.copy(),
        "gc_collections": gc1 - sink.gc0,
        "encoder": req.counts(),
        "api_answers": api.frames,
        "api_closed_early": api.closed_early,
        "decode_errors": feed.counters.decode_errors,
        "tick": cfg.quoting.tick,
        "lot": cfg.quoting.lot,
    }


class _Api(ws.Conn):
    """The WebSocket API connection the order frames are handed to; the venue's answers are read
    and dropped (the bench's connection is not logged on: each is an error frame)."""

    def __init__(self) -> None:
        super().__init__(self._answer, self._gone)
        self.closed_early = False
        self.stopping = False

    def _answer(self, conn: Any, payload: bytes, local_ns: int) -> None:
        pass

    def _gone(self, conn: Any) -> None:
        if not self.stopping:
            self.closed_early = True

    def close(self) -> None:
        self.stopping = True
        super().close()


async def _api(emu: Emulator, venue: str) -> _Api:
    import picows

    url = emu.url.replace("http://", "ws://", 1) + API_PATH[venue]
    _, conn = await asyncio.wait_for(picows.ws_connect(_Api, url, enable_auto_ping=False), 10)
    assert isinstance(conn, _Api)
    return conn


def order_frame(venue: str, symbol: str, tick: float, lot: float) -> bytes:
    """One ``order.place`` request as the encoder writes it: the null client's fixed order frame."""
    from avmm.core.state import ACT_PLACE, ACTION_DTYPE, MAX_ACTIONS
    from avmm.venues.binance.ws_api import OrderEncoder, Requests

    a = np.zeros(MAX_ACTIONS, dtype=ACTION_DTYPE)
    a[0]["kind"], a[0]["oid"], a[0]["side"], a[0]["px"], a[0]["qty"] = ACT_PLACE, 1, 1, 1000 * tick, lot
    req = Requests(OrderEncoder(venue, symbol, tick, lot), a)
    req.encode(1, time.time_ns() // 1_000_000)
    return bytes(req.view(0))


# --- the null client ---------------------------------------------------------------------------------


class _Null(picows.WSListener):
    """The least a client can do: each bookTicker frame's arrival stamped, one fixed order frame
    handed to the WebSocket API socket, stamped again. Its figures are the floor under the stages'
    total on the same loopback, loop and machine: what is left is avmm's own share."""

    def __init__(self, api: Any, order: bytes, warmup: int, frames: int) -> None:
        super().__init__()
        self.api, self.order = api, order
        self.warmup, self.cap = warmup, warmup + frames
        self.rows = array("q", bytes(16 * self.cap))
        self.i = 0
        self.last = time.monotonic()
        self.done: asyncio.Future[None] | None = None
        self.transport: Any = None

    def on_ws_connected(self, transport: Any) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        t0 = time_ns()
        if frame.msg_type is not ws.TEXT:
            return
        self.api.send(ws.TEXT, self.order)
        t1 = time_ns()
        i = self.i
        if i < self.cap:
            self.rows[2 * i] = t0
            self.rows[2 * i + 1] = t1
            self.i = i + 1
            if i + 1 == self.cap and self.done is not None and not self.done.done():
                self.done.set_result(None)
        self.last = time.monotonic()


async def _null(emu: Emulator, venue: str, symbol: str, warmup: int, frames: int, order: bytes) -> dict[str, Any]:
    api = await _api(emu, venue)
    url = emu.url.replace("http://", "ws://", 1) + f"/ws/{symbol.lower()}@bookTicker"
    _, null = await asyncio.wait_for(
        picows.ws_connect(lambda: _Null(api.transport, order, warmup, frames), url, enable_auto_ping=False), 10
    )
    assert isinstance(null, _Null)
    null.done = asyncio.get_running_loop().create_future()

    def stop() -> None:
        if null.transport is not None:
            null.transport.disconnect()

    try:
        complete = await _until(null.done, lambda: null.last, stop, emu)
    finally:
        api.close()
    if not complete:
        raise _ended(null.i, frames, warmup)
    rows = np.frombuffer(null.rows, dtype=np.int64).reshape(-1, 2)[warmup : null.i]
    return {"lat": (rows[:, 1] - rows[:, 0]).copy(), "api_closed_early": api.closed_early}


# --- the runtime phase -----------------------------------------------------------------------------


async def _measured(
    s: Any, emu: Emulator, warmup: int, frames: int, rings: tuple[LatencyRing, ...]
) -> tuple[bool, list[np.ndarray], int, int]:
    """Run the session ``s`` (its own GC policy: ``PaperSession.run`` freezes at start) until
    ``frames`` bookTicker frames after the warm-up (``warmup`` frames and the trader healthy):
    whether they all came, each of ``rings``' samples since the warm-up, the frames counted, the
    garbage collections during them."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    state = {"last": time.monotonic(), "quotes": 0, "q0": -1, "gc0": 0}
    marks = [0] * len(rings)

    async def watch() -> None:
        while not done.done():
            await asyncio.sleep(0.01)
            q = s.feed.counters.quotes
            if q != state["quotes"]:
                state["quotes"], state["last"] = q, time.monotonic()
            if state["q0"] < 0 and q >= warmup and s.trader.healthy:
                marks[:] = [r.n for r in rings]
                state["q0"], state["gc0"] = q, _collections()
            if state["q0"] >= 0 and q - state["q0"] >= frames:
                done.set_result(None)

    run = asyncio.ensure_future(s.run())
    watcher = asyncio.ensure_future(watch())
    complete = await _until(done, lambda: state["last"], s.stop, emu)
    gc1 = _collections()
    await run
    watcher.cancel()
    samples = [_since(r, m) for r, m in zip(rings, marks, strict=True)]
    return complete, samples, int(state["quotes"] - max(0, state["q0"])), gc1 - int(state["gc0"])


async def _runtime(emu: Emulator, venue: str, symbol: str, warmup: int, frames: int) -> dict[str, Any]:
    from avmm.backtest.config import BacktestConfig
    from avmm.live.paper import PaperSession

    vcfg, cfg = await _setup(emu, venue, symbol)
    cap = 1 << max(16, math.ceil(math.log2(4 * (warmup + frames))))
    s = PaperSession(venue, symbol, cfg, BacktestConfig(), vcfg, latency_cap=cap)
    complete, (lat,), quotes, gcs = await _measured(s, emu, warmup, frames, (s.tick_to_order,))
    if not complete:
        raise _ended(s.feed.counters.quotes, frames, warmup)
    return {"lat": lat, "quotes": quotes, "gc_collections": gcs, "fills": int(s.trader.bs["n_fills"][0])}


async def _live_runtime(
    emu: Emulator, venue: str, symbol: str, warmup: int, frames: int, client_keys: Path
) -> dict[str, Any]:
    """``LiveSession`` as ``avmm live`` runs it (no journal), logged on to the emulator's WebSocket
    API with an Ed25519 key: its orders are real orders at the emulator, which fills them. Its
    tick-to-order ring (the frame's ``local_ns`` to the order frames handed to the socket) and the
    gateway's fill -> replacement ring (a fill report's frame arrival to the orders it caused
    handed to the socket), both after the warm-up."""
    from avmm.backtest.config import BacktestConfig
    from avmm.live.keys import load_keys
    from avmm.live.session_live import LiveSession, session_token

    vcfg, cfg = await _setup(emu, venue, symbol)
    vcfg = vcfg.model_copy(update={"clock": "local"})  # the emulator's clock runs --speed x: wall timestamps
    cap = 1 << max(16, math.ceil(math.log2(4 * (warmup + frames))))
    s = LiveSession(
        venue, symbol, cfg, BacktestConfig(), vcfg, load_keys(client_keys), session_id=session_token(), latency_cap=cap
    )
    s.gwy.fill_to_order = LatencyRing(cap)
    complete, (lat, fill), quotes, gcs = await _measured(s, emu, warmup, frames, (s.tick_to_order, s.gwy.fill_to_order))
    if s.halted:
        raise UserError(f"the live phase halted: {s.halted}")
    if not complete:
        raise _ended(s.feed.counters.quotes, frames, warmup)
    return {
        "lat": lat,
        "fill": fill,
        "quotes": quotes,
        "fills": int(s.trader.bs["n_fills"][0]),
        "gc_collections": gcs,
    }


def _since(ring: LatencyRing, n0: int) -> np.ndarray:
    """The samples ``ring`` took from its ``n0``-th on, of those it still holds."""
    idx = np.arange(max(n0, ring.n - (ring.mask + 1)), ring.n) & ring.mask
    return np.frombuffer(ring.buf, dtype=np.int64)[idx]


# --- the result ------------------------------------------------------------------------------------


def pcts_us(ns: np.ndarray) -> dict[str, float | int | None]:
    """p50 / p99 / p99.9 / max in µs and the count."""
    if ns.size == 0:
        return {**dict.fromkeys(KEYS), "n": 0}
    p = np.percentile(ns, PCTS)
    return {"p50": p[0] / 1e3, "p99": p[1] / 1e3, "p999": p[2] / 1e3, "max": float(ns.max()) / 1e3, "n": int(ns.size)}


def stage_table(rows: np.ndarray, mask: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """Each stage's percentiles over ``rows`` (stamps, ns) where ``mask``; ``intent`` (the frame to
    its requests encoded, before the send) and ``total`` (to the send's return)."""
    r = rows if mask is None else rows[mask]
    d = np.diff(r, axis=1)
    out = {name: pcts_us(d[:, k]) for k, name in enumerate(STAGES)}
    out["intent"] = pcts_us(r[:, -2] - r[:, 0])  # to the order intent ready for the gateway (encoded)
    out["total"] = pcts_us(r[:, -1] - r[:, 0])
    return out


@dataclass
class LiveBenchResult:
    venue: str
    symbol: str
    store: str
    speed: float | None  # None: --max
    frames: int
    warmup: int
    repeat: int
    requoted: int  # frames (of the first run) whose core call produced actions
    stages_all: dict[str, dict[str, Any]]  # median of the runs' percentiles, µs
    stages_requote: dict[str, dict[str, Any]]
    stages_back_to_back: dict[str, dict[str, Any]]  # frames within IDLE_NS of the previous one
    stages_after_idle: dict[str, dict[str, Any]]  # the others: after a quiet gap (idle unless busy-polling)
    runtime: dict[str, Any]  # PaperSession's tick-to-order, µs
    runs: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    tuned: dict[str, Any] | None = None  # the same runs with a Tuning applied (totals, the intent, the share)
    null: dict[str, Any] = field(default_factory=dict)  # the null client's frame -> order frame sent, µs
    live: dict[str, Any] = field(default_factory=dict)  # LiveSession: frame -> order frames on the socket, µs
    fill: dict[str, Any] = field(default_factory=dict)  # LiveSession: fill report -> replacement on the socket, µs

    def share(self) -> dict[str, float | None]:
        """avmm's own share: the stages' total (frame -> order frames handed to the socket) less
        the null client's, per percentile, over the frames that sent orders."""
        t = self.stages_requote["total"]
        return {k: None if t[k] is None or self.null.get(k) is None else t[k] - self.null[k] for k in ("p50", "p99")}

    def to_json(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "symbol": self.symbol,
            "store": self.store,
            "speed": self.speed,
            "frames": self.frames,
            "warmup": self.warmup,
            "repeat": self.repeat,
            "requoted": self.requoted,
            "stages_us": self.stages_all,
            "stages_requote_us": self.stages_requote,
            "stages_back_to_back_us": self.stages_back_to_back,
            "stages_after_idle_us": self.stages_after_idle,
            "idle_us": IDLE_NS / 1e3,
            "runtime_us": self.runtime,
            "runs": self.runs,
            "notes": self.notes,
            "tuned": self.tuned,
            "null_us": self.null,
            "avmm_share_us": self.share(),
            "live_us": self.live,
            "fill_to_order_us": self.fill,
        }


def _median_tables(tables: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in tables[0]:
        row: dict[str, Any] = {}
        for k in KEYS:
            vals = [t[name][k] for t in tables if t[name][k] is not None]
            row[k] = statistics.median(vals) if vals else None
        row["n"] = statistics.median(t[name]["n"] for t in tables)
        out[name] = row
    return out


def run_live_bench(
    emulator: EmulatorFn,
    store: Path,
    venue: str = "binance-spot",
    frames: int = 20_000,
    speed: float | None = 200.0,
    repeat: int = 1,
    warmup: int | None = None,
    progress: Callable[[str], None] | None = None,
    tuning: Tuning | None = None,
) -> LiveBenchResult:
    """Run the four phases ``repeat`` times (a fresh emulator each) and take the median of the
    runs' percentiles. With ``tuning``, every run is made twice, without and with it (alternating
    which goes first), and ``tuned`` has the tuned runs' totals."""
    from avmm.data.store import read_meta
    from avmm.live.run import check_symbol, new_loop

    if not 1 <= frames <= MAX_FRAMES:
        raise UserError(f"--frames {frames}: must be between 1 and {MAX_FRAMES:,}")
    if repeat < 1:
        raise UserError(f"--repeat {repeat}: must be at least 1")
    meta = read_meta(store)
    symbol = check_symbol(str(meta.get("symbol") or "BTCUSDT"))
    warm = warmup_for(frames) if warmup is None else warmup
    say = progress or (lambda _m: None)
    runs: list[dict[str, Any]] = []
    tables: dict[bool, dict[str, list[Any]]] = {
        v: {"all": [], "req": [], "b2b": [], "idle": [], "rt": [], "null": [], "live": [], "fill": []}
        for v in (False, True)
    }
    tmp = tempfile.TemporaryDirectory(prefix="avmm-bench-live-")
    keys, client = bench_keys(Path(tmp.name))
    tuning_notes: list[str] = []
    requoted = 0
    try:
        for k in range(repeat):
            # with a tuning, each run twice: without and with it, alternating which goes first
            variants = [False] if tuning is None else ([False, True] if k % 2 == 0 else [True, False])
            for tuned_run in variants:
                tag = " (tuned)" if tuned_run else ""
                loop = new_loop("avmm bench live")
                try:
                    tu = tuning if tuned_run else None
                    say(f"run {k + 1}/{repeat}{tag}: stages")
                    with emulator(store, venue, speed, keys) as emu, applied(tu, tuning_notes):
                        st = loop.run_until_complete(polled(_stages(emu, venue, symbol, warm, frames), tu))
                    say(f"run {k + 1}/{repeat}{tag}: null client")
                    order = order_frame(venue, symbol, st["tick"], st["lot"])
                    with emulator(store, venue, speed, keys) as emu, applied(tu, tuning_notes):
                        nl = loop.run_until_complete(polled(_null(emu, venue, symbol, warm, frames, order), tu))
                    say(f"run {k + 1}/{repeat}{tag}: paper runtime")
                    with emulator(store, venue, speed, keys) as emu, applied(tu, tuning_notes):
                        rt = loop.run_until_complete(polled(_runtime(emu, venue, symbol, warm, frames), tu))
                    say(f"run {k + 1}/{repeat}{tag}: live runtime")
                    with emulator(store, venue, speed or LIVE_MAX_SPEED, keys) as emu, applied(tu, tuning_notes):
                        lv = loop.run_until_complete(
                            polled(_live_runtime(emu, venue, symbol, warm, frames, client), tu)
                        )
                finally:
                    loop.close()
                rows, nact = st["rows"], st["nact"]
                a, r = stage_table(rows), stage_table(rows, nact > 0)
                gap = np.diff(rows[:, 0], prepend=rows[0, 0] - IDLE_NS)
                b2b, idle = stage_table(rows, gap < IDLE_NS), stage_table(rows, gap >= IDLE_NS)
                p = pcts_us(rt["lat"])
                pn = pcts_us(nl["lat"])
                tb = tables[tuned_run]
                tb["null"].append({"total": pn})
                tb["all"].append(a)
                tb["req"].append(r)
                tb["b2b"].append(b2b)
                tb["idle"].append(idle)
                tb["rt"].append({"total": p})
                pl, pf = pcts_us(lv["lat"]), pcts_us(lv["fill"])
                tb["live"].append({"total": pl})
                tb["fill"].append({"total": pf})
                if k == 0 and not tuned_run:
                    requoted = int((nact > 0).sum())
                runs.append(
                    {
                        "tuned": tuned_run,
                        "stages_us": a,
                        "stages_requote_us": r,
                        "stages_back_to_back_us": b2b,
                        "stages_after_idle_us": idle,
                        "runtime_us": p,
                        "null_us": pn,
                        "api_closed_early": bool(st["api_closed_early"] or nl["api_closed_early"]),
                        "api_answers": st["api_answers"],
                        "requoted": int((nact > 0).sum()),
                        "actions": int(nact.sum()),
                        "gc_collections": {
                            "stages": st["gc_collections"],
                            "runtime": rt["gc_collections"],
                            "live": lv["gc_collections"],
                        },
                        "runtime_quotes": rt["quotes"],
                        "runtime_fills": rt["fills"],
                        "live_us": pl,
                        "fill_to_order_us": pf,
                        "live_quotes": lv["quotes"],
                        "live_fills": lv["fills"],
                        "encoder": st["encoder"],
                    }
                )
    finally:
        tmp.cleanup()
    plain = tables[False]
    all_t, req_t, b2b_t, idle_t, rt_t = plain["all"], plain["req"], plain["b2b"], plain["idle"], plain["rt"]
    null_t = _median_tables(plain["null"])["total"]
    tuned_out: dict[str, Any] | None = None
    if tuning is not None:
        tt = tables[True]
        tuned_out = {
            "tuning": tuning.describe(),
            "not_applied": sorted(set(tuning_notes)),
            "total_us": _median_tables(tt["all"])["total"],
            "total_requote_us": _median_tables(tt["req"])["total"],
            "total_back_to_back_us": _median_tables(tt["b2b"])["total"],
            "total_after_idle_us": _median_tables(tt["idle"])["total"],
            "runtime_us": _median_tables(tt["rt"])["total"],
            "null_us": _median_tables(tt["null"])["total"],
            "intent_requote_us": _median_tables(tt["req"])["intent"],
            "live_us": _median_tables(tt["live"])["total"],
            "fill_to_order_us": _median_tables(tt["fill"])["total"],
        }
        tn, tq = tuned_out["null_us"], tuned_out["total_requote_us"]
        tuned_out["share"] = {
            k: None if tq.get(k) is None or tn.get(k) is None else tq[k] - tn[k] for k in ("p50", "p99")
        }
    notes = {
        "clock": "time.time_ns (CLOCK_REALTIME: the runtime's own local_ns); 6 stamps per frame",
        "gc": "enabled, start-up objects frozen (gc.freeze) before connecting; collections counted per run",
        "strategy": "defaults, quoting.requote_always = true (a full quote cycle per event)",
        "tick": st["tick"],
        "lot": st["lot"],
    }
    return LiveBenchResult(
        venue=venue,
        symbol=symbol,
        store=str(store),
        speed=speed,
        frames=frames,
        warmup=warm,
        repeat=repeat,
        requoted=requoted,
        stages_all=_median_tables(all_t),
        stages_requote=_median_tables(req_t),
        stages_back_to_back=_median_tables(b2b_t),
        stages_after_idle=_median_tables(idle_t),
        runtime=_median_tables(rt_t)["total"],
        runs=runs,
        notes=notes,
        tuned=tuned_out,
        null=null_t,
        live=_median_tables(plain["live"])["total"],
        fill=_median_tables(plain["fill"])["total"],
    )
