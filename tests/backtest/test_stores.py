"""Backtests over several stores and windows (`avmm.backtest.runner`): stores out of order run in
time order with a note, overlapping stores stop with one line naming both, gaps between stores
years apart cost nothing (no equity samples or timer calls across them), the window
``[start_ns, end_ns)``, every fill streamed to ``on_fills``, the equity samples' memory checked up
front."""

from __future__ import annotations

import time

import numpy as np
import pytest

from avmm.backtest.config import BacktestConfig
from avmm.backtest.runner import Backtester, check_sample_memory, plan_stores, run_backtest
from avmm.config import load_config
from avmm.data import store
from avmm.data.synth import generate
from avmm.errors import UserError

YEAR_NS = 365 * 86_400 * 10**9


def _ev(n=20_000, seed=3, shift_ns=0):
    ev = np.concatenate(list(generate(n, seed, quote_rate=100.0, trade_rate=25.0)))
    ev["local_ts"] += shift_ns
    ev["exch_ts"] += shift_ns
    return ev


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("stores")
    a, b = _ev(), _ev(seed=4, shift_ns=3 * YEAR_NS)
    pa_, pb = d / "a.parquet", d / "b.parquet"
    store.write_events(pa_, [a], {"symbol": "X"})
    store.write_events(pb, [b], {"symbol": "X"})
    return pa_, pb, a, b


def _same(r1, r2):
    assert r1.fills.tobytes() == r2.fills.tobytes()
    assert r1.samples.tobytes() == r2.samples.tobytes()
    skip = {"wall_s", "events_per_s", "wall_s_e2e", "events_per_s_e2e"}
    assert {k: v for k, v in r1.summary.items() if k not in skip} == {
        k: v for k, v in r2.summary.items() if k not in skip
    }


def test_stores_out_of_order_run_in_time_order_with_a_note(stores):
    pa_, pb, _, _ = stores
    r_in = run_backtest([pa_, pb])
    r_out = run_backtest([pb, pa_])
    _same(r_in, r_out)
    assert "notes" not in r_in.meta
    assert r_out.meta["files"] == [str(pa_), str(pb)]
    assert r_out.meta["notes"] == [f"stores given out of time order; run in time order: {pa_}, {pb}"]


def test_stores_years_apart_gap_costs_nothing(stores):
    """Two stores three years apart: two samples for the gap instead of ~95M, the timer does not
    tick through it, and the session length and inventory leave it out."""
    pa_, pb, a, b = stores
    cfg = load_config(None, ["backtest.timer_s=0.5"])
    ra, rb = run_backtest(pa_, cfg), run_backtest(pb, cfg)
    t = time.perf_counter()
    bt = Backtester(cfg, backtest=cfg.backtest)
    for ch in (a, b):
        bt.feed(ch)
    r = bt.finish()
    assert time.perf_counter() - t < 30  # seconds, not the hours 95M samples would take
    s = r.summary
    assert s["gaps"] == 1
    gap_s = (int(b["local_ts"][0]) - int(a["local_ts"][-1])) / 1e9
    assert s["gaps_s"] == pytest.approx(gap_s, rel=1e-6)
    assert s["session_s"] == pytest.approx(ra.summary["session_s"] + rb.summary["session_s"], abs=0.01)
    assert len(r.samples) <= len(ra.samples) + len(rb.samples) + 2
    assert np.all(np.diff(r.samples["ts"]) > 0)
    assert int(bt.bs["n_timer"][0]) < 2 * (ra.summary["session_s"] + rb.summary["session_s"]) / 0.5 + 10
    assert s["events"] == len(a) + len(b)
    assert run_backtest([pa_, pb], cfg).summary["gaps"] == 1  # the same through the stores


def test_gap_inside_one_array_and_contiguous_data_unchanged():
    """The first part of a session with a 2-day hole in it is backtested exactly as it is alone;
    a pause shorter than backtest.gap_s is not a gap."""
    a, b = _ev(8000, 5), _ev(8000, 6)
    shift = int(a["local_ts"][-1]) - int(b["local_ts"][0]) + 2 * 86_400 * 10**9
    b["local_ts"] += shift
    b["exch_ts"] += shift
    both = np.concatenate([a, b])
    r = run_backtest(both)
    ra = run_backtest(a)
    na = len(ra.samples)
    assert r.samples[: na - 1].tobytes() == ra.samples[: na - 1].tobytes()  # (ra's last one is its end)
    assert r.summary["gaps"] == 1 and len(r.samples) < 3 * na
    r2 = run_backtest(both, load_config(None, ["backtest.gap_s=1e6"]))
    assert r2.summary["gaps"] == 0 and len(r2.samples) > 2 * 86_400


def test_overlapping_stores_stop_with_one_line_naming_both(tmp_path, stores):
    pa_, _, a, _ = stores
    later = _ev(seed=9, shift_ns=int(a["local_ts"][len(a) // 2] - a["local_ts"][0]))
    pc = tmp_path / "c.parquet"
    store.write_events(pc, [later], {})
    for paths in ([pa_, pc], [pc, pa_]):
        with pytest.raises(UserError) as e:
            run_backtest(paths)
        msg = str(e.value)
        assert "overlap in time" in msg and str(pa_) in msg and str(pc) in msg and "\n" not in msg
    with pytest.raises(UserError, match="overlap"):
        run_backtest([pa_, pa_])  # the same store twice


def test_window_selects_rows_exactly(stores):
    pa_, _, a, _ = stores
    lt = a["local_ts"]
    lo, hi = int(lt[5000]), int(lt[15000])
    sel = a[(lt >= lo) & (lt < hi)]
    r = run_backtest(pa_, start_ns=lo, end_ns=hi)
    _same(r, run_backtest(sel))
    _same(r, run_backtest(a, start_ns=lo, end_ns=hi))
    assert r.summary["events"] == len(sel)
    assert r.meta["window"] == {"start_ns": lo, "end_ns": hi}


def test_window_out_of_range_is_one_line(stores):
    pa_, pb, a, b = stores
    with pytest.raises(UserError, match=r"no data in the window \[.*\): the data spans"):
        run_backtest([pa_, pb], start_ns=int(b["local_ts"][-1]) + 1)
    with pytest.raises(UserError, match="no data in the window"):
        run_backtest(pa_, end_ns=int(a["local_ts"][0]))  # [.., first) holds nothing
    with pytest.raises(UserError, match="is empty"):
        run_backtest(pa_, start_ns=5, end_ns=5)
    # a window covering only the second store drops the first from the run
    plan = plan_stores([pa_, pb], start_ns=int(b["local_ts"][0]))
    assert plan.paths == [pb]


def test_every_fill_streamed_whatever_is_kept():
    ev = _ev(30_000, 7)
    got = []
    cfg = load_config(None, [])
    bt = Backtester(cfg, backtest=cfg.backtest, keep_fills=10, on_fills=lambda f: got.append(f.copy()))
    bt.feed(ev)
    r = bt.finish()
    n = sum(len(f) for f in got)
    assert n == r.summary["fills"] > 10 and len(r.fills) == 10
    allf = np.concatenate(got)
    assert allf[:10].tobytes() == r.fills.tobytes()
    assert np.all(np.diff(allf["ts"]) >= 0)


def test_sample_memory_checked_up_front(stores):
    pa_, pb, _, _ = stores
    tiny = load_config(None, ["backtest.equity_interval_s=1e-9"])
    with pytest.raises(UserError, match=r"equity samples every 1e-09 s over .* h of data need .* GiB .*; raise "):
        run_backtest(pa_, tiny)
    with pytest.raises(UserError, match="raise backtest.equity_interval_s"):
        run_backtest(np.concatenate([stores[2]]), tiny)
    b = BacktestConfig(equity_interval_s=1.0)
    check_sample_memory(b, 86_400 * 10**9, limit=1 << 30)  # a day at 1 s: 12 MiB, fine
    with pytest.raises(UserError, match="need 4.2 GiB"):
        check_sample_memory(b, 365 * 86_400 * 10**9, limit=1 << 30)
    # the gap between the stores is not sampled, so it does not count
    assert plan_stores([pa_, pb]).active_ns(3600 * 10**9) < 10**12
