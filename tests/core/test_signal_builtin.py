"""The built-in signals (``[signals.vamp]`` ... ``[signals.dyn_gamma]``) through the ``Engine``,
each against a NumPy computation of its formula on the same events (``core/signal_builtin.py``)."""

import numpy as np
import pytest

from avmm.core.config import StrategyConfig
from avmm.core.engine import Engine
from avmm.events import CLEAR, DEPTH

NS = 1_000_000_000
T0 = 1_700_000_000 * NS
TICK = 0.01

BASE = {
    "model": {"kind": "as-rolling", "gamma": 0.1, "sigma": 0.05, "k": 50.0, "A": 1.0, "tau_s": 60.0},
    "quoting": {"tick": TICK, "lot": 0.001, "size": 0.01, "refresh_s": 1.0},
    "risk": {"max_position": 1.0},
    "logging": {"sample_rate": 0.0},
}


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    # one compiled copy serves every built-in configuration (they are parameters, not code)
    monkeypatch.setenv("AVMM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def engine(**signals) -> Engine:
    return Engine(StrategyConfig.model_validate({**BASE, "signals": signals}))


def session(n=1500, seed=3, depth=False):
    """Quotes, trades and (with ``depth``) depth rows on a random walk: a list of events and, per
    event, the book beyond the touch as the runtime would show it."""
    rng = np.random.default_rng(seed)
    mid_t = 10_000
    t = T0
    book = [{}, {}]  # side -> {price ticks: qty}
    events = []
    for _ in range(n):
        t += int(rng.integers(1, 400_000_000))
        u = rng.random()
        if u < 0.5:
            mid_t += int(rng.integers(-2, 3))
            spread = int(rng.integers(1, 4))
            bid_t = mid_t - spread // 2 - 1
            ask_t = bid_t + spread
            events.append(("q", t, bid_t * TICK, float(rng.uniform(0.1, 5)), ask_t * TICK, float(rng.uniform(0.1, 5))))
        elif u < 0.8:
            side = 1 if rng.random() < 0.55 else -1
            px = (mid_t + side) * TICK
            events.append(("t", t, px, float(rng.exponential(0.3)) + 0.001, side))
        elif depth:
            side = 0 if rng.random() < 0.5 else 1
            off = int(rng.integers(-2, 12))  # a few stale levels at or through the touch
            p_t = mid_t - off if side == 0 else mid_t + off
            q = 0.0 if rng.random() < 0.25 else float(rng.uniform(0.1, 3))
            if q == 0.0 and book[side]:
                p_t = int(rng.choice(list(book[side])))
            if q == 0.0:
                book[side].pop(p_t, None)
            else:
                book[side][p_t] = q
            events.append(("d", t, 1 if side == 0 else -1, p_t * TICK, q))
    return events


def drive(e: Engine, events):
    """Feed the events; after each quote / trade: (shift, skew factor)."""
    out = []
    for ev in events:
        if ev[0] == "q":
            e.on_quote(ev[1], ev[2], ev[3], ev[4], ev[5])
        elif ev[0] == "t":
            e.on_trade(ev[1], ev[2], ev[3], ev[4])
        else:
            e.on_depth(DEPTH, ev[2], ev[3], ev[4])
            continue
        out.append((e.value("sig_shift"), e.value("sig_skew")))
    return np.array(out)


def _touch_and_levels(events, levels):
    """Per quote / trade event: the last quote's touch and the book's levels below it (NumPy
    arrays [n, levels] of bid px / qty and ask px / qty, NaN where unknown)."""
    book = [{}, {}]
    last = None
    rows = []
    for ev in events:
        if ev[0] == "d":
            side = 0 if ev[2] > 0 else 1
            if ev[4] == 0.0:
                book[side].pop(ev[3], None)
            else:
                book[side][ev[3]] = ev[4]
            continue
        if ev[0] == "q":
            last = ev
        bp, bq, ap, aq = (np.full(levels, np.nan) for _ in range(4))
        bp[0], bq[0], ap[0], aq[0] = last[2], last[3], last[4], last[5]
        bids = sorted((p for p in book[0] if p < last[2]), reverse=True)[: levels - 1]
        asks = sorted(p for p in book[1] if p > last[4])[: levels - 1]
        n = min(len(bids), len(asks))
        for i in range(n):
            bp[i + 1], bq[i + 1] = bids[i], book[0][bids[i]]
            ap[i + 1], aq[i + 1] = asks[i], book[1][asks[i]]
        rows.append((bp, bq, ap, aq))
    return (np.array([r[i] for r in rows]) for i in range(4))


@pytest.mark.parametrize("levels", [1, 3, 5])
def test_vamp_and_imbalance_against_numpy(levels):
    events = session(depth=True)
    bp, bq, ap, aq = _touch_and_levels(events, levels)
    mid = 0.5 * (bp[:, 0] + ap[:, 0])
    half = 0.5 * (ap[:, 0] - bp[:, 0])
    vamp = np.nansum(bp * aq + ap * bq, axis=1) / np.nansum(aq + bq, axis=1)
    imb = (np.nansum(bq, axis=1) - np.nansum(aq, axis=1)) / np.nansum(bq + aq, axis=1)
    got = drive(engine(vamp={"weight": 0.7, "levels": levels}), events)
    np.testing.assert_allclose(got[:, 0], 0.7 * (vamp - mid), rtol=1e-9, atol=1e-12)
    got = drive(engine(imbalance={"weight": -1.5, "levels": levels}), events)
    np.testing.assert_allclose(got[:, 0], -1.5 * imb * half, rtol=1e-9, atol=1e-12)
    if levels > 1:  # the data's depth changed the figures (the test is not the touch alone)
        assert np.isfinite(bp[:, 1]).mean() > 0.5


def test_the_two_combine_by_adding_their_shifts():
    events = session(depth=True)
    a = drive(engine(vamp={"weight": 0.7, "levels": 3}), events)
    b = drive(engine(imbalance={"weight": 0.4}), events)
    both = drive(engine(vamp={"weight": 0.7, "levels": 3}, imbalance={"weight": 0.4}), events)
    np.testing.assert_allclose(both[:, 0], a[:, 0] + b[:, 0], rtol=1e-9, atol=1e-12)


def test_without_depth_rows_the_levels_are_the_touch():
    events = session(depth=False)
    one = drive(engine(vamp={"weight": 1.0, "levels": 1}), events)
    five = drive(engine(vamp={"weight": 1.0, "levels": 5}), events)
    np.testing.assert_array_equal(one, five)


def test_a_cleared_book_is_empty():
    events = session(depth=True)
    e = engine(imbalance={"weight": 1.0, "levels": 5})
    drive(e, events)
    e.on_depth(CLEAR, 0, 0.0, 0.0)
    q = [ev for ev in events if ev[0] == "q"][-1]
    e.on_quote(q[1] + 1, *q[2:])
    imb = (q[3] - q[5]) / (q[3] + q[5])
    assert e.value("sig_shift") == pytest.approx(imb * 0.5 * (q[4] - q[2]))


def test_trade_flow_against_numpy():
    events = session()
    w_s = 5.0
    got = drive(engine(flow={"weight": 2.0, "window_s": w_s}), events)
    ts = np.array([ev[1] for ev in events], dtype=np.int64)
    is_t = np.array([ev[0] == "t" for ev in events])
    qty = np.array([ev[3] if ev[0] == "t" else 0.0 for ev in events])
    side = np.array([ev[4] if ev[0] == "t" else 0 for ev in events])
    last_q = [ev for ev in events if ev[0] == "q"]
    # the half spread at each event: the last quote's
    half = np.empty(len(events))
    h = np.nan
    for i, ev in enumerate(events):
        if ev[0] == "q":
            h = 0.5 * (ev[4] - ev[2])
        half[i] = h
    assert last_q
    # decayed buy and sell volumes at each event's last trade time, as a matrix of weights
    t_s = (ts - T0) / NS
    last_trade_t = np.maximum.accumulate(np.where(is_t, t_s, -np.inf))
    dt = last_trade_t[:, None] - t_s[None, :]
    wts = np.where((dt >= 0) & is_t[None, :], np.exp(-np.clip(dt, 0, None) / w_s), 0.0)
    buy = wts @ (qty * (side > 0))
    sell = wts @ (qty * (side < 0))
    tot = buy + sell
    want = np.where(tot > 0, 2.0 * (buy - sell) / np.where(tot > 0, tot, 1) * half, 0.0)
    ok = np.isfinite(half)
    np.testing.assert_allclose(got[ok, 0], want[ok], rtol=1e-6, atol=1e-9)  # times as float seconds


@pytest.mark.parametrize("bars", [1, 4])
def test_volume_candles_against_numpy(bars):
    events = session(n=3000)
    vol = 1.1
    got = drive(engine(candles={"weight": 0.5, "bars": bars, "bar_volume": vol}), events)
    qty = np.array([ev[3] if ev[0] == "t" else 0.0 for ev in events])
    px = np.array([ev[2] if ev[0] == "t" else np.nan for ev in events])
    cum = np.cumsum(qty)
    n_closed = np.floor(cum / vol + 1e-12).astype(int)  # bars closed after each event
    # bar j (1-based) closes at the first trade where the volume reaches j * vol
    close_at = np.searchsorted(cum, np.arange(1, n_closed[-1] + 1) * vol - 1e-12, side="left")
    closes = px[close_at]
    want = np.zeros(len(events))
    m = n_closed > bars
    last = closes[n_closed[m] - 1]
    first = closes[n_closed[m] - 1 - bars]
    want[m] = 0.5 * (last - first) / bars
    assert m.sum() > 50
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-9, atol=1e-12)


def test_a_tiny_bar_closes_bars_instead_of_overflowing():
    events = [("q", T0, 99.99, 1.0, 100.01, 1.0)]
    events += [("t", T0 + (i + 1) * NS, 100.0 + i * 0.01, 0.5, 1) for i in range(5)]
    got = drive(engine(candles={"weight": 1.0, "bars": 2, "bar_volume": 1e-300}), events)
    # each trade closes every bar of the ring at its price: the momentum is 0, then the step
    assert got[1:, 0].tolist() == [0.0] * 5
    assert engine_state_bars(events) > 1e18


def engine_state_bars(events):
    from avmm.core.signal_builtin import S_CANDLE_N

    e = engine(candles={"weight": 1.0, "bars": 2, "bar_volume": 1e-300})
    drive(e, events)
    return float(e.state["bsig_st"][0][S_CANDLE_N])


def test_volume_candles_sized_by_the_mean_trade():
    events = [("q", T0, 99.99, 1.0, 100.01, 1.0)]
    for i in range(30):  # equal trades of 0.5: bars of 4 trades (2.0) at bar_trades = 4
        events.append(("t", T0 + (i + 1) * NS, 100.0 + i * 0.01, 0.5, 1))
    got = drive(engine(candles={"weight": 1.0, "bars": 2, "bar_trades": 4}), events)
    # bars close at trades 4, 8, 12, ... (prices 100.03, 100.07, ...): momentum 0.04 per bar from the 3rd
    assert got[1:12, 0].tolist() == [0.0] * 11
    assert got[12:, 0] == pytest.approx(np.full(len(got) - 12, 0.04))


def test_dynamic_gamma_against_numpy():
    events = session(n=3000)
    fast, slow, w, hi = 20.0, 200.0, 1.5, 2.5
    got = drive(engine(dyn_gamma={"weight": w, "fast_s": fast, "slow_s": slow, "max_mult": hi}), events)
    qs = [(i, ev[1], 0.5 * (ev[2] + ev[4])) for i, ev in enumerate(events) if ev[0] == "q"]
    idx = np.array([q[0] for q in qs])
    tq = (np.array([q[1] for q in qs]) - T0) / NS
    mid = np.array([q[2] for q in qs])
    dm2 = np.r_[0.0, np.diff(mid) ** 2]
    # the sums of squared changes at each event, decayed from each change's time
    ev_t = (np.array([ev[1] for ev in events]) - T0) / NS
    last_q_t = np.maximum.accumulate(np.where(np.isin(np.arange(len(events)), idx), ev_t, -np.inf))
    dt = last_q_t[:, None] - tq[None, :]
    live = dt >= 0
    f = np.where(live, np.exp(-np.clip(dt, 0, None) / fast), 0) @ dm2 / fast
    s = np.where(live, np.exp(-np.clip(dt, 0, None) / slow), 0) @ dm2 / slow
    warm = (last_q_t - tq[0]) >= slow
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.where(warm & (s > 0), np.clip((f / s) ** (0.5 * w), 1 / hi, hi), 1.0)
    np.testing.assert_allclose(got[:, 1], want, rtol=1e-6)
    assert (got[:, 1] != 1.0).mean() > 0.3 and got[:, 1].min() < 1 < got[:, 1].max()


def test_the_readme_example_is_the_builtin_imbalance_written_by_hand():
    from tests.builders import REPO

    example = REPO / "examples" / "signals" / "imbalance.py"
    events = [ev for ev in session() if ev[0] != "d"]
    by_hand = drive(engine(file=str(example), params=[0.5]), events)
    builtin = drive(engine(imbalance={"weight": 1.0}), events)
    np.testing.assert_allclose(by_hand, builtin, rtol=1e-12, atol=1e-15)
    assert np.abs(builtin[:, 0]).max() > 0


@pytest.mark.parametrize(
    ("signals", "where"),
    [
        ({"dyn_gamma": {"weight": 1.0, "fast_s": 600.0, "slow_s": 60.0}}, "signals.dyn_gamma"),
        ({"vamp": {"weight": 1.0, "levels": 6}}, "signals.vamp.levels"),
        ({"flow": {"weight": 1.0, "window_s": 0}}, "signals.flow.window_s"),
        ({"candles": {"weight": 1.0, "bar_volume": -1}}, "signals.candles.bar_volume"),
        ({"imbalance": {"wieght": 1.0}}, "signals.imbalance.wieght"),
    ],
)
def test_a_bad_signal_setting_is_one_line_naming_the_key(signals, where):
    from avmm.core.config import validate_strategy
    from avmm.errors import UserError

    with pytest.raises(UserError) as e:
        validate_strategy({**BASE, "signals": signals})
    assert where in str(e.value) and "\n" not in str(e.value)


def test_a_weight_of_zero_is_no_signal_at_all():
    from avmm.core.config import to_params

    cfg = StrategyConfig.model_validate({**BASE, "signals": {"vamp": {"levels": 5}, "flow": {"window_s": 3.0}}})
    p = to_params(cfg)
    assert p["sig_on"][0] == 0 and p["bsig_on"][0] == 0 and p["sig_depth"][0] == 0
    on = to_params(StrategyConfig.model_validate({**BASE, "signals": {"vamp": {"weight": 0.1, "levels": 5}}}))
    assert on["sig_on"][0] == 1 and on["bsig_on"][0] == 1 and on["sig_depth"][0] == 4
