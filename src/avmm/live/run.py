"""Running the feed from a command: the event loop (uvloop), signals, the recorder."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from avmm.errors import UserError, missing_extra
from avmm.live.config import VENUES, VenueConfig
from avmm.live.record import HOUR_NS, Recorder


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


def record(
    venue: str,
    symbol: str,
    cfg: VenueConfig,
    folder: Path,
    duration: float | None,
    period_ns: int = HOUR_NS,
) -> tuple[dict[str, int], list[Path], int]:
    """Record the feed of ``symbol`` into ``folder`` until ``duration`` wall seconds or a signal
    (SIGINT, SIGTERM, SIGHUP: a clean stop; a second one exits at once). Returns the feed's
    counters, the files written and the signal that stopped it (0: none)."""
    loop = new_loop("avmm record")
    from avmm.live.feed import Feed

    rec = Recorder(folder, f"{symbol}-{venue}", period_ns)
    feed = Feed(venue, symbol, cfg, recorder=rec)
    got = [0]

    def on_signal(s: int) -> None:
        if got[0]:
            name = signal.Signals(s).name
            os.write(2, f"avmm: interrupted again by {name}; exiting now\n".encode())
            os._exit(128 + s)
        got[0] = s
        feed.stop()

    try:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(s, on_signal, s)
        counters = loop.run_until_complete(feed.run(duration))
    finally:
        rec.close()
        loop.close()
    return {k: getattr(counters, k) for k in counters.__struct_fields__}, list(rec.files), got[0]
