"""Several requests as WebSocket client frames in one buffer, so a batch leaves in one write.

A websocket library sends each message with its own write (one system call each: on loopback each
also runs the peer's receive path). A requote is several requests (a cancel-replace per level and
side), so ``ClientFrames.frame(src, offs, k)`` writes the ``k`` requests ``src[offs[i]:offs[i+1]]``
as RFC 6455 client frames (FIN, text, masked) one after the other into ``buf`` in compiled code,
and the caller hands ``view(n)`` to the connection's underlying transport once. The masking keys
come from a pool of ``os.urandom`` bytes (RFC 6455 5.3: unpredictable, from a strong source of
entropy), refilled off the compiled path when fewer than a batch's keys are left.
"""

from __future__ import annotations

import os

import numpy as np
from numba import njit

from avmm.jit import NJIT, bind

FIN_TEXT = 0x81
MASKED = 0x80
LEN16 = 126
POOL = 1 << 16  # mask bytes drawn at a time (16,384 frames)


@njit(**NJIT)
def frame_all(src, offs, k, dst, pool, pos):
    """Frames of the ``k`` payloads ``src[offs[i]:offs[i+1]]`` into ``dst``; the bytes written, or
    -1 when ``dst`` is too small (nothing to send). ``pos[0]``: the next unused mask byte."""
    w = 0
    p = pos[0]
    cap = dst.shape[0]
    for i in range(k):
        a = offs[i]
        n = offs[i + 1] - a
        if n >= 65536 or w + n + 8 > cap:
            return -1
        dst[w] = FIN_TEXT
        if n < LEN16:
            dst[w + 1] = MASKED | n
            w += 2
        else:
            dst[w + 1] = MASKED | LEN16
            dst[w + 2] = n >> 8
            dst[w + 3] = n & 0xFF
            w += 4
        for j in range(4):
            dst[w + j] = pool[p + j]
        for j in range(n):
            dst[w + 4 + j] = src[a + j] ^ pool[p + (j & 3)]
        w += 4 + n
        p += 4
    pos[0] = p
    return w


class ClientFrames:
    """A buffer of masked client frames for up to ``max_frames`` requests of ``cap`` bytes in all."""

    __slots__ = ("buf", "mv", "pool", "pos", "need", "_frame")

    def __init__(self, cap: int, max_frames: int) -> None:
        self.buf = np.zeros(cap + 8 * max_frames, dtype=np.uint8)
        self.mv = self.buf.data
        self.pool = np.frombuffer(os.urandom(POOL), dtype=np.uint8).copy()
        self.pos = np.zeros(1, dtype=np.int64)
        self.need = 4 * max_frames  # mask bytes a batch may use
        z8, z64 = np.zeros(16, dtype=np.uint8), np.zeros(2, dtype=np.int64)
        self._frame = bind(frame_all, z8, z64, 0, z8, z8, np.zeros(1, dtype=np.int64))

    def frame(self, src: np.ndarray, offs: np.ndarray, k: int) -> int:
        """The ``k`` payloads framed into ``buf``: the bytes written (-1: they do not fit)."""
        if self.pos[0] + self.need > POOL:
            self.pool[:] = np.frombuffer(os.urandom(POOL), dtype=np.uint8)
            self.pos[0] = 0
        return int(self._frame(src, offs, k, self.buf, self.pool, self.pos))

    def view(self, n: int) -> memoryview:
        return self.mv[:n]
