"""``avmm quote``: one quote from the command line (``avmm.core.quote.one_quote``).

Without ``--tick`` prices are not rounded and without ``--lot`` sizes are not rounded; without a
best bid/ask there is no post-only clamp.
"""

from __future__ import annotations

import json
import math

import typer

from avmm.errors import UserError


def quote_command(
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
    from avmm.core.config import validate_strategy
    from avmm.core.quote import one_quote

    for name, v in (("mid", mid), ("q", q)):
        if not math.isfinite(v):
            raise UserError(f"--{name} {v}: must be a finite number")
    if mid <= 0:
        raise UserError(f"--mid {mid}: must be > 0")
    if model == "glft" and A is None:
        raise UserError("--A: required for --model glft")
    if spacing_ticks > 0 and tick is None:
        raise UserError("--spacing-ticks: needs --tick")
    if (best_bid is None) != (best_ask is None):
        raise UserError("--best-bid and --best-ask go together")
    if best_bid is not None and best_ask is not None and not (0 < best_bid < best_ask):
        raise UserError(f"--best-bid {best_bid} / --best-ask {best_ask}: need 0 < bid < ask")
    cfg = validate_strategy(
        {
            "model": {
                "kind": model,
                "gamma": gamma,
                "sigma": sigma,
                "k": k,
                "A": A if A is not None else "auto",
                "tau_s": tau,
                "horizon_s": tau,
                "horizon_cycle": False,
                "delta": delta,
                "xi": xi,
                "q_unit": 1.0,
            },
            "quoting": {
                "tick": tick or 1.0,
                "lot": lot or 1.0,
                "levels": levels,
                "size": size,
                "spacing_ticks": spacing_ticks,
                "spacing_frac": spacing_frac,
                "size_eta": size_eta,
                "min_spread": min_spread,
                "max_spread": max_spread,
                "post_only": best_bid is not None,
            },
            "risk": {"max_position": max_position if max_position is not None else 1e300},
        },
        where="quote",
    )
    out = one_quote(cfg, mid, q, best_bid, best_ask, round_prices=tick is not None, round_sizes=lot is not None)
    print(json.dumps(out))
