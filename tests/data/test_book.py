"""QUOTE rows derived from the depth book (``avmm.data.book``) for sources without quotes.

Hand-written tardis.dev ``incremental_book_L2`` CSVs and Binance websocket captures, checked row by
row: which batches give a quote and where it lands, its prices / sizes / clocks / flags, one side
empty, the best level removed (also past the top-of-book cache and the table's first size), CLEAR
and a new snapshot, crossed and locked books, chunking; a capture with its own bookTicker quotes
gets none (and does not load numba); the real Binance samples without their bookTicker lines agree
with bookTicker; a depth-only store drives the backtester.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avmm.data import book, store
from avmm.data.convert import convert
from avmm.data.issues import Counters
from avmm.data.readers import tardis
from avmm.events import (
    BUY,
    CLEAR,
    DEPTH,
    EVENT_DTYPE,
    F_DERIVED,
    F_EXCH_TS,
    F_LAST_IN_BATCH,
    QUOTE,
    SELL,
    SNAPSHOT,
    TRADE,
)
from tests.builders import L2_HDR, MS, US, WS_T0, event_rows, l2_row, write_lines, ws_diff, ws_snap, ws_ticker, ws_trade
from tests.builders import TARDIS_T0 as T0

XD = F_EXCH_TS | F_DERIVED


def l2(t: int, snap: bool, side: str, price, amount) -> str:
    """One row at exchange time T0 + t ms, received 100 us later."""
    ts = T0 + t * 1000
    return l2_row(ts, ts + 100, snap, side, price, amount)


def quote(t: int, bid, bq, ask, aq) -> tuple:
    """A derived QUOTE row of the batch at ``t`` ms: (kind, px, qty, px2, qty2, flags, exch_ts, local_ts)."""
    ts = T0 + t * 1000
    return (QUOTE, bid, bq, ask, aq, XD, ts * US, (ts + 100) * US)


def rows(ev: np.ndarray) -> list[tuple]:
    return event_rows(ev, "kind", "px", "qty", "px2", "qty2", "flags", "exch_ts", "local_ts")


def reader_rows(path: Path) -> np.ndarray:
    return np.concatenate([ev for ev, _, _ in tardis.read_tardis(path, Counters())])


def check_placement(ev: np.ndarray) -> None:
    """Every QUOTE follows the last row of its batch: same clocks, F_LAST_IN_BATCH, and the next
    row (if any) is at a later local time."""
    for i in np.flatnonzero(ev["kind"] == QUOTE):
        prev = ev[i - 1]
        assert prev["kind"] in (DEPTH, SNAPSHOT) and prev["flags"] & F_LAST_IN_BATCH
        assert prev["local_ts"] == ev[i]["local_ts"] and prev["exch_ts"] == ev[i]["exch_ts"]
        assert prev["seq"] == ev[i]["seq"]
        if i + 1 < len(ev):
            assert ev[i + 1]["local_ts"] > ev[i]["local_ts"]


# ---------------------------------------------------------------- tardis incremental_book_L2


BOOK = [
    L2_HDR,
    l2(1, True, "bid", "100.0", "3"),  # 2: snapshot with bids only
    l2(1, True, "bid", "99.9", "4"),  # 3: -> no quote (no ask)
    l2(2, False, "ask", "100.5", "1"),  # 4
    l2(2, False, "ask", "100.6", "2"),  # 5: -> 100.0 x 3 / 100.5 x 1
    l2(3, False, "bid", "99.8", "5"),  # 6: behind the best -> no quote
    l2(4, False, "bid", "100.0", "2.5"),  # 7: best size -> 100.0 x 2.5 / 100.5 x 1
    l2(5, False, "bid", "100.0", "0"),  # 8: best removed -> the next level, 99.9 x 4
    l2(6, False, "ask", "100.4", "1"),  # 9: a better ask ...
    l2(6, False, "ask", "100.4", "0"),  # 10: ... gone in the same batch -> no quote
    l2(7, False, "bid", "100.7", "1"),  # 11: bid above the best ask -> crossed: counted, no quote
    l2(8, False, "bid", "100.7", "0"),  # 12: uncrossed again -> 99.9 x 4 / 100.5 x 1
    l2(9, False, "ask", "101.0", "0"),  # 13: removes a level the book does not have -> no quote
    l2(10, True, "ask", "100.3", "1"),  # 14: new snapshot (CLEAR), asks only -> no quote
    l2(11, False, "bid", "100.1", "2"),  # 15: -> 100.1 x 2 / 100.3 x 1
    l2(12, False, "bid", "100.3", "1"),  # 16: locked -> 100.3 x 1 / 100.3 x 1, counted locked_book
]


BOOK_QUOTES = [
    quote(2, 100.0, 3.0, 100.5, 1.0),
    quote(4, 100.0, 2.5, 100.5, 1.0),
    quote(5, 99.9, 4.0, 100.5, 1.0),
    quote(8, 99.9, 4.0, 100.5, 1.0),
    quote(11, 100.1, 2.0, 100.3, 1.0),
    quote(12, 100.3, 1.0, 100.3, 1.0),
]


BOOK_QUOTE_AT = [5, 8, 10, 15, 20, 22]


@pytest.mark.parametrize("gz", [False, True])
def test_l2_derived_quotes_exact(tmp_path, gz):
    f = write_lines(
        tmp_path / ("binance-futures_incremental_book_L2_2020-02-22_BTCUSDT.csv" + (".gz" if gz else "")), BOOK
    )
    out = tmp_path / "o.parquet"
    s = convert([f], out)
    assert s.issues == {"derived_quote": 6, "crossed_book": 1, "locked_book": 1}
    assert s.notes["derived_quote"] == [f"{f.name}:{n}" for n in (5, 7, 8, 12, 15)]  # batch's last line
    assert s.notes["crossed_book"] == [f"{f.name}:11"] and s.notes["locked_book"] == [f"{f.name}:16"]
    assert s.kinds == {"quote": 6, "trade": 0, "depth": 12, "snapshot": 3, "clear": 2}
    ev = store.read_events(out)
    q = ev["kind"] == QUOTE
    assert np.flatnonzero(q).tolist() == BOOK_QUOTE_AT
    assert rows(ev[q]) == BOOK_QUOTES
    assert np.all(ev["seq"][q] == 0) and np.all(ev["side"][q] == 0) and np.all(ev["level"][q] == -1)
    # the rest is the reader's output, untouched
    assert rows(ev[~q]) == rows(reader_rows(f))
    check_placement(ev)
    assert store.read_meta(out)["counters"] == s.issues


def deep_book(path: Path, n: int = 600, removals: int = 150) -> tuple[Path, list[tuple]]:
    """A snapshot of ``n`` levels a side (sizes tell the levels apart), then ``removals`` batches
    each removing the best bid, one putting the first best bid back, and ``removals`` removing the
    best ask. Returns the file and the expected derived quotes."""
    bid = [(f"{100 - 0.01 * i:.2f}", f"{1 + i}") for i in range(n)]
    ask = [(f"{100.01 + 0.01 * i:.2f}", f"{1001 + i}") for i in range(n)]
    lines = [L2_HDR]
    lines += [l2(1, True, "bid", p, a) for p, a in bid] + [l2(1, True, "ask", p, a) for p, a in ask]

    def q(t, b, a):
        return quote(t, float(bid[b][0]), float(bid[b][1]), float(ask[a][0]), float(ask[a][1]))

    exp = [q(1, 0, 0)]
    t = 1
    for i in range(removals):
        t += 1
        lines.append(l2(t, False, "bid", bid[i][0], "0"))
        exp.append(q(t, i + 1, 0))
    t += 1
    lines.append(l2(t, False, "bid", *bid[0]))  # the best is back
    exp.append(q(t, 0, 0))
    for i in range(removals):
        t += 1
        lines.append(l2(t, False, "ask", ask[i][0], "0"))
        exp.append(q(t, 0, i + 1))
    return write_lines(path, lines), exp


def test_l2_best_removed_moves_to_next_level_deep_book(tmp_path):
    """More levels than the top-of-book cache (64) and the table's first size (512 a side), and
    more best-level removals than the cache holds: the best is always the next level."""
    f, exp = deep_book(tmp_path / "l2.csv")
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"derived_quote": len(exp)}
    ev = store.read_events(tmp_path / "o.parquet")
    assert rows(ev[ev["kind"] == QUOTE]) == exp
    check_placement(ev)


def test_l2_chunking_does_not_change_quotes(tmp_path):
    """Reader chunks of any size (batches straddling them): the same rows and counts."""
    f, exp = deep_book(tmp_path / "l2.csv", n=100, removals=80)

    def run(block_size):
        c = Counters()
        parts = list(book.derive_quotes(tardis.read_tardis(f, c, block_size=block_size), c))
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), c

    ref, ref_lines, ref_c = run(1 << 22)
    assert rows(ref[ref["kind"] == QUOTE]) == exp
    for bs in (100, 333, 2000):
        ev, lines, c = run(bs)
        assert rows(ev) == rows(ref) and lines.tolist() == ref_lines.tolist() and c.issues == ref_c.issues


def test_book_kernel_matches_a_plain_replay():
    """Random batches over a moving book (deep levels, removals of the best, CLEARs, crossings)
    against a dict replay, in chunks of several sizes."""
    rng = np.random.default_rng(3)
    recs = []
    gb: dict[int, float] = {}  # the generator's own book (ticks), to uncross it as an exchange would
    ga: dict[int, float] = {}
    t, mid = 1, 10_000

    def put(sd, p, q):
        side = gb if sd == BUY else ga
        if q == 0:
            side.pop(p, None)
        else:
            side[p] = q
        recs.append((t, DEPTH, sd, p, q))

    while len(recs) < 20_000:
        t += 1
        if rng.random() < 0.002 or t == 2:  # resync: CLEAR + snapshot
            recs.append((t, CLEAR, 0, 0, 0.0))
            gb.clear(), ga.clear()
            for j in range(int(rng.integers(1, 300))):
                gb[mid - 1 - j] = ga[mid + 1 + j] = float(rng.integers(1, 9))
                recs.append((t, SNAPSHOT, BUY, mid - 1 - j, gb[mid - 1 - j]))
                recs.append((t, SNAPSHOT, SELL, mid + 1 + j, ga[mid + 1 + j]))
            continue
        if rng.random() < 0.05:
            recs.append((t, TRADE, BUY, mid, 1.0))
            continue
        mid += int(rng.integers(-3, 4))
        for _ in range(int(rng.integers(1, 8))):
            sd = BUY if rng.random() < 0.5 else SELL
            side = gb if sd == BUY else ga
            if side and rng.random() < 0.2:  # remove the best
                put(sd, max(side) if sd == BUY else min(side), 0.0)
                continue
            p = mid - sd * (1 + int(rng.exponential(3 if rng.random() < 0.9 else 200)))
            put(sd, p, 0.0 if rng.random() < 0.3 else float(rng.integers(1, 9)))
        while rng.random() > 0.02 and gb and ga and max(gb) >= min(ga):  # now and then left crossed
            if rng.random() < 0.5:
                put(BUY, max(gb), 0.0)
            else:
                put(SELL, min(ga), 0.0)
    ev = np.zeros(len(recs), dtype=EVENT_DTYPE)
    ev["level"] = -1
    ev["local_ts"] = [r[0] for r in recs]
    ev["exch_ts"] = ev["local_ts"]
    ev["kind"] = [r[1] for r in recs]
    ev["side"] = [r[2] for r in recs]
    ev["px"] = [r[3] / 100 for r in recs]
    ev["qty"] = [r[4] for r in recs]

    # the plain replay: look after the last book row of each local time
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    exp, crossed, last = [], 0, None
    book_rows = np.flatnonzero(np.isin(ev["kind"], [DEPTH, SNAPSHOT, CLEAR]))
    for n, i in enumerate(book_rows):
        r = ev[i]
        if r["kind"] == CLEAR:
            bids.clear(), asks.clear()
            last = None
            continue
        side = bids if r["side"] == BUY else asks
        if r["qty"] == 0:
            side.pop(float(r["px"]), None)
        else:
            side[float(r["px"])] = float(r["qty"])
        nxt = book_rows[n + 1] if n + 1 < len(book_rows) else None
        if nxt is not None and ev[nxt]["local_ts"] == r["local_ts"]:
            continue
        bb = (max(bids), bids[max(bids)]) if bids else (0.0, 0.0)
        ba = (min(asks), asks[min(asks)]) if asks else (0.0, 0.0)
        top = bb + ba
        if top == last:
            continue
        last = top
        if bids and asks:
            if top[0] > top[2]:
                crossed += 1
            else:
                exp.append((int(i),) + top)
    assert len(exp) > 1000 and crossed > 10

    for size in (len(ev), 4099, 257, 7):
        c = Counters()
        chunks = ((ev[a : a + size], np.arange(a, min(a + size, len(ev))), "x") for a in range(0, len(ev), size))
        parts = list(book.derive_quotes(chunks, c))
        out = np.concatenate([p[0] for p in parts])
        lines = np.concatenate([p[1] for p in parts])
        q = out["kind"] == QUOTE
        got = [
            (int(lines[i]), float(out[i]["px"]), float(out[i]["qty"]), float(out[i]["px2"]), float(out[i]["qty2"]))
            for i in np.flatnonzero(q)
        ]
        assert got == exp
        assert np.array_equal(out[~q], ev)
        assert c.issues.get("crossed_book", 0) == crossed and c.issues["derived_quote"] == len(exp)


# ---------------------------------------------------------------- Binance websocket captures


CAPTURE = [
    ws_diff(WS_T0, 101, 103, b=[("100.05", "0.5")]),  # received before the snapshot: applied at it
    ws_snap(WS_T0 + 1 * MS, 100),
    ws_diff(WS_T0 + 2 * MS, 104, 105, b=[("100.05", "0")]),  # best bid removed
    ws_trade(WS_T0 + 3 * MS, 1, um=None),
    ws_diff(WS_T0 + 4 * MS, 106, 107, b=(), a=[("100.1", "0"), ("100.15", "0.25")]),  # best ask replaced
    ws_diff(WS_T0 + 5 * MS, 108, 108, b=[("99.8", "7")]),  # behind the best: no quote
]


def test_binance_depth_only_capture(tmp_path):
    f = write_lines(tmp_path / "btcusdt_depth.gz", CAPTURE)
    s = convert([f], tmp_path / "o.parquet")
    assert s.issues == {"derived_quote": 3}
    ev = store.read_events(tmp_path / "o.parquet")
    q = ev["kind"] == QUOTE
    ms = (WS_T0 // MS) * MS  # E is in milliseconds
    assert rows(ev[q]) == [
        # the snapshot and the buffered diff applied with it share one local time: one quote,
        # after both (the diff's clocks and update id)
        (QUOTE, 100.05, 0.5, 100.1, 1.5, XD, ms, WS_T0 + 1 * MS),
        (QUOTE, 100.0, 1.0, 100.1, 1.5, XD, ms + 2 * MS, WS_T0 + 2 * MS),
        (QUOTE, 100.0, 1.0, 100.15, 0.25, XD, ms + 4 * MS, WS_T0 + 4 * MS),
    ]
    assert ev["seq"][q].tolist() == [103, 105, 107]
    check_placement(ev)
    assert ev["kind"][np.flatnonzero(q)[0] - 6] == CLEAR  # CLEAR, 4 levels, the diff, the quote
    r = backtest(tmp_path / "o.parquet")
    assert r.summary["quotes"] == 3


def test_capture_with_book_ticker_gets_no_derived_quotes(tmp_path):
    """The same capture with bookTicker: its own quotes only; numba is not even loaded."""
    lines = CAPTURE[:2] + [ws_ticker(WS_T0 + 1 * MS + 1, 1)] + CAPTURE[2:] + [ws_ticker(WS_T0 + 6 * MS, 2, a="100.15")]
    f = write_lines(tmp_path / "btcusdt.gz", lines)
    out = tmp_path / "o.parquet"
    code = (
        "import sys; from avmm.data.convert import convert; "
        f"s = convert([{str(f)!r}], {str(out)!r}); "
        "print(s.kinds['quote'], sorted(s.issues), 'numba' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["2", "[]", "False"]
    ev = store.read_events(out)
    assert np.count_nonzero(ev["kind"] == QUOTE) == 2 and not np.any(ev["flags"] & F_DERIVED)
    assert np.count_nonzero(ev["kind"] == DEPTH) == 5  # the depth rows are all there


def test_binance_chained_files_book_unknown_after_a_file_with_quotes(tmp_path):
    """Depth rows of a file with its own quotes are not applied: in the next file (no quotes) the
    book is unknown, so nothing is derived until its own snapshot."""
    a = write_lines(tmp_path / "a.gz", CAPTURE[:2] + [ws_ticker(WS_T0 + 1 * MS + 1, 1)] + CAPTURE[2:4])
    b = write_lines(
        tmp_path / "b.gz",
        [
            ws_diff(WS_T0 + 10 * MS, 106, 107, b=(), a=[("100.1", "0")]),  # continues a's book: not derived
            ws_snap(WS_T0 + 11 * MS, 108),
            ws_diff(WS_T0 + 12 * MS, 109, 109, b=[("100.0", "4.0")]),
        ],
    )
    s = convert([a, b], tmp_path / "o.parquet")
    assert s.issues["derived_quote"] == 2
    ev = store.read_events(tmp_path / "o.parquet")
    d = ev[(ev["kind"] == QUOTE) & (ev["flags"] & F_DERIVED != 0)]
    assert rows(d) == [
        (QUOTE, 100.0, 1.0, 100.1, 1.5, F_DERIVED, WS_T0 + 11 * MS, WS_T0 + 11 * MS),  # spot snapshot: no E
        (QUOTE, 100.0, 4.0, 100.1, 1.5, XD, (WS_T0 // MS + 12) * MS, WS_T0 + 12 * MS),
    ]
    assert np.count_nonzero(ev["kind"] == QUOTE) == 3  # + a's own bookTicker


@pytest.mark.parametrize("name", ["spot_btcusdt_20240808.gz", "usdm_btcusdt_20240808.gz"])
def test_real_capture_without_book_ticker_agrees_with_book_ticker(tmp_path, name, shared_data):
    """The real captures with their bookTicker lines dropped: the derived best bid / ask equals
    bookTicker's at the same book update id (the diff's ``u``), and the store drives a backtest."""
    src = shared_data / "binance_ws_capture" / name
    if not src.is_file():
        pytest.skip(f"{src} not present")
    with gzip.open(src, "rb") as fh:
        depth_only = [ln for ln in fh.read().split(b"\n") if b"@bookTicker" not in ln[:80]]
    f = tmp_path / name
    f.write_bytes(gzip.compress(b"\n".join(depth_only), 1))
    s_full = convert([src], tmp_path / "full.parquet")
    s = convert([f], tmp_path / "depth.parquet")
    assert "derived_quote" not in s_full.issues
    assert s.kinds["quote"] == s.issues["derived_quote"] > 1000 and "crossed_book" not in s.issues
    full = store.read_events(tmp_path / "full.parquet")
    assert not np.any(full["flags"] & F_DERIVED)
    ev = store.read_events(tmp_path / "depth.parquet")
    assert np.all(np.diff(ev["local_ts"]) >= 0)
    check_placement(ev)
    dq = ev[ev["kind"] == QUOTE]
    tq = full[full["kind"] == QUOTE]
    tq = tq[np.argsort(tq["seq"], kind="stable")]
    j = np.searchsorted(tq["seq"], dq["seq"], side="right") - 1  # the last bookTicker at or before u
    assert np.all(j >= 0)
    m = tq[j]
    same = (m["px"] == dq["px"]) & (m["qty"] == dq["qty"]) & (m["px2"] == dq["px2"]) & (m["qty2"] == dq["qty2"])
    assert same.mean() > 0.99, same.mean()
    r = backtest(tmp_path / "depth.parquet")
    assert r.summary["quotes"] == len(dq) and r.summary["orders"] > 0


# ---------------------------------------------------------------- end to end


def backtest(path: Path, *sets: str):
    from avmm.backtest.runner import run_backtest
    from avmm.config import load_config

    return run_backtest(path, load_config(None, ["backtest.timer_s=0", "logging.sample_rate=0.0", *sets]))


def test_depth_only_store_drives_the_backtester(tmp_path):
    """A tardis incremental_book_L2 file alone (a moving 5-level book, no quotes, no trades):
    converted, the strategy sees quotes and places orders."""
    rng = np.random.default_rng(1)
    lines = [L2_HDR]
    mid = 1000  # in ticks of 0.1
    prev: set[tuple[str, int]] = set()
    for b in range(400):
        t = 1 + 100 * b
        mid += int(rng.integers(-1, 2))
        now = {("bid", mid - 1 - i) for i in range(5)} | {("ask", mid + 1 + i) for i in range(5)}
        snap = b == 0
        for side, p in sorted(prev - now):
            lines.append(l2(t, snap, side, f"{p / 10:.1f}", "0"))
        for side, p in sorted(now):
            lines.append(l2(t, snap, side, f"{p / 10:.1f}", f"{rng.integers(1, 50) / 10:.1f}"))
        prev = now
    f = write_lines(tmp_path / "binance-futures_incremental_book_L2_2020-02-22_BTCUSDT.csv.gz", lines)
    s = convert([f], tmp_path / "o.parquet")
    assert s.kinds["quote"] == s.issues["derived_quote"] == 400 and s.kinds["trade"] == 0
    # no trades: the model's parameters are given (the estimators of A and k need trades)
    r = backtest(
        tmp_path / "o.parquet",
        "model.sigma=0.05",
        "model.A=1.0",
        "model.k=10.0",
        "quoting.tick=0.1",
        "quoting.lot=0.1",
        "quoting.size=0.1",
    )
    assert r.summary["quotes"] == 400 and r.summary["orders"] > 0


def test_no_derived_quotes_when_another_source_carries_quotes(tmp_path):
    """tardis quotes converted with their incremental_book_L2 file: one quote stream, the real one."""
    l2p = write_lines(tmp_path / "binance-futures_incremental_book_L2_2020-02-22_BTCUSDT.csv", BOOK)
    ts = T0 + 3000
    qp = write_lines(
        tmp_path / "binance-futures_quotes_2020-02-22_BTCUSDT.csv",
        [
            "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount",
            f"binance-futures,BTCUSDT,{ts},{ts + 100},1,100.5,100.0,3",
        ],
    )
    out = tmp_path / "both.parquet"
    convert([l2p, qp], out)
    ev = store.read_events(out)
    q = ev[ev["kind"] == QUOTE]
    assert len(q) == 1 and not (q["flags"] & F_DERIVED).any()
    assert (ev["kind"] == DEPTH).sum() > 0  # the depth rows are kept for the exchange's queues
    assert "derived_quote" not in store.read_meta(out)["counters"]
    # alone, the same L2 file does get its derived quotes
    convert([l2p], tmp_path / "l2.parquet")
    assert ((store.read_events(tmp_path / "l2.parquet")["flags"] & F_DERIVED) != 0).sum() == len(BOOK_QUOTES)
