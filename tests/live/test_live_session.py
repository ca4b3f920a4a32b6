"""``LiveSession``: the emulator's market data drives the core; its orders go through the Binance
gateway to a scripted private side (``fake_private.py``); fills reach the core, the records and the
journal; the end cancels everything at the venue (127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("picows")
pytest.importorskip("aiohttp")

from tests.live.fake_private import FakePrivate  # noqa: E402
from tests.live.test_binance_gateway import API_KEY, ed_keys  # noqa: E402
from tests.live.test_paper_emulator import capture  # noqa: E402

pytestmark = pytest.mark.xdist_group("live")
SPEED = 20.0


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live")


async def _until(cond: Any, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def _session(root: Path, name: str, venue: str, body: Any, dry_run: bool = False, **venue_opts: Any) -> Any:
    from avmm.backtest.runner import _strategy_only, adapt_config
    from avmm.config import load_config
    from avmm.emulator import EmulatorThread
    from avmm.live.config import with_origin
    from avmm.live.journal import Journal
    from avmm.live.session_live import LiveSession

    store = capture(name, root, 60.0)
    keys, pub = ed_keys()
    cfg = load_config(None, [])
    j = root / f"{name}-{dry_run}.db"
    out: dict[str, Any] = {"journal": j}

    async def main() -> None:
        fake = FakePrivate(um=venue == "binance-um", public_key=pub, api_key=API_KEY)
        furl = await fake.start()
        with EmulatorThread(store, venue=venue, speed=SPEED) as emu:
            vc = with_origin(cfg.venue, emu.url, venue)
            path = "/ws-fapi/v1" if venue == "binance-um" else "/ws-api/v3"
            vc = vc.model_copy(update={"ws_api_url": furl.replace("http", "ws") + path, **venue_opts})
            from avmm.live.paper import instrument

            info = await instrument(venue, "BTCUSDT", vc)
            strat = _strategy_only(adapt_config(cfg, info))
            journal = Journal(j, {"venue": venue, "symbol": "BTCUSDT", "config": {
                **strat.model_dump(mode="json"), "backtest": cfg.backtest.model_dump(mode="json")}})  # fmt: skip
            s = LiveSession(
                venue, "BTCUSDT", strat, cfg.backtest, vc, keys, session_id="1700000002", journal=journal,
                dry_run=dry_run,
            )  # fmt: skip
            task = asyncio.get_running_loop().create_task(s.run(None))
            try:
                await body(fake, s)
            finally:
                s.stop()
                out["summary"] = await task
                journal.close()
            out["fake"] = fake
            out["status"] = s.status()
        await fake.stop()

    asyncio.run(main())
    return out


def test_spot_session_places_fills_and_cancels_all_at_the_end(root):
    async def body(fake: FakePrivate, s: Any) -> None:
        await _until(lambda: len(fake.orders) >= 2, 120.0)
        cid = next(c for c, o in fake.orders.items() if o["status"] == "NEW")
        await fake.fill(cid, round(fake.orders[cid]["qty"] / 2, 3) or 0.001)
        await _until(lambda: s.status()["fills"] >= 1, 10.0)
        # tick-to-order, wire to wire: a frame's sample is the gateway's write less its arrival;
        # a frame whose handling wrote nothing (held back, not ready) gives none
        import time

        assert s.venue_after
        ring, w0, n0 = s.tick_to_order, s.gwy.sent_ns, s.tick_to_order.n
        t = time.time_ns()
        s.gwy.sent_ns = t - 1
        s._sent(t)
        assert ring.n == n0
        s.gwy.sent_ns = t + 5_000
        s._sent(t)
        assert ring.n == n0 + 1 and ring.buf[n0 & ring.mask] == 5_000
        s.gwy.sent_ns = w0

    out = _session(root, "spot_btcusdt_20240808", "binance-spot", body)
    fake, summ = out["fake"], out["summary"]
    assert all(o["status"] in ("CANCELED", "FILLED") for o in fake.orders.values())  # nothing left
    assert summ["fills"] == 1 and summ["gateway"]["venue_fills"] == 1
    pos = [t for t in fake.trades][0]
    sgn = 1 if pos["isBuyer"] else -1
    assert abs(summ["live"]["position_core"] - sgn * float(pos["qty"])) < 1e-12
    assert summ["gateway"]["open_orders"] == 0 and summ["gateway"]["in_flight"] == 0
    # the journal reads back as a paper journal does
    from avmm.cli.paper import journal_result

    res = journal_result(out["journal"])
    assert res.summary["fills"] == 1


def test_dry_run_sends_no_order(root):
    async def body(fake: FakePrivate, s: Any) -> None:
        await _until(lambda: s.gwy.c.dry_orders >= 4, 120.0)

    out = _session(root, "spot_btcusdt_20240808", "binance-spot", body, dry_run=True)
    fake = out["fake"]
    assert not fake.orders and not any(r[0] == "order.place" for r in fake.requests)
    assert any(r[0] == "openOrders.status" for r in fake.requests)  # it reconciled
    assert out["status"]["mode"] == "dry-run" and out["summary"]["gateway"]["dry_orders"] >= 4
    assert json.dumps(out["summary"], default=str)
