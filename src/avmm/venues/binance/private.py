"""Binance's private messages as msgspec structs: the WebSocket API's responses and the user data
events (spot inline on the WebSocket API, USD-M on the listenKey stream).

* ``ApiFrame`` -- anything the WebSocket API sends: a response ``{"id", "status", "result" |
  "error", "rateLimits"}`` or, once ``userDataStream.subscribe`` is on, an event
  ``{"subscriptionId", "event"}``. ``result`` and ``event`` stay raw until the caller knows what
  they are.
* spot events (tag ``e``): ``ExecutionReport`` (``executionReport``), ``AccountPosition``
  (``outboundAccountPosition``), ``BalanceUpdate``, ``StreamTerminated`` (``eventStreamTerminated``);
* USD-M events: ``OrderTradeUpdate`` (``ORDER_TRADE_UPDATE``, the order in ``o``),
  ``AccountUpdate`` (``ACCOUNT_UPDATE``), ``TradeLite`` (``TRADE_LITE``), ``ListenKeyExpired``
  (``listenKeyExpired``); bare or in a combined-stream envelope ``{"stream", "data"}``;
* the REST / WebSocket API answers the gateway reads: ``OrderInfo`` (``order.status``,
  ``openOrders.status``, REST ``openOrders``), ``MyTrade`` (``myTrades`` / ``userTrades``),
  ``PositionRisk``, ``SpotAccount``, ``Ack`` (an order's ``ACK``).

Field names are Binance's (one letter, case matters: ``c`` the client id, ``C`` the original one of
a cancel; ``x`` the execution type, ``X`` the order status; ``t`` the trade id, ``T`` the time);
numbers given as decimal strings are decoded as floats (``strict=False``). Events of a kind not
listed decode as ``Other`` (counted by the caller, never an error).
"""

from __future__ import annotations

from typing import Any

import msgspec

from avmm.venues.binance.messages import Id, Ms


class RateCount(msgspec.Struct, gc=False):
    rateLimitType: str
    interval: str
    intervalNum: int
    limit: int = 0
    count: int = 0


class ApiErrorBody(msgspec.Struct, gc=False):
    code: int = 0
    msg: str = ""
    data: msgspec.Raw = msgspec.Raw()


class ApiFrame(msgspec.Struct, gc=False):
    id: int | str | None = None
    status: int = 0
    result: msgspec.Raw = msgspec.Raw()
    error: ApiErrorBody | None = None
    rateLimits: list[RateCount] | None = None
    subscriptionId: int | None = None
    event: msgspec.Raw = msgspec.Raw()


# --- spot user data ---------------------------------------------------------------------------------
class ExecutionReport(msgspec.Struct, tag_field="e", tag="executionReport", gc=False):
    E: Ms = 0
    s: str = ""
    c: str = ""  # client order id (of the cancel request, for a cancel)
    S: str = ""  # BUY / SELL
    o: str = ""
    q: float = 0.0
    p: float = 0.0
    x: str = ""  # NEW CANCELED REPLACED REJECTED TRADE EXPIRED TRADE_PREVENTION
    X: str = ""  # order status
    r: str = ""  # reject reason
    i: Id = 0  # order id
    l: float = 0.0  # noqa: E741 (last executed quantity)
    z: float = 0.0  # cumulative filled
    L: float = 0.0  # last price
    n: float = 0.0  # commission
    N: str | None = None  # commission asset
    T: Ms = 0  # transaction time
    t: Id = -1  # trade id
    m: bool = False  # maker
    C: str = ""  # original client order id (cancel)
    w: bool = False  # working


class AccountPosition(msgspec.Struct, tag_field="e", tag="outboundAccountPosition", gc=False):
    E: Ms = 0
    u: Ms = 0
    B: list[dict[str, Any]] = []


class BalanceUpdate(msgspec.Struct, tag_field="e", tag="balanceUpdate", gc=False):
    E: Ms = 0
    a: str = ""
    d: float = 0.0
    T: Ms = 0


class StreamTerminated(msgspec.Struct, tag_field="e", tag="eventStreamTerminated", gc=False):
    E: Ms = 0


# --- USD-M user data --------------------------------------------------------------------------------
class FutOrder(msgspec.Struct, gc=False):
    s: str = ""
    c: str = ""
    S: str = ""
    o: str = ""
    q: float = 0.0
    p: float = 0.0
    x: str = ""  # NEW CANCELED CALCULATED EXPIRED TRADE AMENDMENT
    X: str = ""
    i: Id = 0
    l: float = 0.0  # noqa: E741
    z: float = 0.0
    L: float = 0.0
    N: str | None = None
    n: float = 0.0
    T: Ms = 0
    t: Id = 0
    m: bool = False
    R: bool = False  # reduce only
    ps: str = ""
    rp: float = 0.0


class OrderTradeUpdate(msgspec.Struct, tag_field="e", tag="ORDER_TRADE_UPDATE", gc=False):
    E: Ms = 0
    T: Ms = 0
    o: FutOrder = msgspec.field(default_factory=FutOrder)


class FutBalance(msgspec.Struct, gc=False):
    a: str = ""
    wb: float = 0.0
    cw: float = 0.0
    bc: float = 0.0


class FutPosition(msgspec.Struct, gc=False):
    s: str = ""
    pa: float = 0.0
    ep: float = 0.0
    ps: str = ""


class FutAccount(msgspec.Struct, gc=False):
    m: str = ""
    B: list[FutBalance] = []
    P: list[FutPosition] = []


class AccountUpdate(msgspec.Struct, tag_field="e", tag="ACCOUNT_UPDATE", gc=False):
    E: Ms = 0
    T: Ms = 0
    a: FutAccount = msgspec.field(default_factory=FutAccount)


class TradeLite(msgspec.Struct, tag_field="e", tag="TRADE_LITE", gc=False):
    E: Ms = 0
    T: Ms = 0
    s: str = ""
    c: str = ""
    S: str = ""
    q: float = 0.0
    p: float = 0.0
    l: float = 0.0  # noqa: E741
    L: float = 0.0
    t: Id = 0
    i: Id = 0
    m: bool = False


class ListenKeyExpired(msgspec.Struct, tag_field="e", tag="listenKeyExpired", gc=False):
    E: Ms = 0


class Other(msgspec.Struct, gc=False):
    e: str = ""
    E: Ms = 0


SpotEvent = ExecutionReport | AccountPosition | BalanceUpdate | StreamTerminated
FutEvent = OrderTradeUpdate | AccountUpdate | TradeLite | ListenKeyExpired


class FutEnvelope(msgspec.Struct, gc=False):
    stream: str = ""
    data: msgspec.Raw = msgspec.Raw()


# --- answers ----------------------------------------------------------------------------------------
class OrderInfo(msgspec.Struct, gc=False):
    symbol: str = ""
    orderId: Id = 0
    clientOrderId: str = ""
    price: float = 0.0
    origQty: float = 0.0
    executedQty: float = 0.0
    status: str = ""
    side: str = ""
    type: str = ""
    time: Ms = 0
    updateTime: Ms = 0
    transactTime: Ms = 0


class Ack(msgspec.Struct, gc=False):
    """``newOrderRespType=ACK`` (spot) / the USD-M order answer (``order.place``, ``order.modify``)."""

    symbol: str = ""
    orderId: Id = 0
    clientOrderId: str = ""
    transactTime: Ms = 0
    updateTime: Ms = 0
    status: str = ""
    executedQty: float = 0.0


class CancelReplace(msgspec.Struct, gc=False):
    cancelResult: str = ""
    newOrderResult: str = ""
    cancelResponse: msgspec.Raw = msgspec.Raw()
    newOrderResponse: msgspec.Raw = msgspec.Raw()


class MyTrade(msgspec.Struct, gc=False):
    """``myTrades`` (spot: ``isBuyer``, ``isMaker``, ``commission``) / ``userTrades`` (USD-M:
    ``buyer``, ``maker``, ``side``)."""

    symbol: str = ""
    id: Id = 0
    orderId: Id = 0
    price: float = 0.0
    qty: float = 0.0
    commission: float = 0.0
    commissionAsset: str = ""
    time: Ms = 0
    isBuyer: bool | None = None
    isMaker: bool | None = None
    buyer: bool | None = None
    maker: bool | None = None
    side: str = ""


class PositionRisk(msgspec.Struct, gc=False):
    symbol: str = ""
    positionAmt: float = 0.0
    entryPrice: float = 0.0
    positionSide: str = "BOTH"


class SpotBalance(msgspec.Struct, gc=False):
    asset: str = ""
    free: float = 0.0
    locked: float = 0.0


class SpotAccount(msgspec.Struct, gc=False):
    balances: list[SpotBalance] = []


class ServerTime(msgspec.Struct, gc=False):
    serverTime: Ms = 0


class Logon(msgspec.Struct, gc=False):
    serverTime: Ms = 0
    authorizedSince: Ms = 0
    userDataStream: bool = False


class ListenKey(msgspec.Struct, gc=False):
    listenKey: str = ""


class Subscribed(msgspec.Struct, gc=False):
    subscriptionId: int = 0


def _dec(t: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(t, strict=False)


DECODE_FRAME = _dec(ApiFrame)
DECODE_SPOT_EVENT = _dec(SpotEvent)
DECODE_FUT_EVENT = _dec(FutEvent)
DECODE_FUT_ENVELOPE = _dec(FutEnvelope)
DECODE_OTHER = _dec(Other)
DECODE_ORDER = _dec(OrderInfo)
DECODE_ORDERS = _dec(list[OrderInfo])
DECODE_ACK = _dec(Ack)
DECODE_CANCEL_REPLACE = _dec(CancelReplace)
DECODE_TRADES = _dec(list[MyTrade])
DECODE_POSITIONS = _dec(list[PositionRisk])
DECODE_SPOT_ACCOUNT = _dec(SpotAccount)
DECODE_SERVER_TIME = _dec(ServerTime)
DECODE_LOGON = _dec(Logon)
DECODE_LISTEN_KEY = _dec(ListenKey)
DECODE_SUBSCRIBED = _dec(Subscribed)
DECODE_ERROR = _dec(ApiErrorBody)


def side_of(s: str) -> int:
    """``BUY`` -> +1, ``SELL`` -> -1."""
    return 1 if s == "BUY" else -1
