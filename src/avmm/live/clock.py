"""The venue's clock as seen from here: an offset estimated continuously with a minimum-RTT filter.

Each sample is a request sent at local ``t0``, answered with the venue's ``serverTime`` (ms), and
received at ``t1``: the venue read its clock somewhere within ``[t0, t1]``, so ``server - (t0 + t1)
/ 2`` is the offset with an error of at most ``(t1 - t0) / 2`` (+ 0.5 ms of the millisecond
rounding). Of the last ``window`` samples, the one with the shortest round trip gives the offset
(queueing only ever adds delay, so the fastest sample is the least disturbed). ``timestamp_ms()`` is
what a signed request carries.

The venue's clock is taken to run at the local clock's rate unless two samples at least
``RATE_MIN_NS`` apart say otherwise by more than ``RATE_TOL`` (the emulator replaying at
``--speed 10`` runs 10 x): then the time since the sample in use is scaled by that rate. A
``-1021`` (the venue found a timestamp outside the recvWindow) calls ``invalidate()``: the window is
emptied and a new sample taken at once.

``follow=False`` (``venue.clock = "local"``): the samples are counted, the offset stays 0 and the
rate 1 -- the timestamps are this machine's clock as it is (the emulator replaying faster than real
time accepts them; no estimate can follow a clock running 200 x, which ``avmm bench live`` does).
"""

from __future__ import annotations

import time
from collections import deque

WINDOW = 16  # samples the minimum-RTT filter looks at
DRIFT_ALARM_NS = 50_000_000  # an offset moving this much between two estimates is reported
RATE_MIN_NS = 1_000_000_000  # local time between the two samples a rate is measured over
RATE_TOL = 0.01  # a rate within 1 % of 1 is 1 (a real venue: ppm drift)


class ClockOffset:
    """The venue's time from the local wall clock (``time.time_ns``)."""

    __slots__ = (
        "samples", "offset_ns", "rtt_ns", "n", "stale", "drift_alarms", "last_ns", "max_drift_ns", "rate",
        "at_local", "at_venue", "first", "follow",
    )  # fmt: skip

    def __init__(self, window: int = WINDOW, follow: bool = True) -> None:
        self.follow = follow
        self.samples: deque[tuple[int, int, int]] = deque(maxlen=window)  # (rtt, local mid, venue)
        self.offset_ns = 0  # venue - local at the sample in use
        self.rtt_ns = -1  # its round trip (-1: none yet)
        self.at_local = 0  # the sample in use: local mid time and the venue's time then
        self.at_venue = 0
        self.rate = 1.0
        self.first: tuple[int, int] | None = None  # the oldest sample since invalidate(): (local, venue)
        self.n = 0  # samples taken
        self.stale = True  # no sample since the start or the last invalidate()
        self.drift_alarms = 0
        self.max_drift_ns = 0
        self.last_ns = 0  # when the last sample was taken (local wall clock)

    def sample(self, t0_ns: int, t1_ns: int, server_ms: int) -> None:
        """One round trip: sent at ``t0_ns``, answered ``server_ms``, received at ``t1_ns``."""
        if t1_ns < t0_ns or server_ms <= 0:
            return
        if not self.follow:
            self.rtt_ns, self.n, self.stale, self.last_ns = t1_ns - t0_ns, self.n + 1, False, t1_ns
            return
        mid = (t0_ns + t1_ns) // 2
        venue = server_ms * 1_000_000 + 500_000
        if self.first is None:
            self.first = (mid, venue)
        elif mid - self.first[0] >= RATE_MIN_NS:
            r = (venue - self.first[1]) / (mid - self.first[0])
            self.rate = 1.0 if abs(r - 1.0) < RATE_TOL else max(r, 0.0)
        before = self.now_ns(t1_ns) if self.n else 0
        self.samples.append((t1_ns - t0_ns, mid, venue))
        if self.rate != 1.0:  # a clock running at another rate: the latest sample is the best
            rtt, lm, v = self.samples[-1]
        else:
            rtt, lm, v = min(self.samples)
        self.rtt_ns, self.at_local, self.at_venue = rtt, lm, v
        self.offset_ns = v - lm
        if self.n:
            d = abs(self.now_ns(t1_ns) - before)
            self.max_drift_ns = max(self.max_drift_ns, d)
            if d > DRIFT_ALARM_NS:
                self.drift_alarms += 1
        self.n += 1
        self.stale = False
        self.last_ns = t1_ns

    @property
    def settling(self) -> bool:
        """Fewer than two samples ``RATE_MIN_NS`` apart since the start or ``invalidate()``: the
        rate is not measured yet (the caller samples again soon)."""
        return self.follow and (self.first is None or self.last_ns - self.first[0] < RATE_MIN_NS)

    def invalidate(self) -> None:
        """The venue rejected a timestamp: forget the samples, take a new one at once."""
        if not self.follow:
            return
        self.samples.clear()
        self.first = None
        self.stale = True

    def now_ns(self, wall_ns: int | None = None) -> int:
        """The venue's time now (ns)."""
        w = time.time_ns() if wall_ns is None else wall_ns
        if self.rate == 1.0:
            return w + self.offset_ns
        return self.at_venue + int((w - self.at_local) * self.rate)

    def timestamp_ms(self) -> int:
        """``timestamp`` for a signed request: the venue's time now, in ms."""
        return self.now_ns() // 1_000_000

    def status(self) -> dict[str, float]:
        return {
            "clock_offset_ms": (self.now_ns() - time.time_ns()) / 1e6,
            "clock_rtt_ms": self.rtt_ns / 1e6 if self.rtt_ns >= 0 else -1.0,
            "api_clock_rate": self.rate,
            "clock_samples": float(self.n),
            "clock_drift_alarms": float(self.drift_alarms),
        }
