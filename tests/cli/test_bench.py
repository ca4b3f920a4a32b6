"""`avmm bench`: the JSON report of the quote-cycle benchmark, bad arguments."""

import json
import os
import stat

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


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--events", "99999999999999999999"], "for --events 99999999999999999999 (this machine has "),
        (["--events", "10000000000"], "needs 3.6 TiB for --events 10000000000"),
        (["--requote", "sometimes"], "'sometimes' is not one of 'always', 'triggers'"),
        (["--seed", "-1"], "--seed"),
        (["--json", "."], "--json .: is a folder"),
        (["--json", "x.json", "--profile", "x.json"], "the same file as --json"),
        (["--profile", "/nonexistent/p.txt"], "--profile /nonexistent/p.txt: folder /nonexistent does not exist"),
    ],
)
def test_bench_refuses_up_front(run_main, argv, needle):
    """Sizes the machine cannot hold, bad choices and unwritable outputs: one line, exit 2, before
    the stream is built -- not numpy's 'Maximum allowed dimension exceeded' as an internal error."""
    code, out, err = run_main("bench", *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err


def test_bench_memory_estimate_counts_what_it_allocates():
    from avmm.perf.bench import BYTES_PER_EVENT, memory_bytes

    # the stream's arrays, one replay's lists, the timings: a few hundred bytes an event
    assert 300 < BYTES_PER_EVENT < 1000 and memory_bytes(10**6) == 10**6 * BYTES_PER_EVENT


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_bench_full_disk_is_one_line(run_main, tmp_path):
    prof = tmp_path / "p.txt"
    code, _, err = run_main("bench", "--events", "2000", "--json", "/dev/full", "--profile", str(prof))
    assert code == 2, err
    assert err.strip().splitlines()[-1] == (
        "avmm: error: --json /dev/full: cannot write (no space left on the device); nothing was written"
    )
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    assert "cumulative" in prof.read_text()  # the profile, written before, is complete
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.txt"]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["live", "--frames", "0"], "--frames 0: must be between 1 and"),
        (["live", "--frames", "many"], "Invalid value for '--frames'"),
        (["live", "--repeat", "0"], "--repeat 0"),
        (["live", "--speed", "0"], "--speed 0.0: must be a positive number"),
        (["live", "--speed", "nan"], "--speed nan"),
        (["live", "--speed", "3", "--max"], "--speed and --max: give one of them"),
        (["live", "--venue", "kraken"], "'kraken' is not one of 'binance-spot', 'binance-um'"),
        (["live", "--json", "/nonexistent/x.json"], "--json /nonexistent/x.json: folder /nonexistent does not exist"),
        (["live", "--store", "/nonexistent/s.parquet"], "--store /nonexistent/s.parquet: no such file"),
        (["--events", "5000", "live"], "--events: an option of 'avmm bench', not of 'avmm bench live'"),
    ],
)
def test_bench_live_refuses_up_front(run_main, argv, needle):
    """Bad arguments of ``avmm bench live``: one line, exit 2, before any emulator starts."""
    code, out, err = run_main("bench", *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err
