"""The intent log: a pre-allocated, memory-mapped ring of fixed-size records that survives ``kill -9``.

Every order action (place / cancel / amend), every venue response (ack / reject / canceled / fill /
unknown) and each health or control event is appended here *before* it is acted on; the journal's
writer thread copies the records into SQLite (``live/journal.py``) and a restart replays the ones it
had not copied yet. The append is a memory write into the shared mapping of a file: when the
process dies, the kernel still holds the pages and writes them back, so nothing appended is lost to
``kill -9`` (a power cut is another matter: nothing here is fsynced).

File (``FILE.db.log``), little-endian: a 256-byte header, then ``capacity`` (a power of two)
records of ``INTENT_DTYPE`` (96 bytes); record ``seq`` lives in slot ``seq % capacity``.

Header, as int64 words: 0 magic ``AVMMILOG``, 1 format version, 2 record size, 3 capacity,
4 the journal's id (a log is only replayed into its own journal), 5 the session, 6 the first seq of
this file, 7 its creation time (ns); 8 ``head`` (records appended: the next seq), on a cache line
of its own; 16 ``copied`` (records committed to SQLite), 17 ``failed`` (1: the writer failed, 2:
reported), 18 ``closed``.

Append (``log_append``, ``log_answer``, ``log_actions``: compiled, called through their bound entry
points; no syscall, no allocation, no lock: one writer, the event loop): fill the slot at ``head``,
a release fence, then ``head + 1``. A record
below ``head`` is whole, whenever the process dies. The ring never overwrites a record not yet
copied: a full ring returns -1 (the journal waits briefly for its writer, then raises).

Client order ids are ``prefix-session-seq`` (``ClientIds``): the prefix 1-8 characters of
``[a-zA-Z0-9_]``, the session its start time in unix seconds (increasing across the sessions of a
journal), ``seq`` the record's seq; at most 8 + 1 + 10 + 1 + 15 = 35 characters of Binance's
``newClientOrderId`` alphabet ``^[a-zA-Z0-9-_]{1,36}$``.

``recovery(rows)``: the orders that no response made final and the fills already counted, from the
journal's intents in seq order -- what a gateway reconciles with the venue after a restart.
``TradeIds``: the trade ids counted, for the dedupe of fills.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from avmm.backtest.state import RS_ACK, RS_CANCELED, RS_FILL, RS_REJECT
from avmm.core.state import ACT_AMEND, ACT_CANCEL, ACT_PLACE, ACTION_DTYPE
from avmm.errors import UserError
from avmm.jit import NJIT, NJIT_INLINE, bind, voidptr

# --- kinds ------------------------------------------------------------------------------------------
K_PLACE, K_CANCEL, K_AMEND = ACT_PLACE, ACT_CANCEL, ACT_AMEND
K_ACK, K_REJECT, K_CANCELED, K_FILL = RS_ACK, RS_REJECT, RS_CANCELED, RS_FILL
K_UNKNOWN = 15  # a timeout, -1007 or a 5xx: the outcome is to be queried, never taken as failed
K_EVENT = 21  # a health or control event (its text goes through the journal's queue)
KIND_NAMES = {
    K_PLACE: "place", K_CANCEL: "cancel", K_AMEND: "amend",
    K_ACK: "ack", K_REJECT: "reject", K_CANCELED: "canceled", K_FILL: "fill", K_UNKNOWN: "unknown",
    K_EVENT: "event",
}  # fmt: skip
EVENT_CODES = {"health": 1, "ctl": 2, "risk": 3}  # an event's code in the log (0: another kind)

# --- layout -----------------------------------------------------------------------------------------
LOG_MAGIC = b"AVMMILOG"
LOG_VERSION = 1
HDR_BYTES = 256
H_MAGIC, H_VERSION, H_RECSIZE, H_CAP, H_JID, H_SESSION, H_START, H_CREATED = range(8)
H_HEAD, H_COPIED, H_FAILED, H_CLOSED = 8, 16, 17, 18
HDR_WORDS = HDR_BYTES // 8

INTENT_DTYPE = np.dtype(
    [
        ("seq", "i8"),
        ("ts", "i8"),  # ns
        ("session", "i8"),  # the session whose client id the record names
        ("oid", "i8"),  # the core's order id
        ("venue_oid", "i8"),  # the venue's order id (0: none)
        ("trade_id", "i8"),  # a fill's trade id (0: none)
        ("kind", "i4"),
        ("side", "i4"),
        ("code", "i8"),  # an error code, an event's code, an action's flags (core.state.AF_*)
        ("px", "f8"),
        ("qty", "f8"),
        ("fee", "f8"),
        ("_spare", "i8"),
    ],
    align=True,
)
REC_BYTES = INTENT_DTYPE.itemsize
COLUMNS = ("seq", "ts", "kind", "session", "oid", "venue_oid", "trade_id", "side", "code", "px", "qty", "fee")
LOG_CAPACITY = 1 << 16  # 6 MiB


def _w(name: str, dt: np.dtype = INTENT_DTYPE, size: int = 8) -> int:
    return int(dt.fields[name][1]) // size  # type: ignore[index]


R_SEQ, R_TS, R_SESSION, R_OID, R_VOID, R_TID, R_CODE = (
    _w(n) for n in ("seq", "ts", "session", "oid", "venue_oid", "trade_id", "code")
)
R_PX, R_QTY, R_FEE = _w("px"), _w("qty"), _w("fee")
R_KIND, R_SIDE = _w("kind", size=4), _w("side", size=4)
A_STRIDE = ACTION_DTYPE.itemsize // 8
A_KIND, A_SIDE, A_OID = _w("kind", ACTION_DTYPE), _w("side", ACTION_DTYPE), _w("oid", ACTION_DTYPE)
A_PX, A_QTY, A_FLAGS = _w("px", ACTION_DTYPE), _w("qty", ACTION_DTYPE), _w("flags", ACTION_DTYPE)
assert REC_BYTES == 96 and ACTION_DTYPE.itemsize % 8 == 0

FULL, FAILED, CLOSED = -1, -2, -3  # what an append returns instead of a seq


@intrinsic
def _release_fence_intrinsic(typingctx: Any) -> Any:
    """Stores before it are not moved after it (by the compiler or, on weak memory models, the CPU):
    the record is written before ``head`` counts it."""
    sig = types.void()

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        builder.fence("release")
        return context.get_dummy_value()

    return sig, codegen


_release_fence: Any = _release_fence_intrinsic  # called as ``_release_fence()`` in compiled code


@njit(**NJIT_INLINE)
def _room(h: Any, n: int) -> int:
    if h[H_FAILED] == 1:
        return FAILED
    if h[H_CLOSED] != 0:
        return CLOSED
    if h[H_HEAD] + n - h[H_COPIED] > h[H_CAP]:
        return FULL
    return 0


@njit(**NJIT)
def log_append(
    addr: int, t: int, kind: int, session: int, oid: int, side: int, px: float, qty: float, fee: float,
    venue_oid: int, trade_id: int, code: int,
) -> int:  # fmt: skip
    """Append one record (``session`` 0: the log's); its seq, or ``FULL`` / ``FAILED`` / ``CLOSED``."""
    h = numba.carray(voidptr(addr), HDR_WORDS, np.int64)
    err = _room(h, 1)
    if err != 0:
        return err
    s = h[H_HEAD]
    base = addr + HDR_BYTES + (s & (h[H_CAP] - 1)) * REC_BYTES
    r = numba.carray(voidptr(base), REC_BYTES // 8, np.int64)
    rf = numba.carray(voidptr(base), REC_BYTES // 8, np.float64)
    r4 = numba.carray(voidptr(base), REC_BYTES // 4, np.int32)
    r[R_SEQ] = s
    r[R_TS] = t
    r[R_SESSION] = session if session != 0 else h[H_SESSION]
    r[R_OID] = oid
    r[R_VOID] = venue_oid
    r[R_TID] = trade_id
    r4[R_KIND] = kind
    r4[R_SIDE] = side
    r[R_CODE] = code
    rf[R_PX] = px
    rf[R_QTY] = qty
    rf[R_FEE] = fee
    _release_fence()
    h[H_HEAD] = s + 1
    return s


@njit(**NJIT)
def log_actions(addr: int, actions_addr: int, n: int, t: int) -> int:
    """Append the first ``n`` ``ACTION_DTYPE`` records at ``actions_addr`` (the core's actions); the
    first one's seq, or ``FULL`` / ``FAILED`` / ``CLOSED``."""
    h = numba.carray(voidptr(addr), HDR_WORDS, np.int64)
    err = _room(h, n)
    if err != 0:
        return err
    s0 = h[H_HEAD]
    mask = h[H_CAP] - 1
    session = h[H_SESSION]
    a = numba.carray(voidptr(actions_addr), n * A_STRIDE, np.int64)
    af = numba.carray(voidptr(actions_addr), n * A_STRIDE, np.float64)
    for j in range(n):
        s = s0 + j
        base = addr + HDR_BYTES + (s & mask) * REC_BYTES
        r = numba.carray(voidptr(base), REC_BYTES // 8, np.int64)
        rf = numba.carray(voidptr(base), REC_BYTES // 8, np.float64)
        r4 = numba.carray(voidptr(base), REC_BYTES // 4, np.int32)
        k = j * A_STRIDE
        r[R_SEQ] = s
        r[R_TS] = t
        r[R_SESSION] = session
        r[R_OID] = a[k + A_OID]
        r[R_VOID] = 0
        r[R_TID] = 0
        r4[R_KIND] = a[k + A_KIND]
        r4[R_SIDE] = a[k + A_SIDE]
        r[R_CODE] = a[k + A_FLAGS]  # an action's flags (core.state.AF_TAKE: a taker order)
        rf[R_PX] = af[k + A_PX]
        rf[R_QTY] = af[k + A_QTY]
        rf[R_FEE] = 0.0
    _release_fence()
    h[H_HEAD] = s0 + n
    return s0


@njit(**NJIT)
def log_answer(addr: int, t: int, kind: int, oid: int) -> int:
    """``log_append`` of an answer that carries nothing but the order (an ack, a reject, a
    cancel): four arguments to unbox instead of twelve."""
    return log_append(addr, t, kind, 0, oid, 0, 0.0, 0.0, 0.0, 0, 0, 0)


_BOUND: dict[str, Any] = {}


def kernels() -> tuple[Any, Any, Any]:
    """The bound entry points of ``log_append``, ``log_answer`` and ``log_actions`` (compiled once
    per process)."""
    if "append" not in _BOUND:
        scratch = np.zeros((HDR_BYTES + 2 * REC_BYTES) // 8, dtype=np.int64)
        h = scratch[:HDR_WORDS]
        h[H_CAP], h[H_CLOSED] = 2, 1  # closed: the examples write nothing
        acts = np.zeros(1, dtype=ACTION_DTYPE)
        addr = int(scratch.ctypes.data)
        _BOUND["append"] = bind(log_append, addr, 1, 1, 0, 1, 1, 1.0, 1.0, 0.0, 0, 0, 0)
        _BOUND["answer"] = bind(log_answer, addr, 1, 1, 1)
        _BOUND["actions"] = bind(log_actions, addr, int(acts.ctypes.data), 1, 1)
    return _BOUND["append"], _BOUND["answer"], _BOUND["actions"]


# --- the file ---------------------------------------------------------------------------------------
class IntentLog:
    """An open log file: ``words`` (the header as int64), ``recs`` (the ring), ``addr`` (the mapping's
    address, for the kernels). The mapping stays while the object lives."""

    def __init__(self, path: Path, mm: np.memmap) -> None:
        self.path = path
        self.mm = mm
        raw = mm.view(np.ndarray)
        self.words = raw[:HDR_BYTES].view(np.int64)
        self.capacity = int(self.words[H_CAP])
        self.recs = raw[HDR_BYTES : HDR_BYTES + self.capacity * REC_BYTES].view(INTENT_DTYPE)
        self.addr = int(raw.ctypes.data)

    @classmethod
    def create(cls, path: Path, capacity: int, jid: int, session: int, start: int) -> IntentLog:
        """A new log at ``path`` whose next seq is ``start``: written beside it, its blocks allocated
        (a full disk fails here, not on a later page fault), then renamed over ``path``."""
        if capacity < 2 or capacity & (capacity - 1):
            raise UserError(f"{path}: the intent log's capacity must be a power of two >= 2, not {capacity}")
        size = HDR_BYTES + capacity * REC_BYTES
        tmp = path.with_name(path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.posix_fallocate(fd, 0, size)
            finally:
                os.close(fd)
            mm = np.memmap(tmp, dtype=np.uint8, mode="r+", shape=(size,))
            w = mm[:HDR_BYTES].view(np.int64)
            w[H_MAGIC] = np.frombuffer(LOG_MAGIC, dtype=np.int64)[0]
            w[H_VERSION], w[H_RECSIZE], w[H_CAP], w[H_JID] = LOG_VERSION, REC_BYTES, capacity, jid
            w[H_SESSION], w[H_START], w[H_CREATED] = session, start, time.time_ns()
            w[H_HEAD] = w[H_COPIED] = start
            mm.flush()
            os.replace(tmp, path)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise UserError(f"{path}: cannot create the intent log ({e.strerror or e})") from None
        return cls(path, mm)

    @classmethod
    def open(cls, path: Path) -> IntentLog:
        """An existing log; one line for another kind of file or another format version."""
        try:
            size = path.stat().st_size
            if size < HDR_BYTES:
                raise UserError(f"{path}: not an avmm intent log ({size} bytes)")
            mm = np.memmap(path, dtype=np.uint8, mode="r+", shape=(size,))
        except OSError as e:
            raise UserError(f"{path}: cannot open the intent log ({e.strerror or e})") from None
        w = mm[:HDR_BYTES].view(np.int64)
        if w[H_MAGIC].tobytes() != LOG_MAGIC:
            raise UserError(f"{path}: not an avmm intent log (no magic {LOG_MAGIC.decode()!r})")
        if int(w[H_VERSION]) != LOG_VERSION or int(w[H_RECSIZE]) != REC_BYTES:
            raise UserError(
                f"{path}: an intent log of format version {int(w[H_VERSION])}, this avmm reads version "
                f"{LOG_VERSION}: replay it with the avmm that wrote it, or move it away to start anew"
            )
        cap = int(w[H_CAP])
        if cap < 2 or cap & (cap - 1) or size < HDR_BYTES + cap * REC_BYTES:
            raise UserError(f"{path}: a damaged intent log (capacity {cap}, {size} bytes)")
        return cls(path, mm)

    # --- the header -------------------------------------------------------------------------------
    @property
    def head(self) -> int:
        return int(self.words[H_HEAD])

    @property
    def copied(self) -> int:
        return int(self.words[H_COPIED])

    @property
    def jid(self) -> int:
        return int(self.words[H_JID])

    @property
    def session(self) -> int:
        return int(self.words[H_SESSION])

    @property
    def start(self) -> int:
        return int(self.words[H_START])

    def records(self, lo: int, hi: int) -> np.ndarray:
        """A copy of the records ``[lo, hi)`` in seq order; one line if one of them is not the record
        of its seq (a log written by a power cut, a damaged file)."""
        cap = self.capacity
        if hi - lo > cap or lo < self.start or hi > self.head:
            raise UserError(
                f"{self.path}: records {lo}..{hi} are not in the log (it holds {max(self.start, self.head - cap)}"
                f"..{self.head})"
            )
        i, j = lo & (cap - 1), (lo & (cap - 1)) + (hi - lo)
        out = self.recs[i:j].copy() if j <= cap else np.concatenate([self.recs[i:], self.recs[: j - cap]])
        bad = np.flatnonzero(out["seq"] != np.arange(lo, hi))
        if bad.size:
            k = int(bad[0])
            raise UserError(
                f"{self.path}: record {lo + k} is torn (holds seq {int(out['seq'][k])}: a power cut?); "
                f"the journal has the records before it: move the log away to resume without the rest"
            )
        return out


# --- fills counted ------------------------------------------------------------------------------------
@njit(**NJIT)
def ids_seen(addr: int, bits: int, tid: int) -> int:
    """1 if ``tid`` is in the table of ``2**bits`` int64 slots at ``addr`` (0: empty), else 0 and it
    is now; -1 for ``tid <= 0`` (none). Linear probing from ``(tid ^ tid >> bits) & mask``: ids that
    increase (a venue's trade ids) fall in neighbouring slots, cache lines already loaded (a
    scattering hash costs a cache miss per call: ~150 ns); the caller keeps the table at most half
    full."""
    if tid <= 0:
        return -1
    n = 1 << bits
    t = numba.carray(voidptr(addr), n, np.int64)
    i = (tid ^ (tid >> bits)) & (n - 1)
    while True:
        v = t[i]
        if v == tid:
            return 1
        if v == 0:
            t[i] = tid
            return 0
        i = (i + 1) & (n - 1)


class TradeIds:
    """The trade ids of the fills counted: a pre-sized open-addressing table of int64 (``2**bits``
    slots, at most half full: 2**21 slots, 16 MiB, hold 1M ids). ``seen(tid)`` is one compiled call,
    no allocation and no growth on the way; past half full the table doubles (one rehash, off the
    usual path: at 1M fills by default). Trade ids are > 0 (0: none, never counted)."""

    def __init__(self, ids: Any = (), bits: int = 21) -> None:
        self.bits = bits
        self.n = 0
        self.table = np.zeros(1 << bits, dtype=np.int64)
        self._addr = int(self.table.ctypes.data)
        self.limit = (1 << bits) // 2
        if "seen" not in _BOUND:
            _BOUND["seen"] = bind(ids_seen, self._addr, bits, 1)
            self.table[:] = 0
        self._seen = _BOUND["seen"]
        for tid in ids:
            self.seen(int(tid))

    def seen(self, tid: int) -> bool:
        """True if the fill ``tid`` was counted; else it is now (journal it right after a False)."""
        r: int = self._seen(self._addr, self.bits, tid)
        if r:
            return r > 0
        self.n += 1
        if self.n > self.limit:
            self._grow()
        return False

    def _grow(self) -> None:
        old = self.table[self.table != 0]
        self.bits += 1
        self.table = np.zeros(1 << self.bits, dtype=np.int64)
        self._addr = int(self.table.ctypes.data)
        self.limit = (1 << self.bits) // 2
        for tid in old.tolist():
            self._seen(self._addr, self.bits, tid)

    def __contains__(self, tid: object) -> bool:
        return bool(np.any(self.table == tid))

    def __len__(self) -> int:
        return self.n

    def ids(self) -> set[int]:
        return set(self.table[self.table != 0].tolist())


# --- client order ids -------------------------------------------------------------------------------
CID_RE = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")  # Binance's newClientOrderId
PREFIX_RE = re.compile(r"^[a-zA-Z0-9_]{1,8}$")
MAX_SESSION = 10**10
MAX_SEQ = 10**15


class ClientIds:
    """``prefix-session-seq`` for one session."""

    __slots__ = ("prefix", "session", "head")

    def __init__(self, prefix: str, session: int) -> None:
        if not PREFIX_RE.match(prefix):
            raise UserError(f"client order id prefix {prefix!r}: 1 to 8 characters of [a-zA-Z0-9_]")
        if not 0 < session < MAX_SESSION:
            raise UserError(f"session {session}: out of range (1 .. {MAX_SESSION - 1})")
        self.prefix, self.session = prefix, session
        self.head = f"{prefix}-{session}-"

    def __call__(self, seq: int) -> str:
        return self.head + str(seq)

    @staticmethod
    def parse(cid: str) -> tuple[str, int, int] | None:
        """``(prefix, session, seq)`` of one of ours, else None (a foreign order)."""
        parts = cid.split("-")
        if len(parts) != 3 or not PREFIX_RE.match(parts[0]) or not (parts[1].isdigit() and parts[2].isdigit()):
            return None
        return parts[0], int(parts[1]), int(parts[2])


def client_id(prefix: str, session: int, seq: int) -> str:
    return f"{prefix}-{session}-{seq}"


# --- recovery ---------------------------------------------------------------------------------------
@dataclass
class Intent:
    """An order no response has made final (filled, canceled, rejected)."""

    cid: str  # the client id it was placed with
    session: int
    seq: int  # the place's seq
    oid: int  # the core's order id (in its session)
    side: int
    px: float
    leaves: float  # the quantity still to fill, as known (after amends and fills)
    filled: float
    venue_oid: int  # 0: no response gave it
    acked: bool
    pending: str | None  # the last request ("place", "cancel", "amend") with no answer yet
    pending_cid: str | None
    unknown: bool  # a request unanswered, or answered "unknown": to be queried by client id
    code: int  # the last error code seen (0: none)


@dataclass
class Recovery:
    """What a gateway needs after a restart, from the journal: ``open`` -- the orders not known final
    (``unknown`` among them: the ones whose outcome must be queried); ``trade_ids`` -- the fills
    already counted; ``last_fill_ns`` -- the last one's time (-1: none)."""

    open: list[Intent] = field(default_factory=list)
    trade_ids: set[int] = field(default_factory=set)
    last_fill_ns: int = -1
    fills: int = 0

    @property
    def unknown(self) -> list[Intent]:
        return [i for i in self.open if i.unknown]


class _Order:
    """An order's state through its records; ``place`` / ``amend`` / ``cancel``: the client ids of
    its requests not answered yet."""

    __slots__ = ("it", "place", "amend", "cancel", "amend_qty", "amend_px", "failed")

    def __init__(self, it: Intent) -> None:
        self.it = it
        self.place, self.amend, self.cancel = it.cid, "", ""
        self.amend_qty, self.amend_px = 0.0, 0.0
        self.failed = False  # an "unknown" answer, or a rejected cancel

    def apply(self, kind: int, cid: str, px: float, qty: float, code: int) -> bool:
        """One record about the order; True when it makes the order final."""
        if kind == K_CANCEL:
            self.cancel = cid
        elif kind == K_AMEND:
            self.amend, self.amend_qty, self.amend_px = cid, qty, px
        elif self._answer(kind, qty, code):
            return True
        it = self.it
        it.pending, it.pending_cid = None, None
        for name, rid in (("place", self.place), ("amend", self.amend), ("cancel", self.cancel)):
            if rid:
                it.pending, it.pending_cid = name, rid
        it.unknown = self.failed or it.pending is not None
        return False

    def _answer(self, kind: int, qty: float, code: int) -> bool:
        it = self.it
        if kind == K_ACK:  # the place's, else an amend's
            self.failed = False
            if self.place:
                self.place, it.acked = "", True
            elif self.amend:
                self.amend, it.leaves, it.px = "", self.amend_qty, self.amend_px
        elif kind == K_REJECT:
            it.code = code
            if self.place and not it.acked and it.filled == 0.0:
                return True
            if self.amend:  # the order stays as it was
                self.amend = ""
            elif self.cancel:  # gone already, or not: to be queried
                self.cancel, self.failed = "", True
        elif kind == K_CANCELED:
            return True
        elif kind == K_FILL:
            it.filled += qty
            it.leaves -= qty
            self.place, it.acked, self.failed = "", True, False  # a fill before the ack: the place reached the venue
            return it.leaves <= 1e-9 * max(1.0, it.filled)
        elif kind == K_UNKNOWN:
            self.failed, it.code = True, code
        return False


def recovery(rows: list[tuple], prefix: str) -> Recovery:
    """The recovery view from intents rows ``COLUMNS`` in seq order (events left out or not).

    Per order (session, oid): a place opens it; a reject of the place (not acked, nothing filled)
    or a canceled closes it; fills close it when its quantity is filled. An ack answers the place,
    else an amend (whose quantity and price it then has); a fill answers the place; a reject of an
    amend leaves the order as it was; a reject of a cancel leaves it open with an unknown outcome.
    An "unknown" answer, or a request not answered, makes the order unknown: to be queried."""
    rec = Recovery()
    orders: dict[tuple[int, int], _Order] = {}
    for seq, ts, kind, session, oid, venue_oid, trade_id, side, code, px, qty, _fee in rows:
        if kind == K_FILL:
            rec.fills += 1
            if trade_id:
                rec.trade_ids.add(int(trade_id))
            rec.last_fill_ns = max(rec.last_fill_ns, int(ts))
        key = (session, oid)
        if kind == K_PLACE:
            cid = client_id(prefix, session, seq)
            orders[key] = _Order(Intent(cid, session, seq, oid, side, px, qty, 0.0, 0, False, "place", cid, True, 0))
            continue
        o = orders.get(key)
        if o is None:
            continue
        if venue_oid:
            o.it.venue_oid = int(venue_oid)
        if o.apply(kind, client_id(prefix, session, seq), px, qty, int(code)):
            del orders[key]
    rec.open = [o.it for o in orders.values()]
    return rec
