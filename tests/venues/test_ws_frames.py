"""``venues/ws_frames.py``: a batch of requests as masked client frames in one buffer, read back by
a third-party WebSocket implementation (``websockets``' frame parser, as a server parses them)."""

from __future__ import annotations

import numpy as np
import pytest

from avmm.venues.ws_frames import POOL, ClientFrames

websockets = pytest.importorskip("websockets")


def _parse(data: bytes) -> list[tuple[bool, int, bytes]]:
    """Each frame (fin, opcode, unmasked payload) as a server reads it (``mask=True``: client frames)."""
    from websockets.frames import Frame
    from websockets.streams import StreamReader

    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    out = []
    while reader.buffer:
        gen = Frame.parse(reader.read_exact, mask=True)
        try:
            next(gen)
        except StopIteration as e:
            f = e.value
            out.append((f.fin, f.opcode.value, bytes(f.data)))
            continue
        raise AssertionError("a truncated frame")
    return out


def _batch(sizes: list[int], seed: int = 1) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    rng = np.random.default_rng(seed)
    msgs = [bytes(rng.integers(32, 127, size=n, dtype=np.uint8)) for n in sizes]
    src = np.frombuffer(b"".join(msgs), dtype=np.uint8).copy()
    offs = np.zeros(len(msgs) + 1, dtype=np.int64)
    offs[1:] = np.cumsum(sizes)
    return src, offs, msgs


def test_a_batch_reads_back_as_its_requests_each_with_its_own_mask():
    sizes = [0, 1, 125, 126, 300, 511]  # the 7-bit length, both sides of 126, the 16-bit length
    src, offs, msgs = _batch(sizes)
    fr = ClientFrames(4096, 8)
    n = fr.frame(src, offs, len(msgs))
    data = bytes(fr.view(n))
    assert n == sum(sizes) + sum(2 + 4 + (2 if s >= 126 else 0) for s in sizes)
    assert _parse(data) == [(True, 1, m) for m in msgs]  # FIN, text
    keys = []
    pos = 0
    for s in sizes:
        hdr = 4 if s >= 126 else 2
        assert data[pos + 1] & 0x80  # masked
        keys.append(data[pos + hdr : pos + hdr + 4])
        pos += hdr + 4 + s
    assert len(set(keys)) == len(keys)  # a fresh key per frame
    assert msgs[4] not in data and msgs[5] not in data  # the payloads go masked


def test_the_mask_pool_is_refilled_and_too_small_a_buffer_writes_nothing():
    src, offs, msgs = _batch([200] * 4, seed=2)
    fr = ClientFrames(1024, 4)
    fr.pos[0] = POOL - 8  # not enough keys left for a batch: refilled first
    n = fr.frame(src, offs, 4)
    assert fr.pos[0] == 16 and _parse(bytes(fr.view(n))) == [(True, 1, m) for m in msgs]
    small = ClientFrames(100, 1)
    assert small.frame(src, offs, 1) == -1
