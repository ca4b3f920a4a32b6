"""One market-data websocket connection (picows: the fastest client measured here,
``benchmarks/ws_clients.py``): each text frame goes to the feed with its local receive time,
closes and disconnects are reported once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from time import time_ns
from typing import Any

import picows

TEXT = picows.WSMsgType.TEXT
BINARY = picows.WSMsgType.BINARY
CLOSE = picows.WSMsgType.CLOSE

FrameFn = Callable[["Conn", bytes, int], None]
ClosedFn = Callable[["Conn"], None]

_ids = iter(range(1, 1 << 62))


class Conn(picows.WSListener):
    """A connection's listener: ``on_frame(conn, payload, local_ns)`` for each data frame,
    ``on_closed(conn)`` once when it ends (either side closed it, or the network did)."""

    def __init__(self, on_frame: FrameFn, on_closed: ClosedFn) -> None:
        super().__init__()
        self.id = next(_ids)
        self.on_frame = on_frame
        self.on_closed = on_closed
        self.transport: Any = None
        self.opened = time.monotonic()
        self.frames = 0
        self.closed = False
        self.ready = asyncio.get_running_loop().create_future()  # the first data frame arrived

    def on_ws_connected(self, transport: Any) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        t = time_ns()  # the frame's arrival (``local_ns``): taken first
        mt = frame.msg_type
        if mt is TEXT or mt is BINARY:
            self.frames += 1
            if self.frames == 1:
                self.ready.set_result(True)
            self.on_frame(self, frame.get_payload_as_bytes(), t)
        elif mt is CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: Any) -> None:
        self._closed()

    def _closed(self) -> None:
        if not self.closed:
            self.closed = True
            if not self.ready.done():
                self.ready.set_result(False)
            self.on_closed(self)

    def close(self) -> None:
        """Close it (a normal close frame, then the socket)."""
        if self.transport is not None and not self.closed:
            try:
                self.transport.send_close(picows.WSCloseCode.OK)
            finally:
                self.transport.disconnect()


async def connect(url: str, on_frame: FrameFn, on_closed: ClosedFn, timeout: float) -> Conn:
    """Open a connection to ``url``; raises ``OSError`` / ``picows.WSError`` /
    ``asyncio.TimeoutError`` when it cannot be opened."""
    _, listener = await asyncio.wait_for(
        picows.ws_connect(
            lambda: Conn(on_frame, on_closed),
            url,
            websocket_handshake_timeout=timeout,
            enable_auto_ping=True,
            auto_ping_idle_timeout=20.0,
            auto_ping_reply_timeout=20.0,
            max_frame_size=64 << 20,
            logger_name="avmm.live",
        ),
        timeout,
    )
    assert isinstance(listener, Conn)
    return listener


CONNECT_ERRORS: tuple[type[BaseException], ...] = (OSError, picows.WSError, asyncio.TimeoutError)
