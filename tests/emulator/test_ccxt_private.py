"""A third-party client trades on the emulator unchanged, only its URLs pointed at it: ccxt's
``binance`` and ``binanceusdm`` with an HMAC key place (LIMIT, post-only), query, list, cancel
orders and read the balance and the trades over the signed REST, and ccxt.pro's ``create_order_ws``,
``fetch_open_orders_ws`` and ``cancel_order_ws`` go over the WebSocket API."""

from __future__ import annotations

import asyncio

import pytest

from avmm.backtest.config import BacktestConfig
from avmm.emulator import Emulator
from tests.emulator.conftest import churn_rows, run, write_store

ccxtpro = pytest.importorskip("ccxt.pro")
pytest.importorskip("aiohttp")
pytestmark = pytest.mark.xdist_group("live")

KEYS = [{"api_key": "ccxt", "type": "hmac", "secret": "ccxt-secret"}]
NO_EXTRAS = {"fetchCurrencies": False, "fetchMargins": False}


def _spot(emu: Emulator):
    ex = ccxtpro.binance(
        {"apiKey": "ccxt", "secret": "ccxt-secret", "options": {"fetchMarkets": {"types": ["spot"]}, **NO_EXTRAS}}
    )
    ex.urls["api"]["public"] = ex.urls["api"]["private"] = emu.url + "/api/v3"
    ex.urls["api"]["ws"]["spot"] = emu.ws_url + "/ws"
    ex.urls["api"]["ws"]["ws-api"]["spot"] = emu.ws_url + "/ws-api/v3"
    return ex, "BTC/USDT"


def _usdm(emu: Emulator):
    ex = ccxtpro.binanceusdm(
        {"apiKey": "ccxt", "secret": "ccxt-secret", "options": {"fetchMarkets": {"types": ["linear"]}, **NO_EXTRAS}}
    )
    for k in ("fapiPublic", "fapiPrivate"):
        ex.urls["api"][k] = emu.url + "/fapi/v1"
    for k in ("fapiPublicV2", "fapiPrivateV2"):
        ex.urls["api"][k] = emu.url + "/fapi/v2"
    for k in ("fapiPublicV3", "fapiPrivateV3"):
        ex.urls["api"][k] = emu.url + "/fapi/v3"
    ex.urls["api"]["ws"]["linear"] = emu.ws_url + "/ws"
    ex.urls["api"]["ws"]["ws-api"]["linear"] = emu.ws_url + "/ws-fapi/v1"
    return ex, "BTC/USDT:USDT"


@pytest.mark.parametrize("venue", ["binance-spot", "binance-um"])
def test_ccxt_trades_over_rest_and_the_websocket_api(tmp_path, venue):
    from avmm.emulator.keys import parse_keys

    path = write_store(tmp_path / "churn.parquet", churn_rows(60.0))
    money = {"initial_cash": 10_000.0} if venue == "binance-um" else {"initial_base": 10.0, "initial_quote": 1e5}
    bt = BacktestConfig.model_validate(money)

    # built outside the timed run: the accounts' exchange models load (or, on a cold cache, compile) here
    emulator = Emulator(path, venue=venue, speed=1.0, start_now=True, keys=parse_keys(KEYS), backtest=bt)

    async def go():
        async with emulator as emu:
            ex, sym = _spot(emu) if venue == "binance-spot" else _usdm(emu)
            try:
                await ex.load_markets()
                resting = await ex.create_order(sym, "limit", "buy", 0.01, 98.0, {"postOnly": True})
                fetched = await ex.fetch_order(resting["id"], sym)
                listed = await ex.fetch_open_orders(sym)
                canceled = await ex.cancel_order(resting["id"], sym)
                filled = await ex.create_order(sym, "limit", "buy", 0.02, 99.99, {"postOnly": True})
                for _ in range(100):  # the next sell through 99.99 fills it
                    if (await ex.fetch_order(filled["id"], sym))["status"] == "closed":
                        break
                    await asyncio.sleep(0.05)
                trades = await ex.fetch_my_trades(sym)
                balance = await ex.fetch_balance()
                try:
                    await ex.create_order(sym, "limit", "buy", 0.01, 100.05, {"postOnly": True})
                    taker = None
                except Exception as e:  # the post-only that would take
                    taker = type(e).__name__
                ws_order = await ex.create_order_ws(sym, "limit", "sell", 0.01, 101.0, {"postOnly": True})
                ws_open = (
                    await ex.fetch_open_orders_ws(sym) if venue == "binance-spot" else await ex.fetch_open_orders(sym)
                )
                ws_cancel = await ex.cancel_order_ws(ws_order["id"], sym)
                return resting, fetched, listed, canceled, filled, trades, balance, taker, ws_order, ws_open, ws_cancel
            finally:
                await ex.close()

    resting, fetched, listed, canceled, filled, trades, balance, taker, ws_order, ws_open, ws_cancel = run(go(), 120)
    assert resting["status"] == "open" and resting["price"] == 98.0 and resting["amount"] == 0.01
    assert fetched["id"] == resting["id"] and fetched["status"] == "open"
    assert [o["id"] for o in listed] == [resting["id"]]
    assert canceled["status"] == "canceled"
    (t,) = trades
    assert (t["order"], t["price"], t["amount"], t["side"], t["takerOrMaker"]) == (
        filled["id"],
        99.99,
        0.02,
        "buy",
        "maker",
    )
    assert t["fee"]["cost"] == pytest.approx(0.0002 * 99.99 * 0.02) and t["fee"]["currency"] == "USDT"
    if venue == "binance-spot":
        assert balance["BTC"]["total"] == pytest.approx(10.02)
        assert balance["USDT"]["total"] == pytest.approx(1e5 - 99.99 * 0.02 * 1.0002)
    else:
        assert balance["USDT"]["total"] == pytest.approx(10_000.0 - 0.0002 * 99.99 * 0.02)
    assert taker == ("OrderImmediatelyFillable" if venue == "binance-spot" else "InvalidOrder")
    assert ws_order["status"] == "open" and [o["id"] for o in ws_open] == [ws_order["id"]]
    assert ws_cancel["status"] == "canceled"
