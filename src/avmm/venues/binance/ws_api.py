"""Order requests for Binance's WebSocket API, as the bytes of text frames: spot (``ws-api/v3``) and
USD-M futures (``ws-fapi/v1``).

A request is ``{"id":<int>,"method":<name>,"params":{...}}``. ``OrderEncoder`` builds one template
per request kind and side once per symbol (the names, the symbol, the order type and the client
id's prefix pre-encoded); ``Requests`` fills their numeric fields from the core's actions in
compiled code, into one pre-allocated buffer (``encode(n, ts_ms)``: no JSON encoder, no object per
order; ``request(i)`` / ``view(i)`` hand one out):

* place -- ``order.place``: spot ``LIMIT_MAKER`` (post-only; Binance takes no ``timeInForce`` for
  it), USD-M ``LIMIT`` with ``timeInForce`` ``GTX`` (post-only); ``newOrderRespType`` ``ACK``; a
  place flagged ``AF_TAKE`` (the core's flatten: a marketable limit) ``LIMIT`` with ``timeInForce``
  ``IOC`` on both;
* amend -- spot ``order.cancelReplace`` (``cancelReplaceMode`` ``STOP_ON_FAILURE``: when the
  cancel fails, the order having filled, no new order is placed), the new order under a new client
  id; USD-M ``order.modify`` (price and quantity both sent, as Binance requires; the order keeps its
  client id and loses its queue priority);
* cancel -- ``order.cancel`` by ``origClientOrderId``;
* keep-priority amend (spot, when ``keep[i]`` is set for the i-th action by the caller: the price
  unchanged, the quantity down) -- ``order.amend.keepPriority`` with ``newQty`` the action's
  quantity (the order's new total: what executed + what is left) and the same client id.

Prices and quantities are decimal strings on the symbol's tick and lot grid, exact: ``px`` is taken
to the nearest tick as an integer count and written with the tick's decimals (at least one), so no
float artifact (``61234.100000000006``) reaches the venue. Client order ids are
``<prefix>-<session>-<seq>`` (Binance's rule: ``^[.A-Z:/a-z0-9_-]{1,36}$``; ``seq`` counts this
encoder's new client ids from 1, or is the caller's ``seqs[i]`` for the i-th action when set: a
journal's record seq), kept by the core's order id until ``forget(oid)`` (the gateway, when the
venue says the order is gone).

The requests are those of a connection authenticated once with ``session.logon`` (Ed25519): they
carry no ``apiKey`` or ``signature``, only the ``timestamp`` (ms) every trading request needs.
"""

from __future__ import annotations

import math
import re
import secrets
from decimal import Decimal
from functools import partial

import numpy as np
from numba import carray, njit

from avmm.core.state import ACT_AMEND, ACT_CANCEL, ACT_PLACE, ACTION_DTYPE, AF_TAKE, MAX_ACTIONS
from avmm.jit import NJIT, NJIT_INLINE, Block, bind, block_layout, voidptr

VENUES = ("binance-spot", "binance-um")
CLIENT_ID = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}")
MAX_SEQ_DIGITS = 19  # an int64 sequence number
_WORD = re.compile(r"[A-Za-z0-9_]+")
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"

# template ops: (op, a, b); a literal is lit[a:b]
OP_LIT, OP_RID, OP_CID, OP_NCID, OP_PX, OP_QTY, OP_TS = range(7)
RID, CID, NCID, PX, QTY, TS = OP_RID, OP_CID, OP_NCID, OP_PX, OP_QTY, OP_TS  # template placeholders
T_PLACE, T_AMEND, T_CANCEL, T_KEEP, T_TAKE = 0, 2, 4, 5, 6  # + (side > 0) for place, amend and take
N_TEMPLATES = 8
MAX_OPS = 24
LIT_CAP = 4096
REQ_MAX = 512  # bytes of one request, at most (checked when the templates are built)
OUT_CAP = MAX_ACTIONS * REQ_MAX
ID_CAP = 4096  # client ids kept, by the core's order id modulo ID_CAP (a power of two)
ID_PROBE = 8  # slots an order id may take from its own: a place finding them all taken is skipped
BIG = 9.0e15  # ticks / lots beyond which a float is no longer an exact integer

ENC_DTYPE = np.dtype(
    [
        ("rid", "i8"),  # the last request id
        ("seq", "i8"),  # the last client id number
        ("unknown", "i8"),  # amend / cancel of an order with no client id here: skipped
        ("full", "i8"),  # place with every id slot taken: skipped
        ("bad", "i8"),  # a price or quantity off the grid's range (not finite, <= 0, huge): skipped
        ("um", "i8"),
        ("px_units", "i8"),
        ("px_dec", "i8"),
        ("qty_units", "i8"),
        ("qty_dec", "i8"),
        ("tick", "f8"),
        ("lot", "f8"),
    ],
    align=True,
)
ENC_PARTS = [
    (ENC_DTYPE, 1),
    (np.dtype(np.int64), N_TEMPLATES * MAX_OPS * 3),  # programs
    (np.dtype(np.int64), N_TEMPLATES),  # ops per program
    (np.dtype(np.uint8), LIT_CAP),  # literals
    (np.dtype(np.int64), ID_CAP),  # the core's order id (0: free)
    (np.dtype(np.int64), ID_CAP),  # its client id number
    (np.dtype(np.uint8), OUT_CAP),  # the requests
    (np.dtype(np.int64), MAX_ACTIONS + 1),  # where each starts (and the last one ends)
    (np.dtype(np.uint8), 32),  # the timestamp's digits
    (np.dtype(np.uint8), 32),  # a number's digits, written backwards
    (np.dtype(np.uint8), MAX_ACTIONS),  # spot: the i-th action (an amend) keeps its priority (cleared when used)
    (np.dtype(np.int64), MAX_ACTIONS),  # > 0: the i-th action's new client id number (a journal's seq; cleared)
]
_OFFSETS, ENC_BYTES = block_layout(ENC_PARTS)
OFF_E, OFF_PROG, OFF_NOPS, OFF_LIT, OFF_KEYS, OFF_VALS, OFF_OUT, OFF_OFFS, OFF_TS, OFF_TMP, OFF_KEEP, OFF_SEQS = (
    _OFFSETS
)


def step_decimals(step: float) -> tuple[int, int]:
    """``(d, units)``: the decimals a value on the grid of ``step`` is written with (at least one)
    and ``step`` in units of ``10**-d``: 0.01 -> (2, 1); 0.5 -> (1, 5); 10 -> (1, 100)."""
    s = Decimal(repr(float(step)))
    if not (s.is_finite() and s > 0):
        raise ValueError(f"step {step!r}: must be a positive number")
    exp = s.normalize().as_tuple().exponent
    assert isinstance(exp, int)
    d = max(1, -exp)
    return d, int(s.scaleb(d))


def session_token(n: int = 6) -> str:
    """A random token of ``n`` base-36 characters: one session's client ids apart from another's."""
    return "".join(secrets.choice(_BASE36) for _ in range(n))


class OrderEncoder:
    """The request templates of one symbol on ``venue`` (``binance-spot`` / ``binance-um``).

    Parameters
    ----------
    venue, symbol : str
        The market (``symbol`` in Binance's spelling: letters and digits).
    tick, lot : float
        The price and quantity grids (``PRICE_FILTER.tickSize``, ``LOT_SIZE.stepSize``).
    prefix, session : str
        The client ids' first two parts (letters, digits, ``_``); ``session`` defaults to a random
        token. Together at most 15 characters, so that any int64 ``seq`` fits Binance's 36.
    """

    __slots__ = ("venue", "symbol", "tick", "lot", "prefix", "session", "um", "px", "qty", "templates")

    def __init__(
        self, venue: str, symbol: str, tick: float, lot: float, prefix: str = "avmm", session: str = ""
    ) -> None:
        if venue not in VENUES:
            raise ValueError(f"venue {venue!r}: expected one of {', '.join(VENUES)}")
        if not (symbol.isascii() and symbol.isalnum()):
            raise ValueError(f"symbol {symbol!r}: expected letters and digits, like BTCUSDT")
        session = session or session_token()
        for name, word in (("prefix", prefix), ("session", session)):
            if not _WORD.fullmatch(word):
                raise ValueError(f"{name} {word!r}: expected letters, digits or _")
        if len(prefix) + len(session) + 2 + MAX_SEQ_DIGITS > 36:
            raise ValueError(f"prefix {prefix!r} + session {session!r}: longer than 15 characters together")
        for name, v in (("tick", tick), ("lot", lot)):
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} {v!r}: must be a positive number")
        self.venue, self.symbol = venue, symbol.upper()
        self.tick, self.lot = float(tick), float(lot)
        self.prefix, self.session = prefix, session
        self.um = venue == "binance-um"
        self.px, self.qty = step_decimals(tick), step_decimals(lot)
        self.templates = self._templates()

    def _templates(self) -> list[list[str | int]]:
        """Eight templates (place sell / buy, amend sell / buy, cancel, spot's keep-priority amend,
        take sell / buy): literal text and fields."""
        sym, cid = self.symbol, f"{self.prefix}-{self.session}-"
        head: list[str | int] = ['{"id":', RID, ',"method":']
        px_qty: list[str | int] = ['"price":"', PX, '","quantity":"', QTY, '"']
        out: list[list[str | int]] = []
        for side in ("SELL", "BUY"):
            if self.um:
                kind = f'"side":"{side}","type":"LIMIT","timeInForce":"GTX",'
            else:
                kind = f'"side":"{side}","type":"LIMIT_MAKER",'
            out.append(
                [*head, f'"order.place","params":{{"symbol":"{sym}",{kind}', *px_qty,
                 f',"newClientOrderId":"{cid}', NCID, '","newOrderRespType":"ACK","timestamp":', TS, "}}"]
            )  # fmt: skip
        for side in ("SELL", "BUY"):
            if self.um:
                out.append(
                    [*head, f'"order.modify","params":{{"symbol":"{sym}","origClientOrderId":"{cid}', CID,
                     f'","side":"{side}",', *px_qty, ',"timestamp":', TS, "}}"]
                )  # fmt: skip
            else:
                out.append(
                    [*head, f'"order.cancelReplace","params":{{"symbol":"{sym}","cancelReplaceMode":"STOP_ON_FAILURE",'
                     f'"cancelOrigClientOrderId":"{cid}', CID, f'","side":"{side}","type":"LIMIT_MAKER",', *px_qty,
                     f',"newClientOrderId":"{cid}', NCID, '","newOrderRespType":"ACK","timestamp":', TS, "}}"]
                )  # fmt: skip
        out.append(
            [*head, f'"order.cancel","params":{{"symbol":"{sym}","origClientOrderId":"{cid}', CID,
             '","timestamp":', TS, "}}"]
        )  # fmt: skip
        # spot's amend of the quantity alone, down, keeping the order's place in the queue (USD-M: unused)
        out.append(
            [*head, f'"order.amend.keepPriority","params":{{"symbol":"{sym}","origClientOrderId":"{cid}', CID,
             f'","newClientOrderId":"{cid}', CID, '","newQty":"', QTY, '","timestamp":', TS, "}}"]
        )  # fmt: skip
        for side in ("SELL", "BUY"):
            kind = f'"side":"{side}","type":"LIMIT","timeInForce":"IOC",'
            out.append(
                [*head, f'"order.place","params":{{"symbol":"{sym}",{kind}', *px_qty,
                 f',"newClientOrderId":"{cid}', NCID, '","newOrderRespType":"ACK","timestamp":', TS, "}}"]
            )  # fmt: skip
        return out

    # --- the grid as text (the compiled encoder does the same arithmetic) ----------------------
    def price(self, px: float) -> str:
        return _decimal(px, self.tick, *self.px)

    def quantity(self, qty: float) -> str:
        return _decimal(qty, self.lot, *self.qty)

    def client_id(self, seq: int) -> str:
        return f"{self.prefix}-{self.session}-{seq}"


def _decimal(x: float, step: float, dec: int, units: int) -> str:
    v = math.floor(x / step + 0.5) * units
    scale = 10**dec
    return f"{v // scale}.{v % scale:0{dec}d}"


# --- the compiled filler ---------------------------------------------------------------------------


@njit(**NJIT)
def _views(addr):
    e = carray(voidptr(addr + OFF_E), 1, ENC_DTYPE)
    prog = carray(voidptr(addr + OFF_PROG), N_TEMPLATES * MAX_OPS * 3, np.int64)
    nops = carray(voidptr(addr + OFF_NOPS), N_TEMPLATES, np.int64)
    lit = carray(voidptr(addr + OFF_LIT), LIT_CAP, np.uint8)
    keys = carray(voidptr(addr + OFF_KEYS), ID_CAP, np.int64)
    vals = carray(voidptr(addr + OFF_VALS), ID_CAP, np.int64)
    out = carray(voidptr(addr + OFF_OUT), OUT_CAP, np.uint8)
    offs = carray(voidptr(addr + OFF_OFFS), MAX_ACTIONS + 1, np.int64)
    tsb = carray(voidptr(addr + OFF_TS), 32, np.uint8)
    tmp = carray(voidptr(addr + OFF_TMP), 32, np.uint8)
    keep = carray(voidptr(addr + OFF_KEEP), MAX_ACTIONS, np.uint8)
    seqs = carray(voidptr(addr + OFF_SEQS), MAX_ACTIONS, np.int64)
    return e, prog, nops, lit, keys, vals, out, offs, tsb, tmp, keep, seqs


@njit(**NJIT_INLINE)
def _put_int(out, pos, v, tmp):
    """``v`` (>= 0) in decimal at ``out[pos:]`` (written backwards into ``tmp``, then copied: one
    division per digit); the position after it."""
    p = 32
    while True:
        p -= 1
        tmp[p] = 48 + v % 10
        v //= 10
        if v == 0:
            break
    nd = 32 - p
    out[pos : pos + nd] = tmp[p:32]
    return pos + nd


@njit(**NJIT_INLINE)
def _put_dec(out, pos, v, dec, tmp):
    """``v`` (>= 0) units of ``10**-dec`` as ``<int>.<dec digits>``."""
    p = 32
    for _ in range(dec):
        p -= 1
        tmp[p] = 48 + v % 10
        v //= 10
    p -= 1
    tmp[p] = 46  # "."
    while True:
        p -= 1
        tmp[p] = 48 + v % 10
        v //= 10
        if v == 0:
            break
    nd = 32 - p
    out[pos : pos + nd] = tmp[p:32]
    return pos + nd


@njit(**NJIT_INLINE)
def _units(x, step, units):
    """``x`` to the nearest step, in units of the step's last decimal (-1: not finite, <= 0, huge)."""
    k = x / step
    if not (k >= 0.5 and k < BIG):
        return -1
    n = np.int64(math.floor(k + 0.5))
    if n > BIG / units:
        return -1
    return n * units


@njit(**NJIT_INLINE)
def _slot(keys, oid, want):
    """The slot holding ``want`` (``oid``, or 0: a free one) among ``oid``'s; -1: none."""
    base = oid & (ID_CAP - 1)
    for j in range(ID_PROBE):
        i = (base + j) & (ID_CAP - 1)
        if keys[i] == want:
            return i
    return -1


@njit(**NJIT_INLINE)
def _write(out, pos, prog, nops, base, lit, tmp, tsb, nts, rid, cid, ncid, pv, qv, e):
    """One request: its template's program run at ``out[pos:]``; the position after it."""
    for j in range(nops):
        op = prog[base + 3 * j]
        if op == OP_LIT:
            lo = prog[base + 3 * j + 1]
            hi = prog[base + 3 * j + 2]
            out[pos : pos + hi - lo] = lit[lo:hi]
            pos += hi - lo
        elif op == OP_RID:
            pos = _put_int(out, pos, rid, tmp)
        elif op == OP_CID:
            pos = _put_int(out, pos, cid, tmp)
        elif op == OP_NCID:
            pos = _put_int(out, pos, ncid, tmp)
        elif op == OP_PX:
            pos = _put_dec(out, pos, pv, e.px_dec, tmp)
        elif op == OP_QTY:
            pos = _put_dec(out, pos, qv, e.qty_dec, tmp)
        else:
            out[pos : pos + nts] = tsb[:nts]
            pos += nts
    return pos


@njit(**NJIT_INLINE)
def _next_cid(e, seqs, i):
    """The next new client id number: ``seqs[i]`` when a journal numbers them (the action's record
    in the intent log; then cleared), else the encoder's own count + 1."""
    c = seqs[i]
    if c > 0:
        seqs[i] = 0
        if c > e.seq:
            e.seq = c
        return c
    e.seq += 1
    return e.seq


@njit(**NJIT)
def encode_at(addr, actions_addr, n, ts_ms):  # noqa: C901  (compiled kernel)
    """The requests of the first ``n`` actions at ``actions_addr``, into the buffer; how many."""
    e_arr, prog, nops, lit, keys, vals, out, offs, tsb, tmp, keep, seqs = _views(addr)
    a = carray(voidptr(actions_addr), MAX_ACTIONS, ACTION_DTYPE)
    e = e_arr[0]
    nts = _put_int(tsb, 0, ts_ms, tmp)
    k = 0
    pos = 0
    offs[0] = 0
    for i in range(min(n, MAX_ACTIONS)):
        kind = a[i].kind
        side = a[i].side
        oid = a[i].oid
        if oid <= 0:
            e.unknown += 1
            continue
        pv = 0
        qv = 0
        if kind != ACT_CANCEL:  # place / amend: the price and quantity first
            pv = _units(a[i].px, e.tick, e.px_units)
            qv = _units(a[i].qty, e.lot, e.qty_units)
            if pv < 0 or qv < 0:
                e.bad += 1
                continue
        slot = _slot(keys, oid, oid)
        if kind == ACT_PLACE:
            if slot < 0:
                slot = _slot(keys, oid, 0)
                if slot < 0:
                    e.full += 1
                    continue
            ncid = _next_cid(e, seqs, i)
            keys[slot] = oid
            vals[slot] = ncid
            cid = ncid
            t = (T_PLACE if (a[i].flags & AF_TAKE) == 0 else T_TAKE) + (1 if side > 0 else 0)
        else:
            if slot < 0:
                e.unknown += 1
                continue
            cid = vals[slot]
            ncid = cid
            if kind == ACT_AMEND and e.um == 0 and keep[i] != 0:
                t = T_KEEP  # spot: only the quantity, down: order.amend.keepPriority, the same client id
            elif kind == ACT_AMEND:
                t = T_AMEND + (1 if side > 0 else 0)
                if e.um == 0:
                    ncid = _next_cid(e, seqs, i)
                    vals[slot] = ncid
            else:
                t = T_CANCEL
        e.rid += 1
        pos = _write(out, pos, prog, nops[t], t * MAX_OPS * 3, lit, tmp, tsb, nts, e.rid, cid, ncid, pv, qv, e)
        k += 1
        offs[k] = pos
    for i in range(min(n, MAX_ACTIONS)):  # the per-call marks never outlive the call
        keep[i] = 0
        seqs[i] = 0
    return k


@njit(**NJIT)
def forget_at(addr, oid):
    """Drop the client id of order ``oid`` (1 if it had one)."""
    keys = _views(addr)[4]
    s = _slot(keys, oid, oid)
    if oid == 0 or s < 0:
        return 0
    keys[s] = 0
    return 1


class Requests:
    """The core's actions (``core.state.ACTION_DTYPE`` rows: place / cancel / amend) as requests.

    ``encode(n, ts_ms)`` fills the requests of ``actions[:n]`` (the engine's ``actions``, given
    here once) and returns how many it wrote: ``n``, less the actions it skips and counts
    (``counts()``: ``unknown`` an amend or cancel of an order with no client id here, ``full`` no
    room for another id, ``bad`` a price or quantity out of range). ``request(i)`` is the i-th as
    bytes, ``view(i)`` a memoryview of it (valid until the next ``encode``). Request ids count
    from 1; client ids are kept per order until ``forget(oid)``.
    """

    __slots__ = (
        "enc", "mem", "actions", "state", "out", "offs", "keys", "vals", "keep", "seqs", "encode", "_forget",
    )  # fmt: skip

    def __init__(self, encoder: OrderEncoder, actions: np.ndarray) -> None:
        if actions.dtype != ACTION_DTYPE or actions.shape[0] < MAX_ACTIONS or not actions.flags.c_contiguous:
            raise ValueError("actions: expected the engine's ACTION_DTYPE array")
        self.enc = encoder
        self.actions = actions  # kept alive: the compiled code reads it by address
        self.mem = Block(ENC_PARTS)
        e, prog, nops, lit, self.keys, self.vals, self.out, self.offs, _, _, self.keep, self.seqs = self.mem.views
        self.state = e
        e["um"] = int(encoder.um)
        e["tick"], e["lot"] = encoder.tick, encoder.lot
        (e["px_dec"], e["px_units"]), (e["qty_dec"], e["qty_units"]) = encoder.px, encoder.qty
        _compile_templates(encoder, prog, nops, lit)
        scratch = Block(ENC_PARTS)
        scratch_actions = np.zeros(MAX_ACTIONS, dtype=ACTION_DTYPE)
        ep = bind(encode_at, scratch.address, int(scratch_actions.ctypes.data), 0, 0)
        self.encode = partial(ep, self.mem.address, int(actions.ctypes.data))
        self._forget = partial(bind(forget_at, scratch.address, 0), self.mem.address)

    def request(self, i: int) -> bytes:
        return bytes(self.out[self.offs[i] : self.offs[i + 1]])

    def view(self, i: int) -> memoryview:
        return self.out[self.offs[i] : self.offs[i + 1]].data

    def forget(self, oid: int) -> bool:
        """The venue is done with order ``oid`` (filled, cancelled, rejected): drop its client id."""
        return bool(self._forget(oid))

    def client_id(self, oid: int) -> str | None:
        """The client id order ``oid`` has now (None: none here)."""
        for j in range(ID_PROBE):
            i = (oid + j) & (ID_CAP - 1)
            if oid and self.keys[i] == oid:
                return self.enc.client_id(int(self.vals[i]))
        return None

    def counts(self) -> dict[str, int]:
        e = self.state[0]
        return {k: int(e[k]) for k in ("rid", "seq", "unknown", "full", "bad")}


def _compile_templates(enc: OrderEncoder, prog: np.ndarray, nops: np.ndarray, lit: np.ndarray) -> None:
    """The templates as programs over one literal buffer; every request fits ``REQ_MAX``."""
    n_lit = 0
    for t, tpl in enumerate(enc.templates):
        ops: list[tuple[int, int, int]] = []
        worst = 0
        for piece in tpl:
            if isinstance(piece, str):
                b = piece.encode()
                lit[n_lit : n_lit + len(b)] = np.frombuffer(b, dtype=np.uint8)
                ops.append((OP_LIT, n_lit, n_lit + len(b)))
                n_lit += len(b)
                worst += len(b)
            else:
                ops.append((piece, 0, 0))
                worst += 20 + (max(enc.px[0], enc.qty[0]) + 1 if piece in (PX, QTY) else 0)
        if len(ops) > MAX_OPS or worst > REQ_MAX or n_lit > LIT_CAP:  # pragma: no cover - fixed templates
            raise ValueError(f"request template {t}: too long")
        nops[t] = len(ops)
        prog[t * MAX_OPS * 3 : t * MAX_OPS * 3 + 3 * len(ops)] = np.array(ops, dtype=np.int64).ravel()
