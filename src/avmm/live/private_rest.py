"""Binance's signed REST endpoints (the USD-M listenKey, the dead-man switch, reconciliation
queries the WebSocket API does not offer, exchangeInfo), over one kept-alive aiohttp session.

A signed request's query string is built here, in the order given, ``timestamp`` and ``recvWindow``
appended, signed (HMAC hex, or Ed25519 base64 percent-encoded), and sent as it was signed; the API
key goes in ``X-MBX-APIKEY``. Every answer's ``X-MBX-USED-WEIGHT-1M`` / ``X-MBX-ORDER-COUNT-*``
headers correct the rate limits; a 429 / 418 is noted there too. Errors are ``ApiError`` (the
venue's code and message), ``TimeoutError`` and ``ConnectionError``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import msgspec

from avmm.live.clock import ClockOffset
from avmm.live.keys import Keys
from avmm.live.limits import RateLimits
from avmm.live.ws_api import ApiError
from avmm.venues.binance.private import DECODE_ERROR


class SignedRest:
    def __init__(
        self,
        base: str,
        keys: Keys | None,
        clock: ClockOffset,
        limits: RateLimits,
        timeout_s: float = 10.0,
        recv_window_ms: float = 1000.0,
    ) -> None:
        self.base = base.rstrip("/")
        self.keys = keys
        self.clock = clock
        self.limits = limits
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.recv_window_ms = recv_window_ms
        self.session: aiohttp.ClientSession | None = None
        self.n_requests = 0
        self.resync: Any = None  # an async callable taking a clock sample (the gateway's)

    def _query(self, params: dict[str, Any] | None, signed: bool) -> str:
        p = {k: _text(v) for k, v in (params or {}).items()}
        if not signed:
            return urlencode(p)
        assert self.keys is not None
        p["recvWindow"] = str(int(self.recv_window_ms))
        p["timestamp"] = str(self.clock.timestamp_ms())
        q = urlencode(p)
        sig = self.keys.sign(q.encode())
        return f"{q}&signature={quote(sig, safe='')}"

    async def request(
        self, method: str, path: str, params: dict[str, Any] | None = None, *, signed: bool = True, key: bool = True
    ) -> bytes:
        """The body of a 200 answer; ``ApiError`` for another status (429 / 418 noted in the limits).
        A signed request refused for its timestamp (-1021) is sent again once, after ``resync()``."""
        try:
            return await self._request(method, path, params, signed, key)
        except ApiError as e:
            if not signed or e.code != -1021 or self.resync is None:
                raise
            self.clock.invalidate()
            await self.resync()
            return await self._request(method, path, params, signed, key)

    async def _request(self, method: str, path: str, params: dict[str, Any] | None, signed: bool, key: bool) -> bytes:
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=self.timeout)
        q = self._query(params, signed)
        url = f"{self.base}{path}" + (f"?{q}" if q else "")
        headers = {}
        if key and self.keys is not None:
            headers["X-MBX-APIKEY"] = self.keys.api_key.reveal()
        self.n_requests += 1
        try:
            async with self.session.request(method, url, headers=headers) as r:
                body = await r.read()
                self.limits.update_headers(r.headers)
                if r.status == 200:
                    return body
                code, msg = 0, ""
                try:
                    e = DECODE_ERROR.decode(body)
                    code, msg = e.code, e.msg
                except msgspec.MsgspecError:
                    msg = body[:200].decode("utf-8", "replace")
                retry = r.headers.get("Retry-After", "")
                ra = float(retry) if retry.replace(".", "", 1).isdigit() else 0.0
                if r.status == 418:
                    self.limits.ban(f"{method} {path}: HTTP 418 (the IP is banned): {msg}")
                elif r.status == 429 or code == -1003:
                    self.limits.too_many(ra)
                raise ApiError(f"{method} {path}", r.status, code, msg, ra)
        except TimeoutError:
            raise TimeoutError(f"{method} {path}: no answer") from None
        except aiohttp.ClientError as e:
            raise ConnectionError(f"{method} {path}: {type(e).__name__}") from None

    async def json(self, method: str, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        return msgspec.json.decode(await self.request(method, path, params, **kw))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
