"""``avmm backtest [DATA...] [--config cfg.toml] [--from T] [--to T] [--json out.json] [--report out.html|out.png]
[--fills fills.parquet|.csv] [--equity equity.parquet|.csv] [--set k=v]``"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from avmm.errors import UserError

if TYPE_CHECKING:
    from avmm.backtest.runner import BacktestResult

REPORT_SUFFIXES = (".html", ".htm", ".png")


class _Progress:
    """A rich progress bar on stderr, shown only on a terminal and only once a run has taken more
    than ``after_s`` seconds."""

    def __init__(self, enabled: bool, after_s: float = 2.0):
        self.enabled = enabled and sys.stderr.isatty()
        self.after_s = after_s
        self.t0 = time.perf_counter()
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            if time.perf_counter() - self.t0 < self.after_s:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self.bar = Progress(
                "backtest",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("backtest", total=total)
        self.bar.update(self.task, completed=done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _fmt(v: Any, kind: str = "num") -> str:
    if v is None:
        return "n/a"
    if kind == "int":
        return f"{int(v):,}"
    if kind == "pct":
        return f"{100 * v:.3f} %"
    if kind == "bps":
        return f"{v:.3f} bp"
    if isinstance(v, float):
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            return f"{v:.4g}"
        return f"{v:,.4f}"
    return str(v)


def _gaps(s: dict) -> str:
    n = s.get("gaps", 0)
    return f" (+ {n:,} gap{'s' if n != 1 else ''} of {s['gaps_s']:,.0f} s skipped)" if n else ""


def summary_rows(s: dict) -> list[tuple[str, str]]:
    cur = s["currency"]
    iv = s["equity_interval_s"]
    return [
        ("net PnL", f"{_fmt(s['pnl_net'])} {cur}"),
        ("gross PnL", f"{_fmt(s['pnl_gross'])} {cur}"),
        ("fees (negative = rebates)", f"{_fmt(s['fees'])} {cur}"),
        ("realized / unrealized", f"{_fmt(s['realized'])} / {_fmt(s['unrealized'])}"),
        ("return (on capital)", f"{_fmt(s['return'], 'pct')} of {_fmt(s['capital'])}"),
        (f"Sharpe (annualised, {iv:g} s samples)", _fmt(s["sharpe"])),
        (f"Sortino (annualised, {iv:g} s samples)", _fmt(s["sortino"])),
        ("max drawdown", f"{_fmt(s['max_drawdown'])} {cur}"),
        ("return / max drawdown", _fmt(s["return_over_max_dd"])),
        (
            "fills (maker / taker; our bids / asks)",
            f"{_fmt(s['fills'], 'int')} ({_fmt(s['maker_fills'], 'int')} / {_fmt(s['taker_fills'], 'int')}; "
            f"{_fmt(s['fills_bid'], 'int')} / {_fmt(s['fills_ask'], 'int')})",
        ),
        (
            "our quotes behind the touch (median) / market spread (median)",
            f"{_fmt(s['quote_distance_ticks'])} / {_fmt(s['market_spread_ticks'])} ticks; "
            f"both sides quoted {_fmt(s['quoted_both_fraction'], 'pct')} of the time",
        ),
        ("maker volume (notional)", _fmt(s["maker_volume"])),
        (
            "orders / cancels / amends",
            f"{_fmt(s['orders'], 'int')} / {_fmt(s['cancels'], 'int')} / {_fmt(s['amends'], 'int')}",
        ),
        (
            "rejects post-only / risk / balance",
            " / ".join(_fmt(s[k], "int") for k in ("rejects_post_only", "rejects_risk", "rejects_balance")),
        ),
        ("fill ratio (filled / sent qty)", _fmt(s["fill_ratio"], "pct")),
        ("avg spread captured", _fmt(s["spread_captured_bps"], "bps")),
        (
            "markout 1 s / 10 s / 60 s",
            " / ".join(_fmt(s[k], "bps") for k in ("markout_1s", "markout_10s", "markout_60s")),
        ),
        ("inventory mean / std (time-weighted)", f"{_fmt(s['inventory_mean'])} / {_fmt(s['inventory_std'])}"),
        ("max |position|", _fmt(s["max_abs_position"])),
        *market_rows(s),
        (
            "events (quotes / trades / depth)",
            f"{_fmt(s['events'], 'int')} ({' / '.join(_fmt(s[k], 'int') for k in ('quotes', 'trades', 'depth_rows'))})",
        ),
        (
            "bad rows ignored (quotes / trades / depth / exch. stamps)",
            " / ".join(_fmt(s[k], "int") for k in ("bad_quotes", "bad_trades", "bad_depth_rows", "bad_exch_ts")),
        ),
        *signal_rows(s),
        *risk_rows(s),
        ("session length", f"{s['session_s']:,.1f} s" + _gaps(s)),
        ("events/s, compiled loop (excl. compile)", f"{_fmt(s['events_per_s'], 'int')}  ({s['wall_s']:.3f} s)"),
        ("events/s, end to end (incl. reading)", f"{_fmt(s['events_per_s_e2e'], 'int')}  ({s['wall_s_e2e']:.3f} s)"),
    ]


def signal_rows(s: dict) -> list[tuple[str, str]]:
    """The signals' calls and the results ignored (none without a signal)."""
    if not s.get("signal_calls"):
        return []
    text = f"{_fmt(s['signal_calls'], 'int')} / {_fmt(s['signal_bad'], 'int')}"
    if s.get("signal_depth_dropped"):
        text += f" (depth rows not kept: {_fmt(s['signal_depth_dropped'], 'int')})"
    return [("signal calls / results ignored (not finite)", text)]


def risk_rows(s: dict) -> list[tuple[str, str]]:
    """What the core's risk limits did (none when no limit bound)."""
    keys = ("risk_halts", "risk_notional_cuts", "risk_rate_waits", "risk_loss_breaches", "risk_loss_day_breaches")
    if not (s.get("risk_reason") or any(s.get(k) for k in keys)):
        return []
    counts = (
        f"loss breaches {_fmt(s['risk_loss_breaches'], 'int')} / day {_fmt(s['risk_loss_day_breaches'], 'int')}; "
        f"halts {_fmt(s['risk_halts'], 'int')}; flatten orders {_fmt(s['risk_flatten_orders'], 'int')}; "
        f"notional cuts {_fmt(s['risk_notional_cuts'], 'int')}; orders-budget waits {_fmt(s['risk_rate_waits'], 'int')}"
    )
    return [("risk limits: state at the end", s["risk_reason"] or "quoting"), ("risk limits: what bound", counts)]


def market_rows(s: dict) -> list[tuple[str, str]]:
    """The market's accounting: spot balances, or perpetual funding and margin."""
    cur = s["currency"]
    if s["market"] == "spot":
        start = f"{_fmt(s['initial_base'])} / {_fmt(s['initial_quote'])}"
        end = f"{_fmt(s['final_base'])} / {_fmt(s['final_quote'])}"
        return [("market", "spot"), ("balances base / quote: start -> end", f"{start} -> {end}")]
    dist = s["min_liquidation_distance_pct"]
    return [
        ("market", "perpetual"),
        ("funding (payments)", f"{_fmt(s['funding'])} {cur} ({_fmt(s['funding_payments'], 'int')})"),
        (f"max initial margin (leverage {s['leverage']:g})", f"{_fmt(s['max_initial_margin'])} {cur}"),
        ("min distance to liquidation", "none" if dist is None else f"{dist:.2f} % of the mark"),
    ]


def backtest_command(
    data: list[Path] = typer.Argument(
        None,
        help="event stores (Parquet, 'avmm data convert'), run one after the other in time order; default: the "
        "built-in synthetic session",
        show_default=False,
    ),
    config: Path = typer.Option(None, "--config", "-c", help="config TOML"),
    json_out: Path = typer.Option(None, "--json", help="write the summary figures and the config used as JSON"),
    report: Path = typer.Option(
        None, "--report", help="write charts: .html (plotly, interactive) or .png (matplotlib)"
    ),
    fills_out: Path = typer.Option(
        None,
        "--fills",
        help="write every fill (with its markouts) to a .parquet or .csv file, streamed as the run goes",
    ),
    equity_out: Path = typer.Option(
        None, "--equity", help="write the equity / inventory samples to a .parquet or .csv file"
    ),
    from_: str = typer.Option(
        None,
        "--from",
        help="start of the time window (included): ISO-8601, UTC unless an offset is given, or integer ns since the "
        "epoch",
        show_default=False,
    ),
    to: str = typer.Option(
        None, "--to", help="end of the time window (excluded); same forms as --from", show_default=False
    ),
    set_: list[str] = typer.Option(None, "--set", help="override a config value, e.g. backtest.entry_latency_ms=5"),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="progress bar on a terminal for runs over 2 s"
    ),
) -> None:
    """Backtest the strategy on event data: exchange simulator + the strategy core in one compiled loop."""
    from avmm.cli.params import parse_time_ns
    from avmm.config import load_config

    cfg = load_config(config, set_ or [])
    start_ns = parse_time_ns(from_, "--from") if from_ is not None else None
    end_ns = parse_time_ns(to, "--to") if to is not None else None
    if start_ns is not None and end_ns is not None and start_ns >= end_ns:
        raise UserError(f"--from {from_} is not before --to {to}: the window [from, to) is empty")
    sources = _sources(data)
    outs = _Outputs(json_out, report, fills_out, equity_out)
    outs.check([*sources, *([config] if config is not None else [])])

    from avmm.backtest.market import check_accounting
    from avmm.backtest.runner import adapt_config, plan_stores, run_backtest
    from avmm.core.config import to_params

    plan = plan_stores(sources, start_ns, end_ns)  # damaged / overlapping stores, an empty window: before compiling
    check_accounting(cfg.backtest, plan.meta())  # funding on spot, a bad funding file: the same
    to_params(adapt_config(cfg, plan.meta()))  # what only the whole config and the instrument tell (the skew target)
    for note in plan.notes:
        print(f"avmm: note: {note}", file=sys.stderr)
    _warm_up_with_notice()
    bar = _Progress(progress)
    with contextlib.ExitStack() as stack:
        on_fills = outs.open_fills(stack, sources)
        try:
            res = run_backtest(
                sources, cfg, backtest=cfg.backtest, progress=bar, start_ns=start_ns, end_ns=end_ns, on_fills=on_fills
            )
        finally:
            bar.close()
        outs.close_fills()
    _print_table(res, plan.paths)
    if res.summary.get("funding_note"):
        print(f"avmm: note: {res.summary['funding_note']}", file=sys.stderr)
    outs.write(res, sources)


def _sources(data: list[Path] | None) -> list[Path]:
    if not data:
        from avmm.backtest.session import default_session

        return [default_session()]
    for pth in data:
        if not pth.exists():
            raise UserError(f"{pth}: no such file")
    return list(data)


class _Outputs:
    """The files a run writes: checked before it starts, written atomically after it (the fills
    during it)."""

    def __init__(self, json_out: Path | None, report: Path | None, fills: Path | None, equity: Path | None) -> None:
        self.json, self.report, self.fills, self.equity = json_out, report, fills, equity
        self.fill_writer: Any = None

    def named(self) -> list[tuple[str, Path]]:
        pairs = (("--json", self.json), ("--report", self.report), ("--fills", self.fills), ("--equity", self.equity))
        return [(flag, p) for flag, p in pairs if p is not None]

    def check(self, inputs: list[Path]) -> None:
        from avmm.backtest.export import export_format
        from avmm.outputs import check_output

        if self.report is not None and self.report.suffix.lower() not in REPORT_SUFFIXES:
            raise UserError(f"--report {self.report}: expected a .html or .png file")
        for flag, p in (("--fills", self.fills), ("--equity", self.equity)):
            if p is not None:
                export_format(p, flag)
        seen: dict[Path, str] = {}
        for flag, p in self.named():
            check_output(p, flag, inputs)
            key = p.resolve()
            if key in seen:
                raise UserError(f"{flag} {p}: also given to {seen[key]}; write each to its own file")
            seen[key] = flag
        if self.report is not None:
            from avmm.backtest.report import require_charts

            require_charts(self.report)

    def open_fills(self, stack: contextlib.ExitStack, inputs: list[Path]) -> Any:
        """The fills writer's ``write`` (None without ``--fills``), writing a temporary file that
        becomes ``--fills`` when the stack closes after a complete run."""
        if self.fills is None:
            return None
        from avmm.backtest.export import FillWriter, export_format
        from avmm.outputs import atomic_output

        tmp = stack.enter_context(atomic_output(self.fills, "--fills", inputs))
        self.fill_writer = FillWriter(tmp, export_format(self.fills, "--fills"))
        stack.callback(self._abandon)
        return self.fill_writer.write

    def _abandon(self) -> None:
        if self.fill_writer is not None:  # the run failed: close the file (atomic_output removes it)
            with contextlib.suppress(Exception):
                self.fill_writer.w.close()
            self.fill_writer = None

    def close_fills(self) -> None:
        if self.fill_writer is not None:
            self.fill_writer.close()
            self.fill_writer = None

    def write(self, res: BacktestResult, inputs: list[Path]) -> None:
        from avmm.outputs import atomic_output, write_text

        if self.json is not None:
            write_text(self.json, json.dumps(_json_doc(res), indent=2, default=_json_default) + "\n", "--json", inputs)
        if self.equity is not None:
            from avmm.backtest.export import export_format, write_samples

            with atomic_output(self.equity, "--equity", inputs) as tmp:
                write_samples(tmp, res.samples, export_format(self.equity, "--equity"))
        if self.report is not None:
            from avmm.backtest.report import write_report

            write_report(res, self.report, inputs)
            print(f"report: {self.report}")


def _print_table(res: BacktestResult, sources: list[Path]) -> None:
    from rich.console import Console
    from rich.table import Table

    meta = res.meta
    title = f"backtest: {', '.join(str(x) for x in sources)}"
    if meta.get("symbol"):
        title += f"  [{meta['symbol']}]"
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("figure", style="bold")
    table.add_column("value", justify="right")
    for k, v in summary_rows(res.summary):
        table.add_row(k, v)
    Console(width=max(100, Console().width)).print(table)


def _warm_up_with_notice() -> None:
    """Compile the loop (or load it from the cache); say so on stderr when that takes a while (the
    first run after installing or editing avmm compiles for about a minute)."""
    from avmm.backtest.runner import warm_up

    warm_up(notice_after_s=2.0)


def _json_default(o: Any) -> Any:
    """The store's JSON conversions; any other object is written as its ``str``."""
    from avmm.data.store import json_default

    try:
        return json_default(o)
    except TypeError:
        return str(o)


def _json_doc(res: BacktestResult) -> dict[str, Any]:
    """``--json``: the result's figures, the config as run (a dict and TOML text) and the data."""
    from avmm.config import Config, dump_toml

    out = res.to_json()
    data = out.pop("data")
    out["config_toml"] = dump_toml(Config.model_validate(out["config"]))
    out["data"] = data
    return out
