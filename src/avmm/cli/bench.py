"""``avmm bench``: the quote-cycle benchmark (``avmm.perf.bench.run_bench``) as a table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import typer

from avmm.errors import UserError

if TYPE_CHECKING:
    from avmm.perf.bench import BenchResult


def bench_command(
    events: int = typer.Option(200_000, "--events", help="market-data events to replay (>= 1000)"),
    seed: int = typer.Option(1, "--seed", min=0, help="seed of the synthetic stream"),
    requote: Literal["always", "triggers"] = typer.Option(
        "always", "--requote", help="always: every event runs the full cycle; triggers: the configured triggers"
    ),
    json_out: Path = typer.Option(None, "--json", help="write the figures as JSON"),
    profile: Path = typer.Option(None, "--profile", help="write a cProfile report of the cycle pass"),
) -> None:
    """Measure the quote cycle stage by stage on a deterministic synthetic stream."""
    from rich.console import Console

    from avmm.outputs import check_output, write_text
    from avmm.perf.bench import run_bench

    if json_out is not None:
        check_output(json_out, "--json")
    if profile is not None:
        check_output(profile, "--profile")
        if json_out is not None and profile.resolve() == json_out.resolve():
            raise UserError(f"--profile {profile}: the same file as --json; give two files")
    with Console(stderr=True).status("benchmarking") as status:
        r = run_bench(
            events=events,
            seed=seed,
            requote=requote,
            profile=str(profile) if profile is not None else None,
            progress=lambda msg: status.update(f"benchmarking: {msg}"),
        )
    render(r)
    if json_out is not None:
        write_text(json_out, json.dumps(r.to_json(), indent=2) + "\n", "--json")


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def render(r: BenchResult, console: Any = None) -> None:
    """The bench's figures as a rich table."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    t = Table(title=f"avmm bench: {r.events:,} events ({r.quote_events:,} quotes), requote={r.requote}, ns")
    for col in ("stage", "p50", "p90", "p99", "p99.9", "max", "n"):
        t.add_column(col, justify="right" if col != "stage" else "left")

    def row(name: str, d: dict) -> None:
        t.add_row(name, *(_fmt(d[k]) for k in ("p50", "p90", "p99", "p999", "max")), f"{d['n']:,}")

    from avmm.perf.bench import STAGES

    for name in STAGES:
        row(name.replace("_", " "), r.stages[name])
    row("[bold]tick-to-quote cycle[/bold]", r.cycle_ns)
    row("reference (plain Python)", r.reference_ns)
    console.print(t)
    console.print(
        f"cycles/s: [bold]{r.cycles_per_s:,.0f}[/bold]   cycle p50 / reference p50: {r.ratio_p50:.2f}   "
        f"fills: {r.fills:,}   actions: {r.actions:,}"
    )
    console.print(
        f"allocation per cycle (steady state): {r.alloc_bytes_per_cycle:.4f} bytes retained (tracemalloc), "
        f"{r.nrt_allocs_per_cycle:.4f} compiled-code allocations; "
        f"transient peak {r.alloc_transient_peak_bytes:,} bytes; "
        f"peak RSS {r.peak_rss_bytes / 2**20:,.0f} MiB"
    )
