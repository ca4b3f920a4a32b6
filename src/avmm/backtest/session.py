"""The data ``avmm backtest`` runs when given none: the built-in synthetic session.

One function to swap: ``default_session()`` returns the path of the built-in session store
(``avmm.data.synth.default_session_path()``: 1,000,000 events, seed 7, generated once into the
cache directory).
"""

from __future__ import annotations

from pathlib import Path


def default_session() -> Path:
    from avmm.data.synth import default_session_path

    return default_session_path()
