"""``avmm paper`` (paper trading on a live Binance feed) and ``avmm report`` (a journal's summary,
JSON and charts, as a backtest gives them).

Running unattended (``live/control.py``): ``--ctl SOCKET`` (``avmm ctl``), the kill switch
(``avmm ctl SOCKET kill``, SIGUSR1, ``--kill-file``, ``K`` twice in the status panel on a terminal:
cancel all, stop, exit 0 with the summary),
``--log FILE`` (rotated), the ``[alerts]`` hook, and the opt-in tuning ``--cpu``, ``--rt-priority``,
``--gc``, ``--busy-poll`` (the options shared with ``avmm live``: ``cli/unattended.py``). There is no
control socket unless ``--ctl`` names one: two sessions never meet at a default path.

Signals: the first SIGINT / SIGTERM stops the session cleanly (every order cancelled, the journal
flushed, the summary printed; exit 0); a second one exits at once (130 / 143) with one line. A
recording that cannot be written and a user's signal that raises stop it the same way, then exit 2
with one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import typer

from avmm.cli import unattended
from avmm.errors import UserError

KEY_CONFIRM_S = 2.0  # the status view's kill switch: K, then K again within this long


def paper_command(
    venue: str = typer.Option(..., "--venue", metavar="<binance-spot|binance-um>", help="the market"),
    symbol: str = typer.Option(..., "--symbol", help="symbol, e.g. BTCUSDT"),
    config: Path = typer.Option(None, "--config", "-c", help="config TOML ([model] ... [backtest] [venue])"),
    url: str = typer.Option(
        None, "--url", help="one origin for REST, streams and the WebSocket API (the emulator: http://127.0.0.1:PORT)"
    ),
    duration: float = typer.Option(None, "--duration", help="stop after this many wall seconds"),
    journal: Path = typer.Option(None, "--journal", help="SQLite journal of every action, response and fill"),
    record: Path = typer.Option(
        None, "--record", metavar="DIR", help="also record the feed into DIR, as 'avmm record' does (hourly gzip files)"
    ),
    status_json: bool = typer.Option(False, "--status-json", help="status as JSON lines on stdout, every second"),
    metrics_port: int = typer.Option(None, "--metrics-port", help="Prometheus metrics on 127.0.0.1:PORT"),
    set_: list[str] = typer.Option(None, "--set", help="override a config value, e.g. backtest.maker_fee=0"),
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
    """Paper trading: the live feed drives the strategy core; its orders are filled by the
    backtester's exchange model (latency, queue position, fees) against the live book, in real time."""
    from avmm.cli import signals
    from avmm.config import load_config
    from avmm.live.config import with_origin
    from avmm.live.control import install_early
    from avmm.live.run import check_symbol, check_venue, new_loop, record_folder

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
    if journal is not None:
        from avmm.outputs import check_output

        check_output(journal, "--journal", [config] if config is not None else [])
    if record is not None:
        record_folder(record)
    metrics = _metrics(metrics_port) if metrics_port is not None else None
    loop = new_loop("avmm paper")
    files: list[Path] = []
    try:
        summary, signum = loop.run_until_complete(
            _paper(
                venue, symbol, cfg, vcfg, duration, journal, record, files, status_json, metrics, signals.stopped, ops
            )
        )
    finally:
        loop.close()
    if signum:
        print(f"avmm paper: stopped by {signal.Signals(signum).name}; orders cancelled", file=sys.stderr)
    elif ops.killed_by:
        fl = "" if not ops.flattened else f"; flattened to position {summary.get('position', float('nan')):g}"
        print(f"avmm paper: killed by {ops.killed_by}; orders cancelled{fl}", file=sys.stderr)
    title = f"paper: {venue} {symbol}" + (f"  journal {journal}" if journal else "")
    _print_summary(summary, title, to_stderr=status_json)
    if record is not None:
        out = sys.stderr if status_json else sys.stdout
        print(f"avmm paper: recorded {len(files)} file(s) in {record}", file=out)
        for f in files:
            print(f"  {f}", file=out)


async def _paper(
    venue: str,
    symbol: str,
    cfg: Any,
    vcfg: Any,
    duration: float | None,
    journal_path: Path | None,
    record: Path | None,
    files: list[Path],
    status_json: bool,
    metrics: Any,
    on_signal: Any,
    ops: unattended.Ops,
) -> tuple[dict[str, Any], int]:
    """The session; the files recorded are appended to ``files`` (an error too keeps them)."""
    from avmm.backtest.runner import _strategy_only, adapt_config
    from avmm.config import parse_override
    from avmm.live.control import Supervisor
    from avmm.live.journal import Journal
    from avmm.live.logs import open_log
    from avmm.live.paper import PaperSession, instrument
    from avmm.live.record import Recorder
    from avmm.live.run import StopOnSignal

    info = await instrument(venue, symbol, vcfg)
    strat = _strategy_only(adapt_config(cfg, info))
    bt = cfg.backtest
    journal = rec = logf = None
    live = _Status(status_json, metrics)
    day_pnl = _day_pnl(journal_path)
    try:
        if ops.log is not None:
            logf = open_log(ops.log, ops.log_max_bytes, ops.log_backups)
        if journal_path is not None:
            meta = {
                "venue": venue,
                "symbol": symbol,
                "instrument": info,
                "config": {**strat.model_dump(mode="json"), "backtest": bt.model_dump(mode="json")},
            }
            journal = Journal(journal_path, meta)
        if record is not None:
            rec = Recorder(record, f"{symbol}-{venue}")
        session = PaperSession(
            venue, symbol, strat, bt, vcfg, journal=journal, recorder=rec, on_status=live, day_pnl=day_pnl
        )
        stopper = StopOnSignal(asyncio.get_running_loop(), session.stop, on_signal)
        sup = Supervisor(
            session,
            strat,
            parse_set=parse_override,
            alerts=cfg.alerts,
            log=logf.logger if logf is not None else None,
            **ops.supervisor_kwargs(),
            where={"venue": venue, "symbol": symbol, "runtime": "paper"},
            warn=lambda line: print(f"avmm paper: warning: {line}", file=sys.stderr, flush=True),
        )
        keys = _Keys(sys.stdin, sup.kill)
        with stopper:
            live.start()
            try:
                async with sup:
                    if live.live is not None:  # the panel on a terminal: K twice is the kill switch
                        live.keys = keys.start(asyncio.get_running_loop())
                    summary = await session.run(duration)
            finally:
                keys.stop()
                live.stop()
                ops.killed_by, ops.flattened = sup.killed_by, sup.ctl.flattened
    finally:  # the journal flushed and the recorder closed, whatever stopped the session
        if logf is not None:
            logf.close()
        if journal is not None:
            journal.close()
        if rec is not None:
            files.extend(rec.files)
            with contextlib.suppress(UserError):  # (the feed closed it: a failure was raised there)
                rec.close()
    return summary, stopper.signum


class _Keys:
    """The status view's kill switch: on a terminal, ``K`` twice within ``KEY_CONFIRM_S`` (one
    ``K`` arms it, the panel says so). The terminal is in cbreak mode meanwhile (keys read one at a
    time, not echoed; Ctrl-C still a signal), restored at the end."""

    def __init__(self, stream: Any, kill: Any, clock: Any = time.monotonic) -> None:
        self.stream = stream
        self.kill = kill
        self.clock = clock
        self.armed = 0.0  # when K was pressed (0: not armed)
        self.fd: int | None = None
        self.saved: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> _Keys | None:
        try:
            fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):
            return None
        if not os.isatty(fd):
            return None
        import termios
        import tty

        self.saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self.fd, self.loop = fd, loop
        loop.add_reader(fd, self._read)
        return self

    def _read(self) -> None:
        assert self.fd is not None
        try:
            data = os.read(self.fd, 64)
        except OSError:
            data = b""
        if not data and self.loop is not None:  # closed
            self.loop.remove_reader(self.fd)
        self.keys(data)

    def keys(self, data: bytes) -> None:
        for ch in data:
            if ch != ord("K"):
                continue
            now = self.clock()
            if self.armed and now - self.armed <= KEY_CONFIRM_S:
                self.armed = 0.0
                self.kill("key K")
            else:
                self.armed = now

    def hint(self) -> str:
        if self.armed and self.clock() - self.armed <= KEY_CONFIRM_S:
            return "K again to kill (cancel all, stop)"
        return "K twice: kill (cancel all, stop)"

    def stop(self) -> None:
        if self.fd is None:
            return
        import termios

        if self.loop is not None and not self.loop.is_closed():
            self.loop.remove_reader(self.fd)
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
        self.fd = None


def _day_pnl(path: Path | None) -> tuple[int, float] | None:
    """The UTC day's PnL so far from the journal the session replaces (its last session's), for
    ``risk.max_loss_day``; noted on stderr when there is one."""
    if path is None or not path.exists():
        return None
    from avmm.live.journal import journal_day_pnl

    day = journal_day_pnl(path)
    if day is not None:
        date = time.strftime("%Y-%m-%d", time.gmtime(day[0] * 86400))
        print(
            f"avmm: note: --journal {path}: the PnL of {date} (UTC) so far {day[1]:.6g}, from its last session",
            file=sys.stderr,
        )
    return day


class _Status:
    """The session's status: a rich Live panel on a terminal, JSON lines with ``--status-json``,
    Prometheus gauges with ``--metrics-port``."""

    def __init__(self, as_json: bool, metrics: Any, console: Any = None) -> None:
        self.as_json = as_json
        self.metrics = metrics
        self.console = console  # rich's Console (default: stdout's)
        self.live: Any = None
        self.keys: _Keys | None = None

    def start(self) -> None:
        if self.as_json:
            return
        from rich.console import Console
        from rich.live import Live

        console = self.console if self.console is not None else Console()
        if not console.is_terminal:
            return
        self.live = Live(_panel({}), console=console, refresh_per_second=4, transient=True)
        self.live.start()

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def __call__(self, st: dict[str, Any]) -> None:
        if self.metrics is not None:
            self.metrics(st)
        if self.as_json:
            print(json.dumps(st), flush=True)
        elif self.live is not None:
            self.live.update(_panel(st, self.keys.hint() if self.keys is not None else None))


def _panel(st: dict[str, Any], keys: str | None = None) -> Any:
    from rich.table import Table

    t = Table(title=f"avmm paper {st.get('symbol', '')}", show_header=False, title_justify="left")
    t.add_column("what", style="bold")
    t.add_column("value", justify="right")
    if not st:
        t.add_row("status", "connecting")
        return t
    ok = "ok" if st["healthy"] else f"NOT QUOTING: {st['reason']}"
    if st.get("paused"):
        ok = f"PAUSED (avmm ctl ... resume): {st['reason']}"

    def f(x: Any, d: int = 2) -> str:
        return "-" if x is None else f"{x:,.{d}f}"

    t.add_row("feed", ok)
    t.add_row("book", f"{f(st['bid'])} x {f(st['bid_qty'], 4)}  |  {f(st['ask'])} x {f(st['ask_qty'], 4)}")
    t.add_row("our bids", " ".join(f"{p:,.2f}x{q:g}" for p, q in st["our_bids"]) or "-")
    t.add_row("our asks", " ".join(f"{p:,.2f}x{q:g}" for p, q in st["our_asks"]) or "-")
    t.add_row("position", f"{st['position']:g}")
    t.add_row("PnL (net) / fees", f"{f(st['pnl'], 4)} / {f(st['fees'], 4)}")
    t.add_row("fills / orders / cancels", f"{st['fills']} / {st['orders']} / {st['cancels']}")
    t.add_row("markout 1s / 10s, bp", f"{f(st['markout_1s_bps'])} / {f(st['markout_10s_bps'])}")
    t.add_row("feed lag (venue ms)", f(st["feed_lag_ms"], 1))
    t.add_row("frames / reconnects / gaps", f"{st['frames']:,} / {st['reconnects']} / {st['gaps']}")
    t.add_row("halts", str(st["halts"]))
    if st.get("risk_reason") or st.get("risk_halts"):
        t.add_row("risk", f"{st['risk_reason'] or 'ok'} (halts {st['risk_halts']})")
    lat = st.get("latency_us") or {}
    t.add_row(
        "latency p50 / p99, µs",
        "  ".join(f"{k} {f(v[0], 1)} / {f(v[1], 1)}" if v else f"{k} -" for k, v in lat.items()) or "-",
    )
    t2o = f"{f(st.get('tick_to_order_us_p50'), 1)} / {f(st.get('tick_to_order_us_p99'), 1)}"
    t.add_row("tick-to-order p50 / p99, µs", t2o)
    if keys is not None:
        t.add_row("kill switch", keys)
    return t


METRIC_KEYS = (
    "position", "pnl", "fees", "fills", "orders", "cancels", "markout_1s_bps", "markout_10s_bps",
    "feed_lag_ms", "frames", "reconnects", "gaps", "resyncs", "stale_periods", "halts", "bid", "ask",
    "journal_rows", "recorded_lines", "tick_to_order_us_p50", "tick_to_order_us_p99",
    "lag_periods", "risk_halted", "risk_reduce_only", "risk_halts", "risk_position_cuts", "risk_notional_cuts",
    "risk_rate_waits", "risk_loss_breaches", "risk_loss_day_breaches", "risk_flatten_orders",
)  # fmt: skip
"""The status figures exported as Prometheus gauges (``avmm_paper_<key>``)."""


def _metrics(port: int) -> Any:
    """Prometheus gauges of the status on 127.0.0.1:``port``; returns the status sink."""
    try:
        import prometheus_client as pc
    except ImportError:
        raise UserError("--metrics-port needs prometheus-client: pip install 'avmm[live]'") from None
    reg = pc.CollectorRegistry()
    gauges = {k: pc.Gauge(f"avmm_paper_{k}", k.replace("_", " "), registry=reg) for k in METRIC_KEYS}
    healthy = pc.Gauge("avmm_paper_healthy", "1 when the feed is healthy", registry=reg)
    quoting = pc.Gauge("avmm_paper_quoting", "1 when quoting (healthy, not paused)", registry=reg)
    paused = pc.Gauge("avmm_paper_paused", "1 when paused (avmm ctl pause)", registry=reg)
    failed = pc.Gauge("avmm_paper_alerts_failed", "alert deliveries failed", registry=reg)
    lat = pc.Gauge("avmm_paper_latency_us", "stage latency, µs (sampled)", ["stage", "quantile"], registry=reg)
    try:
        pc.start_http_server(port, addr="127.0.0.1", registry=reg)
    except OSError as e:
        raise UserError(f"--metrics-port {port}: cannot listen ({e.strerror or e})") from None

    def update(st: dict[str, Any]) -> None:
        for k, g in gauges.items():
            v = st.get(k)
            if v is not None:
                g.set(float(v))
        healthy.set(1.0 if st.get("healthy") else 0.0)
        quoting.set(1.0 if st.get("quoting") else 0.0)
        paused.set(1.0 if st.get("paused") else 0.0)
        al = st.get("alerts") or {}
        failed.set(float(al.get("command_failed", 0) + al.get("webhook_failed", 0)))
        for stage, v in (st.get("latency_us") or {}).items():
            if v:
                lat.labels(stage, "0.5").set(v[0])
                lat.labels(stage, "0.99").set(v[1])

    return update


def _print_summary(summary: dict[str, Any], title: str, to_stderr: bool) -> None:
    """The backtest's summary table (on stderr when stdout carries the JSON status lines)."""
    from rich.console import Console
    from rich.table import Table

    from avmm.cli.backtest import summary_rows

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("figure", style="bold")
    table.add_column("value", justify="right")
    for k, v in summary_rows(summary):
        table.add_row(k, v)
    Console(width=max(100, Console().width), file=sys.stderr if to_stderr else None).print(table)


# --- avmm report -------------------------------------------------------------------------------------
def report_command(
    journal: Path = typer.Argument(..., help="a paper session's journal (avmm paper --journal)"),
    json_out: Path = typer.Option(None, "--json", help="write the summary figures and the config used as JSON"),
    report: Path = typer.Option(None, "--report", help="write charts: .html (plotly) or .png (matplotlib)"),
    fills_out: Path = typer.Option(None, "--fills", help="write every fill (with its markouts), .parquet or .csv"),
    equity_out: Path = typer.Option(None, "--equity", help="write the equity / inventory samples, .parquet or .csv"),
) -> None:
    """The summary, JSON and charts of a paper session from its journal, as a backtest gives them."""
    import contextlib

    from avmm.cli.backtest import _Outputs, _print_table

    outs = _Outputs(json_out, report, fills_out, equity_out)
    outs.check([journal])
    res = journal_result(journal)
    with contextlib.ExitStack() as stack:
        write = outs.open_fills(stack, [journal])
        if write is not None and res.fills.size:
            write(res.fills)
        outs.close_fills()
    _print_table(res, [journal])
    outs.write(res, [journal])


def journal_result(path: Path) -> Any:
    """A journal as a ``BacktestResult``: the summary recomputed from its records by the
    backtest's own ``summarize``."""
    import numpy as np

    from avmm.backtest.config import BacktestConfig
    from avmm.backtest.metrics import FillStats
    from avmm.backtest.runner import BacktestResult, bt_params
    from avmm.backtest.state import new_bt_state
    from avmm.backtest.venue import paper_summary
    from avmm.core.config import StrategyConfig, to_params
    from avmm.live.journal import load_journal

    j = load_journal(path)
    conf = dict(j.config)
    bt = BacktestConfig.model_validate(conf.pop("backtest", {}))
    cfg = StrategyConfig.model_validate(conf)
    from avmm.backtest.market import setup_accounting

    meta = {"market": "spot" if j.meta.get("venue") == "binance-spot" else "perpetual", "symbol": j.meta.get("symbol")}
    bp = bt_params(cfg, bt, to_params(cfg))
    acc = setup_accounting(cfg, bt, meta, bp, new_bt_state())
    fs = FillStats()
    fs.add(j.fills)
    summary = paper_summary(
        cfg, bt, acc, j.bt_state[0], j.samples, fs, j.core_state, float(j.summary.get("wall_s") or 0.0)
    )
    for k, v in j.summary.items():  # the session's own figures (feed counters, halts)
        summary.setdefault(k, v)
    data = {"journal": str(path), "venue": j.meta.get("venue"), "symbol": j.meta.get("symbol"), **j.counts}
    return BacktestResult(summary, j.samples, np.asarray(j.fills), cfg, bt, data)
