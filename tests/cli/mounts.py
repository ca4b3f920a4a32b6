"""Small file systems for output tests: a tmpfs of a few KiB (a full disk) or a read-only one.

Root ignores permission bits, so a read-only folder is a read-only mount; these need the right to
mount (root in a container with CAP_SYS_ADMIN). Where that is refused, the test is skipped and the
same behaviour is covered by an error injected at the writer.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(args: list[str]) -> bool:
    if shutil.which("mount") is None:
        return False
    r = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    return r.returncode == 0


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "64k", files: dict[str, bytes] | None = None, ro: bool = False) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``path`` holding ``files``; read-only after they are written if ``ro``."""
    path.mkdir(parents=True, exist_ok=True)
    if not _mount(["-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(path)]):
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
    try:
        for name, data in (files or {}).items():
            (path / name).write_bytes(data)
        if ro and not _mount(["-o", "remount,ro", str(path)]):
            pytest.skip("cannot remount a tmpfs read-only here")
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def listing(folder: Path) -> list[str]:
    """The names in ``folder``, hidden ones included (a leftover temp file is hidden)."""
    return sorted(p.name for p in folder.iterdir())
