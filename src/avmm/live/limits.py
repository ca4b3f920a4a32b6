"""The venue's rate limits, as the gateway keeps within them.

The limits come from ``exchangeInfo`` (``rateLimits``: ``REQUEST_WEIGHT``, ``ORDERS``,
``RAW_REQUESTS`` per ``SECOND`` / ``MINUTE`` / ``DAY`` x ``intervalNum``), never hard-coded (the
defaults below are used only until exchangeInfo is read). Each bucket keeps:

* for ``ORDERS``: the local send times of our orders (places and amends) in a ring, so the count in
  the last window is exact on our side; the venue's own count (a WebSocket API response's
  ``rateLimits``, a REST response's ``X-MBX-ORDER-COUNT-10S`` / ``-1M`` / ``-1D`` header) raises it
  when it is higher (other sessions on the account, requests we did not see answered);
* for ``REQUEST_WEIGHT``: the venue's count only (``X-MBX-USED-WEIGHT-1M``, the responses'
  ``rateLimits``).

``order_room(n, now)``: may ``n`` more orders leave now, within ``share`` of every ORDERS bucket
(``venue.rate_share``)? An order that would not fit is not sent: the gateway answers it as rejected
(the core requotes later) and counts it (``throttled``). ``HTTP 429`` / ``-1003``: nothing but
cancels until ``retryAfter`` (``blocked_until_ns``); ``418`` (an IP ban): ``banned`` -- the session
halts with one line.
"""

from __future__ import annotations

import time
from array import array
from dataclasses import dataclass, field
from typing import Any

INTERVAL_NS = {"SECOND": 1_000_000_000, "MINUTE": 60_000_000_000, "HOUR": 3_600_000_000_000, "DAY": 86_400_000_000_000}
HEADER_ORDERS = {"X-MBX-ORDER-COUNT-10S": 10_000_000_000, "X-MBX-ORDER-COUNT-1M": 60_000_000_000}
HEADER_WEIGHT = "X-MBX-USED-WEIGHT-1M"

# until exchangeInfo is read (Binance's documented figures, mid-2026)
DEFAULTS: dict[str, list[dict[str, Any]]] = {
    "binance-spot": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000},
    ],
    "binance-um": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
    ],
}
RING = 1 << 15  # local send times kept per ORDERS bucket (>= any limit it is used for)


@dataclass
class Bucket:
    kind: str  # REQUEST_WEIGHT, ORDERS, RAW_REQUESTS
    window_ns: int
    limit: int
    venue_count: int = 0  # the venue's last count in this window
    venue_at_ns: int = 0  # when (local wall clock)
    times: array = field(default_factory=lambda: array("q"))  # ORDERS: our send times (a ring)
    n: int = 0  # sends recorded
    i0: int = 0  # the first send still in the window (as last seen)

    @property
    def key(self) -> tuple[str, int]:
        return (self.kind, self.window_ns)

    def local_count(self, now: int) -> int:
        """Our sends in the last window (ORDERS only): the ring's oldest send still in it is found by
        moving ``i0`` forward (send times only grow), O(1) amortized."""
        if not self.times:
            return 0
        cap = len(self.times)
        lo = now - self.window_ns
        i = max(self.i0, self.n - cap)
        while i < self.n and self.times[i % cap] <= lo:
            i += 1
        self.i0 = i
        return self.n - i

    def used(self, now: int) -> int:
        local = self.local_count(now)
        # the venue's windows are aligned to the interval: its count holds until the window turns
        if self.venue_at_ns and now // self.window_ns == self.venue_at_ns // self.window_ns:
            return max(local, self.venue_count)
        return local


class RateLimits:
    """The rate limits of one venue (``venue``: binance-spot / binance-um) at ``share`` of each."""

    def __init__(self, venue: str, share: float = 0.8, limits: list[dict[str, Any]] | None = None) -> None:
        self.venue = venue
        self.share = share
        self.buckets: list[Bucket] = []
        self.orders: list[Bucket] = []
        self.blocked_until_ns = 0
        self.banned = False
        self.ban_text = ""
        self.n_429 = 0
        self.n_throttled = 0  # orders not sent: no room in a bucket
        self.max_orders_used: dict[str, int] = {}  # the highest count seen in each ORDERS window, ours
        self.from_exchange = False
        self.set_limits(limits if limits is not None else DEFAULTS[venue], from_exchange=False)

    def set_limits(self, limits: list[dict[str, Any]], from_exchange: bool = True) -> None:
        """The buckets from ``exchangeInfo``'s ``rateLimits``; unknown intervals are skipped."""
        old = {b.key: b for b in self.buckets}
        out: list[Bucket] = []
        for r in limits:
            try:
                kind = str(r["rateLimitType"])
                w = INTERVAL_NS[str(r["interval"])] * int(r["intervalNum"])
                lim = int(r["limit"])
            except (KeyError, TypeError, ValueError):
                continue
            b = Bucket(kind, w, lim)
            prev = old.get(b.key)
            if kind == "ORDERS":
                if prev is not None and prev.times:
                    b.times, b.n, b.i0 = prev.times, prev.n, prev.i0
                else:
                    b.times = array("q", bytes(8 * RING))
            out.append(b)
        if out:
            self.buckets = out
            self.orders = [b for b in out if b.kind == "ORDERS"]
            self.from_exchange = from_exchange

    # --- orders -------------------------------------------------------------------------------------
    def order_room(self, n: int, now: int | None = None) -> bool:
        """May ``n`` more orders leave now?"""
        if self.banned:
            return False
        now = time.time_ns() if now is None else now
        if now < self.blocked_until_ns:
            return False
        for b in self.orders:  # noqa: SIM110 (no generator on the order path)
            if b.used(now) + n > self.share * b.limit:
                return False
        return True

    def sent_orders(self, n: int, now: int | None = None) -> None:
        now = time.time_ns() if now is None else now
        for b in self.orders:
            cap = len(b.times)
            for _ in range(n):
                b.times[b.n % cap] = now
                b.n += 1
            c = b.local_count(now)
            name = _name(b)
            if c > self.max_orders_used.get(name, 0):
                self.max_orders_used[name] = c

    def throttled(self) -> None:
        self.n_throttled += 1

    # --- the venue's counters ---------------------------------------------------------------------
    def update(self, counts: Any, now: int | None = None) -> None:
        """A WebSocket API response's ``rateLimits`` (objects with ``rateLimitType``, ``interval``,
        ``intervalNum``, ``limit``, ``count``)."""
        now = time.time_ns() if now is None else now
        for r in counts:
            w = INTERVAL_NS.get(r.interval, 0) * r.intervalNum
            for b in self.buckets:
                if b.kind == r.rateLimitType and b.window_ns == w:
                    b.venue_count, b.venue_at_ns = int(r.count), now
                    if r.limit and r.limit != b.limit:
                        b.limit = int(r.limit)

    def update_headers(self, headers: Any, now: int | None = None) -> None:
        """A REST response's ``X-MBX-USED-WEIGHT-1M`` / ``X-MBX-ORDER-COUNT-*``."""
        now = time.time_ns() if now is None else now
        for b in self.buckets:
            if b.kind == "REQUEST_WEIGHT" and b.window_ns == 60_000_000_000:
                v = headers.get(HEADER_WEIGHT, "")
                if v.isdigit():
                    b.venue_count, b.venue_at_ns = int(v), now
            elif b.kind == "ORDERS":
                for h, w in HEADER_ORDERS.items():
                    v = headers.get(h, "")
                    if w == b.window_ns and v.isdigit():
                        b.venue_count, b.venue_at_ns = int(v), now

    def weight_room(self, cost: int, now: int | None = None) -> bool:
        """May a request of weight ``cost`` leave now (queries, not orders)?"""
        if self.banned:
            return False
        now = time.time_ns() if now is None else now
        if now < self.blocked_until_ns:
            return False
        return all(b.used(now) + cost <= self.share * b.limit for b in self.buckets if b.kind == "REQUEST_WEIGHT")

    def too_many(self, retry_after_s: float, now: int | None = None) -> None:
        """HTTP 429 / -1003: no orders or queries until ``retry_after_s`` (at least 1 s)."""
        now = time.time_ns() if now is None else now
        self.n_429 += 1
        self.blocked_until_ns = max(self.blocked_until_ns, now + int(max(1.0, retry_after_s) * 1e9))

    def ban(self, text: str) -> None:
        """HTTP 418: the IP is banned."""
        self.banned = True
        self.ban_text = text

    def status(self, now: int | None = None) -> dict[str, Any]:
        now = time.time_ns() if now is None else now
        return {
            "rate_orders": {_name(b): [b.used(now), b.limit] for b in self.orders},
            "rate_orders_max": dict(self.max_orders_used),  # our most orders in any window, per window
            "rate_weight": {_name(b): [b.used(now), b.limit] for b in self.buckets if b.kind == "REQUEST_WEIGHT"},
            "rate_throttled": self.n_throttled,
            "rate_429": self.n_429,
            "rate_limits_from": "exchangeInfo" if self.from_exchange else "defaults",
        }


def _name(b: Bucket) -> str:
    s = b.window_ns // 1_000_000_000
    return f"{s // 86400}d" if s % 86400 == 0 else f"{s // 60}m" if s % 60 == 0 else f"{s}s"
