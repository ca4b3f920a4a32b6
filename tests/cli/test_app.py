"""The `avmm` application: a usage error (unknown command or option, a bad value) is one line on
stderr and exit code 2."""

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "args, needle",
    [
        (["quote", "--mid", "x", "--gamma", "1", "--sigma", "1", "--k", "1"], "--mid"),
        (["nosuch"], "nosuch"),
        (["quote", "--bogus", "1"], "--bogus"),
    ],
)
def test_usage_errors_are_one_line_exit_2(run_cli, args, needle):
    r = run_cli(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr


# --- stderr is ours: library warnings, log records and tracebacks only with --verbose / AVMM_DEBUG --

NOISY = """
import logging
import sys
import warnings

import numpy as np

import avmm.core.quote as q

real = q.one_quote
FAIL = "--fail" in sys.argv


def noisy(*a, **k):
    np.log(np.zeros(1))  # numpy: RuntimeWarning with a source path
    warnings.warn("a library warning", UserWarning)
    logging.getLogger("somelib").warning("a library log record")
    if FAIL:
        raise RuntimeError("boom")
    return real(*a, **k)


q.one_quote = noisy
argv = [x for x in sys.argv[1:] if x != "--fail"]
sys.argv = ["avmm", *argv]
from avmm.cli import main

main()
"""
QUOTE = ["quote", "--mid", "100", "--gamma", "0.1", "--sigma", "1", "--k", "1"]


def _noisy(tmp_path, *args, debug=False):
    env = {k: v for k, v in os.environ.items() if k != "AVMM_DEBUG"}
    if debug:
        env["AVMM_DEBUG"] = "1"
    return subprocess.run(
        [sys.executable, "-c", NOISY, *args], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
    )


def test_library_noise_is_silenced(tmp_path):
    r = _noisy(tmp_path, *QUOTE)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert json.loads(r.stdout)["mid"] == 100.0


def test_internal_error_is_one_line(tmp_path):
    r = _noisy(tmp_path, *QUOTE, "--fail")
    assert r.returncode == 1
    assert r.stderr == "avmm: internal error: RuntimeError: boom (set AVMM_DEBUG=1 for the traceback)\n"


@pytest.mark.parametrize("how", ["--verbose", "-v", "AVMM_DEBUG=1"])
def test_verbose_shows_warnings_logs_and_the_traceback(tmp_path, how):
    args = [*QUOTE, "--fail"] if how.startswith("AVMM") else [how, *QUOTE, "--fail"]
    r = _noisy(tmp_path, *args, debug=how.startswith("AVMM"))
    assert r.returncode == 1
    err = r.stderr
    assert "Traceback (most recent call last)" in err and err.rstrip().endswith("RuntimeError: boom")
    assert "RuntimeWarning" in err and "a library warning" in err and "a library log record" in err


def test_version(run_cli):
    from avmm._version import __version__

    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout == f"avmm {__version__}\n" and r.stderr == ""


def test_the_cli_needs_no_undeclared_library():
    """click is not an avmm dependency (typer vendors its own; only the dev tools bring it): every
    command module imports and runs without it."""
    import subprocess
    import sys

    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'click':\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "sys.argv = ['avmm', 'backtest', 'missing.parquet', '--from', 'soon']\n"
        "from avmm.cli import main\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "avmm: error:" in lines[0] and "Error" not in lines[0], r.stderr
