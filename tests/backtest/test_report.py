"""``avmm backtest --report``: a day of samples gives a small HTML file (plotly.js written once
beside it, so it opens offline), every trace bounded, spikes kept by the min/max envelope, the
printed figures from the full data, PNG output, and atomic writes."""

from __future__ import annotations

import base64
import errno
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("plotly")
pytest.importorskip("matplotlib")

from avmm.backtest import report as rp  # noqa: E402
from avmm.backtest.config import BacktestConfig  # noqa: E402
from avmm.backtest.runner import BacktestResult  # noqa: E402
from avmm.backtest.state import FILL_DTYPE, MARKOUT_S, SAMPLE_DTYPE  # noqa: E402
from avmm.core.config import StrategyConfig  # noqa: E402
from avmm.errors import UserError  # noqa: E402

T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
DAY_SAMPLES = 83_000  # a 23-hour session sampled every second
SPIKE_AT = 41_234  # one sample where the position jumps far outside its usual range
SPIKE_POS = 57.0


def day_result(n: int = DAY_SAMPLES, n_fills: int = 200_000, seed: int = 3) -> BacktestResult:
    """A ``BacktestResult`` shaped like a 23-hour run: ``n`` samples one second apart and
    ``n_fills`` fills (what the runner keeps), with a one-sample inventory spike at ``SPIKE_AT``."""
    rng = np.random.default_rng(seed)
    s = np.zeros(n, dtype=SAMPLE_DTYPE)
    s["ts"] = T0 + np.arange(n, dtype=np.int64) * 1_000_000_000
    mid = 100.0 + np.cumsum(rng.normal(0.0, 0.01, n))
    s["mid"] = mid
    s["bid"] = mid - 0.005
    s["ask"] = mid + 0.005
    s["our_bid"] = mid - 0.01
    s["our_ask"] = mid + 0.01
    s["pos"] = np.clip(np.cumsum(rng.choice([-0.1, 0.0, 0.1], n)), -5.0, 5.0)
    s["pnl"] = np.cumsum(rng.normal(0.0, 0.02, n))
    s["fees"] = np.cumsum(np.full(n, 1e-4))
    if n > SPIKE_AT:
        s["pos"][SPIKE_AT] = SPIKE_POS
        s["mid"][:10] = np.nan  # no book yet at the start
    f = np.zeros(n_fills, dtype=FILL_DTYPE)
    if n:
        f["ts"] = np.sort(rng.integers(s["ts"][0], s["ts"][-1], n_fills))
        f["side"] = rng.choice([-1, 1], n_fills)
        f["px"] = 100.0 + rng.normal(0.0, 0.5, n_fills)
        f["qty"] = 0.1
    summary = {
        "pnl_net": float(s["pnl"][-1]) if n else 0.0,
        "currency": "quote",
        "fills": n_fills,
        "sharpe": 1.234,
        "max_drawdown": 0.5,
        "spread_captured_bps": 1.5,
        "markout_curve_bps": {f"{h:g}": 0.1 * i for i, h in enumerate(MARKOUT_S)},
        "equity_interval_s": 1.0,
    }
    return BacktestResult(summary, s, f, StrategyConfig(), BacktestConfig(), {"symbol": "SYN"})


@pytest.fixture(scope="module")
def day() -> BacktestResult:
    return day_result()


def plot_args(html: str) -> tuple[list[dict], dict]:
    """The traces and the layout given to ``Plotly.newPlot`` in a report."""
    at = html.index("Plotly.newPlot(") + len("Plotly.newPlot(")
    dec = json.JSONDecoder()
    i = html.index('"', at)
    _, i = dec.raw_decode(html, i)  # the div id
    i = html.index("[", i)
    data, i = dec.raw_decode(html, i)
    i = html.index("{", i)
    layout, _ = dec.raw_decode(html, i)
    return data, layout


def values(a) -> np.ndarray:
    """A trace array as written by plotly: a list, or base64 ``{"dtype", "bdata"}``."""
    if isinstance(a, dict):
        return np.frombuffer(base64.b64decode(a["bdata"]), dtype=np.dtype(a["dtype"]))
    return np.array([np.nan if v is None else v for v in a], dtype=float)


def traces_by_name(data: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for tr in data:
        out.setdefault(tr.get("legendgroup") or tr.get("name", ""), []).append(tr)
    return out


@pytest.fixture(scope="module")
def day_html(day, tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("report") / "day.html"
    rp.write_report(day, p)
    return p


# ---------------------------------------------------------------- size and bounded traces
def test_day_report_under_2_mb_every_trace_bounded(day_html):
    assert day_html.stat().st_size < 2_000_000
    data, _ = plot_args(day_html.read_text())
    assert len(data) >= 8
    for tr in data:
        x = tr.get("x", [])
        n = len(values(x)) if isinstance(x, dict) else len(x)
        assert n <= rp.MAX_TRACE_POINTS, (tr.get("name"), n)


def test_plotly_js_written_once_beside_the_report_and_referenced_relatively(day_html, day):
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    html = day_html.read_text()
    js = day_html.parent / f"plotly-{get_plotlyjs_version()}.min.js"
    assert js.read_text(encoding="utf-8") == get_plotlyjs()
    srcs = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert srcs == [js.name]  # relative: opens offline, the folder can be moved as a whole
    assert "http://" not in " ".join(srcs) and "https://" not in " ".join(srcs)
    # a second report in the same folder shares the file and leaves it as it is
    before = js.stat().st_mtime_ns
    rp.write_report(day, day_html.parent / "again.html")
    assert js.stat().st_mtime_ns == before
    assert sorted(p.name for p in day_html.parent.iterdir()) == sorted(["day.html", "again.html", js.name])


# ---------------------------------------------------------------- envelopes keep spikes
def test_envelope_keeps_every_extreme_and_the_last_value():
    rng = np.random.default_rng(0)
    n = 83_000
    ts = np.arange(n, dtype=np.int64) * 10**9
    y = rng.normal(size=n)
    y[12_345] = 99.0
    y[70_001] = -99.0
    y[:5] = np.nan
    env = rp.envelope(ts, y)
    assert env.decimated and len(env.lo) <= rp.COLUMNS
    assert env.hi.max() == 99.0 and env.lo.min() == -99.0
    assert env.last[-1] == y[-1] and env.t_last_ns[-1] == ts[-1]
    assert env.t_ns[0] == ts[0]
    assert np.all(env.lo <= env.last) and np.all(env.last <= env.hi)
    # every sample lies inside the band of its column
    col = np.searchsorted(env.t_ns, ts, side="right") - 1
    ok = ~np.isnan(y)
    assert np.all(env.lo[col][ok] <= y[ok]) and np.all(y[ok] <= env.hi[col][ok])


def test_short_series_drawn_as_is():
    ts = np.arange(100, dtype=np.int64)
    y = np.arange(100.0)
    env = rp.envelope(ts, y)
    assert not env.decimated
    assert np.array_equal(env.last, y) and np.array_equal(env.t_ns, ts)


def test_inventory_spike_of_one_sample_is_drawn(day_html):
    data, _ = plot_args(day_html.read_text())
    inv = [tr for tr in data if tr.get("yaxis") == "y3"]  # row 2 (row 1 has y and y2)
    assert inv, "inventory panel"
    band = [tr for tr in inv if tr.get("fill") == "tonexty"]
    assert band  # drawn as a band
    assert all(tr["line"]["width"] >= 1 for tr in inv)  # edges drawn: a sub-pixel spike stays visible
    assert max(np.nanmax(values(tr["y"])) for tr in inv) == SPIKE_POS


def test_printed_figures_come_from_the_full_data(day_html, day):
    _, layout = plot_args(day_html.read_text())
    titles = " | ".join(a.get("text", "") for a in layout.get("annotations", []))
    pos = day.samples["pos"]
    assert f"max {SPIKE_POS:g}" in titles
    assert f"min {pos.min():g}" in titles
    assert f"{len(day.samples):,} samples" in titles
    assert f"{day.summary['fills']:,}" in layout["title"]["text"]


def test_quotes_window_at_full_resolution_with_its_fills(day_html, day):
    data, _ = plot_args(day_html.read_text())
    panel = [tr for tr in data if tr.get("yaxis") == "y4"]
    names = {tr["name"] for tr in panel}
    assert {"market bid", "market ask", "our bid", "our ask", "buy fills", "sell fills"} <= names
    bid = next(tr for tr in panel if tr["name"] == "market bid")
    x_ms = values(bid["x"])
    assert 100 < len(x_ms) <= rp.MAX_TRACE_POINTS
    assert np.all(np.diff(x_ms) == 1000.0)  # every sample in the window: one a second
    fills = [tr for tr in panel if tr["name"].endswith("fills")]
    fx = np.concatenate([values(tr["x"]) for tr in fills])
    assert 0 < len(fx) <= rp.MAX_FILL_MARKERS
    assert fx.min() >= x_ms[0] and fx.max() <= x_ms[-1]


# ---------------------------------------------------------------- PNG, small and empty runs
def test_png_for_a_day(day, tmp_path):
    p = tmp_path / "day.png"
    rp.write_report(day, p)
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
    assert [x.name for x in tmp_path.iterdir()] == ["day.png"]


@pytest.mark.parametrize("n, n_fills", [(0, 0), (1, 0), (50, 3), (6_000, 0)])
@pytest.mark.parametrize("suffix", [".html", ".png"])
def test_small_and_empty_runs(tmp_path, n, n_fills, suffix):
    p = tmp_path / f"r{suffix}"
    rp.write_report(day_result(n, n_fills), p)
    assert p.stat().st_size > 1_000


# ---------------------------------------------------------------- atomic writes
def test_a_failed_write_leaves_nothing_and_keeps_the_old_report(day, tmp_path, monkeypatch):
    p = tmp_path / "r.html"
    p.write_text("old report")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(UserError) as e:
        rp.write_report(day, p)
    msg = str(e.value)
    assert "--report" in msg and "no space left" in msg and "\n" not in msg
    assert p.read_text() == "old report"
    assert [x.name for x in tmp_path.iterdir()] == ["r.html"]  # no temp file, no half side file


@pytest.mark.parametrize("suffix", [".html", ".png"])
def test_interrupted_while_drawing_leaves_nothing(day, tmp_path, monkeypatch, suffix):
    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(rp, "envelope", interrupt)
    with pytest.raises(KeyboardInterrupt):
        rp.write_report(day, tmp_path / f"r{suffix}")
    assert list(tmp_path.iterdir()) == []


def test_output_checks_one_line(day, tmp_path):
    (tmp_path / "d.html").mkdir()
    with pytest.raises(UserError, match="is a folder"):
        rp.write_report(day, tmp_path / "d.html")
    with pytest.raises(UserError, match="does not exist"):
        rp.write_report(day, tmp_path / "missing" / "r.html")
    src = tmp_path / "in.html"
    src.write_text("input")
    with pytest.raises(UserError, match="one of the inputs"):
        rp.write_report(day, src, inputs=[src])
    assert src.read_text() == "input"


# ---------------------------------------------------------------- it renders (optional)
def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if exe := shutil.which(name):
            return exe
    return None


@pytest.mark.skipif(_chromium() is None, reason="no headless Chromium")
def test_renders_offline_in_headless_chromium(day_html):
    exe = _chromium()
    assert exe is not None
    r = subprocess.run(
        [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=20000",
            "--dump-dom",
            day_html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # plotly drew the subplots (its SVG layers and one x axis per panel) from the side file
    assert r.stdout.count('class="main-svg"') >= 2, r.stderr[-2000:]
    assert "xtick" in r.stdout


def test_the_markets_accounting_is_in_the_title(tmp_path):
    res = day_result(200, 20)
    res.summary.update(
        market="perpetual",
        funding=-1.25,
        funding_payments=3,
        leverage=20.0,
        max_initial_margin=12.5,
        min_liquidation_distance_pct=4.321,
    )
    out = rp.write_report(res, tmp_path / "r.html")
    _, layout = plot_args(out.read_text())
    title = layout["title"]["text"]
    assert "funding -1.25 quote (3 payments)" in title
    assert "max initial margin 12.5 at 20x" in title and "4.32 %" in title
    res.summary.update(
        market="spot", initial_base=1.0, final_base=1.5, initial_quote=1e4, final_quote=9950.0, rejects_balance=7
    )
    assert "base 1 -> 1.5, quote 10000 -> 9950, rejected for balance 7" in rp._title(res)
    rp.write_report(res, tmp_path / "r.png")  # two title lines fit the PNG
