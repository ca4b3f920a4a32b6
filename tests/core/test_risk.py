"""The core's risk limits through ``Engine`` on scripted events: the loss limits on mark-to-market
(session and UTC day, the day's PnL carried in), reduce-only, halt, resume, flatten, the order
notional and the orders budget; bad values are one line naming the key."""

from __future__ import annotations

import numpy as np
import pytest

from avmm.core.config import StrategyConfig, validate_strategy
from avmm.core.engine import Engine
from avmm.core.state import AF_TAKE, DAY_NS, OS_FREE, RATE_WINDOW_NS
from avmm.errors import UserError
from tests.builders import assert_one_line_error, make_engine

NS = 1_000_000_000
T0 = 1_700_000_000 * NS  # 2023-11-14 22:13:20 UTC
BASE = {
    "model": {"kind": "as-rolling", "gamma": 0.1, "sigma": 0.05, "k": 50.0, "A": 1.0, "tau_s": 60.0},
    "quoting": {"tick": 0.01, "lot": 0.001, "levels": 1, "size": 0.01, "refresh_s": 2.0, "mid_tolerance": 0.001},
    "risk": {"max_position": 1.0},
    "logging": {"sample_rate": 0.0},
}


def engine(**risk) -> Engine:
    return make_engine(BASE, risk=risk)


def ack_all(e: Engine, n: int) -> None:
    for a in e.action_list(n):
        if a["action"] == "cancel":
            e.on_canceled(a["oid"])
        else:
            e.on_ack(a["oid"])


def kinds(e: Engine, n: int) -> list[tuple[str, str]]:
    return sorted((a["action"], a["side"]) for a in e.action_list(n))


def book(e: Engine, t: int, mid: float) -> int:
    return e.on_quote(t, round(mid - 0.01, 2), 1.0, round(mid + 0.01, 2), 1.0)


def long_at_100(e: Engine, side: int = 1) -> None:
    """Quoting at 100, then one of our orders filled at 100.00 (no fee): |position| 0.01."""
    ack_all(e, book(e, T0, 100.0))
    oid = next(a["oid"] for a in e.action_list(2) if (a["side"] == "bid") == (side > 0))
    ack_all(e, e.on_fill(T0 + 1000, oid, side, 100.0, 0.01, 0.0))


def working(e: Engine) -> list[int]:
    return [int(o["oid"]) for o in e.orders if o["status"] != OS_FREE]


# --- the session's loss limit: halt, resume ------------------------------------------------------


def test_max_loss_binds_on_mark_to_market_and_halts():
    e = engine(max_loss=0.0015)  # on_limit = "halt" by default
    long_at_100(e)
    assert working(e), "quoting"
    # pnl = 0.01 x (mid - 100): -0.0014 at 99.86 (under the limit), -0.0016 at 99.84
    ack_all(e, book(e, T0 + 2 * NS, 99.86))
    assert e.value("halted") == 0 and e.value("n_limit_loss") == 0
    assert e.value("pnl") == pytest.approx(-0.0014)
    orders = working(e)
    n = book(e, T0 + 3 * NS, 99.84)
    assert e.value("halted") == 1 and e.value("n_limit_loss") == 1 and e.value("n_halts") == 1
    acts = e.action_list(n)
    assert {a["action"] for a in acts} == {"cancel"}
    assert sorted(a["oid"] for a in acts) == sorted(orders)  # every working order
    r = e.risk()
    assert r["risk_halted"] and r["risk_reason"] == "halted: max_loss" and r["risk_loss_breaches"] == 1


def test_a_halt_quotes_nothing_until_resume_and_a_breached_limit_halts_again():
    e = engine(max_loss=0.0015)
    long_at_100(e)
    ack_all(e, book(e, T0 + 2 * NS, 99.84))
    assert e.value("halted") == 1 and working(e) == []
    req = e.value("n_requotes")
    t = T0 + 3 * NS
    # mid moves, refreshes, trades, the timer: nothing
    for i, mid in enumerate((99.5, 99.84, 101.0, 99.0)):
        assert book(e, t + i * 5 * NS, mid) == 0
        assert e.on_trade(t + i * 5 * NS + 1, mid, 1.0, 1) == 0
        assert e.on_timer(t + i * 5 * NS + 2) == 0
    assert e.value("n_requotes") == req and working(e) == []
    # resume: the next quote requotes; still breached (mid 99.0): halted again at once
    assert e.resume(t + 30 * NS) == 0
    assert e.value("halted") == 0 and e.risk()["risk_reason"] == ""
    assert book(e, t + 31 * NS, 99.0) == 0
    assert e.value("halted") == 1 and e.value("n_limit_loss") == 2 and e.value("n_halts") == 2
    # resume with the loss back under the limit: quotes both sides again
    e.resume(t + 32 * NS)
    n = book(e, t + 33 * NS, 100.0)
    assert kinds(e, n) == [("place", "ask"), ("place", "bid")]
    assert e.value("halted") == 0


def test_a_fill_can_breach_the_limit_and_its_handler_halts():
    e = engine(max_loss=0.0015)
    ack_all(e, book(e, T0, 100.0))
    bid = next(a for a in e.action_list(2) if a["side"] == "bid")
    other = [o for o in working(e) if o != bid["oid"]]
    n = e.on_fill(T0 + 1000, bid["oid"], 1, 100.0, 0.01, 0.002)  # a fee of 0.002: pnl -0.0021
    assert e.value("halted") == 1
    assert kinds(e, n) == [("cancel", "ask")] and [a["oid"] for a in e.action_list(n)] == other


def test_halt_from_outside_without_any_limit_set():
    e = engine()  # no limit: the kill switch works all the same
    ack_all(e, book(e, T0, 100.0))
    n = e.halt(T0 + NS)
    assert kinds(e, n) == [("cancel", "ask"), ("cancel", "bid")]
    ack_all(e, n)
    assert e.value("halted") == 1 and e.risk()["risk_reason"] == "halted: kill"
    assert book(e, T0 + 10 * NS, 101.0) == 0 and e.on_timer(T0 + 11 * NS) == 0
    e.resume(T0 + 12 * NS)
    assert kinds(e, book(e, T0 + 13 * NS, 101.0)) == [("place", "ask"), ("place", "bid")]


# --- reduce-only --------------------------------------------------------------------------------


@pytest.mark.parametrize("side", [1, -1], ids=["long", "short"])
def test_reduce_only_quotes_only_the_side_that_reduces_and_never_past_flat(side):
    e = make_engine(BASE, risk={"max_loss": 0.0015, "on_limit": "reduce"}, quoting={"size": 0.004, "levels": 3})
    ack_all(e, book(e, T0, 100.0))
    oid = next(a["oid"] for a in e.action_list(6) if (a["side"] == "bid") == (side > 0) and a["level"] == 0)
    ack_all(e, e.on_fill(T0 + 1000, oid, side, 100.0, 0.004, 0.0))
    ack_all(e, book(e, T0 + 2000, 100.0))
    lad = e.ladder()
    assert len(lad["bids"]) == 3 and len(lad["asks"]) == 3
    # a loss of 0.0016: 0.004 x 0.4 against the position
    n = book(e, T0 + 3 * NS, 100.0 - side * 0.4)
    assert e.value("reduce_only") == 1 and e.value("halted") == 0
    assert e.risk()["risk_reason"] == "reduce-only: max_loss"
    lad = e.ladder()
    grows, reduces = ("bids", "asks") if side > 0 else ("asks", "bids")
    assert lad[grows] == []
    assert sum(q for _, q in lad[reduces]) == pytest.approx(0.004)  # the position, no more
    acts = e.action_list(n)
    grow_side = "bid" if side > 0 else "ask"
    assert all(a["action"] == "cancel" for a in acts if a["side"] == grow_side)
    assert any(a["action"] == "cancel" for a in acts if a["side"] == grow_side)
    # the reducing orders fill: flat -> nothing quoted at all
    ack_all(e, n)
    for a in [o for o in e.orders if o["status"] != OS_FREE]:
        ack_all(e, e.on_fill(T0 + 4 * NS, int(a["oid"]), int(a["side"]), float(a["px"]), float(a["leaves"]), 0.0))
    assert e.value("pos") == pytest.approx(0.0, abs=1e-12)
    book(e, T0 + 10 * NS, 100.0)
    assert e.ladder() == {"bids": [], "asks": []}


# --- the UTC day's limit ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day_pnl0", "day", "binds"),
    [(0.0, -1, False), (-0.0010, -1, True), (-0.0010, T0 // DAY_NS, True), (-0.0010, T0 // DAY_NS - 1, False)],
    ids=["none-carried", "carried", "carried-same-day", "carried-other-day"],
)
def test_the_days_pnl_carried_in_counts_on_its_day(day_pnl0, day, binds):
    e = engine(max_loss_day=0.0015)
    e.params["day_pnl0"] = day_pnl0
    e.params["day_pnl_day"] = day
    long_at_100(e)
    book(e, T0 + 2 * NS, 99.94)  # the session: -0.0006
    assert e.value("halted") == int(binds)
    assert e.value("n_limit_loss_day") == int(binds) and e.value("n_limit_loss") == 0


def test_the_day_limit_restarts_at_utc_midnight():
    midnight = (T0 // DAY_NS + 1) * DAY_NS
    for on_limit, after in (("reduce", 0), ("halt", 1)):
        e = engine(max_loss_day=0.0015, on_limit=on_limit)
        long_at_100(e)
        book(e, T0 + 2 * NS, 99.8)  # -0.002 today
        assert e.value("reduce_only" if on_limit == "reduce" else "halted") == 1
        book(e, midnight - 1, 99.8)
        assert e.value("limit_why") != 0
        # a new day: its PnL starts at 0; a reduce-only of this limit lifts, a halt waits for resume
        book(e, midnight, 99.8)
        assert e.value("reduce_only") == 0 and e.value("halted") == after
        assert e.value("n_limit_loss_day") == 1
        book(e, midnight + NS, 99.7)  # -0.001 on the new day: under the limit
        assert e.value("n_limit_loss_day") == 1


# --- flatten ------------------------------------------------------------------------------------


def test_flatten_sends_taker_orders_until_flat():
    e = make_engine(BASE, quoting={"size": 0.013})
    long_at_100(e)  # fill 0.01 of the 0.013 bid
    assert e.value("pos") == pytest.approx(0.01)
    n = e.flatten(T0 + NS)
    acts = e.action_list(n)
    cancels = [a for a in acts if a["action"] == "cancel"]
    take = [a for a in acts if a.get("take")]
    assert len(cancels) == len(acts) - 1 and len(take) == 1
    assert take[0] == {**take[0], "action": "place", "side": "ask", "px": 99.99, "qty": 0.01}  # at the bid
    assert e.actions["flags"][n - 1] == AF_TAKE
    ack_all(e, n)
    # the venue fills 0.006 of it, the rest is cancelled (immediate-or-cancel)
    oid = take[0]["oid"]
    assert e.on_fill(T0 + NS + 10, oid, -1, 99.99, 0.006, 0.0) == 0
    assert book(e, T0 + NS + 20, 99.9) == 0  # still in flight: no second one
    e.on_canceled(oid)
    n = book(e, T0 + NS + 30, 99.9)
    acts = e.action_list(n)
    assert len(acts) == 1 and acts[0]["take"] and acts[0]["side"] == "ask"
    assert acts[0]["px"] == pytest.approx(99.89) and acts[0]["qty"] == pytest.approx(0.004)
    e.on_ack(acts[0]["oid"])
    e.on_fill(T0 + NS + 40, acts[0]["oid"], -1, 99.89, 0.004, 0.0)
    assert e.value("pos") == pytest.approx(0.0, abs=1e-12)
    assert book(e, T0 + NS + 50, 99.9) == 0
    assert e.value("flatten") == 0 and e.value("halted") == 1 and e.value("n_flatten_orders") == 2
    assert book(e, T0 + 20 * NS, 100.5) == 0  # halted: nothing more


def test_flatten_gives_up_after_rejects_and_resume_cancels_one_in_flight():
    e = engine()
    long_at_100(e)
    for i in range(3):
        n = book(e, T0 + (i + 2) * NS, 100.0) if i else e.flatten(T0 + 2 * NS)
        take = [a for a in e.action_list(n) if a.get("take")]
        assert len(take) == 1
        e.on_reject(take[0]["oid"])
    assert book(e, T0 + 9 * NS, 100.0) == 0
    assert e.value("flatten") == 0 and e.value("halted") == 1  # given up: still halted
    # a flatten order in flight at resume is cancelled
    e.resume(T0 + 10 * NS)
    n = e.flatten(T0 + 11 * NS)
    take = next(a for a in e.action_list(n) if a.get("take"))
    n = e.resume(T0 + 12 * NS)
    assert e.action_list(n) == [{**e.action_list(n)[0], "action": "cancel", "oid": take["oid"]}]


# --- the order notional and the orders budget ---------------------------------------------------


def test_max_order_notional_cuts_each_order():
    e = engine(max_order_notional=0.5)  # 0.01 at ~100 is 1.0
    n = book(e, T0, 100.0)
    assert sorted(a["qty"] for a in e.action_list(n)) == [0.004, 0.005]  # asks >= 100.01, bids <= 99.99
    assert all(a["qty"] * a["px"] <= 0.5 for a in e.action_list(n))
    assert e.value("n_limit_notional") == 2
    e = engine(max_order_notional=0.05)  # under one lot (0.001 x 100)
    assert book(e, T0, 100.0) == 0
    assert e.risk()["risk_notional_cuts"] == 2


@pytest.mark.parametrize("amend", [False, True])
def test_the_orders_budget_is_never_exceeded_in_any_10s(amend):
    """Mid moves on most events for 5 minutes: without the budget the core would send far more."""
    budget = 7
    sends: dict[str, list[int]] = {}
    for limit in (0, budget):
        e = make_engine(
            BASE,
            quoting={"levels": 2, "amend": amend, "mid_tolerance": 0.0, "refresh_s": 0.5},
            risk={"max_orders_per_10s": limit},
        )
        rng = np.random.default_rng(5)
        mid, t = 100.0, T0
        out: list[int] = []
        for _ in range(3000):
            t += int(rng.integers(1, 200_000_000))
            mid = round(mid + 0.01 * int(rng.integers(-2, 3)), 2)
            n = book(e, t, mid)
            if rng.random() < 0.05:
                n2 = 0
                live = [o for o in e.orders if o["status"] == 2]
                if live:
                    o = live[0]
                    ack_all(e, n)
                    n = 0
                    n2 = e.on_fill(t + 1, int(o["oid"]), int(o["side"]), float(o["px"]), float(o["leaves"]), 0.0)
                    out += [t + 1] * sum(1 for a in e.action_list(n2) if a["action"] != "cancel")
                    ack_all(e, n2)
            out += [t] * sum(1 for a in e.action_list(n) if a["action"] != "cancel")
            ack_all(e, n)
        sends[str(limit)] = out
        if limit:
            assert e.value("n_limit_rate") > 0
    free, capped = np.array(sends["0"]), np.array(sends[str(budget)])
    assert len(free) > 5 * len(capped)  # the budget bound
    # any 10 s window [x, x + 10 s): at most `budget` sends (x at each send: the worst windows)
    within = np.searchsorted(capped, capped + RATE_WINDOW_NS, side="left") - np.arange(len(capped))
    assert within.max() == budget
    assert len(capped) >= budget * ((capped[-1] - capped[0]) // RATE_WINDOW_NS)  # and it is used


# --- config -------------------------------------------------------------------------------------


def test_the_limits_are_off_by_default():
    r = StrategyConfig().risk
    assert [r.limit(k) for k in ("max_order_notional", "max_orders_per_10s", "max_loss", "max_loss_day")] == [0] * 4
    p = Engine(StrategyConfig()).params[0]
    assert (p["max_order_notional"], p["max_orders_10s"], p["max_loss"], p["max_loss_day"], p["loss_on"]) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert validate_strategy({"risk": {"max_loss": 0, "max_orders_per_10s": "off"}}).risk.limit("max_loss") == 0


@pytest.mark.parametrize(
    ("risk", "key"),
    [
        ({"max_loss": -1}, "risk.max_loss"),
        ({"max_loss_day": "none"}, "risk.max_loss_day"),
        ({"max_order_notional": float("inf")}, "risk.max_order_notional"),
        ({"max_orders_per_10s": 5000}, "risk.max_orders_per_10s"),
        ({"max_orders_per_10s": 2.5}, "risk.max_orders_per_10s"),
        ({"on_limit": "stop"}, "risk.on_limit"),
        ({"max_feed_lag_ms": -5}, "risk.max_feed_lag_ms"),
    ],
)
def test_bad_values_are_one_line_naming_the_key(risk, key):
    with pytest.raises(UserError) as ei:
        validate_strategy({"risk": risk})
    msg = str(ei.value)
    assert "\n" not in msg and key in msg


def test_a_bad_limit_on_the_command_line_is_one_line(run_cli, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[risk]\non_limit = "panic"\n')
    assert_one_line_error(run_cli("backtest", "--config", cfg), "risk.on_limit", "'panic'")
    assert_one_line_error(run_cli("config", "check", "--set", "risk.max_loss=-3"), "risk.max_loss")


def test_the_backtest_table_shows_what_the_limits_did(run_cli):
    r = run_cli("backtest", "--set", "risk.max_loss=0.05", "--set", 'risk.on_limit="reduce"', "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "risk limits: state at the end" in r.stdout and "reduce-only: max_loss" in r.stdout
    assert "loss breaches 1 / day 0" in r.stdout
    r = run_cli("backtest", "--no-progress")
    assert "risk limits" not in r.stdout
