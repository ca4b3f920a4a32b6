"""numba's cache is keyed by the whole package's source (see ``avmm/__init__.py``): an edit to
any module gives a fresh cache, so no compiled loop keeps inlined code of an older version."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import avmm


def _cache_dir(env_extra: dict) -> str:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(env_extra)
    code = "import avmm, os, numba; print(os.environ['NUMBA_CACHE_DIR']); print(numba.config.CACHE_DIR)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    a, b = out.stdout.split()
    assert a == b  # numba itself uses it
    return a


def test_cache_dir_is_keyed_by_all_sources(tmp_path):
    pkg = Path(avmm.__file__).resolve().parent
    h = hashlib.sha1(avmm.__version__.encode())
    for f in sorted(pkg.rglob("*.py")):
        h.update(str(f.relative_to(pkg)).encode())
        h.update(f.read_bytes())
    d = _cache_dir({"AVMM_NUMBA_CACHE": str(tmp_path)})
    assert Path(d) == tmp_path / h.hexdigest()[:16]
    assert Path(d).is_dir()


def test_explicit_numba_cache_dir_wins(tmp_path):
    d = _cache_dir({"NUMBA_CACHE_DIR": str(tmp_path / "mine")})
    assert d == str(tmp_path / "mine")


def test_editing_any_module_changes_the_cache(tmp_path):
    import shutil

    pkg = Path(avmm.__file__).resolve().parent
    copy = tmp_path / "src" / "avmm"
    shutil.copytree(pkg, copy, ignore=shutil.ignore_patterns("__pycache__"))
    env = {"AVMM_NUMBA_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(copy.parent)}
    before = _cache_dir(env)
    assert before == _cache_dir(env)  # stable while nothing changes
    with open(copy / "backtest" / "exchange.py", "a") as fh:
        fh.write("\n# an edit\n")
    after = _cache_dir(env)
    assert after != before and Path(after).parent == Path(before).parent
