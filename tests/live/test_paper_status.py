"""The paper session's tick-to-order figure: the ring of samples, what the session records (only the
events whose handling sent orders), and where it shows (status, the rich panel, the Prometheus
gauges)."""

from __future__ import annotations

import socket
import time
import urllib.request

import numpy as np
import pytest

from avmm.live.latency import LatencyRing


def test_the_ring_keeps_the_last_samples_and_their_percentiles():
    r = LatencyRing(8)
    assert r.percentiles_us() == [None, None]
    for v in range(1, 5):
        r.add(v * 1000)
    assert sorted(r.samples().tolist()) == [1000, 2000, 3000, 4000]
    assert r.percentiles_us((50.0, 100.0)) == [2.5, 4.0]
    for v in range(5, 21):  # 20 added: the ring holds 13..20
        r.add(v * 1000)
    assert sorted(r.samples().tolist()) == [v * 1000 for v in range(13, 21)]
    assert r.percentiles_us((0.0,)) == [13.0]
    with pytest.raises(ValueError):
        LatencyRing(100)


@pytest.fixture(scope="module")
def session():
    pytest.importorskip("picows")
    pytest.importorskip("aiohttp")
    from avmm.backtest.config import BacktestConfig
    from avmm.core.config import StrategyConfig
    from avmm.live.config import VenueConfig
    from avmm.live.paper import PaperSession

    cfg = StrategyConfig.model_validate({"model": {"sigma": 0.05, "A": 10.0, "k": 40.0}})  # quotes at once
    s = PaperSession("binance-spot", "BTCUSDT", cfg, BacktestConfig(), VenueConfig())
    s.totals.started = time.monotonic()
    return s


def test_the_session_records_the_events_that_sent_orders(session):
    s = session
    assert s.status()["tick_to_order_us_p50"] is None and s.status()["tick_to_order_us_p99"] is None
    t = 1_700_000_000_000_000_000
    s.on_quote(t, t, 100.0, 1.0, 100.02, 1.0)  # unhealthy: no quoting, nothing recorded
    assert s.tick_to_order.n == 0
    s.trader.set_health(t, True, "ok")
    local = time.time_ns()
    s.on_quote(t + 1_000_000, local, 100.0, 1.0, 100.02, 1.0)  # the first quote places orders
    assert s.tick_to_order.n == 1 and s.trader.sends >= 1
    dt = int(s.tick_to_order.samples()[0])
    assert 0 <= dt <= time.time_ns() - local
    sends = s.trader.sends
    s.on_quote(t + 2_000_000, time.time_ns(), 100.0, 1.0, 100.02, 1.0)  # nothing changed: no requote
    assert s.trader.sends == sends and s.tick_to_order.n == 1
    for v in (10_000, 20_000, 30_000):
        s.tick_to_order.add(v)
    st = s.status()
    want = np.percentile([dt, 10_000, 20_000, 30_000], [50, 99]) / 1e3
    assert st["tick_to_order_us_p50"] == pytest.approx(want[0]) and st["tick_to_order_us_p99"] == pytest.approx(want[1])


def test_the_panel_and_the_gauges_show_it(session):
    from rich.console import Console

    from avmm.cli.paper import METRIC_KEYS, _metrics, _panel

    st = session.status()
    st["tick_to_order_us_p50"], st["tick_to_order_us_p99"] = 12.5, 48.25
    con = Console(width=120, record=True)
    con.print(_panel(st))
    text = con.export_text()
    assert "tick-to-order p50 / p99, µs" in text and "12.5 / 48.2" in text
    assert {"tick_to_order_us_p50", "tick_to_order_us_p99"} <= set(METRIC_KEYS) <= set(st)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    update = _metrics(port)
    update(st)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert "avmm_paper_tick_to_order_us_p50 12.5" in body and "avmm_paper_tick_to_order_us_p99 48.25" in body
