"""``avmm sweep --report FILE.html``: the metric over two swept keys (a heatmap; a scatter coloured
by the metric for random or Optuna points), and net PnL against inventory risk (the
time-weighted inventory std) with the Pareto front (plotly; ``plotly-<version>.min.js`` beside the
report, as ``avmm backtest --report`` writes it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avmm.errors import UserError, missing_extra
from avmm.outputs import atomic_output
from avmm.sweep.select import metric_value, pareto_front

FLAG = "--report"


def require_plotly(path: Path) -> None:
    if path.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--report {path}: expected a .html file")
    try:
        import plotly  # noqa: F401
    except ImportError:
        raise missing_extra("avmm sweep --report", "report", "plotly") from None


def _heatmap(recs: list[dict[str, Any]], keys: list[str], metric: str) -> Any:
    import plotly.graph_objects as go

    title = f"{metric} over {', '.join(keys[:2]) or 'the points'}"
    if len(keys) < 2:
        x = [r["keys"].get(keys[0]) if keys else i for i, r in enumerate(recs)]
        y = [metric_value(r, metric) for r in recs]
        fig = go.Figure(go.Bar(x=[str(v) for v in x], y=y))
        fig.update_layout(title=title, xaxis_title=keys[0] if keys else "point", yaxis_title=metric)
        return fig
    kx, ky = keys[0], keys[1]
    xs = sorted({r["keys"][kx] for r in recs}, key=_order)
    ys = sorted({r["keys"][ky] for r in recs}, key=_order)
    if len(xs) * len(ys) > 4 * max(1, len(recs)):  # continuous draws: a scatter, not a sparse grid
        fig = go.Figure(
            go.Scatter(
                x=[r["keys"][kx] for r in recs],
                y=[r["keys"][ky] for r in recs],
                mode="markers",
                marker=dict(color=[metric_value(r, metric) for r in recs], colorscale="Viridis", showscale=True),
            )
        )
    else:
        z: list[list[float | None]] = [[None] * len(xs) for _ in ys]
        for r in recs:  # several points on one cell (other keys swept too): the best shown
            i, j = ys.index(r["keys"][ky]), xs.index(r["keys"][kx])
            v = metric_value(r, metric)
            if v is not None and (z[i][j] is None or v > z[i][j]):  # type: ignore[operator]
                z[i][j] = v
        fig = go.Figure(go.Heatmap(x=[str(v) for v in xs], y=[str(v) for v in ys], z=z, colorscale="Viridis"))
    fig.update_layout(title=title, xaxis_title=kx, yaxis_title=ky)
    return fig


def _order(v: Any) -> tuple[int, Any]:
    return (0, v) if isinstance(v, int | float) and not isinstance(v, bool) else (1, str(v))


def _pareto(recs: list[dict[str, Any]]) -> Any:
    import plotly.graph_objects as go

    pts, labels = [], []
    for r in recs:
        risk, pnl = metric_value(r, "inventory_std"), metric_value(r, "pnl_net")
        if risk is not None and pnl is not None:
            pts.append((risk, pnl))
            labels.append(", ".join(f"{k}={v}" for k, v in r["keys"].items()))
    front = pareto_front(pts)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="markers", name="points", text=labels))
    fig.add_trace(
        go.Scatter(
            x=[pts[i][0] for i in front],
            y=[pts[i][1] for i in front],
            mode="lines+markers",
            name="Pareto front",
            text=[labels[i] for i in front],
        )
    )
    fig.update_layout(
        title="net PnL against inventory risk", xaxis_title="inventory std (time-weighted)", yaxis_title="net PnL"
    )
    return fig


def write_report(doc: dict[str, Any], path: Path, inputs: Sequence[Path | str] = ()) -> Path:
    """The report of a sweep's JSON document ``doc`` (the points, or the last fold's training
    points)."""
    from plotly.offline import get_plotlyjs_version

    from avmm.backtest.report import _write_plotlyjs

    recs = doc.get("points") or (doc["selection"][-1]["train"] if doc.get("selection") else [])
    keys = list(doc["space"]["grid"]) + list(doc["space"]["ranges"])
    js_name = f"plotly-{get_plotlyjs_version()}.min.js"
    parts = [
        _heatmap(recs, keys, doc["metric"]).to_html(full_html=False, include_plotlyjs=False),
        _pareto(recs).to_html(full_html=False, include_plotlyjs=False),
    ]
    html = (
        "<!doctype html><html><head><meta charset='utf-8'><title>avmm sweep</title>"
        f"<script src='{js_name}'></script></head><body>" + "\n".join(parts) + "</body></html>\n"
    )
    _write_plotlyjs(path.parent / js_name, inputs)
    with atomic_output(path, FLAG, inputs) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return path
