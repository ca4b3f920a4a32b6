"""The venue's books (`avmm.backtest.accounting`): fees and PnL, linear and inverse contracts."""

from __future__ import annotations

import numpy as np
import pytest

from avmm.backtest.runner import run_backtest
from tests.builders import BOOK, Q, T, stream
from tests.builders import bt_config as cfg


def test_fee_and_pnl_arithmetic():
    # bid fills at 99.99, ask at 100.01 (trade-throughs), end mid 100: gross 0.02, fees on 200 notional
    rows = [BOOK, T(2, 99.98, 1.0, -1), T(2.5, 100.02, 1.0, 1), Q(3, 99.99, 5.0, 100.01, 5.0)]
    r = run_backtest(stream(*rows), cfg("backtest.maker_fee=-0.0001"))
    s = r.summary
    assert s["fills"] == 2
    assert s["pnl_gross"] == pytest.approx(0.02, abs=1e-9)
    assert s["fees"] == pytest.approx(-0.0001 * (99.99 + 100.01), abs=1e-12)
    assert s["pnl_net"] == pytest.approx(0.02 + 0.02, abs=1e-9)
    assert s["unrealized"] == pytest.approx(0.0, abs=1e-12)
    assert s["maker_volume"] == pytest.approx(200.0)
    # open position: bought 1 at 99.99, mid 99.5 at the end (our ask is not reached)
    rows = [BOOK, T(2, 99.98, 1.0, -1), Q(3, 99.49, 5.0, 99.51, 5.0)]
    r = run_backtest(stream(*rows), cfg("backtest.maker_fee=0.0002"))
    s = r.summary
    assert s["fills"] == 1
    assert s["unrealized"] == pytest.approx(99.5 - 99.99, abs=1e-9)
    assert s["fees"] == pytest.approx(0.0002 * 99.99, abs=1e-12)
    assert s["pnl_net"] == pytest.approx(99.5 - 99.99 - 0.0002 * 99.99, abs=1e-9)
    assert s["realized"] == pytest.approx(-0.0002 * 99.99, abs=1e-9)


def test_inverse_contract_arithmetic():
    # 1 contract worth 100 quote: long from 99.99, mark 99.5 -> 100 * (1/99.99 - 1/99.5) base
    rows = [BOOK, T(2, 99.98, 1.0, -1), Q(3, 99.49, 5.0, 99.51, 5.0)]
    r = run_backtest(
        stream(*rows), cfg('backtest.contract="inverse"', "backtest.contract_size=100.0", "backtest.maker_fee=0.0001")
    )
    s = r.summary
    fee = 0.0001 * 100.0 / 99.99
    assert s["currency"] == "base"
    assert s["fees"] == pytest.approx(fee, rel=1e-12)
    assert s["pnl_net"] == pytest.approx(100.0 * (1 / 99.99 - 1 / 99.5) - fee, rel=1e-9)
    assert s["unrealized"] == pytest.approx(100.0 * (1 / 99.99 - 1 / 99.5), rel=1e-9)


def test_markouts_off_changes_nothing_but_the_markouts():
    from avmm.config import load_config
    from avmm.data.synth import generate

    ev = np.concatenate(list(generate(20_000, 4, quote_rate=300.0, trade_rate=80.0)))
    on = run_backtest(ev, load_config(None, []))
    off = run_backtest(ev, load_config(None, ["backtest.markouts=false"]))
    assert on.summary["fills"] > 50
    assert np.isfinite(on.fills["mo"][:10, :4]).all() and np.isnan(off.fills["mo"]).all()
    for name in on.fills.dtype.names:
        if name != "mo":
            assert on.fills[name].tobytes() == off.fills[name].tobytes(), name
    assert on.samples.tobytes() == off.samples.tobytes()
    same = {
        k
        for k in on.summary
        if not k.startswith("markout")
        and k not in ("wall_s", "events_per_s", "wall_s_e2e", "events_per_s_e2e", "config")
    }
    assert {k: on.summary[k] for k in same} == {k: off.summary[k] for k in same}
    assert off.summary["markout_1s"] is None
