"""``[backtest]`` section of the config: the exchange model, latencies, fees, accounting, recording.

Units are in the key names (``_ms`` milliseconds, ``_s`` seconds, ``_h`` hours). Fees and funding
rates are fractions of the notional (``0.0002`` = 2 bp; negative = rebate).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from avmm.core.config import SEED_MAX, STRICT


class BacktestConfig(BaseModel):
    model_config = STRICT
    # latency
    feed_latency_ms: float = Field(
        0.0, ge=0, le=1e6, description="extra feed latency added to every event's local time, ms"
    )
    entry_latency_ms: float = Field(1.0, ge=0, le=1e6, description="order: local send -> exchange, ms")
    response_latency_ms: float = Field(1.0, ge=0, le=1e6, description="exchange response -> local, ms")
    latency_model: Literal["constant", "normal", "lognormal", "recorded"] = Field(
        "constant", description="how latencies are drawn around the means above"
    )
    latency_jitter: float = Field(
        0.2, ge=0, le=100, description="normal: std as a fraction of the mean; lognormal: sigma of log"
    )
    latency_file: str | None = Field(None, description="recorded: .npy (n,2) or CSV entry_ns,response_ns (cycled)")
    latency_seed: int = Field(0, ge=0, le=SEED_MAX, description="seed of the latency draws")
    # exchange
    maker_fee: float = Field(0.0002, ge=-0.01, le=0.05, description="fraction of notional, negative = rebate")
    taker_fee: float = Field(0.0005, ge=-0.01, le=0.05, description="fraction of notional")
    contract: Literal["linear", "inverse"] = Field("linear", description="how a fill's notional is counted")
    contract_size: float = Field(
        1.0, gt=0, le=1e12, description="linear: multiplier; inverse: quote value of one contract"
    )
    queue_model: Literal["risk-averse", "prob-power", "prob-log"] = Field(
        "prob-power", description="how cancels ahead of our order advance it in the queue"
    )
    queue_power: float = Field(2.0, gt=0, le=100, description="prob-power exponent n: P(ahead) = a^n / (a^n + b^n)")
    l1_unknown_queue: Literal["front", "fraction"] = Field(
        "fraction", description="top-of-book data: our place in a queue of unknown size"
    )
    l1_queue_fraction: float = Field(1.0, ge=0, le=10, description="fraction of the last size seen at that price")
    partial_fills: bool = Field(
        True,
        description="a trade smaller than what is left of our order after its queue fills it in part "
        "(floored to the lot); false: a trade that reaches the order fills it whole",
    )
    l1_left_level: Literal["keep", "empty"] = Field(
        "keep",
        description="top-of-book data, when the best price moves away from our order's price: keep the size "
        "ahead of it, or empty (nothing ahead: the level is deleted, as L1-only simulators do)",
    )
    risk_check: bool = Field(True, description="reject orders that could take |position| past risk.max_position")
    # accounting and recording
    initial_cash: float = Field(
        0.0, ge=0, le=1e15, description="capital for returns, quote currency; 0 = max_position x first mid"
    )
    equity_interval_s: float = Field(1.0, gt=0, le=86400, description="equity / inventory sampling interval, s")
    timer_s: float = Field(
        1.0,
        ge=0,
        le=86400,
        description="strategy timer in local time, s (0 = off); with quoting.refresh_mode = 'grid' it "
        "ticks on multiples of timer_s and of refresh_s since the epoch",
    )
    gap_s: float = Field(
        3600.0,
        gt=0,
        le=1e7,
        description="a pause in the data longer than this is a gap, s: no equity samples or timer calls across it, "
        "not counted in session_s or the time-weighted inventory",
    )
    markouts: bool = Field(
        True,
        description="record each fill's markouts (the mid 0.1 s to 60 s after it); false: NaN, a faster loop "
        "(sweeps that never read them)",
    )
    chunk_events: int = Field(1_000_000, ge=1000, le=100_000_000, description="events per compiled-loop call")
    # the venue's accounting: spot balances, USD-M funding and margin
    market: Literal["auto", "spot", "perpetual"] = Field(
        "auto",
        description="spot: base and quote balances; perpetual: funding and margin; auto: from the data "
        "(Binance USD-M / futures, tardis *-futures -> perpetual; an inverse contract -> perpetual; else spot)",
    )
    initial_base: Annotated[float, Field(ge=0, le=1e15)] | Literal["auto"] = Field(
        "auto",
        description="spot: base balance at the start, base units; auto = 100 x risk.max_position (never binds: "
        "the results of an unconstrained account)",
    )
    initial_quote: Annotated[float, Field(ge=0, le=1e15)] | Literal["auto"] = Field(
        "auto",
        description="spot: quote balance at the start, quote currency; auto = 100 x risk.max_position x the first mid",
    )
    funding_rate: float = Field(
        0.0, ge=-0.1, le=0.1, description="perpetual: constant funding rate per interval (positive: longs pay)"
    )
    funding_interval_h: float = Field(
        8.0, gt=0, le=24, description="perpetual: funding interval of funding_rate, h (times on the UTC grid)"
    )
    funding_file: str | list[str] | None = Field(
        None,
        description="perpetual: Binance fundingRate file(s): the monthly CSV / zip from data.binance.vision or "
        "the JSON of GET /fapi/v1/fundingRate",
    )
    leverage: float = Field(20.0, ge=1, le=125, description="perpetual: leverage, for the initial margin reported")
    maintenance_margin_rate: float = Field(
        0.004, ge=0, lt=1, description="perpetual: maintenance margin, fraction of the notional (liquidation)"
    )
    read_ahead: bool = Field(
        True,
        description="read a store on a thread, one row group (about 1M events) ahead of the loop (memory: two)",
    )

    @model_validator(mode="after")
    def _recorded(self) -> BacktestConfig:
        if self.latency_model == "recorded" and not self.latency_file:
            raise ValueError("latency_file: latency_model = 'recorded' needs a latency_file")
        if self.funding_file and self.funding_rate != 0.0:
            raise ValueError("funding_rate: give a constant funding_rate or a funding_file, not both")
        if self.market == "spot" and (self.funding_file or self.funding_rate != 0.0):
            raise ValueError("funding_rate / funding_file: funding applies to market = 'perpetual', not 'spot'")
        if self.market == "perpetual" and (self.initial_base != "auto" or self.initial_quote != "auto"):
            raise ValueError("initial_base / initial_quote: balances apply to market = 'spot', not 'perpetual'")
        return self

    def funding_files(self) -> list[str]:
        f = self.funding_file
        return [] if not f else [f] if isinstance(f, str) else list(f)
