"""The Binance gateway: the core's orders over the WebSocket API, the venue's answers back to it.

``BinanceGateway`` implements ``live/gateway.py``'s ``Gateway`` for ``binance-spot`` and
``binance-um``:

* ``send(t, actions, n)`` -- the core's place / cancel / amend records, encoded in compiled code by
  ``venues/binance/ws_api.py`` (``Requests``: spot ``order.place`` ``LIMIT_MAKER`` /
  ``order.cancelReplace`` / ``order.cancel``; USD-M ``order.place`` ``GTX`` / ``order.modify`` /
  ``order.cancel``; ``newOrderRespType=ACK``; client ids ``prefix-session-seq``, the seq the
  action's record in the journal's intent log when there is one -- journaled before this call) and
  handed to the socket. An order the rate budget has no room for is not sent: the core gets a
  reject (it requotes later) and ``throttled`` counts it.
* the answers (``Responses``: ``ack``, ``reject``, ``canceled``, ``fill``, ``unknown``) come from
  the request's response (matched by request id) and the user data events (spot: on the same
  connection; USD-M: the listenKey stream, ``live/user_data.py``), whichever is first: an order seen
  alive (a ``NEW`` event, a fill) is acked once; a fill is delivered once per trade id.
* a timeout, ``-1007`` or a 5xx leaves the order "unknown": its client id is queried
  (``order.status``) until the venue says what happened, never taken as failed.
* the connection lost, every order's outcome is unknown until ``reconcile`` (``live/reconcile.py``)
  has run on the new connection: the session does not quote meanwhile.

``advance`` does nothing: the venue's answers arrive on the socket, not on a clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import numpy as np

from avmm.core.state import ACT_AMEND, ACT_CANCEL, ACT_PLACE, MAX_ACTIONS
from avmm.live.clock import ClockOffset
from avmm.live.config import VenueConfig
from avmm.live.gateway import Gateway
from avmm.live.keys import Keys
from avmm.live.latency import LatencyRing
from avmm.live.limits import RateLimits
from avmm.live.private_rest import SignedRest
from avmm.live.ws_api import ApiError, WsApi
from avmm.venues.binance.private import (
    DECODE_ACK,
    DECODE_CANCEL_REPLACE,
    DECODE_ORDER,
    DECODE_SPOT_EVENT,
    ApiFrame,
    ExecutionReport,
    StreamTerminated,
)
from avmm.venues.binance.ws_api import OUT_CAP, OrderEncoder, Requests
from avmm.venues.ws_frames import ClientFrames

log = logging.getLogger("avmm.live")

NEW, LIVE, CANCELING, AMENDING, DONE = range(5)
STATE_NAMES = ("new", "live", "canceling", "amending", "done")
GONE = ("CANCELED", "EXPIRED", "REJECTED", "EXPIRED_IN_MATCH", "TRADE_PREVENTION")
WOULD_TAKE = (-2010, -5022)  # spot LIMIT_MAKER / USD-M GTX that would take
UNKNOWN_ORDER = (-2011, -2013)  # cancel: unknown order; query: does not exist
RECENT_TRADES = 1 << 16  # trade ids kept for dedupe
FATAL_CODES = (-2014, -2015, -1022, -1002)  # a bad key, signature or permission: no retry


def _short(e: BaseException) -> str:
    """An error as one short line (no traceback, no secret: the messages are the venue's)."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:300]


class LiveResponses(Protocol):
    """What the gateway calls (the live trader: journal, then the core)."""

    def ack(self, t: int, oid: int, venue_oid: int = 0) -> None: ...

    def reject(self, t: int, oid: int, code: int = 0) -> None: ...

    def canceled(self, t: int, oid: int) -> None: ...

    def fill(
        self, t: int, oid: int, side: int, px: float, qty: float, fee: float, trade_id: int = 0, maker: int = 1
    ) -> None: ...

    def unknown(self, t: int, oid: int, code: int) -> None: ...

    def external_fill(self, t: int, side: int, px: float, qty: float, fee: float, trade_id: int) -> None: ...

    def set_position(self, t: int, pos: float, reason: str) -> None: ...

    def gateway_event(self, kind: str, text: str) -> None: ...


@dataclass(slots=True)
class Order:
    """One order of this session at the venue, as the gateway knows it."""

    oid: int  # the core's order id
    side: int
    px: float
    qty: float  # the venue order's quantity
    seq: int  # the client id number it has now
    t_sent_ns: int
    state: int = NEW
    acked: bool = False
    venue_id: int = 0
    filled: float = 0.0  # executed on the current venue order
    total_filled: float = 0.0  # executed over the order's life (replaces included)
    prev_seq: int = 0  # spot cancel-replace in flight: the id it replaces
    prev_px: float = 0.0
    prev_qty: float = 0.0
    unknown: bool = False  # an answer is missing: to be queried
    cancel_wanted: bool = False  # the core cancelled it while it could not be sent
    code: int = 0
    seqs: list[int] = field(default_factory=list)  # every client id number it had
    keep: bool = False  # the amend in flight keeps the order's priority (spot: quantity down only)


@dataclass
class Counters:
    orders: int = 0
    cancels: int = 0
    amends: int = 0
    keep_amends: int = 0  # spot amends sent as order.amend.keepPriority
    acks: int = 0
    rejects: int = 0
    would_take: int = 0
    fills: int = 0
    dup_fills: int = 0
    canceled: int = 0
    unknown: int = 0
    resolved: int = 0
    throttled: int = 0
    not_ready: int = 0  # actions while the gateway could not send (answered locally)
    foreign_events: int = 0
    stray: int = 0
    cancel_after_end: int = 0  # cancels the venue did not know (-2011) of orders already ended here: no query
    clock_resyncs: int = 0
    reconnects: int = 0
    reconciles: int = 0
    stream_restarts: int = 0
    skipped: int = 0  # actions the encoder could not encode (answered locally)
    dry_orders: int = 0
    errors: dict[int, int] = field(default_factory=dict)  # error code -> count


class TradeIds:
    """Fills seen, by trade id (the last ``cap``)."""

    __slots__ = ("ids", "order", "cap")

    def __init__(self, cap: int = RECENT_TRADES) -> None:
        self.ids: set[int] = set()
        self.order: deque[int] = deque()
        self.cap = cap

    def seen(self, tid: int) -> bool:
        """True if ``tid`` was seen; else it is now."""
        if tid in self.ids:
            return True
        self.ids.add(tid)
        self.order.append(tid)
        if len(self.order) > self.cap:
            self.ids.discard(self.order.popleft())
        return False


@dataclass
class SymbolInfo:
    symbol: str
    tick: float
    lot: float
    base: str
    quote: str
    rate_limits: list[dict[str, Any]]


class BinanceGateway(Gateway):
    """The gateway of one symbol on ``venue`` (``binance-spot`` / ``binance-um``).

    Parameters
    ----------
    venue, symbol : str
    vcfg : VenueConfig
        URLs, timeouts, the client id prefix, the foreign-order policy, the rate share.
    keys : Keys
    actions : ndarray
        The engine's ``actions`` (the encoder reads them by address).
    responses : LiveResponses
    session : str
        The client ids' session part (the journal's session; else the start time).
    dry_run : bool
        Connect and reconcile, but send no order: each is logged and answered locally (acked,
        cancelled) so the core goes on quoting.
    """

    def __init__(
        self,
        venue: str,
        symbol: str,
        vcfg: VenueConfig,
        keys: Keys,
        actions: np.ndarray,
        responses: LiveResponses,
        *,
        session: str,
        dry_run: bool = False,
        on_ready: Callable[[bool, str], None] | None = None,
    ) -> None:
        self.venue, self.symbol = venue, symbol.upper()
        self.um = venue == "binance-um"
        self.vcfg = vcfg
        self.keys = keys
        self.actions = actions
        self.resp = responses
        self.session = session
        self.dry_run = dry_run
        self.on_ready = on_ready
        self.on_reconcile_failed: Callable[[str], None] | None = None  # live/control.py's alert hook
        # fill -> replacement: a fill report's frame arrival (wall ns) -> the orders it caused handed
        # to the socket, when the fill made the core send (set while the report is handled)
        self.fill_to_order = LatencyRing(4096)
        self._fill_ns = 0
        self.sent_ns = 0  # wall ns just after the last requests were handed to the socket
        self._kinds, self._oids = actions["kind"], actions["oid"]  # column views of the core's actions
        self.rest_url, self.stream_url, self.ws_url = vcfg.urls(venue)
        self.clock = ClockOffset(follow=vcfg.clock == "venue")
        self.limits = RateLimits(venue, vcfg.rate_share)
        self.rest = SignedRest(
            self.rest_url, keys, self.clock, self.limits, vcfg.connect_timeout_s, vcfg.recv_window_ms
        )
        self.api = WsApi(
            self.ws_url,
            keys,
            self.clock,
            self.limits,
            on_order=self._on_order,
            on_event=self._on_spot_event,
            on_closed=self._on_api_closed,
            timeout_s=vcfg.request_timeout_s,
            recv_window_ms=vcfg.recv_window_ms,
            connect_timeout_s=vcfg.connect_timeout_s,
        )
        self.rest.resync = self._resync_clock
        self.info: SymbolInfo | None = None
        self.enc: OrderEncoder | None = None
        self.req: Requests | None = None
        self._rid: Any = None  # a view of the encoder's last request id
        self.seq0 = 0  # set by the trader before send: the journal's seq of actions[0] (0: none)
        self.cid_head = f"{vcfg.client_prefix}-{session}-"
        self.orders: dict[int, Order] = {}  # oid -> working order
        self.by_seq: dict[int, Order] = {}  # client id number -> order (every id it had)
        self.by_venue_id: dict[int, tuple[int, int]] = {}  # venue order id -> (oid, side), this session's
        self.pending: dict[int, tuple[int, Order, int]] = {}  # request id -> (kind, order, sent ns)
        self.trades = TradeIds()
        self.c = Counters()
        self.ready = False
        self.connected = False
        self.reason = "connecting"
        self.last_fill_ms = 0
        self.halted: str | None = None  # why the gateway gave up (one line)
        self.tasks: list[asyncio.Task[Any]] = []
        self.resolving: set[int] = set()  # oids whose outcome is being queried
        self.done: deque[tuple[int, Order]] = deque()  # orders done, for prune()
        self.user: Any = None  # USD-M: the listenKey stream (live/user_data.py)
        self.stream_ok = False  # the user data stream is on (spot: subscribed on the API connection)
        self.ws_frames_out = 0
        self.position: Callable[[], float] = lambda: 0.0  # the core's position (the session sets it)
        self.trouble = asyncio.Event()  # the connection or the stream lost, or a halt
        self.stopping = False
        self.last_reconcile: Any = None
        self.first_reconcile: Any = None
        self.countdowns = 0
        self.order_age_cancels = 0
        self.close_error = ""
        self.throttle_logged = -1e9  # when the order budget was last said spent (a line per 10 s at most)

    # --- set-up -------------------------------------------------------------------------------------
    def set_info(self, info: SymbolInfo) -> None:
        """The symbol's grid and assets (from exchangeInfo): the encoder is built now."""
        self.info = info
        self.enc = OrderEncoder(self.venue, self.symbol, info.tick, info.lot, self.vcfg.client_prefix, self.session)
        self.req = Requests(self.enc, self.actions)
        self.frames = ClientFrames(OUT_CAP, MAX_ACTIONS)
        self._rid = self.req.state["rid"]
        if info.rate_limits:
            self.limits.set_limits(info.rate_limits)

    def client_id(self, seq: int) -> str:
        return self.cid_head + str(seq)

    def seq_of(self, cid: str) -> int:
        """The client id number of one of this session's ids (0: not ours or another session's)."""
        if cid.startswith(self.cid_head):
            tail = cid[len(self.cid_head) :]
            if tail.isdigit():
                return int(tail)
        return 0

    def ours(self, cid: str) -> bool:
        """A client id of ours, this session's or another's (``prefix-session-seq``)."""
        parts = cid.split("-")
        return len(parts) == 3 and parts[0] == self.vcfg.client_prefix and parts[1].isalnum() and parts[2].isdigit()

    def now_ns(self) -> int:
        return self.clock.now_ns()

    def set_ready(self, ok: bool, reason: str) -> None:
        if ok == self.ready and reason == self.reason:
            return
        self.ready, self.reason = ok, reason
        if self.on_ready is not None:
            self.on_ready(ok, reason)

    # --- Gateway --------------------------------------------------------------------------------------
    def advance(self, t: int, inclusive: bool = True) -> None:
        return None

    def send(self, t: int, actions: np.ndarray, n: int) -> None:
        if n <= 0:
            return
        if self.dry_run:
            self._dry(t, actions, n)
            return
        if self.req is None or self.api.closed or self.halted is not None:
            self._not_sent(t, actions, n)
            return
        n, places, orig = self._admit(t, actions, n)
        if n <= 0:
            return
        req = self.req
        keeps = self._keep_priority(actions, n) if places and not self.um and self.vcfg.keep_priority else ()
        seq0 = self.seq0
        if seq0 > 0:  # the journal numbered the actions (their records' seqs): the client ids' numbers
            seqs = req.seqs
            for i in range(n):
                seqs[i] = seq0 + (orig[i] if orig is not None else i)
        rid0 = int(self._rid[0])
        nseq = int(req.state["seq"][0])
        k = req.encode(n, self.clock.timestamp_ms())
        if k != n:
            self._encode_mismatch(t, actions, n, k, rid0)
            return
        failed = self._write(req, k)
        # the bookkeeping after the write, off the wire-to-wire path: no answer can be read before
        # this returns (one thread), so the records exist before any answer is handled
        now = time.time_ns()
        if self._fill_ns:  # the orders a fill report caused: wire to wire
            self.fill_to_order.add(now - self._fill_ns)
            self._fill_ns = 0
        pending = self.pending
        kinds = (self._kinds if actions is self.actions else actions["kind"])[:k].tolist()
        for i in range(k):
            js = seq0 + (orig[i] if orig is not None else i) if seq0 > 0 else 0
            o, nseq = self._record(actions[i], js, nseq, now, i in keeps)
            pending[rid0 + 1 + i] = (kinds[i], o, now)
            if failed is not None and i >= failed:  # (-1: all of them)
                o.unknown = True
        if places:
            self.limits.sent_orders(places, now)

    def _write(self, req: Requests, k: int) -> int | None:
        """The ``k`` encoded requests to the socket: logged on, framed in one buffer and one write
        (``venues/ws_frames.py``); else one signed frame each. None when every write went; else
        -1 (the one write of them all failed) or the index of the first that failed: that order
        and the ones after it are unknown, the reconciliation decides."""
        api = self.api
        fr = self.frames
        m = fr.frame(req.out, req.offs, k) if api.logged_on else -1
        if m >= 0:
            try:
                api.send_frames(fr.view(m))
            except Exception:  # noqa: BLE001 - whatever failed, the orders are recorded (unknown)
                return -1
            self.sent_ns = time.time_ns()
            return None
        first: int | None = None
        for i in range(k):
            try:
                api.send_order(req.view(i))
            except Exception:  # noqa: BLE001 - whatever failed, the orders are recorded (unknown)
                if first is None:
                    first = i
        if first != 0:  # at least one went
            self.sent_ns = time.time_ns()
        return first

    def _admit(self, t: int, actions: np.ndarray, n: int) -> tuple[int, int, list[int] | None]:
        """The actions that may leave now, moved to the front: cancels and amends of orders the
        gateway no longer holds are answered here; while reconciling, or with no room in the order
        budget, places and amends are rejected to the core (requoted later). How many remain, and
        how many of them are orders (places and amends), and each one's index in the batch as given
        (None: unmoved) -- the journal numbered them in that order."""
        places = 0
        need_check = False
        orders = self.orders
        orig: list[int] | None = None
        kc, oc = (self._kinds, self._oids) if actions is self.actions else (actions["kind"], actions["oid"])
        kinds, oids = kc[:n].tolist(), oc[:n].tolist()
        for j in range(n):
            k = kinds[j]
            if k != ACT_CANCEL:
                places += 1
            if k != ACT_PLACE and oids[j] not in orders:
                need_check = True
        if need_check:
            orig = []
            n = self._drop_unknown(t, actions, n, orig)
            places = sum(1 for j in range(n) if int(actions[j]["kind"]) != ACT_CANCEL)
        if places and not self.ready:  # reconciling: cancels go, new orders wait for the next quote
            return self._throttle(t, actions, n, count=False), 0, None
        if places and not self.limits.order_room(places):
            return self._throttle(t, actions, n), 0, None
        return n, places, orig

    def _keep_priority(self, actions: np.ndarray, n: int) -> tuple[int, ...]:
        """Spot: the amends that keep the price and only lower the quantity go as
        ``order.amend.keepPriority`` (the order keeps its place in the queue): marked for the
        encoder, their quantity made the order's new total (executed + left). Their indices."""
        out: list[int] = []
        assert self.req is not None and self.info is not None
        tick, lot = self.info.tick, self.info.lot
        for i in range(n):
            a = actions[i]
            if int(a["kind"]) != ACT_AMEND:
                continue
            o = self.orders.get(int(a["oid"]))
            if o is None or o.state != LIVE or round(float(a["px"]) / tick) != round(o.px / tick):
                continue
            left = float(a["qty"])
            if left < o.qty - o.filled - 0.5 * lot:
                a["qty"] = o.filled + left
                self.req.keep[i] = 1
                out.append(i)
        return tuple(out)

    def _record(self, a: Any, js: int, nseq: int, now: int, keep: bool = False) -> tuple[Order, int]:
        """The gateway's record of a request as encoded (``js``: its journal seq, 0: none): the
        order placed, being cancelled or amended (spot: a cancel-replace under a new client id);
        the encoder's last client id number."""
        kind, oid = int(a["kind"]), int(a["oid"])
        if kind == ACT_PLACE:
            nseq = js if js > 0 else nseq + 1
            o = Order(oid, int(a["side"]), float(a["px"]), float(a["qty"]), nseq, now)
            o.seqs.append(nseq)
            self.orders[oid] = o
            self.by_seq[nseq] = o
            self.c.orders += 1
            return o, nseq
        o = self.orders[oid]
        if kind == ACT_CANCEL:
            o.state = CANCELING
            self.c.cancels += 1
            return o, nseq
        o.prev_px, o.prev_qty = o.px, o.qty
        o.px, o.qty = float(a["px"]), float(a["qty"])
        o.state = AMENDING
        o.keep = keep
        self.c.amends += 1
        if keep:
            self.c.keep_amends += 1
        elif not self.um:  # cancel-replace: a new client id
            nseq = js if js > 0 else nseq + 1
            o.prev_seq, o.seq = o.seq, nseq
            o.seqs.append(nseq)
            self.by_seq[nseq] = o
        return o, nseq

    # --- actions that do not leave --------------------------------------------------------------------
    def _dry(self, t: int, actions: np.ndarray, n: int) -> None:
        """--dry-run: log the order, answer it here (acked / cancelled, never filled)."""
        for j in range(n):
            a = actions[j]
            kind, oid, side = int(a["kind"]), int(a["oid"]), int(a["side"])
            px, qty = float(a["px"]), float(a["qty"])
            self.c.dry_orders += 1
            what = {ACT_PLACE: "place", ACT_CANCEL: "cancel", ACT_AMEND: "amend"}.get(kind, "?")
            if kind == ACT_CANCEL:
                log.info("dry-run: would cancel order %d", oid)
                self.resp.canceled(t, oid)
            else:
                log.info(
                    "dry-run: would %s %s %s %s @ %s",
                    what,
                    "BUY" if side > 0 else "SELL",
                    self.enc.quantity(qty) if self.enc else qty,
                    self.symbol,
                    self.enc.price(px) if self.enc else px,
                )
                self.resp.ack(t, oid, 0)

    def _not_sent(self, t: int, actions: np.ndarray, n: int) -> None:
        """The gateway cannot send (connecting, reconciling, halted): a place or an amend is
        rejected to the core; a cancel is kept and done by the reconciliation."""
        for j in range(n):
            a = actions[j]
            kind, oid = int(a["kind"]), int(a["oid"])
            self.c.not_ready += 1
            o = self.orders.get(oid)
            if kind == ACT_CANCEL:
                if o is not None:
                    o.cancel_wanted = True
                else:
                    self.resp.canceled(t, oid)
            elif kind == ACT_PLACE:
                self.resp.reject(t, oid, 0)
            else:  # an amend not sent: the order stays as it was
                self.resp.reject(t, oid, 0)

    def _drop_unknown(self, t: int, actions: np.ndarray, n: int, orig: list[int]) -> int:
        """Cancels and amends of orders the gateway does not hold (already gone at the venue):
        answered here and taken out of ``actions``; the rest moved to the front. How many remain."""
        w = 0
        for j in range(n):
            a = actions[j]
            kind, oid = int(a["kind"]), int(a["oid"])
            if kind != ACT_PLACE and oid not in self.orders:
                self.c.skipped += 1
                if kind == ACT_CANCEL:
                    self.resp.canceled(t, oid)
                else:
                    self.resp.reject(t, oid, 0)
                continue
            if w != j:
                actions[w] = actions[j]
            orig.append(j)
            w += 1
        return w

    def _throttle(self, t: int, actions: np.ndarray, n: int, count: bool = True) -> int:
        """No room in the order budget (or not reconciled yet): places and amends are rejected to
        the core (they are requoted later), cancels still go. How many actions remain (the
        cancels, in front)."""
        w = 0
        for j in range(n):
            a = actions[j]
            kind = int(a["kind"])
            if kind != ACT_CANCEL:
                if count:
                    self.c.throttled += 1
                    self.limits.throttled()
                else:
                    self.c.not_ready += 1
                self.resp.reject(t, int(a["oid"]), 0)
                continue
            if w != j:
                actions[w] = actions[j]
            w += 1
        now = time.monotonic()
        if count and now - self.throttle_logged >= 10.0:
            self.throttle_logged = now
            log.warning(
                "order budget spent (%s): %d place/amend not sent so far, requoted later",
                self.limits.status()["rate_orders"],
                self.c.throttled,
            )
        return w

    def _encode_mismatch(self, t: int, actions: np.ndarray, n: int, k: int, rid0: int) -> None:
        """The encoder skipped an action (a price or quantity off the grid, no room for an id):
        nothing is sent of this batch; the core's orders are answered from what the encoder holds."""
        self.c.skipped += n
        log.warning(
            "encoder skipped %d of %d actions (%s): batch not sent", n - k, n, self.req.counts() if self.req else {}
        )
        self._rid[0] = rid0
        for j in range(n):
            a = actions[j]
            kind, oid = int(a["kind"]), int(a["oid"])
            if kind == ACT_PLACE:
                if self.req is not None:
                    self.req.forget(oid)
                self.resp.reject(t, oid, 0)
            elif kind == ACT_AMEND:
                o = self.orders.get(oid)
                if o is not None:
                    self._restore_cid(o)
                self.resp.reject(t, oid, 0)
            else:
                o = self.orders.get(oid)
                if o is not None:
                    o.cancel_wanted = True
                    self._spawn(self._cancel_later(o))
                else:
                    self.resp.canceled(t, oid)

    def _restore_cid(self, o: Order) -> None:
        """The encoder's client id of ``o`` back to the one the venue knows (a cancel-replace that
        was encoded but not sent)."""
        req = self.req
        if req is None:
            return
        from avmm.venues.binance.ws_api import ID_CAP, ID_PROBE

        for j in range(ID_PROBE):
            i = (o.oid + j) & (ID_CAP - 1)
            if req.keys[i] == o.oid:
                req.vals[i] = o.seq
                return

    async def _cancel_later(self, o: Order) -> None:
        with contextlib.suppress(ApiError, TimeoutError, ConnectionError):
            await self.cancel_order(o)

    # --- responses to the order frames ---------------------------------------------------------------
    def _on_order(self, f: ApiFrame, local_ns: int) -> None:
        rid = f.id
        p = self.pending.pop(rid, None) if isinstance(rid, int) else None
        if p is None:
            self.c.stray += 1
            return
        kind, o, _ = p
        t = self.clock.now_ns(local_ns)
        if f.error is None and f.status < 400:
            if kind == ACT_PLACE:
                if f.result:
                    with contextlib.suppress(msgspec.MsgspecError):
                        o.venue_id = DECODE_ACK.decode(f.result).orderId
                        self.by_venue_id[o.venue_id] = (o.oid, o.side)
                self._alive(t, o)
            elif kind == ACT_CANCEL:
                executed = 0.0
                if f.result:
                    with contextlib.suppress(msgspec.MsgspecError):
                        executed = DECODE_ORDER.decode(f.result).executedQty
                self._end(t, o, True, executed)
            else:
                self._amended(t, o, f)
        else:
            self._on_error(t, kind, o, f)

    def _on_error(self, t: int, kind: int, o: Order, f: ApiFrame) -> None:
        """An order request refused, or its outcome unknown (-1007, a 5xx)."""
        code = f.error.code if f.error is not None else 0
        self.c.errors[code] = self.c.errors.get(code, 0) + 1
        if f.status in (418, 429) or code == -1003:
            self.api.note_error("order", f)
            if self.limits.banned:
                self.halt(self.limits.ban_text)
        if code == -1021:
            self.clock.invalidate()
            self.c.clock_resyncs += 1
            self._spawn(self._resync_clock())
        if code in (-1007, -1006) or f.status >= 500:
            self._unknown(t, o, code)
        elif kind == ACT_PLACE:
            if o.state == NEW and not o.acked:
                if code in WOULD_TAKE:
                    self.c.would_take += 1
                self._rejected(t, o, code)
        elif kind == ACT_CANCEL:
            if code in UNKNOWN_ORDER and o.state == DONE:  # filled (every fill delivered) before it arrived
                self.c.cancel_after_end += 1
            elif code in UNKNOWN_ORDER:
                self._unknown(t, o, code)  # gone or never there: the query says which
            elif o.state == CANCELING:
                o.state = LIVE  # the cancel failed (rate limit, clock): sent again
                o.cancel_wanted = True
                self._spawn(self._cancel_later(o))
        else:
            self._amend_failed(t, o, f, code)

    def _alive(self, t: int, o: Order) -> None:
        """The order is at the venue (its ack, a NEW event, a fill): acked once."""
        if not o.acked:
            o.acked = True
            if o.state == NEW:
                o.state = LIVE
            self.c.acks += 1
            self.resp.ack(t, o.oid, o.venue_id)
            if o.cancel_wanted:
                self._spawn(self._cancel_later(o))

    def _rejected(self, t: int, o: Order, code: int) -> None:
        o.state = DONE
        o.code = code
        self._forget(o)
        self.c.rejects += 1
        self.resp.reject(t, o.oid, code)

    def _gone(self, t: int, o: Order, canceled: bool) -> None:
        """The order left the book (cancelled, expired, ...): the core told once."""
        if o.state == DONE:
            return
        o.state = DONE
        self._forget(o)
        if not o.acked and o.total_filled == 0.0 and not canceled:
            self.c.rejects += 1
            self.resp.reject(t, o.oid, o.code)
        else:
            self.c.canceled += 1
            self.resp.canceled(t, o.oid)

    def _end(self, t: int, o: Order, canceled: bool, executed: float) -> None:
        """The order's end, once its fills are all delivered: the venue executed more than the
        fills seen (a report the stream lost) -> they are fetched by order id first."""
        if o.state != DONE and executed > o.filled + 1e-9 * max(1.0, o.qty) and o.venue_id:
            if o.oid not in self.resolving:
                self.resolving.add(o.oid)
                self._spawn(self._end_after_fills(o, canceled))
            return
        self._gone(t, o, canceled)

    async def _end_after_fills(self, o: Order, canceled: bool) -> None:
        try:
            try:
                await self.fetch_fills(o)
            except (ApiError, TimeoutError, ConnectionError) as e:
                log.warning(
                    "order %d: its missing fills could not be fetched (%s): the reconciliation will", o.oid, _short(e)
                )
                o.unknown = True
                return
            self._gone(self.now_ns(), o, canceled)
        finally:
            self.resolving.discard(o.oid)

    def _forget(self, o: Order) -> None:
        self.orders.pop(o.oid, None)
        if self.req is not None:
            self.req.forget(o.oid)
        self.done.append((time.monotonic_ns(), o))

    def prune(self, keep_ns: int = 120_000_000_000) -> None:
        """Orders done for ``keep_ns``: their client ids forgotten (a late event then counts as
        foreign; the fills of our ids are still booked, by trade id)."""
        now = time.monotonic_ns()
        done = self.done
        while done and now - done[0][0] > keep_ns:
            _, o = done.popleft()
            if o.state == DONE:
                for q in o.seqs:
                    if self.by_seq.get(q) is o:
                        del self.by_seq[q]

    def _amended(self, t: int, o: Order, f: ApiFrame) -> None:
        if o.state != AMENDING:
            return
        o.state = LIVE
        if not self.um and not o.keep:  # a new venue order replaced the old
            o.filled = 0.0
            o.prev_seq = 0
            if f.result:
                with contextlib.suppress(msgspec.MsgspecError):
                    cr = DECODE_CANCEL_REPLACE.decode(f.result)
                    if cr.newOrderResponse:
                        o.venue_id = DECODE_ACK.decode(cr.newOrderResponse).orderId
                        self.by_venue_id[o.venue_id] = (o.oid, o.side)
        self.c.acks += 1
        self.resp.ack(t, o.oid, o.venue_id)

    def _amend_failed(self, t: int, o: Order, f: ApiFrame, code: int) -> None:
        """A cancel-replace / modify refused. Spot: -2021 with the cancel done and the new order
        refused = the order is gone; otherwise the order is as it was (the core reverts it)."""
        if o.state != AMENDING:
            return
        cancel_done = False
        if code == -2021 and f.error is not None and f.error.data:
            with contextlib.suppress(msgspec.MsgspecError):
                cr = DECODE_CANCEL_REPLACE.decode(f.error.data)
                cancel_done = cr.cancelResult == "SUCCESS"
        if cancel_done:
            o.state = LIVE
            self._gone(t, o, canceled=True)
            return
        self._revert(o)
        self.c.rejects += 1
        self.resp.reject(t, o.oid, code)
        if code in UNKNOWN_ORDER or code == -2022 or code == -2021:
            self._unknown(t, o, code, answered=True)

    def _revert(self, o: Order) -> None:
        o.state = LIVE
        o.px, o.qty = o.prev_px, o.prev_qty
        if not self.um and o.prev_seq:
            o.seq, o.prev_seq = o.prev_seq, 0

    def _unknown(self, t: int, o: Order, code: int, answered: bool = False) -> None:
        """The outcome of a request is not known: the order is queried until it is."""
        o.unknown = True
        if not answered:
            self.c.unknown += 1
            self.resp.unknown(t, o.oid, code)
        if o.oid not in self.resolving:
            self.resolving.add(o.oid)
            self._spawn(self._resolve(o))

    # --- timeouts -----------------------------------------------------------------------------------
    def expire(self, now_ns: int | None = None) -> int:
        """Order requests unanswered for ``request_timeout_s``: unknown. How many."""
        now = time.time_ns() if now_ns is None else now_ns
        lim = int(self.vcfg.request_timeout_s * 1e9)
        n = 0
        for rid in list(self.pending):
            kind, o, t0 = self.pending[rid]
            if now - t0 < lim:
                break  # in send order
            del self.pending[rid]
            n += 1
            if kind == ACT_AMEND and o.state == AMENDING:
                pass  # the query of the order decides
            self._unknown(self.clock.now_ns(now), o, -1007)
        return n

    # --- user data ------------------------------------------------------------------------------------
    def _on_spot_event(self, raw: Any, local_ns: int) -> None:
        try:
            ev = DECODE_SPOT_EVENT.decode(raw)
        except msgspec.MsgspecError:
            return  # another kind (balanceUpdate, listStatus, ...): nothing for the orders
        if type(ev) is ExecutionReport:
            self.on_report(
                ev.x,
                ev.X,
                ev.C if ev.x == "CANCELED" and ev.C else ev.c,
                ev.i,
                ev.S,
                ev.l,
                ev.L,
                ev.n,
                ev.N,
                ev.t,
                ev.m,
                ev.T or ev.E,
                local_ns,
                ev.z,
            )
        elif type(ev) is StreamTerminated:
            self._stream_lost("eventStreamTerminated")
        else:
            self.on_account(ev)

    def on_report(
        self,
        x: str,
        status: str,
        cid: str,
        venue_id: int,
        side_s: str,
        last_qty: float,
        last_px: float,
        commission: float,
        commission_asset: str | None,
        trade_id: int,
        maker: bool,
        t_ms: int,
        local_ns: int,
        cum_qty: float,
    ) -> None:
        """One order report (spot ``executionReport``, USD-M ``ORDER_TRADE_UPDATE``'s ``o``)."""
        seq = self.seq_of(cid)
        o = self.by_seq.get(seq) if seq else None
        t = t_ms * 1_000_000 if t_ms else self.clock.now_ns(local_ns)
        if o is None:
            self._report_other(x, cid, side_s, last_qty, last_px, commission, commission_asset, trade_id, t)
            return
        if venue_id and not o.venue_id and seq == o.seq:
            o.venue_id = venue_id
            self.by_venue_id[venue_id] = (o.oid, o.side)
        if x == "TRADE":
            if trade_id and self.trades.seen(trade_id):
                self.c.dup_fills += 1
                return
            self._alive(t, o)
            self._fill_ns = local_ns
            self.deliver_fill(
                t, o, last_px, last_qty, self._fee(commission, commission_asset, last_px), trade_id, maker
            )
            self._fill_ns = 0
            if status == "FILLED" and seq == o.seq:
                self._end(t, o, True, cum_qty)
        elif x == "NEW":
            if seq == o.seq:
                self._alive(t, o)
        elif x in ("REPLACED", "AMENDMENT"):
            if o.state == AMENDING:
                o.state = LIVE
                self.c.acks += 1
                self.resp.ack(t, o.oid, o.venue_id)
        elif (x in GONE or x == "CALCULATED") and seq == o.seq:
            # (an older id of a cancel-replaced order: its cancel is the replace's, not the order's end)
            self._end(t, o, x == "CANCELED" or o.acked, cum_qty)

    def _report_other(
        self, x: str, cid: str, side_s: str, qty: float, px: float, commission: float, asset: str | None,
        trade_id: int, t: int,
    ) -> None:  # fmt: skip
        """A report on an order this session does not hold: a fill of an earlier session's order
        of ours (a restart) moves the position; a foreign order's report is counted."""
        if x == "TRADE" and self.ours(cid):
            if trade_id and not self.trades.seen(trade_id):
                fee = self._fee(commission, asset, px)
                self.resp.external_fill(t, 1 if side_s == "BUY" else -1, px, qty, fee, trade_id)
        else:
            self.c.foreign_events += 1

    def deliver_fill(
        self, t: int, o: Order, px: float, qty: float, fee: float, trade_id: int, maker: bool = True
    ) -> None:
        o.filled += qty
        o.total_filled += qty
        self.c.fills += 1
        self.last_fill_ms = max(self.last_fill_ms, t // 1_000_000)
        self.resp.fill(t, o.oid, o.side, px, qty, fee, trade_id, 1 if maker else 0)

    def _fee(self, commission: float, asset: str | None, px: float) -> float:
        """A commission in quote currency (the core's unit): the quote asset as it is, the base
        asset at the fill's price; another asset (BNB) is not converted (0, counted)."""
        info = self.info
        if not commission or info is None or asset is None or asset == info.quote:
            return commission
        if asset == info.base:
            return commission * px
        return 0.0

    def on_account(self, ev: Any) -> None:
        """Balances / positions (not used to trade: the reconciliation reads them)."""
        return None

    # --- the connection -------------------------------------------------------------------------------
    def _on_api_closed(self) -> None:
        self.connected = False
        self.stream_ok = False if not self.um else self.stream_ok
        self.trouble.set()
        if self.halted is None and not self.stopping:
            self.set_ready(False, "order connection lost")
        for _rid, (_kind, o, _t0) in list(self.pending.items()):
            o.unknown = True
        self.pending.clear()

    def _stream_lost(self, why: str) -> None:
        """The user data stream ended: no quoting until it is back and reconciled."""
        self.c.stream_restarts += 1
        self.stream_ok = False
        self.trouble.set()
        if self.halted is None and not self.stopping:
            self.set_ready(False, f"user data stream lost ({why})")

    def halt(self, line: str) -> None:
        """Give up: the session stops (one line)."""
        if self.halted is None:
            self.halted = line
            log.error("gateway halted: %s", line)
            self.trouble.set()
            self.set_ready(False, f"halted: {line}")

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()
            return
        self.tasks.append(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        with contextlib.suppress(ValueError):
            self.tasks.remove(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("gateway task failed: %s", task.exception())

    async def _resync_clock(self) -> None:
        with contextlib.suppress(ApiError, TimeoutError, ConnectionError):
            await self.api.sync_time()

    # --- queries (reconcile.py uses them too) ---------------------------------------------------------
    async def order_status(self, cid: str) -> Any:
        """``order.status`` by client id: the ``OrderInfo`` (None: the venue does not know it)."""
        try:
            res = await self.api.call(
                "order.status", {"symbol": self.symbol, "origClientOrderId": cid}, signed=True, raw=True
            )
        except ApiError as e:
            if e.code in UNKNOWN_ORDER:
                return None
            raise
        return DECODE_ORDER.decode(res)

    async def order_trades(self, venue_id: int) -> list[Any]:
        """The fills of one venue order (``myTrades`` / ``userTrades`` by ``orderId``)."""
        from avmm.venues.binance.private import DECODE_TRADES

        if self.um:
            body = await self.rest.request("GET", "/fapi/v1/userTrades", {"symbol": self.symbol, "orderId": venue_id})
            return list(DECODE_TRADES.decode(body))
        res = await self.api.call("myTrades", {"symbol": self.symbol, "orderId": venue_id}, signed=True, raw=True)
        return list(DECODE_TRADES.decode(res))

    async def cancel_order(self, o: Order) -> None:
        """Cancel one of this session's orders and wait for the answer (not the hot path: the
        reconciliation, a cancel that failed)."""
        try:
            await self.api.call(
                "order.cancel", {"symbol": self.symbol, "origClientOrderId": self.client_id(o.seq)}, signed=True
            )
        except ApiError as e:
            if e.code not in UNKNOWN_ORDER:
                raise
        o.cancel_wanted = False
        await self.settle(o)

    async def settle(self, o: Order) -> bool:
        """Query ``o`` and tell the core what happened to it (missing fills first): True when its
        outcome is known."""
        t = self.now_ns()
        info = await self._query(o)
        o.unknown = False
        if info is None:  # the venue never had it
            if o.state != DONE:
                if o.acked or o.total_filled > 0:
                    self._gone(t, o, canceled=True)
                else:
                    self._rejected(t, o, o.code or -2013)
            return True
        if info.orderId and not o.venue_id:
            o.venue_id = info.orderId
            self.by_venue_id[o.venue_id] = (o.oid, o.side)
        if info.executedQty > o.filled + 1e-12:
            await self.fetch_fills(o)
        if info.status not in ("NEW", "PARTIALLY_FILLED"):
            if o.state != DONE:
                self._gone(t, o, canceled=info.status == "CANCELED" or info.executedQty > 0 or o.acked)
            return True
        self._alive(t, o)
        if o.state == AMENDING:
            o.state = LIVE
            self.resp.ack(t, o.oid, o.venue_id)
        elif o.state == CANCELING or o.cancel_wanted:
            o.state = LIVE
            o.cancel_wanted = True
        return True

    async def _query(self, o: Order) -> Any:
        """``o`` at the venue by its client id (a spot cancel-replace in flight: the new id, else
        the old one -- then the replace never happened and the order is the old one)."""
        info = await self.order_status(self.client_id(o.seq))
        if info is None and o.prev_seq:
            info = await self.order_status(self.client_id(o.prev_seq))
            if info is not None:
                self._revert(o)
        return info

    async def fetch_fills(self, o: Order) -> None:
        """The fills of ``o``'s venue order that were not delivered, delivered now (by trade id)."""
        if not o.venue_id:
            return
        for tr in await self.order_trades(o.venue_id):
            if tr.id and self.trades.seen(tr.id):
                continue
            maker = tr.isMaker if tr.isMaker is not None else bool(tr.maker)
            t = tr.time * 1_000_000 if tr.time else self.now_ns()
            self._alive(t, o)
            self.deliver_fill(
                t, o, tr.price, tr.qty, self._fee(tr.commission, tr.commissionAsset, tr.price), tr.id, maker
            )

    async def _resolve(self, o: Order) -> None:
        """Query an order whose outcome is unknown until the venue says (bounded; the
        reconciliation after a reconnect takes over)."""
        try:
            for i in range(self.vcfg.reconcile_retries):
                if o.state == DONE or not o.unknown:
                    return
                if self.api.closed:
                    return  # the reconciliation will settle it
                try:
                    await self.settle(o)
                    self.c.resolved += 1
                    if o.cancel_wanted and o.state != DONE:
                        await self.cancel_order(o)
                    return
                except (ApiError, TimeoutError, ConnectionError) as e:
                    log.warning("order %d: outcome unknown, query %d failed: %s", o.oid, i + 1, e)
                    await asyncio.sleep(min(5.0, 0.2 * 2**i))
        finally:
            self.resolving.discard(o.oid)

    # --- the gateway's life -------------------------------------------------------------------------
    async def fetch_info(self) -> SymbolInfo:
        """The symbol's tick, lot, assets and the venue's rate limits (``exchangeInfo``)."""
        path = "/fapi/v1/exchangeInfo" if self.um else "/api/v3/exchangeInfo"
        doc = await self.rest.json("GET", path, {"symbol": self.symbol} if not self.um else None, signed=False)
        tick = lot = 0.0
        base = quote = ""
        for s_ in doc.get("symbols", []) if isinstance(doc, dict) else []:
            if str(s_.get("symbol", "")).upper() != self.symbol:
                continue
            base, quote = str(s_.get("baseAsset", "")), str(s_.get("quoteAsset", ""))
            for f in s_.get("filters", []):
                if f.get("filterType") == "PRICE_FILTER" and f.get("tickSize"):
                    tick = float(f["tickSize"])
                elif f.get("filterType") == "LOT_SIZE" and f.get("stepSize"):
                    lot = float(f["stepSize"])
        if not (tick > 0 and lot > 0):
            raise ApiError("exchangeInfo", 200, 0, f"{self.symbol}: no PRICE_FILTER / LOT_SIZE for the symbol")
        limits = doc.get("rateLimits", []) if isinstance(doc, dict) else []
        return SymbolInfo(self.symbol, tick, lot, base, quote, list(limits))

    async def connect(self) -> None:
        """The WebSocket API connection (logged on with an Ed25519 key), the clock, the user data."""
        self.trouble.clear()
        await self.api.open()
        self.connected = True
        with contextlib.suppress(ApiError, TimeoutError, ConnectionError):
            await self.api.sync_time()
        self.stream_ok = False
        await self.start_stream()

    async def start_stream(self) -> None:
        from avmm.live.user_data import FuturesUserStream, subscribe_spot

        if self.um:
            if self.user is None:
                self.user = FuturesUserStream(self)
            await self.user.start()
        else:
            await subscribe_spot(self)
        self.stream_ok = True

    async def run(self, recovery: Any = None) -> None:
        """Connect, reconcile, then watch: a lost connection or stream is re-opened and reconciled
        (``venue.reconcile_retries`` attempts in a row, then a halt). Returns at ``stop()`` or a halt."""
        attempts = 0
        first = True
        ticker = asyncio.get_running_loop().create_task(self._ticker())
        try:
            while not self.stopping and self.halted is None:
                try:
                    if await self._attempt(recovery if first else None, first):
                        first = False
                        attempts = 0
                        self.set_ready(True, "ok")
                        await self.trouble.wait()
                    else:
                        first = False
                except (ApiError, TimeoutError, ConnectionError, OSError, RuntimeError) as e:
                    if self.stopping:
                        break
                    attempts += 1
                    if not self._retry(e, attempts):
                        break
                    await asyncio.sleep(min(self.vcfg.backoff_max_s, self.vcfg.backoff_min_s * 2**attempts))
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def _attempt(self, recovery: Any, first: bool) -> bool:
        """Connect (or re-open the user data) and reconcile; True when ready to quote."""
        from avmm.live.reconcile import reconcile

        if self.info is None:
            self.set_info(await self.fetch_info())
        if self.api.closed:
            if not first:
                self.c.reconnects += 1
            await self.connect()
        elif not self.stream_ok:
            self.trouble.clear()
            await self.start_stream()
        self.set_ready(False, "reconciling")
        res = await reconcile(self, recovery, self.position())
        if first:
            self.first_reconcile = res
        self.last_reconcile = res
        if self.api.closed or not self.stream_ok:
            return False  # lost again meanwhile
        if self.um and self.vcfg.countdown_s > 0:
            await self.countdown(self.vcfg.countdown_s)
        return True

    def _retry(self, e: BaseException, attempts: int) -> bool:
        """A failed attempt: False (halted) when it cannot get better."""
        fatal = isinstance(e, ApiError) and e.code in FATAL_CODES
        if self.limits.banned:
            self.halt(self.limits.ban_text)
            return False
        if fatal or attempts >= self.vcfg.reconcile_retries:
            what = "the venue refused the API key" if fatal else "could not connect and reconcile"
            line = f"{what} after {attempts} attempt(s): {_short(e)}"
            self.halt(line)
            if self.on_reconcile_failed is not None:
                self.on_reconcile_failed(line)
            return False
        self.set_ready(False, f"reconnecting ({_short(e)})")
        log.warning("gateway: attempt %d failed: %s", attempts, _short(e))
        self.api.close()
        return True

    async def _ticker(self) -> None:
        """Every 20 ms: order requests timed out; every ``clock_sync_s``: a clock sample; the USD-M
        dead-man switch renewed every third of ``countdown_s``; the listenKey kept alive; every
        second, orders older than ``max_order_age_s`` cancelled and done orders pruned."""
        loop = asyncio.get_running_loop()
        next_sync = next_cd = next_ka = next_prune = loop.time()
        cd = self.vcfg.countdown_s
        while True:
            await asyncio.sleep(0.02)
            now = loop.time()
            if self.pending:
                self.expire()
            if not self.connected or self.api.closed:
                continue
            if now >= next_sync or self.clock.stale:
                # every clock_sync_s; every second while the clock's rate is not measured
                next_sync = now + (1.1 if self.clock.settling else self.vcfg.clock_sync_s)
                self._spawn(self._resync_clock())
            if self.um and cd > 0 and self.ready and now >= next_cd:
                next_cd = now + cd / 3
                self._spawn(self._countdown_quiet(cd))
            if self.um and self.user is not None and now >= next_ka:
                if next_ka > 0 and self.user.key:
                    self._spawn(self.user.keepalive())
                next_ka = now + self.vcfg.listen_key_keepalive_s
            if now >= next_prune:  # every second
                next_prune = now + 1.0
                self.prune()
                if self.vcfg.max_order_age_s > 0 and self.ready:
                    self._old_orders()

    def _old_orders(self) -> None:
        lim = int(self.vcfg.max_order_age_s * 1e9)
        now = time.time_ns()
        for o in list(self.orders.values()):
            if o.state == LIVE and now - o.t_sent_ns > lim and o.oid not in self.resolving:
                self.order_age_cancels += 1
                o.state = CANCELING
                self._spawn(self._cancel_later(o))

    async def countdown(self, seconds: float) -> None:
        """USD-M's dead-man switch: every order on the symbol cancelled by the venue ``seconds``
        from now unless renewed (0: off)."""
        await self.rest.request(
            "POST", "/fapi/v1/countdownCancelAll", {"symbol": self.symbol, "countdownTime": int(seconds * 1000)}
        )
        self.countdowns += 1

    async def _countdown_quiet(self, seconds: float) -> None:
        try:
            await self.countdown(seconds)
        except (ApiError, TimeoutError, ConnectionError) as e:
            log.warning("countdownCancelAll failed: %s", _short(e))

    async def close(self, wait_s: float = 5.0) -> None:
        """The end: the cancels the core sent answered (up to ``wait_s``), then every order of ours
        still open at the venue cancelled and settled, the dead-man switch off, the streams closed."""
        loop = asyncio.get_running_loop()
        end = loop.time() + wait_s
        while self.orders and loop.time() < end and not self.api.closed:
            await asyncio.sleep(0.01)
            self.expire()
        self.stopping = True
        self.set_ready(False, "stopping")
        self.trouble.set()
        try:
            for attempt in range(3):  # bounded: the sweep, again after a failure
                try:
                    await self._sweep()
                    self.close_error = ""
                    break
                except (ApiError, TimeoutError, ConnectionError, OSError, RuntimeError) as e:
                    self.close_error = _short(e)
                    log.warning("gateway: the final cancel-all, attempt %d: %s", attempt + 1, self.close_error)
                    self.api.close()
                    await asyncio.sleep(0.2 * 2**attempt)
            if self.close_error:
                log.error("gateway: the final cancel-all failed: %s", self.close_error)
        finally:
            for task in list(self.tasks):
                task.cancel()
            if self.user is not None:
                await self.user.stop()
            self.api.close()
            await self.rest.close()

    async def _sweep(self) -> None:
        """Every order of ours still open at the venue cancelled, every order settled; the USD-M
        dead-man switch off. A closed connection is opened again for it (not in a halt)."""
        from avmm.live.reconcile import cancel_venue_order, open_orders

        if self.dry_run or self.info is None or self.limits.banned or (self.halted is not None and self.api.closed):
            return
        if self.api.closed:
            await self.api.open()
        for oi in await open_orders(self):
            if self.ours(oi.clientOrderId):
                await cancel_venue_order(self, oi.orderId)
        for o in list(self.orders.values()):
            await self.settle(o)
        if self.um and self.vcfg.countdown_s > 0:
            await self.countdown(0)

    # --- status -----------------------------------------------------------------------------------------
    def by_seq_oid(self, oid: int) -> Order | None:
        """This session's order ``oid`` (working or done lately), else None."""
        o = self.orders.get(oid)
        if o is not None:
            return o
        return next((x for _, x in self.done if x.oid == oid), None)

    def working(self) -> list[tuple[int, float, float]]:
        """Our working orders: (side, price, quantity left)."""
        return [(o.side, o.px, o.qty - o.filled) for o in self.orders.values() if o.state != DONE]

    def status(self) -> dict[str, Any]:
        c = self.c
        out: dict[str, Any] = {
            "gateway_ready": self.ready,
            "gateway_reason": self.reason,
            "orders_sent": c.orders,
            "cancels_sent": c.cancels,
            "amends_sent": c.amends,
            "keep_priority_amends": c.keep_amends,
            "acks": c.acks,
            "rejects": c.rejects,
            "would_take": c.would_take,
            "venue_fills": c.fills,
            "dup_fills": c.dup_fills,
            "unknown": c.unknown,
            "unknown_open": sum(1 for o in self.orders.values() if o.unknown),
            "throttled": c.throttled,
            "not_ready": c.not_ready,
            "in_flight": len(self.pending),
            "open_orders": len(self.orders),
            "reconnects": c.reconnects,
            "reconciles": c.reconciles,
            "stream_restarts": c.stream_restarts,
            "clock_resyncs": c.clock_resyncs,
            "dry_orders": c.dry_orders,
            "countdowns": self.countdowns,
            "foreign_events": c.foreign_events,
            "foreign_open_at_start": self.first_reconcile.open_foreign if self.first_reconcile is not None else None,
            "order_age_cancels": self.order_age_cancels,
            "error_codes": {str(k): v for k, v in sorted(c.errors.items())},
        }
        f2o = self.fill_to_order.percentiles_us((50.0, 99.0))
        out["fill_to_order_us_p50"], out["fill_to_order_us_p99"] = f2o[0], f2o[1]
        out["fill_to_order_n"] = self.fill_to_order.n
        out.update(self.clock.status())
        out.update(self.limits.status())
        return out
