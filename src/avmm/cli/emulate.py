"""``avmm emulate``: a local Binance replaying event stores (``avmm.emulator``): market data, and with
``--keys FILE`` the private side (WebSocket API, signed REST, user data) on the backtester's
exchange model, its fees, queue model and balances from ``--config`` / ``--set backtest.*``.

The first stdout line names the origin (``http://127.0.0.1:PORT``); a second line says when the
replay has ended (the sockets stay open). SIGINT / SIGTERM stop the server (exit 130 / 143).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import typer

from avmm.errors import UserError
from avmm.outputs import Terminated


def emulate_command(
    data: list[Path] = typer.Argument(..., help="event stores (.parquet) to replay, following one another in time"),
    venue: str = typer.Option("binance-spot", "--venue", metavar="<binance-spot|binance-um>", help="venue to speak"),
    symbol: str = typer.Option(None, "--symbol", help="symbol served (default: the store's)"),
    speed: float = typer.Option(1.0, "--speed", help="the venue clock runs this many times wall time"),
    max_speed: bool = typer.Option(False, "--max", help="send as fast as the clients read"),
    port: int = typer.Option(8765, "--port", help="port on 127.0.0.1 (0: any free port)"),
    start_now: bool = typer.Option(
        False, "--start-now", help="start the replay at once (default: at the first subscription)"
    ),
    fault: list[str] = typer.Option(
        [],
        "--fault",
        metavar="NAME[:ARG][@S][/PATHS]",
        help="fault knob (repeatable): drop[:N], reorder, stall[:S], close, shutdown, skew:MS, lifetime:S, "
        "msgrate:N, maxstreams:N, weightlimit:N, orderlimit:N (the limits; 0: none), ratelimit[:N]; with --keys: "
        "ackdelay:MS, fillfirst[:N], partial:N, exectimeout[:N], noanswer[:N], keyexpired, terminated, "
        "foreign[:N]; @S fires it S seconds into the replay; /public, /market or /legacy limits stall, close, "
        "shutdown and lifetime to those sockets, /api and /user limit close to the WebSocket API / user streams. "
        'At run time: POST /_avmm/fault {"fault": "drop:2"}',
    ),
    heartbeat: float = typer.Option(20.0, "--heartbeat", help="seconds between the server's pings (0: none)"),
    keys: Path = typer.Option(
        None,
        "--keys",
        help="API keys (TOML or JSON: api_key, type = hmac | ed25519, secret or public_key PEM): serves the "
        "WebSocket API, signed REST and user data, one account per key",
    ),
    config: Path = typer.Option(
        None, "--config", "-c", help="config TOML: [backtest] fees, queue model, balances for the accounts"
    ),
    set_: list[str] = typer.Option(None, "--set", help="override a config value, e.g. backtest.maker_fee=0"),
) -> None:
    """A local Binance on 127.0.0.1: REST depth / exchangeInfo / time and the market streams
    (bookTicker, trade, aggTrade, depth), replaying event stores, with fault knobs."""
    from avmm.emulator.faults import parse_fault
    from avmm.emulator.process import new_loop
    from avmm.emulator.server import Emulator

    if speed != 1.0 and max_speed:
        raise UserError("--speed and --max: give one of them")
    if not heartbeat >= 0:
        raise UserError(f"--heartbeat {heartbeat}: must be 0 or a positive number of seconds")
    faults = [parse_fault(f) for f in fault]
    strategy = backtest = None
    if config is not None or set_:
        if keys is None:
            raise UserError("--config / --set: they set the private side's accounts; give --keys FILE")
        from avmm.backtest.runner import _strategy_only
        from avmm.config import load_config

        cfg = load_config(config, set_ or [])
        strategy, backtest = _strategy_only(cfg), cfg.backtest
    emu = Emulator(
        data,
        venue=venue,
        symbol=symbol,
        speed=speed,
        max_speed=max_speed,
        port=port,
        start_now=start_now,
        faults=faults,
        heartbeat=heartbeat or None,
        keys=keys,
        strategy=strategy,
        backtest=backtest,
    )
    loop = new_loop()
    try:
        signum = loop.run_until_complete(_serve(emu))
    finally:
        loop.close()
    if signum:
        raise Terminated(signum)


async def _serve(emu: object) -> int:
    from avmm.emulator.server import Emulator

    assert isinstance(emu, Emulator)
    stop = asyncio.Event()
    got = [0]
    loop = asyncio.get_running_loop()

    def on_signal(s: int) -> None:
        got[0] = s
        stop.set()

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(s, on_signal, s)
    try:
        await emu.start()
        when = "now" if emu.start_now else "at the first subscription"
        pace = "as fast as the clients read" if emu.max_speed else f"{emu.speed:g}x real time"
        paths = ("/public/stream", "/market/stream", "/ws", "/stream") if emu.um else ("/ws", "/stream")
        api = ""
        if emu.private is not None:
            n = len(emu.private.accounts)
            api = f"; WebSocket API {emu.ws_url}{'/ws-fapi/v1' if emu.um else '/ws-api/v3'}, {n} account(s)"
        print(
            f"avmm emulate: serving {emu.url} ({emu.venue} {emu.symbol}; streams "
            f"{', '.join(emu.ws_url + p for p in paths)}{api}); the replay starts {when}, {pace}",
            flush=True,
        )
        waiter = loop.create_task(emu.wait_done())
        stopper = loop.create_task(stop.wait())
        done, _ = await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if waiter in done:
            waiter.result()  # a store that fails while read: its one-line error
            st = emu.status()
            print(
                f"avmm emulate: replay done: {st['steps']:,} steps, {st['frames']:,} frames sent; "
                "the sockets stay open (Ctrl-C stops)",
                flush=True,
            )
            await stopper
        else:
            waiter.cancel()
    finally:
        await emu.stop()
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(s)
    sys.stdout.flush()
    return got[0]
