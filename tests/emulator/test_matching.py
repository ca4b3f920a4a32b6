"""The emulator's matching engine without a server: accounts on the backtester's exchange model, fed
hand-made market events, their orders placed, amended and cancelled between them (deterministic)."""

from __future__ import annotations

import numpy as np
import pytest

from avmm.backtest.config import BacktestConfig
from avmm.backtest.venue import PaperGateway, PaperRecords
from avmm.core.config import StrategyConfig, to_params
from avmm.emulator.formats import Fmt
from avmm.emulator.matching import Account, ApiError, Ids, emulator_backtest

S = 1_000_000_000
T0 = 1_720_000_000 * S


def _cfg() -> StrategyConfig:
    return StrategyConfig.model_validate({"quoting": {"tick": 0.01, "lot": 0.001}})


def _account(um: bool = False, ids: Ids | None = None, **bt) -> Account:
    money = {"initial_cash": 1e6} if um else {"initial_base": 1000.0, "initial_quote": 1e6}
    b = BacktestConfig.model_validate({"maker_fee": 0.0002, "taker_fee": 0.0005, **money, **bt})
    f = Fmt("BTCUSDT", "BTC", "USDT", 2 if um else 8, 3 if um else 8)
    meta = {"market": "perpetual" if um else "spot", "symbol": "BTCUSDT"}
    return Account("k", 1, f, um, ids or Ids(), _cfg(), b, meta)


def _place(acc: Account, t: int, side: int, px: float, qty: float, post_only: bool = True, cid: str = ""):
    o = acc.new_order(t, cid or acc.ids.next_client(), side, "LIMIT_MAKER" if post_only else "LIMIT", "GTC", px, qty)
    fills = acc.place(t, o, post_only)
    return o, fills


def _fills(acc: Account) -> list[tuple[int, float, float, bool]]:
    return [(t.time_ms, t.price, t.qty, t.maker) for t in acc.trades]


def test_amend_keep_priority_fills_like_the_original_and_a_replace_queues_behind():
    """Three accounts join the bid at 100.00 behind 5.0: A with 3.0 then amended down to 1.0 (keep
    priority), C with 1.0; the level grows to 8.0 (others join behind); B then replaces its order
    (cancel + new 1.0: the back of the queue, 8.0 ahead). A sell of 6.0 at 100.00 fills A and C
    alike (1.0 each), and B not at all."""
    ids = Ids()
    a, b, c = _account(ids=ids), _account(ids=ids), _account(ids=ids)
    for acc in (a, b, c):
        acc.quote(T0, 100.00, 5.0, 100.01, 5.0)
    oa, _ = _place(a, T0 + 1, 1, 100.00, 3.0)
    ob, _ = _place(b, T0 + 1, 1, 100.00, 1.0)
    oc, _ = _place(c, T0 + 1, 1, 100.00, 1.0)
    a.amend_keep(T0 + 2, oa, 1.0, "a-amended")
    assert (oa.qty, oa.cid, oa.orig_cid, oa.status) == (1.0, "a-amended", oa.orig_cid, "NEW")
    for acc in (a, b, c):
        acc.quote(T0 + S, 100.00, 8.0, 100.01, 5.0)
    b.cancel(T0 + S + 1, ob, "b-cancel")
    ob2, _ = _place(b, T0 + S + 2, 1, 100.00, 1.0)
    for acc in (a, b, c):
        acc.trade(T0 + 2 * S, 100.00, 6.0, -1)
    assert _fills(a) == _fills(c) == [((T0 + 2 * S) // 1_000_000, 100.00, 1.0, True)]
    assert oa.status == oc.status == "FILLED" and ob2.status == "NEW" and b.trades == []
    # the amend was reported as REPLACED, with the old client order id
    reps = [ev for _, _, ev in a.outbox if ev.get("e") == "executionReport"]
    assert [r["x"] for r in reps] == ["NEW", "REPLACED", "TRADE"]
    assert reps[1]["c"] == "a-amended" and reps[1]["C"] and reps[1]["q"] == "1.00000000"


def test_amend_keep_priority_rules():
    acc = _account()
    acc.quote(T0, 100.00, 5.0, 100.01, 5.0)
    o, _ = _place(acc, T0 + 1, 1, 99.90, 2.0)
    with pytest.raises(ApiError) as e:
        acc.amend_keep(T0 + 2, o, 2.0, "x")
    assert e.value.code == -1013 and "quantity increase" in e.value.msg
    acc.amend_keep(T0 + 3, o, 1.5, "y")
    assert o.qty == 1.5 and o.cid == "y"
    acc.cancel(T0 + 4, o, "z")
    with pytest.raises(ApiError) as e:
        acc.amend_keep(T0 + 5, o, 1.0, "w")
    assert e.value.code == -2013


def test_usdm_modify_loses_priority():
    """USD-M ``order.modify`` at the same price re-queues: the order that was first in line is now
    behind the 3.0 that joined after it, so the same sell no longer reaches it."""
    ids = Ids()
    a, c = _account(um=True, ids=ids), _account(um=True, ids=ids)
    for acc in (a, c):
        acc.quote(T0, 100.00, 5.0, 100.01, 5.0)
    oa, _ = _place(a, T0 + 1, 1, 100.00, 2.0)
    oc, _ = _place(c, T0 + 1, 1, 100.00, 1.0)
    for acc in (a, c):
        acc.quote(T0 + S, 100.00, 8.0, 100.01, 5.0)
    a.modify(T0 + S + 1, oa, 100.00, 1.0)
    assert oa.qty == 1.0 and oa.is_open
    for acc in (a, c):
        acc.trade(T0 + 2 * S, 100.00, 6.0, -1)
    assert a.trades == [] and len(c.trades) == 1
    xs = [ev["o"]["x"] for _, _, ev in a.outbox if ev["e"] == "ORDER_TRADE_UPDATE"]
    assert xs == ["NEW", "AMENDMENT"]


def test_usdm_gtx_modify_that_would_take_ends_the_order():
    acc = _account(um=True)
    acc.quote(T0, 100.00, 5.0, 100.01, 5.0)
    o = acc.new_order(T0 + 1, "g", 1, "LIMIT", "GTX", 99.90, 1.0)
    acc.place(T0 + 1, o, True)
    with pytest.raises(ApiError) as e:
        acc.modify(T0 + 2, o, 100.01, 1.0)
    assert e.value.code == -5022 and o.status == "EXPIRED" and not acc.open


def test_a_crossing_limit_maker_is_rejected_and_not_kept():
    acc = _account()
    acc.quote(T0, 100.00, 5.0, 100.01, 5.0)
    o = acc.new_order(T0 + 1, "x", 1, "LIMIT_MAKER", "GTC", 100.01, 1.0)
    with pytest.raises(ApiError) as e:
        acc.place(T0 + 1, o, True)
    assert (e.value.code, e.value.msg) == (-2010, "Order would immediately match and take.")
    assert o.order_id not in acc.orders and acc.outbox == []


def test_a_crossing_limit_takes_the_best_and_the_rest_expires():
    acc = _account()
    acc.quote(T0, 100.00, 5.0, 100.01, 0.4)
    o, fills = _place(acc, T0 + 1, 1, 100.02, 1.0, post_only=False)
    assert [(t.price, t.qty, t.maker) for t in fills] == [(100.01, 0.4, False)]
    assert o.status == "EXPIRED" and o.executed == 0.4
    assert fills[0].fee == pytest.approx(0.0005 * 100.01 * 0.4)


def test_spot_balances_lock_release_and_fill():
    acc = _account(initial_base=2.0, initial_quote=1000.0)
    acc.quote(T0, 100.00, 5.0, 100.01, 5.0)
    assert acc.balances() == [("BTC", 2.0, 0.0), ("USDT", 1000.0, 0.0)]
    o, _ = _place(acc, T0 + 1, 1, 99.00, 1.0)
    (_, bf, bl), (_, qf, ql) = acc.balances()
    assert (bf, bl) == (2.0, 0.0) and ql == pytest.approx(99.0 * 1.0005) and qf + ql == pytest.approx(1000.0)
    too_big = acc.new_order(T0 + 2, "big", 1, "LIMIT_MAKER", "GTC", 99.00, 10.0)
    with pytest.raises(ApiError) as e:
        acc.place(T0 + 2, too_big, True)
    assert (e.value.code, e.value.msg) == (-2010, "Account has insufficient balance for requested action.")
    acc.quote(T0 + S, 98.99, 5.0, 99.00, 5.0)  # the ask comes down to the bid: it fills
    assert o.status == "FILLED"
    (_, bf, bl), (_, qf, ql) = acc.balances()
    fee = 0.0002 * 99.0
    assert (bf, bl, ql) == (3.0, 0.0, 0.0) and qf == pytest.approx(1000.0 - 99.0 - fee)
    assert acc.trades[0].fee == pytest.approx(fee) and acc.trades[0].maker


def test_usdm_position_realized_profit_and_wallet():
    acc = _account(um=True, initial_cash=1000.0)
    acc.quote(T0, 100.00, 5.0, 100.01, 5.0)
    _place(acc, T0 + 1, 1, 100.00, 2.0)
    acc.trade(T0 + S, 99.99, 10.0, -1)  # through the bid: filled
    _place(acc, T0 + S + 1, -1, 101.00, 1.0)
    acc.quote(T0 + 2 * S, 101.00, 5.0, 101.01, 5.0)  # the bid comes up to the ask: filled
    p = acc.position()
    assert (p.amt, p.entry) == (1.0, 100.00)
    assert [t.realized for t in acc.trades] == [0.0, pytest.approx(1.0)]
    fees = 0.0002 * (200.0 + 101.0)
    assert p.wallet == pytest.approx(1000.0 + 1.0 - fees)
    assert p.unrealized == pytest.approx(1.0 * (101.005 - 100.00))
    ups = [ev for _, _, ev in acc.outbox if ev["e"] == "ACCOUNT_UPDATE"]
    assert len(ups) == 2 and ups[-1]["a"]["P"][0]["pa"] == "1.000"


def test_partial_reports_split_each_fill_on_the_lot_grid():
    acc = _account(um=False)
    acc.split = 3
    acc.quote(T0, 100.00, 5.0, 100.01, 5.0)
    o, _ = _place(acc, T0 + 1, 1, 99.00, 1.0)
    acc.quote(T0 + S, 98.99, 5.0, 99.00, 5.0)
    assert [t.qty for t in acc.trades] == pytest.approx([0.333, 0.333, 0.334])
    ids = [t.trade_id for t in acc.trades]
    assert ids == sorted(set(ids)) and o.status == "FILLED" and o.executed == 1.0
    xs = [(ev["x"], ev["X"]) for _, _, ev in acc.outbox if ev.get("e") == "executionReport"]
    assert xs == [("NEW", "NEW"), ("TRADE", "PARTIALLY_FILLED"), ("TRADE", "PARTIALLY_FILLED"), ("TRADE", "FILLED")]


def test_fills_are_the_exchange_models():
    """An account's fills are exactly those of the backtester's exchange model (``PaperGateway``)
    driven with the same events and orders: the account adds Binance's bookkeeping, not a matcher."""
    rng = np.random.default_rng(7)
    acc = _account()
    b = acc.bt  # the config's exchange model, as ``emulator_backtest`` makes it
    assert b == emulator_backtest(b, False) and b.entry_latency_ms == b.response_latency_ms == 0.0

    class Rec:
        def __init__(self) -> None:
            self.fills: list[tuple[int, int, float, float]] = []

        def ack(self, t, oid):
            pass

        def reject(self, t, oid):
            pass

        def canceled(self, t, oid):
            pass

        def fill(self, t, oid, side, px, qty, fee):
            self.fills.append((t // 1_000_000, oid, px, qty))

    rec = Rec()
    gw = PaperGateway(_cfg(), b, rec, to_params(_cfg()), {"market": "spot"}, PaperRecords())
    mid, t = 100.0, T0
    for i in range(3000):
        t += int(rng.integers(1, 20)) * 1_000_000
        mid = round(mid + 0.01 * int(rng.integers(-1, 2)), 2)
        bid, ask, bq, aq = mid, round(mid + 0.01, 2), float(rng.integers(1, 9)), float(rng.integers(1, 9))
        acc.quote(t, bid, bq, ask, aq)
        gw.quote(t, bid, bq, ask, aq)
        gw.advance(t)
        if i % 7 == 0:
            side = 1 if rng.random() < 0.5 else -1
            px, q = (bid, ask)[side < 0], float(rng.integers(1, 4))
            acc.trade(t, px, q, -side)
            gw.trade(t, px, q, -side)
            gw.advance(t)
        if i % 50 == 0:
            side = 1 if i % 100 == 0 else -1
            away = 0.01 * int(rng.integers(0, 3))
            px = round(bid - away, 2) if side > 0 else round(ask + away, 2)
            o, _ = _place(acc, t, side, px, 0.5)
            gw.bp["post_only"] = 1
            gw.place(t, o.order_id, side, px, 0.5)
            gw.advance(t)
    got = [(tr.time_ms, tr.order_id, tr.price, tr.qty) for tr in acc.trades]
    assert len(got) > 20 and got == rec.fills


def test_depth_rows_is_depth_level_by_level_through_a_table_growth():
    """``PaperGateway.depth_rows`` (one compiled call per update) leaves the model as ``depth`` called
    level by level does, also across the depth table's growth (more levels than half its slots)."""
    from avmm.backtest.state import DEPTH_CAP0

    a, b = _account(), _account()
    n = DEPTH_CAP0 // 2 + 100
    px = 50.0 + 0.01 * np.arange(n)
    rows = np.column_stack([np.ones(n), px, np.full(n, 2.0)])
    a.gw.depth_rows(T0, rows)
    for p in px:
        b.gw.depth(T0, 1, float(p), 2.0)
    assert int(a.bs["d_n"][0][0]) == int(b.bs["d_n"][0][0]) == n
    assert a.gw.keys.shape == b.gw.keys.shape and a.gw.keys.shape[1] > DEPTH_CAP0
    assert set(a.gw.keys[0].tolist()) == set(b.gw.keys[0].tolist())
