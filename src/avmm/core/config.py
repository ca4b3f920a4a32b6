"""The strategy's config sections and the params record the compiled core reads.

Sections ``[model]``, ``[quoting]``, ``[risk]``, ``[estimators]``, ``[logging]``, composed into
``StrategyConfig``: what ``Engine`` and every runtime (backtest, sweep, paper, live) receive.
The whole TOML file (these sections plus each runtime's own) is composed in ``avmm.config``.
Units are in the key names (``_s`` seconds, ``_ticks`` ticks); prices in quote currency, sizes in
base units. ``to_params`` turns a validated config into the ``PARAMS_DTYPE`` record.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from avmm.core import signal_builtin as sb
from avmm.core.model import MODEL_NAMES
from avmm.core.signal_api import LEVELS
from avmm.core.signal_builtin import MAX_BARS
from avmm.core.state import (
    BSIG_PARAMS,
    FAIR_MICRO,
    FAIR_MID,
    MAX_INT_BINS,
    MAX_INT_BUCKETS,
    MAX_LEVELS,
    MAX_VWAP_BUCKETS,
    ON_LIMIT,
    PARAMS_DTYPE,
    RATE_CAP,
    SIG_PARAMS,
    TOUCH_MODES,
)
from avmm.errors import UserError, describe_validation

M = TypeVar("M", bound=BaseModel)

STRICT = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


SEED_MAX = 2**63 - 1  # seeds and counts are stored as int64
PRICE_MAX = 1e12  # prices, spreads, price-unit parameters (quote currency)
SIZE_MAX = 1e12  # sizes and positions (base units)
TIME_MAX_S = 1e7  # windows and intervals converted to int64 ns (1e7 s = 116 days)
STEP_MIN = 1e-12  # the smallest tick or lot (their inverses must be finite)
MONEY_MAX = 1e15  # amounts of quote currency (losses, notionals)

# A fixed model parameter or 'auto' (estimated from the data): the number's range is checked here.
PosPrice = Annotated[float, Field(gt=0, le=PRICE_MAX)]


class ModelConfig(BaseModel):
    model_config = STRICT
    kind: Literal["as", "as-rolling", "glft"] = Field(
        "as-rolling",
        description="quote model: as (finite horizon T-t), as-rolling (constant horizon tau_s), glft (Gueant et al.)",
    )
    gamma: Annotated[float, Field(gt=0, le=1e6)] | Literal["auto"] = Field(
        "auto",
        description="risk aversion, 1/(price * q unit); 'auto': implied by risk.skew_at_limit, "
        "re-solved every gamma_update_s from sigma and the spread",
    )
    sigma: PosPrice | Literal["auto"] = Field(
        "auto", description="mid volatility, price/sqrt(s); 'auto': the EWMA estimator"
    )
    A: Annotated[float, Field(gt=0, le=1e9)] | Literal["auto"] = Field(
        "auto", description="trade intensity at zero depth, 1/s; 'auto': the intensity fit"
    )
    k: PosPrice | Literal["auto", "spread"] | None = Field(
        None,
        description="intensity decay with depth, 1/price; 'auto': the intensity fit of the trades; "
        "'spread' (as, as-rolling): implied by the market, the liquidity term (1/gamma) ln(1 + gamma/k) "
        "set to spread_ratio half-spreads of the market (time-averaged over gamma_update_s); "
        "default 'spread' (as, as-rolling) or 'auto' (glft)",
    )
    spread_ratio: float = Field(
        1.0, gt=0, le=1e6, description="k = 'spread': the liquidity term in market half-spreads"
    )
    gamma_update_s: float = Field(
        60.0, gt=0, le=TIME_MAX_S, description="gamma = 'auto' or k = 'spread': re-solve them this often, s"
    )
    tau_s: float = Field(60.0, ge=0, le=1e9, description="rolling horizon, s (as-rolling)")
    horizon_s: float = Field(3600.0, gt=0, le=1e9, description="finite horizon T, s (as)")
    horizon_cycle: bool = Field(True, description="as: restart the horizon T when it runs out")
    delta: float = Field(1.0, gt=0, le=1e9, description="GLFT order size, q units")
    xi: float | None = Field(None, ge=0, le=1e6, description="GLFT xi, 1/(price * q unit); default gamma")
    q_unit: float | None = Field(
        None, gt=0, le=SIZE_MAX, description="position that counts as q = 1, base units; default the lot"
    )

    @model_validator(mode="after")
    def _positive_fixed(self) -> ModelConfig:
        if self.kind == "glft" and self.k == "spread":
            raise ValueError("k: 'spread' is for the A-S models (as, as-rolling); glft needs k = 'auto' or a number")
        if self.kind == "glft" and k_mode(self) != "auto" and self.A == "auto":
            raise ValueError("A: glft with a fixed k needs a fixed A too (or k = 'auto')")
        return self


def k_mode(m: ModelConfig) -> float | str:
    """``model.k`` as run: the number, 'auto' or 'spread'; unset: 'auto' for glft, else 'spread'."""
    if m.k is None:
        return "auto" if m.kind == "glft" else "spread"
    return m.k


class QuotingConfig(BaseModel):
    model_config = STRICT
    tick: float = Field(0.01, ge=STEP_MIN, le=1e9, description="price increment, price")
    lot: float = Field(0.001, ge=STEP_MIN, le=SIZE_MAX, description="size increment, base units")
    levels: int = Field(1, ge=1, le=MAX_LEVELS, description="orders per side")
    spacing_ticks: float = Field(1.0, ge=0, le=1e9, description="level spacing, ticks (0: use spacing_frac)")
    spacing_frac: float = Field(0.5, ge=0, le=100, description="level spacing, fraction of the half spread")
    size: Annotated[float, Field(gt=0, le=SIZE_MAX)] | Literal["auto"] = Field(
        "auto", description="size per level, base units (when sizes is not given); 'auto': one lot"
    )
    sizes: list[Annotated[float, Field(gt=0, le=SIZE_MAX)]] | None = Field(
        None, description="per-level sizes, base units, best level first"
    )
    size_eta: float = Field(
        0.0, ge=0, le=1e6, description="inventory shaping, 1/q unit: size * exp(-eta*|q|) on the side growing |q|"
    )
    min_spread: float = Field(0.0, ge=0, le=PRICE_MAX, description="minimum total spread, price")
    max_spread: float = Field(0.0, ge=0, le=PRICE_MAX, description="maximum total spread, price (0: none)")
    post_only: bool = Field(True, description="never cross the book: clamp quotes behind the best prices")
    fair_price: Literal["mid", "micro"] = Field("mid", description="price the model quotes around")
    amend: bool = Field(False, description="amend orders in place instead of cancel + place")
    refresh_s: float = Field(2.0, gt=0, le=86400, description="requote at least this often, s")
    mid_tolerance: float = Field(0.001, ge=0, le=1, description="requote when the mid moves this fraction")
    price_tolerance_ticks: float = Field(0.0, ge=0, le=1e6, description="keep an order this close to its target, ticks")
    size_tolerance: float = Field(
        0.25, ge=0, le=1, description="keep an order whose size is this close to its target, fraction"
    )
    requote_always: bool = Field(False, description="run the full quote cycle on every event (benchmarks)")
    fill_requote: Literal["now", "refresh"] = Field(
        "now", description="after an own fill: now (requote at once) or refresh (wait for the next refresh)"
    )
    reject_requote: Literal["now", "refresh"] = Field(
        "now", description="after a rejected order: now (requote on the next event) or refresh (the next refresh)"
    )
    refresh_mode: Literal["interval", "grid"] = Field(
        "interval",
        description="interval: the first event refresh_s after the last quote; "
        "grid: at every multiple of refresh_s since the epoch (a fixed timer grid)",
    )
    touch: Literal["improve", "join", "behind"] = Field(
        "improve",
        description="how close to the touch: improve (a bid up to the best ask - tick), "
        "join (never better than our side's best), behind (behind_ticks behind our side's best)",
    )
    behind_ticks: float = Field(1.0, ge=0, le=1e6, description="touch = behind: ticks behind our side's best")

    @model_validator(mode="after")
    def _sizes(self) -> QuotingConfig:
        if self.sizes is not None and len(self.sizes) < self.levels:
            raise ValueError(f"sizes: needs {self.levels} values (one per level), got {len(self.sizes)}")
        if self.max_spread and self.max_spread < self.min_spread:
            raise ValueError("max_spread: must be >= min_spread (or 0 for none)")
        return self


class RiskConfig(BaseModel):
    model_config = STRICT
    max_position: Annotated[float, Field(gt=0, le=SIZE_MAX)] | Literal["auto"] = Field(
        "auto", description="|position| limit, base units; 'auto': 10 x the size of one side's levels"
    )
    skew_at_limit: float = Field(
        1.0,
        gt=0,
        le=1e6,
        description="gamma = 'auto': at |position| = max_position the reservation price moves this many half-spreads",
    )
    max_order_notional: Annotated[float, Field(ge=0, le=MONEY_MAX)] | Literal["off"] = Field(
        "off",
        description="price x size of one order, quote currency: a larger ladder order is cut to it "
        "(a level under one lot is not quoted); 0 / 'off': no limit",
    )
    max_orders_per_10s: Annotated[int, Field(ge=0, le=RATE_CAP)] | Literal["off"] = Field(
        "off",
        description="orders + amends sent in any rolling 10 s of the core's clock: a requote waits "
        "while the budget is spent (cancels are free); 0 / 'off': no limit",
    )
    max_loss: Annotated[float, Field(ge=0, le=MONEY_MAX)] | Literal["off"] = Field(
        "off",
        description="the session's mark-to-market loss (cash + position x mid since the start), quote "
        "currency, at which on_limit applies; 0 / 'off': no limit",
    )
    max_loss_day: Annotated[float, Field(ge=0, le=MONEY_MAX)] | Literal["off"] = Field(
        "off",
        description="the UTC day's loss (the day's PnL before the session, from the journal, + the "
        "session's since 00:00 UTC), quote currency, at which on_limit applies; 0 / 'off': no limit",
    )
    on_limit: Literal["reduce", "halt", "flatten"] = Field(
        "halt",
        description="when a loss limit binds: reduce (quote only what reduces |position|), halt (cancel "
        "everything, quote nothing) or flatten (halt, then taker orders until the position is 0); until "
        "resume (a reduce for max_loss_day alone ends at the next UTC day)",
    )
    max_feed_lag_ms: Annotated[float, Field(ge=0, le=1e9)] | Literal["off"] = Field(
        "off",
        description="paper / live: the venue's time at arrival - an event's venue stamp beyond this, ms: "
        "cancel all, no quotes until it is back under half of it (the runtime's health rule: the core sees "
        "one clock); 0 / 'off': not checked",
    )

    def limit(self, key: str) -> float:
        """A limit as a number (0: off)."""
        v = getattr(self, key)
        return 0.0 if v == "off" else float(v)


class EstimatorsConfig(BaseModel):
    model_config = STRICT
    vol_halflife_s: float = Field(60.0, gt=0, le=TIME_MAX_S, description="half-life of the EWMA variance, s")
    vol_min_obs: int = Field(20, ge=1, le=10**9, description="mid changes before sigma is used")
    intensity_window_s: float = Field(600.0, gt=0, le=TIME_MAX_S, description="trades counted over this window, s")
    intensity_buckets: int = Field(60, ge=1, le=MAX_INT_BUCKETS, description="sub-buckets of the intensity window")
    intensity_bin_ticks: float = Field(1.0, gt=0, le=1e9, description="width of a depth bin, ticks")
    intensity_bins: int = Field(20, ge=2, le=MAX_INT_BINS, description="depth bins per side")
    intensity_fit_s: float = Field(5.0, gt=0, le=TIME_MAX_S, description="refit A and k this often, s")
    intensity_per_side: bool = Field(False, description="fit A and k for bids and asks separately")
    intensity_min_trades: int = Field(20, ge=1, le=10**9, description="trades in the window before A and k are used")
    vwap_window_s: float = Field(60.0, gt=0, le=TIME_MAX_S, description="VWAP window, s")
    vwap_buckets: int = Field(60, ge=1, le=MAX_VWAP_BUCKETS, description="sub-buckets of the VWAP window")
    sigma_interval_s: float = Field(
        0.0,
        ge=0,
        le=TIME_MAX_S,
        description="sample the mid for sigma on a grid of this many seconds (0: every quote event)",
    )


class LoggingConfig(BaseModel):
    model_config = STRICT
    sample_rate: float = Field(0.01, ge=0, le=1, description="fraction of events logged")
    seed: int = Field(0, ge=0, le=SEED_MAX, description="seed of the log sampling")


WEIGHT_MAX = 1e6


class VampSignal(BaseModel):
    model_config = STRICT
    weight: float = Field(
        0.0, ge=-WEIGHT_MAX, le=WEIGHT_MAX, description="fair price shift = weight * (VAMP - mid); 0: off"
    )
    levels: int = Field(
        1, ge=1, le=LEVELS, description="levels in VAMP: 1 the touch (the micro-price), more where the data has depth"
    )


class ImbalanceSignal(BaseModel):
    model_config = STRICT
    weight: float = Field(
        0.0,
        ge=-WEIGHT_MAX,
        le=WEIGHT_MAX,
        description="shift = weight * book imbalance (-1..1) * the market's half spread; 0: off",
    )
    levels: int = Field(1, ge=1, le=LEVELS, description="levels summed: 1 the touch, more where the data has depth")


class FlowSignal(BaseModel):
    model_config = STRICT
    weight: float = Field(
        0.0,
        ge=-WEIGHT_MAX,
        le=WEIGHT_MAX,
        description="shift = weight * trade-flow imbalance (-1..1) * the market's half spread; 0: off",
    )
    window_s: float = Field(10.0, gt=0, le=TIME_MAX_S, description="the buy / sell volumes decay by exp(-dt/window_s)")


class CandlesSignal(BaseModel):
    model_config = STRICT
    weight: float = Field(
        0.0,
        ge=-WEIGHT_MAX,
        le=WEIGHT_MAX,
        description="shift = weight * momentum of volume bars (price per bar); 0: off",
    )
    bars: int = Field(5, ge=1, le=MAX_BARS, description="momentum over this many bars: (close_0 - close_bars) / bars")
    bar_volume: float | None = Field(
        None, gt=0, le=SIZE_MAX, description="base units per bar (unset: bar_trades times the mean trade size)"
    )
    bar_trades: float = Field(50.0, gt=0, le=1e9, description="without bar_volume: a bar is this many mean trades")


class DynGammaSignal(BaseModel):
    model_config = STRICT
    weight: float = Field(
        0.0,
        ge=-100,
        le=100,
        description="the inventory skew times (sigma_fast / sigma_slow) ** weight; 0: off",
    )
    fast_s: float = Field(30.0, gt=0, le=TIME_MAX_S, description="the fast variance window, seconds")
    slow_s: float = Field(600.0, gt=0, le=TIME_MAX_S, description="the slow variance window, seconds")
    max_mult: float = Field(3.0, ge=1, le=1e6, description="the factor is clipped to [1/max_mult, max_mult]")

    @model_validator(mode="after")
    def _windows(self) -> DynGammaSignal:
        if self.weight != 0 and self.fast_s >= self.slow_s:
            raise ValueError(f"fast_s ({self.fast_s:g}) must be shorter than slow_s ({self.slow_s:g})")
        return self


class SignalsConfig(BaseModel):
    model_config = STRICT
    file: str | None = Field(
        None, description="a Python file with the user's @njit signal (core/signal_api.py), compiled into the loop"
    )
    function: str = Field("signal", description="the signal's name in that file")
    params: list[Annotated[float, Field(ge=-PRICE_MAX, le=PRICE_MAX)]] = Field(
        [], max_length=SIG_PARAMS, description="the signal's parameters (params[0], ...; zeros after these)"
    )
    depth_levels: int = Field(
        1, ge=1, le=LEVELS, description="book levels (the touch included) in the user's signal's view"
    )
    vamp: VampSignal = VampSignal()
    imbalance: ImbalanceSignal = ImbalanceSignal()
    flow: FlowSignal = FlowSignal()
    candles: CandlesSignal = CandlesSignal()
    dyn_gamma: DynGammaSignal = DynGammaSignal()

    def builtins_on(self) -> bool:
        """A built-in signal has a weight other than 0."""
        return any(x.weight != 0 for x in (self.vamp, self.imbalance, self.flow, self.candles, self.dyn_gamma))

    def depth_wanted(self) -> int:
        """Levels below the touch some signal reads (0: the touch only)."""
        n = [self.depth_levels if self.file is not None else 1]
        n += [x.levels for x in (self.vamp, self.imbalance) if x.weight != 0]
        return max(n) - 1


def builtin_params(sc: SignalsConfig) -> np.ndarray:
    """The built-in signals' parameters as ``core/signal_builtin.py`` reads them."""
    b = np.zeros(BSIG_PARAMS)
    b[sb.P_VAMP_W] = sc.vamp.weight
    b[sb.P_VAMP_LEVELS] = sc.vamp.levels
    b[sb.P_IMB_W] = sc.imbalance.weight
    b[sb.P_IMB_LEVELS] = sc.imbalance.levels
    b[sb.P_FLOW_W] = sc.flow.weight
    b[sb.P_FLOW_WINDOW_S] = sc.flow.window_s
    b[sb.P_CANDLE_W] = sc.candles.weight
    b[sb.P_CANDLE_VOLUME] = sc.candles.bar_volume or 0.0
    b[sb.P_CANDLE_TRADES] = sc.candles.bar_trades
    b[sb.P_CANDLE_BARS] = sc.candles.bars
    b[sb.P_DYN_W] = sc.dyn_gamma.weight
    b[sb.P_DYN_FAST_S] = sc.dyn_gamma.fast_s
    b[sb.P_DYN_SLOW_S] = sc.dyn_gamma.slow_s
    b[sb.P_DYN_MAX] = sc.dyn_gamma.max_mult
    return b


class StrategyConfig(BaseModel):
    """The strategy's sections: everything the compiled core needs, and nothing of a runtime."""

    model_config = STRICT
    model: ModelConfig = ModelConfig()
    quoting: QuotingConfig = QuotingConfig()
    risk: RiskConfig = RiskConfig()
    estimators: EstimatorsConfig = EstimatorsConfig()
    logging: LoggingConfig = LoggingConfig()
    signals: SignalsConfig = SignalsConfig()


def checked(cls: type[M], data: dict[str, Any], where: str = "config") -> M:
    """``data`` validated as ``cls`` (a config section or a composition of sections), or a
    one-line ``UserError`` naming ``where`` and the first bad key. Runtimes that receive a section
    re-validate it with ``checked(type(section), ...)``."""
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise UserError(f"{where}: {describe_validation(list(map(dict, e.errors())))}") from None


def validate_strategy(data: dict[str, Any], where: str = "config") -> StrategyConfig:
    """``data`` (the strategy's sections) validated, or a one-line ``UserError`` naming the key."""
    return checked(StrategyConfig, data, where)


def _inverse_if_integer(step: float) -> float:
    inv = 1.0 / step
    if not math.isfinite(inv):
        return 0.0
    r = round(inv)
    return float(r) if r >= 1 and abs(inv - r) < 1e-9 * inv else 0.0


AUTO_POSITION_SIZES = 10.0  # risk.max_position = 'auto': this many times one side's total size


def level_sizes(qc: QuotingConfig) -> list[float]:
    """Each level's size, base units: ``sizes``, else ``size`` at every level ('auto': one lot)."""
    if qc.sizes is not None:
        return list(qc.sizes[: qc.levels])
    return [qc.lot if qc.size == "auto" else qc.size] * qc.levels


def max_position_of(cfg: StrategyConfig) -> float:
    """The |position| limit, base units ('auto': 10 x one side's total size)."""
    mp = cfg.risk.max_position
    return AUTO_POSITION_SIZES * sum(level_sizes(cfg.quoting)) if mp == "auto" else mp


def q_unit_of(cfg: StrategyConfig) -> float:
    return cfg.quoting.lot if cfg.model.q_unit is None else cfg.model.q_unit


def _check_skew_target(cfg: StrategyConfig, max_pos: float, q_limit: float) -> None:
    """gamma = 'auto' solves q_limit x skew per q = skew_at_limit x half spread: it has a root only
    when the position limit, in q units, exceeds skew_at_limit / 2 (x delta for glft), and, for
    as-rolling, when tau_s > 0 (else nothing skews the quotes)."""
    m = cfg.model
    if m.gamma != "auto":
        return
    if m.kind == "as-rolling" and m.tau_s <= 0:
        raise UserError("model.tau_s = 0: gamma = 'auto' needs tau_s > 0 (with tau_s = 0 nothing skews the quotes)")
    need = 0.5 * cfg.risk.skew_at_limit * (m.delta if m.kind == "glft" else 1.0)
    if not q_limit > need:
        auto = " = 10 x quoting.size x levels" if cfg.risk.max_position == "auto" else ""
        raise UserError(
            f"risk.skew_at_limit = {cfg.risk.skew_at_limit:g} half-spreads needs risk.max_position / model.q_unit "
            f"> {need:g}, got {q_limit:g} (risk.max_position {max_pos:g}{auto}, q_unit {q_unit_of(cfg):g}); "
            "raise risk.max_position or lower risk.skew_at_limit"
        )


def to_params(cfg: StrategyConfig) -> np.ndarray:
    """The params record (``PARAMS_DTYPE``, length 1) for the compiled core."""
    m, qc, r, e, lg = cfg.model, cfg.quoting, cfg.risk, cfg.estimators, cfg.logging
    p = np.zeros(1, dtype=PARAMS_DTYPE)
    p["model"] = MODEL_NAMES[m.kind]
    p["gamma"] = math.nan if m.gamma == "auto" else m.gamma
    p["gamma_auto"] = int(m.gamma == "auto")
    k = k_mode(m)
    p["k_spread"] = int(k == "spread")
    p["spread_ratio"] = m.spread_ratio
    p["skew_at_limit"] = r.skew_at_limit
    p["g_update_ns"] = max(1, round(m.gamma_update_s * 1e9))
    max_pos = max_position_of(cfg)
    q_limit = max_pos / q_unit_of(cfg)
    _check_skew_target(cfg, max_pos, q_limit)
    p["q_limit"] = q_limit
    p["sigma"] = math.nan if m.sigma == "auto" else m.sigma
    p["A"] = math.nan if m.A == "auto" else m.A
    p["k"] = math.nan if isinstance(k, str) else k
    p["tau_s"] = m.tau_s
    p["horizon_s"] = m.horizon_s
    p["horizon_cycle"] = int(m.horizon_cycle)
    p["delta"] = m.delta
    p["xi"] = (math.nan if m.gamma == "auto" else m.gamma) if m.xi is None else m.xi  # NaN: gamma as solved
    p["q_unit"] = q_unit_of(cfg)
    p["tick"] = qc.tick
    p["inv_tick"] = _inverse_if_integer(qc.tick)
    p["lot"] = qc.lot
    p["inv_lot"] = _inverse_if_integer(qc.lot)
    p["levels"] = qc.levels
    p["spacing_ticks"] = qc.spacing_ticks
    p["spacing_frac"] = qc.spacing_frac
    sizes = level_sizes(qc)
    p["sizes"][0, : len(sizes[:MAX_LEVELS])] = sizes[:MAX_LEVELS]
    p["size_eta"] = qc.size_eta
    p["min_spread"] = qc.min_spread
    p["max_spread"] = qc.max_spread
    p["post_only"] = int(qc.post_only)
    p["fair"] = FAIR_MICRO if qc.fair_price == "micro" else FAIR_MID
    p["amend"] = int(qc.amend)
    p["refresh_ns"] = int(qc.refresh_s * 1e9)
    p["mid_tol"] = qc.mid_tolerance
    p["price_tol_ticks"] = qc.price_tolerance_ticks
    p["size_tol"] = qc.size_tolerance
    p["requote_always"] = int(qc.requote_always)
    p["fill_requote"] = int(qc.fill_requote == "now")
    p["reject_requote"] = int(qc.reject_requote == "now")
    p["refresh_grid"] = int(qc.refresh_mode == "grid")
    p["touch"] = TOUCH_MODES[qc.touch]
    p["behind_ticks"] = qc.behind_ticks
    p["max_position"] = max_pos
    p["max_order_notional"] = r.limit("max_order_notional")
    p["max_orders_10s"] = int(r.limit("max_orders_per_10s"))
    p["max_loss"] = r.limit("max_loss")
    p["max_loss_day"] = r.limit("max_loss_day")
    p["on_limit"] = ON_LIMIT[r.on_limit]
    p["day_pnl_day"] = -1  # (the runtime sets day_pnl0 and its day)
    p["loss_on"] = int(r.limit("max_loss") > 0 or r.limit("max_loss_day") > 0)
    p["vol_halflife_s"] = e.vol_halflife_s
    p["vol_min_obs"] = e.vol_min_obs
    p["int_window_ns"] = int(e.intensity_window_s * 1e9)
    p["int_buckets"] = e.intensity_buckets
    p["int_bucket_ns"] = max(1, int(e.intensity_window_s * 1e9) // e.intensity_buckets)
    p["int_bin"] = e.intensity_bin_ticks * qc.tick
    p["int_nbins"] = e.intensity_bins
    p["int_fit_ns"] = int(e.intensity_fit_s * 1e9)
    p["int_per_side"] = int(e.intensity_per_side)
    p["int_min_trades"] = e.intensity_min_trades
    p["int_on"] = int(k == "auto")  # with k fixed, A and k are the config's: no trade counting, no fits
    p["vwap_window_ns"] = int(e.vwap_window_s * 1e9)
    p["vwap_buckets"] = e.vwap_buckets
    p["vwap_bucket_ns"] = max(1, int(e.vwap_window_s * 1e9) // e.vwap_buckets)
    p["sigma_interval_ns"] = round(e.sigma_interval_s * 1e9)
    sc = cfg.signals
    p["sig_user"] = int(sc.file is not None)
    p["bsig_on"] = int(sc.builtins_on())
    p["sig_on"] = int(sc.file is not None or sc.builtins_on())
    p["sig_params"][0, : len(sc.params)] = sc.params
    p["bsig_params"][0] = builtin_params(sc)
    p["sig_depth"] = sc.depth_wanted() if p["sig_on"][0] else 0
    p["log_rate"] = lg.sample_rate
    p["seed"] = lg.seed
    return p
