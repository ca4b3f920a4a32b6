"""``--plot``: the fitted lambda(delta) against the empirical rates per side, and sigma over time.

``.png`` through matplotlib, ``.html`` through plotly (self-contained: plotly.js inlined, so the
file opens offline on its own); both are the optional extra ``avmm[report]``, checked before the
calibration runs (``require``). Written through ``avmm.outputs.atomic_output``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avmm.errors import UserError, missing_extra
from avmm.outputs import atomic_output

if TYPE_CHECKING:
    from avmm.calibrate.run import Calibration

FLAG = "--plot"
SUFFIXES = (".png", ".html", ".htm")
COLORS = {"bid": "#1f77b4", "ask": "#d62728", "pooled": "#444444"}


def require(path: Path) -> None:
    """One line unless ``path`` is a .png / .html file whose library is installed."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"--plot {path}: expected a .png (matplotlib) or .html (plotly) file")
    module = "matplotlib" if suffix == ".png" else "plotly"
    try:
        importlib.import_module(module)
    except ImportError:
        raise missing_extra("avmm calibrate --plot", "report", module) from None


def _series(cal: Calibration) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Per side: depth, empirical and fitted rates; sigma windows: mid times (s from start) and sigma."""
    x = cal.bins.x
    sides = {name: (x, f.rates, f.fitted, f) for name, f in cal.fits.items() if name != "pooled"}
    w = [s for s in cal.sigma_windows if s["sigma"] is not None]
    t = np.array([(s["start_ns"] + s["end_ns"]) / 2 for s in w], dtype=np.float64)
    sig = np.array([s["sigma"] for s in w], dtype=np.float64)
    return sides, t, sig


def write_plot(cal: Calibration, path: Path | str, inputs: Sequence[Path | str] = ()) -> Path:
    """Draw the charts of ``cal`` into ``path`` (.png or .html)."""
    path = Path(path)
    require(path)
    if path.suffix.lower() == ".png":
        _png(cal, path, inputs)
    else:
        _html(cal, path, inputs)
    return path


def _png(cal: Calibration, path: Path, inputs: Sequence[Path | str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sides, t, sig = _series(cal)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, (x, emp, fit, f) in sides.items():
        ok = emp > 0
        a1.semilogy(x[ok] / cal.tick, emp[ok], "o", color=COLORS[name], label=f"{name}: trades reaching >= depth")
        a1.semilogy(x / cal.tick, fit, "-", color=COLORS[name], label=f"{name}: A={f.A:.4g} /s, k={f.k:.4g} /price")
    a1.set_xlabel("depth from the mid (reach), ticks")
    a1.set_ylabel("trades per second")
    a1.set_title("intensity lambda(delta) = A exp(-k delta)")
    a1.legend(fontsize=8)
    t0 = float(cal.start_ns)
    a2.plot((t - t0) / 6e10, sig, "o-", color=COLORS["pooled"])
    a2.axhline(cal.sigma.value, color="k", ls="--", lw=1, label=f"whole session {cal.sigma.value:.4g}")
    if cal.sigma.ci:
        a2.axhspan(cal.sigma.ci[0], cal.sigma.ci[1], color="k", alpha=0.1, label="95 % bootstrap interval")
    a2.set_xlabel("minutes from the start")
    a2.set_ylabel("sigma, price / sqrt(s)")
    a2.set_title("sigma per window")
    a2.legend(fontsize=8)
    fig.tight_layout()
    with atomic_output(path, FLAG, inputs) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _html(cal: Calibration, path: Path, inputs: Sequence[Path | str]) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    sides, t, sig = _series(cal)
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("intensity lambda(delta) = A exp(-k delta)", "sigma per window")
    )
    for name, (x, emp, fit, f) in sides.items():
        ok = emp > 0
        fig.add_trace(
            go.Scatter(x=x[ok] / cal.tick, y=emp[ok], mode="markers", name=f"{name}: empirical",
                       marker=dict(color=COLORS[name])),
            row=1, col=1,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(x=x / cal.tick, y=fit, mode="lines", name=f"{name}: A={f.A:.4g} /s, k={f.k:.4g} /price",
                       line=dict(color=COLORS[name])),
            row=1, col=1,
        )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=(t - cal.start_ns) / 6e10, y=sig, mode="lines+markers", name="sigma per window",
                   line=dict(color=COLORS["pooled"])),
        row=1, col=2,
    )  # fmt: skip
    fig.update_yaxes(type="log", title_text="trades per second", row=1, col=1)
    fig.update_xaxes(title_text="depth from the mid (reach), ticks", row=1, col=1)
    fig.update_xaxes(title_text="minutes from the start", row=1, col=2)
    fig.update_yaxes(title_text="sigma, price / sqrt(s)", row=1, col=2)
    html = fig.to_html(include_plotlyjs=True, full_html=True)
    with atomic_output(path, FLAG, inputs) as tmp:
        tmp.write_text(html, encoding="utf-8")
