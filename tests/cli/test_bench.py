"""`avmm bench`: the JSON report of the quote-cycle benchmark, bad arguments."""

import json

import pytest


def test_bench_json(run_cli, tmp_path):
    out = tmp_path / "b.json"
    r = run_cli("bench", "--events", "5000", "--json", str(out))
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    for k in ("p50", "p90", "p99", "p999", "max"):
        assert d["cycle_ns"][k] > 0
    assert set(d["stages"]) == {
        "market_update",
        "estimator_update",
        "quote_computation",
        "order_diff",
        "fill_processing",
    }
    for st in d["stages"].values():
        assert st["p50"] is not None and st["p99"] >= st["p50"]
    assert d["cycles_per_s"] > 0 and d["reference_ns"]["p50"] > 0
    assert d["ratio_p50"] == pytest.approx(d["cycle_ns"]["p50"] / d["reference_ns"]["p50"])
    assert d["nrt_allocs_per_cycle"] == 0  # the compiled core allocates nothing per event
    assert d["peak_rss_bytes"] > 0 and "alloc_bytes_per_cycle" in d
    assert "tick-to-quote" in r.stdout


def test_bench_bad_args(run_cli, tmp_path):
    r = run_cli("bench", "--events", "10")
    assert r.returncode == 2 and "--events" in r.stderr
    r = run_cli("bench", "--events", "5000", "--json", str(tmp_path / "no" / "dir" / "x.json"))
    assert r.returncode == 2 and "--json" in r.stderr
