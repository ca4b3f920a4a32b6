"""Binance WebSocket API order requests (``venues.binance.ws_api``): the exact bytes of every
request kind on spot and USD-M, JSON that parses back to Binance's field names, prices and
quantities exact on the grid, client ids that follow Binance's rule, and the counted skips."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import numpy as np
import pytest

from avmm.core.state import ACT_AMEND, ACT_CANCEL, ACT_PLACE, ACTION_DTYPE, AF_TAKE, MAX_ACTIONS
from avmm.venues.binance.ws_api import CLIENT_ID, ID_CAP, ID_PROBE, OrderEncoder, Requests, step_decimals

TS = 1_700_000_000_123


def _requests(venue: str = "binance-spot", tick: float = 0.01, lot: float = 0.00001, session: str = "s1"):
    actions = np.zeros(MAX_ACTIONS, dtype=ACTION_DTYPE)
    return actions, Requests(OrderEncoder(venue, "BTCUSDT", tick, lot, session=session), actions)


def _set(actions, rows):
    for i, (kind, side, oid, px, qty, *flags) in enumerate(rows):
        actions[i] = (kind, side, oid, 0, px, qty, flags[0] if flags else 0)
    return len(rows)


def _encode(req, actions, rows, ts=TS) -> list[bytes]:
    k = req.encode(_set(actions, rows), ts)
    return [req.request(i) for i in range(k)]


def test_spot_requests_exact_bytes():
    a, req = _requests()
    place, amend, cancel = (
        _encode(req, a, [(ACT_PLACE, 1, 7, 61234.100000000006, 0.0123)])
        + _encode(req, a, [(ACT_AMEND, 1, 7, 61233.99, 0.5)])
        + _encode(req, a, [(ACT_CANCEL, 1, 7, 0.0, 0.0)])
    )
    assert place == (
        b'{"id":1,"method":"order.place","params":{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT_MAKER",'
        b'"price":"61234.10","quantity":"0.01230","newClientOrderId":"avmm-s1-1","newOrderRespType":"ACK",'
        b'"timestamp":1700000000123}}'
    )
    assert amend == (
        b'{"id":2,"method":"order.cancelReplace","params":{"symbol":"BTCUSDT","cancelReplaceMode":"STOP_ON_FAILURE",'
        b'"cancelOrigClientOrderId":"avmm-s1-1","side":"BUY","type":"LIMIT_MAKER","price":"61233.99",'
        b'"quantity":"0.50000","newClientOrderId":"avmm-s1-2","newOrderRespType":"ACK","timestamp":1700000000123}}'
    )
    assert cancel == (
        b'{"id":3,"method":"order.cancel","params":{"symbol":"BTCUSDT","origClientOrderId":"avmm-s1-2",'
        b'"timestamp":1700000000123}}'
    )


def test_usdm_requests_exact_bytes():
    a, req = _requests("binance-um", tick=0.1, lot=0.001)
    out = _encode(
        req, a, [(ACT_PLACE, -1, 3, 61234.1, 0.002), (ACT_AMEND, -1, 3, 61234.2, 0.004), (ACT_CANCEL, -1, 3, 0, 0)]
    )
    assert out == [
        b'{"id":1,"method":"order.place","params":{"symbol":"BTCUSDT","side":"SELL","type":"LIMIT","timeInForce":"GTX",'
        b'"price":"61234.1","quantity":"0.002","newClientOrderId":"avmm-s1-1","newOrderRespType":"ACK",'
        b'"timestamp":1700000000123}}',
        b'{"id":2,"method":"order.modify","params":{"symbol":"BTCUSDT","origClientOrderId":"avmm-s1-1","side":"SELL",'
        b'"price":"61234.2","quantity":"0.004","timestamp":1700000000123}}',
        b'{"id":3,"method":"order.cancel","params":{"symbol":"BTCUSDT","origClientOrderId":"avmm-s1-1",'
        b'"timestamp":1700000000123}}',
    ]


@pytest.mark.parametrize("venue", ["binance-spot", "binance-um"])
def test_a_taker_place_is_a_limit_ioc(venue):
    """The core's flatten (a place flagged AF_TAKE): LIMIT, timeInForce IOC, on both venues."""
    a, req = _requests(venue, tick=0.1, lot=0.001)
    take, place = _encode(req, a, [(ACT_PLACE, -1, 5, 61234.1, 0.002, AF_TAKE), (ACT_PLACE, 1, 6, 61200.0, 0.001)])
    assert take == (
        b'{"id":1,"method":"order.place","params":{"symbol":"BTCUSDT","side":"SELL","type":"LIMIT","timeInForce":"IOC",'
        b'"price":"61234.1","quantity":"0.002","newClientOrderId":"avmm-s1-1","newOrderRespType":"ACK",'
        b'"timestamp":1700000000123}}'
    )
    assert json.loads(place)["params"]["type"] == ("LIMIT" if venue == "binance-um" else "LIMIT_MAKER")
    assert json.loads(place)["params"].get("timeInForce") == ("GTX" if venue == "binance-um" else None)


@pytest.mark.parametrize("venue", ["binance-spot", "binance-um"])
def test_every_request_parses_with_binances_field_names(venue):
    a, req = _requests(venue)
    um = venue == "binance-um"
    p, m, c = (
        json.loads(b)
        for b in _encode(
            req, a, [(ACT_PLACE, 1, 1, 100.0, 1.0), (ACT_AMEND, 1, 1, 101.0, 2.0), (ACT_CANCEL, 1, 1, 0, 0)]
        )
    )
    for r, rid in ((p, 1), (m, 2), (c, 3)):
        assert set(r) == {"id", "method", "params"} and r["id"] == rid
        assert r["params"]["symbol"] == "BTCUSDT" and r["params"]["timestamp"] == TS
        assert not {"apiKey", "signature"} & set(r["params"])  # a session.logon connection
    assert p["method"] == "order.place"
    assert set(p["params"]) == {
        "symbol",
        "side",
        "type",
        "price",
        "quantity",
        "newClientOrderId",
        "newOrderRespType",
        "timestamp",
    } | ({"timeInForce"} if um else set())
    assert (p["params"]["type"], p["params"].get("timeInForce")) == (("LIMIT", "GTX") if um else ("LIMIT_MAKER", None))
    assert p["params"]["newOrderRespType"] == "ACK" and p["params"]["side"] == "BUY"
    if um:
        assert m["method"] == "order.modify"
        assert set(m["params"]) == {"symbol", "origClientOrderId", "side", "price", "quantity", "timestamp"}
        assert m["params"]["origClientOrderId"] == p["params"]["newClientOrderId"]
    else:
        assert m["method"] == "order.cancelReplace"
        assert set(m["params"]) == {
            "symbol",
            "cancelReplaceMode",
            "cancelOrigClientOrderId",
            "side",
            "type",
            "price",
            "quantity",
            "newClientOrderId",
            "newOrderRespType",
            "timestamp",
        }
        assert m["params"]["cancelOrigClientOrderId"] == p["params"]["newClientOrderId"]
        assert m["params"]["newClientOrderId"] != p["params"]["newClientOrderId"]
        assert m["params"]["cancelReplaceMode"] == "STOP_ON_FAILURE" and m["params"]["type"] == "LIMIT_MAKER"
    assert c["method"] == "order.cancel" and set(c["params"]) == {"symbol", "origClientOrderId", "timestamp"}
    assert c["params"]["origClientOrderId"] == (
        m["params"]["origClientOrderId"] if um else m["params"]["newClientOrderId"]
    )
    for v in (p["params"]["price"], p["params"]["quantity"], m["params"]["price"], m["params"]["quantity"]):
        assert isinstance(v, str)  # DECIMAL parameters are JSON strings


@pytest.mark.parametrize(
    "tick, lot", [(0.01, 0.00001), (0.1, 0.001), (0.5, 1.0), (10.0, 0.01), (1e-8, 1.0), (5e-5, 0.2), (1.0, 1e-8)]
)
def test_prices_and_quantities_are_exact_decimals_on_the_grid(tick, lot):
    """Each price is the nearest tick to the float the core gave, written with the tick's own
    decimals: what Decimal arithmetic on the grid gives, no float artifact."""
    a, req = _requests(tick=tick, lot=lot)
    rng = np.random.default_rng(3)
    dt, dl = Decimal(repr(tick)), Decimal(repr(lot))
    ticks = rng.integers(1, 10**9, 64)
    lots = rng.integers(1, 10**6, 64)
    rows = [
        (ACT_PLACE, 1, i + 1, float(k) * tick * (1 + 1e-15), float(q) * lot)
        for i, (k, q) in enumerate(zip(ticks, lots, strict=True))
    ]
    out = _encode(req, a, rows)
    assert len(out) == 64
    d_px, d_qty = step_decimals(tick)[0], step_decimals(lot)[0]
    for b, k, q in zip(out, ticks, lots, strict=True):
        p = json.loads(b)["params"]
        assert Decimal(p["price"]) == int(k) * dt and Decimal(p["quantity"]) == int(q) * dl
        assert len(p["price"].split(".")[1]) == d_px and len(p["quantity"].split(".")[1]) == d_qty
        assert "e" not in p["price"].lower() + p["quantity"].lower()
    assert req.enc.price(rows[0][3]) == json.loads(out[0])["params"]["price"]  # the text helper agrees
    assert req.enc.quantity(rows[0][4]) == json.loads(out[0])["params"]["quantity"]


def test_step_decimals():
    assert step_decimals(0.01) == (2, 1)
    assert step_decimals(0.5) == (1, 5)
    assert step_decimals(10) == (1, 100)
    assert step_decimals(1e-8) == (8, 1)
    assert step_decimals(5e-05) == (5, 5)
    with pytest.raises(ValueError):
        step_decimals(0.0)


def test_client_ids_follow_binances_rule_and_are_kept_per_order():
    a, req = _requests(session="abcdefghijk")  # 4 + 11 characters: the longest allowed
    ids = []
    big = 2**62
    n = req.encode(_set(a, [(ACT_PLACE, 1, oid, 100.0, 1.0) for oid in (1, 2, big)]), TS)
    assert n == 3
    for i in range(3):
        ids.append(json.loads(req.request(i))["params"]["newClientOrderId"])
    assert ids == ["avmm-abcdefghijk-1", "avmm-abcdefghijk-2", "avmm-abcdefghijk-3"]
    req.state["seq"] = 2**63 - 2  # the longest seq still fits Binance's 36 characters
    req.encode(_set(a, [(ACT_PLACE, 1, 9, 100.0, 1.0)]), TS)
    cid = json.loads(req.request(0))["params"]["newClientOrderId"]
    assert CLIENT_ID.fullmatch(cid) and len(cid) == 36
    assert req.client_id(big) == "avmm-abcdefghijk-3" and req.client_id(9) == cid and req.client_id(5) is None
    assert req.forget(big) and req.client_id(big) is None and not req.forget(big)


def test_unknown_bad_and_full_are_counted_and_skipped():
    a, req = _requests()
    rows = [
        (ACT_CANCEL, 1, 42, 0, 0),  # never placed here
        (ACT_AMEND, 1, 43, 100.0, 1.0),  # never placed here
        (ACT_PLACE, 1, 1, math.nan, 1.0),
        (ACT_PLACE, 1, 2, 0.001, 1.0),  # rounds to 0 ticks
        (ACT_PLACE, 1, 3, 100.0, math.inf),
        (ACT_PLACE, 1, 4, 1e300, 1.0),
        (ACT_PLACE, 1, 5, 100.0, 1.0),
    ]
    out = _encode(req, a, rows)
    assert len(out) == 1 and b'"avmm-s1-1"' in out[0] and b'"id":1,' in out[0]
    assert req.counts() == {"rid": 1, "seq": 1, "unknown": 2, "full": 0, "bad": 4}
    # order ids sharing their slots: the probe window is full, the next one is skipped
    same = [(ACT_PLACE, 1, 6 + j * ID_CAP, 100.0, 1.0) for j in range(ID_PROBE + 1)]
    assert len(_encode(req, a, same)) == ID_PROBE and req.counts()["full"] == 1


def test_encoder_refuses_what_binance_would_refuse():
    with pytest.raises(ValueError, match="venue"):
        OrderEncoder("kraken", "BTCUSDT", 0.01, 0.001)
    with pytest.raises(ValueError, match="symbol"):
        OrderEncoder("binance-spot", "BTC/USDT", 0.01, 0.001)
    with pytest.raises(ValueError, match="prefix"):
        OrderEncoder("binance-spot", "BTCUSDT", 0.01, 0.001, prefix="a-b")
    with pytest.raises(ValueError, match="15 characters"):
        OrderEncoder("binance-spot", "BTCUSDT", 0.01, 0.001, prefix="avmm", session="x" * 12)
    with pytest.raises(ValueError, match="tick"):
        OrderEncoder("binance-spot", "BTCUSDT", math.nan, 0.001)
    with pytest.raises(ValueError, match="ACTION_DTYPE"):
        Requests(OrderEncoder("binance-spot", "BTCUSDT", 0.01, 0.001), np.zeros(3))
    assert len(OrderEncoder("binance-spot", "BTCUSDT", 0.01, 0.001).session) == 6  # a random token
