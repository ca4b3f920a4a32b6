"""The `avmm` command line: a thin typer layer over the library.

Every command turns a `UserError` (bad file, bad config value, bad argument) into one line on
stderr and exit code 2 -- never a traceback.
"""

from __future__ import annotations

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

    from avmm.quote import quote_once

    out = quote_once(
        model=model, mid=mid, q=q, gamma=gamma, sigma=sigma, k=k, A=A, tau=tau, delta=delta, xi=xi,
        tick=tick, lot=lot, levels=levels, size=size, spacing_ticks=spacing_ticks, spacing_frac=spacing_frac,
        size_eta=size_eta, min_spread=min_spread, max_spread=max_spread, max_position=max_position,
        best_bid=best_bid, best_ask=best_ask,
    )
    print(json.dumps(out))


@app.command("bench")
def bench_cmd(
    events: int = typer.Option(200_000, "--events", help="market-data events to replay"),
    seed: int = typer.Option(1, "--seed"),
    requote: str = typer.Option("always", "--requote", help="always: every event runs the full cycle; triggers: the configured triggers"),
    json_out: str = typer.Option(None, "--json", help="write the figures as JSON"),
    profile: str = typer.Option(None, "--profile", help="write a cProfile report of the cycle pass"),
) -> None:
    """Measure the quote cycle stage by stage on a deterministic synthetic stream."""
    from avmm.bench import run_and_report

    run_and_report(events=events, seed=seed, requote=requote, json_out=json_out, profile=profile)


def main() -> None:
    try:
        app(standalone_mode=False)
    except UserError as e:
        print(f"avmm: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except typer.Exit as e:  # raised by commands to set an exit code
        sys.exit(e.exit_code)
    except typer.Abort:
        print("avmm: aborted", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("avmm: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # click usage errors and friends
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Exit):
            sys.exit(e.exit_code)
        raise


if __name__ == "__main__":
    main()
