"""``avmm data ...``: convert, inspect, synth, fetch. A thin layer over the library modules."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import typer

from avmm.errors import UserError

app = typer.Typer(
    rich_markup_mode=None,
    help="Market data: convert exchange formats to the event store, inspect it, synthesise sessions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


@contextmanager
def _bar(total: int, label: str, show: bool) -> Any:
    """A rich progress bar on stderr (only on a terminal); yields an ``advance(n)`` callable."""
    if not show or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as p:
        task = p.add_task(label, total=total or None)
        yield lambda n: p.advance(task, n)


@app.command()
def convert(
    sources: list[Path] = typer.Argument(..., help="input files or folders"),
    out: Path = typer.Option(..., "-o", "--out", help="output event store (.parquet)"),
    fmt: str = typer.Option(
        "auto",
        "--format",
        metavar="<auto|binance-ws|binance-archive|tardis|lobster>",
        help="source format (auto: detected from the files)",
    ),
    symbol: str = typer.Option(None, "--symbol", help="symbol to keep (default: the first seen)"),
    reorder_window_ms: float = typer.Option(
        1000.0, "--reorder-window-ms", help="out-of-order local timestamps within this window are reordered"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bar on a terminal for large inputs"),
) -> None:
    """Convert exchange data to one event store (format auto-detected)."""
    from avmm.data.convert import convert as do_convert
    from avmm.data.convert import total_bytes

    total = total_bytes(sources)
    with _bar(total, "converting", progress and total > (8 << 20)) as adv:
        s = do_convert(sources, out, fmt=fmt, symbol=symbol, progress=adv, reorder_window_ms=reorder_window_ms)
    if as_json:
        print(json.dumps(s.to_dict(), indent=2))
    else:
        print("\n".join(s.lines()))


@app.command()
def inspect(
    file: Path = typer.Argument(..., help="event store (.parquet)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    gap_s: float = typer.Option(1.0, "--gap-s", help="report time gaps longer than this (seconds)"),
    clock_offset_s: float = typer.Option(
        1.0, "--clock-offset-s", help="flag a median local - exchange clock offset larger than this (seconds)"
    ),
) -> None:
    """Time span, counts by kind, tick/lot, spreads, crossed/locked books, gaps, rows out of order,
    the local - exchange clock offset."""
    import math

    from avmm.data.inspect import format_report, inspect_store

    if not (gap_s > 0 and math.isfinite(gap_s)):
        raise UserError(f"--gap-s {gap_s}: must be a positive number of seconds")
    if not (clock_offset_s > 0 and math.isfinite(clock_offset_s)):
        raise UserError(f"--clock-offset-s {clock_offset_s}: must be a positive number of seconds")
    r = inspect_store(file, gap_s=gap_s, clock_offset_s=clock_offset_s)
    if as_json:
        print(json.dumps(r, indent=2, default=str))
    else:
        print("\n".join(format_report(r)))


@app.command()
def synth(
    out: Path = typer.Option(..., "-o", "--out", help="output event store (.parquet)"),
    events: int = typer.Option(1_000_000, "--events", min=1, help="number of events"),
    seed: int = typer.Option(7, "--seed", min=0, help="seed of the random numbers (same seed, same bytes)"),
    mid: float = typer.Option(100.0, "--mid", help="initial mid price"),
    tick: float = typer.Option(0.01, "--tick", help="price increment"),
    lot: float = typer.Option(0.001, "--lot", help="size increment"),
    sigma: float = typer.Option(0.05, "--sigma", help="volatility, price units per sqrt(second)"),
    quote_rate: float = typer.Option(10.0, "--quote-rate", help="quote updates per second"),
    trade_rate: float = typer.Option(2.0, "--trade-rate", help="trades per second (both sides)"),
    k: float = typer.Option(40.0, "--k", help="trade reach decay: intensity A exp(-k depth)"),
) -> None:
    """A deterministic synthetic session (random-walk mid, Poisson quotes and trades)."""
    import time

    from avmm.data.synth import check_span, store_bytes, synth_meta, write_synth
    from avmm.outputs import check_output, check_space

    params = dict(mid=mid, tick=tick, lot=lot, sigma=sigma, quote_rate=quote_rate, trade_rate=trade_rate, k=k)
    try:
        synth_meta(events, seed, **params)  # the parameters' checks, before any work
    except ValueError as e:
        raise UserError("--" + str(e).removeprefix("synth: ").replace("_", "-", 1)) from None
    try:
        check_span(events, quote_rate, trade_rate)
    except ValueError as e:
        msg = str(e).removeprefix("synth: ")
        raise UserError(f"--events {events}: {msg}; raise --quote-rate / --trade-rate or lower --events") from None
    check_output(out, "-o")
    if out.exists() and not out.is_file():
        raise UserError(f"-o {out}: not a regular file; an event store is written to a file")
    check_space(out, store_bytes(events), "-o", "lower --events")
    t = time.perf_counter()
    n = write_synth(out, events, seed, flag="-o", **params)
    dt = time.perf_counter() - t
    print(f"wrote {n:,} synthetic events to {out} in {dt:.2f} s (seed {seed})")


@app.command()
def fetch(
    market: Literal["spot", "um"] = typer.Option(..., "--market", help="spot or um (USD-M futures)"),
    kind: Literal["bookTicker", "aggTrades", "trades"] = typer.Option(..., "--kind", help="archive kind"),
    symbol: str = typer.Option(..., "--symbol", help="symbol as Binance names it, e.g. BTCUSDT"),
    date_from: str = typer.Option(..., "--from", help="first day, YYYY-MM-DD"),
    date_to: str = typer.Option(..., "--to", help="last day, YYYY-MM-DD (inclusive)"),
    out: Path = typer.Option(..., "-o", "--out", help="download folder"),
    base_url: str = typer.Option(
        None, "--base-url", envvar="AVMM_BINANCE_DATA_URL", help="archive server (default https://data.binance.vision)"
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bars on a terminal"),
) -> None:
    """Download Binance daily archives, verify each .CHECKSUM, resume partial downloads."""
    from avmm.data.fetch import FetchError
    from avmm.data.fetch import fetch as do_fetch

    if progress and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        tasks: dict[str, Any] = {}
        with Progress(
            "{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=Console(stderr=True)
        ) as p:

            def on_progress(name: str, n: int, total: int | None) -> None:
                if name not in tasks:
                    tasks[name] = p.add_task(name, total=total)
                p.update(tasks[name], advance=n, total=total)

            try:
                s = do_fetch(market, kind, symbol, date_from, date_to, out, base_url, on_progress)
            except FetchError as e:
                print("\n".join(e.summary.lines()))
                raise
    else:
        try:
            s = do_fetch(market, kind, symbol, date_from, date_to, out, base_url, None)
        except FetchError as e:
            print("\n".join(e.summary.lines()))
            raise
    print("\n".join(s.lines()))
