"""Best bid / ask from depth rows: QUOTE rows derived for sources that have no quotes of their own.

A store converted from L2 depth only (tardis.dev ``incremental_book_L2``, a Binance websocket capture
with ``depthUpdate`` but no ``bookTicker``) has DEPTH / SNAPSHOT / CLEAR rows and no QUOTE rows, and
the backtester's strategy is driven by QUOTE and TRADE rows. ``derive_quotes`` sits between a
reader and the reorder window (``convert``): it rebuilds the book from the reader's rows in source
order and inserts QUOTE rows into the stream.

Rules:

* The book is examined after each *batch*: the last DEPTH / SNAPSHOT row of each run of rows
  sharing one ``local_ts`` (every reader ends its batches there with ``F_LAST_IN_BATCH``; batches
  applied at one instant -- a tardis snapshot and a diff with the same local time, Binance diffs
  buffered until the REST snapshot -- give one quote, for the state after all of them).
* If the best bid or ask (price or size) changed since the last look, both sides are non-empty and
  the book is not crossed, one QUOTE row is inserted right after that batch's last row, with its
  ``exch_ts`` / ``local_ts`` / ``seq``, its ``F_EXCH_TS`` bit and ``F_DERIVED``; counted
  ``derived_quote`` (a note). A crossed book gives no quote, counted ``crossed_book``; a locked one
  (bid == ask) is kept, counted ``locked_book`` (as for a source's own quotes).
* CLEAR empties the book: no quote until both sides have levels again (the first full book after a
  CLEAR always gives a quote). A DEPTH row of size 0 removes its level (an unknown level: no-op).
* Decided per source file: a file whose rows include QUOTE rows gets no derived quotes from the
  chunk where its first quote appears on (a source with quotes has them from its first chunk on,
  so in practice: none). The book state carries across the files of one stream (a Binance capture);
  depth rows of a file with quotes are not applied (no cost for the usual captures with
  ``bookTicker``), so the book is unknown after one until the next CLEAR (snapshot).

The kernel ``_run`` works on whole chunk columns (compiled with numba; this module is imported
only when a stream needs it, so converts of quote / trade files do not load numba). Book state
per side, carried across chunks in preallocated arrays:

* an open-addressing hash table (linear probing, backward-shift deletion) price -> size of every
  level, keyed by the exact float price (hashed on its bits), grown by doubling at load 1/2;
* a sorted cache of the best ``TOP`` levels with the bound ``lo``: the cache holds exactly the
  levels better than ``lo`` (``lo`` = -inf: all levels). Updates near the top touch only the cache
  (O(TOP)); deeper ones only the table (O(1)); when the cache runs empty while deeper levels exist,
  it is refilled by one scan of the table (O(table slots); after a refill it takes ``TOP``
  removals from the top before the next one).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from numba import carray, njit

from avmm.data import _fast
from avmm.data.issues import Counters
from avmm.events import CLEAR, DEPTH, EVENT_DTYPE, F_DERIVED, F_EXCH_TS, QUOTE, SNAPSHOT
from avmm.jit import NJIT, NJIT_INLINE, voidptr

TOP = 64  # levels per side in the sorted top-of-book cache
CAP0 = 1024  # initial hash table slots per side (a power of two)

# int64 state (``sti``)
I_CNT = 0  # + side: live levels in the table
I_TOPN = 2  # + side: levels in the top cache
I_UNSYNC = 4  # 1: the book is unknown (depth rows skipped) until the next CLEAR
I_PEND = 5  # row whose batch awaits its look at the book (-1: none)
I_QN = 6  # quotes written to the output arrays
I_XN = 7  # crossed looks written
I_POS = 8  # row to resume at after growing the table
I_REFILLS = 9  # cache refills from the table (a statistic)
# float64 state (``stf``)
F_LO = 0  # + side: the cache bound (in "goodness": price for bids, -price for asks)
F_LAST = 2  # .. 5: bid px, bid qty, ask px, ask qty at the last look

_GROW = 1
_NEG_INF = -np.inf


@njit(**NJIT_INLINE)  # per-row helper: inlined into ``_run``
def _hash(bits):
    x = np.uint64(bits)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xC4CEB9FE1A85EC53)
    x ^= x >> np.uint64(33)
    return x


@njit(**NJIT_INLINE)  # per-row helper: inlined into ``_run``
def _find(hpx, s, px, h):
    """Slot of ``px`` in side ``s`` (>= 0), or -1 - (the empty slot where it would go)."""
    mask = hpx.shape[1] - 1
    i = np.int64(h & np.uint64(mask))
    while True:
        k = hpx[s, i]
        if k == 0.0:
            return -1 - i
        if k == px:
            return i
        i = (i + 1) & mask


@njit(**NJIT_INLINE)  # per-row helper: inlined into ``_run``
def _delete(hpx, hq, hh, s, i):
    """Remove slot ``i`` (backward-shift deletion: no tombstones)."""
    mask = hpx.shape[1] - 1
    j = i
    while True:
        j = (j + 1) & mask
        if hpx[s, j] == 0.0:
            break
        home = np.int64(hh[s, j] & np.uint64(mask))
        # the entry at j may move to the hole at i unless its home lies cyclically in (i, j]
        if i <= j:
            stays = i < home <= j
        else:
            stays = home > i or home <= j
        if stays:
            continue
        hpx[s, i] = hpx[s, j]
        hq[s, i] = hq[s, j]
        hh[s, i] = hh[s, j]
        i = j
    hpx[s, i] = 0.0


@njit(**NJIT)
def _rehash(hpx, hq, hh, npx, nq, nh):
    """Move every entry of the tables into the (larger, empty) new ones."""
    mask = npx.shape[1] - 1
    for s in range(2):
        for i in range(hpx.shape[1]):
            p = hpx[s, i]
            if p == 0.0:
                continue
            j = np.int64(hh[s, i] & np.uint64(mask))
            while npx[s, j] != 0.0:
                j = (j + 1) & mask
            npx[s, j] = p
            nq[s, j] = hq[s, i]
            nh[s, j] = hh[s, i]


@njit(**NJIT_INLINE)  # per-row helper: inlined into ``_run``
def _top_insert(tg, tq, s, n, g, q):
    """Insert ``g`` (not present) into the sorted cache of ``n`` entries (ascending, best last)."""
    t = n
    while t > 0 and tg[s, t - 1] > g:
        tg[s, t] = tg[s, t - 1]
        tq[s, t] = tq[s, t - 1]
        t -= 1
    tg[s, t] = g
    tq[s, t] = q


@njit(**NJIT)
def _refill(hpx, hq, tg, tq, sti, stf, s):
    """Rebuild the cache of side ``s`` from the table: its best ``TOP`` levels, ``lo`` the best of
    the rest (-inf when all fit)."""
    n = 0
    lo = _NEG_INF
    for i in range(hpx.shape[1]):
        p = hpx[s, i]
        if p == 0.0:
            continue
        g = p if s == 0 else -p
        if n < TOP:
            _top_insert(tg, tq, s, n, g, hq[s, i])
            n += 1
        elif g > tg[s, 0]:
            if tg[s, 0] > lo:
                lo = tg[s, 0]
            for t in range(TOP - 1):
                tg[s, t] = tg[s, t + 1]
                tq[s, t] = tq[s, t + 1]
            _top_insert(tg, tq, s, TOP - 1, g, hq[s, i])
        elif g > lo:
            lo = g
    sti[I_TOPN + s] = n
    stf[F_LO + s] = lo
    sti[I_REFILLS] += 1


@njit(**NJIT_INLINE)  # per-row helper: inlined into ``_run``
def _apply(hpx, hq, hh, tg, tq, sti, stf, s, px, bits, q):  # noqa: C901  (compiled kernel)
    """Set the size of level ``px`` on side ``s`` (0 removes it). Returns ``_GROW`` (nothing done)
    when a new level would take the table past half full."""
    h = _hash(bits)
    slot = _find(hpx, s, px, h)
    if q > 0.0:
        if slot >= 0:
            hq[s, slot] = q
        else:
            if 2 * (sti[I_CNT + s] + 1) > hpx.shape[1]:
                return _GROW
            slot = -1 - slot
            hpx[s, slot] = px
            hq[s, slot] = q
            hh[s, slot] = h
            sti[I_CNT + s] += 1
    else:
        if slot < 0:
            return 0  # removal of a level the book does not have
        _delete(hpx, hq, hh, s, slot)
        sti[I_CNT + s] -= 1
    g = px if s == 0 else -px
    lo = stf[F_LO + s]
    if g <= lo:
        return 0  # below the cache: the table alone knows it
    n = sti[I_TOPN + s]
    t = n - 1
    while t >= 0 and tg[s, t] > g:  # from the best end: top updates are the common case
        t -= 1
    found = t >= 0 and tg[s, t] == g
    if q > 0.0:
        if found:
            tq[s, t] = q
            return 0
        if n == TOP:  # full: the worst leaves the cache (stays in the table), lo rises
            if g < tg[s, 0]:
                stf[F_LO + s] = g
                return 0
            stf[F_LO + s] = tg[s, 0]
            for u in range(TOP - 1):
                tg[s, u] = tg[s, u + 1]
                tq[s, u] = tq[s, u + 1]
            n -= 1
        _top_insert(tg, tq, s, n, g, q)
        sti[I_TOPN + s] = n + 1
    elif found:
        for u in range(t, n - 1):
            tg[s, u] = tg[s, u + 1]
            tq[s, u] = tq[s, u + 1]
        n -= 1
        sti[I_TOPN + s] = n
        if n == 0 and stf[F_LO + s] > _NEG_INF:
            _refill(hpx, hq, tg, tq, sti, stf, s)
    return 0


@njit(**NJIT)
def _clear(hpx, sti, stf):
    hpx[:, :] = 0.0
    for s in range(2):
        sti[I_CNT + s] = 0
        sti[I_TOPN + s] = 0
        stf[F_LO + s] = _NEG_INF
    for j in range(4):
        stf[F_LAST + j] = 0.0
    sti[I_UNSYNC] = 0


@njit(**NJIT_INLINE)  # per-row helper: inlined into ``_run``
def _look(tg, tq, sti, stf, p, qpos, qval, xpos):
    """The book after the batch ending at row ``p``: a quote, a crossed look or nothing."""
    n0 = sti[I_TOPN]
    n1 = sti[I_TOPN + 1]
    bp = tg[0, n0 - 1] if n0 > 0 else 0.0
    bq = tq[0, n0 - 1] if n0 > 0 else 0.0
    ap = -tg[1, n1 - 1] if n1 > 0 else 0.0
    aq = tq[1, n1 - 1] if n1 > 0 else 0.0
    if bp == stf[F_LAST] and bq == stf[F_LAST + 1] and ap == stf[F_LAST + 2] and aq == stf[F_LAST + 3]:
        return
    stf[F_LAST] = bp
    stf[F_LAST + 1] = bq
    stf[F_LAST + 2] = ap
    stf[F_LAST + 3] = aq
    if n0 == 0 or n1 == 0:
        return
    if bp > ap:
        xpos[sti[I_XN]] = p
        sti[I_XN] += 1
        return
    k = sti[I_QN]
    qpos[k] = p
    qval[k, 0] = bp
    qval[k, 1] = bq
    qval[k, 2] = ap
    qval[k, 3] = aq
    sti[I_QN] = k + 1


_RUN_SIG = (
    "int64(uint8[:], int8[:], int64[:], float64[:], int64[:], float64[:], int64, float64[:, ::1], "
    "float64[:, ::1], uint64[:, ::1], float64[:, ::1], float64[:, ::1], int64[::1], float64[::1], "
    "int64[::1], float64[:, ::1], int64[::1])"
)


@njit(_RUN_SIG, **NJIT)  # one signature: strided and contiguous columns alike (no recompiles)
def _run(kind, side, lt, px, bits, qty, start, hpx_, hq_, hh_, tg_, tq_, sti_, stf_, qpos_, qval_, xpos_):
    """Apply rows ``start..`` to the book; look at it after each batch (see the module doc).

    The rows must end at a batch boundary (a change of ``local_ts`` or the end of the stream / of
    a file): the last batch is looked at too. Returns ``_GROW`` with ``sti[I_POS]`` = the row to
    resume at when the table must grow first, else 0.
    """
    # views without a meminfo over the same memory: handing them to the helpers then costs no
    # atomic reference counting (the caller keeps the arrays alive)
    cap = hpx_.shape[1]
    hpx = carray(voidptr(hpx_.ctypes.data), (2, cap), np.float64)
    hq = carray(voidptr(hq_.ctypes.data), (2, cap), np.float64)
    hh = carray(voidptr(hh_.ctypes.data), (2, cap), np.uint64)
    tg = carray(voidptr(tg_.ctypes.data), (2, TOP), np.float64)
    tq = carray(voidptr(tq_.ctypes.data), (2, TOP), np.float64)
    sti = carray(voidptr(sti_.ctypes.data), sti_.shape[0], np.int64)
    stf = carray(voidptr(stf_.ctypes.data), stf_.shape[0], np.float64)
    qpos = carray(voidptr(qpos_.ctypes.data), qpos_.shape[0], np.int64)
    qval = carray(voidptr(qval_.ctypes.data), (qval_.shape[0], 4), np.float64)
    xpos = carray(voidptr(xpos_.ctypes.data), xpos_.shape[0], np.int64)
    n = kind.shape[0]
    pend = sti[I_PEND]
    for i in range(start, n):
        if pend >= 0 and lt[i] != lt[pend]:
            _look(tg, tq, sti, stf, pend, qpos, qval, xpos)
            pend = -1
        k = kind[i]
        if k == CLEAR:
            _clear(hpx, sti, stf)
            pend = -1
            continue
        if (k != DEPTH and k != SNAPSHOT) or sti[I_UNSYNC] != 0:
            continue
        sd = side[i]
        if sd == 0 or not px[i] > 0.0:  # (the readers drop such rows; 0.0 marks an empty slot)
            continue
        s = 0 if sd > 0 else 1
        if _apply(hpx, hq, hh, tg, tq, sti, stf, s, px[i], bits[i], qty[i]) == _GROW:
            sti[I_PEND] = pend
            sti[I_POS] = i
            return _GROW
        pend = i
    if pend >= 0:
        _look(tg, tq, sti, stf, pend, qpos, qval, xpos)
    sti[I_PEND] = -1
    return 0


class Book:
    """The book of one stream (state carried across chunks and files)."""

    def __init__(self, cap: int = CAP0):
        self.sti = np.zeros(16, dtype=np.int64)
        self.stf = np.zeros(8, dtype=np.float64)
        self.hpx = np.zeros((2, cap), dtype=np.float64)
        self.hq = np.zeros((2, cap), dtype=np.float64)
        self.hh = np.zeros((2, cap), dtype=np.uint64)
        self.tg = np.zeros((2, TOP), dtype=np.float64)
        self.tq = np.zeros((2, TOP), dtype=np.float64)
        _clear(self.hpx, self.sti, self.stf)
        self.sti[I_PEND] = -1

    def unsync(self) -> None:
        """Depth rows went by unapplied: the book is unknown until the next CLEAR."""
        _clear(self.hpx, self.sti, self.stf)
        self.sti[I_UNSYNC] = 1

    def _grow(self) -> None:
        cap = 2 * self.hpx.shape[1]
        npx = np.zeros((2, cap), dtype=np.float64)
        nq = np.zeros((2, cap), dtype=np.float64)
        nh = np.zeros((2, cap), dtype=np.uint64)
        _rehash(self.hpx, self.hq, self.hh, npx, nq, nh)
        self.hpx, self.hq, self.hh = npx, nq, nh

    def run(self, ev: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Apply ``ev`` (ending at a batch boundary). Returns (rows after which a quote goes,
        their (bid px, bid qty, ask px, ask qty), rows of crossed looks)."""
        n = len(ev)
        qpos = np.empty(n, dtype=np.int64)
        qval = np.empty((n, 4), dtype=np.float64)
        xpos = np.empty(n, dtype=np.int64)
        st = self.sti
        st[I_QN] = st[I_XN] = 0
        st[I_PEND] = -1
        cols = (ev["kind"], ev["side"], ev["local_ts"], ev["px"], ev["px"].view(np.int64), ev["qty"])
        start = 0
        while _run(*cols, start, self.hpx, self.hq, self.hh, self.tg, self.tq, st, self.stf, qpos, qval, xpos) == _GROW:
            self._grow()
            start = int(st[I_POS])
        return qpos[: st[I_QN]], qval[: st[I_QN]], xpos[: st[I_XN]]


@njit(**NJIT)
def _interleave(src, src_lines, q, qpos, out, out_lines):
    """``src`` rows (int64 words of the records) with row ``j`` of ``q`` after row ``qpos[j]``."""
    m = q.shape[0]
    w = src.shape[1]
    j = 0
    o = 0
    for i in range(src.shape[0]):
        for u in range(w):
            out[o, u] = src[i, u]
        out_lines[o] = src_lines[i]
        o += 1
        while j < m and qpos[j] == i:
            for u in range(w):
                out[o, u] = q[j, u]
            out_lines[o] = src_lines[i]
            o += 1
            j += 1


def _with_quotes(bk: Book, ev: np.ndarray, lines: np.ndarray, path: str, c: Counters) -> tuple[np.ndarray, np.ndarray]:
    """``ev`` with the derived quotes inserted (see ``Book.run``); counted."""
    qpos, qval, xpos = bk.run(ev)
    if len(xpos):
        c.add_mask("crossed_book", np.ones(len(xpos), dtype=bool), path, lines[xpos])
    m = len(qpos)
    if m == 0:
        return ev, lines
    qlines = lines[qpos]
    c.add_mask("derived_quote", np.ones(m, dtype=bool), path, qlines)
    c.add_mask("locked_book", qval[:, 0] == qval[:, 2], path, qlines)
    q = _fast.pack(
        m,
        exch_ts=ev["exch_ts"][qpos],
        local_ts=ev["local_ts"][qpos],
        seq=ev["seq"][qpos],
        px=qval[:, 0],
        qty=qval[:, 1],
        px2=qval[:, 2],
        qty2=qval[:, 3],
        kind=QUOTE,
        side=0,
        flags=(ev["flags"][qpos] & F_EXCH_TS) | F_DERIVED,
        level=-1,
    )
    n = len(ev)
    w = EVENT_DTYPE.itemsize // 8
    out = np.empty(n + m, dtype=EVENT_DTYPE)
    out_lines = np.empty(n + m, dtype=np.int64)
    _interleave(
        np.ascontiguousarray(ev).view(np.int64).reshape(n, w),
        np.ascontiguousarray(lines, dtype=np.int64),
        q.view(np.int64).reshape(m, w),
        qpos,
        out.view(np.int64).reshape(n + m, w),
        out_lines,
    )
    return out, out_lines


def _last_run_start(lt: np.ndarray) -> int:
    """Index of the first row of the trailing run of equal ``local_ts`` (0: all one run)."""
    diff = np.flatnonzero(lt[::-1] != lt[-1])
    return len(lt) - int(diff[0]) if len(diff) else 0


def derive_quotes(
    chunks: Iterable[tuple[np.ndarray, np.ndarray, str]],
    c: Counters,
    quoting: set[str] | None = None,
    unsynced: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
    """A reader's ``(events, lines, path)`` chunks (source order) with derived QUOTE rows inserted
    for files without quotes of their own (module doc).

    ``quoting``: the files already known to have quotes; ``unsynced``: depth rows of the stream
    went by before (the book is unknown until a CLEAR). The last ``local_ts`` run of each chunk is
    held back until the next chunk shows whether it continues.
    """
    quoting = set() if quoting is None else quoting
    bk = Book()
    if unsynced:
        bk.unsync()
    carry = None  # (events, lines, path): the trailing local_ts run, not applied yet
    for ev, lines, path in chunks:
        if len(ev) == 0:
            continue
        kind = ev["kind"]
        own = path in quoting or bool(np.any(kind == QUOTE))
        if carry is not None and (own or path != carry[2]):
            yield (*_with_quotes(bk, carry[0], carry[1], carry[2], c), carry[2])
            carry = None
        if own:
            quoting.add(path)
            if np.any(kind >= DEPTH):
                bk.unsync()
            yield ev, lines, path
            continue
        if carry is not None:  # the run goes on in this chunk: complete it first
            other = ev["local_ts"] != carry[0]["local_ts"][0]
            k = int(np.argmax(other)) if other.any() else len(ev)  # the run's end in this chunk
            run = (_fast.concat([carry[0], ev[:k]]), np.concatenate([carry[1], lines[:k]]), path)
            if k == len(ev):
                carry = run
                continue
            yield (*_with_quotes(bk, *run, c), path)
            ev, lines, carry = ev[k:], lines[k:], None
        cut = _last_run_start(ev["local_ts"])
        if cut:
            yield (*_with_quotes(bk, ev[:cut], lines[:cut], path, c), path)
        carry = (ev[cut:], lines[cut:], path)
    if carry is not None:
        yield (*_with_quotes(bk, carry[0], carry[1], carry[2], c), carry[2])
