"""The Binance gateway against a scripted private Binance (``fake_private.py``): what it sends,
and what the core is told for each answer, fault and race (127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest

from avmm.core.state import ACT_AMEND, ACT_CANCEL, ACT_PLACE, ACTION_DTYPE, MAX_ACTIONS
from avmm.live.binance import BinanceGateway
from avmm.live.config import VenueConfig, with_origin
from avmm.live.keys import Keys
from tests.live.fake_private import FakePrivate

pytestmark = pytest.mark.xdist_group("live")
SESSION = "1700000001"
API_KEY = "k1"
SECRET = "s3cr3t-hmac-value"


class Rec:
    """The core's side: every answer, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.pos = 0.0

    def ack(self, t: int, oid: int, venue_oid: int = 0) -> None:
        self.calls.append(("ack", oid))

    def reject(self, t: int, oid: int, code: int = 0) -> None:
        self.calls.append(("reject", oid, code))

    def canceled(self, t: int, oid: int) -> None:
        self.calls.append(("canceled", oid))

    def fill(self, t, oid, side, px, qty, fee, trade_id=0, maker=1) -> None:  # noqa: ANN001
        self.pos += side * qty
        self.calls.append(("fill", oid, side, round(qty, 6), trade_id))

    def unknown(self, t: int, oid: int, code: int) -> None:
        self.calls.append(("unknown", oid, code))

    def external_fill(self, t, side, px, qty, fee, trade_id) -> None:  # noqa: ANN001
        self.pos += side * qty
        self.calls.append(("external", side, round(qty, 6), trade_id))

    def set_position(self, t: int, pos: float, reason: str) -> None:
        self.pos = pos
        self.calls.append(("position", pos))

    def gateway_event(self, kind: str, text: str) -> None:
        pass

    def kinds(self, oid: int | None = None) -> list[str]:
        return [c[0] for c in self.calls if oid is None or (len(c) > 1 and c[1] == oid)]


def ed_keys() -> tuple[Keys, Any]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    k = Ed25519PrivateKey.generate()
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return Keys.ed25519_key(API_KEY, pem), k.public_key()


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    end = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


def run(
    body: Callable[[FakePrivate, BinanceGateway, Rec, Any], Awaitable[None]],
    um: bool = False,
    hmac_key: bool = False,
    setup: Callable[[FakePrivate], Any] | None = None,
    **venue: Any,
) -> None:
    async def main() -> None:
        if hmac_key:
            keys = Keys.hmac_key(API_KEY, SECRET)
            fake = FakePrivate(um=um, secret=SECRET)
        else:
            keys, pub = ed_keys()
            fake = FakePrivate(um=um, public_key=pub)
        url = await fake.start()
        if setup is not None:
            r = setup(fake)
            if asyncio.iscoroutine(r):
                await r
        opts = {"request_timeout_s": 0.5, "backoff_min_s": 0.02, "countdown_s": 30.0, **venue}
        vname = "binance-um" if um else "binance-spot"
        vcfg = with_origin(VenueConfig(**opts), url, vname)
        rec = Rec()
        actions = np.zeros(MAX_ACTIONS, dtype=ACTION_DTYPE)
        gw = BinanceGateway(vname, "BTCUSDT", vcfg, keys, actions, rec, session=SESSION)  # type: ignore[arg-type]
        gw.position = lambda: rec.pos
        task = asyncio.get_running_loop().create_task(gw.run())
        try:
            await until(lambda: gw.ready or gw.halted is not None, 120.0)  # (a cold numba cache compiles the encoder)

            def send(*acts: tuple, seq0: int = 0) -> None:
                for i, (kind, oid, side, px, qty) in enumerate(acts):
                    actions[i] = (kind, side, oid, 0, px, qty, 0)
                gw.seq0 = seq0
                gw.send(1, actions, len(acts))

            await body(fake, gw, rec, send)
        finally:
            await gw.close(0.5)
            task.cancel()
            with contextlib_suppress():
                await task
            await fake.stop()

    asyncio.run(main())


class contextlib_suppress:  # noqa: N801 (a tiny suppress for CancelledError)
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: Any) -> bool:
        return True


def place(oid: int, side: int = 1, px: float = 99.0, qty: float = 0.01) -> tuple:
    return (ACT_PLACE, oid, side, px, qty)


def test_place_ack_fill_cancel_spot_ed25519_logon():
    """Logged on with Ed25519: the order frame carries no signature; ack from the answer, one
    fill per trade id (a repeated event dropped), the cancel once (answer and report)."""

    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        send(place(1))
        await until(lambda: "ack" in rec.kinds(1))
        m, p = next(r for r in fake.requests if r[0] == "order.place")
        assert "signature" not in p and "apiKey" not in p and p["type"] == "LIMIT_MAKER"
        assert p["newClientOrderId"] == f"avmm-{SESSION}-1" and p["newOrderRespType"] == "ACK"
        cid = p["newClientOrderId"]
        await fake.fill(cid, 0.004, dup=True)
        await until(lambda: "fill" in rec.kinds(1))
        await asyncio.sleep(0.05)
        send((ACT_CANCEL, 1, 1, 99.0, 0.006))
        await until(lambda: "canceled" in rec.kinds(1))
        await asyncio.sleep(0.05)
        assert rec.kinds(1) == ["ack", "fill", "canceled"]
        assert gw.c.dup_fills == 1 and not gw.orders

    run(body)


def test_client_ids_are_the_journal_records_seqs_even_when_actions_drop_out():
    """With a journal, the i-th action's client id number is its record's seq (seq0 + i): an
    action answered locally (a cancel of an order already gone) does not shift the others'."""

    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        send((ACT_CANCEL, 77, 1, 99.0, 0.01), place(1), place(2, side=-1, px=101.0), seq0=100)
        await until(lambda: rec.kinds(1) == ["ack"] and rec.kinds(2) == ["ack"])
        cids = sorted(r[1]["newClientOrderId"] for r in fake.requests if r[0] == "order.place")
        assert cids == [f"avmm-{SESSION}-101", f"avmm-{SESSION}-102"]
        assert rec.kinds(77) == ["canceled"]
        send(place(3), seq0=200)  # the encoder's marks were cleared: no leftover number
        send(place(4))
        await until(lambda: rec.kinds(4) == ["ack"])
        cids = [r[1]["newClientOrderId"] for r in fake.requests if r[0] == "order.place"][-2:]
        assert cids == [f"avmm-{SESSION}-200", f"avmm-{SESSION}-201"]

    run(body)


def test_fill_to_replacement_is_timed_from_the_reports_frame_to_the_orders_sent():
    """A fill whose handling sends orders (the core's replacement) is one fill -> order sample
    (the report frame's arrival to the frames handed to the socket); a fill that sends nothing is
    none."""

    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        send(place(1), place(2, side=-1, px=101.0))
        await until(lambda: rec.kinds(1) == ["ack"] and rec.kinds(2) == ["ack"])
        cid1, cid2 = (r[1]["newClientOrderId"] for r in fake.requests if r[0] == "order.place")
        await fake.fill(cid2, 0.004)  # nothing sent in answer
        await until(lambda: "fill" in rec.kinds(2))
        assert gw.fill_to_order.n == 0
        plain = rec.fill
        rec.fill = lambda *a, **k: (plain(*a, **k), send(place(3)))  # type: ignore[method-assign]
        await fake.fill(cid1, 0.004)
        await until(lambda: rec.kinds(3) == ["ack"])
        st = gw.status()
        assert st["fill_to_order_n"] == 1 and 0 < st["fill_to_order_us_p50"] < 1e6

    run(body)


def test_hmac_key_signs_every_request_and_subscribes_with_signature():
    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        send(place(1))
        await until(lambda: "ack" in rec.kinds(1))
        p = next(r[1] for r in fake.requests if r[0] == "order.place")
        assert p["apiKey"] == API_KEY and len(p["signature"]) == 64 and fake.bad_signatures == 0
        assert any(r[0] == "userDataStream.subscribe.signature" for r in fake.requests)

    run(body, hmac_key=True)


def test_delayed_ack_and_fill_before_ack_ack_once():
    """The order's report (NEW, then a fill) before the answer: acked once, the fill after it."""

    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        hold = asyncio.Event()

        async def slow_place(p: dict) -> Any:
            fake.hooks.pop("order.place")
            fake.events_first = True
            out = await fake.place(p)
            await fake.fill(p["newClientOrderId"], 0.002)
            await hold.wait()
            return out

        fake.hooks["order.place"] = slow_place
        send(place(1))
        await until(lambda: "fill" in rec.kinds(1))
        hold.set()
        await asyncio.sleep(0.1)
        assert rec.kinds(1) == ["ack", "fill"]

    run(body)


def test_would_take_is_a_reject():
    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        async def take(p: dict) -> Any:
            return 400, {"code": -2010, "msg": "Order would immediately match and take."}

        fake.hooks["order.place"] = take
        send(place(1))
        await until(lambda: "reject" in rec.kinds(1))
        assert rec.calls[-1] == ("reject", 1, -2010) and gw.c.would_take == 1 and not gw.orders

    run(body)


def test_executed_then_unknown_is_resolved_not_failed():
    """-1007 (timeout at the venue) after the order was placed: 'unknown', then the query finds it
    working: acked, never rejected."""

    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        async def executed_then_timeout(p: dict) -> Any:
            await fake.place(p)
            return 400, {"code": -1007, "msg": "Timeout waiting for response from backend server."}

        fake.hooks["order.place"] = executed_then_timeout
        send(place(1))
        await until(lambda: "ack" in rec.kinds(1))
        assert rec.kinds(1)[0] == "unknown" and "reject" not in rec.kinds(1)
        assert any(r[0] == "order.status" for r in fake.requests)

    run(body)


def test_lost_answer_times_out_then_query_says_never_placed():
    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        async def lost(p: dict) -> Any:
            return None  # never answered, never placed

        fake.hooks["order.place"] = lost
        send(place(1))
        await until(lambda: "reject" in rec.kinds(1), 5.0)
        assert rec.kinds(1) == ["unknown", "reject"]

    run(body)


def test_reconnect_reconciles_missed_fill_and_cancels_ours():
    """The API connection closed with an order working and a fill the stream never sent: not
    ready, then reconnected; the reconciliation delivers the fill (once) and cancels the order."""

    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        send(place(1, qty=0.01))
        await until(lambda: "ack" in rec.kinds(1))
        cid = next(r[1] for r in fake.requests if r[0] == "order.place")["newClientOrderId"]
        readies: list[bool] = []
        gw.on_ready = lambda ok, why: readies.append(ok)
        await fake.close_api()
        await fake.fill(cid, 0.003, send=False)
        await until(lambda: False in readies)
        await until(lambda: gw.ready, 5.0)
        assert rec.kinds(1) == ["ack", "fill", "canceled"]
        assert fake.orders[cid]["status"] == "CANCELED" and abs(rec.pos - 0.003) < 1e-12
        assert gw.c.reconnects == 1

    run(body)


@pytest.mark.parametrize("policy", ["ignore", "cancel"])
def test_foreign_order_at_start(policy):
    def setup(fake: FakePrivate) -> None:
        fake.add_order("web_123", "BUY", 90.0, 1.0)
        fake.add_order("avmm-1600000000-7", "SELL", 110.0, 1.0)  # ours, an earlier session's

    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        assert fake.orders["avmm-1600000000-7"]["status"] == "CANCELED"
        want = "CANCELED" if policy == "cancel" else "NEW"
        assert fake.orders["web_123"]["status"] == want
        r = gw.first_reconcile
        assert r.open_ours == 1 and r.open_foreign == 1

    run(body, setup=setup, foreign_orders=policy)


def test_an_earlier_sessions_partly_filled_order_its_fills_booked_once_then_cancelled():
    """A restart: an order of ours from an earlier session still open at the venue and partly
    filled (a fill the journal may not hold): cancelled, its trades booked as external fills, once."""

    async def setup(fake: FakePrivate) -> None:
        fake.add_order("avmm-1600000000-7", "BUY", 99.0, 0.01)
        await fake.fill("avmm-1600000000-7", 0.004, send=False)

    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        assert fake.orders["avmm-1600000000-7"]["status"] == "CANCELED"
        tid = fake.trades[0]["id"]
        assert [c for c in rec.calls if c[0] == "external"] == [("external", 1, 0.004, tid)]
        assert gw.first_reconcile.open_ours == 1 and gw.first_reconcile.external_fills == 1

    run(body, setup=setup)


def test_order_budget_never_exceeded():
    """A burst beyond the share of the ORDERS limit: the rest are rejected to the core, counted."""

    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        for i in range(1, 31):
            send(place(i, px=90.0 + i * 0.01))
        await asyncio.sleep(0.3)
        sent = sum(1 for r in fake.requests if r[0] == "order.place")
        assert sent == int(0.8 * 20)  # venue.rate_share of exchangeInfo's 20 per 10 s
        assert gw.c.throttled == 30 - sent and rec.kinds().count("reject") == 30 - sent
        assert max(gw.limits.max_orders_used.values()) <= 16

    run(body)


def test_clock_skew_minus_1021_resyncs():
    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        fake.time_skew_ms = -6000  # the venue's clock jumps 6 s back: our timestamps are ahead
        send(place(1))
        await until(lambda: "reject" in rec.kinds(1))
        assert rec.calls[-1] == ("reject", 1, -1021)
        await until(lambda: abs(gw.clock.offset_ns / 1e6 + 6000) < 200)
        send(place(2))
        await until(lambda: "ack" in rec.kinds(2))
        assert gw.c.clock_resyncs >= 1

    run(body, recv_window_ms=1000)


def test_429_blocks_orders_and_418_halts():
    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        async def too_many(p: dict) -> Any:
            return 429, {"code": -1003, "msg": "Too many requests.", "data": {"retryAfter": fake.now_ms() + 2000}}

        fake.hooks["order.place"] = too_many
        send(place(1))
        await until(lambda: "reject" in rec.kinds(1))
        fake.hooks.pop("order.place")
        send(place(2))
        assert rec.kinds(2) == ["reject"] and gw.c.throttled == 1  # blocked until retryAfter

        async def ban(p: dict) -> Any:
            return 418, {"code": -1003, "msg": "Way too many requests; IP banned until 1.", "data": {}}

        fake.hooks["order.cancel"] = ban
        gw.limits.blocked_until_ns = 0
        fake.hooks.pop("order.place", None)
        send(place(3))
        await until(lambda: "ack" in rec.kinds(3))
        send((ACT_CANCEL, 3, 1, 99.0, 0.01))
        await until(lambda: gw.halted is not None)
        assert "418" in gw.halted and not gw.ready

    run(body)


def test_spot_amend_is_cancel_replace_with_a_new_client_id():
    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        send(place(1))
        await until(lambda: "ack" in rec.kinds(1))
        send((ACT_AMEND, 1, 1, 98.5, 0.02))
        await until(lambda: rec.kinds(1).count("ack") == 2)
        p = next(r[1] for r in fake.requests if r[0] == "order.cancelReplace")
        assert p["cancelOrigClientOrderId"] == f"avmm-{SESSION}-1" and p["newClientOrderId"] == f"avmm-{SESSION}-2"
        assert p["cancelReplaceMode"] == "STOP_ON_FAILURE"
        await fake.fill(f"avmm-{SESSION}-2", 0.02)
        await until(lambda: "fill" in rec.kinds(1))
        await asyncio.sleep(0.05)
        assert rec.kinds(1) == ["ack", "ack", "fill", "canceled"]  # (filled: the order's end)

    run(body)


def test_spot_amend_of_the_quantity_down_keeps_priority():
    """The same price, less left: order.amend.keepPriority, newQty = executed + left, the same
    client id; a price change is still a cancel-replace."""

    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        cid = f"avmm-{SESSION}-1"
        send(place(1, qty=0.02))
        await until(lambda: "ack" in rec.kinds(1))
        await fake.fill(cid, 0.005)
        await until(lambda: "fill" in rec.kinds(1))
        send((ACT_AMEND, 1, 1, 99.0, 0.01))  # 0.015 left -> 0.01 left
        await until(lambda: rec.kinds(1).count("ack") == 2)
        p = next(r[1] for r in fake.requests if r[0] == "order.amend.keepPriority")
        assert p["origClientOrderId"] == cid == p["newClientOrderId"] and p["newQty"] == "0.015"
        assert fake.orders[cid]["qty"] == 0.015 and gw.c.keep_amends == 1
        send((ACT_AMEND, 1, 1, 98.0, 0.01))  # another price: a cancel-replace
        await until(lambda: rec.kinds(1).count("ack") == 3)
        assert any(r[0] == "order.cancelReplace" for r in fake.requests)
        await asyncio.sleep(0.05)
        assert rec.kinds(1) == ["ack", "fill", "ack", "ack"]

    run(body)


def test_stream_terminated_resubscribes_and_reconciles():
    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        n0 = gw.c.reconciles
        await fake.terminate_stream()
        await until(lambda: gw.c.reconciles > n0 and gw.ready)
        assert sum(1 for r in fake.requests if r[0] == "userDataStream.subscribe") == 2

    run(body)


def test_usdm_listen_key_stream_fills_expiry_countdown_and_position():
    def setup(fake: FakePrivate) -> None:
        fake.position = 0.5  # the venue's position at start

    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        assert rec.calls[0] == ("position", 0.5)  # corrected to the venue's before any quote
        assert fake.countdowns and fake.countdowns[-1] == 30000
        send(place(1))
        await until(lambda: "ack" in rec.kinds(1))
        p = next(r[1] for r in fake.requests if r[0] == "order.place")
        assert p["timeInForce"] == "GTX" and p["type"] == "LIMIT"
        cid = p["newClientOrderId"]
        await fake.fill(cid, 0.004)
        await until(lambda: "fill" in rec.kinds(1))
        keys0 = fake.listen_keys
        await fake.expire_listen_key()
        await until(lambda: fake.listen_keys > keys0 and gw.ready, 5.0)
        await fake.fill(cid, 0.001)
        await until(lambda: rec.kinds(1).count("fill") == 2)
        assert abs(rec.pos - 0.505) < 1e-9

    run(body, um=True, setup=setup)


def test_an_order_older_than_max_order_age_is_cancelled():
    """Spot's dead-man switch beside the cancel-all on reconnect: venue.max_order_age_s."""

    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        send(place(1))
        await until(lambda: "ack" in rec.kinds(1))
        await until(lambda: "canceled" in rec.kinds(1), 5.0)
        assert gw.order_age_cancels == 1 and fake.orders[f"avmm-{SESSION}-1"]["status"] == "CANCELED"

    run(body, max_order_age_s=0.5)


def test_usdm_dead_man_switch_off_at_the_end():
    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        assert fake.countdowns == [30000]
        await gw.close(0.1)
        assert fake.countdowns[-1] == 0

    run(body, um=True)


def test_close_cancels_what_is_left():
    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        send(place(1), place(2, side=-1, px=101.0))
        await until(lambda: len([k for k in rec.kinds() if k == "ack"]) == 2)
        await gw.close(0.2)
        assert all(o["status"] == "CANCELED" for o in fake.orders.values())
        assert sorted(c[1] for c in rec.calls if c[0] == "canceled") == [1, 2]

    run(body)


def test_keys_never_in_the_frames_logged(caplog):
    """The gateway's log lines and status carry no key material."""
    seen: list[str] = []

    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        send(place(1))
        await until(lambda: "ack" in rec.kinds(1))
        seen.append(json.dumps(gw.status(), default=str))
        seen.append(repr(gw.keys))

    with caplog.at_level("DEBUG"):
        run(body, hmac_key=True)
    text = "\n".join(seen) + caplog.text
    assert SECRET not in text


@pytest.mark.parametrize("hmac_key", [False, True])
def test_a_write_that_fails_leaves_its_orders_unknown(hmac_key):
    """The requests go to the socket first and are recorded after: a write that fails (logged on:
    the one write of the batch; HMAC: one signed frame each, the second failing) leaves the orders
    it carried unknown (resolved by the reconciliation), the ones written before it not."""

    async def body(fake: FakePrivate, gw: BinanceGateway, rec: Rec, send: Any) -> None:
        calls = {"n": 0}

        def boom(data: Any) -> None:
            calls["n"] += 1
            if not hmac_key or calls["n"] >= 2:
                raise ConnectionError("the socket is gone")

        if hmac_key:
            assert not gw.api.logged_on
            gw.api.send_order = boom  # type: ignore[method-assign]
        else:
            assert gw.api.logged_on
            gw.api.send_frames = boom  # type: ignore[method-assign]
        send((ACT_PLACE, 1, 1, 100.0, 0.01), (ACT_PLACE, 2, -1, 101.0, 0.01), (ACT_PLACE, 3, 1, 99.0, 0.01))
        unknown = [oid for oid in (1, 2, 3) if gw.orders[oid].unknown]
        assert unknown == ([2, 3] if hmac_key else [1, 2, 3])
        assert calls["n"] == (3 if hmac_key else 1)
        assert (gw.sent_ns > 0) == hmac_key  # the send time only when a request went (HMAC: the first)

    run(body, hmac_key=hmac_key)
