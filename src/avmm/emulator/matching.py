"""The emulator's matching engine: one account per API key, each an instance of the backtester's
exchange model (``backtest/venue.py`` ``PaperGateway``) fed the replay's market events at venue
time, with Binance's orders beside it.

The model runs with no latency (the network is the latency): a request is matched when it arrives
and its answers (ack, reject, cancel, fills) come back at once; a resting order fills as the
backtester fills it (queue position from the depth diffs or the L1 sizes, trades at and through its
price, the book crossing it), never by a second matcher. ``Account`` keeps what Binance reports
beside the model: ``orderId`` (the model's order id) and ``clientOrderId``, status, executed and
quote quantities, commission (the config's maker / taker fees, in the quote asset), trade ids
(unique and increasing across the venue), and, per account, the balances (spot: the model's base and
quote balances and what it holds for open orders) or the position, wallet and margin (USD-M, one-way,
cross), and the user-data events each change produces (``outbox``).

Differences from Binance, from the model: a LIMIT order that crosses takes what the opposite best
shows at that price and the rest expires (the model's immediate-or-cancel; Binance would rest it);
commission is in the quote asset; USD-M ``order.modify`` re-queues the order (cancel + place in one
step: a GTX that would take, or a quantity at or below what executed, ends it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from avmm.backtest.config import BacktestConfig
from avmm.backtest.market import AUTO_BALANCE_MULTIPLE
from avmm.backtest.venue import PaperGateway, PaperRecords, one_action
from avmm.core.config import StrategyConfig, max_position_of, to_params
from avmm.core.state import ACT_CANCEL, ACT_PLACE, ACTION_DTYPE, AF_TAKE
from avmm.emulator import formats as fm
from avmm.emulator.formats import Fmt, Order, Position, Trade

# what an event in an account's outbox is about (``private`` sends them and holds answers on them)
EV_ORDER = 1  # an order's report (NEW, CANCELED, AMENDMENT, ...)
EV_TRADE = 2  # a fill
EV_DONE = 4  # the order is no longer open
EV_ACCOUNT = 8  # balances / position

MSG_DUPLICATE = "Duplicate order sent."
MSG_TAKE = "Order would immediately match and take."
MSG_BALANCE = "Account has insufficient balance for requested action."
MSG_GTX = "Due to the order could not be executed as maker, the Post Only order will be rejected."


class ApiError(Exception):
    """A Binance error answer: HTTP-style ``status``, ``code``, ``msg`` and optional ``data``."""

    def __init__(self, code: int, msg: str, status: int = 400, data: Any = None) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status, self.data = code, msg, status, data

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "msg": self.msg}
        if self.data is not None:
            out["data"] = self.data
        return out


@dataclass
class Ids:
    """The venue's id counters, shared by every account (unique and increasing)."""

    order: int = 1_000_000
    trade: int = 100_000_000
    execution: int = 1
    client: int = 0

    def next_order(self) -> int:
        self.order += 1
        return self.order

    def next_trade(self) -> int:
        self.trade += 1
        return self.trade

    def next_execution(self) -> int:
        self.execution += 1
        return self.execution

    def next_client(self, prefix: str = "emu") -> str:
        """A client order id for an order (or a cancel) sent without one: 22 characters, like Binance's."""
        self.client += 1
        return f"{prefix}{self.client:0{22 - len(prefix)}d}"


def emulator_backtest(b: BacktestConfig, um: bool) -> BacktestConfig:
    """The exchange model's settings for the emulator: the config's fees, queue model, balances,
    funding and margin; no latency (the network is the latency), no risk limit (the venue has
    none), no markouts, one equity sample a day."""
    return b.model_copy(
        update={
            "entry_latency_ms": 0.0,
            "response_latency_ms": 0.0,
            "feed_latency_ms": 0.0,
            "latency_model": "constant",
            "risk_check": False,
            "markouts": False,
            "equity_interval_s": 86400.0,
            "market": "perpetual" if um else "spot",
        }
    )


class Account:
    """One API key's account: the exchange model and Binance's orders, trades and balances.

    Methods that take a request (``place``, ``cancel``, ``amend_keep``, ``modify``, ``cancel_all``)
    match it at ``t`` (int ns, venue time) and return the order(s); an error is an ``ApiError``.
    ``outbox`` collects the user-data events as ``(order_id, EV_* flags, payload dict)``.
    """

    def __init__(
        self,
        api_key: str,
        uid: int,
        fmt: Fmt,
        um: bool,
        ids: Ids,
        strategy: StrategyConfig,
        backtest: BacktestConfig,
        meta: dict[str, Any],
    ) -> None:
        self.api_key, self.uid, self.f, self.um, self.ids = api_key, uid, fmt, um, ids
        self.cfg = strategy
        self.bt = emulator_backtest(backtest, um)
        self.gw = PaperGateway(strategy, self.bt, self, to_params(strategy), meta, PaperRecords())
        self.bs = self.gw.bs
        self.bp = self.gw.bp
        # the model's response ring and fill buffer counters, read as Python ints (a record's field
        # costs ~0.5 us a read; this ~0.04)
        self._mv = memoryview(self.bs.view(np.int64).data).cast("B").cast("q")
        fields = self.bs.dtype.fields
        assert fields is not None
        self._i_tail, self._i_head, self._i_fout = (fields[f][1] // 8 for f in ("rs_tail", "rs_head", "n_fout"))
        self.lot = float(strategy.quoting.lot)
        self.tick = float(strategy.quoting.tick)
        self.maker_fee, self.taker_fee = float(self.bt.maker_fee), float(self.bt.taker_fee)
        self.orders: dict[int, Order] = {}
        self.open: dict[int, Order] = {}  # the open orders, oldest first
        self.by_cid: dict[str, Order] = {}  # the last order of each client order id
        self.trades: list[Trade] = []
        self.outbox: list[tuple[int, int, dict[str, Any]]] = []
        self.split = 1  # the ``partial`` fault: each fill reported as this many executions
        self.t_last = 0  # the model's clock (ns)
        self.update_ms = 0
        self._acts = np.zeros(2, dtype=ACTION_DTYPE)  # a modify: cancel + place
        # the request being matched: its order and what the model answered
        self._req: Order | None = None
        self._req_mode = ""  # place, cancel, amend, modify
        self._answer = ""  # ack, reject, canceled
        self._fills: list[Trade] = []
        self._dirty = False  # balances changed: one account event after the request / step
        self._filled = False  # USD-M: a fill since the last ACCOUNT_UPDATE
        self._pos = 0.0  # USD-M: the position and its average entry price
        self._entry = 0.0

    # -- the model's answers (``VenueResponses``) -------------------------------------------------
    def ack(self, t: int, oid: int) -> None:
        o = self.orders.get(oid)
        if o is None:
            return
        ms = t // 1_000_000
        self._answer = "ack"
        o.update_ms = ms
        if self._req_mode in ("amend", "modify"):
            x = "REPLACED" if not self.um else "AMENDMENT"
            if self._req_mode == "modify":
                o.working_ms = ms
            self._event(o, x, ms)
        else:
            o.status = "NEW"
            o.working_ms = ms
            self.open[oid] = o
            self._event(o, "NEW", ms)
        self._dirty = True

    def reject(self, t: int, oid: int) -> None:
        self._answer = "reject"

    def canceled(self, t: int, oid: int) -> None:
        o = self.orders.get(oid)
        if o is None:
            return
        if self._req_mode == "modify" and self._answer == "":  # the first half of a re-queue
            self._answer = "requeue"
            return
        ms = t // 1_000_000
        if self._req_mode == "cancel":
            self._answer = "canceled"
            o.status = "CANCELED"
        else:  # what a taker order could not take, or a modify that ended it
            o.status = "EXPIRED"
        o.update_ms = ms
        self.open.pop(oid, None)
        self._event(o, o.status, ms, done=True)
        self._dirty = True

    def fill(self, t: int, oid: int, side: int, px: float, qty: float, fee: float) -> None:
        o = self.orders.get(oid)
        if o is None:
            return
        ms = t // 1_000_000
        maker = not (self._req is o and self._req_mode in ("place", "modify"))  # taken on arrival
        n = max(1, self.split)
        parts = [qty] if n == 1 else _split(qty, n, self.lot)
        for k, q in enumerate(parts):
            fee_k = fee * (q / qty) if qty > 0 else 0.0
            realized = self._realize(side, px, q) if self.um else 0.0
            tr = Trade(self.ids.next_trade(), oid, side, px, q, fee_k, maker, ms, realized)
            o.executed += q
            o.quote += px * q
            o.fee += fee_k
            o.realized += realized
            last = k == len(parts) - 1
            if last and o.leaves <= 1e-9 * self.lot:
                o.status = "FILLED"
                o.executed = o.qty
                self.open.pop(oid, None)
            else:
                o.status = "PARTIALLY_FILLED"
            o.update_ms = ms
            o.trades.append(len(self.trades))
            self.trades.append(tr)
            if self._req is o:
                self._fills.append(tr)
            self._trade_event(o, tr, ms, done=o.status == "FILLED")
        self._dirty = True
        self._filled = True

    # -- events ----------------------------------------------------------------------------------
    def _event(self, o: Order, x: str, ms: int, done: bool = False) -> None:
        flags = EV_ORDER | (EV_DONE if done else 0)
        if self.um:
            b, s = self.open_notional()
            ev = fm.order_trade_update(self.f, o, x, ms, b, s)
        else:
            ev = fm.execution_report(self.f, o, x, ms, self.ids.next_execution())
        self.outbox.append((o.order_id, flags, ev))

    def _trade_event(self, o: Order, tr: Trade, ms: int, done: bool) -> None:
        flags = EV_TRADE | (EV_DONE if done else 0)
        if self.um:
            self.outbox.append((o.order_id, flags, fm.trade_lite(self.f, o, tr, ms)))
            b, s = self.open_notional()
            self.outbox.append((o.order_id, flags, fm.order_trade_update(self.f, o, "TRADE", ms, b, s, tr)))
        else:
            ev = fm.execution_report(self.f, o, "TRADE", ms, self.ids.next_execution(), tr)
            self.outbox.append((o.order_id, flags, ev))

    def account_event(self, ms: int) -> None:
        """The account's event after balances changed (spot: ``outboundAccountPosition``; USD-M:
        ``ACCOUNT_UPDATE`` after a fill)."""
        if not self._dirty:
            return
        self._dirty = False
        if self.um:
            if self._filled:
                self._filled = False
                self.outbox.append((-1, EV_ACCOUNT, fm.account_update(self.f, self.position(), "ORDER", ms, ms)))
            return
        self.outbox.append((-1, EV_ACCOUNT, fm.account_position(ms, self.balances())))

    def _realize(self, side: int, px: float, q: float) -> float:
        """USD-M: the position after a fill of ``q`` at ``px`` (average entry price kept, as the
        model keeps it) and the profit it realizes."""
        pos0 = self._pos
        pos = pos0 + side * q
        if abs(pos) < 1e-9 * self.lot:
            pos = 0.0
        self._pos = pos
        entry = self._entry
        if pos0 == 0.0 or (pos0 > 0) == (side > 0):
            a0 = abs(pos0)
            self._entry = (entry * a0 + px * q) / (a0 + q)
            return 0.0
        closed = min(q, abs(pos0))
        rp = closed * (px - entry) * (1.0 if pos0 > 0 else -1.0) * float(self.bt.contract_size)
        if pos == 0.0:
            self._entry = 0.0
        elif (pos > 0) != (pos0 > 0):
            self._entry = px
        return rp

    # -- figures ---------------------------------------------------------------------------------
    def open_notional(self) -> tuple[float, float]:
        """The notional of the open bids and asks."""
        b = s = 0.0
        for o in self.open.values():
            if o.side > 0:
                b += o.price * o.leaves
            else:
                s += o.price * o.leaves
        return b, s

    def balances(self) -> list[tuple[str, float, float]]:
        """Spot: ``(asset, free, locked)`` of the base and the quote asset."""
        bs = self.bs[0]
        cs = float(self.bt.contract_size)
        base = float(bs["base0"]) + float(bs["pos"]) * cs
        q0 = float(bs["quote0"])
        if math.isnan(q0):  # "auto": set at the first mid
            fm_ = float(bs["first_mid"])
            q0 = float(self.bp["quote_auto"][0]) * fm_ if math.isfinite(fm_) else 0.0
        quote = q0 + float(bs["cash"])
        lb, lq = float(bs["locked_base"]), float(bs["locked_quote"])
        return [(self.f.base, base - lb, lb), (self.f.quote, quote - lq, lq)]

    def capital(self) -> float:
        """USD-M: the wallet at the start: ``backtest.initial_cash``, else ``AUTO_BALANCE_MULTIPLE``
        x the position limit x the first mid (as spot's "auto" quote balance; 0 before a mid)."""
        if self.bt.initial_cash > 0:
            return float(self.bt.initial_cash)
        first = float(self.bs["first_mid"][0])
        if not math.isfinite(first):
            return 0.0
        return AUTO_BALANCE_MULTIPLE * max_position_of(self.cfg) * float(self.bt.contract_size) * first

    def position(self) -> Position:
        """USD-M: the position, wallet and margin figures, marked to the venue's mid."""
        bs = self.bs[0]
        amt = float(bs["pos"])
        entry = self._entry
        mark = float(bs["mid"])
        if not math.isfinite(mark):
            mark = entry
        cs = float(self.bt.contract_size)
        wallet = self.capital() + float(bs["cash"]) + amt * entry * cs
        b, s = self.open_notional()
        return Position(
            amt,
            entry,
            mark,
            wallet,
            float(self.bt.leverage),
            float(self.bt.maintenance_margin_rate),
            b,
            s,
            self.update_ms,
        )

    # -- market events ---------------------------------------------------------------------------
    def quote(self, t: int, bid: float, bid_qty: float, ask: float, ask_qty: float) -> None:
        if t > self.t_last:
            self.t_last = t
        self.gw.quote(t, bid, bid_qty, ask, ask_qty)
        self._drain(t)

    def trade(self, t: int, px: float, qty: float, side: int) -> None:
        if t > self.t_last:
            self.t_last = t
        self.gw.trade(t, px, qty, side)
        self._drain(t)

    def depth(self, t: int, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> None:
        if t > self.t_last:
            self.t_last = t
        rows = [(1.0, p, q) for p, q in bids]
        rows.extend((-1.0, p, q) for p, q in asks)
        if not rows:
            return
        self.gw.depth_rows(t, np.array(rows, dtype=np.float64))
        self._drain(t)

    def _drain(self, t: int) -> None:
        """The answers the last market event produced (fills), delivered now."""
        mv = self._mv
        if mv[self._i_tail] > mv[self._i_head] or mv[self._i_fout]:
            self._req, self._req_mode = None, ""
            self.gw.advance(t)
            self.account_event(t // 1_000_000)

    # -- requests --------------------------------------------------------------------------------
    def now(self, t: int) -> int:
        """A request's time: ``t``, never before the model's last market event."""
        if t < self.t_last:
            t = self.t_last
        self.t_last = t
        self.update_ms = t // 1_000_000
        return t

    def _begin(self, o: Order | None, mode: str) -> None:
        self._req, self._req_mode, self._answer = o, mode, ""
        self._fills = []

    def _end(self, t: int) -> None:
        self._req, self._req_mode = None, ""
        self.account_event(t // 1_000_000)

    def new_order(
        self, t: int, cid: str, side: int, otype: str, tif: str, px: float, qty: float, reduce_only: bool = False
    ) -> Order:
        """A new order (not yet matched: ``place`` it)."""
        if cid in self.by_cid and self.by_cid[cid].is_open:
            raise ApiError(-2010, MSG_DUPLICATE) if not self.um else ApiError(-4116, "ClientOrderId is duplicated.")
        oid = self.ids.next_order()
        o = Order(oid, cid, side, otype, tif, px, qty, t // 1_000_000, update_ms=t // 1_000_000)
        o.reduce_only = reduce_only
        return o

    def place(self, t: int, o: Order, post_only: bool) -> list[Trade]:
        """Match a new order; returns its fills on arrival (taker). A reject raises ``ApiError``
        (the order is not kept, as Binance keeps no rejected order). An immediate-or-cancel order
        (``tif`` IOC) is the model's taker order: what the opposite best shows, up to its price and
        size, the rest expired."""
        t = self.now(t)
        counts = self._rejects()
        self.orders[o.order_id] = o
        self._begin(o, "place")
        self.bp["post_only"] = int(post_only)
        if o.tif == "IOC":
            a = one_action(ACT_PLACE, o.order_id, o.side, o.price, o.qty)
            a["flags"] = AF_TAKE
            self.gw.send(t, a, 1)
        else:
            self.gw.place(t, o.order_id, o.side, o.price, o.qty)
        self.gw.advance(t)
        fills = self._fills
        answer = self._answer
        self._end(t)
        if answer == "reject":
            del self.orders[o.order_id]
            raise self._reject_error(counts)
        self.by_cid[o.cid] = o
        return fills

    def _rejects(self) -> tuple[int, int, int]:
        bs = self.bs[0]
        return int(bs["n_rej_post_only"]), int(bs["n_rej_balance"]), int(bs["n_rej_other"])

    def _reject_error(self, before: tuple[int, int, int]) -> ApiError:
        po, bal, other = self._rejects()
        if po > before[0]:
            return ApiError(-5022, MSG_GTX) if self.um else ApiError(-2010, MSG_TAKE)
        if bal > before[1]:
            return ApiError(-2010, MSG_BALANCE) if not self.um else ApiError(-2019, "Margin is insufficient.")
        if other > before[2]:
            return ApiError(-1013, "Filter failure: MAX_NUM_ORDERS")
        return ApiError(-2010, "NEW_ORDER_REJECTED")

    def find(self, order_id: int | None, orig_cid: str | None, code: int) -> Order:
        """The order by id (then its client id checked) or by client id; ``code`` is the error when
        there is none (-2011 for a cancel, -2013 for a query)."""
        msg = "Unknown order sent." if code == -2011 else "Order does not exist."
        if order_id is not None:
            o = self.orders.get(order_id)
            if o is None or (orig_cid is not None and o.cid != orig_cid and o.orig_cid != orig_cid):
                raise ApiError(code, msg)
            return o
        if orig_cid is None:
            raise ApiError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        o = self.by_cid.get(orig_cid)
        if o is None:
            raise ApiError(code, msg)
        return o

    def _rename(self, o: Order, new_cid: str | None) -> None:
        """Spot: a cancelled order takes a new client order id (the old one is ``origClientOrderId``)."""
        if new_cid is not None:
            o.orig_cid, o.cid = o.cid, new_cid
            self.by_cid[new_cid] = o

    def cancel(self, t: int, o: Order, new_cid: str | None) -> Order:
        """Cancel an open order (spot: it takes ``new_cid`` as its client order id, as on Binance;
        None keeps it, as USD-M does)."""
        if not o.is_open:
            raise ApiError(-2011, "Unknown order sent.")
        t = self.now(t)
        self._rename(o, new_cid)
        self._begin(o, "cancel")
        self.gw.cancel(t, o.order_id)
        self.gw.advance(t)
        self._end(t)
        return o

    def cancel_all(self, t: int, new_cid: Callable[[], str] | None = None) -> list[Order]:
        """Cancel every open order (oldest first); spot: ``new_cid()`` names each."""
        t = self.now(t)
        out = []
        for o in list(self.open.values()):
            self._rename(o, new_cid() if new_cid is not None else None)
            self._begin(o, "cancel")
            self.gw.cancel(t, o.order_id)
            self.gw.advance(t)
            out.append(o)
        self._end(t)
        return out

    def amend_keep(self, t: int, o: Order, new_qty: float, new_cid: str) -> Order:
        """Spot ``order.amend.keepPriority``: a smaller quantity, the same place in the queue."""
        if not o.is_open:
            raise ApiError(-2013, "Order does not exist.")
        if not new_qty < o.qty - 1e-9 * self.lot:
            raise ApiError(-1013, "Order amend (quantity increase) is not supported.")
        if not new_qty > o.executed + 1e-9 * self.lot:
            raise ApiError(-2038, "Order amend (quantity at or below the executed quantity) is not supported.")
        t = self.now(t)
        self._begin(o, "amend")
        self.bp["post_only"] = 0
        before = (o.qty, o.cid, o.orig_cid)
        o.qty = new_qty
        o.orig_cid, o.cid = o.cid, new_cid
        self.gw.amend(t, o.order_id, o.side, o.price, new_qty - o.executed)
        self.gw.advance(t)
        answer = self._answer
        self._end(t)
        if answer != "ack":
            o.qty, o.cid, o.orig_cid = before
            raise ApiError(-2038, "Order amend rejected.")
        self.by_cid[new_cid] = o
        return o

    def modify(self, t: int, o: Order, px: float, qty: float) -> Order:
        """USD-M ``order.modify``: a new price and quantity; the order goes to the back of the queue
        (a GTX order that would take, or a quantity at or below what executed, ends it)."""
        if not o.is_open:
            raise ApiError(-2013, "Order does not exist.")
        if px == o.price and abs(qty - o.qty) < 1e-9 * self.lot:
            raise ApiError(-5027, "No need to modify the order.")
        t = self.now(t)
        if qty <= o.executed + 1e-9 * self.lot:  # Binance cancels it
            self._begin(o, "cancel")
            self.gw.cancel(t, o.order_id)
            self.gw.advance(t)
            self._end(t)
            return o
        counts = self._rejects()
        o.price, o.qty = px, qty
        a = self._acts
        a[0]["kind"], a[0]["oid"], a[0]["side"], a[0]["px"], a[0]["qty"] = ACT_CANCEL, o.order_id, 0, 0.0, 0.0
        a[1]["kind"], a[1]["oid"], a[1]["side"] = ACT_PLACE, o.order_id, o.side
        a[1]["px"], a[1]["qty"] = px, qty - o.executed
        self._begin(o, "modify")
        self.bp["post_only"] = int(o.tif == "GTX")
        self.gw.send(t, a, 2)
        self.gw.advance(t)
        answer = self._answer
        if answer == "reject":
            ms = t // 1_000_000
            o.status, o.update_ms = "EXPIRED", ms
            self.open.pop(o.order_id, None)
            self._event(o, "EXPIRED", ms, done=True)
            self._dirty = True
            err = self._reject_error(counts)
            self._end(t)
            if err.code == -5022:
                raise err
            return o
        self._end(t)
        return o

    def foreign(self, t: int, n: int) -> list[Order]:
        """``n`` open orders its client did not place (the ``foreign`` fault): alternately bids
        below the best bid and asks above the best ask, 10 ticks and more away, one lot each."""
        bs = self.bs[0]
        if not int(bs["has_book"]):
            return []
        bid, ask = float(bs["bid"]), float(bs["ask"])
        out = []
        for i in range(n):
            side = 1 if i % 2 == 0 else -1
            k = 10 + i // 2
            px = round((bid - k * self.tick if side > 0 else ask + k * self.tick) / self.tick) * self.tick
            o = self.new_order(t, f"web_{self.ids.next_client('')}", side, "LIMIT", "GTC", px, self.lot)
            o.foreign = True
            try:
                self.place(t, o, post_only=True)
            except ApiError:
                continue
            out.append(o)
        return out

    def summary(self) -> dict[str, Any]:
        """What ``GET /_avmm/accounts`` shows of the account (never its key's secret)."""
        out: dict[str, Any] = {
            "api_key": self.api_key,
            "open_orders": len(self.open),
            "orders": len(self.orders),
            "trades": len(self.trades),
            "fees": sum(t.fee for t in self.trades),
        }
        if self.um:
            p = self.position()
            out.update(position=p.amt, entry_price=p.entry, wallet=p.wallet, unrealized=p.unrealized)
        else:
            out["balances"] = {x: {"free": fr, "locked": lk} for x, fr, lk in self.balances()}
            out["position"] = float(self.bs["pos"][0])
        return out


def _split(qty: float, n: int, lot: float) -> list[float]:
    """``qty`` in ``n`` parts on the lot grid (fewer when it has fewer lots), the last the rest."""
    lots = round(qty / lot)
    if lots < 2:
        return [qty]
    n = min(n, lots)
    per = lots // n
    parts = [per * lot] * (n - 1)
    parts.append(qty - sum(parts))
    return parts
