"""`avmm replicate ...`: reproduce the papers avmm implements (thin layer over
:mod:`avmm.replicate.as2008` and :mod:`avmm.replicate.glft`)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from avmm.errors import UserError

if TYPE_CHECKING:
    from avmm.replicate.as2008 import AS2008Result
    from avmm.replicate.glft import GLFTResult

app = typer.Typer(
    rich_markup_mode=None,
    name="replicate",
    help="Reproduce the papers: Avellaneda-Stoikov (2008) and Gueant-Lehalle-Fernandez-Tapia (2013).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def check_output_path(path: Path | None, what: str) -> None:
    """UserError unless ``path`` (if given) can be written: not a directory, parent exists and is
    writable, and an existing file is writable."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{what} path {str(p)!r} is a directory")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"{what} path {str(p)!r}: directory {str(parent)!r} does not exist")
    if p.exists() and not os.access(p, os.W_OK):
        raise UserError(f"{what} path {str(p)!r} is not writable")
    if not p.exists() and not os.access(parent, os.W_OK):
        raise UserError(f"{what} path {str(p)!r}: directory {str(parent)!r} is not writable")


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    try:
        with open(path, "w") as f:
            json.dump(obj, f, indent=2, allow_nan=False)
            f.write("\n")
    except OSError as e:
        raise UserError(f"cannot write {str(path)!r}: {e.strerror or e}") from None


def _check_outputs(json_path: Path | None, plot_path: Path | None, plot_feature: str) -> None:
    """Before any work: both output paths writable, and matplotlib importable if --plot is given."""
    check_output_path(json_path, "--json")
    check_output_path(plot_path, "--plot")
    if plot_path is not None:
        from avmm.replicate.plotting import require_matplotlib

        require_matplotlib(plot_feature)


class _Result(Protocol):
    def to_json(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=_Result)


def _write_outputs(
    console: Console,
    result: R,
    json_path: Path | None,
    plot_path: Path | None,
    plot: Callable[[R, Path], None],
) -> None:
    """The tail of every replicate command: ``--json`` (``result.to_json()``), then ``--plot``."""
    if json_path is not None:
        _write_json(json_path, result.to_json())
        console.print(f"wrote {json_path}")
    if plot_path is not None:
        plot(result, plot_path)
        console.print(f"wrote {plot_path}")


def _fmt(x: float | None, digits: int = 2) -> str:
    """A table cell: ``digits`` decimals, ``-`` for a missing or non-finite value."""
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _as2008_table(result: AS2008Result) -> Table:
    """The rows, each followed by the paper's Table 1 figures where the paper has them."""
    from avmm.replicate.as2008 import PAPER_TABLE, STAT_KEYS

    p = result.params
    table = Table(
        title=f"Avellaneda-Stoikov (2008) simulation: s0={p.s0:g} T={p.T:g} sigma={p.sigma:g} "
        f"dt={p.dt:g} A={p.A:g} k={p.k:g}, {p.paths} paths, seed {p.seed}",
    )
    for col in ("gamma", "strategy", "spread", "profit mean", "profit std", "final q mean", "final q std"):
        table.add_column(col, justify="left" if col == "strategy" else "right")
    for row in result.rows:
        table.add_row(f"{row['gamma']:g}", row["strategy"], *(_fmt(row[k]) for k in STAT_KEYS))
        ref = PAPER_TABLE.get((row["gamma"], row["strategy"]))
        if ref is not None:
            table.add_row("", "  (paper)", *(_fmt(ref[k]) for k in STAT_KEYS), style="dim")
    return table


def _glft_table(result: GLFTResult) -> Table:
    """Exact and approximate depths per inventory q."""
    p = result.params
    table = Table(
        title=f"GLFT (2013) optimal depths at t=0, ticks: sigma={p.sigma:g} A={p.A:g} k={p.k:g} "
        f"gamma={p.gamma:g} T={p.T:g} Q={p.Q}",
    )
    for col in ("q", "bid exact", "bid approx", "ask exact", "ask approx"):
        table.add_column(col, justify="right")
    for row in result.rows:
        table.add_row(
            str(row["q"]),
            _fmt(row["bid_exact"], 4),
            _fmt(row["bid_approx"], 4),
            _fmt(row["ask_exact"], 4),
            _fmt(row["ask_approx"], 4),
        )
    return table


@app.command("as2008")
def as2008_cmd(
    paths: int = typer.Option(1000, "--paths", help="Monte Carlo paths per run (>= 1)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random numbers (shared by all runs)."),
    gamma: list[float] | None = typer.Option(
        None, "--gamma", help="Risk aversion (repeatable); default 0.1, 0.01, 1 as in the paper."
    ),
    json_path: Path | None = typer.Option(None, "--json", help="Write the rows as JSON."),
    plot_path: Path | None = typer.Option(None, "--plot", help="Write the figures as PNG."),
) -> None:
    """Avellaneda & Stoikov (2008) section 3.3: inventory vs symmetric strategy (Monte Carlo)."""
    from avmm.replicate import as2008

    _check_outputs(json_path, plot_path, as2008.PLOT_FEATURE)
    overrides: dict[str, Any] = {"gammas": tuple(gamma)} if gamma else {}  # else the paper's
    result = as2008.run_as2008(paths=paths, seed=seed, **overrides)

    p = result.params
    console = Console()
    console.print(_as2008_table(result))
    console.print(
        f"{len(result.runs)} runs x {p.paths} paths x {p.n_steps} steps in {result.elapsed_s * 1e3:.0f} ms "
        "(after compilation)"
    )
    _write_outputs(console, result, json_path, plot_path, as2008.plot_as2008)


@app.command("glft")
def glft_cmd(
    q_max: int = typer.Option(30, "--q-max", "-Q", help="Inventory limit Q (>= 1)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the rows as JSON."),
    plot_path: Path | None = typer.Option(None, "--plot", help="Write the figure as PNG."),
) -> None:
    """Gueant-Lehalle-Fernandez-Tapia (2013): exact ODE quotes vs the engine's closed form."""
    from avmm.replicate import glft

    _check_outputs(json_path, plot_path, glft.PLOT_FEATURE)
    result = glft.run_glft(Q=q_max)

    console = Console()
    console.print(_glft_table(result))
    console.print(f"max |exact - approx| = {result.max_abs_diff:.4f} ticks")
    _write_outputs(console, result, json_path, plot_path, glft.plot_glft)
