"""One authenticated connection to Binance's WebSocket API (spot ``/ws-api/v3``, USD-M
``/ws-fapi/v1``), over picows.

* Authentication: an Ed25519 key logs the connection on once (``session.logon``; the requests after
  it carry no ``apiKey`` or ``signature``, only their ``timestamp``). An HMAC key cannot log on:
  every signed request carries ``apiKey``, ``timestamp``, ``recvWindow`` and its ``signature``
  (the order frames from ``venues/binance/ws_api.py`` are re-signed here: slower, the fallback).
* Requests: the gateway's order frames are sent as they are (``send_order``: their ids are the
  encoder's, counting from 1); everything else goes through ``call(method, params)`` with ids from
  ``CONTROL_ID`` up, awaited with a timeout. Responses are decoded once (``ApiFrame``) and matched by
  id: an order's to ``on_order(frame, local_ns)``, a call's to its future. Each response's
  ``rateLimits`` corrects ``limits``; a ``serverTime`` feeds the clock.
* Events (spot, after ``userDataStream.subscribe``) go to ``on_event(raw, local_ns)``.
* The end of the connection (either side, the network) is reported once (``on_closed``); the
  calls in flight fail with ``ConnectionError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import msgspec
import picows

from avmm.live.clock import ClockOffset
from avmm.live.keys import Keys, payload
from avmm.live.limits import RateLimits
from avmm.live.ws import CONNECT_ERRORS, Conn, connect
from avmm.venues.binance.private import DECODE_FRAME, DECODE_LOGON, DECODE_SERVER_TIME, ApiFrame

CONTROL_ID = 1 << 40  # ids of the calls (the encoder's order ids count from 1)
TEXT = picows.WSMsgType.TEXT
UNKNOWN_CODES = (-1007, -1006)  # "timeout waiting for the backend", "unexpected response": outcome unknown


class ApiError(Exception):
    """An error answer: ``code`` (Binance's), ``status`` (HTTP-like), ``msg``; ``retry_after_s``
    from a 429 / 418's ``data``."""

    def __init__(self, method: str, status: int, code: int, msg: str, retry_after_s: float = 0.0) -> None:
        super().__init__(f"{method}: {status} code {code}: {msg}")
        self.method, self.status, self.code, self.msg = method, status, code, msg
        self.retry_after_s = retry_after_s

    @property
    def unknown(self) -> bool:
        """The outcome is unknown (a timeout at the venue, a 5xx): to be queried, never taken as failed."""
        return self.code in UNKNOWN_CODES or self.status >= 500


def retry_after_of(err: Any, now_ms: int) -> float:
    """Seconds to wait from a 429 / 418 error body's ``data.retryAfter`` (ms since epoch), if any."""
    if err is None or not err.data:
        return 0.0
    try:
        d = msgspec.json.decode(err.data)
        ra = int(d.get("retryAfter", 0)) if isinstance(d, dict) else 0
    except (msgspec.DecodeError, TypeError, ValueError):
        return 0.0
    return max(0.0, (ra - now_ms) / 1000.0) if ra else 0.0


class WsApi:
    """The WebSocket API connection of one gateway.

    Parameters
    ----------
    url : str
        ``venue.ws_api_url``.
    keys : Keys
        The API key (Ed25519: logon; HMAC: signed requests).
    clock, limits
        The gateway's clock offset and rate limits (updated from every response).
    on_order : callable
        ``(frame, local_ns)`` for a response to an order frame (ids below ``CONTROL_ID``).
    on_event : callable
        ``(raw_event, local_ns)`` for a user data event (spot).
    on_closed : callable
        ``()`` once when the connection ends.
    """

    def __init__(
        self,
        url: str,
        keys: Keys,
        clock: ClockOffset,
        limits: RateLimits,
        *,
        on_order: Callable[[ApiFrame, int], None],
        on_event: Callable[[Any, int], None],
        on_closed: Callable[[], None],
        timeout_s: float = 5.0,
        recv_window_ms: float = 1000.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self.keys = keys
        self.clock = clock
        self.limits = limits
        self.on_order = on_order
        self.on_event = on_event
        self.on_closed_cb = on_closed
        self.timeout_s = timeout_s
        self.recv_window_ms = recv_window_ms
        self.connect_timeout_s = connect_timeout_s
        self.conn: Conn | None = None
        self.transport: Any = None
        self.logged_on = False
        self.next_id = CONTROL_ID
        self.calls: dict[int, tuple[asyncio.Future[ApiFrame], int, str]] = {}
        self.n_frames = 0
        self.n_bad = 0
        self.n_stray = 0  # responses to no request we know
        self.n_resyncs = 0  # calls sent again after a -1021
        self.closed = True

    # --- the connection -----------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect and, with an Ed25519 key, log on. Raises ``OSError`` / ``ApiError`` /
        ``asyncio.TimeoutError`` / ``picows.WSError`` when it cannot."""
        self.conn = await connect(self.url, self._frame, self._closed, self.connect_timeout_s)
        self.transport = self.conn.transport
        self.closed = False
        self.logged_on = False
        if self.keys.can_logon:
            try:
                await self._logon()
            except ApiError as e:
                if e.code != -1021:
                    raise
                self.clock.invalidate()  # the clock first (``time`` needs no key), then again
                self.n_resyncs += 1
                await self.sync_time()
                await self._logon()

    async def _logon(self) -> None:
        params = {"apiKey": self.keys.api_key.reveal(), "timestamp": self.clock.timestamp_ms()}
        params["signature"] = self.keys.sign(payload(params))
        t0 = time.time_ns()
        res = await self._call("session.logon", params, False, True)
        lg = DECODE_LOGON.decode(res)
        self.clock.sample(t0, time.time_ns(), lg.serverTime)
        self.logged_on = True

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def _closed(self, conn: Conn) -> None:
        if conn is not self.conn:
            return
        self.closed = True
        self.logged_on = False
        calls, self.calls = self.calls, {}
        for fut, _, method in calls.values():
            if not fut.done():
                fut.set_exception(ConnectionError(f"{method}: the WebSocket API connection closed"))
        self.on_closed_cb()

    # --- frames -------------------------------------------------------------------------------------
    def _frame(self, conn: Conn, data: bytes, local_ns: int) -> None:
        self.n_frames += 1
        try:
            f = DECODE_FRAME.decode(data)
        except msgspec.MsgspecError:
            self.n_bad += 1
            return
        if f.rateLimits:
            self.limits.update(f.rateLimits, local_ns)
        rid = f.id
        if rid is None:
            if f.event:
                self.on_event(f.event, local_ns)
            else:
                self.n_stray += 1
            return
        if isinstance(rid, int) and rid < CONTROL_ID:
            self.on_order(f, local_ns)
            return
        c = self.calls.pop(rid, None) if isinstance(rid, int) else None
        if c is None:
            self.n_stray += 1
            return
        if not c[0].done():
            c[0].set_result(f)

    # --- requests -----------------------------------------------------------------------------------
    def send_order(self, data: bytes | memoryview) -> None:
        """An order frame from the encoder (signed here when the connection is not logged on)."""
        if self.transport is None or self.closed:
            raise ConnectionError("the WebSocket API connection is closed")
        if not self.logged_on:
            data = self._signed_frame(bytes(data))
        self.transport.send(TEXT, data)

    def send_frames(self, data: memoryview) -> None:
        """Order frames already framed as client frames (``venues/ws_frames.py``) in one write: a
        logged-on connection only (their requests carry no signature)."""
        if self.transport is None or self.closed or not self.logged_on:
            raise ConnectionError("the WebSocket API connection is closed or not logged on")
        self.transport.underlying_transport.write(data)

    def _signed_frame(self, data: bytes) -> bytes:
        req = msgspec.json.decode(data)
        p = req["params"]
        p["apiKey"] = self.keys.api_key.reveal()
        p["recvWindow"] = int(self.recv_window_ms)
        p["signature"] = self.keys.sign(payload(p))
        return msgspec.json.encode(req)

    def signed(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """``params`` with what a signed request needs on this connection."""
        p = dict(params or {})
        p["timestamp"] = self.clock.timestamp_ms()
        if not self.logged_on:
            p["apiKey"] = self.keys.api_key.reveal()
            p["recvWindow"] = int(self.recv_window_ms)
            p["signature"] = self.keys.sign(payload(p))
        return p

    async def call(
        self, method: str, params: dict[str, Any] | None = None, *, signed: bool = False, raw: bool = False
    ) -> Any:
        """One request; its ``result`` (raw JSON bytes with ``raw``, else decoded to Python objects).
        Raises ``ApiError`` for an error answer (429 / 418 also noted in ``limits``), ``TimeoutError``
        when unanswered within the timeout, ``ConnectionError`` when the connection closed. A signed
        request refused for its timestamp (-1021) is sent again once, after a new clock sample."""
        try:
            return await self._call(method, params, signed, raw)
        except ApiError as e:
            if not signed or e.code != -1021:
                raise
            self.clock.invalidate()
            self.n_resyncs += 1
            await self.sync_time()
            return await self._call(method, params, signed, raw)

    async def _call(self, method: str, params: dict[str, Any] | None, signed: bool, raw: bool) -> Any:
        if self.transport is None or self.closed:
            raise ConnectionError(f"{method}: the WebSocket API connection is closed")
        rid = self.next_id
        self.next_id += 1
        req: dict[str, Any] = {"id": rid, "method": method}
        if signed:
            params = self.signed(params)
        if params:
            req["params"] = params
        fut: asyncio.Future[ApiFrame] = asyncio.get_running_loop().create_future()
        t0 = time.time_ns()
        self.calls[rid] = (fut, t0, method)
        self.transport.send(TEXT, msgspec.json.encode(req))
        try:
            f = await asyncio.wait_for(fut, self.timeout_s)
        except TimeoutError:
            self.calls.pop(rid, None)
            raise TimeoutError(f"{method}: no answer in {self.timeout_s:g} s") from None
        if f.error is not None or f.status >= 400:
            self.raise_error(method, f)
        if not f.result:
            return None
        if raw:
            return bytes(f.result)
        return msgspec.json.decode(f.result)

    def note_error(self, method: str, f: ApiFrame) -> ApiError:
        """The error of an answer as ``ApiError``; a 429 / 418 noted in ``limits``."""
        code = f.error.code if f.error is not None else 0
        msg = f.error.msg if f.error is not None else ""
        ra = retry_after_of(f.error, self.clock.timestamp_ms())
        if f.status == 418:
            self.limits.ban(f"{method}: HTTP 418 (the IP is banned{f' for {ra:.0f} s' if ra else ''}): {msg}")
        elif f.status == 429 or code == -1003:
            self.limits.too_many(ra)
        return ApiError(method, f.status, code, msg, ra)

    def raise_error(self, method: str, f: ApiFrame) -> None:
        raise self.note_error(method, f)

    async def sync_time(self) -> None:
        """One clock sample (``time``: weight 1)."""
        t0 = time.time_ns()
        res = await self.call("time", raw=True)
        t1 = time.time_ns()
        self.clock.sample(t0, t1, DECODE_SERVER_TIME.decode(res).serverTime)

    def expire(self, now_ns: int) -> None:
        """Calls older than the timeout fail (``wait_for`` does it too; this catches a loop stall)."""
        lim = int(self.timeout_s * 2e9)
        for rid, (fut, t0, method) in list(self.calls.items()):
            if now_ns - t0 > lim and not fut.done():
                self.calls.pop(rid, None)
                fut.set_exception(TimeoutError(f"{method}: no answer"))


async def open_ws_api(api: WsApi, attempts: int, backoff_s: float) -> None:
    """``api.open()`` with retries; the last error raised."""
    err: BaseException | None = None
    for i in range(attempts):
        try:
            await api.open()
            return
        except (*CONNECT_ERRORS, ApiError, ConnectionError, TimeoutError) as e:  # type: ignore[misc]
            err = e
            api.close()
            with contextlib.suppress(Exception):
                await asyncio.sleep(backoff_s * (2**i))
    assert err is not None
    raise err
