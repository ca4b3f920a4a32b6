"""The venue's clock as seen from here: an offset estimated continuously with a minimum-RTT filter.

Each sample is a request sent at local ``t0``, answered with the venue's ``serverTime`` (ms), and
received at ``t1``: the venue read its clock somewhere within ``[t0, t1]``, so ``server - (t0 + t1)
/ 2`` is the offset with an error of at most ``(t1 - t0) / 2`` (+ 0.5 ms of the millisecond
rounding). Of the last ``window`` samples, the one with the shortest round trip gives the offset
(queueing only ever adds delay, so the fastest sample is the least disturbed). ``timestamp_ms()`` is
what a signed request carries. A ``-1021`` (the venue found a timestamp outside the recvWindow)
calls ``invalidate()``: the window is emptied and the next sample is taken at once.
"""

from __future__ import annotations

import time
from collections import deque

WINDOW = 16  # samples the minimum-RTT filter looks at
DRIFT_ALARM_NS = 50_000_000  # an offset moving this much between two estimates is reported


class ClockOffset:
    """``offset_ns``: the venue's time minus the local wall clock (``time.time_ns``)."""

    __slots__ = ("samples", "offset_ns", "rtt_ns", "n", "stale", "drift_alarms", "last_ns", "max_drift_ns")

    def __init__(self, window: int = WINDOW) -> None:
        self.samples: deque[tuple[int, int]] = deque(maxlen=window)  # (rtt, offset)
        self.offset_ns = 0
        self.rtt_ns = -1  # the round trip of the sample in use (-1: none yet)
        self.n = 0  # samples taken
        self.stale = True  # no sample since the start or the last invalidate()
        self.drift_alarms = 0
        self.max_drift_ns = 0
        self.last_ns = 0  # when the last sample was taken (local wall clock)

    def sample(self, t0_ns: int, t1_ns: int, server_ms: int) -> None:
        """One round trip: sent at ``t0_ns``, answered ``server_ms``, received at ``t1_ns``."""
        if t1_ns < t0_ns or server_ms <= 0:
            return
        rtt = t1_ns - t0_ns
        off = server_ms * 1_000_000 + 500_000 - (t0_ns + t1_ns) // 2
        self.samples.append((rtt, off))
        best = min(self.samples)
        if self.n and abs(best[1] - self.offset_ns) > DRIFT_ALARM_NS:
            self.drift_alarms += 1
        if self.n:
            self.max_drift_ns = max(self.max_drift_ns, abs(best[1] - self.offset_ns))
        self.rtt_ns, self.offset_ns = best
        self.n += 1
        self.stale = False
        self.last_ns = t1_ns

    def invalidate(self) -> None:
        """The venue rejected a timestamp: forget the samples, take a new one at once."""
        self.samples.clear()
        self.stale = True

    def now_ns(self, wall_ns: int | None = None) -> int:
        """The venue's time now (ns)."""
        return (time.time_ns() if wall_ns is None else wall_ns) + self.offset_ns

    def timestamp_ms(self) -> int:
        """``timestamp`` for a signed request: the venue's time now, in ms."""
        return (time.time_ns() + self.offset_ns) // 1_000_000

    def status(self) -> dict[str, float]:
        return {
            "clock_offset_ms": self.offset_ns / 1e6,
            "clock_rtt_ms": self.rtt_ns / 1e6 if self.rtt_ns >= 0 else -1.0,
            "clock_samples": float(self.n),
            "clock_drift_alarms": float(self.drift_alarms),
        }
