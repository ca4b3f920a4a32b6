from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def avmm_cmd() -> list[str]:
    """The CLI as a user runs it (same interpreter as the tests)."""
    return [sys.executable, "-m", "avmm"]


@pytest.fixture
def run_cli():
    import subprocess

    def run(*args: str, check: bool = False, timeout: float = 300):
        env = dict(os.environ)
        env.setdefault("AVMM_CACHE", str(REPO / ".cache-test"))
        return subprocess.run(
            avmm_cmd() + list(args), capture_output=True, text=True, timeout=timeout, check=check, env=env
        )

    return run
