"""numba's on-disk cache, keyed by the whole package's source (run once, on ``import avmm``)."""

from __future__ import annotations

import os as _os

from avmm._version import __version__


def set_cache_dir() -> None:
    """Key numba's on-disk cache by the whole package's source.

    numba invalidates a cached function only when *its own* file changes, but the compiled loops
    inline code from other modules (the backtest loop holds the strategy, the estimators and the
    exchange model): after an edit to ``strategy.py`` the cached loop would still run the old
    strategy. So the cache lives in ``$AVMM_NUMBA_CACHE/<hash of every avmm/*.py>`` (default
    ``~/.cache/avmm/numba``): any source change starts a fresh cache; caches unused for a day are
    pruned, the three newest kept. An explicit ``NUMBA_CACHE_DIR`` wins.
    """
    if _os.environ.get("NUMBA_CACHE_DIR"):
        return
    import hashlib
    import shutil
    from pathlib import Path

    pkg = Path(__file__).resolve().parent
    h = hashlib.sha1(__version__.encode())
    try:
        for f in sorted(pkg.rglob("*.py")):
            h.update(str(f.relative_to(pkg)).encode())
            h.update(f.read_bytes())
        root = Path(_os.environ.get("AVMM_NUMBA_CACHE") or Path.home() / ".cache" / "avmm" / "numba")
        d = root / h.hexdigest()[:16]
        d.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # read-only home or package: numba's default (__pycache__ beside the sources)
    _os.environ["NUMBA_CACHE_DIR"] = str(d)
    import sys
    import time

    if "numba" in sys.modules:  # imported before avmm: its config has read the environment already
        sys.modules["numba"].config.CACHE_DIR = str(d)
    try:
        _os.utime(d)
        old = sorted((p for p in root.iterdir() if p.is_dir() and p != d), key=lambda p: p.stat().st_mtime)
        for p in old[:-2]:
            if time.time() - p.stat().st_mtime > 86400:
                shutil.rmtree(p, ignore_errors=True)
    except OSError:
        pass
