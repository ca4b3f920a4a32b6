"""`avmm backtest` end to end: the table, --json, --report, bad input, the default session."""

from __future__ import annotations

import json

import pytest

from avmm.data.synth import write_synth

JSON_KEYS = {
    "events",
    "wall_s",
    "events_per_s",
    "fills",
    "orders",
    "cancels",
    "pnl_net",
    "pnl_gross",
    "fees",
    "sharpe",
    "max_drawdown",
    "max_abs_position",
    "markout_1s",
    "config",
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    p = tmp_path_factory.mktemp("bt") / "synth.parquet"
    write_synth(p, 30_000, 11, quote_rate=100.0, trade_rate=25.0)
    return p


def test_backtest_json_and_reports(run_cli, store, tmp_path):
    out, png, html = tmp_path / "o.json", tmp_path / "r.png", tmp_path / "r.html"
    r = run_cli(
        "backtest", str(store), "--json", str(out), "--report", str(png), "--set", "backtest.entry_latency_ms=2"
    )
    assert r.returncode == 0, r.stderr
    assert "net PnL" in r.stdout and "markout 1 s" in r.stdout
    d = json.loads(out.read_text())
    assert set(d) >= JSON_KEYS
    assert d["events"] == 30_000
    assert d["config"]["backtest"]["entry_latency_ms"] == 2.0
    assert png.stat().st_size > 10_000
    r = run_cli("backtest", str(store), "--report", str(html))
    assert r.returncode == 0, r.stderr
    assert "plotly" in html.read_text()[:200_000].lower()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--set", "backtest.nope=1"], "backtest.nope"),
        (["--set", "backtest.entry_latency_ms=-1"], "entry_latency_ms"),
        (["--set", 'backtest.queue_model="fifo"'], "queue_model"),
        (["--report", "x.pdf"], ".html or .png"),
    ],
)
def test_bad_input_one_line_exit_2(run_cli, store, args, needle):
    r = run_cli("backtest", str(store), *args)
    assert r.returncode == 2
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_missing_data_file(run_cli, tmp_path):
    r = run_cli("backtest", str(tmp_path / "missing.parquet"))
    assert r.returncode == 2
    assert "no such file" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_default_session(run_cli):
    r = run_cli("backtest", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "events/s" in r.stdout and "1,000,000" in r.stdout
