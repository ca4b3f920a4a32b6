"""The venue's REST endpoints the feed needs (the depth snapshot), over one kept-alive aiohttp
session."""

from __future__ import annotations

import time

import aiohttp
import msgspec

from avmm.venues.binance.messages import DECODE_API_ERROR

DEPTH_PATH = {"binance-spot": "/api/v3/depth", "binance-um": "/fapi/v1/depth"}
MAX_LIMIT = {"binance-spot": 5000, "binance-um": 1000}


class RestError(Exception):
    """A request that failed: ``status`` (0: no answer), ``retry_after`` in s (0: none given)."""

    def __init__(self, text: str, status: int = 0, retry_after: float = 0.0) -> None:
        super().__init__(text)
        self.status = status
        self.retry_after = retry_after


WEIGHT_LIMIT_1M = {"binance-spot": 6000, "binance-um": 2400}  # REQUEST_WEIGHT per minute (exchangeInfo)


def depth_weight(venue: str, limit: int) -> int:
    """The request weight of a depth snapshot of ``limit`` levels (Binance's tables)."""
    if venue == "binance-spot":
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


class Rest:
    """``GET`` requests to ``base`` (``venue.rest_url``) with a timeout; errors as ``RestError``.
    ``used_weight`` is the venue's last ``X-MBX-USED-WEIGHT-1M`` (the IP's weight this minute) and
    ``weight_minute`` the minute (``time.time() // 60``) it was read in."""

    def __init__(self, base: str, venue: str, timeout: float) -> None:
        self.base = base
        self.venue = venue
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.session: aiohttp.ClientSession | None = None
        self.used_weight = 0
        self.weight_minute = 0

    def weight_wait_s(self, cost: int, share: float, now: float) -> float:
        """Seconds to wait before a request of ``cost`` so that this minute's weight stays within
        ``share`` of the venue's limit (0: now). Binance counts per IP and per wall-clock minute."""
        minute = int(now // 60)
        used = self.used_weight if minute == self.weight_minute else 0
        if used == 0 or used + cost <= share * WEIGHT_LIMIT_1M[self.venue]:  # one a minute at least
            return 0.0
        return (minute + 1) * 60.0 - now

    async def get(self, path: str, params: dict[str, str]) -> bytes:
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=self.timeout)
        url = self.base + path
        try:
            async with self.session.get(url, params=params) as r:
                body = await r.read()
                w = r.headers.get("X-MBX-USED-WEIGHT-1M", "")
                if w.isdigit():
                    self.used_weight, self.weight_minute = int(w), int(time.time() // 60)
                if r.status == 200:
                    return body
                retry = r.headers.get("Retry-After", "")
                raise RestError(
                    f"GET {path}: HTTP {r.status}{_api_msg(body)}",
                    r.status,
                    float(retry) if retry.replace(".", "", 1).isdigit() else 0.0,
                )
        except (TimeoutError, aiohttp.ClientError) as e:
            raise RestError(f"GET {url}: {type(e).__name__}: {e}".rstrip(": ")) from None

    async def depth(self, symbol: str, limit: int) -> bytes:
        """The raw body of the depth snapshot of ``symbol`` (``limit`` levels a side)."""
        limit = min(limit, MAX_LIMIT[self.venue])
        return await self.get(DEPTH_PATH[self.venue], {"symbol": symbol.upper(), "limit": str(limit)})

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


def _api_msg(body: bytes) -> str:
    try:
        e = DECODE_API_ERROR.decode(body)
    except msgspec.MsgspecError:
        return ""
    return f" (code {e.code}: {e.msg})" if e.code or e.msg else ""
