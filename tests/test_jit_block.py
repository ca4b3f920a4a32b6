"""jit.block_layout / jit.Block: several record arrays in one aligned block of memory."""

import numpy as np

from avmm.core import state as S
from avmm.jit import Block, block_layout

A = np.dtype([("x", np.int64), ("y", np.float64), ("z", np.int8)])
B = np.dtype([("v", np.float32)])


def test_parts_start_aligned_and_do_not_overlap():
    offsets, size = block_layout([(A, 3), (B, 5), (A, 1)], align=64)
    assert offsets == (0, 64, 128)
    assert size == 192
    offsets, size = block_layout([(A, 3), (B, 5)], align=8)
    assert offsets == (0, 56)  # 3 x 17 bytes, then the next multiple of 8
    assert size % 8 == 0 and size >= 3 * A.itemsize + 5 * B.itemsize


def test_block_views_share_the_aligned_buffer():
    blk = Block([(A, 3), (B, 5)])
    a, b = blk.views
    assert blk.address % 64 == 0
    assert a.shape == (3,) and a.dtype == A and b.shape == (5,) and b.dtype == B
    a["y"] = 1.5
    b["v"] = 2.0
    assert np.shares_memory(a, blk.buf) and np.shares_memory(b, blk.buf)
    assert not np.shares_memory(a, b)
    assert (a["y"] == 1.5).all() and (b["v"] == 2.0).all()


def test_core_memory_layout_is_the_block_layout():
    offsets, size = block_layout(S.CORE_PARTS)
    assert offsets == (S.OFF_P, S.OFF_S, S.OFF_O, S.OFF_A)
    assert size == S.CORE_BYTES
    mem = S.CoreMemory(np.zeros(1, dtype=S.PARAMS_DTYPE))
    assert mem.state.ctypes.data == mem.address + S.OFF_S
    assert mem.actions.ctypes.data == mem.address + S.OFF_A
