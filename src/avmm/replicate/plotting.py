"""matplotlib for the replications' figures: an optional dependency (the ``report`` extra).

Without it, :func:`require_matplotlib` and :func:`pyplot` raise the one-line
:func:`avmm.errors.missing_extra` error naming the install, so a caller can check up front,
before a long computation, that the figure can be drawn.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from avmm.errors import missing_extra

if TYPE_CHECKING:
    from matplotlib.figure import Figure

EXTRA = "report"


def require_matplotlib(what: str) -> None:
    """Raise :class:`~avmm.errors.UserError` unless matplotlib can be imported.

    Parameters
    ----------
    what : str
        The feature that needs it, named in the message, e.g. ``"avmm replicate glft --plot"``.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise missing_extra(what, EXTRA, "matplotlib") from None


def pyplot(what: str) -> ModuleType:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (files only, no display).

    Parameters
    ----------
    what : str
        The feature that needs it, named in the error if matplotlib is missing.

    Returns
    -------
    ModuleType
        The ``matplotlib.pyplot`` module.
    """
    require_matplotlib(what)
    import matplotlib

    matplotlib.use("Agg")
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # matplotlib present but one of its own dependencies missing
        raise missing_extra(what, EXTRA, "matplotlib") from None
    return plt


def save_png(fig: Figure, path: str | Path) -> None:
    """Lay out ``fig``, write it to ``path`` as PNG (110 dpi, whatever the file's suffix: it may
    be the temporary file of ``avmm.outputs.atomic_output``) and close it."""
    import matplotlib.pyplot as plt

    try:
        fig.tight_layout()
        fig.savefig(path, dpi=110, format="png")
    finally:
        plt.close(fig)
