"""Which websocket client the live feed uses: picows, websockets and aiohttp on loopback.

A server process (plain blocking sockets, so that it is never the bottleneck) accepts one
websocket client at a time and sends it Binance ``bookTicker`` frames in a combined-stream envelope
(``{"stream":"btcusdt@bookTicker","data":{...}}``, ~150 bytes, the size of the real thing) in two
modes:

* ``flood``: N frames written back to back (pre-encoded, in large writes): the client's cost per
  frame received and decoded (``msgspec`` into ``venues.binance.messages.EnvBookTicker``), ns/frame;
* ``paced``: one frame at a time with a pause between them, each carrying the server's
  ``perf_counter_ns`` at the send in its ``u`` field (CLOCK_MONOTONIC, shared by the two processes):
  receive latency = the client's ``perf_counter_ns`` after the decode - the stamp, p50 / p99.

Every client runs on uvloop; runs alternate between clients (``--repeat``) and the median of the
runs is reported. Then the feed's own cost per frame once received (``avmm.live.feed.Feed.on_frame``:
route, decode, dedupe, book, a no-op sink), in process, for bookTicker and 3-level depth diffs.
``make bench-ws``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import multiprocessing as mp
import socket
import statistics
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

import uvloop

from avmm.venues.binance.messages import DECODE_BOOK_TICKER

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
STREAM = "btcusdt@bookTicker"


def _frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    else:
        head = struct.pack("!BBH", 0x81, 126, n)
    return head + payload


def _payload(u: int) -> bytes:
    return (
        b'{"stream":"btcusdt@bookTicker","data":{"u":%d,"s":"BTCUSDT","b":"61234.10000000",'
        b'"B":"1.23400000","a":"61234.11000000","A":"0.56700000"}}' % u
    )


def _handshake(conn: socket.socket) -> None:
    req = b""
    while b"\r\n\r\n" not in req:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("closed during handshake")
        req += chunk
    key = b""
    for line in req.split(b"\r\n"):
        if line.lower().startswith(b"sec-websocket-key:"):
            key = line.split(b":", 1)[1].strip()
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def serve(sock: socket.socket, n: int, pace_us: float) -> None:
    """The server process: for each client, a mode byte from the URL path (``/flood`` or
    ``/paced``), then the frames, then a close frame."""
    blob = b"".join(_frame(_payload(i + 1)) for i in range(n))
    close = b"\x88\x02\x03\xe8"
    while True:
        conn, _ = sock.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peek = conn.recv(64, socket.MSG_PEEK)
        _handshake(conn)
        time.sleep(0.05)  # the client is ready to read
        if b"/flood" in peek:
            for k in range(0, len(blob), 1 << 16):
                conn.sendall(blob[k : k + (1 << 16)])
        else:
            for _ in range(n):
                conn.sendall(_frame(_payload(time.perf_counter_ns())))
                time.sleep(pace_us * 1e-6)
        conn.sendall(close)
        try:
            conn.settimeout(2.0)
            while conn.recv(4096):
                pass
        except OSError:
            pass
        conn.close()


class Sink:
    """What a client does with each frame: decode, and in paced mode record the latency."""

    def __init__(self, n: int, paced: bool) -> None:
        self.n = n
        self.paced = paced
        self.got = 0
        self.lat: list[int] = []
        self.t0 = 0
        self.t1 = 0
        self.done = asyncio.get_running_loop().create_future()

    def on(self, data: bytes | str) -> None:
        m = DECODE_BOOK_TICKER.decode(data)
        now = time.perf_counter_ns()
        if self.got == 0:
            self.t0 = now
        self.got += 1
        if self.paced:
            self.lat.append(now - m.data.u)
        if self.got == self.n:
            self.t1 = now
            if not self.done.done():
                self.done.set_result(None)


async def run_picows(url: str, sink: Sink) -> None:
    import picows

    class L(picows.WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type == picows.WSMsgType.TEXT:
                sink.on(frame.get_payload_as_bytes())
            elif frame.msg_type == picows.WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()

    transport, _ = await picows.ws_connect(L, url)
    await sink.done
    transport.disconnect()


async def run_websockets(url: str, sink: Sink) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, compression=None, max_size=None) as ws:
        async for msg in ws:
            sink.on(msg)
            if sink.done.done():
                break


async def run_aiohttp(url: str, sink: Sink) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as s, s.ws_connect(url, autoping=True, compress=0) as ws:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                sink.on(msg.data)
                if sink.done.done():
                    break


CLIENTS: dict[str, Callable[[str, Sink], Any]] = {
    "picows": run_picows,
    "websockets": run_websockets,
    "aiohttp": run_aiohttp,
}


def _pct(xs: list[int], q: float) -> float:
    s = sorted(xs)
    return float(s[min(len(s) - 1, int(q * len(s)))])


async def one(client: str, port: int, n: int, paced: bool) -> dict[str, float]:
    sink = Sink(n, paced)
    url = f"ws://127.0.0.1:{port}/{'paced' if paced else 'flood'}"
    await asyncio.wait_for(CLIENTS[client](url, sink), 120)
    if paced:
        lat = sink.lat[n // 10 :]  # warm-up
        return {"p50_us": _pct(lat, 0.5) / 1e3, "p99_us": _pct(lat, 0.99) / 1e3}
    return {"ns_per_frame": (sink.t1 - sink.t0) / max(1, n - 1)}


def feed_cost(n: int) -> dict[str, float]:
    """ns per ``Feed.on_frame`` call: bookTicker frames, then depth diffs of 3 levels (book in sync)."""
    from avmm.live.config import VenueConfig
    from avmm.live.feed import Feed

    async def run() -> dict[str, float]:
        f = Feed("binance-spot", "BTCUSDT", VenueConfig())
        f.sync.synced, f.depth_ok = True, True
        bts = [_payload(i + 1) for i in range(n)]
        diffs = [
            b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":%d,"u":%d,'
            b'"b":[["61234.10","1.5"],["61234.00","0"]],"a":[["61235.10","2.5"]]}}' % (i + 1, i + 1)
            for i in range(n)
        ]
        out = {}
        t = time.time_ns()
        for name, frames in (("bookTicker", bts), ("depth3", diffs)):
            t0 = time.perf_counter_ns()
            for raw in frames:
                f.on_frame(None, raw, t)  # type: ignore[arg-type]
            out[f"feed_{name}_ns"] = (time.perf_counter_ns() - t0) / n
        assert f.counters.quotes == n and f.counters.diffs_applied == n
        return out

    return asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=200_000, help="frames per flood run")
    ap.add_argument("--paced-frames", type=int, default=5_000, help="frames per paced run")
    ap.add_argument("--pace-us", type=float, default=200.0, help="pause between paced frames, us")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    uvloop.install()
    res: dict[str, dict[str, list[float]]] = {c: {} for c in CLIENTS}
    for mode, n in (("flood", a.frames), ("paced", a.paced_frames)):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        port = sock.getsockname()[1]
        srv = mp.get_context("fork").Process(target=serve, args=(sock, n, a.pace_us), daemon=True)
        srv.start()
        try:
            for _ in range(a.repeat):
                for c in CLIENTS:
                    r = asyncio.run(one(c, port, n, mode == "paced"))
                    for k, v in r.items():
                        res[c].setdefault(k, []).append(v)
        finally:
            srv.terminate()
            srv.join()
            sock.close()
    out = {c: {k: statistics.median(v) for k, v in d.items()} for c, d in res.items()}
    print(f"{'client':<12}{'flood ns/frame':>16}{'paced p50 us':>14}{'paced p99 us':>14}")
    for c, d in out.items():
        print(f"{c:<12}{d['ns_per_frame']:>16.0f}{d['p50_us']:>14.1f}{d['p99_us']:>14.1f}")
    feed = feed_cost(a.frames)
    print("avmm Feed.on_frame (in process, after the receive): " + ", ".join(f"{k} {v:.0f}" for k, v in feed.items()))
    meta = {"python": sys.version.split()[0], "frames": a.frames, "paced_frames": a.paced_frames, "pace_us": a.pace_us}
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"meta": meta, "results": out, "runs": res, "feed": feed}, f, indent=1)


if __name__ == "__main__":
    main()
