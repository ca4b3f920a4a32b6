"""One quote from fixed inputs: the engine's own ``compute_targets`` on a given mid and inventory.

Used by ``avmm quote`` and by users checking what the core would quote. Inventory ``q`` is in model
units (``model.q_unit``).
"""

from __future__ import annotations

import math
from typing import Any

from avmm.core.config import StrategyConfig, k_mode
from avmm.core.engine import Engine
from avmm.errors import UserError


def one_quote(
    cfg: StrategyConfig,
    mid: float,
    q: float = 0.0,
    best_bid: float | None = None,
    best_ask: float | None = None,
    round_prices: bool = True,
    round_sizes: bool = True,
) -> dict[str, Any]:
    """The quote the core computes for ``cfg`` at ``mid`` with inventory ``q``.

    Parameters
    ----------
    cfg : StrategyConfig
        The strategy; ``model.gamma``, ``model.sigma``, ``model.k`` (and ``model.A`` for GLFT) must be fixed
        numbers.
    mid : float
        The mid price.
    q : float
        The inventory in model units.
    best_bid, best_ask : float, optional
        The market's best prices (the post-only clamp uses them); default: the mid.
    round_prices, round_sizes : bool
        Round prices to ``quoting.tick`` / sizes to ``quoting.lot`` (off: exact model prices).

    Returns
    -------
    dict
        ``reservation_price``, ``bid_depth`` / ``ask_depth`` (from the mid, before rounding),
        ``spread``, the best ``bid`` / ``ask`` (None when a side is not quoted) and ``levels``
        (``{"bids": [[px, qty], ...], "asks": [...]}``).

    Raises
    ------
    UserError
        A non-finite or non-positive ``mid``, a non-finite ``q``, one of ``best_bid`` / ``best_ask``
        without the other or not ``0 < best_bid < best_ask``, or a model parameter left ``"auto"`` / ``"spread"``
        (there is no data to estimate it from).
    """
    _check(cfg, mid, q, best_bid, best_ask)
    eng = Engine(cfg)
    p = eng.params
    if not round_prices:
        p["tick"], p["inv_tick"] = 0.0, 0.0
    if not round_sizes:
        p["lot"], p["inv_lot"] = 0.0, 0.0
    s = eng.state
    s["has_book"] = 1
    s["t0_ns"] = 0
    s["mid"] = mid
    s["bid"] = best_bid if best_bid is not None else mid
    s["ask"] = best_ask if best_ask is not None else mid
    s["micro"] = mid
    s["pos"] = q * float(p["q_unit"][0])  # the core counts the position in base units
    eng.targets(0)
    st = s[0]
    lad = eng.ladder()
    return {
        "model": cfg.model.kind,
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


def _check(cfg: StrategyConfig, mid: float, q: float, best_bid: float | None, best_ask: float | None) -> None:
    if not (math.isfinite(mid) and mid > 0):
        raise UserError(f"one_quote: mid = {mid}: must be a finite number > 0")
    if not math.isfinite(q):
        raise UserError(f"one_quote: q = {q}: must be a finite number")
    if (best_bid is None) != (best_ask is None):
        raise UserError("one_quote: best_bid and best_ask go together")
    if best_bid is not None and best_ask is not None and not (0 < best_bid < best_ask):
        raise UserError(f"one_quote: best_bid = {best_bid}, best_ask = {best_ask}: need 0 < bid < ask")
    m = cfg.model
    needs = ("gamma", "sigma", "k", "A") if m.kind == "glft" else ("gamma", "sigma", "k")
    given = {"gamma": m.gamma, "sigma": m.sigma, "k": k_mode(m), "A": m.A}
    auto = [key for key in needs if isinstance(given[key], str)]
    if auto:
        raise UserError(
            f"one_quote: model.{auto[0]} is {given[auto[0]]!r}: give a number (one quote has no data to estimate it)"
        )
