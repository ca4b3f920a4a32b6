"""The feed's depth book: the core's exact price -> size rows (``core.depth``) sized for a full
Binance snapshot, with Python access for the feed, the recorder and the tests."""

from __future__ import annotations

import numpy as np

from avmm.core.depth import depth_clear, depth_set
from avmm.jit import bind

CAP = 16384  # levels per side: a 5000-level snapshot and the levels that appear beyond it


class Book:
    """Both sides of one symbol's book (side +1 bids, -1 asks, as ``events.BUY`` / ``SELL``).

    ``dropped`` counts levels the rows could not keep (a full row: the worst levels go first, so
    the best levels stay exact)."""

    __slots__ = ("key", "qty", "n", "dropped", "_set")

    def __init__(self, cap: int = CAP) -> None:
        self.key = np.zeros((2, cap), dtype=np.float64)
        self.qty = np.zeros((2, cap), dtype=np.float64)
        self.n = np.zeros(2, dtype=np.int64)
        self.dropped = 0
        # the compiled entry point for exactly these argument types: no per-call type dispatch
        self._set = bind(depth_set, self.key, self.qty, self.n, 0, 1.0, 0.0)

    def clear(self) -> None:
        depth_clear(self.n)

    def set(self, side: int, px: float, qty: float) -> None:
        """The size at ``px`` on ``side`` (0 removes the level)."""
        if self._set(self.key, self.qty, self.n, 0 if side > 0 else 1, float(px), float(qty)):
            self.dropped += 1

    def apply(self, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> None:
        k, q, n, put = self.key, self.qty, self.n, self._set
        for px, qty in bids:
            if put(k, q, n, 0, px, qty):
                self.dropped += 1
        for px, qty in asks:
            if put(k, q, n, 1, px, qty):
                self.dropped += 1

    def levels(self, side: int) -> list[tuple[float, float]]:
        """The levels of ``side``, best first."""
        s = 0 if side > 0 else 1
        m = int(self.n[s])
        keys, qtys = self.key[s, :m][::-1], self.qty[s, :m][::-1]
        sign = 1.0 if s == 0 else -1.0
        return [(float(sign * k), float(q)) for k, q in zip(keys, qtys, strict=True)]

    def best(self) -> tuple[float, float, float, float]:
        """``(bid, bid_qty, ask, ask_qty)``; NaN for an empty side."""
        nb, na = int(self.n[0]), int(self.n[1])
        bid = (float(self.key[0, nb - 1]), float(self.qty[0, nb - 1])) if nb else (float("nan"), float("nan"))
        ask = (float(-self.key[1, na - 1]), float(self.qty[1, na - 1])) if na else (float("nan"), float("nan"))
        return bid[0], bid[1], ask[0], ask[1]
