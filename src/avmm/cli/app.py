"""The `avmm` command line: a thin typer layer over the library.

Every command turns a `UserError` (bad file, bad config value, bad argument) into one line on
stderr and exit code 2 -- never a traceback.
"""

from __future__ import annotations

import gc
import os
import sys

import typer

from avmm.errors import UserError

app = typer.Typer(
    name="avmm",
    help="Avellaneda-Stoikov market making: quote models, estimators, backtests, benchmarks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# --- sub-command groups (each module owns its commands) -------------------------------------
# (registered below)
from avmm.cli.replicate import app as replicate_app  # noqa: E402

app.add_typer(replicate_app, name="replicate")
from avmm.cli.backtest import backtest_command  # noqa: E402

app.command("backtest")(backtest_command)
from avmm.cli.data import app as data_app  # noqa: E402

app.add_typer(data_app, name="data")


@app.command("quote")
def quote_cmd(
    model: str = typer.Option("as", "--model", help="as | as-rolling | glft"),
    mid: float = typer.Option(..., "--mid", help="mid price"),
    q: float = typer.Option(0.0, "--q", help="inventory in model units (lots)"),
    gamma: float = typer.Option(..., "--gamma", help="risk aversion"),
    sigma: float = typer.Option(..., "--sigma", help="mid std-dev per sqrt(second), price units"),
    k: float = typer.Option(..., "--k", help="intensity decay, 1/price"),
    A: float = typer.Option(None, "--A", help="intensity scale, 1/s (glft)"),
    tau: float = typer.Option(1.0, "--tau", help="horizon seconds: T-t (as) or rolling tau (as-rolling)"),
    delta: float = typer.Option(1.0, "--delta", help="GLFT order size in q units"),
    xi: float = typer.Option(None, "--xi", help="GLFT xi (default gamma)"),
    tick: float = typer.Option(None, "--tick", help="round bids down / asks up to this tick"),
    lot: float = typer.Option(None, "--lot", help="round sizes down to this lot"),
    levels: int = typer.Option(1, "--levels", help="levels per side"),
    size: float = typer.Option(1.0, "--size", help="size per level"),
    spacing_ticks: float = typer.Option(0.0, "--spacing-ticks", help="level spacing in ticks (needs --tick)"),
    spacing_frac: float = typer.Option(0.5, "--spacing-frac", help="level spacing as a fraction of the half spread"),
    size_eta: float = typer.Option(0.0, "--size-eta", help="inventory size shaping exp(-eta*|q|)"),
    min_spread: float = typer.Option(0.0, "--min-spread"),
    max_spread: float = typer.Option(0.0, "--max-spread", help="0: none"),
    max_position: float = typer.Option(None, "--max-position", help="|q| limit"),
    best_bid: float = typer.Option(None, "--best-bid", help="market best bid (enables post-only)"),
    best_ask: float = typer.Option(None, "--best-ask", help="market best ask (enables post-only)"),
) -> None:
    """Print one quote as JSON: reservation price, depths, top prices and the ladder."""
    import json

    from avmm.core.quote import quote_once

    out = quote_once(
        model=model,
        mid=mid,
        q=q,
        gamma=gamma,
        sigma=sigma,
        k=k,
        A=A,
        tau=tau,
        delta=delta,
        xi=xi,
        tick=tick,
        lot=lot,
        levels=levels,
        size=size,
        spacing_ticks=spacing_ticks,
        spacing_frac=spacing_frac,
        size_eta=size_eta,
        min_spread=min_spread,
        max_spread=max_spread,
        max_position=max_position,
        best_bid=best_bid,
        best_ask=best_ask,
    )
    print(json.dumps(out))


config_app = typer.Typer(help="Strategy configuration files.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("check")
def config_check(
    path: str = typer.Argument(None, help="TOML file (omit for the defaults)"),
    set_: list[str] = typer.Option([], "--set", help="override, section.key=value (repeatable)"),
) -> None:
    """Validate a config file and print it in full, defaults filled in."""
    from avmm.config import dump_toml, load_config

    print(dump_toml(load_config(path, set_)), end="")


@app.command("bench")
def bench_cmd(
    events: int = typer.Option(200_000, "--events", help="market-data events to replay"),
    seed: int = typer.Option(1, "--seed"),
    requote: str = typer.Option(
        "always", "--requote", help="always: every event runs the full cycle; triggers: the configured triggers"
    ),
    json_out: str = typer.Option(None, "--json", help="write the figures as JSON"),
    profile: str = typer.Option(None, "--profile", help="write a cProfile report of the cycle pass"),
) -> None:
    """Measure the quote cycle stage by stage on a deterministic synthetic stream."""
    from avmm.perf.bench import run_and_report

    run_and_report(events=events, seed=seed, requote=requote, json_out=json_out, profile=profile)


def _click_exceptions():
    """typer >= 0.20 vendors click as typer._click; older versions use click itself."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click import exceptions
    return exceptions


def main() -> None:
    cx = _click_exceptions()
    exits = tuple(x for x in (typer.Exit, getattr(cx, "Exit", None)) if isinstance(x, type))
    aborts = tuple(x for x in (typer.Abort, getattr(cx, "Abort", None)) if isinstance(x, type))
    code = _run(cx, exits, aborts)
    # the failed command's frames (and any open readers in them) are gone by now: close what they
    # held before the interpreter shuts down, not during
    gc.collect()
    sys.exit(code)


def _run(cx, exits, aborts) -> int:
    """Run the app; returns the exit code (one line on stderr for an error)."""
    try:
        app(standalone_mode=False)
        return 0
    except UserError as e:
        print(f"avmm: error: {e}", file=sys.stderr)
        return e.exit_code
    except cx.UsageError as e:  # bad option value, unknown command or option
        where = e.ctx.command_path if e.ctx is not None else "avmm"
        msg = " ".join(e.format_message().split())
        print(f"{where}: error: {msg} (see --help)", file=sys.stderr)
        return e.exit_code
    except cx.ClickException as e:
        print(f"avmm: error: {' '.join(e.format_message().split())}", file=sys.stderr)
        return e.exit_code
    except exits as e:
        return e.exit_code
    except aborts:
        print("avmm: aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("avmm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug: one line unless AVMM_DEBUG asks for the traceback
        if os.environ.get("AVMM_DEBUG"):
            raise
        print(f"avmm: internal error: {type(e).__name__}: {e} (set AVMM_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    main()
