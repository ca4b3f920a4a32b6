"""``avmm backtest [DATA...] [--config cfg.toml] [--json out.json] [--report out.html|out.png] [--set k=v]``"""

from __future__ import annotations

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
            "fills (maker / taker)",
            f"{_fmt(s['fills'], 'int')} ({_fmt(s['maker_fills'], 'int')} / {_fmt(s['taker_fills'], 'int')})",
        ),
        ("maker volume (notional)", _fmt(s["maker_volume"])),
        (
            "orders / cancels / amends",
            f"{_fmt(s['orders'], 'int')} / {_fmt(s['cancels'], 'int')} / {_fmt(s['amends'], 'int')}",
        ),
        ("rejects post-only / risk", f"{_fmt(s['rejects_post_only'], 'int')} / {_fmt(s['rejects_risk'], 'int')}"),
        ("fill ratio (filled / sent qty)", _fmt(s["fill_ratio"], "pct")),
        ("avg spread captured", _fmt(s["spread_captured_bps"], "bps")),
        (
            "markout 1 s / 10 s / 60 s",
            " / ".join(_fmt(s[k], "bps") for k in ("markout_1s", "markout_10s", "markout_60s")),
        ),
        ("inventory mean / std (time-weighted)", f"{_fmt(s['inventory_mean'])} / {_fmt(s['inventory_std'])}"),
        ("max |position|", _fmt(s["max_abs_position"])),
        (
            "events (quotes / trades / depth)",
            f"{_fmt(s['events'], 'int')} ({' / '.join(_fmt(s[k], 'int') for k in ('quotes', 'trades', 'depth_rows'))})",
        ),
        (
            "bad rows ignored (quotes / trades / depth / exch. stamps)",
            " / ".join(_fmt(s[k], "int") for k in ("bad_quotes", "bad_trades", "bad_depth_rows", "bad_exch_ts")),
        ),
        ("session length", f"{s['session_s']:,.1f} s"),
        ("events/s (wall, excl. compile)", f"{_fmt(s['events_per_s'], 'int')}  ({s['wall_s']:.3f} s)"),
    ]


def backtest_command(
    data: list[Path] = typer.Argument(
        None,
        help="event stores (Parquet, 'avmm data convert'), run back to back; default: the built-in synthetic session",
        show_default=False,
    ),
    config: Path = typer.Option(None, "--config", "-c", help="config TOML"),
    json_out: Path = typer.Option(None, "--json", help="write the summary figures and the config used as JSON"),
    report: Path = typer.Option(
        None, "--report", help="write charts: .html (plotly, interactive) or .png (matplotlib)"
    ),
    set_: list[str] = typer.Option(None, "--set", help="override a config value, e.g. backtest.entry_latency_ms=5"),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="progress bar on a terminal for runs over 2 s"
    ),
) -> None:
    """Backtest the strategy on event data: exchange simulator + the strategy core in one compiled loop."""
    from avmm.config import load_config

    cfg = load_config(config, set_ or [])
    if report is not None and report.suffix.lower() not in REPORT_SUFFIXES:
        raise UserError(f"--report {report}: expected a .html or .png file")
    if report is not None:
        from avmm.backtest.report import require_charts

        require_charts(report)
    for out in (json_out, report):
        if out is not None and not out.parent.exists():
            raise UserError(f"{out}: directory {out.parent} does not exist")
    if data:
        for pth in data:
            if not pth.exists():
                raise UserError(f"{pth}: no such file")
        sources = list(data)
    else:
        from avmm.backtest.session import default_session

        sources = [default_session()]

    from avmm.backtest.runner import run_backtest

    _warm_up_with_notice()
    bar = _Progress(progress)
    try:
        res = run_backtest(sources, cfg, cfg.backtest, progress=bar)
    finally:
        bar.close()
    s = res.summary

    from rich.console import Console
    from rich.table import Table

    meta = res.meta
    title = f"backtest: {', '.join(str(x) for x in sources)}"
    if meta.get("symbol"):
        title += f"  [{meta['symbol']}]"
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("figure", style="bold")
    table.add_column("value", justify="right")
    for k, v in summary_rows(s):
        table.add_row(k, v)
    Console(width=max(100, Console().width)).print(table)

    if json_out is not None:
        json_out.write_text(json.dumps(_json_doc(res), indent=2, default=_json_default) + "\n")
    if report is not None:
        from avmm.backtest.report import write_report

        write_report(res, report)
        print(f"report: {report}")


def _warm_up_with_notice() -> None:
    """Compile the loop (or load it from the cache); say so on stderr when that takes a while (the
    first run after installing or editing avmm compiles for about a minute)."""
    import os
    import threading

    from avmm.backtest.runner import warm_up

    def notice() -> None:
        where = os.environ.get("NUMBA_CACHE_DIR", "the numba cache")
        print(f"avmm: compiling the backtest loop (first run only; cached in {where})", file=sys.stderr, flush=True)

    t = threading.Timer(2.0, notice)
    t.daemon = True
    t.start()
    try:
        warm_up()
    finally:
        t.cancel()


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
