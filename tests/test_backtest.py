"""Backtester correctness: hand-built event sequences with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from avmm.backtest.runner import Backtester, run_backtest
from avmm.config import load_config
from avmm.events import QUOTE, TRADE, empty

MS = 1_000_000
T0 = 1_700_000_000_000_000_000


def stream(*rows):
    """rows: (exch_ms, local_ms, kind, px, qty, px2, qty2, side)."""
    ev = empty(len(rows))
    for i, (e, l, k, px, q, px2, q2, sd) in enumerate(rows):
        ev[i] = (T0 + int(e * MS), T0 + int(l * MS), 0, px, q, px2, q2, k, sd, 0, -1)
    return ev


def Q(t, bid, bq, ask, aq, local=None):
    return (t, t if local is None else local, QUOTE, bid, bq, ask, aq, 0)


def T(t, px, q, side, local=None):
    return (t, t if local is None else local, TRADE, px, q, 0.0, 0.0, side)


def cfg(*sets, entry=1.0, resp=1.0, size=1.0, queue="risk-averse"):
    """A strategy that quotes at once (fixed sigma, A, k) one lot a side, spread pinned to 2 ticks
    around the mid; no timer."""
    base = [
        "model.sigma=0.001",
        "model.A=1.0",
        "model.k=100.0",
        "model.gamma=0.01",
        "quoting.tick=0.01",
        "quoting.lot=1.0",
        f"quoting.size={size}",
        "quoting.min_spread=0.02",
        "quoting.max_spread=0.02",
        "risk.max_position=10.0",
        "backtest.timer_s=0",
        f"backtest.entry_latency_ms={entry}",
        f"backtest.response_latency_ms={resp}",
        f'backtest.queue_model="{queue}"',
        "backtest.maker_fee=0.0",
        "backtest.taker_fee=0.0",
        "logging.sample_rate=0.0",
    ]
    return load_config(None, base + list(sets))


def fills_of(res):
    f = res.fills
    return [
        (int((t - T0) // 1000), int(s), float(p), float(q)) for t, s, p, q in zip(f["ts"], f["side"], f["px"], f["qty"])
    ]


BOOK = Q(0, 99.99, 5.0, 100.01, 5.0)  # our bid joins 99.99 behind 5, our ask 100.01 behind 5


def test_queue_behind_five_fills_after_3_then_2_not_before():
    # trades of 3 then 2 at our price take the queue in front of us; the next trade fills us
    base = [BOOK, T(2, 99.99, 3.0, -1), T(3, 99.99, 2.0, -1)]
    r = run_backtest(stream(*base), cfg())
    assert r.summary["fills"] == 0
    r = run_backtest(stream(*base, T(4, 99.99, 1.0, -1)), cfg())
    assert fills_of(r) == [(4000, 1, 99.99, 1.0)]
    # 3 then 3: the second trade has 1 left after the queue: it fills us
    r = run_backtest(stream(BOOK, T(2, 99.99, 3.0, -1), T(3, 99.99, 3.0, -1)), cfg())
    assert fills_of(r) == [(3000, 1, 99.99, 1.0)]


def test_trade_through_fills_at_once():
    r = run_backtest(stream(BOOK, T(2, 99.98, 0.5, -1)), cfg())
    assert fills_of(r) == [(2000, 1, 99.99, 1.0)]  # whole order, at our price, despite the queue
    r = run_backtest(stream(BOOK, T(2, 100.02, 0.5, 1)), cfg())
    assert fills_of(r) == [(2000, -1, 100.01, 1.0)]


def test_order_invisible_before_entry_latency():
    c = cfg(entry=10.0)
    r = run_backtest(stream(BOOK, T(5, 99.98, 1.0, -1), T(10, 99.98, 1.0, -1)), c)
    assert r.summary["fills"] == 0  # arrives at 10 ms: a row stamped 10 ms is not matched against it
    r = run_backtest(stream(BOOK, T(5, 99.98, 1.0, -1), T(10.001, 99.98, 1.0, -1)), c)
    assert fills_of(r) == [(10001, 1, 99.99, 1.0)]


def test_strategy_never_sees_events_before_local_time():
    # the exchange has the trade-through at 2 ms, the strategy learns of it at 50 ms (feed latency):
    # the fill happens at exchange time, the strategy's position changes only after the response
    bt = Backtester(cfg(resp=5.0))
    bt.feed(stream(BOOK, T(2, 99.98, 1.0, -1, local=50)))
    r = bt.finish()
    assert fills_of(r) == [(2000, 1, 99.99, 1.0)]
    assert bt.mem.state["pos"][0] == 1.0


def test_fill_while_cancel_in_flight_is_honoured():
    # at 20 ms the mid jumps: the strategy cancels its 99.99 bid (cancel arrives at 30 ms);
    # a trade through 99.99 at 25 ms still fills it
    rows = [BOOK, Q(20, 100.49, 5.0, 100.51, 5.0), T(25, 99.98, 1.0, -1), Q(40, 100.49, 5.0, 100.51, 5.0)]
    r = run_backtest(stream(*rows), cfg(entry=10.0))
    assert r.summary["cancels"] >= 1
    assert (25000, 1, 99.99, 1.0) in fills_of(r)
    # the same trade after the cancel has arrived fills nothing at 99.99
    rows = [BOOK, Q(20, 100.49, 5.0, 100.51, 5.0), T(31, 99.98, 1.0, -1), Q(40, 100.49, 5.0, 100.51, 5.0)]
    r = run_backtest(stream(*rows), cfg(entry=10.0))
    assert all(f[2] != 99.99 for f in fills_of(r))


def test_post_only_reject_seen_after_response_latency():
    # the book moves at exchange time 0.5 ms; the strategy sees it only at 5 ms, so its 99.99 bid
    # arrives (1 ms) at a book whose ask is 99.99: rejected, known to the strategy at 2 ms
    rows = [BOOK, Q(0.5, 99.97, 5.0, 99.99, 5.0, local=5), Q(1.5, 99.97, 5.0, 99.99, 5.0, local=6)]
    bt = Backtester(cfg())
    bt.feed(stream(*rows))
    r = bt.finish()
    assert r.summary["rejects_post_only"] == 1
    assert r.summary["fills"] == 0
    assert bt.mem.state["n_rejects"][0] == 1


def test_partial_fills():
    # our 3-lot bid at 99.99 improves the book (nobody ahead): trades of 1 then 5 fill 1 then 2
    rows = [Q(0, 99.98, 5.0, 100.02, 5.0), T(2, 99.99, 1.0, -1), T(2.5, 99.99, 5.0, -1)]
    r = run_backtest(stream(*rows), cfg(size=3.0))
    assert fills_of(r) == [(2000, 1, 99.99, 1.0), (2500, 1, 99.99, 2.0)]


def test_queue_models_on_size_decrease():
    # 5 ahead of us, then 4 join behind (9), then 4 leave without trading (5): risk-averse keeps
    # all 5 ahead; prob-power (n=2) takes 25/41 of the decrease from ahead (5 - 2.44 = 2.56 left),
    # so the trade of 4 that follows fills us in that model only
    rows = [BOOK, Q(2, 99.99, 9.0, 100.01, 5.0), Q(3, 99.99, 5.0, 100.01, 5.0), T(4, 99.99, 4.0, -1)]
    r = run_backtest(stream(*rows), cfg(queue="risk-averse"))
    assert r.summary["fills"] == 0
    for qm in ("prob-power", "prob-log"):
        r = run_backtest(stream(*rows), cfg(queue=qm))
        assert fills_of(r) == [(4000, 1, 99.99, 1.0)], qm


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


def test_chunking_does_not_change_results():
    from avmm.data.synth import generate

    ev = np.concatenate(list(generate(30_000, 3, quote_rate=200.0, trade_rate=50.0)))
    c = load_config(None, ["backtest.chunk_events=1000"])
    a = run_backtest(ev, c)
    b = run_backtest(ev, load_config(None, ["backtest.chunk_events=100000"]))
    assert a.fills.tobytes() == b.fills.tobytes()
    assert a.samples.tobytes() == b.samples.tobytes()
    assert a.summary["fills"] > 0


def test_same_input_bit_identical_output():
    from avmm.data.synth import generate

    ev = np.concatenate(list(generate(40_000, 5, quote_rate=200.0, trade_rate=50.0)))
    c = load_config(None, ['backtest.latency_model="lognormal"'])
    a, b = run_backtest(ev, c), run_backtest(ev, c)
    assert a.fills.tobytes() == b.fills.tobytes()
    assert a.samples.tobytes() == b.samples.tobytes()
    skip = {"wall_s", "events_per_s"}
    assert {k: v for k, v in a.summary.items() if k not in skip} == {
        k: v for k, v in b.summary.items() if k not in skip
    }


def test_l1_queue_behind_best_front_or_fraction():
    # our bid 99.98 (spread pinned to 4 ticks) arrives after the exchange's best bid moved up to
    # 99.99: the size at 99.98 is unknown on L1 data; it was 4 when 99.98 was the best
    rows = [Q(0, 99.98, 4.0, 100.02, 4.0), Q(0.5, 99.99, 2.0, 100.01, 2.0, local=5), T(2, 99.98, 1.0, -1, local=6)]
    wide = ("quoting.min_spread=0.04", "quoting.max_spread=0.04")
    r = run_backtest(stream(*rows), cfg(*wide, 'backtest.l1_unknown_queue="front"'))
    assert fills_of(r) == [(2000, 1, 99.98, 1.0)]
    r = run_backtest(
        stream(*rows), cfg(*wide, 'backtest.l1_unknown_queue="fraction"', "backtest.l1_queue_fraction=1.0")
    )
    assert r.summary["fills"] == 0  # 4 ahead
    rows[-1] = T(2, 99.98, 3.0, -1, local=6)
    r = run_backtest(
        stream(*rows), cfg(*wide, 'backtest.l1_unknown_queue="fraction"', "backtest.l1_queue_fraction=0.5")
    )
    assert fills_of(r) == [(2000, 1, 99.98, 1.0)]  # 2 ahead, the trade of 3 leaves 1 for us


def test_l2_depth_gives_the_queue():
    from avmm.events import DEPTH

    # the depth says 5 at 99.99 (the quote row says 1): we join behind 5
    rows = [
        (0, 0, DEPTH, 99.99, 5.0, 0.0, 0.0, 1),
        (0, 0, DEPTH, 100.01, 5.0, 0.0, 0.0, -1),
        Q(0, 99.99, 1.0, 100.01, 1.0),
        T(2, 99.99, 3.0, -1),
    ]
    r = run_backtest(stream(*rows), cfg())
    assert r.summary["fills"] == 0 and r.summary["depth_rows"] == 2
    r = run_backtest(stream(*rows, T(3, 99.99, 3.0, -1)), cfg())
    assert fills_of(r) == [(3000, 1, 99.99, 1.0)]
    # the level at our price emptied without trades: nobody is ahead any more
    r = run_backtest(stream(*rows, (2.5, 2.5, DEPTH, 99.99, 0.0, 0.0, 0.0, 1), T(3, 99.99, 1.0, -1)), cfg())
    assert fills_of(r) == [(3000, 1, 99.99, 1.0)]


def test_recorded_latencies(tmp_path):
    f = tmp_path / "lat.csv"
    f.write_text("entry_ns,response_ns\n10000000,1000000\n")
    c = cfg('backtest.latency_model="recorded"', f'backtest.latency_file="{f}"')
    r = run_backtest(stream(BOOK, T(5, 99.98, 1.0, -1), T(11, 99.98, 1.0, -1)), c)
    assert fills_of(r) == [(11000, 1, 99.99, 1.0)]  # 10 ms entry latency from the file
    from avmm.errors import UserError

    f.write_text("entry_ns,response_ns\n-5,1\n")
    with pytest.raises(UserError):
        run_backtest(stream(BOOK), c)
