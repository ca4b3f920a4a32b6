"""The venue's accounting by market (`avmm.backtest.market`, `accounting`): spot balances and
their rejects, USD-M funding payments (constant rate and Binance's files), margin figures, the
market resolved from the data, and results unchanged by default."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from numba import njit

from avmm.backtest import exchange as X
from avmm.backtest import state as BS
from avmm.backtest.config import BacktestConfig
from avmm.backtest.market import AUTO_BALANCE_MULTIPLE, resolve_market
from avmm.backtest.runner import Backtester, run_backtest
from avmm.config import load_config
from avmm.errors import UserError
from tests.builders import BOOK, BT_T0, MS, Q, T, assert_one_line_error, stream, write_lines
from tests.builders import bt_config as cfg

# ---------------------------------------------------------------- spot balances at the venue


@njit
def _request(bparams, bstate, xo, keys, vals, lat, rs, ring, fout, rq, i):
    X.on_request_x(bparams[0], bstate[0], xo, keys, vals, lat, rs, ring, fout, rq[i])


@njit
def _quote(bparams, bstate, xo, keys, vals, lat, rs, ring, fout, t, bid, ask):
    X.on_quote_x(bparams[0], bstate[0], xo, keys, vals, lat, rs, ring, fout, t, bid, 5.0, ask, 5.0)


@njit
def _trade(bparams, bstate, xo, keys, vals, lat, rs, ring, fout, t, px, qty, aggr):
    X.on_trade_x(bparams[0], bstate[0], xo, keys, vals, lat, rs, ring, fout, t, px, qty, aggr)


class Venue:
    """The exchange model alone, spot, driven request by request."""

    def __init__(self, base0: float, quote0: float, maker_fee: float = 0.0005, taker_fee: float = 0.001):
        c = load_config(
            None,
            [
                "quoting.tick=0.01",
                "quoting.lot=1.0",
                "risk.max_position=100.0",
                f"backtest.maker_fee={maker_fee}",
                f"backtest.taker_fee={taker_fee}",
                'backtest.market="spot"',
                f"backtest.initial_base={base0}",
                f"backtest.initial_quote={quote0}",
            ],
        )
        bt = Backtester(c)  # the records as a run sets them up
        self.bp, self.bs, self.xo, self.keys, self.vals = bt.bp, bt.bs, bt.xo, bt.keys, bt.vals
        self.lat = np.array([[MS, MS]], np.int64)
        self.rs = np.zeros(BS.QCAP, BS.MSG_DTYPE)
        self.rq = np.zeros(1, BS.MSG_DTYPE)
        self.ring = np.zeros(BS.MO_CAP, BS.FILL_DTYPE)
        self.fout = np.zeros(4096, BS.FILL_DTYPE)
        self.t = 0

    def _args(self):
        return (self.bp, self.bs, self.xo, self.keys, self.vals, self.lat, self.rs, self.ring, self.fout)

    def send(self, kind, oid, side=1, px=0.0, qty=0.0) -> int:
        """The request's response kind (RS_ACK / RS_REJECT / RS_CANCELED), or 0 for none."""
        self.t += 1
        m = self.rq[0]
        m["ts"], m["kind"], m["oid"], m["side"], m["px"], m["qty"] = self.t, kind, oid, side, px, qty
        tail = int(self.bs["rs_tail"][0])
        _request(*self._args(), self.rq, 0)
        resp = [int(self.rs[i & BS.QMASK]["kind"]) for i in range(tail, int(self.bs["rs_tail"][0]))]
        return resp[0] if resp else 0

    def place(self, oid, side, px, qty):
        return self.send(BS.RQ_PLACE, oid, side, px, qty)

    def cancel(self, oid):
        return self.send(BS.RQ_CANCEL, oid)

    def amend(self, oid, side, px, qty):
        return self.send(BS.RQ_AMEND, oid, side, px, qty)

    def quote(self, bid, ask):
        self.t += 1
        _quote(*self._args(), self.t, bid, ask)

    def trade(self, px, qty, aggr):
        self.t += 1
        _trade(*self._args(), self.t, px, qty, aggr)

    def __getitem__(self, name):
        return float(self.bs[name][0])


ACK, REJ, CXL = BS.RS_ACK, BS.RS_REJECT, BS.RS_CANCELED


def test_spot_orders_the_balances_cannot_cover_are_rejected_until_a_cancel_frees_them():
    v = Venue(base0=1.0, quote0=150.0)
    v.quote(99.99, 100.01)
    lock_buy = 99.99 * 1.001  # price x qty + the larger (taker) fee
    assert v.place(1, 1, 99.99, 1.0) == ACK
    assert v["locked_quote"] == pytest.approx(lock_buy, rel=1e-15)
    assert v.place(2, 1, 99.98, 1.0) == REJ  # 150 - 100.09 left: not enough quote
    assert v.place(3, -1, 100.01, 2.0) == REJ  # 1 base, not 2
    assert v.place(4, -1, 100.01, 1.0) == ACK
    assert v.place(5, -1, 100.02, 1.0) == REJ  # the one base is held for order 4
    assert v["n_rej_balance"] == 3
    assert v["n_rej_risk"] == v["n_rej_post_only"] == 0
    # cancels give the balances back: the same orders now pass
    assert v.cancel(1) == CXL
    assert v["locked_quote"] == 0.0
    assert v.place(6, 1, 99.98, 1.0) == ACK
    assert v.cancel(4) == CXL
    assert v["locked_base"] == 0.0
    assert v.place(7, -1, 100.02, 1.0) == ACK
    assert v["n_rej_balance"] == 3
    assert (v["locked_base"], v["locked_quote"]) == (1.0, pytest.approx(99.98 * 1.001, rel=1e-15))


def test_locked_amounts_follow_fills_and_balances_move_with_fees():
    v = Venue(base0=2.0, quote0=1000.0, maker_fee=0.0002, taker_fee=0.0005)
    v.quote(99.99, 100.01)
    assert v.place(1, 1, 99.99, 3.0) == ACK
    assert v.place(2, -1, 100.01, 2.0) == ACK
    lock_q = 3 * 99.99 * 1.0005
    assert v["locked_quote"] == pytest.approx(lock_q, rel=1e-15)
    # a partial fill of the bid returns its share of the lock
    v.trade(99.99, 6.0, -1)  # 5 ahead (the quote's size), 1 for us
    assert v["pos"] == 1.0
    assert v["locked_quote"] == pytest.approx(lock_q * 2 / 3, rel=1e-12)
    # the ask fills through: all its base leaves the lock and the balance
    v.trade(100.02, 1.0, 1)
    assert v["pos"] == -1.0
    assert v["locked_base"] == 0.0
    base = v["base0"] + v["pos"]
    quote = v["quote0"] + v["cash"]
    assert base == 1.0
    assert quote == pytest.approx(1000 - 99.99 * 1.0002 + 2 * 100.01 * (1 - 0.0002), rel=1e-12)
    # the rest of the bid fills: nothing left held
    v.trade(99.98, 1.0, -1)
    assert v["locked_quote"] == 0.0
    assert v["pos"] == 1.0
    # what is free now: 3 base; a sell of 4 is rejected, of 3 accepted
    assert v.place(3, -1, 100.05, 4.0) == REJ
    assert v.place(4, -1, 100.05, 3.0) == ACK


def test_an_amend_the_balance_cannot_cover_is_rejected_and_the_order_stays():
    v = Venue(base0=0.0, quote0=250.0, maker_fee=0.0, taker_fee=0.0)
    v.quote(99.99, 100.01)
    assert v.place(1, 1, 99.98, 2.0) == ACK
    assert v["locked_quote"] == pytest.approx(199.96)
    assert v.amend(1, 1, 99.98, 3.0) == REJ  # 3 x 99.98 > 250
    assert v["locked_quote"] == pytest.approx(199.96)  # the old order still holds its lock
    assert v.amend(1, 1, 99.97, 2.0) == ACK  # its own lock counts towards the amend
    assert v["locked_quote"] == pytest.approx(199.94)
    assert v.cancel(1) == CXL
    assert v["locked_quote"] == 0.0
    assert v["n_rej_balance"] == 1


def test_spot_run_reports_balances_and_the_strategy_sees_the_rejects():
    # 50 quote cannot buy a lot at 99.99, no base to sell: every order is rejected, nothing fills
    rows = [BOOK, Q(50, 99.99, 5.0, 100.01, 5.0), T(60, 99.98, 1.0, -1), T(70, 100.02, 1.0, 1)]
    bt = Backtester(cfg('backtest.market="spot"', "backtest.initial_base=0", "backtest.initial_quote=50"))
    bt.feed(stream(*rows))
    r = bt.finish()
    s = r.summary
    assert s["market"] == "spot"
    assert s["rejects_balance"] >= 2
    assert s["fills"] == 0
    assert int(bt.mem.state["n_rejects"][0]) == s["rejects_balance"]
    assert (s["initial_base"], s["initial_quote"], s["final_base"], s["final_quote"]) == (0.0, 50.0, 0.0, 50.0)
    # with the default ("auto") balances the same run trades, and the balances follow the fills
    r = run_backtest(stream(*rows), cfg("backtest.maker_fee=0.001"))
    s = r.summary
    f = r.fills
    assert s["rejects_balance"] == 0
    assert s["fills"] == 2
    assert s["initial_base"] == AUTO_BALANCE_MULTIPLE * 10.0  # x risk.max_position
    assert s["initial_quote"] == AUTO_BALANCE_MULTIPLE * 10.0 * 100.0  # x max_position x the first mid
    assert s["final_base"] == s["initial_base"] + float((f["side"] * f["qty"]).sum())
    flows = float((-f["side"] * f["px"] * f["qty"]).sum())
    assert s["final_quote"] == pytest.approx(s["initial_quote"] + flows - s["fees"], rel=1e-12)


# ---------------------------------------------------------------- funding

FUND_T = 1_700_006_400_000_000_000  # 2023-11-15 00:00 UTC: a funding time, 6,400 s after BT_T0
FUND_MS = (FUND_T - BT_T0) / MS


def long_then_quiet(end_ms: float, side: int = 1, every_ms: float = 1_000_000.0) -> np.ndarray:
    """Our bid (side 1) or ask fills at once; then the book stays at mid 100 (nothing else fills),
    a quote every ``every_ms``."""
    fill = T(2, 99.98, 1.0, -1) if side > 0 else T(2, 100.02, 1.0, 1)
    quiet = [Q(t, 99.99, 5.0, 100.01, 5.0) for t in np.arange(1000.0, end_ms, every_ms)]
    return stream(BOOK, fill, *quiet, Q(end_ms, 99.99, 5.0, 100.01, 5.0))


def perp(*sets: str):
    return cfg('backtest.market="perpetual"', "backtest.gap_s=1e6", *sets)


@pytest.mark.parametrize(("side", "rate"), [(1, 0.0001), (1, -0.0001), (-1, 0.0001), (-1, -0.0003)])
def test_constant_funding_rate_pays_at_the_funding_time_with_the_sign_of_the_position(side, rate):
    r = run_backtest(long_then_quiet(FUND_MS + 1, side), perp(f"backtest.funding_rate={rate}"))
    s = r.summary
    assert s["position"] == side
    assert s["funding_payments"] == 1
    pay = -side * 100.0 * rate  # longs pay a positive rate, mark = the mid (100)
    assert s["funding"] == pytest.approx(pay, rel=1e-12)
    base = run_backtest(long_then_quiet(FUND_MS + 1, side), perp())
    assert base.summary["funding"] == 0.0
    assert base.summary["funding_payments"] == 0
    assert s["pnl_net"] - base.summary["pnl_net"] == pytest.approx(pay, rel=1e-9)
    assert r.fills.tobytes() == base.fills.tobytes()
    # booked at the funding time exactly: the sample at that time is before it, the next one after
    smp, ref = r.samples, base.samples
    i = int(np.searchsorted(smp["ts"], FUND_T))
    assert smp["ts"][i] == FUND_T
    assert smp["pnl"][i] == ref["pnl"][i]
    assert smp["pnl"][i + 1] - ref["pnl"][i + 1] == pytest.approx(pay, rel=1e-9)


def test_funding_times_outside_the_data_are_not_booked_and_a_row_at_the_time_comes_after():
    one = perp("backtest.funding_rate=0.0001")
    assert run_backtest(long_then_quiet(FUND_MS - 1), one).summary["funding_payments"] == 0
    assert run_backtest(long_then_quiet(FUND_MS), one).summary["funding_payments"] == 1
    # the data runs from 22:13:20 to 00:59:59 UTC: every hour, 23:00 and 00:00; every 30 minutes,
    # 22:30, 23:00, 23:30, 00:00 and 00:30
    rows = long_then_quiet(FUND_MS + 3_599_000)
    for hours, n in ((1, 2), (0.5, 5)):
        s = run_backtest(rows, perp("backtest.funding_rate=0.0001", f"backtest.funding_interval_h={hours}")).summary
        assert s["funding_payments"] == n
        assert s["funding"] == pytest.approx(-0.01 * n, rel=1e-12)
    # funding inside a gap in the data (no row for 6,400 s) is still booked, at the last mid
    rows = long_then_quiet(FUND_MS + 1, every_ms=1e9)
    g = run_backtest(rows, cfg('backtest.market="perpetual"', "backtest.funding_rate=0.0001"))
    assert g.summary["gaps"] >= 1
    assert g.summary["funding_payments"] == 1
    assert g.summary["funding"] == pytest.approx(-0.01, rel=1e-12)


def _csv(tmp_path, rows, name="BTCUSDT-fundingRate-2023-11.csv"):
    return write_lines(tmp_path / name, ["calc_time,funding_interval_hours,last_funding_rate", *rows])


@pytest.mark.parametrize("form", ["csv", "zip", "json"])
def test_funding_from_binance_files(tmp_path, form):
    ms = FUND_T // 1_000_000
    rates = [(ms - 8 * 3_600_000, 0.5e-4), (ms, 2e-4), (ms + 8 * 3_600_000, 3e-4)]  # before, in, after the data
    if form == "json":
        f = tmp_path / "funding.json"
        f.write_text(
            json.dumps(
                [{"symbol": "BTCUSDT", "fundingTime": t, "fundingRate": str(x), "markPrice": ""} for t, x in rates]
            )
        )
    else:
        f = _csv(tmp_path, [f"{t},8,{x}" for t, x in rates])
        if form == "zip":
            import zipfile

            z = tmp_path / "BTCUSDT-fundingRate-2023-11.zip"
            with zipfile.ZipFile(z, "w") as zf:
                zf.write(f, f.name)
            f = z
    r = run_backtest(long_then_quiet(FUND_MS + 1), perp(f'backtest.funding_file="{f}"'))
    s = r.summary
    assert s["funding_payments"] == 1
    assert s["funding"] == pytest.approx(-100.0 * 2e-4, rel=1e-12)
    assert s["funding_note"] is None


def test_a_funding_file_that_does_not_cover_the_data_is_noted(tmp_path):
    f = _csv(tmp_path, [f"{FUND_T // 1_000_000 + 24 * 3_600_000},8,0.0001"])
    s = run_backtest(long_then_quiet(FUND_MS + 1), perp(f'backtest.funding_file="{f}"')).summary
    assert s["funding_payments"] == 0
    assert "no funding is booked outside the file" in s["funding_note"]


def test_funding_file_of_another_symbol_or_on_spot_is_one_line(tmp_path):
    f = _csv(tmp_path, [f"{FUND_T // 1_000_000},8,0.0001"], name="ETHUSDT-fundingRate-2023-11.csv")
    c = perp(f'backtest.funding_file="{f}"')
    with pytest.raises(UserError, match="ETHUSDT, but the data is BTCUSDT"):
        run_backtest(long_then_quiet(FUND_MS + 1), c, meta={"symbol": "btcusdt"})
    with pytest.raises(UserError, match="funding applies to perpetual markets.*the data is spot"):
        run_backtest(long_then_quiet(FUND_MS + 1), cfg("backtest.funding_rate=0.0001"))
    with pytest.raises(UserError, match="spot balances do not apply to a perpetual"):
        run_backtest(long_then_quiet(10), cfg("backtest.initial_base=1"), meta={"market": "perpetual"})
    with pytest.raises(ValueError, match="not both"):
        BacktestConfig(funding_rate=0.001, funding_file="x.csv")


def test_bad_funding_file_in_the_cli_is_one_line(tmp_path, run_cli):
    f = _csv(tmp_path, ["1700006400000,8,0.0001", "1700035200000,8,oops"])
    r = run_cli(
        "backtest", "--set", 'backtest.market="perpetual"', "--set", f'backtest.funding_file="{f}"', "--no-progress"
    )
    assert_one_line_error(r, f"{f.name}:3", "last_funding_rate 'oops'")
    r = run_cli("backtest", "--set", "backtest.funding_rate=0.0001", "--no-progress")
    assert_one_line_error(r, "funding applies to perpetual markets", "the data is spot")


# ---------------------------------------------------------------- margin


def test_margin_used_and_distance_to_liquidation():
    # long 1 from 99.99, mark 100, wallet 10 + PnL: liquidation where 10 + cash + P = 0.004 P
    rows = long_then_quiet(5000)
    r = run_backtest(rows, perp("backtest.initial_cash=10", "backtest.leverage=20"))
    s = r.summary
    assert s["max_initial_margin"] == pytest.approx(100.0 / 20, rel=1e-12)
    liq = (99.99 - 10.0) / (1 - 0.004)
    assert s["min_liquidation_distance_pct"] == pytest.approx((100.0 - liq) / 100.0 * 100, rel=1e-9)
    assert s["leverage"] == 20.0
    # fully funded (capital = max_position x mid > the long): no liquidation price
    s = run_backtest(rows, perp()).summary
    assert s["min_liquidation_distance_pct"] is None
    assert s["max_initial_margin"] == pytest.approx(5.0)
    # a short from 100.01 at 10 of capital: liquidated when 10 + 100.01 = 1.004 P
    s = run_backtest(long_then_quiet(5000, -1), perp("backtest.initial_cash=10")).summary
    liq = (10.0 + 100.01) / 1.004
    assert s["min_liquidation_distance_pct"] == pytest.approx((liq - 100.0), rel=1e-9)
    # spot: no margin figures
    s = run_backtest(rows, cfg()).summary
    assert s["max_initial_margin"] is None and s["funding"] is None


# ---------------------------------------------------------------- the market


@pytest.mark.parametrize(
    ("meta", "sets", "market"),
    [
        ({}, [], "spot"),
        ({"source": "synth"}, [], "spot"),
        ({"market": "perpetual"}, [], "perpetual"),
        ({"source": "tardis", "sources": ["binance-futures_quotes_2020-02-22_BTCUSDT.csv"]}, [], "perpetual"),
        ({"source": "binance-ws", "sources": ["usdm_btcusdt_20240808.gz"]}, [], "perpetual"),
        ({"source": "binance-ws", "sources": ["spot_btcusdt_20240808.gz"]}, [], "spot"),
        ({"source": "lobster", "market": "spot"}, [], "spot"),
        ({"market": "perpetual"}, ['market="spot"'], "spot"),
        ({}, ['contract="inverse"'], "perpetual"),
    ],
)
def test_market_resolution(meta, sets, market):
    b = load_config(None, [f"backtest.{x}" for x in sets]).backtest
    assert resolve_market(b, meta) == market


def test_default_results_unchanged_on_the_built_in_session():
    """The default spot balances never bind: the run is the same as with no balance check at all
    (a perpetual without funding), bit for bit."""
    from avmm.backtest.session import default_session

    a = run_backtest(default_session(), load_config(None, []))
    b = run_backtest(default_session(), load_config(None, ['backtest.market="perpetual"']))
    assert a.summary["market"] == "spot" and b.summary["market"] == "perpetual"
    assert a.summary["fills"] > 100
    assert a.summary["rejects_balance"] == 0
    assert a.fills.tobytes() == b.fills.tobytes()
    assert a.samples.tobytes() == b.samples.tobytes()
    # funding on a perpetual moves the net PnL by exactly the payments, and nothing else
    sets = ['backtest.market="perpetual"', "backtest.funding_rate=0.0001", "backtest.funding_interval_h=1"]
    c = run_backtest(default_session(), load_config(None, sets))
    assert c.summary["funding_payments"] >= 5
    assert c.fills.tobytes() == b.fills.tobytes()
    assert c.summary["pnl_net"] - b.summary["pnl_net"] == pytest.approx(c.summary["funding"], rel=1e-9, abs=1e-12)
    assert c.summary["funding"] != 0.0
    assert math.isfinite(c.summary["max_initial_margin"])
