"""``avmm sweep [STORE...] -c cfg.toml --grid KEY=V1,V2,... [--random N --range KEY=LO:HI]
[--optimize METRIC --trials N] [--executor local|ray] [--train-until T | --folds N] [--top N]
[--json FILE] [--report FILE.html] [--resume]``: a thin layer over ``avmm.sweep``."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, Literal

import typer

from avmm.errors import UserError

TABLE_FIGURES = (
    ("pnl_net", "net PnL"),
    ("sharpe", "Sharpe"),
    ("return_over_max_dd", "ret/maxDD"),
    ("fill_ratio", "fill ratio"),
    ("markout_1s", "mo 1s bp"),
    ("markout_10s", "mo 10s bp"),
    ("inventory_std", "inv std"),
    ("fills", "fills"),
)


class _Bar:
    """A rich progress bar on stderr (a terminal only): points, and events (points x rows) with ETA."""

    def __init__(self, enabled: bool) -> None:
        self.bar: Any = None
        self.points = self.rows = None
        self.n_points, self.n_rows = 0, 0
        self.rows_known = True
        if not (enabled and sys.stderr.isatty()):
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.bar.start()
        self.points = self.bar.add_task("points", total=0)
        self.rows = self.bar.add_task("events", total=0)

    def add(self, points: int, rows: int | None) -> None:
        self.n_points += points
        if rows is None:
            self.rows_known = False
        else:
            self.n_rows += rows
        if self.bar is not None:
            self.bar.update(self.points, total=self.n_points)
            self.bar.update(self.rows, total=self.n_rows if self.rows_known else None)

    def points_done(self, n: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.points, n)

    def rows_done(self, n: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.rows, n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _base_data(config: Path | None, sets: list[str]) -> dict[str, Any]:
    """The base config's data as ``avmm backtest -c FILE --set ...`` reads it (validated)."""
    import tomllib

    from avmm.config import load_config, parse_override

    load_config(config, sets)  # every error of the file or an override: one line, as in avmm backtest
    data: dict[str, Any] = tomllib.loads(config.read_text()) if config is not None else {}
    for text in sets:
        keys, value = parse_override(text)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return data


def _check_flags(
    grid: list[str], ranges: list[str], random_n: int | None, optimize: str | None, trials: int | None
) -> str:
    if optimize is not None:
        if random_n is not None:
            raise UserError("--random and --optimize: give one search")
        if trials is None:
            raise UserError("--optimize needs --trials N (the budget of backtests)")
        if not ranges and not grid:
            raise UserError("--optimize: give the keys to search with --range KEY=LO:HI")
        return "optimize"
    if trials is not None:
        raise UserError("--trials is the budget of --optimize; give --optimize METRIC")
    if random_n is not None:
        if not ranges:
            raise UserError("--random N draws over --range KEY=LO:HI keys; give at least one --range")
        return "random"
    if ranges:
        raise UserError("--range: give --random N (draws) or --optimize METRIC (a search) with it")
    if not grid:
        raise UserError("nothing to sweep: give --grid KEY=V1,V2,..., --random N --range ... or --optimize")
    return "grid"


def _check_choices(
    executor: str,
    ray_address: str | None,
    train_until: str | None,
    folds: int | None,
    optimize: str | None,
    metric: str | None,
) -> None:
    if executor not in ("local", "ray"):
        raise UserError(f"--executor {executor}: expected local or ray")
    if ray_address is not None and executor != "ray":
        raise UserError("--ray-address needs --executor ray")
    if train_until is not None and folds is not None:
        raise UserError("--train-until and --folds: give one way of choosing")
    if optimize is not None and metric is not None and metric != optimize:
        raise UserError(f"--metric {metric} and --optimize {optimize}: give one metric")


def _check_extras(report: Path | None, inputs: list[Path], mode: str, space: Any, executor: str) -> None:
    """The optional libraries the flags need, and the report's path: before any work."""
    from avmm.outputs import check_output

    if report is not None:
        from avmm.sweep.report import require_plotly

        require_plotly(report)
        check_output(report, "--report", inputs)
    if mode == "optimize":
        from avmm.sweep.optimize import distributions

        distributions(space)  # optuna installed, the choices it takes
    if executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            from avmm.errors import missing_extra

            raise missing_extra("--executor ray", "sweep", "ray") from None


def sweep_command(
    data: list[Path] = typer.Argument(
        None,
        help="event stores (as avmm backtest); default: the built-in synthetic session",
        show_default=False,
    ),
    config: Path = typer.Option(None, "--config", "-c", help="the base config TOML (every point starts from it)"),
    set_: list[str] = typer.Option(None, "--set", help="override a base config value, as in avmm backtest"),
    grid: list[str] = typer.Option(
        None, "--grid", help="KEY=V1,V2,...: values of a dotted config key; repeat for a cartesian product"
    ),
    random_n: int = typer.Option(None, "--random", min=1, help="N random points over the --range keys"),
    range_: list[str] = typer.Option(
        None, "--range", help="KEY=LO:HI (or LO:HI:log) for --random and --optimize; ends included"
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="seed of --random and of --optimize's sampler"),
    optimize: str = typer.Option(
        None, "--optimize", help="search with Optuna (TPE) for the best METRIC (a numeric key of avmm backtest --json)"
    ),
    metric: str = typer.Option(
        None, "--metric", help="the figure to sort and select by (default pnl_net; --optimize's METRIC)"
    ),
    minimize: bool = typer.Option(False, "--minimize", help="smaller METRIC is better"),
    trials: int = typer.Option(None, "--trials", min=1, help="--optimize: the number of backtests"),
    executor: Literal["local", "ray"] = typer.Option(
        "local", "--executor", help="local: a process pool on this machine; ray: Ray tasks"
    ),
    ray_address: str = typer.Option(
        None, "--ray-address", help="--executor ray: an existing cluster (host:port); default: a local Ray"
    ),
    workers: int = typer.Option(
        None, "--workers", min=1, help="processes (local) or CPUs (local Ray); default: all cores"
    ),
    per_pass: int = typer.Option(
        None,
        "--per-pass",
        min=1,
        help="points run together in one pass over the data (default: spread over the workers, at most 16)",
    ),
    from_: str = typer.Option(None, "--from", help="start of the window (ISO-8601 or ns)", show_default=False),
    to: str = typer.Option(None, "--to", help="end of the window (excluded)", show_default=False),
    train_until: str = typer.Option(
        None, "--train-until", help="choose the --top points on the data before T, report them on the data after T"
    ),
    folds: int = typer.Option(
        None, "--folds", min=1, help="walk-forward: N+1 equal parts; choose on each part, report on the next"
    ),
    top: int = typer.Option(None, "--top", min=1, help="points shown (all) / carried to the test data (5)"),
    json_out: Path = typer.Option(
        None, "--json", help="every point's config and figures; finished points go to FILE.partial as they finish"
    ),
    report: Path = typer.Option(
        None, "--report", help="an HTML report: a heatmap of the metric, PnL against inventory risk"
    ),
    resume: bool = typer.Option(False, "--resume", help="skip the points in --json's FILE.partial (the same sweep)"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bar on a terminal"),
) -> None:
    """Backtest a base config over a grid, random draws or an Optuna search of its keys."""
    import contextlib

    from avmm.sweep.server import default_workers, local_server

    # a local pool: its workers' server starts now, loading avmm and the compiled loop while this
    # process reads the config and plans the stores (stopped on the way out, whatever the outcome)
    pool = executor == "local" and (workers or default_workers()) > 1
    with local_server(["avmm.config"]) if pool else contextlib.nullcontext():
        from avmm.cli.backtest import _sources, _warm_up_with_notice
        from avmm.cli.params import parse_time_ns
        from avmm.config import Config, validate
        from avmm.outputs import Terminated, check_output, mark_kept, write_text
        from avmm.sweep.partial import Partial
        from avmm.sweep.run import Sweep, SweepSpec
        from avmm.sweep.space import parse_space

        grid, range_, set_ = grid or [], range_ or [], set_ or []
        mode = _check_flags(grid, range_, random_n, optimize, trials)
        _check_choices(executor, ray_address, train_until, folds, optimize, metric)
        the_metric = optimize or metric or "pnl_net"
        base = _base_data(config, set_)
        space = parse_space(Config, validate, base, grid, range_)
        start_ns = parse_time_ns(from_, "--from") if from_ is not None else None
        end_ns = parse_time_ns(to, "--to") if to is not None else None
        if start_ns is not None and end_ns is not None and start_ns >= end_ns:
            raise UserError(f"--from {from_} is not before --to {to}: the window [from, to) is empty")
        t_ns = parse_time_ns(train_until, "--train-until") if train_until is not None else None
        sources = _sources(data)
        inputs = [*sources, *([config] if config is not None else [])]
        if json_out is not None:
            check_output(json_out, "--json", inputs)
            check_output(Path(str(json_out) + ".partial"), "--json", inputs)
        _check_extras(report, inputs, mode, space, executor)

        from avmm.backtest.runner import plan_stores

        plan = plan_stores(sources, start_ns, end_ns)
        for note in plan.notes:
            print(f"avmm: note: {note}", file=sys.stderr)
        if executor == "ray":  # compiled once here, not in every Ray worker at once (the local pool's server and
            _warm_up_with_notice()  # the inline run load it themselves, with the same notice)
        from avmm.sweep import metric_keys

        known = metric_keys()
        if the_metric not in known:
            flag = "--optimize" if optimize else "--metric"
            raise UserError(
                f"{flag} {the_metric}: not a numeric figure of avmm backtest --json (e.g. {', '.join(known[:8])}, ...)"
            )
        spec = SweepSpec(
            paths=[str(p) for p in plan.paths],
            base=base,
            space=space,
            validate=validate,
            mode=mode,
            n_random=random_n or 0,
            seed=seed,
            metric=the_metric,
            minimize=minimize,
            trials=trials or 0,
            start_ns=start_ns,
            end_ns=end_ns,
            train_until_ns=t_ns,
            folds=folds,
            top=top or 5,
        )
        partial = Partial(Path(str(json_out) + ".partial") if json_out is not None else None, spec.fingerprint())
        partial.start(resume)
        bar = _Bar(progress)
        sweep = Sweep(
            spec,
            executor=executor,
            workers=workers,
            ray_address=ray_address,
            per_pass=per_pass,
            partial=partial,
            progress=bar,
        )
        try:
            doc = sweep.run()
        except (Terminated, KeyboardInterrupt):
            bar.close()
            partial.close()
            if partial.path is not None and partial.path.exists():
                mark_kept(partial.path)
            raise
        finally:
            bar.close()
            partial.close()
        _print(doc, top)
        if json_out is not None:
            write_text(json_out, json.dumps(doc, indent=2) + "\n", "--json", inputs)
        if report is not None:
            from avmm.sweep.report import write_report

            write_report(doc, report, inputs)
            print(f"report: {report}")
        partial.remove()


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            return f"{v:.4g}"
        return f"{v:,.4f}"
    return str(v)


def _keys(doc: dict[str, Any]) -> list[str]:
    return list(doc["space"]["grid"]) + list(doc["space"]["ranges"])


def _print(doc: dict[str, Any], top: int | None) -> None:
    from rich.console import Console
    from rich.table import Table

    metric = doc["metric"]
    keys = _keys(doc)
    figs = [(k, label) for k, label in TABLE_FIGURES if k != metric]
    console = Console(width=max(160, Console().width))
    order = "smallest" if doc["minimize"] else "largest"
    if "points" in doc:
        pts = doc["points"][:top] if top else doc["points"]
        table = Table(title=f"sweep: {len(doc['points'])} points, by {metric} ({order} first)", title_justify="left")
        for c in ["#", *keys, metric, *(label for _, label in figs)]:
            table.add_column(c, justify="right", no_wrap=True)
        for i, r in enumerate(pts, 1):
            row = [str(i), *(_num(r["keys"].get(k)) for k in keys), _num(r["figures"].get(metric))]
            table.add_row(*row, *(_num(r["figures"].get(k)) for k, _ in figs))
        console.print(table)
        return
    title = f"sweep: the top points by {metric} ({order} first) on the training data, then on the test data"
    table = Table(title=title, title_justify="left")
    extra = [
        (k, label) for k, label in (("pnl_net", "net PnL"), ("sharpe", "Sharpe"), ("fills", "fills")) if k != metric
    ]
    cols = ["fold", "#", *keys, f"train {metric}", f"test {metric}", *(f"test {label}" for _, label in extra)]
    for c in cols:
        table.add_column(c, justify="right", no_wrap=True)
    for fold in doc["selection"]:
        for i, (tr, te) in enumerate(zip(fold["train"], fold["test"], strict=False), 1):
            f = te["figures"]
            table.add_row(
                str(fold["fold"]) if "folds" in doc else "-",
                str(i),
                *(_num(tr["keys"].get(k)) for k in keys),
                _num(tr["figures"].get(metric)),
                _num(f.get(metric)),
                *(_num(f.get(k)) for k, _ in extra),
            )
    console.print(table)
