"""Whole-chunk helpers for ``EVENT_DTYPE`` arrays (the hot path of the converters).

NumPy handles structured arrays field by field through a slow generic path: a boolean mask,
``np.concatenate`` or a fancy index on an ``EVENT_DTYPE`` array costs ~100-300 ns a row. Viewed as
opaque 64-byte records (``raw``) the same operations are plain memory copies (~10-20 ns a row).
Building an array from columns and splitting it back into columns (for Arrow) go through a
blocked transpose of an ``(8, n)`` int64 buffer instead of eleven strided field copies. (No numba
here: its one-time start-up, ~0.3 s a process, would cost more than these kernels save.)

The record layout is fixed by ``avmm.events``: seven 8-byte fields (exch_ts, local_ts, seq, px,
qty, px2, qty2) then one 8-byte "tail" word holding kind (byte 0), side (byte 1), flags (bytes
2-3) and level (bytes 4-7), little-endian.
"""

from __future__ import annotations

import bisect
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from avmm.events import EVENT_DTYPE

RAW = np.dtype((np.void, EVENT_DTYPE.itemsize))
_NAMES: tuple[str, ...] = EVENT_DTYPE.names or ()
_FIELDS: Mapping[str, tuple[Any, ...]] = EVENT_DTYPE.fields or {}

# the packed layout the kernels rely on (checked, with a slow fallback if it ever changes)
FAST_LAYOUT = (
    sys.byteorder == "little"
    and EVENT_DTYPE.itemsize == 64
    and [_FIELDS[n][1] for n in _NAMES] == [0, 8, 16, 24, 32, 40, 48, 56, 57, 58, 60]
)
_WIDE = _NAMES[:7]  # the 8-byte fields, in record order
_TAIL = _NAMES[7:]  # kind, side, flags, level


def raw(ev: np.ndarray) -> np.ndarray:
    """``ev`` viewed as opaque records (fast copy / mask / take / concatenate)."""
    return ev.view(RAW)


def cooked(r: np.ndarray) -> np.ndarray:
    """Opaque records (``raw``) viewed as ``EVENT_DTYPE`` again."""
    return r.view(EVENT_DTYPE)


def concat(parts: list[np.ndarray]) -> np.ndarray:
    """``np.concatenate`` of ``EVENT_DTYPE`` arrays, as a memory copy."""
    if len(parts) == 1:
        return parts[0]
    return cooked(np.concatenate([raw(p) for p in parts]))


def select(ev: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``ev[idx]`` (boolean mask or index array), as a memory copy."""
    return cooked(raw(ev)[idx])


def copy(ev: np.ndarray) -> np.ndarray:
    """``ev.copy()``, as a memory copy."""
    return cooked(raw(ev).copy())


def tail_word(kind: ArrayLike, side: ArrayLike, flags: ArrayLike, level: ArrayLike) -> np.ndarray:
    """The packed kind/side/flags/level word (scalars or arrays)."""
    k = np.asarray(kind).astype(np.int64) & 0xFF
    s = np.asarray(side).astype(np.int64) & 0xFF
    f = np.asarray(flags).astype(np.int64) & 0xFFFF
    lv = np.asarray(level).astype(np.int64)
    return k | (s << 8) | (f << 16) | (lv << 32)


_BLOCK = 4096  # rows per step of a blocked transpose (keeps both sides in cache)


def _transpose_into(src: np.ndarray, dst: np.ndarray) -> None:
    """``dst[...] = src.T`` for 2-D int64 arrays, in cache-sized blocks along the long axis."""
    if src.shape[0] >= src.shape[1]:  # (n, 8) -> (8, n)
        for s in range(0, src.shape[0], _BLOCK):
            dst[:, s : s + _BLOCK] = src[s : s + _BLOCK].T
    else:  # (8, n) -> (n, 8)
        for s in range(0, src.shape[1], _BLOCK):
            dst[s : s + _BLOCK] = src[:, s : s + _BLOCK].T


def pack(n: int, **cols: ArrayLike) -> np.ndarray:
    """An ``EVENT_DTYPE`` array of ``n`` rows from columns or scalars (every field required)."""
    if not FAST_LAYOUT:
        ev = np.empty(n, dtype=EVENT_DTYPE)
        for name in _NAMES:
            ev[name] = cols[name]
        return ev
    buf = np.empty((8, n), dtype=np.int64)
    for j, name in enumerate(_WIDE):
        v = cols[name]
        if EVENT_DTYPE[name].kind == "f":
            buf[j].view(np.float64)[:] = v
        else:
            buf[j] = v
    buf[7] = tail_word(*(cols[name] for name in _TAIL))
    ev = np.empty(n, dtype=EVENT_DTYPE)
    _transpose_into(buf, ev.view(np.int64).reshape(n, 8))
    return ev


def unpack(parts: list[np.ndarray]) -> list[np.ndarray]:
    """Contiguous columns (``EVENT_DTYPE.names`` order) of the concatenation of ``parts``."""
    if not FAST_LAYOUT:
        ev = concat(parts) if parts else np.empty(0, dtype=EVENT_DTYPE)
        return [np.ascontiguousarray(ev[name]) for name in _NAMES]
    n = sum(len(p) for p in parts)
    buf = np.empty((8, n), dtype=np.int64)
    off = 0
    for p in parts:
        if len(p):
            a = np.ascontiguousarray(p).view(np.int64).reshape(len(p), 8)
            _transpose_into(a, buf[:, off : off + len(p)])
            off += len(p)
    out = [buf[j].view(EVENT_DTYPE[name]) for j, name in enumerate(_WIDE)]
    tail = buf[7]
    for name in _TAIL:
        off, dt = _FIELDS[name][1] - 56, EVENT_DTYPE[name]
        b = tail.view(np.uint8).reshape(n, 8)[:, off : off + dt.itemsize]
        out.append(np.ascontiguousarray(b).view(dt).reshape(n))
    return out


def no_late(ts: np.ndarray, hi: int) -> bool:
    """True when no row of ``ts`` is below the running maximum seeded with ``hi``."""
    return len(ts) == 0 or (ts[0] >= hi and not np.any(ts[1:] < ts[:-1]))


def search_right(ts: np.ndarray, v: int) -> int:
    """``np.searchsorted(ts, v, side="right")`` on a sorted, possibly strided array (no copy)."""
    return bisect.bisect_right(ts, v)


def merge2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Stable merge of two ``EVENT_DTYPE`` arrays each sorted by ``local_ts`` (ties: ``a`` first)."""
    na, nb = len(a), len(b)
    out = np.empty(na + nb, dtype=RAW)
    # place the shorter side by binary search, the other fills the remaining slots in order
    if nb <= na:
        small, big = b, a
        pos = np.searchsorted(np.ascontiguousarray(a["local_ts"]), b["local_ts"], side="right")
    else:
        small, big = a, b
        pos = np.searchsorted(np.ascontiguousarray(b["local_ts"]), a["local_ts"], side="left")
    pos += np.arange(len(small))
    rest = np.ones(na + nb, dtype=bool)
    rest[pos] = False
    out[pos] = raw(small)
    out[rest] = raw(big)
    return cooked(out)
