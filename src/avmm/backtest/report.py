"""``--report``: the charts people look at, as interactive HTML (plotly) or a PNG (matplotlib).

Panels: (1) net and gross-of-fees PnL with the mid price; (2) inventory; (3) our best bid / ask
against the market's best bid / ask, with fill markers (HTML: zoom anywhere; PNG: a window of
``PNG_WINDOW`` samples around the busiest stretch of fills); (4) the markout curve (volume-weighted
bp after fills, by horizon; 0 = spread captured at the fill).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avmm.backtest.state import MARKOUT_S
from avmm.errors import missing_extra

if TYPE_CHECKING:
    from avmm.backtest.runner import BacktestResult

MAX_POINTS = 200_000  # PNG
HTML_POINTS = 20_000  # per trace in the HTML (keeps the file a few MB)
MAX_FILL_MARKERS = 5_000
PNG_WINDOW = 600


def _thin(a: np.ndarray, n: int) -> np.ndarray:
    if a.shape[0] <= n:
        return a
    step = int(np.ceil(a.shape[0] / n))
    return a[::step]


def _markout_curve(res: BacktestResult) -> tuple[list[str], list[float]]:
    s = res.summary
    xs = ["fill"] + [f"{h:g} s" for h in MARKOUT_S]
    ys = [s.get("spread_captured_bps")] + [s["markout_curve_bps"].get(f"{h:g}") for h in MARKOUT_S]
    return xs, [np.nan if y is None else y for y in ys]


def _dt(ns: np.ndarray) -> np.ndarray:
    return ns.astype("datetime64[ns]")


def require_charts(path: Path) -> None:
    """Raise a one-line ``UserError`` naming the install when the library that draws ``path``
    (plotly for ``.html``, matplotlib for ``.png``) is missing: checked before a run, not after."""
    import importlib

    module = "matplotlib" if path.suffix.lower() == ".png" else "plotly"
    try:
        importlib.import_module(module)
    except ImportError:
        raise missing_extra("avmm backtest --report", "report", module) from None


def write_report(res: BacktestResult, path: Path) -> None:
    path = Path(path)
    if path.suffix.lower() == ".png":
        _png(res, path)
    else:
        _html(res, path)


def _title(res: BacktestResult) -> str:
    s = res.summary
    sym = res.meta.get("symbol", "")
    return (
        f"avmm backtest {sym}: net PnL {s['pnl_net']:.4g} {s['currency']}, fills {s['fills']:,}, "
        f"Sharpe {s['sharpe'] if s['sharpe'] is None else round(s['sharpe'], 2)}, max DD {s['max_drawdown']:.4g}"
    )


def _html(res: BacktestResult, path: Path) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    smp = _thin(res.samples, HTML_POINTS)
    t = _dt(smp["ts"])
    fig = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=False,
        vertical_spacing=0.06,
        row_heights=[0.3, 0.18, 0.34, 0.18],
        specs=[[{"secondary_y": True}], [{}], [{}], [{}]],
        subplot_titles=(
            "PnL (net and gross of fees) and mid",
            "inventory",
            "quotes against the book, fills",
            "markout after fills (bp, volume-weighted)",
        ),
    )
    fig.add_trace(go.Scattergl(x=t, y=smp["pnl"], name="net PnL", line=dict(color="#1f77b4")), row=1, col=1)
    fig.add_trace(
        go.Scattergl(x=t, y=smp["pnl"] + smp["fees"], name="gross PnL", line=dict(color="#2ca02c", dash="dot")),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scattergl(x=t, y=smp["mid"], name="mid", line=dict(color="#999", width=1)), row=1, col=1, secondary_y=True
    )
    fig.add_trace(
        go.Scattergl(x=t, y=smp["pos"], name="position", line=dict(color="#9467bd", shape="hv")), row=2, col=1
    )
    fig.add_trace(
        go.Scattergl(x=t, y=smp["bid"], name="market bid", line=dict(color="#aec7e8", shape="hv")), row=3, col=1
    )
    fig.add_trace(
        go.Scattergl(x=t, y=smp["ask"], name="market ask", line=dict(color="#ffbb78", shape="hv")), row=3, col=1
    )
    fig.add_trace(
        go.Scattergl(x=t, y=smp["our_bid"], name="our bid", mode="lines", line=dict(color="#1f77b4", shape="hv")),
        row=3,
        col=1,
    )
    fig.add_trace(
        go.Scattergl(x=t, y=smp["our_ask"], name="our ask", mode="lines", line=dict(color="#d62728", shape="hv")),
        row=3,
        col=1,
    )
    f = _thin(res.fills, MAX_FILL_MARKERS)
    for side, name, sym, col in (
        (1, "buy fills", "triangle-up", "#2ca02c"),
        (-1, "sell fills", "triangle-down", "#d62728"),
    ):
        m = f[f["side"] == side]
        fig.add_trace(
            go.Scattergl(
                x=_dt(m["ts"]), y=m["px"], name=name, mode="markers", marker=dict(symbol=sym, color=col, size=7)
            ),
            row=3,
            col=1,
        )
    xs, ys = _markout_curve(res)
    fig.add_trace(go.Scatter(x=xs, y=ys, name="markout", mode="lines+markers", line=dict(color="#333")), row=4, col=1)
    fig.update_xaxes(matches="x", row=2, col=1)
    fig.update_xaxes(matches="x", row=3, col=1)
    fig.update_xaxes(title_text="time after fill", type="category", row=4, col=1)
    fig.update_yaxes(title_text=res.summary["currency"], row=1, col=1)
    fig.update_yaxes(title_text="mid", row=1, col=1, secondary_y=True)
    fig.update_layout(title=_title(res), height=1300, hovermode="x unified", template="plotly_white")
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)


def _busiest_window(samples: np.ndarray, fills: np.ndarray, width: int) -> slice:
    n = samples.shape[0]
    if n <= width:
        return slice(0, n)
    if fills.size:
        idx = np.searchsorted(samples["ts"], fills["ts"])
        counts = np.bincount(np.clip(idx, 0, n - 1), minlength=n)
        c = np.convolve(counts, np.ones(width), mode="valid")
        start = int(np.argmax(c))
    else:
        start = (n - width) // 2
    return slice(start, start + width)


def _png(res: BacktestResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    smp = _thin(res.samples, MAX_POINTS)
    t = _dt(smp["ts"])
    fig, ax = plt.subplots(4, 1, figsize=(13, 15), gridspec_kw=dict(height_ratios=[3, 2, 3, 2]))
    a = ax[0]
    a.plot(t, smp["pnl"], label="net PnL", color="#1f77b4")
    a.plot(t, smp["pnl"] + smp["fees"], label="gross PnL", color="#2ca02c", ls=":")
    a.set_ylabel(res.summary["currency"])
    a2 = a.twinx()
    a2.plot(t, smp["mid"], color="#999", lw=0.7, label="mid")
    a2.set_ylabel("mid")
    a.legend(loc="upper left")
    a.set_title("PnL (net and gross of fees) and mid")
    ax[1].step(t, smp["pos"], where="post", color="#9467bd")
    ax[1].set_title("inventory")
    w = res.samples[_busiest_window(res.samples, res.fills, PNG_WINDOW)]
    tw = _dt(w["ts"])
    a = ax[2]
    a.step(tw, w["bid"], where="post", color="#aec7e8", label="market bid")
    a.step(tw, w["ask"], where="post", color="#ffbb78", label="market ask")
    a.step(tw, w["our_bid"], where="post", color="#1f77b4", label="our bid")
    a.step(tw, w["our_ask"], where="post", color="#d62728", label="our ask")
    if w.size:
        f = res.fills[(res.fills["ts"] >= w["ts"][0]) & (res.fills["ts"] <= w["ts"][-1])]
        for side, mk, col in ((1, "^", "#2ca02c"), (-1, "v", "#d62728")):
            m = f[f["side"] == side]
            a.scatter(
                _dt(m["ts"]),
                m["px"],
                marker=mk,
                color=col,
                s=30,
                zorder=3,
                label="buy fills" if side > 0 else "sell fills",
            )
    a.legend(loc="upper left", ncol=3, fontsize=8)
    a.set_title(f"quotes against the book, fills ({len(w)} samples at {res.summary['equity_interval_s']:g} s)")
    xs, ys = _markout_curve(res)
    ax[3].plot(xs, ys, marker="o", color="#333")
    ax[3].axhline(0.0, color="#bbb", lw=0.8)
    ax[3].set_xlabel("time after fill")
    ax[3].set_ylabel("bp")
    ax[3].set_title("markout after fills (volume-weighted; 'fill' = spread captured)")
    fig.suptitle(_title(res), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
