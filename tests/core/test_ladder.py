"""The target ladder: rounding, post-only, spread limits, levels, sizes and the position limit."""

import math
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avmm.core.engine import Engine
from avmm.core.model import as_depths
from tests import builders

BASE = {
    "model": {"kind": "as-rolling", "gamma": 0.1, "sigma": 0.5, "k": 10.0, "A": 1.0, "tau_s": 1.0},
    "quoting": {"tick": 0.01, "lot": 0.001, "levels": 1, "size": 0.1},
    "risk": {"max_position": 1.0},
}


def make_engine(**sections) -> Engine:
    return builders.make_engine(BASE, **sections)


def quote(eng: Engine, mid=100.0, pos=0.0, bid=None, ask=None, ts=0):
    s = eng.state
    s["has_book"] = 1
    s["t0_ns"] = 0
    s["mid"] = s["micro"] = mid
    s["bid"] = bid if bid is not None else mid - 0.005
    s["ask"] = ask if ask is not None else mid + 0.005
    s["pos"] = pos
    eng.targets(ts)
    return eng.ladder()


@pytest.fixture(scope="module")
def eng():
    return make_engine()


def on_grid(px, tick):
    """px is exactly the double nearest to a multiple of tick (tick = 1/integer here)."""
    inv = round(1.0 / tick)
    return px == round(px * inv) / inv


def test_rounding_bid_down_ask_up():
    e = make_engine(model={"gamma": 0.1, "sigma": 0.5, "k": 10.0}, quoting={"post_only": False})
    lad = quote(e, mid=100.0)
    bd, ad = as_depths(0.0, 0.1, 0.5, 10.0, 1.0)
    raw_bid, raw_ask = 100.0 - bd, 100.0 + ad
    assert lad["bids"][0][0] == pytest.approx(math.floor(raw_bid / 0.01) * 0.01, abs=1e-12)
    assert lad["asks"][0][0] == pytest.approx(math.ceil(raw_ask / 0.01) * 0.01, abs=1e-12)
    assert lad["bids"][0][0] <= raw_bid and lad["asks"][0][0] >= raw_ask
    assert e.value("bid_depth") == pytest.approx(bd) and e.value("ask_depth") == pytest.approx(ad)


def test_post_only_never_crosses():
    # huge long inventory pushes the ask far below the market bid: post-only clamps it above the bid
    e = make_engine(model={"gamma": 1.0, "sigma": 2.0}, risk={"max_position": 1e9})
    lad = quote(e, mid=100.0, pos=50.0 * 0.001, bid=99.99, ask=100.01)
    assert lad["asks"][0][0] >= 99.99 + 0.01 - 1e-12
    lad = quote(e, mid=100.0, pos=-50.0 * 0.001, bid=99.99, ask=100.01)
    assert lad["bids"][0][0] <= 100.01 - 0.01 + 1e-12


def test_min_and_max_spread():
    e = make_engine(quoting={"min_spread": 1.0, "post_only": False})
    quote(e)
    assert e.value("bid_depth") + e.value("ask_depth") == pytest.approx(1.0)
    e = make_engine(quoting={"max_spread": 0.02, "post_only": False})
    quote(e, pos=0.003)
    assert e.value("bid_depth") + e.value("ask_depth") == pytest.approx(0.02)
    # the centre (reservation price) is kept
    bd, ad = as_depths(3.0, 0.1, 0.5, 10.0, 1.0)
    assert e.value("res_px") == pytest.approx(100.0 + (ad - bd) / 2)


def test_levels_spacing_in_ticks_and_fraction():
    e = make_engine(quoting={"levels": 3, "spacing_ticks": 2.0, "post_only": False})
    lad = quote(e)
    b = [p for p, _ in lad["bids"]]
    a = [p for p, _ in lad["asks"]]
    assert np.allclose(np.diff(b), -0.02) and np.allclose(np.diff(a), 0.02)
    e = make_engine(
        quoting={"levels": 3, "spacing_ticks": 0.0, "spacing_frac": 1.0, "tick": 0.0001, "post_only": False}
    )
    lad = quote(e)
    half = 0.5 * (e.value("bid_depth") + e.value("ask_depth"))
    assert lad["bids"][0][0] - lad["bids"][1][0] == pytest.approx(half, abs=2e-4)


def test_inventory_size_shaping():
    e = make_engine(quoting={"levels": 2, "size": 0.1, "size_eta": 0.01, "post_only": False})
    lad = quote(e, pos=0.05)  # q = 50 lots long: bids (which grow |q|) shrink by exp(-0.5)
    assert lad["bids"][0][1] == pytest.approx(math.floor(0.1 * math.exp(-0.5) / 0.001) * 0.001)
    assert lad["asks"][0][1] == pytest.approx(0.1)


def test_no_quote_on_side_at_the_limit():
    e = make_engine(risk={"max_position": 0.5}, quoting={"levels": 3, "size": 0.2, "post_only": False})
    lad = quote(e, pos=0.5)
    assert lad["bids"] == []
    assert len(lad["asks"]) == 3
    lad = quote(e, pos=0.15)  # room 0.35 on the bid side: 0.2 then 0.15
    assert [s for _, s in lad["bids"]] == pytest.approx([0.2, 0.15])


def test_not_quotable_without_parameters():
    e = make_engine(model={"sigma": "auto"})
    assert quote(e) == {"bids": [], "asks": []}
    assert e.value("quotable") == 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    mid=st.floats(1.0, 1e5),
    q_lots=st.floats(-2000, 2000),
    gamma=st.floats(1e-4, 5.0),
    sigma=st.floats(1e-3, 5.0),
    k=st.floats(0.1, 100.0),
    tau=st.floats(0.0, 100.0),
    levels=st.integers(1, 5),
    spread_ticks=st.integers(1, 5),
    model=st.sampled_from(["as", "as-rolling", "glft"]),
)
def test_properties(mid, q_lots, gamma, sigma, k, tau, levels, spread_ticks, model):
    tick = 0.01
    e = make_engine(
        model={
            "kind": model,
            "gamma": gamma,
            "sigma": sigma,
            "k": k,
            "A": 2.0,
            "tau_s": tau,
            "horizon_s": max(tau, 1e-3),
            "horizon_cycle": False,
        },
        quoting={"levels": levels, "size": 0.1, "spacing_ticks": 1.0},
        risk={"max_position": 1.0},
    )
    pos = q_lots * 0.001
    bid = math.floor(mid / tick) * tick
    bid = max(bid, tick)
    ask = bid + spread_ticks * tick
    m = (bid + ask) / 2
    lad = quote(e, mid=m, pos=pos, bid=bid, ask=ask)
    bids, asks = lad["bids"], lad["asks"]
    for px, sz in bids + asks:
        assert on_grid(px, tick)
        assert sz > 0 and on_grid(sz, 0.001)
    if bids and asks:
        assert bids[0][0] < asks[0][0]
    if bids:
        assert bids[0][0] <= ask - tick + 1e-9  # post-only
        assert pos + sum(s for _, s in bids) <= 1.0 + 1e-9
        assert all(b1 > b2 for (b1, _), (b2, _) in pairwise(bids))
    if asks:
        assert asks[0][0] >= bid + tick - 1e-9
        assert pos - sum(s for _, s in asks) >= -1.0 - 1e-9
        assert all(a1 < a2 for (a1, _), (a2, _) in pairwise(asks))


@settings(max_examples=100, deadline=None)
@given(
    gamma=st.floats(1e-3, 2.0),
    sigma=st.floats(1e-2, 3.0),
    tau=st.floats(1e-3, 10.0),
    model=st.sampled_from(["as", "as-rolling", "glft"]),
)
def test_reservation_price_decreases_in_q(gamma, sigma, tau, model):
    e = make_engine(
        model={
            "kind": model,
            "gamma": gamma,
            "sigma": sigma,
            "k": 5.0,
            "A": 2.0,
            "tau_s": tau,
            "horizon_s": tau,
            "horizon_cycle": False,
        },
        quoting={"post_only": False},
        risk={"max_position": 1e9},
    )
    prev = math.inf
    for q in np.linspace(-20, 20, 9):
        quote(e, pos=q * 0.001)
        r = e.value("res_px")
        assert r < prev
        prev = r
