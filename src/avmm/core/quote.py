"""One quote from the command line: ``avmm quote`` runs the engine's own ``compute_targets``.

Inventory ``q`` is given in model units (q_unit = 1). Without ``tick`` prices are not rounded and
without ``lot`` sizes are not rounded; without a best bid/ask there is no post-only clamp.
"""

from __future__ import annotations

import math

from avmm.config import Config, validate
from avmm.core.engine import Engine
from avmm.errors import UserError


def quote_once(
    *,
    model: str,
    mid: float,
    q: float,
    gamma: float,
    sigma: float,
    k: float,
    A: float | None = None,
    tau: float = 1.0,
    delta: float = 1.0,
    xi: float | None = None,
    tick: float | None = None,
    lot: float | None = None,
    levels: int = 1,
    size: float = 1.0,
    spacing_ticks: float = 0.0,
    spacing_frac: float = 0.5,
    size_eta: float = 0.0,
    min_spread: float = 0.0,
    max_spread: float = 0.0,
    max_position: float | None = None,
    best_bid: float | None = None,
    best_ask: float | None = None,
    fair: str = "mid",
) -> dict:
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
    if best_bid is not None and not (0 < best_bid < best_ask):
        raise UserError(f"--best-bid {best_bid} / --best-ask {best_ask}: need 0 < bid < ask")
    cfg: Config = validate(
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
                "fair_price": fair,
            },
            "risk": {"max_position": max_position if max_position is not None else 1e300},
        },
        where="quote",
    )
    eng = Engine(cfg)
    p = eng.params
    if tick is None:
        p["tick"], p["inv_tick"] = 0.0, 0.0
    if lot is None:
        p["lot"], p["inv_lot"] = 0.0, 0.0
    s = eng.state
    s["has_book"] = 1
    s["t0_ns"] = 0
    s["mid"] = mid
    s["bid"] = best_bid if best_bid is not None else mid
    s["ask"] = best_ask if best_ask is not None else mid
    s["micro"] = mid
    s["pos"] = q
    eng.targets(0)
    st = s[0]
    lad = eng.ladder()
    return {
        "model": model,
        "mid": mid,
        "q": q,
        "reservation_price": float(st["res_px"]),
        "bid_depth": float(st["bid_depth"]),
        "ask_depth": float(st["ask_depth"]),
        "spread": float(st["bid_depth"] + st["ask_depth"]),
        "bid": lad["bids"][0][0] if lad["bids"] else None,
        "ask": lad["asks"][0][0] if lad["asks"] else None,
        "levels": lad,
    }
