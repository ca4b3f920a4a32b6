"""``--report``: the charts people look at, as interactive HTML (plotly) or a PNG (matplotlib).

Panels: (1) net and gross-of-fees PnL with the mid price; (2) inventory; (3) our best bid / ask
against the market's best bid / ask, with fill markers, over a window of the busiest stretch of
fills (shaded in panels 1 and 2); (4) the markout curve (volume-weighted bp after fills, by
horizon; 0 = spread captured at the fill).

Downsampled for drawing, not for figures. The figures printed on the charts (title, panel titles)
come from the full data. A series longer than ``MAX_TRACE_POINTS`` samples (a 23-hour session
sampled every second has 83,000) is drawn as a min/max *envelope*: the samples are split into
``COLUMNS`` consecutive columns (about one per pixel of a wide chart), each drawn as a band from
its lowest to its highest value, plus a line through each column's last value -- so a spike of a
single sample is never lost to decimation. Panel 3 shows at most ``WINDOW`` consecutive samples at
full resolution and at most ``MAX_FILL_MARKERS`` fills. Every trace has at most
``MAX_TRACE_POINTS`` points.

plotly.js (about 4.6 MB) is not inlined: the HTML references ``plotly-<version>.min.js`` by a
relative path, written once beside the report from the installed plotly package (reports in one
folder share it; an identical file is left as it is). The report therefore opens offline with no
CDN, and the HTML itself stays well under 2 MB for a day of data; move or copy the folder (or
both files) together. Should the file be missing, the page says so instead of staying blank.

Every file is written through ``avmm.outputs.atomic_output``: a failed or interrupted run leaves
no partial file (the charts are drawn in memory before anything is written).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avmm.backtest.state import MARKOUT_S
from avmm.errors import missing_extra
from avmm.outputs import atomic_output

if TYPE_CHECKING:
    from avmm.backtest.runner import BacktestResult

FLAG = "--report"
COLUMNS = 2_000  # envelope columns of a decimated series (about one per pixel column)
MAX_TRACE_POINTS = 5_000  # a longer series is drawn as an envelope; no trace has more points
WINDOW = 3_600  # samples in the quotes-against-the-book panel of the HTML (an hour at 1 s)
PNG_WINDOW = 600  # the same in the PNG (readable at its width)
MAX_FILL_MARKERS = 5_000
BAND_ALPHA = 0.25
EDGE_ALPHA = 0.6


# ---------------------------------------------------------------- data reduction
@dataclass(frozen=True)
class Envelope:
    """A series reduced for drawing: per column, the first sample's time, the lowest and highest
    value, and the last sample's time and value. Not decimated: one column per sample."""

    t_ns: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    t_last_ns: np.ndarray
    last: np.ndarray
    per_column: int  # samples per column (at most; 1 when not decimated)

    @property
    def decimated(self) -> bool:
        return self.per_column > 1


def envelope(ts_ns: np.ndarray, y: np.ndarray, columns: int = COLUMNS, max_points: int = MAX_TRACE_POINTS) -> Envelope:
    """Reduce ``y`` (sampled at ``ts_ns``, sorted) to at most ``columns`` min/max columns of
    consecutive samples when it has more than ``max_points`` samples; else keep every sample.

    Parameters
    ----------
    ts_ns : ndarray of int64
        Sample times, ns, non-decreasing.
    y : ndarray of float
        The values; NaN (no value yet) is ignored in a column's min and max.
    columns : int
        Columns of a decimated series.
    max_points : int
        The longest series drawn as it is.

    Returns
    -------
    Envelope
        ``lo <= last <= hi`` in every column whose values are not all NaN.
    """
    n = int(y.shape[0])
    y = np.asarray(y, dtype=np.float64)
    if n <= max_points:
        return Envelope(ts_ns, y, y, ts_ns, y, 1)
    starts = (np.arange(columns, dtype=np.int64) * n) // columns
    ends = np.append(starts[1:], n) - 1
    lo = np.fmin.reduceat(y, starts)
    hi = np.fmax.reduceat(y, starts)
    return Envelope(ts_ns[starts], lo, hi, ts_ns[ends], y[ends], -(-n // columns))


def _busiest_window(samples: np.ndarray, fills: np.ndarray, width: int) -> slice:
    """The ``width`` consecutive samples holding the most fills (the middle ones without fills)."""
    n = samples.shape[0]
    if n <= width:
        return slice(0, n)
    if fills.size:
        idx = np.clip(np.searchsorted(samples["ts"], fills["ts"]), 0, n - 1)
        cs = np.concatenate([[0], np.cumsum(np.bincount(idx, minlength=n))])
        start = int(np.argmax(cs[width:] - cs[:-width]))
    else:
        start = (n - width) // 2
    return slice(start, start + width)


def _window_fills(res: BacktestResult, w: np.ndarray) -> tuple[np.ndarray, int]:
    """The fills in the window ``w`` of samples, every k-th when more than ``MAX_FILL_MARKERS``;
    and how many there are."""
    if not w.size:
        return res.fills[:0], 0
    f = res.fills[(res.fills["ts"] >= w["ts"][0]) & (res.fills["ts"] <= w["ts"][-1])]
    n = int(f.shape[0])
    if n > MAX_FILL_MARKERS:
        f = f[:: -(-n // MAX_FILL_MARKERS)]
    return f, n


def _markout_curve(res: BacktestResult) -> tuple[list[str], list[float]]:
    s = res.summary
    xs = ["fill"] + [f"{h:g} s" for h in MARKOUT_S]
    ys = [s.get("spread_captured_bps")] + [s["markout_curve_bps"].get(f"{h:g}") for h in MARKOUT_S]
    return xs, [np.nan if y is None else y for y in ys]


# ---------------------------------------------------------------- text (from the full data)
def _g(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:g}"


def _range(y: np.ndarray) -> tuple[float, float, float]:
    """(min, max, last) of ``y`` ignoring NaN; NaN when there is no value."""
    ok = y[~np.isnan(y)]
    if not ok.size:
        return np.nan, np.nan, np.nan
    return float(ok.min()), float(ok.max()), float(ok[-1])


def _how_drawn(n: int, env: Envelope) -> str:
    if not env.decimated:
        return f"{n:,} samples"
    return f"{n:,} samples; band: min to max of each {env.per_column} samples"


def _titles(res: BacktestResult, envs: dict[str, Envelope], w: np.ndarray, nf: int, shown: int) -> list[str]:
    smp = res.samples
    n = int(smp.shape[0])
    lo, hi, last = _range(smp["pnl"])
    p_lo, p_hi, p_last = _range(smp["pos"])
    t1 = (
        f"PnL (net and gross of fees) and mid: net min {_g(lo)}, max {_g(hi)}, last {_g(last)} "
        f"({_how_drawn(n, envs['pnl'])})"
    )
    t2 = f"inventory: min {_g(p_lo)}, max {_g(p_hi)}, last {_g(p_last)} ({_how_drawn(n, envs['pos'])})"
    if w.size:
        iv = res.summary.get("equity_interval_s", 0.0)
        when = f"{np.datetime64(int(w['ts'][0]), 'ns').astype('datetime64[s]')} UTC"
        fills = f"{nf:,} fills" if shown == nf else f"{shown:,} of {nf:,} fills (evenly spaced)"
        t3 = f"quotes against the book, {fills}: the busiest {len(w):,} samples at {iv:g} s from {when}"
    else:
        t3 = "quotes against the book, fills: no samples"
    return [t1, t2, t3, "markout after fills (bp, volume-weighted; 'fill' = spread captured)"]


def _title(res: BacktestResult, br: str = "<br>") -> str:
    s = res.summary
    sym = res.meta.get("symbol", "")
    acct = accounting_line(s)
    return (
        f"avmm backtest {sym}: net PnL {s['pnl_net']:.4g} {s['currency']}, fills {s['fills']:,}, "
        f"Sharpe {s['sharpe'] if s['sharpe'] is None else round(s['sharpe'], 2)}, max DD {s['max_drawdown']:.4g}"
        + (br + acct if acct else "")
    )


def _n(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.6g}"


def accounting_line(s: dict) -> str:
    """The market's accounting in one line: spot balances, or perpetual funding and margin ("" for
    a summary without them)."""
    if s.get("market") not in ("spot", "perpetual"):
        return ""
    if s["market"] == "spot":
        return (
            f"spot: base {_n(s['initial_base'])} -> {_n(s['final_base'])}, quote {_n(s['initial_quote'])} -> "
            f"{_n(s['final_quote'])}, rejected for balance {s['rejects_balance']:,}"
        )
    dist = s.get("min_liquidation_distance_pct")
    return (
        f"perpetual: funding {_n(s.get('funding'))} {s['currency']} ({s.get('funding_payments') or 0:,} payments), "
        f"max initial margin {_n(s.get('max_initial_margin'))} at {_n(s.get('leverage'))}x, "
        f"min distance to liquidation {'none' if dist is None else f'{dist:.2f} %'}"
    )


def _envelopes(smp: np.ndarray) -> dict[str, Envelope]:
    ts = smp["ts"]
    return {
        "pnl": envelope(ts, smp["pnl"]),
        "gross": envelope(ts, smp["pnl"] + smp["fees"]),
        "mid": envelope(ts, smp["mid"]),
        "pos": envelope(ts, smp["pos"]),
    }


# ---------------------------------------------------------------- entry points
def require_charts(path: Path) -> None:
    """Raise a one-line ``UserError`` naming the install when the library that draws ``path``
    (plotly for ``.html``, matplotlib for ``.png``) is missing: checked before a run, not after."""
    import importlib

    module = "matplotlib" if path.suffix.lower() == ".png" else "plotly"
    try:
        importlib.import_module(module)
    except ImportError:
        raise missing_extra("avmm backtest --report", "report", module) from None


def write_report(res: BacktestResult, path: Path | str, inputs: Sequence[Path | str] = ()) -> Path:
    """Write the charts of ``res`` to ``path``: PNG for ``.png``, else interactive HTML (with
    ``plotly-<version>.min.js`` beside it, see the module docstring).

    Parameters
    ----------
    res : BacktestResult
        The run.
    path : Path or str
        The report file.
    inputs : sequence of paths
        The run's input files, which ``path`` must not be.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    UserError
        One line when a file cannot be written (a folder, a missing or read-only folder, an input,
        a full disk); nothing partial is left behind.
    """
    path = Path(path)
    if path.suffix.lower() == ".png":
        _png(res, path, inputs)
    else:
        from plotly.offline import get_plotlyjs_version

        js_name = f"plotly-{get_plotlyjs_version()}.min.js"
        html = _html(res, js_name)
        _write_plotlyjs(path.parent / js_name, inputs)
        with atomic_output(path, FLAG, inputs) as tmp:
            tmp.write_text(html, encoding="utf-8")
    return path


def _write_plotlyjs(js: Path, inputs: Sequence[Path | str]) -> None:
    """plotly.js from the installed package, beside the report; an identical file is kept."""
    from plotly.offline import get_plotlyjs

    data = get_plotlyjs().encode("utf-8")
    try:
        if js.is_file() and js.stat().st_size == len(data) and js.read_bytes() == data:
            return
    except OSError:
        pass
    with atomic_output(js, FLAG, inputs) as tmp:
        tmp.write_bytes(data)


# ---------------------------------------------------------------- HTML (plotly)
def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _ms(ns: np.ndarray) -> np.ndarray:
    """ns since the epoch as float ms, what a plotly date axis takes (compact in the HTML)."""
    return np.asarray(ns, dtype=np.int64) / 1e6


def _iso(ns: int) -> str:
    return str(np.datetime64(int(ns), "ns"))


def _plotly_series(
    fig: Any,
    env: Envelope,
    name: str,
    color: str,
    *,
    row: int,
    hv: bool = False,
    dash: str | None = None,
    width: float = 2.0,
    secondary_y: bool = False,
) -> None:
    import plotly.graph_objects as go

    shape = "hv" if hv else "linear"
    where: dict[str, Any] = dict(row=row, col=1)
    if secondary_y:
        where["secondary_y"] = True
    if env.decimated:
        common: dict[str, Any] = dict(x=_ms(env.t_ns), legendgroup=name, showlegend=False, mode="lines")
        # the band's edges are drawn (1 px): a one-sample spike narrower than a pixel stays visible
        edge = dict(width=1, shape="hv", color=_rgba(color, EDGE_ALPHA))
        fig.add_trace(go.Scatter(y=env.hi, name=f"{name} max", line=edge, **common), **where)
        fig.add_trace(
            go.Scatter(
                y=env.lo,
                name=f"{name} min",
                line=edge,
                fill="tonexty",
                fillcolor=_rgba(color, BAND_ALPHA),
                **common,
            ),
            **where,
        )
    line = dict(color=color, shape=shape, width=width)
    if dash:
        line["dash"] = dash
    fig.add_trace(
        go.Scatter(x=_ms(env.t_last_ns), y=env.last, name=name, legendgroup=name, mode="lines", line=line), **where
    )


def _html(res: BacktestResult, js_src: str) -> str:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    smp = res.samples
    envs = _envelopes(smp)
    w = smp[_busiest_window(smp, res.fills, WINDOW)]
    f, nf = _window_fills(res, w)
    fig = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=False,
        vertical_spacing=0.06,
        row_heights=[0.3, 0.18, 0.34, 0.18],
        specs=[[{"secondary_y": True}], [{}], [{}], [{}]],
        subplot_titles=_titles(res, envs, w, nf, int(f.shape[0])),
    )
    _plotly_series(fig, envs["pnl"], "net PnL", "#1f77b4", row=1)
    _plotly_series(fig, envs["gross"], "gross PnL", "#2ca02c", row=1, dash="dot")
    _plotly_series(fig, envs["mid"], "mid", "#999999", row=1, width=1.0, secondary_y=True)
    _plotly_series(fig, envs["pos"], "position", "#9467bd", row=2, hv=True)
    tw = _ms(w["ts"])
    for col, name, color in (
        ("bid", "market bid", "#aec7e8"),
        ("ask", "market ask", "#ffbb78"),
        ("our_bid", "our bid", "#1f77b4"),
        ("our_ask", "our ask", "#d62728"),
    ):
        fig.add_trace(
            go.Scatter(x=tw, y=w[col], name=name, mode="lines", line=dict(color=color, shape="hv")), row=3, col=1
        )
    for side, name, sym, color in (
        (1, "buy fills", "triangle-up", "#2ca02c"),
        (-1, "sell fills", "triangle-down", "#d62728"),
    ):
        m = f[f["side"] == side]
        fig.add_trace(
            go.Scatter(
                x=_ms(m["ts"]), y=m["px"], name=name, mode="markers", marker=dict(symbol=sym, color=color, size=7)
            ),
            row=3,
            col=1,
        )
    xs, ys = _markout_curve(res)
    fig.add_trace(go.Scatter(x=xs, y=ys, name="markout", mode="lines+markers", line=dict(color="#333")), row=4, col=1)
    if w.size:
        for row in (1, 2):
            fig.add_vrect(
                x0=_iso(w["ts"][0]),
                x1=_iso(w["ts"][-1]),
                fillcolor="#ffd54f",
                opacity=0.2,
                line_width=0,
                row=row,
                col=1,
            )
    for row in (1, 2, 3):
        fig.update_xaxes(type="date", row=row, col=1)
    fig.update_xaxes(matches="x", row=2, col=1)
    fig.update_xaxes(title_text="time after fill", type="category", row=4, col=1)
    fig.update_yaxes(title_text=res.summary["currency"], row=1, col=1)
    fig.update_yaxes(title_text="mid", row=1, col=1, secondary_y=True)
    fig.update_layout(title=_title(res), height=1300, hovermode="x unified", template="plotly_white")
    html: str = fig.to_html(include_plotlyjs=js_src, full_html=True)
    tag = f'<script charset="utf-8" src="{js_src}"></script>'
    missing = (
        "<script>if (typeof Plotly === 'undefined') { document.write('<p>avmm: the charts need "
        f"{js_src} in the same folder as this file (written beside it by avmm backtest --report)."
        "</p>'); }</script>"
    )
    return html.replace(tag, tag + missing, 1)


# ---------------------------------------------------------------- PNG (matplotlib)
def _dt(ns: np.ndarray) -> np.ndarray:
    return np.asarray(ns, dtype=np.int64).astype("datetime64[ns]")


def _mpl_series(a: Any, env: Envelope, label: str, color: str, *, hv: bool = False, **kw: Any) -> None:
    if env.decimated:
        t = _dt(env.t_ns)
        a.fill_between(t, env.lo, env.hi, step="post", color=color, alpha=BAND_ALPHA, lw=0)
        for edge in (env.lo, env.hi):  # one-sample spikes narrower than a pixel stay visible
            a.step(t, edge, where="post", color=color, alpha=EDGE_ALPHA, lw=0.6)
    if hv:
        a.step(_dt(env.t_last_ns), env.last, where="post", color=color, label=label, **kw)
    else:
        a.plot(_dt(env.t_last_ns), env.last, color=color, label=label, **kw)


def _png(res: BacktestResult, path: Path, inputs: Sequence[Path | str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    smp = res.samples
    envs = _envelopes(smp)
    w = smp[_busiest_window(smp, res.fills, PNG_WINDOW)]
    f, nf = _window_fills(res, w)
    titles = _titles(res, envs, w, nf, int(f.shape[0]))
    fig, ax = plt.subplots(4, 1, figsize=(13, 15), gridspec_kw=dict(height_ratios=[3, 2, 3, 2]))
    try:
        a = ax[0]
        _mpl_series(a, envs["pnl"], "net PnL", "#1f77b4")
        _mpl_series(a, envs["gross"], "gross PnL", "#2ca02c", ls=":")
        a.set_ylabel(res.summary["currency"])
        a2 = a.twinx()
        _mpl_series(a2, envs["mid"], "mid", "#999999", lw=0.7)
        a2.set_ylabel("mid")
        a.legend(loc="upper left")
        a.set_title(titles[0], fontsize=9)
        _mpl_series(ax[1], envs["pos"], "position", "#9467bd", hv=True)
        ax[1].set_title(titles[1], fontsize=9)
        if w.size:
            for x in (ax[0], ax[1]):
                x.axvspan(_dt(w["ts"][:1])[0], _dt(w["ts"][-1:])[0], color="#ffd54f", alpha=0.3, lw=0)
        tw = _dt(w["ts"])
        a = ax[2]
        a.step(tw, w["bid"], where="post", color="#aec7e8", label="market bid")
        a.step(tw, w["ask"], where="post", color="#ffbb78", label="market ask")
        a.step(tw, w["our_bid"], where="post", color="#1f77b4", label="our bid")
        a.step(tw, w["our_ask"], where="post", color="#d62728", label="our ask")
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
        a.set_title(titles[2], fontsize=9)
        xs, ys = _markout_curve(res)
        ax[3].plot(xs, ys, marker="o", color="#333")
        ax[3].axhline(0.0, color="#bbb", lw=0.8)
        ax[3].set_xlabel("time after fill")
        ax[3].set_ylabel("bp")
        ax[3].set_title(titles[3], fontsize=9)
        fig.suptitle(_title(res, "\n"), fontsize=10)
        fig.tight_layout(rect=(0.0, 0.0, 1.0, 0.975))
        with atomic_output(path, FLAG, inputs) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
