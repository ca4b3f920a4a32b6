"""``avmm bench``: the quote-cycle benchmark (``avmm.perf.bench.run_bench``) as a table, and
``avmm bench live``: tick-to-order latency on loopback against the emulator
(``avmm.live.bench.run_live_bench``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import typer

from avmm.errors import UserError

if TYPE_CHECKING:
    from avmm.live.bench import LiveBenchResult
    from avmm.perf.bench import BenchResult

app = typer.Typer(
    rich_markup_mode=None,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback(invoke_without_command=True)
def bench_command(
    ctx: typer.Context,
    events: int = typer.Option(200_000, "--events", help="market-data events to replay (>= 1000)"),
    seed: int = typer.Option(1, "--seed", min=0, help="seed of the synthetic stream"),
    requote: Literal["always", "triggers"] = typer.Option(
        "always", "--requote", help="always: every event runs the full cycle; triggers: the configured triggers"
    ),
    json_out: Path = typer.Option(None, "--json", help="write the figures as JSON"),
    profile: Path = typer.Option(None, "--profile", help="write a cProfile report of the cycle pass"),
) -> None:
    """Measure the quote cycle stage by stage on a deterministic synthetic stream
    (avmm bench live: tick-to-order latency against the emulator)."""
    if ctx.invoked_subcommand is not None:
        given = [p.opts[0] for p in ctx.command.params if p.name and _given(ctx, p.name)]
        if given:
            raise UserError(f"{given[0]}: an option of 'avmm bench', not of 'avmm bench {ctx.invoked_subcommand}'")
        return
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


def _given(ctx: Any, name: str) -> bool:
    src = ctx.get_parameter_source(name)
    return src is not None and src.name == "COMMANDLINE"


# --- avmm bench live ---------------------------------------------------------------------------------
@app.command("live")
def live_command(
    ctx: typer.Context,
    venue: Literal["binance-spot", "binance-um"] = typer.Option("binance-spot", "--venue", help="the venue to speak"),
    frames: int = typer.Option(20_000, "--frames", help="bookTicker frames measured (after a warm-up)"),
    speed: float = typer.Option(200.0, "--speed", help="the emulator's venue clock runs this many times wall time"),
    max_speed: bool = typer.Option(False, "--max", help="the emulator sends as fast as the client reads"),
    repeat: int = typer.Option(1, "--repeat", help="runs (a fresh emulator each); the median of their percentiles"),
    json_out: Path = typer.Option(None, "--json", help="write the figures as JSON"),
    store: Path = typer.Option(None, "--store", help="event store to replay (default: the built-in synthetic session)"),
    cpu: str = typer.Option(
        None, "--cpu", metavar="LIST", help="also run each measurement pinned to these CPUs (e.g. 1), to compare"
    ),
    rt_priority: int = typer.Option(
        None, "--rt-priority", metavar="P", help="also run each measurement with the loop's thread SCHED_FIFO at P"
    ),
    gc_mode: str = typer.Option(
        "auto", "--gc", metavar="auto|manual", help="manual: also run each measurement with automatic GC off"
    ),
    busy_poll: bool = typer.Option(
        False, "--busy-poll", help="also run each measurement with the event loop never sleeping (busy polling)"
    ),
) -> None:
    """Tick-to-order latency on loopback against the emulator: p50 / p99 / p99.9 per stage (receive,
    decode, book, core, encode) and for the paper runtime as it runs. With --cpu, --rt-priority,
    --gc manual or --busy-poll, each run is made without and with that tuning and both are shown."""
    from rich.console import Console

    from avmm.live.bench import MAX_FRAMES, Tuning, run_live_bench
    from avmm.live.tuning import GC_MODES, check_busy_poll, check_rt_priority, parse_cpus
    from avmm.outputs import check_output, write_text

    if not 1 <= frames <= MAX_FRAMES:
        raise UserError(f"--frames {frames}: must be between 1 and {MAX_FRAMES:,}")
    if not 1 <= repeat <= 100:
        raise UserError(f"--repeat {repeat}: must be between 1 and 100")
    if max_speed and _given(ctx, "speed"):
        raise UserError("--speed and --max: give one of them")
    if not (speed > 0 and speed < 1e9):
        raise UserError(f"--speed {speed}: must be a positive number")
    if gc_mode not in GC_MODES:
        raise UserError(f"--gc {gc_mode}: use {' or '.join(GC_MODES)}")
    tuning = None
    if cpu is not None or rt_priority is not None or gc_mode == "manual" or busy_poll:
        tuning = Tuning(
            cpus=parse_cpus(cpu) if cpu is not None else None,
            rt_priority=check_rt_priority(rt_priority) if rt_priority is not None else None,
            gc_manual=gc_mode == "manual",
            busy_poll=check_busy_poll(busy_poll, rt_priority),
        )
    if json_out is not None:
        check_output(json_out, "--json")
    if store is None:
        from avmm.data.synth import default_session_path

        store = default_session_path()
    elif not store.exists():
        raise UserError(f"--store {store}: no such file")
    with Console(stderr=True).status("avmm bench live: starting") as status:
        r = run_live_bench(
            _emulator,
            store,
            venue=venue,
            frames=frames,
            speed=None if max_speed else speed,
            repeat=repeat,
            progress=lambda msg: status.update(f"avmm bench live: {msg}"),
            tuning=tuning,
        )
    render_live(r)
    if json_out is not None:
        write_text(json_out, json.dumps(r.to_json(), indent=2) + "\n", "--json")


def _emulator(store: Path, venue: str, speed: float | None, keys: Path) -> Any:
    """``avmm emulate`` in its own process (it never shares this process's GIL), its WebSocket API
    served for ``keys`` with the request-weight and order limits off (the bench sends thousands of
    order frames a second)."""
    from avmm.emulator import EmulatorProcess

    pace = ["--max"] if speed is None else ["--speed", repr(speed)]
    limits = ["--fault", "weightlimit:0", "--fault", "orderlimit:0"]
    args = [str(store), "--venue", venue, *pace, "--heartbeat", "0", "--keys", str(keys), *limits]
    return EmulatorProcess(args, timeout=600.0)  # a first start compiles the private side's matching engine


def _us(v: float | None) -> str:
    return "-" if v is None else f"{v:,.2f}"


def render_live(r: LiveBenchResult, console: Any = None) -> None:
    """The live bench's figures as a rich table."""
    from rich.console import Console
    from rich.table import Table

    from avmm.live.bench import IDLE_NS, STAGES

    console = console or Console()
    pace = "--max" if r.speed is None else f"--speed {r.speed:g}"
    runs = f", median of {r.repeat} runs" if r.repeat > 1 else ""
    t = Table(title=f"avmm bench live: {r.venue} {r.symbol}, {pace}{runs}; µs", title_justify="left")
    t.add_column("stage")
    for col in ("p50", "p99", "p99.9", "max", "p50 *", "p99 *", "p99.9 *"):
        t.add_column(col, justify="right")
    for name in (*STAGES, "intent", "total"):
        a, q = r.stages_all[name], r.stages_requote[name]
        t.add_row(
            "[bold]total[/bold]" if name == "total" else "to the intent" if name == "intent" else name,
            *(_us(a[k]) for k in ("p50", "p99", "p999", "max")),
            *(_us(q[k]) for k in ("p50", "p99", "p999")),
        )
    rt = r.runtime
    t.add_row("[bold]paper runtime[/bold]", *(_us(rt[k]) for k in ("p50", "p99", "p999", "max")), "", "", "")
    nl = r.null
    t.add_row("null client", *(_us(nl.get(k)) for k in ("p50", "p99", "p999", "max")), "", "", "")
    lv, fl = r.live, r.fill
    t.add_row("[bold]live runtime[/bold]", *(_us(lv.get(k)) for k in ("p50", "p99", "p999", "max")), "", "", "")
    t.add_row("fill → requote", *(_us(fl.get(k)) for k in ("p50", "p99", "p999", "max")), "", "", "")
    console.print(t)
    sh = r.share()
    console.print(
        f"avmm's own share (total * less the null client's frame -> one fixed order frame sent, same loopback and "
        f"machine): p50 {_us(sh['p50'])}, p99 {_us(sh['p99'])}."
    )
    share = r.requoted / r.frames if r.frames else 0.0
    console.print(
        f"{r.frames:,} bookTicker frames (after {r.warmup:,} of warm-up), from entering the websocket callback "
        f"to the WebSocket API order frames handed to the socket; * the {r.requoted:,} ({share:.0%}) that produced "
        "an order intent. "
        f"paper runtime: avmm paper's own tick-to-order (frame to orders sent, the paper venue included), "
        f"{rt['n']:,} events that sent orders. "
        f"live runtime: avmm live's own (LiveSession, logged on to the emulator's WebSocket API; real orders, "
        f"filled by the emulator): frame -> order frames handed to the socket over {lv.get('n', 0):,.0f} events "
        f"that sent orders; fill -> replacement: a fill report's frame -> the orders it caused on the socket, "
        f"{fl.get('n', 0):,.0f} fills."
    )
    b, i = r.stages_back_to_back["total"], r.stages_after_idle["total"]
    console.print(
        f"total by arrival: {b['n']:,.0f} frames within {IDLE_NS // 1000} µs of the previous one p50 {_us(b['p50'])} "
        f"p99 {_us(b['p99'])}; {i['n']:,.0f} after a quiet gap (the process idle, its caches cold, unless it "
        f"busy-polls) p50 {_us(i['p50'])} "
        f"p99 {_us(i['p99'])}."
    )
    if r.tuned is not None:
        tu = r.tuned
        console.print(f"the tuning compared: {tu['tuning']}")
        tt = Table(title="without and with the tuning; µs", title_justify="left")
        for col, just in (("", "left"), ("without", "right"), ("with", "right")):
            tt.add_column(col, justify=just)  # type: ignore[arg-type]
        sh_t = tu["share"]
        rows = (
            ("total", r.stages_all["total"], tu["total_us"], ("p50", "p99", "p999")),
            ("total after a gap", r.stages_after_idle["total"], tu["total_after_idle_us"], ("p99",)),
            ("to the intent *", r.stages_requote["intent"], tu["intent_requote_us"], ("p50", "p99")),
            ("avmm's own share", sh, sh_t, ("p50", "p99")),
            ("paper runtime", r.runtime, tu["runtime_us"], ("p50", "p99")),
            ("live runtime", r.live, tu["live_us"], ("p50", "p99")),
            ("fill → requote", r.fill, tu["fill_to_order_us"], ("p50", "p99")),
        )
        for name, plain_row, tuned_row, keys in rows:
            for k in keys:
                label = f"{name} {'p99.9' if k == 'p999' else k}"
                tt.add_row(label, _us(plain_row.get(k)), _us(tuned_row.get(k)))
        console.print(tt)
        for line in tu["not_applied"]:
            console.print(f"not applied: {line}")
    gcs = r.runs[0]["gc_collections"] if r.runs else {}
    console.print(
        f"clock time.time_ns; GC enabled, start-up objects frozen (gc.freeze); collections during the measured "
        f"frames: {gcs.get('stages', 0)} (stages), {gcs.get('runtime', 0)} (paper runtime), {gcs.get('live', 0)} "
        "(live runtime)."
    )
