"""The user data streams: what the venue says about our orders, fills and account.

* Spot: on the WebSocket API connection itself (``userDataStream.subscribe`` after ``session.logon``;
  ``userDataStream.subscribe.signature`` with an HMAC key): the events arrive as
  ``{"subscriptionId", "event"}`` frames, in one ordered stream with the responses
  (``BinanceGateway._on_spot_event``). ``eventStreamTerminated`` ends it: the gateway subscribes
  again and reconciles.
* USD-M: a listenKey (``POST /fapi/v1/listenKey``, kept alive by ``PUT`` every
  ``venue.listen_key_keepalive_s``) and the stream ``<stream_url>/private/ws?listenKey=KEY``
  (``FuturesUserStream``): ``ORDER_TRADE_UPDATE`` (the order reports, fills included),
  ``ACCOUNT_UPDATE``, ``listenKeyExpired`` (a new key, a new stream, a reconciliation).

Either stream lost, the gateway stops quoting until it is back and reconciled (fills may have been
missed meanwhile: the reconciliation fetches them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import msgspec

from avmm.live.ws import Conn, connect
from avmm.live.ws_api import ApiError
from avmm.venues.binance.private import (
    DECODE_FUT_ENVELOPE,
    DECODE_FUT_EVENT,
    DECODE_LISTEN_KEY,
    DECODE_SUBSCRIBED,
    AccountUpdate,
    ListenKeyExpired,
    OrderTradeUpdate,
)

if TYPE_CHECKING:
    from avmm.live.binance import BinanceGateway

log = logging.getLogger("avmm.live")
LISTEN_KEY_PATH = "/fapi/v1/listenKey"


async def subscribe_spot(gw: BinanceGateway) -> int:
    """Spot: the user data on the WebSocket API connection; the subscription's id."""
    if gw.api.logged_on:
        res = await gw.api.call("userDataStream.subscribe", raw=True)
    else:
        res = await gw.api.call("userDataStream.subscribe.signature", {}, signed=True, raw=True)
    return DECODE_SUBSCRIBED.decode(res).subscriptionId if res else 0


class FuturesUserStream:
    """USD-M's listenKey stream of one gateway."""

    def __init__(self, gw: BinanceGateway) -> None:
        self.gw = gw
        self.key = ""
        self.conn: Conn | None = None
        self.frames = 0
        self.bad = 0
        self.expired = 0
        self.keepalives = 0
        self.closed = True

    def url(self) -> str:
        return f"{self.gw.stream_url}/private/ws?listenKey={self.key}"

    async def start(self) -> None:
        """A listenKey (the account's active one, or a new one) and the stream on it."""
        body = await self.gw.rest.request("POST", LISTEN_KEY_PATH, signed=False)
        self.key = DECODE_LISTEN_KEY.decode(body).listenKey
        if not self.key:
            raise ApiError("POST /fapi/v1/listenKey", 200, 0, "no listenKey in the answer")
        self.close()
        self.conn = await connect(self.url(), self._frame, self._closed, self.gw.vcfg.connect_timeout_s)
        self.closed = False

    async def keepalive(self) -> None:
        await self.gw.rest.request("PUT", LISTEN_KEY_PATH, signed=False)
        self.keepalives += 1

    async def stop(self) -> None:
        self.close()
        if self.key:
            with contextlib.suppress(ApiError, TimeoutError, ConnectionError):
                await self.gw.rest.request("DELETE", LISTEN_KEY_PATH, signed=False)
            self.key = ""

    def close(self) -> None:
        c, self.conn = self.conn, None
        if c is not None:
            self.closed = True
            c.close()

    def _closed(self, conn: Conn) -> None:
        if conn is not self.conn:
            return  # an old connection
        self.conn = None
        self.closed = True
        self.gw._stream_lost("closed")

    def _frame(self, conn: Conn, data: bytes, local_ns: int) -> None:
        self.frames += 1
        if data[:10].find(b'"stream"') >= 0 or data.startswith(b'{"stream"'):
            try:
                env = DECODE_FUT_ENVELOPE.decode(data)
            except msgspec.MsgspecError:
                self.bad += 1
                return
            if not env.data:
                return
            data = bytes(env.data)
        try:
            ev = DECODE_FUT_EVENT.decode(data)
        except msgspec.MsgspecError:
            return  # another event kind (MARGIN_CALL, TRADE_LITE fields missing, ...)
        t = type(ev)
        if t is OrderTradeUpdate:
            o = ev.o
            if o.s and o.s != self.gw.symbol:
                return
            self.gw.on_report(o.x, o.X, o.c, o.i, o.S, o.l, o.L, o.n, o.N, o.t, o.m, o.T or ev.T or ev.E, local_ns, o.z)
        elif t is ListenKeyExpired:
            self.expired += 1
            log.warning("USD-M listenKey expired: a new one, then a reconciliation")
            if conn is self.conn:
                self.conn = None
                self.closed = True
                conn.close()
            self.gw._stream_lost("listenKeyExpired")
        elif t is AccountUpdate:
            self.gw.on_account(ev)

    async def keep(self, period_s: float) -> None:
        """The keepalive loop (``PUT`` every ``period_s``)."""
        while True:
            await asyncio.sleep(period_s)
            if self.key:
                try:
                    await self.keepalive()
                except (ApiError, TimeoutError, ConnectionError) as e:
                    log.warning("listenKey keepalive failed: %s", e)

    def status(self) -> dict[str, Any]:
        return {"user_frames": self.frames, "listen_key_expired": self.expired, "keepalives": self.keepalives}
