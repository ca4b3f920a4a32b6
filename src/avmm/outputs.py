"""Output files written atomically: complete or not at all, never a truncated or clobbered file.

Every file avmm writes goes through ``atomic_output``: the data is written to a hidden temporary
file beside the target (same folder, so the rename is atomic), flushed, and renamed over the target
only when complete. On any failure -- an error, a full disk, Ctrl-C, SIGTERM (the CLI turns it into
an exception, see ``Terminated``) -- the temporary file is removed and the target is untouched.

``check_output`` runs the cheap checks up front, before any work: the target is not a folder, its
folder exists and is writable, and it is not one of the command's inputs; ``check_space`` compares
an estimated size with the free space of the target's file system. ``kept()`` lists the outputs
completed so far, for the line a command prints when it is interrupted.

A target that exists and is not a regular file (``/dev/stdout``, ``/dev/null``, a named pipe) is
written in place: there is nothing to clobber, and renaming over it would replace the device. A
symbolic link is followed: the file it points to is replaced, the link stays.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import glob
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from avmm.errors import UserError, size_text

_LIVE: set[Path] = set()  # temporary files being written (removed at exit if still there)
_DONE: list[Path] = []  # outputs completed in this process


class Terminated(BaseException):
    """SIGTERM (or SIGHUP) received: raised in the main thread so that every ``finally`` and
    ``atomic_output`` cleans up before the process exits with 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_output(path: Path | str, flag: str = "", inputs: Sequence[Path | str] = ()) -> Path:
    """The checks an output path must pass before a command starts its work.

    Parameters
    ----------
    path : Path or str
        The file the command will write.
    flag : str
        How the user named it (``"--json"``, ``"-o"``), for the message.
    inputs : sequence of paths
        The command's input files: writing over one of them is refused.

    Returns
    -------
    Path
        ``path`` as a ``Path``.

    Raises
    ------
    UserError
        One line naming the flag and the path: a folder, a missing or read-only folder, an input.
    """
    p = Path(path)
    name = f"{flag} {p}" if flag else str(p)
    if p.is_dir():
        raise UserError(f"{name}: is a folder; give a file name")
    for src in inputs:
        if _same_file(p, Path(src)):
            raise UserError(f"{name}: is one of the inputs; write to another file")
    if _special(p):
        return p
    parent = _target(p).parent
    if not parent.is_dir():
        raise UserError(f"{name}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{name}: folder {parent} is not writable")
    return p


def _special(p: Path) -> bool:
    """``p`` exists and is not a regular file (a device, a pipe): written in place, never replaced."""
    try:
        return not stat.S_ISREG(os.stat(p).st_mode)
    except OSError:
        return False


def _target(p: Path) -> Path:
    """The file a write to ``p`` replaces: ``p``, or what it points to if it is a symbolic link."""
    if p.is_symlink():
        p = p.resolve()
    return p if str(p.parent) else Path(".") / p


def check_space(path: Path | str, need_bytes: float, flag: str = "", fix: str = "") -> None:
    """``UserError`` if the file system of ``path`` has less free space than ``need_bytes``.

    Parameters
    ----------
    path : Path or str
        The output file (it need not exist; its folder must).
    need_bytes : float
        The estimated size of the output.
    flag : str
        How the user named the output (``"-o out.parquet"``), for the message.
    fix : str
        What to change, e.g. ``"lower --events"``.
    """
    p = Path(path)
    if _special(p):
        return
    folder = _target(p).parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if need_bytes > free:
        name = f"{flag} {p}" if flag else str(p)
        more = f"; {fix}" if fix else ""
        need, have = size_text(need_bytes), size_text(free)
        raise UserError(f"{name}: needs about {need} of disk, {folder} has {have} free{more}")


def _describe(e: OSError) -> str:
    if e.errno == errno.ENOSPC:
        return "no space left on the device"
    if e.errno == errno.EROFS:
        return "read-only file system"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return e.strerror or type(e).__name__


@contextlib.contextmanager
def atomic_output(path: Path | str, flag: str = "", inputs: Sequence[Path | str] = ()) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``path`` when the block completes.

    Parameters
    ----------
    path : Path or str
        The final file.
    flag : str
        How the user named it, for messages.
    inputs : sequence of paths
        Input files ``path`` must not be (checked first, see ``check_output``).

    Returns
    -------
    Iterator of Path
        The temporary file (hidden, beside ``path``; ``path`` itself when it is a device or a
        pipe). The caller writes it (and closes it).

    Raises
    ------
    UserError
        The file cannot be written (a full disk, a read-only file system, ...): one line, and
        nothing is left behind.
    """
    given = check_output(path, flag, inputs)
    if _special(given):
        with _described(given, flag):
            yield given
        _DONE.append(given)
        return
    final = _target(given)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    _LIVE.add(tmp)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, final)
        _DONE.append(given)
    except OSError as e:
        raise _cannot_write(given, flag, e) from None
    finally:
        _LIVE.discard(tmp)
        _unlink(tmp)


def _unlink(tmp: Path) -> None:
    """Remove ``tmp`` and the temp files of a writer that itself writes atomically into ``tmp``
    (``.{tmp.name}.PID.tmp`` beside it, the same convention), whatever point it was stopped at."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        for inner in tmp.parent.glob(f".{glob.escape(tmp.name)}.*.tmp"):
            with contextlib.suppress(OSError):
                inner.unlink()


def _cannot_write(path: Path, flag: str, e: OSError) -> UserError:
    name = f"{flag} {path}" if flag else str(path)
    return UserError(f"{name}: cannot write ({_describe(e)}); nothing was written")


@contextlib.contextmanager
def _described(path: Path, flag: str) -> Iterator[None]:
    """An OSError while writing a device or a pipe in place, as one line."""
    try:
        yield
    except OSError as e:
        raise _cannot_write(path, flag, e) from None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: Path | str, text: str, flag: str = "", inputs: Sequence[Path | str] = ()) -> Path:
    """Write ``text`` to ``path`` atomically (see ``atomic_output``); returns the path."""
    with atomic_output(path, flag, inputs) as tmp:
        tmp.write_text(text)
    return Path(path)


def kept() -> list[Path]:
    """The outputs completed so far in this process, oldest first."""
    return list(_DONE)


def mark_kept(path: Path | str) -> None:
    """Count ``path``, written outside ``atomic_output`` (an append-only partial file), among the
    outputs kept (the interruption line names it)."""
    _DONE.append(Path(path))


def register_temp(path: Path) -> None:
    """Track a temporary file written outside ``atomic_output`` (removed at exit if still there)."""
    _LIVE.add(path)


def release_temp(path: Path) -> None:
    """Stop tracking ``path`` (it was renamed or removed)."""
    _LIVE.discard(path)


@atexit.register
def remove_temps() -> None:
    """Remove the temp files of outputs in progress (at exit, or before exiting without unwinding)."""
    for p in list(_LIVE):
        _unlink(p)
    _LIVE.clear()
