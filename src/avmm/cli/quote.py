"""``avmm quote``: one quote from the command line (``avmm.core.quote.one_quote``).

Without ``--tick`` prices are not rounded and without ``--lot`` sizes are not rounded; without a
best bid/ask there is no post-only clamp. Every value goes through the config's validation, and an
error names the option (``--gamma``), not the config key behind it.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

import typer

from avmm.errors import UserError

_EXACT_TICKS = 2.0**52  # a price in ticks beyond this has no exact float for every tick

# the config key behind each option, for messages
_FLAGS = {
    "model.kind": "--model",
    "model.gamma": "--gamma",
    "model.sigma": "--sigma",
    "model.k": "--k",
    "model.A": "--A",
    "model.tau_s": "--tau",
    "model.horizon_s": "--tau",
    "model.delta": "--delta",
    "model.xi": "--xi",
    "quoting.tick": "--tick",
    "quoting.lot": "--lot",
    "quoting.levels": "--levels",
    "quoting.size": "--size",
    "quoting.spacing_ticks": "--spacing-ticks",
    "quoting.spacing_frac": "--spacing-frac",
    "quoting.size_eta": "--size-eta",
    "quoting.min_spread": "--min-spread",
    "quoting.max_spread": "--max-spread",
    "risk.max_position": "--max-position",
}


def quote_command(
    model: Literal["as", "as-rolling", "glft"] = typer.Option(
        "as", "--model", help="as: finite horizon T-t; as-rolling: constant horizon; glft: Gueant et al."
    ),
    mid: float = typer.Option(..., "--mid", help="mid price (> 0)"),
    q: float = typer.Option(0.0, "--q", help="inventory in model units (lots)"),
    gamma: float = typer.Option(..., "--gamma", help="risk aversion, 1/(price * q unit); > 0, <= 1e6"),
    sigma: float = typer.Option(..., "--sigma", help="mid std-dev per sqrt(second), price units; > 0"),
    k: float = typer.Option(..., "--k", help="intensity decay, 1/price; > 0"),
    A: float = typer.Option(None, "--A", help="intensity scale, 1/s (required for glft)"),
    tau: float = typer.Option(1.0, "--tau", help="horizon seconds: T-t (as) or rolling tau (as-rolling)"),
    delta: float = typer.Option(1.0, "--delta", help="GLFT order size in q units"),
    xi: float = typer.Option(None, "--xi", help="GLFT xi (default gamma)"),
    tick: float = typer.Option(
        None, "--tick", help="round bids down / asks up to this tick (> 0; default: no rounding)"
    ),
    lot: float = typer.Option(None, "--lot", help="round sizes down to this lot (> 0; default: no rounding)"),
    levels: int = typer.Option(1, "--levels", help="levels per side (1 to 16)"),
    size: float = typer.Option(1.0, "--size", help="size per level"),
    spacing_ticks: float = typer.Option(0.0, "--spacing-ticks", help="level spacing in ticks (needs --tick)"),
    spacing_frac: float = typer.Option(0.5, "--spacing-frac", help="level spacing as a fraction of the half spread"),
    size_eta: float = typer.Option(0.0, "--size-eta", help="inventory size shaping exp(-eta*|q|)"),
    min_spread: float = typer.Option(0.0, "--min-spread", help="minimum total spread, price"),
    max_spread: float = typer.Option(0.0, "--max-spread", help="maximum total spread, price (0: none)"),
    max_position: float = typer.Option(None, "--max-position", help="|q| limit, base units (default: none)"),
    best_bid: float = typer.Option(None, "--best-bid", help="market best bid (enables post-only)"),
    best_ask: float = typer.Option(None, "--best-ask", help="market best ask (enables post-only)"),
) -> None:
    """Print one quote as JSON: reservation price, depths, top prices and the ladder."""
    from avmm.core.config import SIZE_MAX, validate_strategy
    from avmm.core.quote import one_quote

    _check_flags(mid=mid, q=q, tick=tick, lot=lot, best_bid=best_bid, best_ask=best_ask)
    if model == "glft" and A is None:
        raise UserError("--A: required for --model glft")
    if spacing_ticks > 0 and tick is None:
        raise UserError("--spacing-ticks: needs --tick")
    data = {
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
        "risk": {"max_position": max_position if max_position is not None else SIZE_MAX},
    }
    try:
        cfg = validate_strategy(data, where="quote")
    except UserError as e:
        raise UserError(_flag_message(str(e))) from None
    out = one_quote(cfg, mid, q, best_bid, best_ask, round_prices=tick is not None, round_sizes=lot is not None)
    _check_result(out, tick)
    print(json.dumps(out, allow_nan=False))


def _check_flags(**values: float | None) -> None:
    """Finite numbers; prices, tick and lot > 0; the best bid and ask together and in order."""
    for name, v in values.items():
        flag = "--" + name.replace("_", "-")
        if v is None:
            continue
        if not math.isfinite(v):
            raise UserError(f"{flag} {v}: must be a finite number")
        if name != "q" and v <= 0:
            raise UserError(f"{flag} {v:g}: must be > 0")
    best_bid, best_ask = values["best_bid"], values["best_ask"]
    if (best_bid is None) != (best_ask is None):
        raise UserError("--best-bid and --best-ask go together")
    if best_bid is not None and best_ask is not None and not best_bid < best_ask:
        raise UserError(f"--best-bid {best_bid:g} / --best-ask {best_ask:g}: need bid < ask")


def _flag_message(msg: str) -> str:
    """``quote: quoting.levels = 0: ...`` -> ``--levels 0: ...`` (the option the user typed)."""
    body = msg.removeprefix("quote: ")
    for key, flag in _FLAGS.items():
        if body.startswith(key + " = "):
            return flag + " " + body[len(key) + 3 :].replace(": ", ": ", 1)
        if body.startswith(key + ": "):
            return flag + body[len(key) :]
    return msg


def _check_result(out: dict[str, Any], tick: float | None) -> None:
    """A quote the floats cannot represent is an error, not a JSON with ``Infinity``, a price at or
    below zero, a bid equal to the ask, or a price too many ticks away from zero to round exactly."""
    numbers = [out["reservation_price"], out["bid_depth"], out["ask_depth"]]
    prices = [(side[:-1], level[0]) for side in ("bids", "asks") for level in out["levels"][side]]
    numbers += [x for side in ("bids", "asks") for level in out["levels"][side] for x in level]
    if not all(math.isfinite(x) for x in numbers):
        raise UserError("the quote overflows for these inputs (a price or a size is not finite); use smaller values")
    if tick is not None:
        model = {"bid": out["mid"] - out["bid_depth"], "ask": out["mid"] + out["ask_depth"]}
        for side, px in model.items():
            if abs(px) / tick >= _EXACT_TICKS:
                raise UserError(
                    f"--tick {tick:g}: the {side} price {px:g} is more than 2**52 ticks from zero; "
                    "prices that far cannot be rounded to the tick exactly (check --mid and the model's inputs)"
                )
    for side, px in prices:
        if px <= 0:
            raise UserError(
                f"the {side} price is {px:g} (<= 0) for these inputs: the inventory or the risk terms "
                "(--q, --gamma, --sigma, --tau) are too large for --mid"
            )
    bid, ask = out["bid"], out["ask"]
    if bid is not None and ask is not None and not bid < ask:
        raise UserError(
            f"--mid {out['mid']:g}: the spread {out['spread']:g} is lost in rounding at this price "
            f"(bid {bid:g} >= ask {ask:g}); use a price scale where the spread is representable"
        )
