"""`avmm quote` and `avmm bench` from the shell."""

import json
import math

import pytest


def test_quote_as_json(run_cli):
    r = run_cli(
        "quote",
        "--model",
        "as",
        "--mid",
        "100",
        "--q",
        "2",
        "--gamma",
        "0.1",
        "--sigma",
        "2",
        "--k",
        "1.5",
        "--tau",
        "1",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["reservation_price"] == pytest.approx(99.2)
    spread = 0.4 + 20 * math.log(1 + 0.1 / 1.5)
    assert out["bid_depth"] == pytest.approx(spread / 2 + 0.8)
    assert out["ask_depth"] == pytest.approx(spread / 2 - 0.8)
    assert out["bid"] == pytest.approx(100 - out["bid_depth"])  # no --tick: not rounded
    assert out["levels"]["bids"][0] == [out["bid"], 1.0]


def test_quote_glft_ladder_on_ticks(run_cli):
    r = run_cli(
        "quote",
        "--model",
        "glft",
        "--mid",
        "100",
        "--gamma",
        "0.01",
        "--sigma",
        "0.3",
        "--k",
        "0.3",
        "--A",
        "0.9",
        "--tick",
        "0.01",
        "--levels",
        "3",
        "--spacing-ticks",
        "2",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    bids = [p for p, _ in out["levels"]["bids"]]
    assert len(bids) == 3 and bids[0] == pytest.approx(96.68) and bids[1] == pytest.approx(96.66)
    assert out["ask"] == pytest.approx(103.32)


def test_quote_rolling_and_limits(run_cli):
    r = run_cli(
        "quote",
        "--model",
        "as-rolling",
        "--mid",
        "50",
        "--q",
        "3",
        "--gamma",
        "0.1",
        "--sigma",
        "1",
        "--k",
        "2",
        "--tau",
        "5",
        "--max-position",
        "3",
    )
    out = json.loads(r.stdout)
    assert out["levels"]["bids"] == [] and out["bid"] is None and out["ask"] is not None


def test_quote_bad_input(run_cli):
    r = run_cli("quote", "--model", "glft", "--mid", "100", "--gamma", "0.01", "--sigma", "0.3", "--k", "0.3")
    assert r.returncode == 2 and "--A" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("quote", "--model", "zz", "--mid", "100", "--gamma", "0.01", "--sigma", "0.3", "--k", "0.3")
    assert r.returncode == 2 and "model.kind" in r.stderr
    r = run_cli("quote", "--mid", "nan", "--gamma", "0.01", "--sigma", "0.3", "--k", "0.3")
    assert r.returncode == 2 and "--mid" in r.stderr


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


@pytest.mark.parametrize(
    "args, needle",
    [
        (["quote", "--mid", "x", "--gamma", "1", "--sigma", "1", "--k", "1"], "--mid"),
        (["nosuch"], "nosuch"),
        (["quote", "--bogus", "1"], "--bogus"),
    ],
)
def test_usage_errors_are_one_line_exit_2(run_cli, args, needle):
    r = run_cli(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr
