"""The one pass over the data: per time block, the sufficient statistics every estimate is made of.

The session ``[t0, t0 + n_blocks * block_ns)`` is cut into time blocks (the units of the block
bootstrap). One compiled loop (``scan_chunk``) walks the rows in ``local_ts`` order, carrying its
state from chunk to chunk, and adds:

* on a grid of ``grid_ns`` (1 s by default), the mid of the last valid quote at or before each grid
  point -- a grid point is *live* when that quote is at most ``stale_ns`` old: per block the live
  grid steps (the observed time), the squared mid increments between consecutive live points and
  their number (sigma), the spread in ticks and the touch sizes (histograms: time-weighted);
* for each trade with a live quote, its side (the aggressor's; inferred from the price against the
  mid when the store does not know it), its depth from that mid (a buy's ``px - mid``, a sell's
  ``mid - px``) and its *reach*: 0 for a trade at or inside the touch, else ``depth - tick`` (a
  trade that printed at a price beyond the touch went past every level before it: its reach from
  the mid is at least one tick less than the printed depth). Histograms of both in half ticks, per
  block and side (reach) or per side (depth), of the trades at the touch by their depth (their
  reach lies between 0 and it), and of the trade sizes.

Rows that cannot be used are counted by kind (``SKIPS``), never dropped silently. Memory is the
histograms (two of ``n_blocks x 2 x REACH_BINS`` counts, 32 MB for 1000 time slices), whatever the data's
size; nothing is allocated per row.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from avmm.events import BUY, QUOTE, SELL, TRADE
from avmm.jit import NJIT

REACH_BINS = 1024  # half-tick bins of the reach and the depth (the last one: 511.5 ticks and beyond)
SPREAD_BINS = 4096  # spread in ticks (the last one: 4095 ticks and beyond)
SIZE_PER_DECADE = 200  # log bins of sizes: 0.5 % wide
SIZE_LOG_MIN = -12  # sizes from 1e-12 ...
SIZE_BINS = 24 * SIZE_PER_DECADE  # ... to 1e12 base units

# the carried state: ints
S_NEXT_G = 0  # the next grid point to emit (index: time = g * grid_ns)
S_HAVE_Q = 1  # a valid quote has been seen
S_Q_TS = 2  # its local_ts
S_PREV_G = 3  # the last live grid point (-1: none)
S_N = 4
# floats
F_BID, F_ASK, F_BQ, F_AQ, F_PREV_MID = 0, 1, 2, 3, 4
F_N = 5

# skipped or repaired rows (counters)
SK_BAD_QUOTE = 0  # a quote with a NaN, a non-positive or a crossed price: ignored
SK_NO_QUOTE = 1  # a trade with no live quote before it (none yet, or older than stale_ns): ignored
SK_NO_SIDE = 2  # a trade of unknown side printed at the mid: ignored
SK_BAD_TRADE = 3  # a trade with a NaN or non-positive price or size: ignored
SK_WRONG_SIDE = 4  # a buy below the mid or a sell above it (the quote already moved?): counted at the touch
SK_SIDE_INFERRED = 5  # a trade of unknown side: the side taken from its price against the mid
SK_N = 6
SKIPS = {
    "bad_quotes": "quotes with a NaN, non-positive or crossed price (ignored)",
    "trades_without_live_quote": "trades with no quote in the stale limit before them (ignored)",
    "trades_unknown_side_at_mid": "trades of unknown side printed at the mid (ignored)",
    "bad_trades": "trades with a NaN or non-positive price or size (ignored)",
    "trades_wrong_side_of_mid": "buys below the mid or sells above it: the quote moved before the trade arrived? "
    "(counted at the touch, reach 0)",
    "trades_side_inferred": "trades of unknown side, side taken from the price against the mid",
}
SKIP_KEYS = tuple(SKIPS)


@njit(**NJIT)
def _size_bin(q):
    i = int(math.floor((math.log10(q) - SIZE_LOG_MIN) * SIZE_PER_DECADE))
    return min(max(i, 0), SIZE_BINS - 1)


@njit(**NJIT)
def _emit_grid(g, tau, t0, block_ns, n_blocks, tick, st, sf, active, n_incr, sum_sq, spread_h, touch_h):
    """One live grid point ``g`` at time ``tau``: its block's observed step, the mid increment from
    the previous live point, the spread and the touch sizes."""
    b = min(max((tau - t0) // block_ns, 0), n_blocks - 1)
    bid = sf[F_BID]
    ask = sf[F_ASK]
    mid = 0.5 * (bid + ask)
    active[b] += 1
    if st[S_PREV_G] == g - 1:
        d = mid - sf[F_PREV_MID]
        n_incr[b] += 1
        sum_sq[b] += d * d
    st[S_PREV_G] = g
    sf[F_PREV_MID] = mid
    s = int(round((ask - bid) / tick))
    spread_h[min(max(s, 0), SPREAD_BINS - 1)] += 1
    if sf[F_BQ] > 0:
        touch_h[_size_bin(sf[F_BQ])] += 1
    if sf[F_AQ] > 0:
        touch_h[_size_bin(sf[F_AQ])] += 1


@njit(**NJIT)
def _trade(t, px, qty, sd, t0, block_ns, n_blocks, tick, st, sf, reach_h, touch_d_h, depth_h, trade_h, skips):
    """One trade: its side, depth and reach into the histograms (or a counted skip)."""
    if not (px > 0 and qty > 0 and math.isfinite(px) and math.isfinite(qty)):
        skips[SK_BAD_TRADE] += 1
        return
    bid = sf[F_BID]
    ask = sf[F_ASK]
    mid = 0.5 * (bid + ask)
    if sd != BUY and sd != SELL:
        if px == mid:
            skips[SK_NO_SIDE] += 1
            return
        sd = BUY if px > mid else SELL
        skips[SK_SIDE_INFERRED] += 1
    half_tick = 0.5 * tick
    if sd == BUY:
        depth = px - mid
        at_touch = px <= ask
        side = 1  # the ask side: buys lift our ask
    else:
        depth = mid - px
        at_touch = px >= bid
        side = 0  # the bid side: sells hit our bid
    if depth < 0:
        skips[SK_WRONG_SIDE] += 1
        depth = 0.0
    reach = 0.0 if at_touch else max(depth - tick, 0.0)
    b = min(max((t - t0) // block_ns, 0), n_blocks - 1)
    reach_h[b, side, min(int(round(reach / half_tick)), REACH_BINS - 1)] += 1
    if at_touch:
        touch_d_h[b, side, min(int(round(depth / half_tick)), REACH_BINS - 1)] += 1
    depth_h[side, min(int(round(depth / half_tick)), REACH_BINS - 1)] += 1
    trade_h[_size_bin(qty)] += 1


@njit(**NJIT)
def scan_chunk(  # noqa: C901  (one flat loop over the rows: the fast shape for numba)
    lt,
    kind,
    px,
    qty,
    px2,
    qty2,
    side,
    t0,
    grid_ns,
    block_ns,
    n_blocks,
    stale_ns,
    tick,
    st,
    sf,
    active,
    n_incr,
    sum_sq,
    reach_h,
    touch_d_h,
    depth_h,
    spread_h,
    touch_h,
    trade_h,
    skips,
):
    for i in range(lt.shape[0]):
        t = lt[i]
        # the grid points before this row see the state left by the rows before it
        while st[S_NEXT_G] * grid_ns < t:
            g = st[S_NEXT_G]
            tau = g * grid_ns
            if st[S_HAVE_Q] == 0 or tau - st[S_Q_TS] > stale_ns:
                # no live quote until the next one: jump to the first grid point at or after t
                st[S_NEXT_G] = max(g + 1, (t + grid_ns - 1) // grid_ns)
                continue
            if tau >= t0:
                _emit_grid(g, tau, t0, block_ns, n_blocks, tick, st, sf, active, n_incr, sum_sq, spread_h, touch_h)
            st[S_NEXT_G] = g + 1
        k = kind[i]
        if k == QUOTE:
            b = px[i]
            a = px2[i]
            if not (b > 0 and a > b and math.isfinite(a)):
                skips[SK_BAD_QUOTE] += 1
                continue
            sf[F_BID] = b
            sf[F_ASK] = a
            sf[F_BQ] = qty[i]
            sf[F_AQ] = qty2[i]
            st[S_HAVE_Q] = 1
            st[S_Q_TS] = t
        elif k == TRADE:
            if st[S_HAVE_Q] == 0 or t - st[S_Q_TS] > stale_ns:
                skips[SK_NO_QUOTE] += 1
                continue
            _trade(
                t,
                px[i],
                qty[i],
                side[i],
                t0,
                block_ns,
                n_blocks,
                tick,
                st,
                sf,
                reach_h,
                touch_d_h,
                depth_h,
                trade_h,
                skips,
            )


class Scan:
    """The accumulators of one pass and the state carried between chunks.

    Parameters
    ----------
    t0_ns : int
        The start of the first block (a multiple of ``grid_ns``).
    block_ns, n_blocks : int
        The blocks: ``[t0 + b * block_ns, t0 + (b + 1) * block_ns)``; rows past the last block
        count in it.
    grid_ns, stale_ns : int
        The mid's sampling grid; the age past which a quote is no longer live.
    tick : float
        The price grid (depths are binned in half ticks).
    """

    def __init__(self, t0_ns: int, block_ns: int, n_blocks: int, grid_ns: int, stale_ns: int, tick: float) -> None:
        self.t0_ns, self.block_ns, self.n_blocks = int(t0_ns), int(block_ns), int(n_blocks)
        self.grid_ns, self.stale_ns, self.tick = int(grid_ns), int(stale_ns), float(tick)
        self.st = np.zeros(S_N, dtype=np.int64)
        self.st[S_NEXT_G] = -(-self.t0_ns // self.grid_ns)
        self.st[S_PREV_G] = -2
        self.sf = np.zeros(F_N, dtype=np.float64)
        nb = self.n_blocks
        self.active = np.zeros(nb, dtype=np.int64)  # live grid steps per block
        self.n_incr = np.zeros(nb, dtype=np.int64)  # mid increments per block
        self.sum_sq = np.zeros(nb, dtype=np.float64)  # their squares summed, price^2
        self.reach_h = np.zeros((nb, 2, REACH_BINS), dtype=np.int64)  # [block, bid/ask, half ticks]
        self.touch_d_h = np.zeros((nb, 2, REACH_BINS), dtype=np.int64)  # trades at the touch, by depth
        self.depth_h = np.zeros((2, REACH_BINS), dtype=np.int64)
        self.spread_h = np.zeros(SPREAD_BINS, dtype=np.int64)
        self.touch_h = np.zeros(SIZE_BINS, dtype=np.int64)
        self.trade_h = np.zeros(SIZE_BINS, dtype=np.int64)
        self.skips = np.zeros(SK_N, dtype=np.int64)
        self.rows = 0

    def add(self, lt: np.ndarray, kind: np.ndarray, px: np.ndarray, qty: np.ndarray, px2: np.ndarray,
            qty2: np.ndarray, side: np.ndarray) -> None:  # fmt: skip
        """One chunk of rows, in ``local_ts`` order after the previous chunk's."""
        self.rows += len(lt)
        scan_chunk(
            lt, kind, px, qty, px2, qty2, side,
            self.t0_ns, self.grid_ns, self.block_ns, self.n_blocks, self.stale_ns, self.tick,
            self.st, self.sf, self.active, self.n_incr, self.sum_sq, self.reach_h, self.touch_d_h, self.depth_h,
            self.spread_h, self.touch_h, self.trade_h, self.skips,
        )  # fmt: skip

    def skipped(self) -> dict[str, int]:
        return {k: int(v) for k, v in zip(SKIP_KEYS, self.skips, strict=True)}

    @property
    def grid_s(self) -> float:
        return self.grid_ns / 1e9

    def observed_s(self) -> np.ndarray:
        """Observed (live) seconds per block."""
        return self.active * self.grid_s


def size_edges() -> np.ndarray:
    """The edges of the size histograms' bins, base units (``SIZE_BINS + 1`` values)."""
    return 10.0 ** (SIZE_LOG_MIN + np.arange(SIZE_BINS + 1) / SIZE_PER_DECADE)
