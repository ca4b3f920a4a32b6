"""Fuzz targets, one per reader: hostile but structured inputs (real-looking rows, mutated: wrong
field counts, huge / negative / NaN numbers, bytes that are not UTF-8, cut gzip and zip files,
shuffled times, repeated ids) converted in this process. The promise: the convert returns or
raises ``UserError`` (the CLI's exit 0 or 2) -- never another exception, never a hang. One
subprocess run per reader checks the exit code path itself.

Profiles (``conftest.py``): ``ci`` in the default suite, ``fuzz`` (many more examples) for
``make fuzz``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.builders import (
    L2_SAMPLE,
    MS,
    QUOTES_HDR,
    SNAP_B1,
    SNAP_B2,
    TARDIS_T0,
    TRADES_HDR,
    WS_T0,
    error_lines,
    quote_rows,
    snap_hdr,
    snap_row,
    trade_rows,
    ws_agg,
    ws_diff,
    ws_snap,
    ws_ticker,
    ws_trade,
)
from tests.fuzz.hostile import fuzz_settings, mutate_lines, outcome, pack


def _enc(lines: list[str]) -> list[bytes]:
    return [x.encode() for x in lines]


def _join(lines: list[bytes], data: st.DataObject) -> bytes:
    end = data.draw(st.sampled_from([b"\n", b"\n", b"\r\n", b""]), label="line end")
    return (b"\r\n" if end == b"\r\n" else b"\n").join(lines) + end


# ---------------------------------------------------------------- Binance websocket captures
def ws_capture(um: bool) -> list[str]:
    """A small capture: quotes, trades, aggTrades, depth diffs around a snapshot (spot or USD-M)."""
    t = WS_T0
    lines = [ws_ticker(t, 100, um=um), ws_diff(t + MS, 1, 10, pu=0 if um else None)]
    snap = ws_snap(t + 2 * MS, 10)
    if um:  # USD-M's REST snapshot has E and T
        snap = snap.replace('{"lastUpdateId": 10', f'{{"lastUpdateId": 10, "E": {t // MS}, "T": {t // MS}')
    lines.append(snap)
    for i in range(12):
        ts = t + (3 + i) * MS
        lines.append(ws_ticker(ts, 101 + i, b=f"100.{i % 5}", a=f"100.{5 + i % 4}", um=um))
        lines.append(ws_diff(ts, 11 + i, 11 + i, b=((f"99.{i % 9}", f"{i % 3}"),), pu=10 + i if um else None))
        if i % 3 == 0:
            lines.append(ws_trade(ts, 500 + i, um=um))
        if i % 4 == 0 and not um:
            lines.append(ws_agg(ts, 900 + i, 400 + i, 400 + i))
    return lines


@fuzz_settings
@given(st.data())
def test_fuzz_binance_ws(data):
    um = data.draw(st.booleans(), label="usdm")
    lines = mutate_lines(_enc(ws_capture(um)), data, json=True)
    with tempfile.TemporaryDirectory() as d:
        f = pack(Path(d) / "cap.txt", _join(lines, data), data)
        fmt = data.draw(st.sampled_from(["binance-ws", "binance-ws", "auto"]), label="format")
        outcome([f], Path(d) / "o.parquet", fmt=fmt)


# ---------------------------------------------------------------- Binance archives
ARCHIVE_ROWS = {
    "trades": [
        f"{i},65000.{i},0.00{i % 9 + 1},65.0,{1722470400000 + i},{'true' if i % 2 else 'false'},true"
        for i in range(1, 21)
    ],
    "aggTrades": [
        f"{i},65000.{i},0.01,{2 * i},{2 * i + 1},{1722470400000 + i},{'true' if i % 2 else 'false'}"
        for i in range(1, 21)
    ],
    "bookTicker": [
        f"{i},64999.{i},1.5,65000.{i + 1},2.0,{1722470400000 + i},{1722470400003 + i}" for i in range(1, 21)
    ],
}
ARCHIVE_HDR = {
    "trades": "id,price,qty,quote_qty,time,is_buyer_maker",
    "aggTrades": "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker",
    "bookTicker": "update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time",
}


@fuzz_settings
@given(st.data())
def test_fuzz_binance_archive(data):
    kind = data.draw(st.sampled_from(sorted(ARCHIVE_ROWS)), label="kind")
    header = data.draw(st.booleans(), label="header")
    rows = ARCHIVE_ROWS[kind]
    if header:
        rows = [ARCHIVE_HDR[kind] if kind != "trades" else ARCHIVE_HDR[kind] + ",is_best_match"] + rows
    lines = mutate_lines(_enc(rows), data, keep_first=1 if header else 0)
    with tempfile.TemporaryDirectory() as d:
        f = pack(Path(d) / f"BTCUSDT-{kind}-2024-08-01.csv", _join(lines, data), data, zip_ok=True)
        outcome([f], Path(d) / "o.parquet")


# ---------------------------------------------------------------- tardis.dev CSV
def tardis_file(kind: str) -> list[str]:
    if kind == "quotes":
        return [QUOTES_HDR] + quote_rows(20, t0=TARDIS_T0)
    if kind == "trades":
        return [TRADES_HDR] + trade_rows(20, t0=TARDIS_T0)
    if kind == "incremental_book_L2":
        return list(L2_SAMPLE)
    n = 3
    return [snap_hdr(n)] + [
        snap_row(TARDIS_T0 + i, TARDIS_T0 + i + 5, n, *(SNAP_B1 if i % 2 else SNAP_B2)) for i in range(8)
    ]


@fuzz_settings
@given(st.data())
def test_fuzz_tardis(data):
    kinds = data.draw(
        st.lists(
            st.sampled_from(["quotes", "trades", "incremental_book_L2", "book_snapshot"]),
            min_size=1,
            max_size=2,
            unique=True,
        ),
        label="kinds",
    )
    with tempfile.TemporaryDirectory() as d:
        files = []
        for k in kinds:
            keep = data.draw(st.sampled_from([1, 1, 1, 0]), label="keep header")
            lines = mutate_lines(_enc(tardis_file(k)), data, keep_first=keep)
            files.append(pack(Path(d) / f"binance-futures_{k}_2020-02-22_BTCUSDT.csv", _join(lines, data), data))
        outcome(files, Path(d) / "o.parquet", fmt=data.draw(st.sampled_from(["auto", "tardis"]), label="format"))


# ---------------------------------------------------------------- LOBSTER pairs
def lobster_rows(n: int = 40) -> tuple[list[str], list[str]]:
    """A level-1 pair that follows LOBSTER's rules (see tests/data/test_lobster.py)."""
    bid, bsz, ask, asz = 1_000_000, 10, 1_010_000, 10
    msg, ob = [], []
    for i in range(n):
        side = -1 if i % 3 == 0 else 1
        typ = 5 if i % 7 == 0 else (4 if i % 5 == 0 else 1)
        if typ == 1 and side == 1:
            bsz += 1 + i % 4
        elif typ == 1:
            asz += 1 + i % 5
        elif typ == 4 and side == 1 and bsz > 1:
            bsz -= 1
        elif typ == 4 and asz > 1:
            asz -= 1
        msg.append(f"{34200 + i * 0.25},{typ},{100 + i},1,{bid if side == 1 else ask},{side}")
        ob.append(f"{ask},{asz},{bid},{bsz}")
    return msg, ob


@fuzz_settings
@given(st.data())
def test_fuzz_lobster(data):
    msg, ob = lobster_rows()
    header = data.draw(st.booleans(), label="header")
    if header:
        msg = ["Time,Type,OrderId,Size,Price,Direction"] + msg
    m_lines = mutate_lines(_enc(msg), data, keep_first=int(header))
    o_lines = mutate_lines(_enc(ob), data)
    gz = data.draw(st.booleans(), label="gzip")
    with tempfile.TemporaryDirectory() as d:
        base = Path(d) / "TEST_2012-06-21_34200000_57600000"
        paths = []
        for what, lines in (("message", m_lines), ("orderbook", o_lines)):
            p = Path(f"{base}_{what}_1.csv")
            text = _join(lines, data)
            if gz:
                import gzip

                cut = data.draw(st.booleans(), label="cut gzip")
                z = gzip.compress(text)
                p.write_bytes(z[: len(z) // 2] if cut else z)
            else:
                p.write_bytes(text)
            paths.append(p)
        outcome(paths[:1], Path(d) / "o.parquet")


# ---------------------------------------------------------------- the exit code path
HOSTILE_FILES = {
    "binance-ws": {
        "cap.txt": "\n".join(ws_capture(False)[:10]).replace('"u":103', '"u":99999999999999999999').encode()
        + b'\n1723161254999000000 {"stream":\xff}\n'
    },
    "binance-archive": {
        "BTCUSDT-trades-2024-08-01.csv": "\n".join(ARCHIVE_ROWS["trades"][:5]).replace("65000.2,", "1e400,").encode()
        + b"\n9,65000.1,0.1,1,99999999999999,true,true\n"
    },
    "tardis": {
        "binance-futures_quotes_2020-02-22_BTCUSDT.csv": "\n".join(tardis_file("quotes")[:8]).encode()
        + b"\nx,BTCUSDT,99999999999999999999,1,nan,-0,1e308,\n"
    },
    "lobster": {
        "TEST_2012-06-21_34200000_57600000_message_1.csv": "\n".join(lobster_rows()[0][:30]).encode()
        + b"\n1e308,1,1,1,1,1\n",
        "TEST_2012-06-21_34200000_57600000_orderbook_1.csv": "\n".join(lobster_rows()[1][:31]).encode() + b"\n",
    },
}


@pytest.mark.parametrize("fmt", sorted(HOSTILE_FILES))
def test_hostile_file_through_the_cli(tmp_path, run_cli, fmt):
    """A reader's hostile file through ``avmm data convert``: exit 0 (a summary naming the skipped
    rows) or 2 (one line), nothing else on stderr."""
    paths = []
    for name, data in HOSTILE_FILES[fmt].items():
        p = tmp_path / name
        p.write_bytes(data)
        paths.append(p)
    out = tmp_path / f"{fmt}.parquet"
    r = run_cli("data", "convert", paths[0], "-o", out, "--format", fmt)
    assert r.returncode in (0, 2), (r.returncode, r.stderr)
    lines = error_lines(r.stderr)
    if r.returncode == 2:
        assert len(lines) == 1 and lines[0].startswith("avmm: error: "), r.stderr
        assert not out.exists()
    else:
        assert lines == [], r.stderr
        assert out.exists() and "skipped / repaired" in r.stdout, r.stdout
