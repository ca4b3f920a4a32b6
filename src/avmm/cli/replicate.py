"""`avmm replicate ...`: reproduce the papers avmm implements (thin layer over
:mod:`avmm.replicate.as2008` and :mod:`avmm.replicate.glft`)."""

from __future__ import annotations

import json
import math
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


def _check_outputs(json_path: Path | None, plot_path: Path | None, plot_feature: str) -> None:
    """Before any work: both outputs can be written (``avmm.outputs.check_output``), they are not
    the same file, and matplotlib is importable if --plot is given."""
    from avmm.outputs import check_output

    if json_path is not None:
        check_output(json_path, "--json")
    if plot_path is not None:
        check_output(plot_path, "--plot")
        if json_path is not None and plot_path.resolve() == json_path.resolve():
            raise UserError(f"--plot {plot_path}: the same file as --json; give two files")
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
    from avmm.outputs import atomic_output, write_text

    if json_path is not None:
        write_text(json_path, json.dumps(result.to_json(), indent=2, allow_nan=False) + "\n", "--json")
        console.print(f"wrote {json_path}")
    if plot_path is not None:
        with atomic_output(plot_path, "--plot") as tmp:
            plot(result, tmp)
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
    paths: int = typer.Option(1000, "--paths", min=1, help="Monte Carlo paths per run."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the random numbers (shared by all runs)."),
    gamma: list[float] | None = typer.Option(
        None,
        "--gamma",
        metavar="<float>",
        help="Risk aversion, > 0 and <= 1e6 (repeatable); default 0.1, 0.01, 1 as in the paper.",
    ),
    json_path: Path | None = typer.Option(None, "--json", help="Write the rows as JSON."),
    plot_path: Path | None = typer.Option(None, "--plot", help="Write the figures as PNG."),
) -> None:
    """Avellaneda & Stoikov (2008) section 3.3: inventory vs symmetric strategy (Monte Carlo)."""
    from avmm.errors import require_memory
    from avmm.replicate import as2008

    _check_outputs(json_path, plot_path, as2008.PLOT_FEATURE)
    overrides: dict[str, Any] = {"gammas": tuple(gamma)} if gamma else {}  # else the paper's
    n_gammas = len(gamma) if gamma else len(as2008.AS2008Params().gammas)
    require_memory(as2008.memory_bytes(paths, as2008.AS2008Params().n_steps, n_gammas), f"--paths {paths}")
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
    q_max: int = typer.Option(30, "--q-max", "-Q", min=1, help="Inventory limit Q."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the rows as JSON."),
    plot_path: Path | None = typer.Option(None, "--plot", help="Write the figure as PNG."),
) -> None:
    """Gueant-Lehalle-Fernandez-Tapia (2013): exact ODE quotes vs the engine's closed form."""
    from avmm.errors import require_memory
    from avmm.replicate import glft

    _check_outputs(json_path, plot_path, glft.PLOT_FEATURE)
    require_memory(glft.memory_bytes(q_max), f"--q-max {q_max}")
    result = glft.run_glft(Q=q_max)

    console = Console()
    console.print(_glft_table(result))
    console.print(f"max |exact - approx| = {result.max_abs_diff:.4f} ticks")
    _write_outputs(console, result, json_path, plot_path, glft.plot_glft)
