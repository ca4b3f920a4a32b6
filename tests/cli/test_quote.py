"""`avmm quote`: the quote as JSON, ladders on ticks, limits, bad input and bad config values."""

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


def test_cli_bad_config_value_is_one_line_exit_2(tmp_path, run_cli):
    # avmm quote validates through the same config model
    r = run_cli("quote", "--mid", "100", "--gamma", "0", "--sigma", "1", "--k", "1")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "model.gamma" in r.stderr and "Traceback" not in r.stderr
