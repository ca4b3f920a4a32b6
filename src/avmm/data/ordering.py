"""Putting rows in local-time order: the bounded reorder window, the k-way merge of sorted streams,
and duplicate detection (repeated quotes, ids seen again).

Every reader yields ``(events, lines)`` pairs: an ``EVENT_DTYPE`` array in source order and the
1-based source line number of each row (for error messages). ``reorder`` turns that into chunks
sorted by ``local_ts`` with memory bounded by the reorder window; ``merge_sorted`` merges several
such streams (e.g. a quotes file and a trades file) into one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from avmm.data import _fast
from avmm.data.issues import Counters
from avmm.errors import UserError
from avmm.events import DEPTH, EVENT_DTYPE, F_REORDERED, QUOTE


def reorder(
    chunks: Iterable[tuple[np.ndarray, np.ndarray, str]],
    window_ns: int,
    c: Counters,
) -> Iterator[np.ndarray]:
    """Sort a nearly-sorted stream by ``local_ts`` with a bounded window.

    A row whose ``local_ts`` is below the running maximum is moved back (stable) and flagged
    ``F_REORDERED`` (counted ``reordered``) -- except book rows (DEPTH / SNAPSHOT / CLEAR), which
    must stay in source (update-id) order: a late one keeps its place and takes the running maximum
    as its ``local_ts`` (also flagged and counted); if it is more than ``window_ns`` below, the stream is
    not recoverable and a ``UserError`` names the file and line. Rows are held back only while a
    later row could still precede them, so memory is bounded by the window.
    """
    pend = np.empty(0, dtype=EVENT_DTYPE)
    hi = np.iinfo(np.int64).min
    for ev, lines, path in chunks:
        name = Path(path).name
        if len(ev) == 0:
            continue
        ts = ev["local_ts"]
        if not _fast.no_late(ts, hi):  # one pass; the common case: nothing is late
            runmax = np.maximum.accumulate(ts)
            prev = np.empty_like(runmax)
            prev[0] = hi
            prev[1:] = runmax[:-1]
            np.maximum(prev, hi, out=prev)
            late = ts < prev
            behind = np.where(late, prev - ts, 0)
            beyond = np.flatnonzero(behind > window_ns)
            if len(beyond):
                i = int(beyond[0])
                raise UserError(
                    f"{path}:{int(lines[i])}: local timestamp goes back by "
                    f"{behind[i] / 1e6:.3f} ms, beyond the reorder window of "
                    f"{window_ns / 1e6:g} ms (sort the file or raise --reorder-window-ms)"
                )
            ev = _fast.copy(ev)
            ev["flags"][late] |= F_REORDERED
            c.add_mask("reordered", late, name, lines)
            # book rows (DEPTH / SNAPSHOT / CLEAR) apply in source order (update ids): a late one is
            # not moved before earlier rows but takes the running maximum local time
            book = late & (ev["kind"] >= DEPTH)
            if book.any():
                ev["local_ts"][book] = prev[book]
            allev = _fast.concat([pend, ev])
            allev = _fast.select(allev, np.argsort(np.ascontiguousarray(allev["local_ts"]), kind="stable"))
            hi = max(hi, int(runmax[-1]))
        else:
            allev = _fast.concat([pend, ev]) if len(pend) else ev
            hi = max(hi, int(ts[-1]))
        cut = int(_fast.search_right(allev["local_ts"], max(hi - window_ns, _I64_MIN)))
        if cut:
            yield allev[:cut]
        pend = allev[cut:]
    if len(pend):
        yield pend


_I64_MIN = int(np.iinfo(np.int64).min)


def merge_sorted(streams: list[Iterator[np.ndarray]]) -> Iterator[np.ndarray]:
    """Merge streams of chunks each sorted by ``local_ts`` into one sorted stream.

    Ties keep the order of ``streams`` (stable). Memory: about one chunk per stream.
    """
    if len(streams) == 1:
        yield from (ch for ch in streams[0] if len(ch))
        return
    its = [iter(s) for s in streams]
    empty = np.empty(0, dtype=EVENT_DTYPE)
    bufs: list[np.ndarray] = [empty] * len(its)  # the rows of each stream not yet merged
    alive = [True] * len(its)

    def refill(i: int) -> None:
        while alive[i] and len(bufs[i]) == 0:
            try:
                bufs[i] = next(its[i])
            except StopIteration:
                alive[i] = False
                bufs[i] = empty

    for i in range(len(its)):
        refill(i)
    while any(alive):
        live = [i for i in range(len(its)) if alive[i]]
        bound = min(int(bufs[i]["local_ts"][-1]) for i in live)
        parts = []
        for i in live:
            k = int(_fast.search_right(bufs[i]["local_ts"], bound))
            if k:
                parts.append(bufs[i][:k])
                bufs[i] = bufs[i][k:]
        out = parts[0]
        for p in parts[1:]:  # pairwise stable merges: ties keep the order of ``streams``
            out = _merge2(out, p)
        yield out
        for i in live:
            refill(i)


def _merge2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) and len(b) and a["local_ts"][-1] <= b["local_ts"][0]:
        return _fast.concat([a, b])  # already in order
    if _fast.FAST_LAYOUT:
        return _fast.merge2(a, b)
    out = np.concatenate([a, b])
    return out[np.argsort(np.ascontiguousarray(out["local_ts"]), kind="stable")]


def dedupe_quotes(ev: np.ndarray, prev: np.ndarray | None) -> np.ndarray:
    """Mask of QUOTE rows identical (both clocks and all values) to the row before."""
    if len(ev) == 0:
        return np.zeros(0, bool)
    keys = ("exch_ts", "local_ts", "px", "qty", "px2", "qty2")
    same = np.ones(len(ev), dtype=bool)
    for k in keys:
        a = ev[k]
        p = np.empty_like(a)
        p[1:] = a[:-1]
        if prev is not None:
            p[0] = prev[k]
        same &= a == p
    if prev is None:
        same[0] = False
    return same & (ev["kind"] == QUOTE)


class RecentIds:
    """Duplicate detection on ids: an id seen earlier in this chunk or in the previous chunk."""

    def __init__(self) -> None:
        self.prev = np.empty(0, dtype=np.int64)

    def dup(self, ids: np.ndarray, valid: np.ndarray) -> np.ndarray:
        out = np.zeros(len(ids), dtype=bool)
        idx = np.flatnonzero(valid & (ids != 0))
        if len(idx) == 0:
            return out
        v = ids[idx]
        if len(v) > 1 and np.all(v[1:] > v[:-1]):  # the common case: strictly increasing ids
            d = np.zeros(len(v), dtype=bool)
        else:
            _, first = np.unique(v, return_index=True)
            d = np.ones(len(v), dtype=bool)
            d[first] = False
        if len(self.prev) and v.min() <= self.prev.max():
            d |= np.isin(v, self.prev)
        out[idx] = d
        self.prev = v
        return out
