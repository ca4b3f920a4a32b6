"""The market maker's decisions on scripted event sequences."""

import math

import numpy as np
import pytest

from avmm.core.engine import Engine
from avmm.core.state import OS_FREE, OS_LIVE, OS_PENDING_CANCEL
from tests.builders import make_engine

NS = 1_000_000_000
T0 = 1_700_000_000 * NS
BASE = {
    "model": {"kind": "as-rolling", "gamma": 0.1, "sigma": 0.05, "k": 50.0, "A": 1.0, "tau_s": 60.0},
    "quoting": {"tick": 0.01, "lot": 0.001, "levels": 1, "size": 0.01, "refresh_s": 2.0, "mid_tolerance": 0.001},
    "risk": {"max_position": 1.0},
    "logging": {"sample_rate": 0.0},
}


def engine(**quoting) -> Engine:
    return make_engine(BASE, quoting=quoting)


def ack_all(e: Engine, n: int):
    for a in e.action_list(n):
        if a["action"] == "cancel":
            e.on_canceled(a["oid"])
        else:
            e.on_ack(a["oid"])


def kinds(e: Engine, n: int):
    return sorted((a["action"], a["side"]) for a in e.action_list(n))


def test_first_quote_places_both_sides_then_nothing_until_a_trigger():
    e = engine()
    n = e.on_quote(T0, 99.99, 1.0, 100.01, 1.0)
    assert kinds(e, n) == [("place", "ask"), ("place", "bid")]
    ack_all(e, n)
    assert (e.orders["status"][:2] == OS_LIVE).all()
    req = e.value("n_requotes")
    # same book 0.5 s later: no trigger, no work
    assert e.on_quote(T0 + NS // 2, 99.99, 2.0, 100.01, 2.0) == 0
    assert e.value("n_requotes") == req
    # a mid move smaller than 0.1 %: still nothing
    assert e.on_quote(T0 + NS, 100.00, 1.0, 100.02, 1.0) == 0
    assert e.value("n_requotes") == req


def test_refresh_interval_requotes_and_keeps_orders_on_target():
    e = engine()
    ack_all(e, e.on_quote(T0, 99.99, 1.0, 100.01, 1.0))
    req = e.value("n_requotes")
    n = e.on_quote(T0 + 2 * NS, 99.99, 1.0, 100.01, 1.0)
    assert e.value("n_requotes") == req + 1
    assert n == 0  # targets unchanged: keep both orders


def test_mid_move_beyond_tolerance_replaces_orders():
    e = engine()
    ack_all(e, e.on_quote(T0, 99.99, 1.0, 100.01, 1.0))
    n = e.on_quote(T0 + NS, 100.19, 1.0, 100.21, 1.0)  # +0.2 %
    assert kinds(e, n) == [("cancel", "ask"), ("cancel", "bid"), ("place", "ask"), ("place", "bid")]
    assert (e.orders["status"][:2] == OS_PENDING_CANCEL).all()
    bids = [a for a in e.action_list(n) if a["action"] == "place" and a["side"] == "bid"]
    assert bids[0]["px"] < 100.19 + 1e-9


def test_amend_mode_amends_instead_of_cancel_replace():
    e = engine(amend=True)
    ack_all(e, e.on_quote(T0, 99.99, 1.0, 100.01, 1.0))
    n = e.on_quote(T0 + NS, 100.19, 1.0, 100.21, 1.0)
    assert kinds(e, n) == [("amend", "ask"), ("amend", "bid")]


def test_fill_changes_inventory_and_requotes_at_once():
    e = engine()
    n = e.on_quote(T0, 99.99, 1.0, 100.01, 1.0)
    ack_all(e, n)
    bid = next(a for a in e.action_list(n) if a["side"] == "bid")
    n = e.on_fill(T0 + 1000, bid["oid"], 1, bid["px"], bid["qty"], 0.0001)
    assert e.value("pos") == pytest.approx(0.01)
    assert e.value("cash") == pytest.approx(-bid["px"] * 0.01 - 0.0001)
    assert e.value("fees") == pytest.approx(0.0001)
    assert e.value("n_fills") == 1
    # the filled bid is replaced (lower: long inventory skews quotes down)
    acts = e.action_list(n)
    new_bid = [a for a in acts if a["action"] == "place" and a["side"] == "bid"]
    assert new_bid and new_bid[0]["px"] <= bid["px"]


def test_partial_fill_within_size_tolerance_keeps_the_order():
    e = engine(size=0.1, size_tolerance=0.25)
    e.params["q_unit"] = 1e9  # no inventory skew: only the size changes
    n = e.on_quote(T0, 99.99, 1.0, 100.01, 1.0)
    ack_all(e, n)
    ask = next(a for a in e.action_list(n) if a["side"] == "ask")
    n = e.on_fill(T0 + 1000, ask["oid"], -1, ask["px"], 0.01, 0.0)  # leaves 0.09: within 25 %
    assert all(a["oid"] != ask["oid"] for a in e.action_list(n))
    n = e.on_fill(T0 + 2000, ask["oid"], -1, ask["px"], 0.05, 0.0)  # leaves 0.04: replaced
    assert any(a["oid"] == ask["oid"] and a["action"] == "cancel" for a in e.action_list(n))


def test_reject_marks_dirty_and_next_event_requotes():
    e = engine()
    n = e.on_quote(T0, 99.99, 1.0, 100.01, 1.0)
    acts = e.action_list(n)
    e.on_ack(acts[0]["oid"])
    e.on_reject(acts[1]["oid"])
    assert e.value("dirty") == 1 and e.value("n_rejects") == 1
    n = e.on_quote(T0 + 1000, 99.99, 1.0, 100.01, 1.0)  # no time/mid trigger, but dirty
    assert kinds(e, n) == [("place", acts[1]["side"])]
    assert e.value("dirty") == 0


def test_unsolicited_cancel_marks_dirty():
    e = engine()
    n = e.on_quote(T0, 99.99, 1.0, 100.01, 1.0)
    ack_all(e, n)
    oid = e.action_list(n)[0]["oid"]
    e.on_canceled(oid)
    assert e.value("dirty") == 1
    assert e.on_quote(T0 + 1000, 99.99, 1.0, 100.01, 1.0) == 1


def test_bad_books_are_counted_and_ignored():
    e = engine()
    ack_all(e, e.on_quote(T0, 99.99, 1.0, 100.01, 1.0))
    for bid, ask in ((math.nan, 100.0), (100.02, 100.01), (0.0, 100.0), (-1.0, 100.0), (99.0, math.inf)):
        assert e.on_quote(T0 + 10 * NS, bid, 1.0, ask, 1.0) == 0
    assert e.value("n_bad_quotes") == 5
    assert e.value("mid") == pytest.approx(100.0)
    assert e.on_trade(T0, math.nan, 1.0, 1) == 0 and e.on_trade(T0, 100.0, -2.0, 1) == 0
    assert e.value("n_bad_trades") == 2


def test_position_limit_stops_the_growing_side():
    e = engine(size=0.5)
    e.params["max_position"] = 0.5
    n = e.on_quote(T0, 99.99, 1.0, 100.01, 1.0)
    ack_all(e, n)
    bid = next(a for a in e.action_list(n) if a["side"] == "bid")
    n = e.on_fill(T0 + 1, bid["oid"], 1, bid["px"], 0.5, 0.0)
    assert not [a for a in e.action_list(n) if a["action"] == "place" and a["side"] == "bid"]
    assert e.ladder()["bids"] == []


def test_sampled_logging_rate():
    e = engine()
    e.params["log_rate"] = 0.01
    rng = np.random.default_rng(0)
    for i in range(20000):
        m = 100 + 0.01 * rng.integers(-3, 4)
        e.on_quote(T0 + i * 1000, m - 0.01, 1.0, m + 0.01, 1.0)
    n = e.value("log_n")
    assert 120 <= n <= 290  # 200 expected, binomial sd 14
    recs, dropped = e.drain_log()
    assert dropped == n - 256 if n > 256 else dropped == 0
    assert np.all(np.diff(recs[:, 0]) > 0)
    e2 = engine()
    for i in range(1000):
        e2.on_quote(T0 + i, 99.99, 1.0, 100.01, 1.0)
    assert e2.value("log_n") == 0  # rate 0: nothing logged


def test_order_slots_are_reused():
    e = engine()
    for i in range(200):
        m = 100 + (0.5 if i % 2 else 0.0)
        ack_all(e, e.on_quote(T0 + i * NS, m - 0.01, 1.0, m + 0.01, 1.0))
    assert e.value("o_hwm") <= 4
    assert (e.orders["status"] != OS_FREE).sum() == 2
    assert e.value("n_table_full") == 0


def test_order_lookup_by_id_survives_stale_hints():
    from numba import njit

    from avmm.core.state import OID_MAP, new_orders, new_state
    from avmm.core.strategy import find_order

    @njit
    def find(s, o, oid):
        return find_order(s[0], o, oid)

    s, o = new_state(), new_orders()
    # slot 3 holds order 5, slot 7 order 5 + OID_MAP: one hint cell, which points at slot 7
    o[3]["oid"], o[3]["status"] = 5, OS_LIVE
    o[7]["oid"], o[7]["status"] = 5 + OID_MAP, OS_LIVE
    s["o_hwm"] = 8
    s["oid_slot"][0][5] = 7
    assert find(s, o, 5) == 3  # stale hint: found by the scan
    assert find(s, o, 5 + OID_MAP) == 7
    assert find(s, o, 6) == -1
    o[7]["status"] = OS_FREE
    assert find(s, o, 5 + OID_MAP) == -1  # a freed slot is never returned
