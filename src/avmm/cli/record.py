"""``avmm record``: the live market data of one Binance symbol written as capture files that
``avmm data convert`` reads (``avmm.live``).

Signals: the first SIGINT / SIGTERM / SIGHUP is the normal end of an unbounded recording (the files
closed, the summary printed, one line on stderr; exit 0); a second one exits at once (128 + its
number)."""

from __future__ import annotations

import math
import signal
import sys
from pathlib import Path

import typer

from avmm.errors import UserError


def record_command(
    folder: Path = typer.Argument(..., metavar="DIR", help="folder for the capture files (created if missing)"),
    venue: str = typer.Option(..., "--venue", metavar="<binance-spot|binance-um>", help="venue and market"),
    symbol: str = typer.Option(..., "--symbol", help="symbol, e.g. BTCUSDT"),
    url: str = typer.Option(
        None,
        "--url",
        metavar="ORIGIN",
        help="one origin for REST, streams and WS API (the emulator: http://127.0.0.1:PORT)",
    ),
    duration: float = typer.Option(None, "--duration", help="stop after this many wall seconds (default: a signal)"),
    config: Path = typer.Option(None, "--config", "-c", help="TOML config (its [venue] section)"),
    overrides: list[str] = typer.Option(
        [], "--set", metavar="<section.key=value>", help="override a key, e.g. venue.stale_s=2 (repeatable)"
    ),
) -> None:
    """Record the market data of one Binance symbol (bookTicker, trades, depth diffs and the
    snapshots the book was synced from) as '<local_ns> <json>' gzip files, one per UTC hour,
    each starting with a snapshot: 'avmm data convert' reads them."""
    from avmm.cli import signals
    from avmm.config import load_config
    from avmm.live.config import with_origin
    from avmm.live.run import check_symbol, check_venue, record, record_folder

    venue = check_venue(venue)
    symbol = check_symbol(symbol)
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise UserError(f"--duration {duration}: must be a positive number of seconds")
    cfg = load_config(config, overrides).venue
    if url is not None:
        cfg = with_origin(cfg, url, venue)
    record_folder(folder)
    counters, files, signum = record(venue, symbol, cfg, folder, duration, on_signal=signals.stopped)
    lines = sum(counters[k] for k in ("quotes", "trades"))
    print(f"avmm record: {venue} {symbol}: {len(files)} file(s) in {folder}, {lines:,} quotes and trades")
    shown = ", ".join(f"{k} {v:,}" for k, v in counters.items() if v)
    print(f"  {shown}")
    for f in files:
        print(f"  {f}")
    if signum:
        print(f"avmm record: stopped by {signal.Signals(signum).name}", file=sys.stderr)
