"""`avmm backtest` end to end: the table, --json, --report, bad input, the default session."""

from __future__ import annotations

import json

import pytest

from avmm.data.synth import write_synth

JSON_KEYS = {
    "events",
    "wall_s",
    "events_per_s",
    "wall_s_e2e",
    "events_per_s_e2e",
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
    assert "events/s, compiled loop" in r.stdout and "1,000,000" in r.stdout
    assert "events/s, end to end (incl. reading)" in r.stdout
    # the built-in session is spot: its balances, and the rejects by cause
    assert "balances base / quote" in r.stdout and "rejects post-only / risk / balance" in r.stdout


def test_perpetual_rows_and_funding_in_json(run_cli, store, tmp_path):
    out = tmp_path / "o.json"
    sets = ['backtest.market="perpetual"', "backtest.funding_rate=0.0001", "backtest.funding_interval_h=0.01"]
    r = run_cli("backtest", str(store), "--no-progress", "--json", str(out), *[x for v in sets for x in ("--set", v)])
    assert r.returncode == 0, r.stderr
    for row in ("funding (payments)", "max initial margin (leverage 20)", "min distance to liquidation"):
        assert row in r.stdout
    d = json.loads(out.read_text())
    assert d["market"] == "perpetual" and d["funding_payments"] >= 0
    assert d["config"]["backtest"]["funding_rate"] == 0.0001


# ---------------------------------------------------------------- outputs, windows, several stores
def test_json_over_an_input_store_is_refused(run_main, store, tmp_path):
    """Today's worst case: --json naming the input store overwrote it. Now: one line, untouched."""
    before = store.read_bytes()
    for flag in ("--json", "--fills", "--equity"):
        code, out, err = run_main("backtest", store, flag, store, "--no-progress")
        assert code == 2, (flag, err)
        assert f"{flag} {store}: is one of the inputs" in err and len(err.strip().splitlines()) == 1
    assert store.read_bytes() == before
    cfg = tmp_path / "c.toml"
    cfg.write_text("[backtest]\nentry_latency_ms = 2.0\n")
    code, out, err = run_main("backtest", store, "--config", cfg, "--json", cfg, "--no-progress")
    assert code == 2 and "is one of the inputs" in err
    assert cfg.read_text() == "[backtest]\nentry_latency_ms = 2.0\n"


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--json", "{d}"], "--json {d}: is a folder"),
        (["--fills", "{d}/no/such/f.csv"], "does not exist"),
        (["--fills", "{d}/f.txt"], "--fills {d}/f.txt: expected a .parquet or .csv file"),
        (["--equity", "{d}/e.json"], "expected a .parquet or .csv file"),
        (["--json", "{d}/x.csv", "--fills", "{d}/x.csv"], "also given to --json"),
        (["--from", "yesterday"], "--from yesterday: not a time"),
        (["--to", "99999999999999999999"], "--to 99999999999999999999: 20-digit integer"),
        (["--from", "2024-01-02", "--to", "2024-01-01"], "is not before --to"),
        (["--from", "2030-01-01"], "no data in the window [2030-01-01T00:00:00.000Z, +inf): the data spans"),
    ],
)
def test_bad_outputs_and_windows_one_line(run_main, store, tmp_path, args, needle):
    from tests.builders import error_lines

    args = [a.format(d=tmp_path) for a in args]
    code, out, err = run_main("backtest", store, *args, "--no-progress")
    assert code == 2, err
    lines = error_lines(err)
    assert len(lines) == 1 and needle.format(d=tmp_path) in lines[0], lines
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_fills_and_equity_exports(run_main, store, tmp_path, suffix):
    """--fills holds every fill (its row count is the JSON's fills), --equity every sample."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out, fills, eq = tmp_path / "o.json", tmp_path / f"f{suffix}", tmp_path / f"e{suffix}"
    code, _, err = run_main("backtest", store, "--json", out, "--fills", fills, "--equity", eq, "--no-progress")
    assert code == 0, err
    d = json.loads(out.read_text())
    read = pq.read_table if suffix == ".parquet" else pacsv.read_csv
    f, e = read(str(fills)), read(str(eq))
    assert f.num_rows == d["fills"] > 0
    assert f.column_names[:4] == ["ts_ns", "oid", "side", "maker"] and "mid_60s" in f.column_names
    assert e.num_rows > 0 and e.column_names[0] == "ts_ns" and "pnl" in e.column_names
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, fills.name, eq.name])


def test_window_from_to(run_main, store, tmp_path):
    from avmm.data.store import read_events

    lt = read_events(store)["local_ts"]
    lo, hi = int(lt[10_000]), int(lt[20_000])
    out = tmp_path / "w.json"
    code, _, err = run_main("backtest", store, "--from", str(lo), "--to", str(hi), "--json", out, "--no-progress")
    assert code == 0, err
    d = json.loads(out.read_text())
    assert d["events"] == int(((lt >= lo) & (lt < hi)).sum())
    assert d["data"]["window"] == {"start_ns": lo, "end_ns": hi}
    import datetime as dt

    iso = dt.datetime.fromtimestamp(lo // 10**9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    code, _, err = run_main("backtest", store, "--from", iso + "Z", "--json", out, "--no-progress")
    assert code == 0, err
    assert json.loads(out.read_text())["events"] == int((lt >= (lo // 10**9) * 10**9).sum())


def test_stores_out_of_order_note_and_overlap(run_main, store, tmp_path):
    from avmm.data.store import read_events, write_events

    ev = read_events(store)
    later = ev.copy()
    span = int(ev["local_ts"][-1] - ev["local_ts"][0]) + 10**9
    later["local_ts"] += span
    later["exch_ts"] += span
    p2 = tmp_path / "later.parquet"
    write_events(p2, [later], {})
    out = tmp_path / "o.json"
    code, stdout, err = run_main("backtest", p2, store, "--json", out, "--no-progress")
    assert code == 0, err
    assert f"avmm: note: stores given out of time order; run in time order: {store}, {p2}" in err
    d = json.loads(out.read_text())
    assert d["data"]["notes"] == [f"stores given out of time order; run in time order: {store}, {p2}"]
    assert d["events"] == 2 * len(ev)
    code, _, err = run_main("backtest", store, store, "--no-progress")
    assert code == 2 and "overlap in time" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("exc", ["term", "error"])
def test_interrupted_fills_export_leaves_nothing(run_main, store, tmp_path, monkeypatch, exc):
    """SIGTERM (as the CLI raises it) or an error while fills stream to --fills: exit 143 / 2,
    neither the file nor its temporary is left, an existing file of that name is untouched."""
    from avmm.backtest import export
    from avmm.errors import UserError
    from avmm.outputs import Terminated

    calls = []
    real = export.FillWriter.write

    def write(self, fills):
        calls.append(len(fills))
        real(self, fills)
        if len(calls) == 2:
            raise Terminated(15) if exc == "term" else UserError("boom")

    monkeypatch.setattr(export.FillWriter, "write", write)
    monkeypatch.setattr(export, "FLUSH_ROWS", 1)  # the rows so far are in the temporary file
    fills = tmp_path / "f.parquet"
    fills.write_text("previous")
    code, _, err = run_main("backtest", store, "--fills", fills, "--no-progress", "--set", "backtest.chunk_events=1000")
    assert code == (143 if exc == "term" else 2), err
    assert len(calls) == 2
    assert fills.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["f.parquet"]
