"""Builders the tests share: event rows, backtest streams and configs, source files line by line
(tardis.dev CSV, Binance websocket captures, LOBSTER pairs), and checks of the CLI's error line.

Plain functions and constants, imported as ``from tests.builders import ...``; the fixtures that
use them live in ``tests/conftest.py``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np

from avmm.events import BUY, DEPTH, QUOTE, SELL, TRADE, empty

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"  # the real samples (tests skip without them)

MS = 1_000_000  # ns per millisecond
US = 1_000  # ns per microsecond


# ---------------------------------------------------------------- event arrays
def event_rows(ev: np.ndarray, *names: str) -> list[tuple]:
    """The rows of an ``EVENT_DTYPE`` array as tuples of plain Python values of ``names``."""
    return [tuple(r) for r in ev[list(names)].tolist()]


def kinds(ev: np.ndarray) -> list[int]:
    return [int(k) for k in ev["kind"]]


def check_sample_events(ev: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Checks every converted real sample passes (sorted, quotes and trades in ``(lo, hi)``, quotes
    not crossed, sizes positive, sides known); returns its quotes and trades."""
    assert len(ev) > 0
    assert np.all(np.diff(ev["local_ts"]) >= 0), "sorted by local_ts"
    q = ev[ev["kind"] == QUOTE]
    t = ev[ev["kind"] == TRADE]
    assert len(q) > 0 and len(t) > 0
    assert np.all((q["px"] > lo) & (q["px"] < hi) & (q["px2"] > lo) & (q["px2"] < hi))
    assert np.all(q["px"] < q["px2"])
    assert np.all((t["px"] > lo) & (t["px"] < hi) & (t["qty"] > 0))
    assert set(np.unique(t["side"])) <= {BUY, SELL}
    assert np.all(ev["exch_ts"] > 0)
    return q, t


# ---------------------------------------------------------------- backtest streams and configs
BT_T0 = 1_700_000_000_000_000_000  # ns: the origin of the hand-built backtest streams


def stream(*rows) -> np.ndarray:
    """An event array from rows ``(exch_ms, local_ms, kind, px, qty, px2, qty2, side)`` (times in
    ms after ``BT_T0``)."""
    ev = empty(len(rows))
    for i, (e, l, k, px, q, px2, q2, sd) in enumerate(rows):
        ev[i] = (BT_T0 + int(e * MS), BT_T0 + int(l * MS), 0, px, q, px2, q2, k, sd, 0, -1)
    return ev


def Q(t, bid, bq, ask, aq, local=None) -> tuple:
    """A QUOTE row for ``stream`` at exchange time ``t`` ms (``local`` defaults to ``t``)."""
    return (t, t if local is None else local, QUOTE, bid, bq, ask, aq, 0)


def T(t, px, q, side, local=None) -> tuple:
    """A TRADE row for ``stream``; ``side`` is the aggressor's."""
    return (t, t if local is None else local, TRADE, px, q, 0.0, 0.0, side)


BOOK = Q(0, 99.99, 5.0, 100.01, 5.0)  # our bid joins 99.99 behind 5, our ask 100.01 behind 5


def D(t, px, q, side, kind=DEPTH) -> tuple:
    """A depth row (DEPTH unless ``kind``) for ``stream``."""
    return (t, t, kind, px, q, 0.0, 0.0, side)


def bt_config(*sets: str, entry=1.0, resp=1.0, size=1.0, queue="risk-averse"):
    """A strategy that quotes at once (fixed sigma, A, k) one lot a side, spread pinned to 2 ticks
    around the mid; no timer, no fees; ``sets`` are more ``--set`` overrides."""
    from avmm.config import load_config

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


def fills_of(res) -> list[tuple[int, int, float, float]]:
    """``(µs after BT_T0, side, px, qty)`` of each fill of a backtest result."""
    f = res.fills
    return [
        (int((t - BT_T0) // 1000), int(s), float(p), float(q))
        for t, s, p, q in zip(f["ts"], f["side"], f["px"], f["qty"], strict=True)
    ]


def make_engine(base: dict[str, dict[str, Any]], **sections: dict[str, Any]):
    """An ``Engine`` from the config sections ``base``, each of ``sections`` merged into its own."""
    from avmm.config import Config
    from avmm.core.engine import Engine

    cfg = {sec: dict(vals) for sec, vals in base.items()}
    for sec, vals in sections.items():
        cfg.setdefault(sec, {}).update(vals)
    return Engine(Config.model_validate(cfg))


# ---------------------------------------------------------------- files
def write_lines(path: Path, lines: list[str], newline: str = "\n", end: bool = True) -> Path:
    """``lines`` joined by ``newline`` (and one at the end unless not ``end``); gzip when the name
    ends with ``.gz``."""
    data = (newline.join(lines) + (newline if end else "")).encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def write_toml(folder: Path, text: str) -> Path:
    """A config file ``cfg.toml`` in ``folder``."""
    p = folder / "cfg.toml"
    p.write_text(text)
    return p


# ---------------------------------------------------------------- tardis.dev CSV
TARDIS_T0 = 1_582_329_600_000_000  # 2020-02-22 00:00:00 UTC, microseconds
QUOTES_HDR = "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount"
TRADES_HDR = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
L2_HDR = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"


def quote_rows(n: int, t0: int = 1_600_000_000_000_000, step: int = 1000) -> list[str]:
    """``n`` tardis quotes rows (no header), ``step`` µs apart, received 50 µs later."""
    return [f"x,BTCUSDT,{t0 + i * step},{t0 + i * step + 50},1.0,100.{i % 9 + 1},100.0,2.0" for i in range(n)]


def trade_rows(n: int, t0: int = 1_600_000_000_000_000, step: int = 1000) -> list[str]:
    """``n`` tardis trades rows (no header), ids 1..n, sides alternating."""
    return [
        f"x,BTCUSDT,{t0 + i * step},{t0 + i * step + 50},{i + 1},{'buy' if i % 2 else 'sell'},100.5,0.1"
        for i in range(n)
    ]


def l2_row(ts_us: int, lt_us: int, snap: bool, side: str, price, amount) -> str:
    """One tardis ``incremental_book_L2`` row."""
    return f"binance-futures,BTCUSDT,{ts_us},{lt_us},{'true' if snap else 'false'},{side},{price},{amount}"


def snap_hdr(n: int) -> str:
    """The header of a tardis ``book_snapshot_N`` file."""
    return "exchange,symbol,timestamp,local_timestamp," + ",".join(
        f"asks[{i}].price,asks[{i}].amount,bids[{i}].price,bids[{i}].amount" for i in range(n)
    )


def snap_row(ts_us: int, lt_us: int, n: int, asks: list, bids: list) -> str:
    """One book_snapshot_N row; levels beyond the given ones are empty cells."""
    cells = []
    for i in range(n):
        a = asks[i] if i < len(asks) else ("", "")
        b = bids[i] if i < len(bids) else ("", "")
        cells += [str(a[0]), str(a[1]), str(b[0]), str(b[1])]
    return f"binance-futures,BTCUSDT,{ts_us},{lt_us}," + ",".join(cells)


# an incremental_book_L2 file: a snapshot, diffs (one removes a level), a later snapshot
# (reconnect), a diff removing a level; local times L0..L4 (µs)
L0, L1, L2, L3, L4 = (
    TARDIS_T0 + 100,
    TARDIS_T0 + 1_100,
    TARDIS_T0 + 2_100,
    TARDIS_T0 + 60_000_100,
    TARDIS_T0 + 60_001_100,
)
L2_SAMPLE = [
    L2_HDR,
    l2_row(TARDIS_T0, L0, True, "ask", "100.5", "1.0"),  # line 2
    l2_row(TARDIS_T0, L0, True, "ask", "100.6", "2.0"),
    l2_row(TARDIS_T0, L0, True, "bid", "100.0", "3.0"),
    l2_row(TARDIS_T0, L0, True, "bid", "99.9", "4.0"),  # line 5
    l2_row(TARDIS_T0 + 1_000, L1, False, "bid", "100.1", "0.5"),  # line 6
    l2_row(TARDIS_T0 + 1_000, L1, False, "ask", "100.5", "0"),  # line 7: level removed
    l2_row(TARDIS_T0 + 2_000, L2, False, "ask", "100.7", "1.25"),  # line 8
    l2_row(TARDIS_T0 + 60_000_000, L3, True, "bid", "100.2", "1"),  # line 9: snapshot again (reconnect)
    l2_row(TARDIS_T0 + 60_000_000, L3, True, "ask", "100.4", "1"),  # line 10
    l2_row(TARDIS_T0 + 60_001_000, L4, False, "bid", "100.2", "0"),  # line 11: level removed
]
# two book_snapshot rows: (asks, bids)
SNAP_B1 = ([("100.5", "1"), ("100.6", "3")], [("100.0", "2"), ("99.9", "4"), ("99.8", "6")])
SNAP_B2 = ([("100.4", "0.5"), ("100.5", "1.5"), ("100.6", "2.5")], [("100.1", "7")])


# ---------------------------------------------------------------- Binance websocket captures
WS_T0 = 1_723_161_254_000_000_000  # ns
WS_SNAP = ([["100.0", "1.0"], ["99.9", "2.0"]], [["100.1", "1.5"], ["100.2", "3.0"]])  # (bids, asks)


def ws_env(ts: int, stream: str, data: dict) -> str:
    """A capture line: ``<local ns> {"stream": ..., "data": ...}``."""
    return f"{ts} {json.dumps({'stream': stream, 'data': data}, separators=(',', ':'))}"


def ws_ticker(ts: int, u: int, b="100.0", a="100.1", um: bool = False, sym: str = "BTCUSDT") -> str:
    """A bookTicker line (USD-M's has ``e``, ``T`` and ``E``)."""
    d = {"u": u, "s": sym, "b": b, "B": "1.0", "a": a, "A": "1.5"}
    if um:
        d = {"e": "bookTicker", **d, "T": ts // MS, "E": ts // MS}
    return ws_env(ts, f"{sym.lower()}@bookTicker", d)


def ws_diff(ts: int, U: int, u: int, b=(("99.8", "0.5"),), a=(), pu: int | None = None, sym: str = "BTCUSDT") -> str:
    """A depthUpdate line with bid levels ``b`` and ask levels ``a``; USD-M when ``pu`` is given."""
    d: dict[str, Any] = {
        "e": "depthUpdate",
        "E": ts // MS,
        "s": sym,
        "U": U,
        "u": u,
        "b": [list(x) for x in b],
        "a": [list(x) for x in a],
    }
    stream = "depth@100ms"
    if pu is not None:
        d = {**d, "T": ts // MS, "pu": pu}
        stream = "depth@0ms"
    return ws_env(ts, f"{sym.lower()}@{stream}", d)


def ws_snap(ts: int, lid: int, book=WS_SNAP) -> str:
    """A bare REST depth snapshot line; ``book`` is (bids, asks)."""
    return f"{ts} {json.dumps({'lastUpdateId': lid, 'bids': book[0], 'asks': book[1]})}"


def ws_trade(ts: int, tid: int, p="100.1", q="0.01", m: bool = False, um: bool | None = False) -> str:
    """A @trade line: spot's has ``M`` (``um`` False), USD-M's ``X`` (True), None: neither."""
    d = {"e": "trade", "E": ts // MS, "s": "BTCUSDT", "t": tid, "p": p, "q": q, "T": ts // MS, "m": m}
    if um is True:
        d["X"] = "MARKET"
    elif um is False:
        d["M"] = True
    return ws_env(ts, "btcusdt@trade", d)


def ws_agg(ts: int, a: int, f: int, last: int) -> str:
    """An @aggTrade line aggregating trade ids ``f..last``."""
    data = {
        "e": "aggTrade",
        "E": ts // MS,
        "s": "BTCUSDT",
        "a": a,
        "p": "100.1",
        "q": "0.01",
        "f": f,
        "l": last,
        "T": ts // MS,
        "m": True,
        "M": True,
    }
    return ws_env(ts, "btcusdt@aggTrade", data)


# ---------------------------------------------------------------- LOBSTER
LOBSTER_HDR = "Time,Type,OrderId,Size,Price,Direction"


def lobster_pair(
    folder: Path, n: int = 20, msg_tail: str = "", ob_tail: str = "", bad_mid: bool = False, header: bool = False
) -> tuple[Path, Path]:
    """A LOBSTER message / orderbook pair of ``n`` rows (every third message an execution), plus
    ``msg_tail`` / ``ob_tail`` after the last newline; ``bad_mid``: message line 6 is cut short."""
    base = folder / "TEST_2012-06-21_34200000_57600000"
    msg = [
        f"{34200 + i},{4 if i % 3 == 0 else 1},{1000 + i},10,{1000000 + i * 100},{1 if i % 2 else -1}" for i in range(n)
    ]
    ob = [f"{1010000 + i * 100},5,{1000000 + i * 100},7" for i in range(n)]
    if bad_mid:
        msg[5] = "34205,4,1005"
    m = Path(str(base) + "_message_1.csv")
    o = Path(str(base) + "_orderbook_1.csv")
    m.write_text((LOBSTER_HDR + "\n" if header else "") + "\n".join(msg) + "\n" + msg_tail)
    o.write_text("\n".join(ob) + "\n" + ob_tail)
    return m, o


# ---------------------------------------------------------------- synthetic stores without their truth
def synth_store_without_truth(path: Path, events: int, seed: int = 7, **params: Any) -> Path:
    """The store ``avmm data synth`` writes with these parameters, minus the ``true_*`` metadata
    (``true_sigma``, ``true_A``, ``true_k``): what calibration must recover without reading."""
    from avmm.data.store import read_meta, write_events
    from avmm.data.synth import generate, synth_meta

    meta = {k: v for k, v in synth_meta(events, seed, **params).items() if not k.startswith("true_")}
    write_events(path, generate(events, seed, **params), meta)
    assert not [k for k in read_meta(path) if k.startswith("true_")]
    return path


# ---------------------------------------------------------------- the CLI's error line
def error_lines(stderr: str) -> list[str]:
    """stderr's lines without the one-time notice a cold numba cache prints while the backtest
    loop compiles (it depends on which test ran first, not on the command under test)."""
    return [x for x in stderr.strip().splitlines() if not x.startswith("avmm: compiling")]


def assert_one_line_error(r, *needles: str) -> None:
    """Exit code 2 and one stderr line, ``avmm: error: ...``, containing each of ``needles``."""
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = error_lines(r.stderr)
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert lines[0].startswith("avmm: error: "), lines[0]
    for n in needles:
        assert n in lines[0], lines[0]
