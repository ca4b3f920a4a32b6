"""Calibration: the model's parameters (sigma, A, k) and the market's figures from event stores.

``calibrate(paths, start_ns, end_ns)`` reads the stores once, in bounded chunks, and returns a
``Calibration``: sigma (price / sqrt(s), and per window of the session), the intensity
lambda(delta) = A exp(-k delta) per side and pooled (Poisson maximum likelihood, fit quality, trades
per depth bin), the fill rate a quote at each depth would have had, the spread, touch and trade
size distributions, and block-bootstrap confidence intervals. ``config_file`` turns it into a
commented config whose gamma comes from a risk target; ``plot`` draws the fit and sigma over time.

Modules: ``stores`` (which rows), ``scan`` (the one pass), ``volatility``, ``intensity``, ``book``,
``bootstrap``, ``gamma`` (risk target -> gamma), ``config_file``, ``plot``, ``run`` (``calibrate``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from avmm.calibrate.run import Calibration, calibrate

__all__ = ["Calibration", "calibrate"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from avmm.calibrate import run

        return getattr(run, name)
    raise AttributeError(name)
