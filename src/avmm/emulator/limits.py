"""Binance's rate limits on the emulator's REST and WebSocket API, counted on the venue clock.

* Request weight, per IP (every client of the emulator is one IP): a minute's budget (spot 6000,
  USD-M 2400), intervals aligned to the clock (a minute starts every minute). A request past it is
  answered 429 with -1003 and ``retryAfter`` (the end of the interval); a request before that time
  has come is a repeat offence: 418, the IP banned for 2 minutes (doubling with each ban, up to 3
  days), every request answered 418 with ``retryAfter`` = the ban's end.
* Orders, per account: spot 50 per 10 s and 160,000 per day; USD-M 300 per 10 s and 1,200 per
  minute. An order past one is answered 429 with -1015 (no ban).

The ``weightlimit`` and ``orderlimit`` faults move the weight and the 10 s order budgets (0: none);
``ratelimit:N`` answers the next N requests 429 whatever the counts (no ban follows from them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from avmm.emulator.matching import ApiError

BAN_MS = 120_000  # the first ban (Binance: from 2 minutes to 3 days)
BAN_MAX_MS = 3 * 86_400_000

# (rateLimitType, interval, intervalNum, ms)
WEIGHT_1M = ("REQUEST_WEIGHT", "MINUTE", 1, 60_000)
ORDERS_10S = ("ORDERS", "SECOND", 10, 10_000)
ORDERS_1D = ("ORDERS", "DAY", 1, 86_400_000)
ORDERS_1M = ("ORDERS", "MINUTE", 1, 60_000)


@dataclass
class _Window:
    """One interval's count (the interval index it belongs to)."""

    ms: int
    limit: int
    idx: int = -1
    count: int = 0

    def used(self, now_ms: int) -> int:
        return self.count if now_ms // self.ms == self.idx else 0

    def add(self, now_ms: int, n: int) -> int:
        i = now_ms // self.ms
        if i != self.idx:
            self.idx, self.count = i, 0
        self.count += n
        return self.count

    def end(self, now_ms: int) -> int:
        return (now_ms // self.ms + 1) * self.ms


class Limits:
    """The request-weight budget of the IP and the order budgets of each account."""

    def __init__(self, um: bool) -> None:
        self.um = um
        self.weight = _Window(60_000, 2400 if um else 6000)
        self.order_specs = [ORDERS_10S, ORDERS_1M] if um else [ORDERS_10S, ORDERS_1D]
        self.order_limits = [300, 1200] if um else [50, 160_000]
        self.orders: dict[str, list[_Window]] = {}
        self.burst = 0  # the ``ratelimit`` fault: requests still to answer 429
        self.retry_until = 0  # the end of the last 429's interval (a request before it: banned)
        self.ban_until = 0
        self.bans = 0
        self.n429 = 0
        self.n418 = 0
        self.n1015 = 0

    # -- knobs -----------------------------------------------------------------------------------
    def set_weight_limit(self, n: int) -> None:
        self.weight.limit = n

    def set_order_limit(self, n: int) -> None:
        self.order_limits[0] = n
        for ws in self.orders.values():
            ws[0].limit = n

    def exchange_info_limits(self) -> list[dict[str, Any]]:
        """``exchangeInfo``'s ``rateLimits`` (a knob set to 0 shows a very large limit)."""
        big = 1 << 31
        out = [_spec(WEIGHT_1M, self.weight.limit or big)]
        out += [_spec(s, n or big) for s, n in zip(self.order_specs, self.order_limits, strict=True)]
        if not self.um:
            out.append({"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000})
        return out

    # -- counting --------------------------------------------------------------------------------
    def charge(self, now_ms: int, weight: int) -> None:
        """Count a request's weight; raises the 429 / 418 ``ApiError`` when it may not run."""
        if now_ms < self.ban_until:
            self.n418 += 1
            raise self._banned(now_ms)
        if self.burst > 0:
            self.burst -= 1
            self.n429 += 1
            raise self._too_much(now_ms, self.weight.end(now_ms))
        w = self.weight
        if now_ms < self.retry_until:  # it was told to wait: banned
            self.bans += 1
            self.ban_until = now_ms + min(BAN_MAX_MS, BAN_MS << (self.bans - 1))
            self.retry_until = 0
            self.n418 += 1
            raise self._banned(now_ms)
        n = w.add(now_ms, weight)
        if w.limit and n > w.limit:
            self.retry_until = w.end(now_ms)
            self.n429 += 1
            raise self._too_much(now_ms, self.retry_until)

    def _banned(self, now_ms: int) -> ApiError:
        msg = (
            f"Way too much request weight used; IP banned until {self.ban_until}. "
            "Please use WebSocket Streams for live updates to avoid bans."
        )
        return ApiError(-1003, msg, 418, {"serverTime": now_ms, "retryAfter": self.ban_until})

    def _too_much(self, now_ms: int, until: int) -> ApiError:
        msg = (
            f"Too much request weight used; current limit is {self.weight.limit} request weight per 1 MINUTE. "
            "Please use WebSocket Streams for live updates to avoid polling the API."
        )
        return ApiError(-1003, msg, 429, {"serverTime": now_ms, "retryAfter": until})

    def _windows(self, account: str) -> list[_Window]:
        ws = self.orders.get(account)
        if ws is None:
            ws = self.orders[account] = [
                _Window(s[3], n) for s, n in zip(self.order_specs, self.order_limits, strict=True)
            ]
        return ws

    def charge_order(self, account: str, now_ms: int) -> None:
        """Count one new order of ``account``; raises -1015 (429) past a budget."""
        for spec, w in zip(self.order_specs, self._windows(account), strict=True):
            if w.limit and w.used(now_ms) + 1 > w.limit:
                self.n1015 += 1
                unit = f"{spec[2]} {spec[1]}"
                raise ApiError(
                    -1015,
                    f"Too many new orders; current limit is {w.limit} orders per {unit}.",
                    429,
                    {"serverTime": now_ms, "retryAfter": w.end(now_ms)},
                )
        for w in self._windows(account):
            w.add(now_ms, 1)

    def rate_limits(self, now_ms: int, account: str | None, orders: bool) -> list[dict[str, Any]]:
        """A response's ``rateLimits``: the order budgets (when it placed one) and the weight."""
        out = []
        if orders and account is not None:
            for spec, w in zip(self.order_specs, self._windows(account), strict=True):
                out.append({**_spec(spec, w.limit or (1 << 31)), "count": w.used(now_ms)})
        out.append({**_spec(WEIGHT_1M, self.weight.limit or (1 << 31)), "count": self.weight.used(now_ms)})
        return out

    def headers(self, now_ms: int, account: str | None) -> dict[str, str]:
        """REST's headers: ``X-MBX-USED-WEIGHT-1M`` and the order counts of the account."""
        h = {"X-MBX-USED-WEIGHT-1M": str(self.weight.used(now_ms))}
        if account is not None:
            for spec, w in zip(self.order_specs, self._windows(account), strict=True):
                unit = {"SECOND": "S", "MINUTE": "M", "DAY": "D"}[spec[1]]
                h[f"X-MBX-ORDER-COUNT-{spec[2]}{unit}"] = str(w.used(now_ms))
        return h

    def status(self) -> dict[str, Any]:
        return {
            "weight_limit": self.weight.limit,
            "order_limit_10s": self.order_limits[0],
            "rejects_429": self.n429,
            "rejects_418": self.n418,
            "rejects_1015": self.n1015,
            "banned_until": self.ban_until,
        }


def _spec(spec: tuple[str, str, int, int], limit: int) -> dict[str, Any]:
    return {"rateLimitType": spec[0], "interval": spec[1], "intervalNum": spec[2], "limit": limit}
