"""The calibrated config: the keys calibration sets, the gamma derivation, and the comments.

The model is A-S with a rolling horizon (``model.kind = "as-rolling"``) at the fixed ``sigma``,
``A`` and ``k`` estimated (pooled over the sides), ``tau_s`` the strategy's default, and gamma from
a target a user understands (``gamma``): ``--skew-at-limit X`` (default 1: at the position limit the
reservation price moves X half spreads) or ``--spread-ticks N`` (the model's total spread). The quote
size is the median trade size on the lot grid (at least one lot), ``q_unit`` one quote size (so
``q`` counts quotes), and ``risk.max_position`` ``MAX_POSITION_QUOTES`` quote sizes. The rest keeps the
defaults. Values are rounded to 6 significant digits, and gamma is solved from the rounded values,
so what the file says is what the formulas give.

``sections`` are validated here against ``StrategyConfig`` (the layers below ``config``); the CLI
composes the whole file (``avmm.config``) and writes it with every key's comment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from avmm.calibrate import gamma as gm
from avmm.calibrate.stores import fmt_ns
from avmm.core.config import StrategyConfig, validate_strategy
from avmm.errors import UserError

if TYPE_CHECKING:
    from avmm.calibrate.run import Calibration, Estimate

MAX_POSITION_QUOTES = 10
DEFAULT_SKEW_AT_LIMIT = 1.0


def sig6(x: float) -> float:
    """``x`` rounded to 6 significant digits."""
    return float(f"{x:.6g}")


@dataclass
class Target:
    """What gamma is chosen for: one of the two."""

    skew_at_limit: float | None = None
    spread_ticks: float | None = None

    def __post_init__(self) -> None:
        if self.skew_at_limit is not None and self.spread_ticks is not None:
            raise UserError("--skew-at-limit and --spread-ticks: give one of them (both set gamma)")
        if self.skew_at_limit is None and self.spread_ticks is None:
            self.skew_at_limit = DEFAULT_SKEW_AT_LIMIT
        if self.spread_ticks is not None and not (self.spread_ticks > 0 and math.isfinite(self.spread_ticks)):
            raise UserError(f"--spread-ticks {self.spread_ticks:g}: must be a positive number of ticks")
        if self.skew_at_limit is not None and not (self.skew_at_limit > 0 and math.isfinite(self.skew_at_limit)):
            raise UserError(f"--skew-at-limit {self.skew_at_limit:g}: must be a positive number of half spreads")


@dataclass
class Calibrated:
    """The config's calibrated keys (``sections``), the gamma derivation and the header comment."""

    sections: dict[str, dict[str, Any]]
    gamma: dict[str, Any]
    header: list[str]


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _ci(e: Estimate) -> str:
    return f"[{_fmt(e.ci[0])}, {_fmt(e.ci[1])}]" if e.ci else "(no interval: --bootstrap 0)"


def build(cal: Calibration, target: Target, base: StrategyConfig | None = None) -> Calibrated:
    """The calibrated keys and their derivation.

    Raises
    ------
    UserError
        The target cannot be met (a skew of 2 q half spreads or more, a spread below the model's
        narrowest).
    """
    base = base or StrategyConfig()
    tau_s = base.model.tau_s
    tick = cal.tick
    lot = cal.lot if cal.lot else base.quoting.lot
    median_trade = (cal.trade_size or {}).get("p50") or lot
    size = sig6(max(1, round(median_trade / lot)) * lot)
    max_position = sig6(MAX_POSITION_QUOTES * size)
    q_max = max_position / size
    sigma = sig6(cal.sigma.value)
    A = sig6(cal.est["A"].value)
    k = sig6(cal.est["k"].value)
    if target.spread_ticks is not None:
        g = sig6(gm.gamma_for_spread(target.spread_ticks * tick, sigma, k, tau_s, tick))
        how = f"--spread-ticks {target.spread_ticks:g}: the model's total spread is {target.spread_ticks:g} ticks"
        eq = f"gamma sigma^2 tau + (2/gamma) ln(1 + gamma/k) = {target.spread_ticks:g} * tick"
    else:
        x = float(target.skew_at_limit or DEFAULT_SKEW_AT_LIMIT)
        g = sig6(gm.gamma_for_skew(x, q_max, sigma, k, tau_s))
        how = f"--skew-at-limit {x:g}: at |position| = risk.max_position the reservation price moves {x:g} half spreads"
        eq = f"q gamma sigma^2 tau = {x:g} * (gamma sigma^2 tau + (2/gamma) ln(1 + gamma/k)) / 2"
    half = gm.half_spread(g, sigma, k, tau_s)
    sk = gm.skew(q_max, g, sigma, tau_s)
    gamma = {
        "gamma": g,
        "target": "spread_ticks" if target.spread_ticks is not None else "skew_at_limit",
        "spread_ticks_target": target.spread_ticks,
        "skew_at_limit_target": target.skew_at_limit if target.spread_ticks is None else None,
        "tau_s": tau_s,
        "q_max": q_max,
        "spread": 2 * half,
        "spread_ticks": 2 * half / tick,
        "skew_at_limit": sk / half,
        "skew_at_limit_ticks": sk / tick,
    }
    sections: dict[str, dict[str, Any]] = {
        "model": {"kind": "as-rolling", "gamma": g, "sigma": sigma, "A": A, "k": k, "tau_s": tau_s, "q_unit": size},
        "quoting": {"tick": tick, "lot": lot, "size": size},
        "risk": {"max_position": max_position},
    }
    if target.spread_ticks is None:
        sections["risk"]["skew_at_limit"] = float(target.skew_at_limit or DEFAULT_SKEW_AT_LIMIT)
    merged = base.model_dump()
    for sec, kv in sections.items():
        merged[sec].update(kv)
    validate_strategy(merged, "the calibrated config")
    e = cal.est
    where = ", ".join(str(p) for p in cal.stores) + (f" [{cal.symbol}]" if cal.symbol else "")
    boot = (
        f"{cal.resamples} block-bootstrap resamples of {cal.blocks} blocks of {cal.block_s:g} s, seed {cal.seed}"
        if cal.resamples
        else "no bootstrap"
    )
    sp = cal.spread_ticks or {}
    header = [
        f"avmm calibrate: {where}",
        f"  {fmt_ns(cal.start_ns)} to {fmt_ns(cal.end_ns)}: {cal.rows:,} rows, "
        f"{cal.observed_s:,.0f} s with a live quote",
        f"estimates, with 95 % intervals ({boot}):",
        f"  sigma = {_fmt(cal.sigma.value)} price/sqrt(s) {_ci(cal.sigma)}  (mid on a {cal.grid_s:g} s grid)",
        f"  A = {_fmt(e['A'].value)} 1/s per side {_ci(e['A'])}; bid {_fmt(e['A_bid'].value)} {_ci(e['A_bid'])}, "
        f"ask {_fmt(e['A_ask'].value)} {_ci(e['A_ask'])}",
        f"  k = {_fmt(e['k'].value)} 1/price {_ci(e['k'])}; bid {_fmt(e['k_bid'].value)} {_ci(e['k_bid'])}, "
        f"ask {_fmt(e['k_ask'].value)} {_ci(e['k_ask'])}",
        f"  tick {tick:g}, lot {lot:g}; spread median {sp.get('p50', 'n/a')} ticks (p95 {sp.get('p95', 'n/a')}); "
        f"median trade size {_fmt(median_trade)}",
        f"quote size = the median trade size on the lot grid = {size:g}; q_unit = one quote size; "
        f"risk.max_position = {MAX_POSITION_QUOTES} quote sizes = {max_position:g} (q at the limit = {q_max:g})",
        f"gamma from {how}:",
        f"  {eq}  (A-S, core/model.py; tau = model.tau_s = {tau_s:g} s)",
        f"  => gamma = {g:g} 1/(price * q unit) (bisection on log gamma; for the skew target the solve of "
        "gamma = 'auto', done once here at the calibrated sigma and k)",
        f"  model spread = {_fmt(2 * half)} = {_fmt(2 * half / tick)} ticks; reservation shift at the limit = "
        f"{_fmt(sk)} = {_fmt(sk / half)} half spreads = {_fmt(sk / tick)} ticks",
        "(the quoting rules then apply: post-only, the touch, the tick grid, min/max spread)",
    ]
    return Calibrated(sections, gamma, header)
