"""Binance's private payloads: orders, trades, accounts and user-data events, as the spot and USD-M
documentation shows them (field names and order; prices, sizes and amounts as decimal strings, ids
and times as integers).

Spot (``binance-spot-api-docs``: ``web-socket-api.md``, ``user-data-stream.md``): the order answers
``ACK`` / ``RESULT`` / ``FULL`` (``order_response``), the query (``order_status``), the cancel report
(``cancel_report``), the amend answer (``amend_response``), ``account.status`` (``spot_account``),
``myTrades`` (``spot_trade``), ``executionReport`` and ``outboundAccountPosition``.
USD-M (derivatives docs, ``/fapi``, ``ws-fapi``): the order (``um_order``), ``ORDER_TRADE_UPDATE``,
``TRADE_LITE``, ``ACCOUNT_UPDATE``, ``/fapi/v2|v3/account`` (``um_account``), ``positionRisk``
(``um_position``), ``userTrades`` (``um_trade``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

STP_SPOT = "EXPIRE_MAKER"  # the symbol's defaultSelfTradePreventionMode (exchangeInfo)
STP_UM = "EXPIRE_MAKER"
AMT = 8  # decimals of amounts (commission, quote totals, balances)


@dataclass(slots=True)
class Order:
    """One order as Binance reports it (the exchange model holds its live part under ``order_id``)."""

    order_id: int
    cid: str
    side: int  # +1 buy, -1 sell
    otype: str  # LIMIT, LIMIT_MAKER
    tif: str  # GTC, GTX
    price: float
    qty: float  # the order's quantity (origQty; an amend changes it)
    time_ms: int
    executed: float = 0.0
    quote: float = 0.0  # cumulative quote transacted
    fee: float = 0.0  # cumulative commission (quote asset)
    realized: float = 0.0  # USD-M: realized profit of its fills
    status: str = "NEW"
    update_ms: int = 0
    working_ms: int = -1  # when it went on the book (-1: never)
    orig_cid: str = ""  # the client order id it had before a cancel / amend renamed it
    reduce_only: bool = False
    foreign: bool = False  # on the account's book, not placed by its client (the ``foreign`` fault)
    trades: list[int] = field(default_factory=list)  # indices into the account's trades

    @property
    def leaves(self) -> float:
        return self.qty - self.executed

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


@dataclass(slots=True)
class Trade:
    """One execution of one of our orders."""

    trade_id: int
    order_id: int
    side: int
    price: float
    qty: float
    fee: float
    maker: bool
    time_ms: int
    realized: float = 0.0  # USD-M


@dataclass(slots=True)
class Fmt:
    """The symbol's names and decimals."""

    symbol: str
    base: str
    quote: str
    pdec: int
    qdec: int

    def p(self, x: float) -> str:
        return f"{x:.{self.pdec}f}"

    def q(self, x: float) -> str:
        return f"{x:.{self.qdec}f}"


def a(x: float, dec: int = AMT) -> str:
    """An amount (commission, balance, quote total) as a decimal string."""
    s = f"{x:.{dec}f}"
    return "0." + "0" * dec if s.startswith("-") and float(s) == 0.0 else s


def side_name(side: int) -> str:
    return "BUY" if side > 0 else "SELL"


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# -- spot ------------------------------------------------------------------------------------------
def order_response(f: Fmt, o: Order, kind: str, t_ms: int, fills: list[Trade] | None = None) -> dict[str, Any]:
    """``order.place`` / ``POST /api/v3/order``: ``ACK``, ``RESULT`` or ``FULL``."""
    out: dict[str, Any] = {
        "symbol": f.symbol,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.cid,
        "transactTime": t_ms,
    }
    if kind == "ACK":
        return out
    out.update(
        price=f.p(o.price),
        origQty=f.q(o.qty),
        executedQty=f.q(o.executed),
        origQuoteOrderQty=a(0.0),
        cummulativeQuoteQty=a(o.quote),
        status=o.status,
        timeInForce=o.tif,
        type=o.otype,
        side=side_name(o.side),
    )
    if o.working_ms >= 0:
        out["workingTime"] = o.working_ms
    if kind == "FULL":
        out["fills"] = [
            {
                "price": f.p(t.price),
                "qty": f.q(t.qty),
                "commission": a(t.fee),
                "commissionAsset": f.quote,
                "tradeId": t.trade_id,
            }
            for t in fills or []
        ]
    out["selfTradePreventionMode"] = STP_SPOT
    return out


def order_status(f: Fmt, o: Order) -> dict[str, Any]:
    """``order.status`` / ``GET /api/v3/order`` and each of ``openOrders``."""
    return {
        "symbol": f.symbol,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.cid,
        "price": f.p(o.price),
        "origQty": f.q(o.qty),
        "executedQty": f.q(o.executed),
        "cummulativeQuoteQty": a(o.quote),
        "status": o.status,
        "timeInForce": o.tif,
        "type": o.otype,
        "side": side_name(o.side),
        "stopPrice": f.p(0.0),
        "icebergQty": f.q(0.0),
        "time": o.time_ms,
        "updateTime": o.update_ms,
        "isWorking": o.working_ms >= 0,
        "workingTime": o.working_ms,
        "origQuoteOrderQty": a(0.0),
        "selfTradePreventionMode": STP_SPOT,
    }


def cancel_report(f: Fmt, o: Order, t_ms: int) -> dict[str, Any]:
    """``order.cancel`` / ``DELETE /api/v3/order`` and each of ``openOrders.cancelAll``."""
    return {
        "symbol": f.symbol,
        "origClientOrderId": o.orig_cid,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.cid,
        "transactTime": t_ms,
        "price": f.p(o.price),
        "origQty": f.q(o.qty),
        "executedQty": f.q(o.executed),
        "origQuoteOrderQty": a(0.0),
        "cummulativeQuoteQty": a(o.quote),
        "status": o.status,
        "timeInForce": o.tif,
        "type": o.otype,
        "side": side_name(o.side),
        "selfTradePreventionMode": STP_SPOT,
    }


def amend_response(f: Fmt, o: Order, t_ms: int, execution_id: int) -> dict[str, Any]:
    """``order.amend.keepPriority`` / ``PUT /api/v3/order/amend/keepPriority``."""
    return {
        "transactTime": t_ms,
        "executionId": execution_id,
        "amendedOrder": {
            "symbol": f.symbol,
            "orderId": o.order_id,
            "orderListId": -1,
            "origClientOrderId": o.orig_cid,
            "clientOrderId": o.cid,
            "price": f.p(o.price),
            "qty": f.q(o.qty),
            "executedQty": f.q(o.executed),
            "preventedQty": f.q(0.0),
            "quoteOrderQty": a(0.0),
            "cumulativeQuoteQty": a(o.quote),
            "status": o.status,
            "timeInForce": o.tif,
            "type": o.otype,
            "side": side_name(o.side),
            "workingTime": o.working_ms,
            "selfTradePreventionMode": STP_SPOT,
        },
    }


def spot_trade(f: Fmt, t: Trade) -> dict[str, Any]:
    """One of ``myTrades`` / ``GET /api/v3/myTrades``."""
    return {
        "symbol": f.symbol,
        "id": t.trade_id,
        "orderId": t.order_id,
        "orderListId": -1,
        "price": f.p(t.price),
        "qty": f.q(t.qty),
        "quoteQty": a(t.price * t.qty),
        "commission": a(t.fee),
        "commissionAsset": f.quote,
        "time": t.time_ms,
        "isBuyer": t.side > 0,
        "isMaker": t.maker,
        "isBestMatch": True,
    }


def spot_account(
    f: Fmt, maker: float, taker: float, balances: list[tuple[str, float, float]], t_ms: int, uid: int
) -> dict[str, Any]:
    """``account.status`` / ``GET /api/v3/account``."""
    return {
        "makerCommission": round(maker * 1e4),
        "takerCommission": round(taker * 1e4),
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {"maker": a(maker), "taker": a(taker), "buyer": a(0.0), "seller": a(0.0)},
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": t_ms,
        "accountType": "SPOT",
        "balances": [{"asset": x, "free": a(fr), "locked": a(lk)} for x, fr, lk in balances],
        "permissions": ["SPOT"],
        "uid": uid,
    }


def execution_report(
    f: Fmt, o: Order, x: str, e_ms: int, exec_id: int, tr: Trade | None = None, reject: str = "NONE"
) -> dict[str, Any]:
    """``executionReport`` (``x``: NEW, CANCELED, REPLACED, REJECTED, TRADE, EXPIRED)."""
    ev: dict[str, Any] = {
        "e": "executionReport",
        "E": e_ms,
        "s": f.symbol,
        "c": o.cid,
        "S": side_name(o.side),
        "o": o.otype,
        "f": o.tif,
        "q": f.q(o.qty),
        "p": f.p(o.price),
        "P": f.p(0.0),
        "F": f.q(0.0),
        "g": -1,
        "C": o.orig_cid if x in ("CANCELED", "REPLACED") else "",
        "x": x,
        "X": o.status,
        "r": reject,
        "i": o.order_id,
        "l": f.q(tr.qty if tr else 0.0),
        "z": f.q(o.executed),
        "L": f.p(tr.price if tr else 0.0),
        "n": a(tr.fee) if tr else "0",
        "N": f.quote if tr else None,
        "T": tr.time_ms if tr else o.update_ms,
        "t": tr.trade_id if tr else -1,
        "I": exec_id,
        "w": o.is_open and o.working_ms >= 0,
        "m": bool(tr.maker) if tr else False,
        "M": False,
        "O": o.time_ms,
        "Z": a(o.quote),
        "Y": a(tr.price * tr.qty if tr else 0.0),
        "Q": a(0.0),
    }
    if o.working_ms >= 0:
        ev["W"] = o.working_ms
    ev["V"] = STP_SPOT
    return ev


def account_position(e_ms: int, balances: list[tuple[str, float, float]]) -> dict[str, Any]:
    """``outboundAccountPosition``."""
    return {
        "e": "outboundAccountPosition",
        "E": e_ms,
        "u": e_ms,
        "B": [{"a": x, "f": a(fr), "l": a(lk)} for x, fr, lk in balances],
    }


# -- USD-M -----------------------------------------------------------------------------------------
def um_order(f: Fmt, o: Order, *, with_time: bool = False, cum_qty: bool = True) -> dict[str, Any]:
    """A USD-M order: the answer of ``order.place`` / ``cancel`` / ``modify`` and of the REST
    ``/fapi/v1/order`` (``cum_qty``), the query (``with_time``: ``time`` added, ``cumQty`` not)."""
    avg = o.quote / o.executed if o.executed > 0 else 0.0
    out: dict[str, Any] = {
        "orderId": o.order_id,
        "symbol": f.symbol,
        "status": o.status,
        "clientOrderId": o.cid,
        "price": f.p(o.price),
        "avgPrice": f.p(avg) if o.executed > 0 else "0",
        "origQty": f.q(o.qty),
        "executedQty": f.q(o.executed),
    }
    if cum_qty:
        out["cumQty"] = f.q(o.executed)
    out.update(
        cumQuote=a(o.quote),
        timeInForce=o.tif,
        type=o.otype,
        reduceOnly=o.reduce_only,
        closePosition=False,
        side=side_name(o.side),
        positionSide="BOTH",
        stopPrice="0",
        workingType="CONTRACT_PRICE",
        priceProtect=False,
        origType=o.otype,
        priceMatch="NONE",
        selfTradePreventionMode=STP_UM,
        goodTillDate=0,
    )
    if with_time:
        out["time"] = o.time_ms
    out["updateTime"] = o.update_ms
    return out


def order_trade_update(
    f: Fmt, o: Order, x: str, e_ms: int, bids: float, asks: float, tr: Trade | None = None
) -> dict[str, Any]:
    """``ORDER_TRADE_UPDATE`` (``x``: NEW, CANCELED, CALCULATED, EXPIRED, TRADE, AMENDMENT)."""
    avg = o.quote / o.executed if o.executed > 0 else 0.0
    od: dict[str, Any] = {
        "s": f.symbol,
        "c": o.cid,
        "S": side_name(o.side),
        "o": o.otype,
        "f": o.tif,
        "q": f.q(o.qty),
        "p": f.p(o.price),
        "ap": f.p(avg) if o.executed > 0 else "0",
        "sp": "0",
        "x": x,
        "X": o.status,
        "i": o.order_id,
        "l": f.q(tr.qty if tr else 0.0),
        "z": f.q(o.executed),
        "L": f.p(tr.price if tr else 0.0),
    }
    if tr is not None:
        od["N"] = f.quote
        od["n"] = a(tr.fee)
    od.update(
        T=tr.time_ms if tr else o.update_ms,
        t=tr.trade_id if tr else 0,
        b=a(bids),
        a=a(asks),
        m=bool(tr.maker) if tr else False,
        R=o.reduce_only,
        wt="CONTRACT_PRICE",
        ot=o.otype,
        ps="BOTH",
        cp=False,
        rp=a(tr.realized if tr else 0.0),
        pP=False,
        si=0,
        ss=0,
        V=STP_UM,
        pm="NONE",
        gtd=0,
    )
    return {"e": "ORDER_TRADE_UPDATE", "E": e_ms, "T": tr.time_ms if tr else o.update_ms, "o": od}


def trade_lite(f: Fmt, o: Order, tr: Trade, e_ms: int) -> dict[str, Any]:
    """``TRADE_LITE``: a fill, in few fields."""
    return {
        "e": "TRADE_LITE",
        "E": e_ms,
        "T": tr.time_ms,
        "s": f.symbol,
        "q": f.q(o.qty),
        "p": f.p(o.price),
        "m": tr.maker,
        "c": o.cid,
        "S": side_name(o.side),
        "L": f.p(tr.price),
        "l": f.q(tr.qty),
        "t": tr.trade_id,
        "i": o.order_id,
    }


@dataclass(slots=True)
class Position:
    """A USD-M account's figures (one-way mode, cross margin), marked to ``mark``."""

    amt: float
    entry: float
    mark: float
    wallet: float
    leverage: float
    mmr: float
    bid_notional: float
    ask_notional: float
    update_ms: int

    @property
    def unrealized(self) -> float:
        return self.amt * (self.mark - self.entry) if self.amt else 0.0

    @property
    def notional(self) -> float:
        return self.amt * self.mark

    @property
    def initial(self) -> float:
        return abs(self.notional) / self.leverage

    @property
    def open_initial(self) -> float:
        return max(self.bid_notional, self.ask_notional) / self.leverage

    @property
    def maint(self) -> float:
        return abs(self.notional) * self.mmr

    @property
    def available(self) -> float:
        return self.wallet + self.unrealized - self.initial - self.open_initial

    def liquidation(self) -> float:
        """The mark at which the margin balance falls to the maintenance margin (0: none)."""
        q = self.amt
        if q == 0.0:
            return 0.0
        k = self.wallet - q * self.entry
        den = abs(q) * self.mmr - q
        if den == 0.0:
            return 0.0
        liq = k / den
        return liq if liq > 0.0 else 0.0


def account_update(f: Fmt, p: Position, reason: str, e_ms: int, t_ms: int) -> dict[str, Any]:
    """``ACCOUNT_UPDATE`` (``m``: the reason, ``ORDER`` for a fill)."""
    return {
        "e": "ACCOUNT_UPDATE",
        "E": e_ms,
        "T": t_ms,
        "a": {
            "m": reason,
            "B": [{"a": f.quote, "wb": a(p.wallet), "cw": a(p.wallet), "bc": "0"}],
            "P": [
                {
                    "s": f.symbol,
                    "pa": f.q(p.amt),
                    "ep": a(p.entry),
                    "bep": a(p.entry),
                    "cr": "0",
                    "up": a(p.unrealized),
                    "mt": "cross",
                    "iw": "0",
                    "ps": "BOTH",
                }
            ],
        },
    }


def um_position(f: Fmt, p: Position, v3: bool = False) -> dict[str, Any]:
    """One of ``/fapi/v2/positionRisk`` (``account.position``) or ``/fapi/v3/positionRisk``."""
    if v3:
        return {
            "symbol": f.symbol,
            "positionSide": "BOTH",
            "positionAmt": f.q(p.amt),
            "entryPrice": a(p.entry),
            "breakEvenPrice": a(p.entry),
            "markPrice": a(p.mark),
            "unRealizedProfit": a(p.unrealized),
            "liquidationPrice": a(p.liquidation()),
            "isolatedMargin": "0",
            "notional": a(p.notional),
            "marginAsset": f.quote,
            "isolatedWallet": "0",
            "initialMargin": a(p.initial + p.open_initial),
            "maintMargin": a(p.maint),
            "positionInitialMargin": a(p.initial),
            "openOrderInitialMargin": a(p.open_initial),
            "adl": 0,
            "bidNotional": a(p.bid_notional),
            "askNotional": a(p.ask_notional),
            "updateTime": p.update_ms,
        }
    return {
        "entryPrice": a(p.entry),
        "breakEvenPrice": a(p.entry),
        "marginType": "cross",
        "isAutoAddMargin": "false",
        "isolatedMargin": "0.00000000",
        "leverage": str(round(p.leverage)),
        "liquidationPrice": a(p.liquidation()),
        "markPrice": a(p.mark),
        "maxNotionalValue": "1000000000",
        "positionAmt": f.q(p.amt),
        "notional": a(p.notional),
        "isolatedWallet": "0",
        "symbol": f.symbol,
        "unRealizedProfit": a(p.unrealized),
        "positionSide": "BOTH",
        "updateTime": p.update_ms,
    }


def um_balance(f: Fmt, p: Position, uid: str) -> dict[str, Any]:
    """One of ``/fapi/v2/balance`` (``account.balance``)."""
    return {
        "accountAlias": uid,
        "asset": f.quote,
        "balance": a(p.wallet),
        "crossWalletBalance": a(p.wallet),
        "crossUnPnl": a(p.unrealized),
        "availableBalance": a(p.available),
        "maxWithdrawAmount": a(max(0.0, p.available)),
        "marginAvailable": True,
        "updateTime": p.update_ms,
    }


def um_account(f: Fmt, p: Position, maker: float, taker: float, v3: bool = False) -> dict[str, Any]:
    """``/fapi/v2/account`` (``account.status``) or ``/fapi/v3/account`` (``v2/account.status``)."""
    up, wb = p.unrealized, p.wallet
    totals = {
        "totalInitialMargin": a(p.initial + p.open_initial),
        "totalMaintMargin": a(p.maint),
        "totalWalletBalance": a(wb),
        "totalUnrealizedProfit": a(up),
        "totalMarginBalance": a(wb + up),
        "totalPositionInitialMargin": a(p.initial),
        "totalOpenOrderInitialMargin": a(p.open_initial),
        "totalCrossWalletBalance": a(wb),
        "totalCrossUnPnl": a(up),
        "availableBalance": a(p.available),
        "maxWithdrawAmount": a(max(0.0, p.available)),
    }
    asset = {
        "asset": f.quote,
        "walletBalance": a(wb),
        "unrealizedProfit": a(up),
        "marginBalance": a(wb + up),
        "maintMargin": a(p.maint),
        "initialMargin": a(p.initial + p.open_initial),
        "positionInitialMargin": a(p.initial),
        "openOrderInitialMargin": a(p.open_initial),
        "crossWalletBalance": a(wb),
        "crossUnPnl": a(up),
        "availableBalance": a(p.available),
        "maxWithdrawAmount": a(max(0.0, p.available)),
        "updateTime": p.update_ms,
    }
    if not v3:
        asset["marginAvailable"] = True
    pos: dict[str, Any] = {
        "symbol": f.symbol,
        "positionSide": "BOTH",
        "positionAmt": f.q(p.amt),
        "unrealizedProfit": a(up),
        "isolatedMargin": "0",
        "notional": a(p.notional),
        "isolatedWallet": "0",
        "initialMargin": a(p.initial + p.open_initial),
        "maintMargin": a(p.maint),
        "updateTime": p.update_ms,
    }
    if v3:
        return {**totals, "assets": [asset], "positions": [pos] if p.amt else []}
    pos.update(
        {
            "positionInitialMargin": a(p.initial),
            "openOrderInitialMargin": a(p.open_initial),
            "leverage": str(round(p.leverage)),
            "isolated": False,
            "entryPrice": a(p.entry),
            "breakEvenPrice": a(p.entry),
            "maxNotional": "1000000000",
            "bidNotional": a(p.bid_notional),
            "askNotional": a(p.ask_notional),
        }
    )
    head = {
        "feeTier": 0,
        "feeBurn": False,
        "canTrade": True,
        "canDeposit": True,
        "canWithdraw": True,
        "updateTime": 0,
        "multiAssetsMargin": False,
        "tradeGroupId": -1,
    }
    return {**head, **totals, "assets": [asset], "positions": [pos]}


def um_trade(f: Fmt, t: Trade) -> dict[str, Any]:
    """One of ``/fapi/v1/userTrades``."""
    return {
        "buyer": t.side > 0,
        "commission": a(t.fee),
        "commissionAsset": f.quote,
        "id": t.trade_id,
        "maker": t.maker,
        "orderId": t.order_id,
        "price": f.p(t.price),
        "qty": f.q(t.qty),
        "quoteQty": a(t.price * t.qty),
        "realizedPnl": a(t.realized),
        "side": side_name(t.side),
        "positionSide": "BOTH",
        "symbol": f.symbol,
        "time": t.time_ms,
    }
