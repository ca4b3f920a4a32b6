"""`avmm data synth | inspect | convert | fetch`: output, JSON, exit codes and the one error line."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from avmm.data import store
from tests.archive_server import make_zip
from tests.builders import (
    L0,
    L2_HDR,
    L2_SAMPLE,
    L4,
    SNAP_B1,
    SNAP_B2,
    US,
    assert_one_line_error,
    l2_row,
    snap_hdr,
    snap_row,
    write_lines,
)
from tests.builders import TARDIS_T0 as T0


def test_synth_inspect_json(tmp_path, run_main):
    p = tmp_path / "s.parquet"
    code, out, err = run_main("data", "synth", "-o", p, "--events", "20000", "--seed", "3")
    assert code == 0 and "20,000" in out
    code, out, err = run_main("data", "inspect", p, "--json")
    assert code == 0
    r = json.loads(out)
    for key in ("quotes", "trades", "depth_updates", "start_ns", "end_ns"):
        assert key in r
    assert r["quotes"] + r["trades"] == 20000 and r["depth_updates"] == 0
    assert r["start_ns"] < r["end_ns"]
    assert r["tick_size"] == 0.01 and r["lot_size"] == 0.001
    assert r["crossed_quotes"] == 0 and r["spread"]["min"] >= 0.01 - 1e-12
    code, out, err = run_main("data", "inspect", p)
    assert code == 0 and "quotes" in out and "spread" in out


def test_synth_cli_deterministic(tmp_path, run_main):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    for p in (a, b):
        assert (
            run_main(
                "data",
                "synth",
                "-o",
                p,
                "--events",
                "5000",
                "--seed",
                "9",
                "--sigma",
                "0.1",
                "--trade-rate",
                "5",
            )[0]
            == 0
        )
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    assert store.read_meta(a)["true_sigma"] == 0.1


def test_synth_bad_args(tmp_path, run_main):
    code, out, err = run_main("data", "synth", "-o", tmp_path / "x.parquet", "--tick", "-1")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "tick" in err
    code, out, err = run_main("data", "synth", "-o", tmp_path / "x.parquet", "--events", "0")
    assert code == 2


def test_convert_summary_json(tmp_path, run_main):
    f = tmp_path / "t.csv"
    f.write_text(
        "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
        "x,ETHUSDT,1000000,1000100,1,buy,10.5,1\n"
        "x,ETHUSDT,1000010,1000110,2,sell,-1,1\n"
        "x,ETHUSDT,1000020,1000120,3,unknown,10.4,2\n"
    )
    code, out, err = run_main("data", "convert", f, "-o", tmp_path / "o.parquet", "--json")
    assert code == 0, err
    s = json.loads(out)
    assert s["rows"] == 2 and s["issues"] == {"non_positive_price": 1, "unknown_side": 1}
    assert s["symbol"] == "ETHUSDT" and s["kinds"]["trade"] == 2
    meta = store.read_meta(tmp_path / "o.parquet")
    assert meta["counters"] == s["issues"] and meta["symbol"] == "ETHUSDT" and meta["source"] == "tardis"
    code, out, err = run_main("data", "convert", f, "-o", tmp_path / "o.parquet")
    assert code == 0 and "non_positive_price" in out and "t.csv:3" in out


def test_bad_format_option(tmp_path, run_main):
    f = tmp_path / "t.csv"
    f.write_text("a,b\n1,2\n")
    code, out, err = run_main("data", "convert", f, "-o", tmp_path / "o.parquet", "--format", "nope")
    assert code == 2 and "unknown format" in err


def test_subprocess_entry_point(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "avmm", "data", "inspect", tmp_path / "missing.parquet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "missing.parquet" in r.stderr
    assert "Traceback" not in r.stderr


def test_corrupt_gzip_unreadable_exits_2(tmp_path, run_cli):
    f = tmp_path / "t.csv.gz"
    f.write_bytes(b"\x1f\x8b" + b"\x00garbage" * 20)
    r = run_cli("data", "convert", "--format", "tardis", f, "-o", tmp_path / "o.parquet")
    assert_one_line_error(r, "t.csv.gz:1")


def test_unknown_format_and_missing_file_exit_2(tmp_path, run_cli):
    f = tmp_path / "what.txt"
    f.write_text("hello\nworld\n")
    assert_one_line_error(run_cli("data", "convert", f, "-o", tmp_path / "o.parquet"), "what.txt:1")
    assert_one_line_error(run_cli("data", "convert", tmp_path / "nope.csv", "-o", tmp_path / "o.parquet"), "nope.csv")
    assert_one_line_error(run_cli("data", "inspect", f), "what.txt")


def test_ws_all_garbage_exit_2(tmp_path, run_cli):
    f = write_lines(tmp_path / "c.gz", ["123 {nope", "456 {nope"])
    assert_one_line_error(
        run_cli("data", "convert", "--format", "binance-ws", f, "-o", tmp_path / "o.parquet"), "c.gz:1"
    )


# ---------------------------------------------------------------- tardis order books


def test_incremental_cli_convert_auto_and_inspect(tmp_path, run_cli):
    f = write_lines(tmp_path / "binance-futures_incremental_book_L2_2020-02-22_BTCUSDT.csv.gz", L2_SAMPLE)
    out = tmp_path / "o.parquet"
    r = run_cli("data", "convert", "--format", "auto", str(f), "-o", str(out), "--json", "--no-progress")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["formats"] == ["tardis"] and s["symbol"] == "BTCUSDT" and s["rows"] == 15
    assert s["issues"] == {"derived_quote": 3}
    r = run_cli("data", "inspect", str(out), "--json")
    assert r.returncode == 0, r.stderr
    i = json.loads(r.stdout)
    assert (i["depth_updates"], i["snapshots"], i["clears"], i["quotes"], i["trades"], i["events"]) == (
        4,
        6,
        2,
        3,
        0,
        15,
    )
    assert i["symbol"] == "BTCUSDT" and i["source"] == "tardis"
    assert i["start_ns"] == L0 * US and i["end_ns"] == L4 * US
    assert i["exch_clock"]["rows"] == 15 and i["counters"] == {"derived_quote": 3}
    # the derived quotes (see test_incremental_rows_exact): spreads 0.5, 0.5, 0.2
    assert i["spread"]["count"] == 3 and i["spread"]["median"] == pytest.approx(0.5)
    assert i["crossed_quotes"] == 0


def test_book_snapshot_cli_convert_auto_and_inspect(tmp_path, run_cli):
    f = write_lines(
        tmp_path / "binance-futures_book_snapshot_25_2020-02-22_BTCUSDT.csv",
        [snap_hdr(25), snap_row(T0, T0 + 100, 25, *SNAP_B1), snap_row(T0 + 100_000, T0 + 100_150, 25, *SNAP_B2)],
    )
    out = tmp_path / "o.parquet"
    r = run_cli("data", "convert", "--format", "auto", str(f), "-o", str(out), "--json", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["formats"] == ["tardis"]
    r = run_cli("data", "inspect", str(out), "--json")
    assert r.returncode == 0, r.stderr
    i = json.loads(r.stdout)
    assert (i["depth_updates"], i["snapshots"], i["clears"], i["quotes"], i["events"]) == (0, 9, 2, 2, 13)
    assert i["spread"]["min"] == pytest.approx(0.3) and i["spread"]["max"] == pytest.approx(0.5)
    assert i["crossed_quotes"] == 0


UNUSABLE = {
    # incremental_book_L2 without its side column
    "nosides.csv": (
        [
            "exchange,symbol,timestamp,local_timestamp,is_snapshot,price,amount",
            "binance-futures,BTCUSDT,1,2,true,100,1",
        ],
        ["nosides.csv:1:", "side"],
    ),
    # book snapshot header with asks but no bids
    "nobids.csv": (
        [
            "exchange,symbol,timestamp,local_timestamp,asks[0].price,asks[0].amount",
            f"binance-futures,BTCUSDT,{T0},{T0 + 1},100,1",
        ],
        ["nobids.csv:1:", "bids[0]"],
    ),
    # every row bad (gzip): counted, then refused -- no empty store is written
    "garbage.csv.gz": (
        [
            L2_HDR,
            l2_row(T0, T0 + 1, True, "bid", "abc", "1"),
            l2_row(T0, T0 + 1, True, "side?", "100", "1"),
            l2_row(T0, T0 + 1, False, "ask", "100", "-1"),
        ],
        ["garbage.csv.gz:2:", "no usable row"],
    ),
}


@pytest.mark.parametrize("name", list(UNUSABLE))
def test_unusable_file_exit_2_one_line(tmp_path, run_cli, name):
    lines, needles = UNUSABLE[name]
    f = write_lines(tmp_path / name, lines)
    out = tmp_path / "o.parquet"
    assert_one_line_error(run_cli("data", "convert", "--format", "auto", str(f), "-o", str(out)), *needles)
    assert not out.exists()


# ---------------------------------------------------------------- fetch


def test_fetch_cli(archive_server, tmp_path, run_main):
    archive_server.publish("um", "trades", "ETHUSDT", "2024-08-01", make_zip("e.zip", 100, 1))
    archive_server.publish("um", "trades", "ETHUSDT", "2024-08-02", make_zip("e.zip", 100, 2), checksum="f" * 64)

    fetch = ["data", "fetch", "--market", "um", "--kind", "trades", "--symbol", "ETHUSDT", "--from", "2024-08-01"]
    where = ["-o", tmp_path, "--base-url", archive_server.url]
    code, out, err = run_main(*fetch, "--to", "2024-08-01", *where)
    assert code == 0 and "downloaded 1 file" in out
    code, out, err = run_main(*fetch, "--to", "2024-08-02", *where)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "checksum" in err
    assert "1 already present" in out
