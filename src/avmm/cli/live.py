"""``avmm live``: live trading on Binance spot or USD-M -- the paper session's feed, core, journal
and status, its orders sent over Binance's WebSocket API (``live/session_live.py``).

Keys: ``AVMM_API_KEY`` with ``AVMM_API_SECRET`` (HMAC) or ``AVMM_PRIVATE_KEY_FILE`` (Ed25519 PEM),
else ``venue.keys_file`` (mode 0600); never printed. ``--dry-run`` connects, reconciles, computes the
quotes and logs the orders it would send (none is sent).

Running unattended, as ``avmm paper`` (``live/control.py``'s ``Supervisor``): ``--ctl SOCKET``
(``avmm ctl``: status, pause, resume, set, kill [--flatten]), the kill switch (``avmm ctl SOCKET
kill``, SIGUSR1, ``--kill-file``, ``K`` twice in the status panel on a terminal: every order
cancelled at the venue, with ``--flatten`` the position closed by the core's taker orders first,
journaled; exit 0 with the summary), ``--log FILE`` (rotated; the keys masked), the ``[alerts]``
hook (a halt, the kill switch, a disconnect, a failed reconciliation), ``--cpu``, ``--rt-priority``,
``--gc``, ``--busy-poll`` (``cli/unattended.py``).

Signals: the first SIGINT / SIGTERM stops the session cleanly (every order cancelled at the venue,
the journal flushed, the summary printed; exit 0); a second one exits at once (130 / 143). A halt
(the venue refused the key, an IP ban, reconnection or reconciliation failing ``venue.reconcile_
retries`` times) ends the session the same way, then exits 2 with one line saying why.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import sys
from pathlib import Path
from typing import Any

import typer

from avmm.cli import unattended
from avmm.errors import UserError


def live_command(
    venue: str = typer.Option(..., "--venue", metavar="<binance-spot|binance-um>", help="the market"),
    symbol: str = typer.Option(..., "--symbol", help="symbol, e.g. BTCUSDT"),
    config: Path = typer.Option(None, "--config", "-c", help="config TOML ([model] ... [backtest] [venue])"),
    url: str = typer.Option(
        None, "--url", help="one origin for REST, streams and the WebSocket API (the emulator: http://127.0.0.1:PORT)"
    ),
    journal: Path = typer.Option(
        None, "--journal", help="SQLite journal of every order intent, answer and fill (an existing one is resumed)"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="connect, reconcile and quote, but send no order (logged)"),
    duration: float = typer.Option(None, "--duration", help="stop after this many wall seconds"),
    status_json: bool = typer.Option(False, "--status-json", help="status as JSON lines on stdout, every second"),
    metrics_port: int = typer.Option(None, "--metrics-port", help="Prometheus metrics on 127.0.0.1:PORT"),
    set_: list[str] = typer.Option(None, "--set", help="override a config value, e.g. venue.foreign_orders=cancel"),
    ctl: Path = unattended.CTL,
    kill_file: Path = unattended.KILL_FILE,
    log: Path = unattended.LOG,
    log_max_mb: float = unattended.LOG_MAX_MB,
    log_backups: int = unattended.LOG_BACKUPS,
    cpu: str = unattended.CPU,
    rt_priority: int = unattended.RT_PRIORITY,
    gc_mode: str = unattended.GC,
    busy_poll: bool = unattended.BUSY_POLL,
) -> None:
    """Live trading: the live feed drives the strategy core; its orders go to Binance over the
    WebSocket API, the venue's answers and fills come back to it, journaled."""
    from avmm.cli import signals
    from avmm.cli.paper import _metrics
    from avmm.config import load_config
    from avmm.live.config import with_origin
    from avmm.live.control import install_early
    from avmm.live.keys import load_keys
    from avmm.live.run import check_symbol, check_venue, new_loop

    venue = check_venue(venue)
    symbol = check_symbol(symbol)
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise UserError(f"--duration {duration}: must be a positive number of seconds")
    if metrics_port is not None and not 0 <= metrics_port <= 65535:
        raise UserError(f"--metrics-port {metrics_port}: must be a port number (0-65535)")
    ops = unattended.ops(ctl, kill_file, log, log_max_mb, log_backups, cpu, rt_priority, gc_mode, busy_poll)
    install_early()
    cfg = load_config(config, set_ or [])
    vcfg = with_origin(cfg.venue, url, venue) if url else cfg.venue
    vcfg.check_for(venue)
    keys = load_keys(vcfg.keys_file)
    if journal is not None and not journal.exists():
        from avmm.outputs import check_output

        check_output(journal, "--journal", [config] if config is not None else [])
    _logging(dry_run)
    metrics = _metrics(metrics_port) if metrics_port is not None else None
    loop = new_loop("avmm live")
    try:
        summary, signum, halted = loop.run_until_complete(
            _live(
                venue, symbol, cfg, vcfg, keys, duration, journal, dry_run, status_json, metrics, signals.stopped, ops
            )
        )
    finally:
        loop.close()
    from avmm.cli.paper import _print_summary

    if signum:
        print(f"avmm live: stopped by {signal.Signals(signum).name}; orders cancelled", file=sys.stderr)
    elif ops.killed_by:
        flat = ""
        if ops.flattened:
            pos = float(summary.get("live", {}).get("position_core", 0.0))
            flat = "; flattened" if abs(pos) < 1e-9 else f"; flattening stopped at position {pos:g}"
        print(f"avmm live: killed by {ops.killed_by}; orders cancelled at the venue{flat}", file=sys.stderr)
    mode = "dry-run" if dry_run else "live"
    title = f"{mode}: {venue} {symbol}" + (f"  journal {journal}" if journal else "")
    _print_summary(summary, title, to_stderr=status_json)
    if halted:
        raise UserError(f"avmm live: halted: {halted}")


def _logging(dry_run: bool) -> None:
    """The gateway's log lines on stderr (the orders a dry run would send at INFO; else warnings
    and errors); ``--log`` adds the file (INFO) to the same logger."""
    lg = logging.getLogger("avmm.live")
    if not any(getattr(h, "_avmm_stderr", False) for h in lg.handlers):
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("avmm live: %(levelname)s %(message)s"))
        h._avmm_stderr = True  # type: ignore[attr-defined]
        lg.addHandler(h)
        lg.propagate = False
    for hd in lg.handlers:
        if getattr(hd, "_avmm_stderr", False):
            hd.setLevel(logging.INFO if dry_run else logging.WARNING)
    lg.setLevel(logging.INFO)


async def _live(
    venue: str,
    symbol: str,
    cfg: Any,
    vcfg: Any,
    keys: Any,
    duration: float | None,
    journal_path: Path | None,
    dry_run: bool,
    status_json: bool,
    metrics: Any,
    on_signal: Any,
    ops: Any,
) -> tuple[dict[str, Any], int, str | None]:
    from avmm.backtest.runner import _strategy_only, adapt_config
    from avmm.cli.paper import _day_pnl, _Keys, _Status
    from avmm.config import parse_override
    from avmm.live.control import Supervisor
    from avmm.live.logs import open_log
    from avmm.live.paper import instrument
    from avmm.live.run import StopOnSignal
    from avmm.live.session_live import LiveSession, journal_position, session_token

    info = await instrument(venue, symbol, vcfg)
    strat = _strategy_only(adapt_config(cfg, info))
    bt = cfg.backtest
    journal: Any = None
    logf: Any = None
    live = _Status(status_json, metrics)
    try:
        if ops.log is not None:
            logf = open_log(ops.log, ops.log_max_bytes, ops.log_backups, secrets=keys.secrets())
        session_id = session_token()
        recovery = None
        pos0 = 0.0
        day_pnl = None
        if journal_path is not None:
            meta = {
                "venue": venue,
                "symbol": symbol,
                "instrument": info,
                "mode": "dry-run" if dry_run else "live",
                "config": {**strat.model_dump(mode="json"), "backtest": bt.model_dump(mode="json")},
            }
            if journal_path.exists():
                _check_journal(journal_path, venue, symbol)
                day_pnl = _day_pnl(journal_path)  # the UTC day's PnL so far, for risk.max_loss_day
            journal = _open_journal(journal_path, meta, vcfg.client_prefix)
            session_id = str(journal.session)
            recovery = journal.recovery
            if venue == "binance-spot":
                pos0 = journal_position(journal_path)
        session = LiveSession(
            venue, symbol, strat, bt, vcfg, keys, session_id=session_id, journal=journal, recovery=recovery,
            dry_run=dry_run, on_status=live, start_position=pos0, day_pnl=day_pnl,
        )  # fmt: skip
        stopper = StopOnSignal(asyncio.get_running_loop(), session.stop, on_signal)
        sup = Supervisor(
            session,
            strat,
            parse_set=parse_override,
            alerts=cfg.alerts,
            log=logf.logger if logf is not None else None,
            **ops.supervisor_kwargs(),
            where={"venue": venue, "symbol": symbol, "runtime": "dry-run" if dry_run else "live"},
            warn=lambda line: print(f"avmm live: warning: {line}", file=sys.stderr, flush=True),
        )
        session.gwy.on_reconcile_failed = sup.reconcile_failed
        keys_in = _Keys(sys.stdin, sup.kill)
        with stopper:
            live.start()
            try:
                async with sup:
                    if live.live is not None:  # the panel on a terminal: K twice is the kill switch
                        live.keys = keys_in.start(asyncio.get_running_loop())
                    summary = await session.run(duration)
            finally:
                keys_in.stop()
                live.stop()
                ops.killed_by, ops.flattened = sup.killed_by, sup.ctl.flattened
    finally:
        if logf is not None:
            logf.close()
        if journal is not None:
            journal.close()
    return summary, stopper.signum, session.halted


def _check_journal(path: Path, venue: str, symbol: str) -> None:
    """A journal resumed must be of the same venue and symbol (one line otherwise)."""
    import json
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT value FROM meta WHERE key = 'meta'").fetchone()
        finally:
            con.close()
        meta = json.loads(row[0]) if row else {}
    except (sqlite3.Error, ValueError, TypeError):
        return  # not a journal: the journal's own check says so
    if isinstance(meta, dict) and (meta.get("venue"), meta.get("symbol")) not in ((venue, symbol), (None, None)):
        raise UserError(
            f"--journal {path}: a journal of {meta.get('venue')} {meta.get('symbol')}, not {venue} {symbol}: "
            "use another file"
        )


def _open_journal(path: Path, meta: dict[str, Any], prefix: str) -> Any:
    """The journal: an existing one resumed (its intent log replayed first: a ``kill -9``), else new."""
    from avmm.live.journal import Journal

    return Journal(path, meta, resume=True, prefix=prefix)
