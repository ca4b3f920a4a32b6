"""The replay source: an event store read in bounded chunks, turned into Binance's market-data
steps, with the venue's book kept on the way.

``Replay.steps()`` yields one tuple per thing the venue publishes, in store (``local_ts``) order:

* ``(BT, t, exch, u, bid, bid_qty, ask, ask_qty)`` -- a QUOTE row: ``bookTicker``;
* ``(TR, t, exch, id, px, qty, side)`` -- a TRADE row: ``trade`` / ``aggTrade`` (``side`` the
  aggressor: ``m`` = the buyer is the maker = a sell);
* ``(DIFF, t, exch, U, u, pu, bids, asks)`` -- a depth diff (``[(px, qty)]``, qty 0 removes).

``t`` is the row's ``local_ts`` (the capture's clock, which the venue clock replays) and ``exch``
its ``exch_ts`` (ns). The book (``bids`` / ``asks``: price -> size, ``last_u``) already holds a diff
when it is yielded, so a REST snapshot taken at any moment agrees with the diffs: everything with
``u <= lastUpdateId`` is in it.

Depth rows: DEPTH rows with the same ``exch_ts`` (up to ``F_LAST_IN_BATCH``) are one diff; CLEAR
then SNAPSHOT rows (a resync in the capture) replace the book, published as one diff from the old
book to the new one, so the stream stays continuous. A store without depth rows serves its L1 as
depth: each quote change is a diff setting the new best levels and removing the old ones.

Update ids are the emulator's own, one space for the book: a diff spans ``U = previous u + 1`` to
``u``; a bookTicker takes the next id (``u`` strictly increasing), which the next diff then covers,
as on Binance; ``pu`` (USD-M) is the previous diff's ``u``. Trade ids are the store's ``seq`` while
it increases, else the next id.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from avmm.events import CLEAR, DEPTH, F_EXCH_TS, F_LAST_IN_BATCH, QUOTE, SNAPSHOT, TRADE

BT = 1
TR = 2
DIFF = 3

FIRST_ID = 1_000_000  # the update id of the empty book before the replay
CHUNK_EVENTS = 1 << 16

Step = tuple[Any, ...]


class Book:
    """The venue's book: price -> size per side and the last update id in it."""

    __slots__ = ("bids", "asks", "last_u")

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.last_u = FIRST_ID

    def top(self, limit: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """The best ``limit`` levels of each side, best first."""
        import heapq

        b = heapq.nlargest(limit, self.bids.items())
        a = heapq.nsmallest(limit, self.asks.items())
        return b, a


def _apply(side: dict[float, float], levels: list[tuple[float, float]]) -> None:
    for p, q in levels:
        if q > 0.0:
            side[p] = q
        else:
            side.pop(p, None)


def _replace(old: dict[float, float], new: dict[float, float]) -> list[tuple[float, float]]:
    """The levels that turn ``old`` into ``new``."""
    out = [(p, 0.0) for p in old if p not in new]
    out.extend((p, q) for p, q in new.items() if old.get(p) != q)
    return out


class Replay:
    """Steps of one or more stores (in the order given: they follow one another in time)."""

    def __init__(self, paths: list[Path], chunk_events: int = CHUNK_EVENTS, lag_ns: int = 0) -> None:
        self.paths = paths
        self.lag_ns = lag_ns  # a row without an exchange stamp is stamped local_ts - lag_ns
        self.chunk_events = chunk_events
        self.book = Book()
        self.uid = FIRST_ID  # the last id handed out (bookTicker or diff)
        self.tid = 0
        self.depth_mode = False  # the store has depth rows (else its L1 is the depth)
        self.rows = 0
        # open depth group
        self._g_exch = -1
        self._g_exch_last = 0
        self._g_t = 0
        self._g_b: dict[float, float] = {}
        self._g_a: dict[float, float] = {}
        # open rebuild (CLEAR / SNAPSHOT rows)
        self._rb: tuple[dict[float, float], dict[float, float]] | None = None
        self._rb_t = 0
        self._rb_exch = 0
        self._rb_rows = 0
        self._l1 = (0.0, 0.0)  # the best bid / ask prices in the L1-as-depth book

    # -- numbering --------------------------------------------------------------------------
    def _diff(self, t: int, exch: int, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> Step:
        book = self.book
        pu = book.last_u
        U = pu + 1
        u = max(self.uid, pu) + max(1, len(bids) + len(asks))
        self.uid = u
        book.last_u = u
        _apply(book.bids, bids)
        _apply(book.asks, asks)
        return (DIFF, t, exch, U, u, pu, bids, asks)

    # -- depth groups -----------------------------------------------------------------------
    def _close_group(self) -> Step | None:
        if self._g_exch < 0:
            return None
        b, a = list(self._g_b.items()), list(self._g_a.items())
        self._g_exch = -1
        self._g_b, self._g_a = {}, {}
        return self._diff(self._g_t, self._g_exch_last, b, a)

    def _group_step(self) -> Step:
        s = self._close_group()
        assert s is not None
        return s

    def _close_rebuild(self) -> Step | None:
        rb = self._rb
        if rb is None:
            return None
        self._rb = None
        nb, na = rb
        return self._diff(self._rb_t, self._rb_exch, _replace(self.book.bids, nb), _replace(self.book.asks, na))

    def _enter_depth_mode(self, t: int, exch: int) -> Step | None:
        self.depth_mode = True
        if self.book.bids or self.book.asks:  # the L1 levels served so far leave the book
            return self._diff(t, exch, [(p, 0.0) for p in self.book.bids], [(p, 0.0) for p in self.book.asks])
        return None

    # -- rows -------------------------------------------------------------------------------
    def _quote(self, t: int, exch: int, b: float, bq: float, a: float, aq: float) -> Iterator[Step]:
        if not self.depth_mode:
            pb, pa = self._l1
            bids = [(b, bq)] if b > 0 and bq > 0 else []
            asks = [(a, aq)] if a > 0 and aq > 0 else []
            if pb != b and pb in self.book.bids:
                bids.append((pb, 0.0))
            if pa != a and pa in self.book.asks:
                asks.append((pa, 0.0))
            self._l1 = (b, a)
            d = self._diff(t, exch, bids, asks)
            yield d
            yield (BT, t, exch, d[4], b, bq, a, aq)
            return
        self.uid += 1
        yield (BT, t, exch, self.uid, b, bq, a, aq)

    def _trade(self, t: int, exch: int, seq: int, px: float, qty: float, side: int) -> Step:
        tid = seq if seq > self.tid else self.tid + 1
        self.tid = tid
        return (TR, t, exch, tid, px, qty, side)

    def _depth_row(  # noqa: C901 - one branch per depth row kind
        self, t: int, exch: int, kind: int, px: float, qty: float, side: int, flags: int
    ) -> Iterator[Step]:
        if not self.depth_mode:
            s = self._enter_depth_mode(t, exch)
            if s is not None:
                yield s
        if kind == DEPTH:
            if self._rb is not None:
                s = self._close_rebuild()
                if s is not None:
                    yield s
            if self._g_exch >= 0 and exch != self._g_exch:
                s = self._close_group()
                if s is not None:
                    yield s
            if self._g_exch < 0:
                self._g_exch = exch
            self._g_exch_last = exch
            self._g_t = t
            (self._g_b if side > 0 else self._g_a)[px] = qty
            if flags & F_LAST_IN_BATCH:
                s = self._close_group()
                if s is not None:
                    yield s
            return
        s = self._close_group()
        if s is not None:
            yield s
        if kind == CLEAR:
            self._rb = ({}, {})
            self._rb_t, self._rb_exch = t, exch
            return
        # SNAPSHOT
        if self._rb is None:
            self._rb = ({}, {})
        if qty > 0:
            self._rb[0 if side > 0 else 1][px] = qty
        self._rb_t, self._rb_exch = t, exch
        if flags & F_LAST_IN_BATCH:
            s = self._close_rebuild()
            if s is not None:
                yield s

    def steps(self) -> Iterator[Step]:  # noqa: C901 - one flat loop over the rows is the fast shape
        """The venue's steps, in time order (the stores read ``chunk_events`` rows at a time)."""
        from avmm.data.store import iter_columns

        quote_, trade_, depth_, last_ = QUOTE, TRADE, DEPTH, F_LAST_IN_BATCH
        for path in self.paths:
            for c in iter_columns(path, self.chunk_events):
                n = len(c.local_ts)
                self.rows += n
                ex_arr = c.exch_ts
                no_stamp = (c.flags & F_EXCH_TS) == 0
                if self.lag_ns and no_stamp.any():
                    ex_arr = ex_arr.copy()
                    ex_arr[no_stamp] = c.local_ts[no_stamp] - self.lag_ns
                ts, ex, seq = c.local_ts.tolist(), ex_arr.tolist(), c.seq.tolist()
                px, qty, px2, qty2 = c.px.tolist(), c.qty.tolist(), c.px2.tolist(), c.qty2.tolist()
                kind, side, flags = c.kind.tolist(), c.side.tolist(), c.flags.tolist()
                for i in range(n):
                    k = kind[i]
                    if k in (quote_, trade_):
                        if self._g_exch >= 0:
                            s = self._close_group()
                            if s is not None:
                                yield s
                        if self._rb is not None and (self._rb[0] or self._rb[1]):
                            s = self._close_rebuild()
                            if s is not None:
                                yield s
                        if k == quote_:
                            yield from self._quote(ts[i], ex[i], px[i], qty[i], px2[i], qty2[i])
                        else:
                            yield self._trade(ts[i], ex[i], seq[i], px[i], qty[i], side[i])
                    elif k == depth_ and self._rb is None and self.depth_mode:  # the common case, inline
                        e = ex[i]
                        if self._g_exch >= 0 and e != self._g_exch:
                            yield self._group_step()
                        if self._g_exch < 0:
                            self._g_exch = e
                        self._g_exch_last = e
                        self._g_t = ts[i]
                        (self._g_b if side[i] > 0 else self._g_a)[px[i]] = qty[i]
                        if flags[i] & last_:
                            yield self._group_step()
                    elif k in (DEPTH, SNAPSHOT, CLEAR):
                        yield from self._depth_row(ts[i], ex[i], k, px[i], qty[i], side[i], flags[i])
        s = self._close_group()
        if s is not None:
            yield s
        s = self._close_rebuild()
        if s is not None:
            yield s


def capture_lag(path: Path, rows: int = CHUNK_EVENTS) -> int:
    """The capture's ``local_ts - exch_ts`` at its 1st percentile over the first ``rows`` stamped
    rows (ns): the receiving clock's offset plus the shortest latency. The venue clock replays
    ``local_ts``; exchange stamps are moved by this much so that they sit just before the moment
    the venue sends them (0 when the store has no exchange stamps)."""
    import numpy as np

    from avmm.data.store import iter_columns

    for c in iter_columns(path, rows):
        m = (c.flags & F_EXCH_TS) != 0
        if not m.any():
            return 0
        d = c.local_ts[m] - c.exch_ts[m]
        return int(np.percentile(d, 1))
    return 0
