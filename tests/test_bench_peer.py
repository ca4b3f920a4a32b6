"""``make bench-peer``'s stream generator (benchmarks/peer/stream.py) on a small stream: its statistics
are the peer README's, and the avmm store and hftbacktest's rows describe the same logical events
(hftbacktest itself is not needed)."""

from __future__ import annotations

import importlib.util
import sys
from collections import defaultdict

import numpy as np
import pytest

from avmm.data.store import read_events, read_meta
from avmm.events import BUY, F_EXCH_TS, QUOTE, SELL, TRADE
from tests.builders import MS, REPO


def _load_stream():  # benchmarks/ is not a package
    path = REPO / "benchmarks" / "peer" / "stream.py"
    spec = importlib.util.spec_from_file_location("bench_peer_stream", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


stream = _load_stream()
EVENTS = 30_000


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("peer")
    p = stream.peer_params(EVENTS, seed=3)
    return p, stream.ensure(p, root)


def test_statistics_are_the_peer_readmes():
    p = stream.peer_params(EVENTS, seed=5)
    s = stream.stats(stream.generate(p), p)
    assert s["events"] == EVENTS
    assert s["trades"] / EVENTS == pytest.approx(0.30, abs=0.015)
    assert s["span_s"] == pytest.approx(14_400 * EVENTS / 1e6, rel=0.03)  # 1M events over 4 h
    assert s["p_step0"] == pytest.approx(0.5, abs=0.02)
    assert s["max_abs_step_ticks"] == 3
    assert s["p_spread1"] == pytest.approx(0.85, abs=0.015)
    assert s["mean_spread_ticks"] == pytest.approx(1.22, abs=0.02)
    assert s["sigma_per_sqrt_s"] == pytest.approx(0.75, rel=0.08)
    assert s["median_level_size"] == pytest.approx(1.5, rel=0.05)
    assert s["mean_trade_size"] == pytest.approx(0.05, rel=0.05)
    assert s["p_buy_aggressor"] == pytest.approx(0.5, abs=0.03)


def test_deterministic_in_the_seed_and_cached(files, tmp_path):
    p, f = files
    a, b = stream.generate(p), stream.generate(p)
    assert np.array_equal(a.exch_ts, b.exch_ts) and np.array_equal(a.bid_t, b.bid_t)
    other = stream.peer_params(EVENTS, seed=4)
    assert other.key() != p.key()
    assert not np.array_equal(stream.generate(other).bid_t, a.bid_t)
    mtimes = {k: v.stat().st_mtime_ns for k, v in f.items()}
    again = stream.ensure(p, f["store"].parent.parent)  # reused, not regenerated
    assert again == f and {k: v.stat().st_mtime_ns for k, v in again.items()} == mtimes


def test_avmm_store(files):
    p, f = files
    ev = read_events(f["store"])
    meta = read_meta(f["store"])
    assert len(ev) == EVENTS
    assert meta["tick_size"] == 0.1 and meta["lot_size"] == 0.001
    assert ev["kind"][0] == QUOTE
    assert set(np.unique(ev["kind"]).tolist()) == {QUOTE, TRADE}
    assert np.all(ev["local_ts"] - ev["exch_ts"] == MS)
    assert np.all(np.diff(ev["exch_ts"]) > 0)
    assert np.all(ev["flags"] == F_EXCH_TS)
    q = ev[ev["kind"] == QUOTE]
    assert np.all(q["px"] < q["px2"]) and np.all(q["qty"] > 0) and np.all(q["qty2"] > 0)
    t = ev[ev["kind"] == TRADE]
    assert set(np.unique(t["side"]).tolist()) == {BUY, SELL}
    # on the grids, exactly: prices are tick multiples written as the decimal (n / 10)
    assert np.array_equal(np.round(ev["px"] * 10) / 10, ev["px"])
    assert np.array_equal(np.round(ev["qty"] * 1000) / 1000, ev["qty"])


def _replay(rows: np.ndarray) -> dict[int, tuple]:
    """hftbacktest's rows through an L1 book: per exchange time, (best bid, bid qty, best ask, ask qty)
    after the rows of that time; asserts after every row that the book is not crossed."""
    book: dict[int, dict[float, float]] = {1: {}, -1: {}}
    after: dict[int, tuple] = {}
    trades: dict[int, tuple] = {}
    for ev, ts, px, qty in rows[["ev", "exch_ts", "px", "qty"]].tolist():
        assert ev & stream.HBT_EXCH_EVENT and ev & stream.HBT_LOCAL_EVENT
        side = 1 if ev & stream.HBT_BUY_EVENT else -1
        kind = ev & 0xFF
        if kind == stream.HBT_TRADE_EVENT:
            trades[ts] = (px, qty, side)
            continue
        assert kind == stream.HBT_DEPTH_EVENT
        if qty > 0:
            book[side][px] = qty
        else:
            assert px in book[side], "size 0 only for a level the book holds"
            del book[side][px]
        if book[1] and book[-1]:
            assert max(book[1]) < min(book[-1]), f"crossed at {ts}"
        bb = max(book[1]) if book[1] else None
        ba = min(book[-1]) if book[-1] else None
        after[ts] = (bb, book[1].get(bb), ba, book[-1].get(ba), len(book[1]), len(book[-1]))
    return {"quotes": after, "trades": trades}


def test_hbt_rows_are_the_same_logical_events(files):
    p, f = files
    ev = read_events(f["store"])
    rows = np.load(f["hbt"])["data"]
    assert rows.dtype == stream.HBT_EVENT_DTYPE
    assert np.all(rows["local_ts"] - rows["exch_ts"] == MS)
    assert np.all(np.diff(rows["exch_ts"]) >= 0)
    assert len(rows) / EVENTS == pytest.approx(2.47, abs=0.05)  # the peer README's rows per event
    r = _replay(rows)
    q = ev[ev["kind"] == QUOTE]
    t = ev[ev["kind"] == TRADE]
    # the same quotes: after each quote update's rows the book is that quote, one level a side
    assert len(r["quotes"]) == len(q)
    for ts, bid, bq, ask, aq in q[["exch_ts", "px", "qty", "px2", "qty2"]].tolist():
        assert r["quotes"][ts] == (bid, bq, ask, aq, 1, 1)
    # the same trades: time, price, size, aggressor
    assert len(r["trades"]) == len(t)
    for ts, px, qty, side in t[["exch_ts", "px", "qty", "side"]].tolist():
        assert r["trades"][ts] == (px, qty, side)
    # a trade at the displayed quote: the ask for a buyer, the bid for a seller
    last = defaultdict(float)
    for kind, px, px2, side in ev[["kind", "px", "px2", "side"]].tolist():
        if kind == QUOTE:
            last["bid"], last["ask"] = px, px2
        else:
            assert px == (last["ask"] if side == BUY else last["bid"])


def _load_driver():
    path = REPO / "benchmarks" / "peer" / "bench_peer.py"
    spec = importlib.util.spec_from_file_location("bench_peer_driver", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    saved = list(sys.path)
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path[:] = saved
    return mod


def _run(fills: int, rate: float, **kw) -> dict:
    r = {"events": 1000, "fills": fills, "fill_qty": fills / 100, "orders": 4 * fills, "cancels": 3 * fills}
    r["pnl_gross"] = -1.0
    return {**r, "pnl_net": 2.0, "rejects_post_only": 0, "wall_s": 1000 / rate, "events_per_s": rate, **kw}


def test_driver_summary_medians_and_ratios():
    bp = _load_driver()
    runs = {
        "avmm": [_run(100, r, events_per_s_e2e=r / 2) for r in (4e6, 6e6, 5e6)],
        "hftbacktest": [_run(125, r) for r in (1e6, 3e6, 2e6)],
    }
    s = bp.summarize(runs)
    assert s["avmm"]["events_per_s"] == {"median": 5e6, "min": 4e6, "max": 6e6}
    assert s["avmm"]["counts_identical_across_runs"] is True
    r = s["ratios_avmm_over_hftbacktest"]
    assert r["fills"] == pytest.approx(0.8) and r["orders"] == pytest.approx(0.8)
    assert r["speed"] == pytest.approx(2.5) and r["speed_e2e"] == pytest.approx(1.25)
    text = bp.table(s, {"avmm": "0.1.0", "hftbacktest": "2.4.4"})
    assert "fills 0.800x, orders 0.800x, speed 2.50x (end to end 1.25x); fill volume 0.800x" in text
    assert "5.00M (4.00-6.00M)" in text and "2.00M (1.00-3.00M)" in text


def test_driver_bad_argument_is_one_line(tmp_path):
    import subprocess

    script = REPO / "benchmarks" / "peer" / "bench_peer.py"
    for args in (["--runs", "0"], ["--events", "10"], ["--config", str(tmp_path / "none.toml")]):
        r = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("bench-peer: error: ")
