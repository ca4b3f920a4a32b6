"""``avmm calibrate STORE... [-o cfg.toml] [--json FILE] [--plot FILE] [--from T --to T]
[--skew-at-limit X | --spread-ticks N] [--bootstrap N] [--seed S]``: a thin layer over
:mod:`avmm.calibrate`."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from avmm.errors import UserError

if TYPE_CHECKING:
    from avmm.calibrate.config_file import Calibrated
    from avmm.calibrate.run import Calibration


def calibrate_command(
    stores: list[Path] = typer.Argument(..., help="event stores (Parquet, 'avmm data convert'), read in time order"),
    out: Path = typer.Option(
        None,
        "-o",
        "--out",
        help="write a complete, commented config (TOML) with the estimates and the gamma derivation",
    ),
    json_out: Path = typer.Option(None, "--json", help="write every estimate as JSON (sigma, A, k with _ci beside)"),
    plot: Path = typer.Option(
        None, "--plot", help="chart the intensity fit and sigma over time: .png (matplotlib) or .html (plotly)"
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
    skew_at_limit: float = typer.Option(
        None,
        "--skew-at-limit",
        help="gamma such that at |position| = risk.max_position the reservation price moves this many half "
        "spreads [default: 1.0]",
        show_default=False,
    ),
    spread_ticks: float = typer.Option(
        None, "--spread-ticks", help="gamma such that the model's total spread is this many ticks", show_default=False
    ),
    resamples: int = typer.Option(
        200, "--bootstrap", min=0, help="block-bootstrap resamples for the confidence intervals (0: none)"
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="seed of the bootstrap's draws"),
) -> None:
    """Estimate sigma, the trade intensity A exp(-k delta) and the market's figures from event data; write a
    calibrated config."""
    from avmm.calibrate.config_file import Target, build
    from avmm.calibrate.run import calibrate
    from avmm.cli.params import parse_time_ns

    start_ns = parse_time_ns(from_, "--from") if from_ is not None else None
    end_ns = parse_time_ns(to, "--to") if to is not None else None
    if start_ns is not None and end_ns is not None and start_ns >= end_ns:
        raise UserError(f"--from {from_} is not before --to {to}: the window [from, to) is empty")
    target = Target(skew_at_limit, spread_ticks)
    _check_outputs(stores, out, json_out, plot)
    cal = calibrate(stores, start_ns, end_ns, resamples=resamples, seed=seed)
    explicit = skew_at_limit is not None or spread_ticks is not None or out is not None
    calibrated: Calibrated | None = None
    try:
        calibrated = build(cal, target)
    except UserError:
        if explicit:
            raise
    config_text = _config_text(calibrated) if out is not None and calibrated is not None else None
    _print_summary(cal, calibrated)
    for note in cal.notes:
        print(f"avmm: note: {note}", file=sys.stderr)
    _write(cal, calibrated, config_text, stores, out, json_out, plot)


def _check_outputs(stores: list[Path], *outs: Path | None) -> None:
    """Before any work: every output can be written, none is an input or another output, the
    plot's library is installed."""
    from avmm.calibrate.plot import require
    from avmm.outputs import check_output

    seen: dict[Path, str] = {}
    for flag, p in zip(("-o", "--json", "--plot"), outs, strict=True):
        if p is None:
            continue
        check_output(p, flag, stores)
        key = p.resolve()
        if key in seen:
            raise UserError(f"{flag} {p}: also given to {seen[key]}; write each to its own file")
        seen[key] = flag
    if outs[2] is not None:
        require(outs[2])


def _config_text(c: Calibrated) -> str:
    """The whole config file: the derivation as a header, then every key with its comment;
    checked to load back through ``avmm.config`` before it is written."""
    from avmm.config import Config, dump_toml, validate

    data = Config().model_dump()
    for sec, kv in c.sections.items():
        data[sec].update(kv)
    cfg = Config.model_validate(data)
    text = "\n".join(f"# {line}" for line in c.header) + "\n\n" + dump_toml(cfg, comments=True)
    validate(tomllib.loads(text), "the calibrated config")
    return text


def _write(
    cal: Calibration,
    calibrated: Calibrated | None,
    config_text: str | None,
    stores: list[Path],
    out: Path | None,
    json_out: Path | None,
    plot: Path | None,
) -> None:
    from avmm.outputs import write_text

    if json_out is not None:
        doc = cal.to_json()
        doc["gamma"] = calibrated.gamma if calibrated is not None else None
        doc["config"] = calibrated.sections if calibrated is not None else None
        write_text(json_out, json.dumps(doc, indent=2) + "\n", "--json", stores)
    if out is not None and config_text is not None:
        write_text(out, config_text, "-o", stores)
        print(f"config: {out}")
    if plot is not None:
        from avmm.calibrate.plot import write_plot

        write_plot(cal, plot, stores)
        print(f"plot: {plot}")


def _g(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _ci(ci: list[float] | None) -> str:
    return "n/a" if not ci else f"[{ci[0]:.4g}, {ci[1]:.4g}]"


def _print_summary(cal: Calibration, calibrated: Calibrated | None) -> None:
    from rich.console import Console

    console = Console(width=max(100, Console().width))
    for table in (_estimates(cal, calibrated), _bins(cal), _fills(cal), _distributions(cal)):
        console.print(table)


def _estimates(cal: Calibration, calibrated: Calibrated | None) -> Any:
    from rich.table import Table

    title = f"calibrate: {', '.join(str(p) for p in cal.stores)}" + (f"  [{cal.symbol}]" if cal.symbol else "")
    t = Table(title=title, title_justify="left")
    for col in ("estimate", "value", "95 % interval", "unit / note"):
        t.add_column(col, justify="left" if col in ("estimate", "unit / note") else "right")
    t.add_row("sigma", _g(cal.sigma.value), _ci(cal.sigma.ci), f"price/sqrt(s), mid every {cal.grid_s:g} s")
    ws = [w["sigma"] for w in cal.sigma_windows if w["sigma"] is not None]
    if ws:
        t.add_row(
            "sigma over the session",
            f"{min(ws):.4g} .. {max(ws):.4g}",
            "",
            f"min .. max of {len(ws)} windows (median {sorted(ws)[len(ws) // 2]:.4g})",
        )
    for key, unit in (("A", "1/s per side"), ("k", "1/price")):
        for suffix, who in (("", "pooled"), ("_bid", "bid side (sells)"), ("_ask", "ask side (buys)")):
            e = cal.est[key + suffix]
            t.add_row(key + suffix, _g(e.value), _ci(e.ci), f"{unit}, {who}")
    for name in ("bid", "ask"):
        f = cal.fits[name]
        t.add_row(
            f"fit {name}", f"{f.trades:,} trades", "", f"{f.beyond_touch:,} beyond the touch; R^2 log rate {_g(f.r2)}"
        )
    t.add_row("tick / lot", f"{cal.tick:g} / {_g(cal.lot)}", "", "from the store's metadata")
    t.add_row("data", f"{cal.rows:,} rows", "", f"{cal.observed_s:,.0f} s with a live quote")
    t.add_row(
        "bootstrap", f"{cal.resamples} resamples", "", f"{cal.blocks} blocks of {cal.block_s:g} s, seed {cal.seed}"
    )
    if calibrated is not None:
        g = calibrated.gamma
        t.add_row(
            "gamma",
            _g(g["gamma"]),
            "",
            f"spread {g['spread_ticks']:.3g} ticks, skew at the limit {g['skew_at_limit']:.3g} half spreads "
            f"(tau {g['tau_s']:g} s, q at the limit {g['q_max']:g})",
        )
    return t


def _bins(cal: Calibration) -> Any:
    from rich.table import Table

    t = Table(
        title="trades by reach from the mid, lower end (fit: Poisson MLE; residual = (n - E) / sqrt(E))",
        title_justify="left",
    )
    for col in ("reach, ticks", "bid trades", "bid rate >=", "bid fit", "bid resid", "ask trades", "ask rate >=",
                "ask fit", "ask resid"):  # fmt: skip
        t.add_column(col, justify="right")
    b, a = cal.fits["bid"], cal.fits["ask"]
    for j, x in enumerate(cal.bins.x):
        cells = [f"{x / cal.tick:g}"]
        for f in (b, a):
            r = (f.counts[j] - f.expected[j]) / max(f.expected[j], 1e-300) ** 0.5
            cells += [f"{int(f.counts[j]):,}", f"{f.rates[j]:.4g}", f"{f.fitted[j]:.4g}", f"{r:+.2f}"]
        t.add_row(*cells)
    return t


def _fills(cal: Calibration) -> Any:
    from rich.table import Table

    title = "fill rate of a quote at each depth, 1/s (trades at or through it)"
    t = Table(title=title, title_justify="left", min_width=len(title))
    for col in ("depth, ticks", "bid", "ask"):
        t.add_column(col, justify="right")
    for r in cal.fill_rates[:20]:
        t.add_row(f"{r['depth_ticks']:g}", f"{r['bid_per_s']:.4g}", f"{r['ask_per_s']:.4g}")
    return t


def _distributions(cal: Calibration) -> Any:
    from rich.table import Table

    from avmm.calibrate.book import QUANTILES

    keys = [f"p{round(100 * q)}" for q in QUANTILES]
    title = "distributions (spread, touch: time-weighted; trades: per trade)"
    t = Table(title=title, title_justify="left", min_width=len(title))
    t.add_column("figure")
    for k in keys:
        t.add_column(k, justify="right")
    for name, d in (
        ("spread, ticks", cal.spread_ticks),
        ("touch size (bid and ask)", cal.touch_size),
        ("trade size", cal.trade_size),
    ):
        t.add_row(name, *(_g(d[k]) if d else "n/a" for k in keys))
    return t
