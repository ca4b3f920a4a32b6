"""`avmm data` commands through the real entry point (in-process) and one subprocess check."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from avmm.data import store


def run(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    from avmm.cli import main

    monkeypatch.setattr(sys, "argv", ["avmm", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_synth_inspect_json(tmp_path, monkeypatch, capsys):
    p = tmp_path / "s.parquet"
    code, out, err = run(monkeypatch, capsys, "data", "synth", "-o", p, "--events", "20000", "--seed", "3")
    assert code == 0 and "20,000" in out
    code, out, err = run(monkeypatch, capsys, "data", "inspect", p, "--json")
    assert code == 0
    r = json.loads(out)
    for key in ("quotes", "trades", "depth_updates", "start_ns", "end_ns"):
        assert key in r
    assert r["quotes"] + r["trades"] == 20000 and r["depth_updates"] == 0
    assert r["start_ns"] < r["end_ns"]
    assert r["tick_size"] == 0.01 and r["lot_size"] == 0.001
    assert r["crossed_quotes"] == 0 and r["spread"]["min"] >= 0.01 - 1e-12
    code, out, err = run(monkeypatch, capsys, "data", "inspect", p)
    assert code == 0 and "quotes" in out and "spread" in out


def test_synth_cli_deterministic(tmp_path, monkeypatch, capsys):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    for p in (a, b):
        assert (
            run(
                monkeypatch,
                capsys,
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


def test_synth_bad_args(tmp_path, monkeypatch, capsys):
    code, out, err = run(monkeypatch, capsys, "data", "synth", "-o", tmp_path / "x.parquet", "--tick", "-1")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "tick" in err
    code, out, err = run(monkeypatch, capsys, "data", "synth", "-o", tmp_path / "x.parquet", "--events", "0")
    assert code == 2


def test_convert_summary_json(tmp_path, monkeypatch, capsys):
    f = tmp_path / "t.csv"
    f.write_text(
        "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
        "x,ETHUSDT,1000000,1000100,1,buy,10.5,1\n"
        "x,ETHUSDT,1000010,1000110,2,sell,-1,1\n"
        "x,ETHUSDT,1000020,1000120,3,unknown,10.4,2\n"
    )
    code, out, err = run(monkeypatch, capsys, "data", "convert", f, "-o", tmp_path / "o.parquet", "--json")
    assert code == 0, err
    s = json.loads(out)
    assert s["rows"] == 2 and s["issues"] == {"non_positive_price": 1, "unknown_side": 1}
    assert s["symbol"] == "ETHUSDT" and s["kinds"]["trade"] == 2
    meta = store.read_meta(tmp_path / "o.parquet")
    assert meta["counters"] == s["issues"] and meta["symbol"] == "ETHUSDT" and meta["source"] == "tardis"
    code, out, err = run(monkeypatch, capsys, "data", "convert", f, "-o", tmp_path / "o.parquet")
    assert code == 0 and "non_positive_price" in out and "t.csv:3" in out


def test_bad_format_option(tmp_path, monkeypatch, capsys):
    f = tmp_path / "t.csv"
    f.write_text("a,b\n1,2\n")
    code, out, err = run(monkeypatch, capsys, "data", "convert", f, "-o", tmp_path / "o.parquet", "--format", "nope")
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
