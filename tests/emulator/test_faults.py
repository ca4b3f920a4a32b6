"""Fault knobs: the grammar, and each fault as a client sees it."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from avmm.emulator.faults import Fault, parse_fault
from avmm.errors import UserError
from tests.emulator.conftest import run

aiohttp = pytest.importorskip("aiohttp")


def test_grammar():
    assert parse_fault("drop") == Fault("drop", 1, None)
    assert parse_fault("drop:3@1.5") == Fault("drop", 3, 1.5)
    assert parse_fault("stall") == Fault("stall", None, None)
    assert parse_fault("skew:-250") == Fault("skew", -250, None)
    assert parse_fault("lifetime:2").arg == 2
    assert parse_fault("shutdown@2").at_s == 2


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("explode", "unknown fault 'explode'"),
        ("drop:0", "whole number"),
        ("drop:1.5", "whole number"),
        ("drop:x", "not a number"),
        ("close:3", "takes no argument"),
        ("skew", "needs an argument"),
        ("lifetime", "needs an argument"),
        ("stall:-1", "positive"),
        ("drop@-1", "negative"),
        ("drop@soon", "not a number"),
        ("skew:nan", "finite"),
    ],
)
def test_bad_faults_are_one_line(spec, needle):
    with pytest.raises(UserError) as e:
        parse_fault(spec)
    assert needle in str(e.value) and spec in str(e.value) and "\n" not in str(e.value)


async def _post_fault(s, emu, spec):
    async with s.post(emu.url + "/_avmm/fault", json={"fault": spec}) as r:
        return r.status, await r.json()


async def _frames(ws, n=None, timeout=5.0):
    out = []
    end = time.monotonic() + timeout
    while (n is None or len(out) < n) and time.monotonic() < end:
        try:
            m = await asyncio.wait_for(ws.receive(), min(0.5, max(0.01, end - time.monotonic())))
        except TimeoutError:
            if n is None:
                break
            continue
        if m.type != aiohttp.WSMsgType.TEXT:
            out.append(m)
            break
        out.append(json.loads(m.data))
    return out


def test_drop_shows_a_gap_and_reorder_swaps_two_diffs(depth_store):
    async def go():
        from avmm.emulator import Emulator

        async with (
            Emulator(depth_store, speed=0.3) as emu,
            aiohttp.ClientSession() as s,
            s.ws_connect(emu.ws_url + "/ws/btcusdt@depth") as ws,
        ):
            before = await _frames(ws, 5)
            assert await _post_fault(s, emu, "drop") == (200, {"ok": True, "fault": "drop:1"})
            after = await _frames(ws, 5)
            assert await _post_fault(s, emu, "reorder") == (200, {"ok": True, "fault": "reorder"})
            swapped = await _frames(ws, 5)
            st = emu.status()
            bad = await _post_fault(s, emu, "explode")
        return before, after, swapped, st, bad

    before, after, swapped, st, bad = run(go())
    seq = before + after
    gaps = [i for i in range(1, len(seq)) if seq[i]["U"] != seq[i - 1]["u"] + 1]
    assert len(gaps) == 1  # one diff missing
    assert st["dropped"] == 1
    us = [f["u"] for f in after[-1:] + swapped]
    assert any(us[i] < us[i - 1] for i in range(1, len(us)))  # one pair out of order
    assert all(us[i] == sorted(us)[i] for i in (0, 3, 4, 5))  # only the two swapped
    assert sorted(us)[1:] == sorted(us[1:]) and len(set(us)) == len(us)  # nothing lost
    assert bad[0] == 400 and bad[1]["code"] == -1100 and "unknown fault" in bad[1]["msg"]


def test_stall_keeps_the_socket_open_and_sends_nothing(depth_store):
    async def go():
        from avmm.emulator import Emulator

        async with (
            Emulator(depth_store, speed=0.3) as emu,
            aiohttp.ClientSession() as s,
            s.ws_connect(emu.ws_url + "/ws/btcusdt@bookTicker") as ws,
        ):
            await _frames(ws, 3)
            emu.apply_fault("stall:0.6")
            t0 = time.monotonic()
            m = await asyncio.wait_for(ws.receive(), 5)  # the next frame comes after the stall
            waited = time.monotonic() - t0
            assert not ws.closed
            return waited, json.loads(m.data)

    waited, frame = run(go())
    assert waited >= 0.5 and "u" in frame


def test_close_and_shutdown_and_lifetime(depth_store):
    async def go():
        from avmm.emulator import Emulator

        async with Emulator(depth_store, speed=0.3) as emu, aiohttp.ClientSession() as s:
            async with s.ws_connect(emu.ws_url + "/ws/btcusdt@trade") as ws:
                emu.apply_fault("close")
                m = await asyncio.wait_for(ws.receive(), 5)
                while m.type == aiohttp.WSMsgType.TEXT:
                    m = await asyncio.wait_for(ws.receive(), 5)
                closed = (m.type, ws.close_code)
            async with s.ws_connect(emu.ws_url + "/stream?streams=btcusdt@trade") as ws:
                await _post_fault(s, emu, "shutdown")
                got = await _frames(ws, 100)
            shut = [f for f in got if isinstance(f, dict) and f.get("e") == "serverShutdown"]
            assert got[-1].type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
            await _post_fault(s, emu, "lifetime:0.4")
            async with s.ws_connect(emu.ws_url + "/ws/btcusdt@trade") as ws:
                t0 = time.monotonic()
                await _frames(ws, 10_000, timeout=5)
                life = time.monotonic() - t0
                assert ws.closed
            return closed, shut, life

    closed, shut, life = run(go())
    assert closed[0] in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) and closed[1] == 1000
    assert len(shut) == 1 and list(shut[0]) == ["e", "E"] and isinstance(shut[0]["E"], int)
    assert 0.3 <= life < 3.0


def test_skew_moves_the_venue_clock(depth_store):
    async def go():
        from avmm.emulator import Emulator

        async with (
            Emulator(depth_store, venue="binance-um", start_now=True, speed=0.3) as emu,
            aiohttp.ClientSession() as s,
        ):

            async def server_time():
                async with s.get(emu.url + "/fapi/v1/time") as r:
                    return (await r.json())["serverTime"]

            t0 = await server_time()
            await _post_fault(s, emu, "skew:-5000")
            t1 = await server_time()
            async with s.ws_connect(emu.ws_url + "/ws/btcusdt@bookTicker") as ws:
                f = (await _frames(ws, 1))[0]
            return t0, t1, f

    t0, t1, f = run(go())
    assert -5000 - 300 < t1 - t0 < -5000 + 300
    assert abs(f["E"] - (t1 + 5000 - 5000)) < 1000  # the frames carry the skewed clock too


def test_timed_faults_given_at_start(depth_store):
    """A fault given at start with @S fires S seconds into the replay (venue time)."""

    async def go():
        from avmm.emulator import Emulator

        async with (
            Emulator(depth_store, faults=["drop:2@1.0"], max_speed=True) as emu,
            aiohttp.ClientSession() as s,
            s.ws_connect(emu.ws_url + "/ws/btcusdt@depth") as ws,
        ):
            await emu.wait_done(20)
            return await _frames(ws), emu.status()

    got, st = run(go())
    gaps = [i for i in range(1, len(got)) if got[i]["U"] != got[i - 1]["u"] + 1]
    assert st["dropped"] == 2 and len(gaps) == 1
    assert got[gaps[0]]["E"] - got[0]["E"] >= 1000  # not before 1 s of venue time


def test_grammar_of_paths_and_limits():
    assert parse_fault("close@2/public") == Fault("close", None, 2.0, "public")
    assert parse_fault("lifetime:3/market").spec() == "lifetime:3/market"
    assert parse_fault("stall:1@0.5/legacy") == Fault("stall", 1.0, 0.5, "legacy")
    assert parse_fault("msgrate:0") == Fault("msgrate", 0.0)
    assert parse_fault("maxstreams:200").arg == 200


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("drop/public", "acts on every socket"),
        ("close/nowhere", "unknown paths 'nowhere'"),
        ("msgrate", "needs an argument (msgrate:N)"),
        ("msgrate:1.5", "whole number >= 0"),
        ("maxstreams:-1", "whole number >= 0"),
    ],
)
def test_bad_paths_and_limits_are_one_line(spec, needle):
    with pytest.raises(UserError) as e:
        parse_fault(spec)
    assert needle in str(e.value) and spec in str(e.value) and "\n" not in str(e.value)


def test_limit_knobs_given_at_start_hold_at_once(depth_store):
    from avmm.emulator import Emulator

    emu = Emulator(depth_store, venue="binance-um", faults=["msgrate:0", "maxstreams:3", "close@1", "msgrate:7@2"])
    assert (emu.msg_rate, emu.max_streams) == (0, 3)
    assert [f.spec() for f in emu.initial_faults] == ["close@1", "msgrate:7@2"]  # at their time in the replay
    assert (Emulator(depth_store).msg_rate, Emulator(depth_store, venue="binance-um").msg_rate) == (5, 10)
