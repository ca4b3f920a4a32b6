"""One signal, two runtimes: the built-ins and a user's signal compiled into the backtest loop and
into the ``Engine`` (what paper and live trading drive) give the same actions on the built-in
session.

The backtest runs with no latency and quotes too wide to fill, so what the strategy sees is the
market data, the timer and an immediate answer to each request -- which a Python driver of the
``Engine`` reproduces exactly. Compared: every order, cancel and amend (counts and sizes), the
requotes, and the core's whole signal state, its ladder and its order table at the end.
"""

import numpy as np
import pytest

from avmm.backtest.config import BacktestConfig
from avmm.backtest.runner import Backtester
from avmm.core.config import StrategyConfig
from avmm.core.engine import Engine
from avmm.core.state import ACT_AMEND, ACT_CANCEL, ACT_PLACE
from avmm.data.synth import DEFAULT_EVENTS, DEFAULT_SEED, generate
from avmm.events import QUOTE, TRADE

USER = """
from numba import njit
from avmm.core.signal_api import MICRO, MID, KIND

@njit
def signal(ts_ns, v, params, st):
    if v[KIND] == 1.0:
        st[0] = 0.9 * st[0] + 0.1 * (v[MICRO] - v[MID])
    return params[0] * st[0], 1.0, 1.0
"""


@pytest.fixture(scope="module")
def events():
    return np.concatenate(list(generate(DEFAULT_EVENTS, DEFAULT_SEED)))


def config(tmp_path) -> StrategyConfig:
    f = tmp_path / "user_signal.py"
    f.write_text(USER)
    return StrategyConfig.model_validate(
        {
            "model": {"kind": "as-rolling", "gamma": 0.1, "k": 50.0, "A": 1.0, "tau_s": 60.0},
            "quoting": {"tick": 0.01, "lot": 0.001, "size": 0.01, "refresh_s": 0.5, "min_spread": 6.0},
            "risk": {"max_position": 1.0},
            "logging": {"sample_rate": 0.0},
            "signals": {
                "file": str(f),
                "params": [2.0],
                "vamp": {"weight": 0.5},
                "imbalance": {"weight": 0.3},
                "flow": {"weight": 0.4, "window_s": 5.0},
                "candles": {"weight": 0.2, "bars": 3},
                "dyn_gamma": {"weight": 1.0, "fast_s": 10.0, "slow_s": 120.0},
            },
        }
    )


TIMER_S = 1.0


def drive_engine(e: Engine, ev: np.ndarray) -> dict:
    """The backtest's strategy side in Python: rows at their local time, the timer before a row at
    its time, each request answered at once (acks, cancel acks)."""
    acts = e.actions
    n = {"orders": 0, "cancels": 0, "amends": 0, "placed_qty": 0.0}

    def answer(k: int) -> None:
        for j in range(k):
            kind, oid = int(acts["kind"][j]), int(acts["oid"][j])
            if kind == ACT_PLACE:
                n["orders"] += 1
                n["placed_qty"] += float(acts["qty"][j])
            elif kind == ACT_CANCEL:
                n["cancels"] += 1
            elif kind == ACT_AMEND:
                n["amends"] += 1
                n["placed_qty"] += float(acts["qty"][j])
        for j in range(k):
            kind, oid = int(acts["kind"][j]), int(acts["oid"][j])
            if kind == ACT_CANCEL:
                e.on_canceled(oid)
            else:
                e.on_ack(oid)

    timer_ns = int(TIMER_S * 1e9)
    next_timer = 0
    for t, k, px, q, px2, q2, side in zip(
        ev["local_ts"].tolist(),
        ev["kind"].tolist(),
        ev["px"].tolist(),
        ev["qty"].tolist(),
        ev["px2"].tolist(),
        ev["qty2"].tolist(),
        ev["side"].tolist(),
        strict=True,
    ):
        while 0 < next_timer <= t:
            answer(e.on_timer(next_timer))
            next_timer += timer_ns
        if k == QUOTE:
            answer(e.on_quote(t, px, q, px2, q2))
        elif k == TRADE:
            answer(e.on_trade(t, px, q, side))
        if next_timer == 0:
            next_timer = t + timer_ns
    return n


def test_the_backtest_loop_and_the_engine_take_the_same_actions(tmp_path, monkeypatch, events):
    monkeypatch.setenv("AVMM_CACHE", str(tmp_path / "cache"))
    cfg = config(tmp_path)
    bt = BacktestConfig(
        feed_latency_ms=0.0, entry_latency_ms=0.0, response_latency_ms=0.0, timer_s=TIMER_S, markouts=False
    )
    b = Backtester(cfg, backtest=bt)
    b.feed(events)
    res = b.finish()
    assert res.summary["fills"] == 0  # the premise: nothing filled, every answer an ack
    bs = b.bs[0]
    e = Engine(cfg)
    n = drive_engine(e, events)
    assert n["orders"] > 1000 and n["cancels"] + n["amends"] > 1000
    assert (n["orders"], n["cancels"], n["amends"]) == (int(bs["n_orders"]), int(bs["n_cancels"]), int(bs["n_amends"]))
    assert n["placed_qty"] == pytest.approx(float(bs["placed_qty"]), rel=1e-12)
    a, z = b.mem.state[0], e.state[0]
    for name in ("n_requotes", "n_sig_calls", "n_sig_bad", "sig_shift", "sig_spread", "sig_skew", "pos"):
        assert a[name] == z[name], name
    for name in ("sig_st", "bsig_st", "sig_view", "lad_px", "lad_qty", "lad_n"):
        np.testing.assert_array_equal(a[name], z[name], err_msg=name)
    for name in e.orders.dtype.names:  # field by field: NaN equals NaN
        np.testing.assert_array_equal(b.mem.orders[name], e.orders[name], err_msg=name)
    assert z["sig_skew"] != 1.0 and z["bsig_st"].any() and z["sig_st"][0] != 0.0  # every part was at work
