"""The requote rules as options: each on a scripted sequence, against today's default."""

import numpy as np
import pytest

from avmm.core.engine import Engine
from tests.builders import make_engine

NS = 1_000_000_000
MS = 1_000_000
T0 = 1_700_000_000 * NS  # a multiple of every grid used here
BASE = {
    "model": {"kind": "as-rolling", "gamma": 0.1, "sigma": 0.05, "k": 50.0, "A": 1.0, "tau_s": 60.0},
    "quoting": {"tick": 0.01, "lot": 0.001, "levels": 1, "size": 0.01, "refresh_s": 2.0, "mid_tolerance": 0.001},
    "risk": {"max_position": 1.0},
    "logging": {"sample_rate": 0.0},
}


def engine(quoting=None, estimators=None, model=None) -> Engine:
    return make_engine(BASE, quoting=quoting or {}, estimators=estimators or {}, model=model or {})


def ack_all(e: Engine, n: int) -> list[dict]:
    acts = e.action_list(n)
    for a in acts:
        if a["action"] == "cancel":
            e.on_canceled(a["oid"])
        else:
            e.on_ack(a["oid"])
    return acts


def started(quoting=None, **kw) -> tuple[Engine, list[dict]]:
    e = engine(quoting, **kw)
    return e, ack_all(e, e.on_quote(T0, 99.99, 1.0, 100.01, 1.0))


# --- fill_requote -------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["now", "refresh"])
def test_fill_requote(rule):
    e, acts = started({"fill_requote": rule})
    bid = next(a for a in acts if a["side"] == "bid")
    req = e.value("n_requotes")
    n = e.on_fill(T0 + MS, bid["oid"], 1, bid["px"], bid["qty"], 0.0)
    if rule == "now":
        assert e.value("n_requotes") == req + 1 and any(a["action"] == "place" for a in e.action_list(n))
        return
    assert n == 0 and e.value("n_requotes") == req
    # the position changed, but that is no trigger of its own: the next quote event does nothing
    assert e.on_quote(T0 + 2 * MS, 99.99, 1.0, 100.01, 1.0) == 0
    assert e.value("n_requotes") == req
    # the refresh requotes, and the replaced bid is there
    n = e.on_quote(T0 + 2 * NS, 99.99, 1.0, 100.01, 1.0)
    assert e.value("n_requotes") == req + 1
    assert any(a["action"] == "place" and a["side"] == "bid" for a in e.action_list(n))


# --- reject_requote -----------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["now", "refresh"])
def test_reject_requote(rule):
    e = engine({"reject_requote": rule})
    acts = e.action_list(e.on_quote(T0, 99.99, 1.0, 100.01, 1.0))
    e.on_ack(acts[0]["oid"])
    e.on_reject(acts[1]["oid"])
    assert e.value("n_rejects") == 1
    n = e.on_quote(T0 + MS, 99.99, 1.0, 100.01, 1.0)
    if rule == "now":
        assert [a["side"] for a in e.action_list(n)] == [acts[1]["side"]]
        return
    assert n == 0 and e.value("dirty") == 0
    n = e.on_timer(T0 + 2 * NS)
    assert [(a["action"], a["side"]) for a in e.action_list(n)] == [("place", acts[1]["side"])]


def test_an_unsolicited_cancel_still_requotes_with_reject_requote_refresh():
    e, acts = started({"reject_requote": "refresh", "fill_requote": "refresh"})
    e.on_canceled(acts[0]["oid"])  # the venue cancelled it (e.g. expiry): not a rule option
    n = e.on_quote(T0 + MS, 99.99, 1.0, 100.01, 1.0)
    assert [a["side"] for a in e.action_list(n)] == [acts[0]["side"]]


# --- refresh_mode -------------------------------------------------------------------------------


def requote_times(e: Engine, times: list[int]) -> list[int]:
    out = []
    for t in times:
        before = e.value("n_requotes")
        ack_all(e, e.on_quote(t, 99.99, 1.0, 100.01, 1.0))
        if e.value("n_requotes") != before:
            out.append(t)
    return out


def test_refresh_interval_counts_from_the_last_quote():
    e = engine({"refresh_s": 1.0})
    ts = [T0 + 300 * MS, T0 + 1200 * MS, T0 + 1400 * MS, T0 + 2100 * MS, T0 + 2350 * MS, T0 + 3050 * MS]
    # quotes at 0.3 s, then the first event >= 1.3 s, then the first >= 2.4 s
    assert requote_times(e, ts) == [T0 + 300 * MS, T0 + 1400 * MS, T0 + 3050 * MS]


def test_refresh_grid_requotes_at_the_first_event_past_each_grid_time():
    e = engine({"refresh_s": 1.0, "refresh_mode": "grid"})
    ts = [T0 + 300 * MS, T0 + 1200 * MS, T0 + 1400 * MS, T0 + 2100 * MS, T0 + 2350 * MS, T0 + 3050 * MS]
    assert requote_times(e, ts) == [T0 + 300 * MS, T0 + 1200 * MS, T0 + 2100 * MS, T0 + 3050 * MS]
    assert e.value("next_refresh_ns") == T0 + 4 * NS


def test_refresh_grid_is_not_moved_by_other_triggers():
    e = engine({"refresh_s": 1.0, "refresh_mode": "grid"})
    ack_all(e, e.on_quote(T0 + 100 * MS, 99.99, 1.0, 100.01, 1.0))
    ack_all(e, e.on_quote(T0 + 500 * MS, 100.49, 1.0, 100.51, 1.0))  # a mid move requotes off-grid
    assert e.value("next_refresh_ns") == T0 + NS
    before = e.value("n_requotes")
    e.on_timer(T0 + NS)
    assert e.value("n_requotes") == before + 1


# --- touch --------------------------------------------------------------------------------------


def best_quotes(touch: str, behind_ticks: float = 1.0) -> tuple[float, float]:
    # a wide book and a tight model: the model's quotes are inside the spread
    e = make_engine(
        BASE,
        quoting={"touch": touch, "behind_ticks": behind_ticks},
        model={"sigma": 0.001, "k": 1000.0, "gamma": 0.01},
    )
    acts = e.action_list(e.on_quote(T0, 99.90, 1.0, 100.10, 1.0))
    bid = next(a["px"] for a in acts if a["side"] == "bid")
    ask = next(a["px"] for a in acts if a["side"] == "ask")
    return bid, ask


def test_touch_improve_quotes_inside_the_spread():
    bid, ask = best_quotes("improve")
    assert 99.90 < bid < ask < 100.10


def test_touch_join_never_better_than_our_sides_best():
    assert best_quotes("join") == pytest.approx((99.90, 100.10))


def test_touch_behind_keeps_behind_ticks_back():
    assert best_quotes("behind", 2) == pytest.approx((99.88, 100.12))
    assert best_quotes("behind", 0) == pytest.approx((99.90, 100.10))


def test_touch_join_leaves_quotes_deeper_than_the_touch_alone():
    e = make_engine(BASE, quoting={"touch": "join"}, model={"sigma": 0.5, "k": 5.0, "gamma": 0.1})
    acts = e.action_list(e.on_quote(T0, 99.99, 1.0, 100.01, 1.0))
    bid = next(a["px"] for a in acts if a["side"] == "bid")
    ask = next(a["px"] for a in acts if a["side"] == "ask")
    assert bid < 99.99 and ask > 100.01


# --- sigma_interval_s ---------------------------------------------------------------------------


def feed_mids(e: Engine, times_mids) -> None:
    for t, m in times_mids:
        e.on_quote(t, m - 0.01, 1.0, m + 0.01, 1.0)


def test_sigma_every_event_by_default():
    e = engine(model={"sigma": "auto"}, estimators={"vol_min_obs": 1})
    feed_mids(e, [(T0 + i * 10 * MS, 100.0 + 0.01 * (i % 2)) for i in range(20)])
    assert e.value("vol_nobs") == 19


def test_sigma_interval_samples_the_mid_on_its_grid():
    e = engine(model={"sigma": "auto"}, estimators={"vol_min_obs": 1, "sigma_interval_s": 0.1})
    # 20 events 10 ms apart alternating the mid: the grid (every 100 ms) sees the mid at
    # T0, T0 + 100 ms, ... -- always the same phase of the alternation, so no change at all
    feed_mids(e, [(T0 + i * 10 * MS, 100.0 + 0.01 * (i % 2)) for i in range(20)])
    assert e.value("vol_nobs") == 0
    assert e.value("vol_next_ns") == T0 + 200 * MS


def test_sigma_interval_matches_a_numpy_ewma_on_the_grid():
    rng = np.random.default_rng(3)
    hl = 30.0
    e = engine(model={"sigma": "auto"}, estimators={"vol_min_obs": 1, "sigma_interval_s": 0.1, "vol_halflife_s": hl})
    mids = 30000.0 + np.cumsum(rng.integers(-3, 4, 500)) * 0.1
    # the first quote on a grid time, then one quote every 100 ms stamped 1 ms after the grid time;
    # the timer on the grid samples the mid as it stands there
    e.on_quote(T0, mids[0] - 0.05, 1.0, mids[0] + 0.05, 1.0)
    grid_mids = [e.value("mid")]
    for i, m in enumerate(mids[1:], start=1):
        g = T0 + i * 100 * MS
        e.on_timer(g)
        grid_mids.append(e.value("mid"))
        e.on_quote(g + MS, m - 0.05, 1.0, m + 0.05, 1.0)
    # reference: S = w S + dmid^2, T = w T + dt on the grid
    dm = np.diff(np.array(grid_mids))
    w = 0.5 ** (0.1 / hl)
    S = T = 0.0
    for d in dm:
        S = w * S + d * d
        T = w * T + 0.1
    assert e.value("vol_var") == pytest.approx(S / T, rel=1e-9)
