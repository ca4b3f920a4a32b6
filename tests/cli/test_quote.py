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
    assert r.returncode == 2 and "--model" in r.stderr and "as|as-rolling|glft" not in r.stderr
    r = run_cli("quote", "--mid", "nan", "--gamma", "0.01", "--sigma", "0.3", "--k", "0.3")
    assert r.returncode == 2 and "--mid" in r.stderr


def test_cli_bad_config_value_is_one_line_exit_2(tmp_path, run_cli):
    # avmm quote validates through the same config model
    r = run_cli("quote", "--mid", "100", "--gamma", "0", "--sigma", "1", "--k", "1")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "--gamma" in r.stderr and "Traceback" not in r.stderr


BASE = ("quote", "--mid", "100", "--gamma", "0.1", "--sigma", "1", "--k", "1")


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--tick", "0"], "--tick 0: must be > 0"),
        (["--tick", "-0.01"], "--tick -0.01: must be > 0"),
        (["--lot", "0"], "--lot 0: must be > 0"),
        (["--tick", "inf"], "--tick inf: must be a finite number"),
        (["--levels", "0"], "--levels 0: Input should be greater than or equal to 1"),
        (["--levels", "99999999999999999999"], "--levels 99999999999999999999: Input should be less than"),
        (["--size", "1e308"], "--size 1e+308: Input should be less than or equal to"),
        (["--max-position", "1e308"], "--max-position 1e+308"),
        (["--tau", "1e308"], "--tau 1e+308"),
        (["--mid", "1e308"], "is lost in rounding"),
        (["--mid", "1e308", "--tick", "0.01"], "more than 2**52 ticks"),
        (["--tick", "0.01", "--tau", "1e9", "--sigma", "1e12"], "more than 2**52 ticks"),
        (["--q", "1e308"], "(<= 0)"),
        (["--best-bid", "101", "--best-ask", "100"], "need bid < ask"),
        (["--best-bid", "0", "--best-ask", "100"], "--best-bid 0: must be > 0"),
    ],
)
def test_quote_numbers_at_their_limits(run_main, extra, needle):
    """Zero or negative tick and lot, 20-digit counts, 1e308 and prices the floats cannot round:
    one line naming the option, exit 2 -- never a quote on a 1.0 grid, Infinity or a negative price."""
    args = dict(zip(BASE[1::2], BASE[2::2], strict=True)) | dict(zip(extra[::2], extra[1::2], strict=True))
    code, out, err = run_main("quote", *[x for kv in args.items() for x in kv])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and out == "", (out, err)
    assert lines[0].startswith("avmm: error: ") and needle in lines[0], lines[0]


def test_quote_tick_and_lot_round(run_cli):
    r = run_cli(*BASE, "--tick", "0.25", "--lot", "0.5", "--size", "1.7")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["bid"] == 98.75 and out["ask"] == 101.25 and out["levels"]["bids"][0][1] == 1.5
