"""The paper gateway fills with the backtester's exchange model: driven event by event from Python
(``live.trader.replay``: the loop's merge order), the core and the matcher give the backtest's own
fills, markouts and summary, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from avmm.backtest.config import BacktestConfig
from avmm.backtest.runner import run_backtest
from avmm.core.config import StrategyConfig
from avmm.data.synth import generate
from avmm.live.trader import Trader, replay

WALL = ("wall_s", "events_per_s", "wall_s_e2e", "events_per_s_e2e")


def _events(n: int = 6000, seed: int = 3) -> np.ndarray:
    return next(generate(n, seed))


def _same_records(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    for name in a.dtype.names or ():
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def _same(a: dict, b: dict) -> None:
    for k, v in a.items():
        if k in WALL:
            continue
        assert b[k] == v or (v != v and b[k] != b[k]), k


@pytest.mark.parametrize(
    "bt",
    [
        BacktestConfig(),
        BacktestConfig(entry_latency_ms=25.0, response_latency_ms=10.0, feed_latency_ms=3.0, queue_model="prob-power"),
        BacktestConfig(latency_model="lognormal", latency_jitter=0.5, timer_s=0.25, partial_fills=False),
    ],
    ids=["default", "slow", "jitter"],
)
def test_paper_fills_equal_the_backtest_on_the_same_events(bt):
    ev = _events()
    cfg = StrategyConfig()
    res = run_backtest(ev, cfg, backtest=bt)
    tr = Trader(cfg, bt)
    s = replay(tr, ev, round(bt.feed_latency_ms * 1e6))
    f = tr.gw.rec.fills.fills()
    assert res.summary["fills"] > 0
    assert f.shape == res.fills.shape
    for name in ("ts", "oid", "side", "maker", "px", "qty", "fee", "mid", "pos"):
        np.testing.assert_array_equal(f[name], res.fills[name], err_msg=name)
    np.testing.assert_array_equal(f["mo"], res.fills["mo"])
    _same_records(tr.gw.samples(), res.samples)
    _same(res.summary, s)


def test_unhealthy_feed_cancels_everything_and_stops_quoting():
    ev = _events(3000)
    tr = Trader(StrategyConfig(), BacktestConfig())
    half = ev.shape[0] // 2
    first, rest = ev[:half], ev[half:]
    from avmm.events import QUOTE

    for r in first:  # at the same time at the venue and the strategy
        t = int(r["local_ts"])
        if r["kind"] == QUOTE:
            tr.venue_quote(t, float(r["px"]), float(r["qty"]), float(r["px2"]), float(r["qty2"]))
            tr.core_quote(t, float(r["px"]), float(r["qty"]), float(r["px2"]), float(r["qty2"]))
    t = int(first["local_ts"][-1])
    tr.tick(t + 50_000_000)
    assert tr.orders(), "quoting before"
    sent = int(tr.bs["n_orders"][0])
    tr.set_health(t + 50_000_000, False, "stale: bookTicker")
    tr.tick(t + 100_000_000)
    assert tr.orders() == []
    for r in rest[:500]:
        if r["kind"] == QUOTE:
            tt = int(r["local_ts"])
            tr.venue_quote(tt, float(r["px"]), float(r["qty"]), float(r["px2"]), float(r["qty2"]))
            tr.core_quote(tt, float(r["px"]), float(r["qty"]), float(r["px2"]), float(r["qty2"]))
    assert tr.orders() == [] and int(tr.bs["n_orders"][0]) == sent
    tr.set_health(int(rest["local_ts"][500]), True, "ok")
    for r in rest[500:1000]:
        if r["kind"] == QUOTE:
            tt = int(r["local_ts"])
            tr.venue_quote(tt, float(r["px"]), float(r["qty"]), float(r["px2"]), float(r["qty2"]))
            tr.core_quote(tt, float(r["px"]), float(r["qty"]), float(r["px2"]), float(r["qty2"]))
    assert tr.orders() and int(tr.bs["n_orders"][0]) > sent


def test_a_crossed_book_cancels_everything():
    ev = _events(2000)
    tr = Trader(StrategyConfig(), BacktestConfig())
    from avmm.events import QUOTE

    t = 0
    for r in ev[:1000]:
        t = int(r["local_ts"])
        if r["kind"] == QUOTE:
            tr.venue_quote(t, float(r["px"]), float(r["qty"]), float(r["px2"]), float(r["qty2"]))
            tr.core_quote(t, float(r["px"]), float(r["qty"]), float(r["px2"]), float(r["qty2"]))
    tr.tick(t + 50_000_000)
    assert tr.orders()
    tr.core_quote(t + 60_000_000, 101.0, 1.0, 100.0, 1.0)
    tr.tick(t + 200_000_000)
    assert tr.orders() == [] and tr.n_halts == 1


def test_the_journal_holds_every_action_response_and_fill_and_reports_the_runs_summary(tmp_path):
    from avmm.cli.paper import journal_result
    from avmm.live.journal import Journal, load_journal

    ev = _events(4000)
    cfg, bt = StrategyConfig(), BacktestConfig()
    meta = {"venue": "binance-spot", "config": {**cfg.model_dump(mode="json"), "backtest": bt.model_dump(mode="json")}}
    j = Journal(tmp_path / "j.db", meta)
    tr = Trader(cfg, bt, journal=j, meta={"market": "spot"})
    s = replay(tr, ev)
    j.close()
    d = load_journal(tmp_path / "j.db")
    b = tr.bs[0]
    assert d.counts["actions"] == int(b["n_orders"] + b["n_cancels"] + b["n_amends"]) > 0
    # every request is answered (an ack, reject or cancel; fills besides), and every fill is there
    assert d.counts["responses"] >= d.counts["actions"] - int(b["n_cancel_unknown"])
    assert d.counts["fills"] == s["fills"] > 0
    _same_records(d.fills, tr.gw.rec.fills.fills())
    _same_records(d.samples, tr.gw.samples())
    res = journal_result(tmp_path / "j.db")
    _same(s, res.summary)
