"""Reconciliation: the venue's view of our orders, fills and position made the core's, before any
quote -- at the start of a session and after every reconnect.

1. The open orders on the symbol (spot ``openOrders.status``, USD-M ``GET /fapi/v1/openOrders``),
   by client id: this session's, another session's of ours (``prefix-session-seq``: a restart),
   foreign. Every one of ours is cancelled (the dead-man switch of spot, which has no native one;
   the session quotes afresh after it); foreign ones are left alone or cancelled
   (``venue.foreign_orders``).
2. Every order this session still holds is queried by client id (``order.status``): its fills
   the user data did not deliver are fetched by order id (``myTrades`` / ``userTrades``) and
   delivered by trade id, then its end (cancelled, rejected) is told to the core.
3. After a restart, the orders the journal left open (``Recovery.open``) are queried the same way:
   their fills not in the journal are booked as the position's (the core never had them).
4. The fills since the last one known (``myTrades`` / ``userTrades`` from its time), of this
   session's orders or the journal's, not yet delivered (by trade id).
5. The position: USD-M's ``positionRisk`` is the truth (the core's position is set to it when it
   differs); spot's base balance (``account.status``) is compared with the position's change
   and a difference reported (another client may trade the same asset).

Any failure raises: the gateway retries (``venue.reconcile_retries``), then halts with one line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from avmm.live.ws_api import ApiError
from avmm.venues.binance.private import (
    DECODE_ORDERS,
    DECODE_POSITIONS,
    DECODE_SPOT_ACCOUNT,
    DECODE_TRADES,
    MyTrade,
    OrderInfo,
    side_of,
)

if TYPE_CHECKING:
    from avmm.live.binance import BinanceGateway

log = logging.getLogger("avmm.live")
UNKNOWN_ORDER = (-2011, -2013)
LOOKBACK_MS = 2_000  # fills are fetched from this long before the last one known (dedupe by trade id)
MAX_PAGES = 50


@dataclass
class ReconcileResult:
    open_ours: int = 0  # our orders found open (cancelled)
    open_foreign: int = 0
    foreign_cancelled: int = 0
    settled: int = 0  # this session's orders queried
    recovered: int = 0  # orders of earlier sessions (the journal's) queried
    fills: int = 0  # fills delivered that the user data had not
    external_fills: int = 0  # fills of earlier sessions' orders (position only)
    position_venue: float | None = None
    position_core_before: float = 0.0
    position_corrected: bool = False
    base_balance: float | None = None
    notes: list[str] = field(default_factory=list)


async def open_orders(gw: BinanceGateway) -> list[OrderInfo]:
    if gw.um:
        body = await gw.rest.request("GET", "/fapi/v1/openOrders", {"symbol": gw.symbol})
        return list(DECODE_ORDERS.decode(body))
    res = await gw.api.call("openOrders.status", {"symbol": gw.symbol}, signed=True, raw=True)
    return list(DECODE_ORDERS.decode(res))


async def cancel_venue_order(gw: BinanceGateway, venue_id: int) -> bool:
    """Cancel a venue order by id; False when it was gone already."""
    try:
        await gw.api.call("order.cancel", {"symbol": gw.symbol, "orderId": venue_id}, signed=True)
    except ApiError as e:
        if e.code in UNKNOWN_ORDER:
            return False
        raise
    return True


async def trades_since(gw: BinanceGateway, start_ms: int) -> list[MyTrade]:
    """Our fills on the symbol from ``start_ms`` (paged by trade id)."""
    out: list[MyTrade] = []
    params: dict[str, Any] = {"symbol": gw.symbol, "startTime": max(0, start_ms), "limit": 1000}
    for _ in range(MAX_PAGES):
        if gw.um:
            page = list(DECODE_TRADES.decode(await gw.rest.request("GET", "/fapi/v1/userTrades", params)))
        else:
            page = list(DECODE_TRADES.decode(await gw.api.call("myTrades", params, signed=True, raw=True)))
        out.extend(page)
        if len(page) < 1000:
            break
        params = {"symbol": gw.symbol, "fromId": page[-1].id + 1, "limit": 1000}
    return out


async def venue_position(gw: BinanceGateway) -> float:
    """USD-M: the position on the symbol (one-way mode: positionSide BOTH)."""
    body = await gw.rest.request("GET", "/fapi/v2/positionRisk", {"symbol": gw.symbol})
    pos = 0.0
    for p in DECODE_POSITIONS.decode(body):
        if p.symbol == gw.symbol:
            pos += p.positionAmt
    return pos


async def base_balance(gw: BinanceGateway) -> float | None:
    """Spot: the base asset's balance (free + locked)."""
    if gw.info is None:
        return None
    res = await gw.api.call("account.status", {"omitZeroBalances": "true"}, signed=True, raw=True)
    for b in DECODE_SPOT_ACCOUNT.decode(res).balances:
        if b.asset == gw.info.base:
            return b.free + b.locked
    return 0.0


def _trade_side(tr: MyTrade) -> int:
    if tr.isBuyer is not None:
        return 1 if tr.isBuyer else -1
    if tr.buyer is not None:
        return 1 if tr.buyer else -1
    return side_of(tr.side)


async def reconcile(gw: BinanceGateway, recovery: Any = None, core_position: float | None = None) -> ReconcileResult:
    """One reconciliation (see the module's text); raises on a failed request."""
    res = ReconcileResult()
    if core_position is not None:
        res.position_core_before = core_position
    await _open_orders(gw, res)
    await _settle_ours(gw, res)
    old_ids = await _recovered(gw, recovery, res) if recovery is not None else {}
    last_ms = gw.last_fill_ms
    if recovery is not None and getattr(recovery, "last_fill_ns", -1) > 0:
        last_ms = max(last_ms, int(recovery.last_fill_ns) // 1_000_000)
    if last_ms > 0:
        await _fills_since(gw, last_ms, old_ids, res)
    await _position(gw, res)
    gw.c.reconciles += 1
    for n in res.notes:
        log.warning("reconcile: %s", n)
    return res


async def _open_orders(gw: BinanceGateway, res: ReconcileResult) -> None:
    """1. the open orders: ours cancelled, foreign ones by ``venue.foreign_orders``."""
    policy = gw.vcfg.foreign_orders
    for oi in await open_orders(gw):
        if gw.ours(oi.clientOrderId):
            res.open_ours += 1
            seq = gw.seq_of(oi.clientOrderId)
            o = gw.by_seq.get(seq) if seq else None
            if o is not None:  # this session's: settled (fills first), then cancelled, in step 2
                if not o.venue_id:
                    o.venue_id = oi.orderId
                    gw.by_venue_id[oi.orderId] = (o.oid, o.side)
                continue
            await cancel_venue_order(gw, oi.orderId)
            if oi.executedQty > 0:  # another session's (a restart): fills the journal may not have
                for tr in await gw.order_trades(oi.orderId):
                    if tr.id and not gw.trades.seen(tr.id):
                        _external(gw, tr, res)
        else:
            res.open_foreign += 1
            if policy == "cancel" and await cancel_venue_order(gw, oi.orderId):
                res.foreign_cancelled += 1
    if res.open_foreign and policy == "ignore":
        res.notes.append(f"{res.open_foreign} foreign open order(s) on {gw.symbol} left alone")


async def _settle_ours(gw: BinanceGateway, res: ReconcileResult) -> None:
    """2. this session's orders: their fills and their ends told to the core."""
    n_before = gw.c.fills
    for o in list(gw.orders.values()):
        await gw.settle(o)
        if o.oid in gw.orders:  # still open (placed after the snapshot): cancel it, settle again
            await gw.cancel_order(o)
        res.settled += 1
    res.fills += gw.c.fills - n_before


def _external(gw: BinanceGateway, tr: MyTrade, res: ReconcileResult) -> None:
    res.external_fills += 1
    fee = gw._fee(tr.commission, tr.commissionAsset, tr.price)
    gw.resp.external_fill(tr.time * 1_000_000, _trade_side(tr), tr.price, tr.qty, fee, tr.id)


async def _recovered(gw: BinanceGateway, recovery: Any, res: ReconcileResult) -> dict[int, int]:
    """3. the journal's open orders (a restart): their fills not journaled booked as the
    position's, the ones still open cancelled. Their venue order ids -> side."""
    old_ids: dict[int, int] = {}
    for it in getattr(recovery, "open", []):
        res.recovered += 1
        info = await gw.order_status(it.cid)
        if info is None:
            continue
        old_ids[info.orderId] = it.side
        if info.status in ("NEW", "PARTIALLY_FILLED"):
            await cancel_venue_order(gw, info.orderId)
        if info.executedQty > it.filled + 1e-12:
            for tr in await gw.order_trades(info.orderId):
                if tr.id and not gw.trades.seen(tr.id):
                    _external(gw, tr, res)
    return old_ids


async def _fills_since(gw: BinanceGateway, last_ms: int, old_ids: dict[int, int], res: ReconcileResult) -> None:
    """4. our fills since the last one known, not delivered yet (by trade id)."""
    for tr in await trades_since(gw, last_ms - LOOKBACK_MS):
        if not tr.id or tr.id in gw.trades.ids:
            continue
        mine = gw.by_venue_id.get(tr.orderId)
        if mine is not None:
            gw.trades.seen(tr.id)
            oid, side = mine
            fee = gw._fee(tr.commission, tr.commissionAsset, tr.price)
            maker = tr.isMaker if tr.isMaker is not None else bool(tr.maker)
            o = gw.by_seq_oid(oid)
            if o is not None:
                gw.deliver_fill(tr.time * 1_000_000, o, tr.price, tr.qty, fee, tr.id, maker)
            else:
                gw.c.fills += 1
                gw.resp.fill(tr.time * 1_000_000, oid, side, tr.price, tr.qty, fee, tr.id, 1 if maker else 0)
            res.fills += 1
        elif tr.orderId in old_ids:
            gw.trades.seen(tr.id)
            _external(gw, tr, res)


async def _position(gw: BinanceGateway, res: ReconcileResult) -> None:
    """5. USD-M: the venue's position is the core's; spot: the base balance, reported."""
    if not gw.um:
        res.base_balance = await base_balance(gw)
        return
    p = await venue_position(gw)
    res.position_venue = p
    q = gw.position()
    lot = gw.info.lot if gw.info is not None else 1e-8
    if abs(p - q) > 0.5 * lot:
        res.position_corrected = True
        res.notes.append(f"position {q:g} corrected to the venue's {p:g}")
        gw.resp.set_position(gw.now_ns(), p, f"the venue's position {p:g} (the core had {q:g})")
