"""Small helpers around numba shared by the compiled kernels.

* ``clock_ns(buf)`` -- CLOCK_MONOTONIC in nanoseconds from inside ``@njit`` code: a direct libc
  call (~30 ns), cache-safe because it is linked by symbol name, not by address; ``buf`` is a
  caller-owned int64[2] scratch array so the call allocates nothing.
* ``block_layout(parts)`` / ``Block`` -- several record arrays laid out in one aligned block of
  memory, so that compiled entry points take one integer address (``voidptr(addr + offset)``)
  instead of several array arguments (each costs an unboxing and an allocation per call).
* ``bind(dispatcher, *args)`` -- compile ``dispatcher`` for the types of ``args`` and return the
  compiled entry point, a C function that skips numba's per-call type dispatch (~0.4 us saved per
  call). Used by the Python runtimes on the hot path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

NJIT: dict[str, Any] = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")
# hot-path helpers: inlined into their callers at numba IR level (no call; numba passes every array
# as ~7 scalars, so a call with a few arrays costs more than a small body)
NJIT_INLINE: dict[str, Any] = dict(NJIT, inline="always")

_clock_gettime: Any = types.ExternalFunction("clock_gettime", types.int32(types.int32, types.voidptr))
_CLOCK_MONOTONIC = 1


@njit(cache=True, nogil=True)
def clock_ns(buf) -> int:
    """CLOCK_MONOTONIC ns using a caller-owned int64[2] scratch buffer (no allocation)."""
    _clock_gettime(_CLOCK_MONOTONIC, buf.ctypes.data)
    return buf[0] * 1_000_000_000 + buf[1]


def bind(dispatcher, *example_args):
    """Compile ``dispatcher`` for ``example_args`` and return the direct entry point.

    The returned callable must be called with arguments of exactly those types (arrays of the same
    dtype/ndim/layout; scalars of a compatible kind). Falls back to the dispatcher itself if this
    numba version hides the entry point.
    """
    dispatcher(*example_args)
    sig = tuple(dispatcher.typeof_pyval(a) for a in example_args)
    cres = dispatcher.overloads.get(sig)
    ep = getattr(cres, "entry_point", None)
    return ep if ep is not None else dispatcher


@intrinsic
def _voidptr(typingctx, addr):
    """An integer address as a ``void*`` (for ``numba.carray`` views over memory we own)."""
    sig = types.voidptr(addr)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return sig, codegen


# called as ``voidptr(addr)`` from compiled code (numba supplies the typing context)
voidptr: Any = _voidptr


def _align(n: int, to: int) -> int:
    return (n + to - 1) // to * to


def block_layout(parts: list[tuple[np.dtype, int]], align: int = 64) -> tuple[tuple[int, ...], int]:
    """Offsets of each ``(dtype, count)`` part in one block, every part starting on an ``align``-byte
    boundary, and the block's size. Module constants computed from it are compile-time constants
    in the kernels that read the block through ``voidptr(addr + offset)``."""
    offsets = []
    end = 0
    for dtype, count in parts:
        off = _align(end, align)
        offsets.append(off)
        end = off + np.dtype(dtype).itemsize * count
    return tuple(offsets), _align(end, align)


class Block:
    """One zeroed, ``align``-byte aligned block of memory holding ``parts``, with a NumPy view per
    part (``views[i]``) and the block's ``address`` for compiled entry points."""

    __slots__ = ("buf", "address", "views")

    def __init__(self, parts: list[tuple[np.dtype, int]], align: int = 64) -> None:
        offsets, size = block_layout(parts, align)
        raw = np.zeros(size + align, dtype=np.uint8)
        start = (-raw.ctypes.data) % align
        self.buf = raw[start : start + size]
        self.address = int(self.buf.ctypes.data)
        self.views = tuple(
            self.buf[off : off + np.dtype(dt).itemsize * n].view(dt)
            for (dt, n), off in zip(parts, offsets, strict=True)
        )
