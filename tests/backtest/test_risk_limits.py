"""The core's risk limits in the runtimes: the backtest loop and the paper trader (``Trader`` driven
event by event, the loop's merge order) give the same fills and figures with each limit binding --
one core; what each does through the exchange model (halt, reduce-only, flatten's taker orders, the
orders budget over a long run); the kill switch and resume of the trader."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from avmm.backtest.runner import Backtester, _strategy_only
from avmm.config import load_config
from avmm.core.state import RATE_WINDOW_NS
from avmm.data.synth import generate
from avmm.events import QUOTE, TRADE
from avmm.live.trader import Trader, replay

NS = 1_000_000_000
WALL = ("wall_s", "events_per_s", "wall_s_e2e", "events_per_s_e2e")


@pytest.fixture(scope="module")
def ev() -> np.ndarray:
    """20,000 synthetic events over ~28 min; the defaults lose ~0.2 (fees) steadily over them."""
    return next(generate(20_000, 3))


def both(ev: np.ndarray, sets: list[str]) -> tuple[Backtester, dict, Trader, dict]:
    cfg = load_config(None, sets)
    bt = Backtester(cfg)
    bt.feed(ev)
    res = bt.finish()
    tr = Trader(_strategy_only(cfg), cfg.backtest)
    s = replay(tr, ev)
    return bt, res, tr, s


def same(bt_res, tr: Trader, s: dict) -> None:
    f = tr.gw.rec.fills.fills()
    assert f.tobytes() == bt_res.fills.tobytes()
    assert tr.gw.samples().tobytes() == bt_res.samples.tobytes()
    for k, v in bt_res.summary.items():
        if k not in WALL:
            assert s[k] == v or (v != v and s[k] != s[k]), k


LIMITS = {
    "loss-halt": ["risk.max_loss=0.1"],
    "loss-reduce": ["risk.max_loss=0.1", 'risk.on_limit="reduce"'],
    "loss-flatten": ["risk.max_loss=0.1", 'risk.on_limit="flatten"'],
    "loss-day": ["risk.max_loss_day=0.1"],
    "orders-budget": ["risk.max_orders_per_10s=12", "quoting.mid_tolerance=0", "quoting.refresh_s=0.3"],
    "notional": ["quoting.size=0.005", "risk.max_order_notional=0.25"],
}


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_each_limit_binds_the_same_in_the_backtest_and_the_paper_trader(ev, name):
    bt, res, tr, s = both(ev, LIMITS[name])
    same(res, tr, s)
    sm = res.summary
    st = bt.mem.state[0]
    fills = res.fills
    after = fills[fills["ts"] > int(st["limit_ns"]) + NS] if st["limit_ns"] else fills[:0]
    if name.startswith("loss"):
        key = "risk_loss_day_breaches" if name == "loss-day" else "risk_loss_breaches"
        assert sm[key] == 1
        assert sm["pnl_net"] < -0.1 + 0.01  # it bound at about -0.1 (the core's view: fees and marks)
        assert 0 < int(st["limit_ns"]) - int(ev["local_ts"][0]) < int(ev["local_ts"][-1] - ev["local_ts"][0])
    if name in ("loss-halt", "loss-day"):
        assert sm["risk_halted"] and sm["risk_halts"] == 1 and len(after) == 0
        assert sm["risk_reason"] == ("halted: max_loss_day" if name == "loss-day" else "halted: max_loss")
    elif name == "loss-reduce":
        assert sm["risk_reduce_only"] and not sm["risk_halted"]
        assert (np.diff(np.abs(after["pos"])) <= 1e-12).all()  # |position| never grows again
        assert len(after) > 0 and abs(sm["position"]) < 1e-12  # (on these events: the reducing orders filled)
    elif name == "loss-flatten":
        assert sm["risk_halted"] and sm["risk_flatten_orders"] >= 1
        assert sm["taker_fills"] >= 1 and (after["maker"] == 0).all()
        assert abs(sm["position"]) < 1e-9  # flat through the exchange model (post-only is on)
    elif name == "orders-budget":
        assert sm["risk_rate_waits"] > 0
    elif name == "notional":
        assert sm["risk_notional_cuts"] > 0
        assert fills["qty"].max() == pytest.approx(0.002)  # 0.25 / ~100, floored to the lot


def test_the_orders_budget_is_never_exceeded_over_a_long_run(ev):
    """Every place and amend the paper trader sends (the backtest's own, shown equal above),
    counted in every 10 s window."""
    for amend in ("false", "true"):
        sets = ["risk.max_orders_per_10s=12", "quoting.mid_tolerance=0", "quoting.refresh_s=0.3"]
        sets += ["quoting.levels=3", f"quoting.amend={amend}", "backtest.timer_s=0.1"]
        cfg = load_config(None, sets)
        tr = Trader(_strategy_only(cfg), cfg.backtest)
        sent: list[int] = []
        send = tr.gw.send

        def record(t: int, a: np.ndarray, n: int, send: Callable = send, sent: list[int] = sent) -> None:
            sent.extend([t] * int((a["kind"][:n] != 2).sum()))
            send(t, a, n)

        tr.gw.send = record  # type: ignore[method-assign]
        s = replay(tr, ev)
        ts = np.array(sent)
        assert s["risk_rate_waits"] > 0 and len(ts) == s["orders"] + s["amends"]
        within = np.searchsorted(ts, ts + RATE_WINDOW_NS, side="left") - np.arange(len(ts))
        assert within.max() == 12, amend


def drive(tr: Trader, ev: np.ndarray, at: int, fn: Callable[[int], None]) -> dict:
    """``replay`` (no feed latency), calling ``fn(t)`` once before the strategy's row ``at``."""
    n = ev.shape[0]
    exch, loc = ev["exch_ts"].astype(np.int64), ev["local_ts"].astype(np.int64)
    ie = il = 0
    clock = -(1 << 62)
    while ie < n or il < n:
        te = max(int(exch[ie]), clock) if ie < n else 1 << 62
        tl = int(loc[il]) if il < n else 1 << 62
        r = ev[ie] if te <= tl else ev[il]
        args = (float(r["px"]), float(r["qty"]), float(r["px2"]), float(r["qty2"]))
        if te <= tl:
            clock = te
            if r["kind"] == QUOTE:
                tr.venue_quote(te, *args)
            elif r["kind"] == TRADE:
                tr.venue_trade(te, args[0], args[1], int(r["side"]))
            ie += 1
        else:
            if il == at:
                fn(tl)
            if r["kind"] == QUOTE:
                tr.core_quote(tl, *args)
            elif r["kind"] == TRADE:
                tr.core_trade(tl, args[0], args[1], int(r["side"]))
            il += 1
    tr.next_timer = 0
    tr.gw.advance(1 << 62, True)
    return tr.finish()


def test_kill_with_flatten_brings_the_position_to_zero_then_resume_quotes_again(ev):
    cfg = load_config(None, ["quoting.size=0.003"])
    strat = _strategy_only(cfg)
    # where the position is far from 0
    probe = Trader(strat, cfg.backtest)
    replay(probe, ev)
    pos = probe.gw.rec.fills.fills()["pos"]
    at = int(np.argmax(np.abs(pos) >= 0.006))
    t_at = int(probe.gw.rec.fills.fills()["ts"][at])
    i_kill = int(np.searchsorted(ev["local_ts"], t_at + NS))
    i_resume = i_kill + 3000
    tr = Trader(strat, cfg.backtest)
    marks: dict[str, int] = {}

    def kill(t: int) -> None:
        marks["pos"] = round(float(tr.bs["pos"][0]) / 0.001)
        marks["t"] = t
        tr.kill(t, flatten=True)

    n = ev.shape[0]
    s = drive(tr, ev[:i_resume], i_kill, kill)
    assert abs(marks["pos"]) >= 3
    assert s["risk_halted"] and s["risk_reason"] == "halted: kill" and s["risk_flatten_orders"] >= 1
    assert abs(s["position"]) < 1e-9 and s["taker_fills"] >= 1
    f = tr.gw.rec.fills.fills()
    assert (f["maker"][f["ts"] > marks["t"] + NS] == 0).all()  # nothing quoted after the kill
    # resume: quoting again on the rest of the events
    tr2 = Trader(strat, cfg.backtest)
    s2 = drive(tr2, ev, i_kill, lambda t: tr2.kill(t, flatten=True))
    assert s2["risk_halted"]
    tr3 = Trader(strat, cfg.backtest)

    def kill_then_resume(t: int) -> None:
        tr3.kill(t)
        tr3.resume(t + 1)

    s3 = drive(tr3, ev, n // 2, kill_then_resume)
    assert not s3["risk_halted"] and s3["risk_halts"] == 1
    assert s3["fills"] > s2["fills"]
