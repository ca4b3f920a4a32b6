"""A runtime's latency samples: the last ``cap`` of them in one pre-allocated int64 ring (ns), their
percentiles on demand (the status, once a second; never on the hot path)."""

from __future__ import annotations

from array import array

import numpy as np


class LatencyRing:
    """The last ``cap`` samples (ns; ``cap`` a power of two). ``add`` is one store and one add."""

    __slots__ = ("buf", "mask", "n")

    def __init__(self, cap: int = 4096) -> None:
        if cap < 1 or cap & (cap - 1):
            raise ValueError(f"cap {cap}: must be a power of two")
        self.buf = array("q", bytes(8 * cap))
        self.mask = cap - 1
        self.n = 0  # samples added (the ring holds the last min(n, cap))

    def add(self, ns: int) -> None:
        self.buf[self.n & self.mask] = ns
        self.n += 1

    def samples(self) -> np.ndarray:
        """The samples held (a copy, oldest order not kept)."""
        m = min(self.n, self.mask + 1)
        return np.frombuffer(self.buf, dtype=np.int64, count=m).copy()

    def percentiles_us(self, qs: tuple[float, ...] = (50.0, 99.0)) -> list[float | None]:
        """The percentiles ``qs`` of the samples held, in µs (None when there are none)."""
        s = self.samples()
        if s.size == 0:
            return [None for _ in qs]
        return [float(v) / 1e3 for v in np.percentile(s, qs)]
