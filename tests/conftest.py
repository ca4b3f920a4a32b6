from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import REPO, SHARED_DATA


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (the real samples); the test is skipped without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def avmm_cmd() -> list[str]:
    """The CLI as a user runs it (same interpreter as the tests)."""
    return [sys.executable, "-m", "avmm"]


@pytest.fixture
def run_cli():
    """Run ``avmm ARGS...`` in a subprocess: the CompletedProcess (text stdout / stderr)."""

    def run(*args: str, check: bool = False, timeout: float = 300):
        env = dict(os.environ)
        env.setdefault("AVMM_CACHE", str(REPO / ".cache-test"))
        return subprocess.run(
            avmm_cmd() + list(map(str, args)),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            env=env,
        )

    return run


@pytest.fixture
def run_main(monkeypatch, capsys):
    """Run ``avmm ARGS...`` in this process through the console entry point ``avmm.cli.main``:
    ``(exit code, stdout, stderr)``."""
    from avmm.cli import main

    def run(*args) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["avmm", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as e:
            code = e.code or 0
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def archive_server():
    """A local Binance-style archive server (``tests.archive_server.ArchiveServer``)."""
    from tests.archive_server import ArchiveServer

    s = ArchiveServer()
    yield s
    s.close()
