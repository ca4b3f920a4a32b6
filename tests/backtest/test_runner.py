"""`run_backtest` / `Backtester` (`avmm.backtest.runner`): chunking and determinism, the empty
session, the inventory limit on random streams (hypothesis), the real data samples end to end."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avmm.backtest.runner import run_backtest
from avmm.config import load_config
from avmm.core.config import max_position_of
from avmm.data.synth import generate
from avmm.events import QUOTE, TRADE, empty
from tests.builders import Q, stream
from tests.builders import bt_config as cfg


def test_chunking_does_not_change_results():
    ev = np.concatenate(list(generate(30_000, 3, quote_rate=200.0, trade_rate=50.0)))
    c = load_config(None, ["backtest.chunk_events=1000"])
    a = run_backtest(ev, c)
    b = run_backtest(ev, load_config(None, ["backtest.chunk_events=100000"]))
    assert a.fills.tobytes() == b.fills.tobytes()
    assert a.samples.tobytes() == b.samples.tobytes()
    assert a.summary["fills"] > 0


def test_same_input_bit_identical_output():
    ev = np.concatenate(list(generate(40_000, 5, quote_rate=200.0, trade_rate=50.0)))
    c = load_config(None, ['backtest.latency_model="lognormal"'])
    a, b = run_backtest(ev, c), run_backtest(ev, c)
    assert a.fills.tobytes() == b.fills.tobytes()
    assert a.samples.tobytes() == b.samples.tobytes()
    skip = {"wall_s", "events_per_s", "wall_s_e2e", "events_per_s_e2e"}
    assert {k: v for k, v in a.summary.items() if k not in skip} == {
        k: v for k, v in b.summary.items() if k not in skip
    }


def test_empty_session_and_single_final_sample():
    assert run_backtest(empty(0), cfg()).summary["session_s"] == 0.0
    # the last event on the sampling grid (1 s): one sample per grid time, none repeated
    r = run_backtest(stream(Q(0, 99.99, 5.0, 100.01, 5.0), Q(2000, 99.99, 5.0, 100.01, 5.0)), cfg())
    assert len(np.unique(r.samples["ts"])) == len(r.samples)


def random_stream(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ev = empty(n)
    dt = rng.exponential(5e6, n).astype(np.int64) + 1
    ts = 1_700_000_000_000_000_000 + np.cumsum(dt)
    feed = rng.integers(0, 3_000_000, n)
    local = np.maximum.accumulate(ts + feed)
    mid = 10_000 + np.cumsum(rng.integers(-2, 3, n))
    half = rng.integers(1, 3, n)
    is_trade = rng.random(n) < 0.4
    side = np.where(rng.random(n) < 0.5, 1, -1)
    reach = rng.integers(0, 4, n)
    ev["exch_ts"] = ts
    ev["local_ts"] = local
    ev["kind"] = np.where(is_trade, TRADE, QUOTE)
    ev["px"] = np.where(is_trade, (mid + side * (half + reach)) * 0.01, (mid - half) * 0.01)
    ev["qty"] = np.where(is_trade, rng.integers(1, 6, n), rng.integers(1, 10, n)).astype(float)
    ev["px2"] = np.where(is_trade, 0.0, (mid + half) * 0.01)
    ev["qty2"] = np.where(is_trade, 0.0, rng.integers(1, 10, n)).astype(float)
    ev["side"] = np.where(is_trade, side, 0)
    return ev


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    max_pos=st.integers(1, 4),
    levels=st.integers(1, 3),
    entry=st.sampled_from([0.0, 0.5, 3.0, 20.0]),
    resp=st.sampled_from([0.0, 1.0, 10.0]),
    model=st.sampled_from(["constant", "lognormal"]),
    queue=st.sampled_from(["risk-averse", "prob-power", "prob-log"]),
    amend=st.booleans(),
    post_only=st.booleans(),
)
def test_inventory_never_exceeds_limit(seed, max_pos, levels, entry, resp, model, queue, amend, post_only):
    cfg = load_config(
        None,
        [
            "model.sigma=0.01",
            "model.A=1.0",
            "model.k=50.0",
            "model.gamma=0.01",
            "quoting.tick=0.01",
            "quoting.lot=1.0",
            "quoting.size=1.0",
            f"quoting.levels={levels}",
            "quoting.refresh_s=0.05",
            f"quoting.amend={str(amend).lower()}",
            f"quoting.post_only={str(post_only).lower()}",
            "quoting.mid_tolerance=0.0001",
            f"risk.max_position={max_pos}.0",
            f"backtest.entry_latency_ms={entry}",
            f"backtest.response_latency_ms={resp}",
            f'backtest.latency_model="{model}"',
            f'backtest.queue_model="{queue}"',
            "backtest.timer_s=0.1",
            "backtest.equity_interval_s=0.01",
        ],
    )
    r = run_backtest(random_stream(seed, 400), cfg)
    s = r.summary
    assert s["max_abs_position"] <= max_pos + 1e-9
    assert np.all(np.abs(r.samples["pos"]) <= max_pos + 1e-9)
    assert np.all(np.abs(r.fills["pos"]) <= max_pos + 1e-9)
    # the strategy's own view agrees with the exchange once every response has arrived
    assert s["position"] == pytest.approx(np.sum(r.fills["side"] * r.fills["qty"]))


SAMPLES = {
    "binance_ws": ("binance_ws_capture", ["usdm_btcusdt_20240718.gz", "usdm_btcusdt_20240719.gz"]),
    "binance_spot": ("binance_ws_capture", ["spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"]),
    "binance_usdm_0808": ("binance_ws_capture", ["usdm_btcusdt_20240808.gz"]),
    "tardis": ("tardis_binance-futures_btcusdt_2020-02-22", None),
    "lobster": ("lobster_amzn_2012-06-21_level1", None),
}
MARKETS = {
    "binance_ws": "perpetual",
    "binance_usdm_0808": "perpetual",
    "binance_spot": "spot",
    "tardis": "perpetual",
    "lobster": "spot",
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_real_samples_end_to_end(name, tmp_path, shared_data):
    folder, files = SAMPLES[name]
    src = shared_data / folder
    if not src.is_dir():
        pytest.skip(f"shared data not found at {src}")
    convert = pytest.importorskip("avmm.data.convert")
    if files is None:
        sources = sorted(p for p in src.iterdir() if p.suffix in (".csv", ".gz"))
    else:
        sources = [src / f for f in files]
    out = tmp_path / f"{name}.parquet"
    convert.convert(sources, out)
    r = run_backtest(out, load_config(None, ["backtest.chunk_events=50000"]))
    s = r.summary
    assert s["events"] > 1000
    assert s["quotes"] > 0
    assert s["orders"] > 0
    assert s["overflows"] == 0
    assert np.isfinite(s["pnl_net"])
    # the defaults fit the market: quotes near the touch, both sides filled, within the limit
    assert s["quote_distance_ticks"] <= max(3.0, s["market_spread_ticks"])
    assert s["fills_bid"] >= 20 and s["fills_ask"] >= 20
    assert s["max_abs_position"] <= max_position_of(r.config) + 1e-9
    # the market from the data; its accounting changes nothing by default: the same run on the
    # other market (spot balances checked or not) is the same, bit for bit
    assert s["market"] == MARKETS[name]
    assert s["rejects_balance"] == 0
    other = "spot" if s["market"] == "perpetual" else "perpetual"
    r2 = run_backtest(out, load_config(None, ["backtest.chunk_events=50000", f'backtest.market="{other}"']))
    assert r2.fills.tobytes() == r.fills.tobytes()
    assert r2.samples.tobytes() == r.samples.tobytes()
    if s["market"] == "perpetual":  # funding moves the net PnL by the payments, nothing else
        sets = ["backtest.chunk_events=50000", "backtest.funding_rate=0.001", "backtest.funding_interval_h=0.01"]
        r3 = run_backtest(out, load_config(None, sets))
        assert r3.fills.tobytes() == r.fills.tobytes()
        assert r3.summary["pnl_net"] - s["pnl_net"] == pytest.approx(r3.summary["funding"], rel=1e-9, abs=1e-12)
        assert (r3.summary["funding"] != 0.0) == (r3.summary["funding_payments"] > 0)


def test_sections_are_passed_explicitly_and_the_result_echoes_the_one_run():
    """A runtime receives its sections: ``backtest=`` wins over a whole-file config's own
    ``[backtest]``, and the result's config holds only the strategy's sections."""
    import pytest

    from avmm.backtest.config import BacktestConfig
    from avmm.backtest.runner import run_backtest
    from avmm.config import load_config
    from avmm.core.config import StrategyConfig
    from avmm.data.synth import generate

    ev = next(generate(5_000, 3))
    whole = load_config(None, ["backtest.maker_fee=0.001"])
    explicit = BacktestConfig(maker_fee=0.0002)
    res = run_backtest(ev, whole, backtest=explicit)
    assert type(res.config) is StrategyConfig
    assert res.backtest.maker_fee == 0.0002
    assert res.config_dict()["backtest"]["maker_fee"] == 0.0002
    # the whole file alone: its [backtest] section is the one run
    assert run_backtest(ev, whole).backtest.maker_fee == 0.001
    with pytest.raises(TypeError):
        run_backtest(ev, whole, lambda done, total: None)  # type: ignore[misc]
    with pytest.raises(TypeError, match="BacktestConfig"):
        run_backtest(ev, whole, backtest=whole)  # type: ignore[arg-type]
