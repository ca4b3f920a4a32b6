"""Running the feed from a command: the event loop (uvloop), signals, the recording folder, the
recorder (``avmm record``; ``avmm paper --record`` shares the folder check and the signals)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from avmm.errors import UserError, missing_extra
from avmm.live.config import VENUES, VenueConfig
from avmm.live.record import HOUR_NS, Recorder

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def new_loop(what: str) -> asyncio.AbstractEventLoop:
    """A uvloop event loop (the ``live`` extra); the feed's client libraries checked too."""
    for module in ("uvloop", "picows", "aiohttp"):
        try:
            __import__(module)
        except ImportError:
            raise missing_extra(what, "live", module) from None
    import uvloop

    return uvloop.new_event_loop()


def check_symbol(symbol: str) -> str:
    s = symbol.strip().upper()
    if not s or not s.isalnum():
        raise UserError(f"--symbol {symbol!r}: expected a Binance symbol like BTCUSDT (letters and digits)")
    return s


def check_venue(venue: str) -> str:
    if venue not in VENUES:
        raise UserError(f"--venue {venue}: unknown venue (use {' or '.join(VENUES)})")
    return venue


def record_folder(folder: Path) -> Path:
    """The folder of a recording, created if missing (its parent must exist)."""
    if not folder.is_dir():
        if folder.exists():
            raise UserError(f"{folder}: not a folder")
        if not folder.parent.is_dir():
            raise UserError(f"{folder}: folder {folder.parent} does not exist")
        try:
            folder.mkdir()
        except OSError as e:
            raise UserError(f"{folder}: cannot create the folder ({e.strerror})") from None
    return folder


class StopOnSignal:
    """SIGINT, SIGTERM and SIGHUP while a feed runs on ``loop``: the first is the normal end of an
    unbounded session (``stop`` called on the loop, the signal kept in ``signum``, ``on_first``
    told); a second exits at once, 128 + its number, with one line.

    The handlers are Python's own (``signal.signal``): uvloop runs them as soon as the signal
    arrives (its wakeup fd), and outside the loop -- the session winding down, a thread joined --
    at the next bytecode, so a second signal always exits at once. The handlers before are put
    back on exit."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, stop: Callable[[], None], on_first: Callable[[int], None] | None = None
    ) -> None:
        self.loop = loop
        self.stop = stop
        self.on_first = on_first
        self.signum = 0
        self._prev: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum:
            name = signal.Signals(signum).name
            os.write(2, f"avmm: interrupted again by {name}; exiting now\n".encode())
            os._exit(128 + signum)
        self.signum = signum
        if self.on_first is not None:
            self.on_first(signum)
        self.loop.call_soon_threadsafe(self.stop)

    def __enter__(self) -> StopOnSignal:
        for s in SIGNALS:
            self._prev[s] = signal.getsignal(s)
            signal.signal(s, self._handle)
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        for s, prev in self._prev.items():
            signal.signal(s, prev if prev is not None else signal.SIG_DFL)


def record(
    venue: str,
    symbol: str,
    cfg: VenueConfig,
    folder: Path,
    duration: float | None,
    period_ns: int = HOUR_NS,
    on_signal: Callable[[int], None] | None = None,
) -> tuple[dict[str, int], list[Path], int]:
    """Record the feed of ``symbol`` into ``folder`` until ``duration`` wall seconds or a signal
    (SIGINT, SIGTERM, SIGHUP: a clean stop, ``on_signal`` told; a second one exits at once).
    Returns the feed's counters, the files written and the signal that stopped it (0: none)."""
    loop = new_loop("avmm record")
    from avmm.live.feed import Feed

    rec = Recorder(folder, f"{symbol}-{venue}", period_ns)
    feed = Feed(venue, symbol, cfg, recorder=rec)
    stopper = StopOnSignal(loop, feed.stop, on_signal)
    try:
        with stopper:
            counters = loop.run_until_complete(feed.run(duration))
    finally:
        rec.close()
        loop.close()
    return {k: getattr(counters, k) for k in counters.__struct_fields__}, list(rec.files), stopper.signum
