"""`avmm calibrate` end to end: the summary, --json's schema, the config it writes (loads, backtests,
keeps the promise of --skew-at-limit / --spread-ticks), --plot, and every bad input as one line."""

from __future__ import annotations

import json
import math

import pytest

from avmm.calibrate.scan import SKIPS
from avmm.config import load_config
from avmm.core.model import as_spread
from avmm.data.store import read_meta, write_events
from avmm.events import BUY
from tests.builders import Q, T, assert_one_line_error, error_lines, stream, synth_store_without_truth

ESTIMATES = ("sigma", "A", "k", "A_bid", "k_bid", "A_ask", "k_ask")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """200,000 synthetic events (about 4 hours, 57,000 trades), true_* stripped."""
    p = tmp_path_factory.mktemp("cal") / "synth.parquet"
    return synth_store_without_truth(p, 200_000, 3, sigma=0.08, k=25.0, trade_rate=4.0)


def test_config_json_and_plot_then_backtest(run_cli, store, tmp_path):
    cfg, js, png = tmp_path / "cal.toml", tmp_path / "cal.json", tmp_path / "cal.png"
    r = run_cli("calibrate", store, "-o", cfg, "--json", js, "--plot", png)
    assert r.returncode == 0, r.stderr
    assert "sigma" in r.stdout and "k_bid" in r.stdout and f"config: {cfg}" in r.stdout
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = cfg.read_text()
    assert text.startswith("# avmm calibrate: ")
    for needle in ("sigma = ", "gamma from --skew-at-limit 1", "=> gamma = ", "q gamma sigma^2 tau"):
        assert needle in text, needle
    c = load_config(cfg)
    d = json.loads(js.read_text())
    assert c.model.kind == "as-rolling"
    assert (c.model.sigma, c.model.A, c.model.k) == tuple(float(f"{d[k]:.6g}") for k in ("sigma", "A", "k"))
    assert c.model.gamma == d["gamma"]["gamma"] and d["config"]["model"]["gamma"] == c.model.gamma
    assert (c.quoting.tick, c.quoting.lot) == (0.01, 0.001)
    # the config runs: a one-hour backtest of the same data
    start = read_meta(store)["start_ns"]
    bj = tmp_path / "bt.json"
    r = run_cli("backtest", store, "-c", cfg, "--to", str(start + 3600 * 10**9), "--json", bj, "--no-progress")
    assert r.returncode == 0, r.stderr
    bt = json.loads(bj.read_text())
    assert bt["config"]["model"]["gamma"] == c.model.gamma and bt["fills"] > 0


def test_json_schema(run_main, store, tmp_path):
    js = tmp_path / "c.json"
    code, out, err = run_main("calibrate", store, "--json", js, "--bootstrap", "50", "--seed", "4")
    assert code == 0, err
    d = json.loads(js.read_text())
    assert d["schema"] == "avmm.calibrate/1"
    for key in ESTIMATES:
        v, ci = d[key], d[f"{key}_ci"]
        assert isinstance(v, float) and v > 0, key
        assert isinstance(ci, list) and len(ci) == 2 and ci[0] <= v <= ci[1], key
    assert d["units"]["sigma"] == "price/sqrt(s)" and d["units"]["k"] == "1/price"
    b = d["bootstrap"]
    assert (b["resamples"], b["seed"], b["level"]) == (50, 4, 0.95) and 190 <= b["blocks"] <= 201 and b["block_s"] > 10
    assert d["tick"] == 0.01 and d["lot"] == 0.001
    fit = d["intensity"]
    assert fit["method"] == "poisson-mle"
    for side in ("bid", "ask", "pooled"):
        bins = fit[side]["bins"]
        assert len(bins) == len(fit["bins_half_ticks"]) and bins[-1]["depth_to"] is None
        if side != "pooled":  # (pooled: the two sides' mean, per side)
            assert sum(b["trades"] for b in bins) == fit[side]["trades"]
        assert fit[side]["A"] == d["A" if side == "pooled" else f"A_{side}"]
        assert {"expected", "pearson_residual", "rate_at_least_per_s", "fitted_rate_per_s"} <= set(bins[0])
    assert 0.99 < fit["bid"]["r2_log_rate"] <= 1
    assert len(d["sigma_windows"]) == 20 and all(w["sigma"] > 0 for w in d["sigma_windows"])
    assert d["fill_rates"][0]["depth_ticks"] == 0.5 and d["fill_rates"][0]["bid_per_s"] == pytest.approx(d["A_bid"])
    assert d["spread_ticks"]["p50"] == 1 and d["trade_size"]["p50"] > 0 and d["touch_size"]["p50"] > 0
    sk = d["skipped"]
    assert (
        set(sk) >= {"bad_quotes", "trades_without_live_quote"} and sum(sk.values()) == sk["trades_without_live_quote"]
    )
    assert sk["trades_without_live_quote"] <= 1  # a trade before the first quote, at most
    assert d["notes"] == ([f"1 {SKIPS['trades_without_live_quote']}"] if sk["trades_without_live_quote"] else [])
    assert d["data"]["rows"] == 200_000 and d["data"]["stores"] == [str(store)]
    # deterministic: the same seed gives the same intervals
    js2 = tmp_path / "c2.json"
    assert run_main("calibrate", store, "--json", js2, "--bootstrap", "50", "--seed", "4")[0] == 0
    assert json.loads(js2.read_text())["k_ci"] == d["k_ci"]


def _model(cfg):
    m = cfg.model
    return m.gamma, m.sigma, m.k, m.tau_s, cfg.risk.max_position / m.q_unit


@pytest.mark.parametrize("x", ["0.5", "2.5"])
def test_skew_at_limit_keeps_its_promise(run_main, store, tmp_path, x):
    cfg = tmp_path / "c.toml"
    code, out, err = run_main("calibrate", store, "-o", cfg, "--skew-at-limit", x, "--bootstrap", "0")
    assert code == 0, err
    g, sigma, k, tau, q_max = _model(load_config(cfg))
    shift = q_max * g * sigma**2 * tau  # the reservation price's move at the limit
    assert shift / (0.5 * as_spread(g, sigma, k, tau)) == pytest.approx(float(x), rel=1e-4)
    assert f"--skew-at-limit {x}" in cfg.read_text()


@pytest.mark.parametrize("n", ["9", "14"])
def test_spread_ticks_keeps_its_promise(run_main, store, tmp_path, n):
    cfg, js = tmp_path / "c.toml", tmp_path / "c.json"
    code, out, err = run_main("calibrate", store, "-o", cfg, "--json", js, "--spread-ticks", n, "--bootstrap", "0")
    assert code == 0, err
    c = load_config(cfg)
    g, sigma, k, tau, _ = _model(c)
    assert as_spread(g, sigma, k, tau) / c.quoting.tick == pytest.approx(float(n), rel=1e-4)
    d = json.loads(js.read_text())
    assert d["gamma"]["target"] == "spread_ticks" and d["sigma_ci"] is None  # --bootstrap 0: no intervals


def test_html_plot(run_main, store, tmp_path):
    html = tmp_path / "c.html"
    code, out, err = run_main("calibrate", store, "--plot", html, "--bootstrap", "0")
    assert code == 0, err
    assert "plotly" in html.read_text()[:200_000].lower()


def test_a_missing_chart_library_is_one_line(run_main, store, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = run_main("calibrate", store, "--plot", tmp_path / "c.png")
    assert code == 2 and error_lines(err) == [
        "avmm: error: avmm calibrate --plot needs matplotlib, which is not installed: pip install 'avmm[report]'"
    ]


def _tiny(path, trades=True, quotes=True):
    rows = [Q(i * 100, 99.99, 1, 100.01, 1) for i in range(3000)] if quotes else []
    if trades:
        rows += [T(i * 100 + 50, 100.01, 1, BUY) for i in range(0, 3000, 100)]  # 30 buys
    rows.sort(key=lambda r: r[0])
    write_events(path, [stream(*rows)], {"tick_size": 0.01, "lot_size": 0.001})
    return path


@pytest.mark.parametrize(
    "args, needle",
    [
        (["{d}/nope.parquet"], "{d}/nope.parquet: no such file"),
        (["{d}/garbage.parquet"], "{d}/garbage.parquet: "),
        (["{s}", "--from", "2030-01-01"], "no data in the window [2030-01-01T00:00:00.000Z, +inf): the data spans"),
        (["{s}", "--from", "2024-01-02", "--to", "2024-01-01"], "is not before --to"),
        (["{s}", "--from", "yesterday"], "--from yesterday: not a time"),
        (["{s}", "--skew-at-limit", "1", "--spread-ticks", "9"], "give one of them"),
        (["{s}", "--spread-ticks", "-1"], "--spread-ticks -1: must be a positive number of ticks"),
        (["{s}", "--spread-ticks", "2"], "--spread-ticks 2: below the narrowest spread"),
        (["{s}", "--skew-at-limit", "25"], "--skew-at-limit 25: the A-S skew at the position limit is below 2 q = 20"),
        (["{s}", "--plot", "{d}/c.txt"], "--plot {d}/c.txt: expected a .png (matplotlib) or .html (plotly) file"),
        (["{s}", "--json", "{s}"], "--json {s}: is one of the inputs"),
        (["{s}", "-o", "{d}/x", "--json", "{d}/x"], "also given to -o"),
        (["{d}/quotes_only.parquet"], "too few trades to fit the intensity on the bid side (sells): found 0"),
        (["{d}/few.parquet"], "found 0 with a live quote, need at least 50"),
        (["{d}/trades_only.parquet"], "no valid quotes in the stores (found 30 rows)"),
    ],
)
def test_bad_input_one_line_exit_2(run_main, store, tmp_path, args, needle):
    (tmp_path / "garbage.parquet").write_text("not parquet\n")
    _tiny(tmp_path / "quotes_only.parquet", trades=False)
    _tiny(tmp_path / "few.parquet")
    _tiny(tmp_path / "trades_only.parquet", quotes=False)
    before = store.read_bytes()[-4096:]
    args = [a.format(d=tmp_path, s=store) for a in args]
    code, out, err = run_main("calibrate", *args)
    assert_one_line_error(_Result(code, out, err), needle.format(d=tmp_path, s=store))
    assert store.read_bytes()[-4096:] == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_bad_flag_values_are_usage_errors(run_main, store):
    code, out, err = run_main("calibrate", store, "--bootstrap", "-1")
    assert code == 2 and len(error_lines(err)) == 1 and "--bootstrap" in err and "Traceback" not in err


class _Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.returncode, self.stdout, self.stderr = code, out, err


def test_summary_names_every_estimate(run_main, store):
    code, out, err = run_main("calibrate", store, "--bootstrap", "20")
    assert code == 0, err
    for word in (*ESTIMATES, "sigma over the session", "gamma", "spread, ticks", "trade size", "touch size", "R^2"):
        assert word in out, word
    assert "fill rate of a quote at each depth" in out
    assert not math.isnan(float(out.split("sigma", 1)[1].split()[1]))
