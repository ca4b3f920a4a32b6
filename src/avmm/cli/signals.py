"""SIGINT, SIGTERM and SIGHUP for the command line: the command unwinds and exits 128 + the signal
number with one line on stderr, whatever it was doing when the signal came.

The first signal raises ``Interrupted`` (an ``avmm.outputs.Terminated``) in the main thread: every
``finally`` and every output in progress cleans up on the way to the top, which reports it
(``finish``). A second signal while that runs exits at once (temp files removed).

A signal handler's exception is raised wherever the main thread happens to be, and some code there
swallows anything. Cython's memoryview support registers its classes with
``collections.abc.Sequence`` inside a bare ``except: pass`` while an extension module is imported
(``numpy.random._generator`` is imported on first use). The module's C code runs no bytecode, so a
signal that arrives while it loads is handled at that first Python call, its exception swallowed:
the command ran to the end with exit 0, the Ctrl-C lost. So ``Interrupted`` knows when it dies on the way: freed before
the top took it, it has the signal delivered again (from a helper thread: the main thread runs the
handler at its next bytecode, outside the code that swallowed it), until one gets through -- after
``GIVE_UP`` swallowed ones the process exits at once. An ``Interrupted`` raised inside a finaliser
(reported to ``sys.unraisablehook``, then freed) is delivered again the same way, without the
"Exception ignored" report. One swallowed and kept alive is caught at the top: ``pending`` says a
signal came, and the command's outcome is reported as that interruption.

Once the command's outcome is known (``finish``), a signal exits at once with its code and line:
nothing is left to clean up. A command that ends on its first signal by design (``avmm paper``,
``avmm record``: the signal stops the session cleanly, exit 0) says so with ``stopped``; a later
signal exits at once too.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import sys
from types import FrameType
from typing import Any

from avmm.outputs import Terminated, kept, remove_temps

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GIVE_UP = 50  # swallowed deliveries of one signal before the process exits without unwinding


class _State:
    def __init__(self) -> None:
        self.first: int | None = None  # the first signal's number
        self.owed = False  # its exception was swallowed: the next call of the handler delivers it again
        self.swallowed = 0
        self.serial = 0  # of the live Interrupted; a stale one (an older run, an older delivery) is ignored
        self.landed = False  # the top took it
        self.done = False  # the command's outcome is known


_S = _State()


class Interrupted(Terminated):
    """The exception the signal handler raises; delivered again if it is swallowed on its way up."""

    def __init__(self, signum: int, serial: int = 0) -> None:
        super().__init__(signum)
        self.serial = serial

    def __del__(self) -> None:
        s = _S
        if s.landed or s.done or s.first is None or self.serial != s.serial or s.owed:
            return
        s.owed = True
        s.swallowed += 1
        _redeliver(s.first)


def _redeliver(signum: int) -> None:
    """Run the handler again in the main thread, at its next bytecode once the finaliser has
    returned: ``interrupt_main`` from a helper thread, started without waiting for it (a
    ``threading.Thread`` waits for its start, and the handler would run in that wait, inside the
    finaliser, to be swallowed again)."""
    try:
        _thread.start_new_thread(_thread.interrupt_main, (signal.Signals(signum),))
    except Exception:  # interpreter shutdown: no new thread; nothing is left to unwind
        _exit_now(signum, again=False)


def install() -> None:
    """The handlers for this run of the command line (a fresh state: the tests run it in-process)."""
    global _S
    old = _S
    _S = _State()
    _S.serial = old.serial + 1
    for sig in SIGNALS:
        signal.signal(sig, _handle)
    if not getattr(sys.unraisablehook, "_avmm_signals", False):
        sys.unraisablehook = _quiet_unraisable(sys.unraisablehook)


def installed() -> bool:
    """The handlers are in place (``install`` ran)."""
    return all(signal.getsignal(sig) is _handle for sig in SIGNALS)


def _handle(signum: int, frame: FrameType | None) -> None:
    s = _S
    if s.owed:  # the first signal, delivered again
        s.owed = False
        if s.landed:  # the top counted it already
            return
        if s.swallowed >= GIVE_UP:
            _exit_now(s.first or signum, again=False)
        s.serial += 1
        raise Interrupted(s.first or signum, s.serial)
    if s.done:  # the outcome is known: nothing to unwind
        _exit_now(signum, again=s.first is not None)
    if s.first is None:
        s.first = signum
        raise Interrupted(signum, s.serial)
    _exit_now(signum, again=True)  # a second signal while the first one unwinds


def _quiet_unraisable(prev: Any) -> Any:
    """``sys.unraisablehook`` without the report of an ``Interrupted`` raised inside a finaliser or
    a callback: it is delivered again (``Interrupted.__del__``)."""

    def hook(u: Any) -> None:
        if isinstance(u.exc_value, Interrupted):
            return
        prev(u)

    hook._avmm_signals = True  # type: ignore[attr-defined]
    return hook


def pending() -> int | None:
    """The number of a signal that came and was not taken by the top (its exception swallowed
    and kept alive, or the command finished before it could be delivered again), else None."""
    s = _S
    return s.first if s.first is not None and not s.landed else None


def finish() -> None:
    """The command's outcome is known: from now on a signal exits at once."""
    _S.landed = True
    _S.done = True


def stopped(signum: int) -> None:
    """The command took its first signal itself, as the normal end of an unbounded session (``avmm
    paper``, ``avmm record``: stopped cleanly, exit 0): from now on a signal exits at once."""
    _S.first = signum
    _S.landed = True
    _S.done = True


def line(signum: int) -> str:
    """The line a command interrupted by ``signum`` prints."""
    done = kept()
    what = f"kept {', '.join(str(p) for p in done)}" if done else "no output was written"
    return f"avmm: interrupted by {signal.Signals(signum).name}; {what} (outputs in progress were removed)"


def _exit_now(signum: int, again: bool) -> None:
    """Exit without unwinding: the temp files of outputs in progress removed, what the command
    printed flushed, one line."""
    remove_temps()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe, a write in progress: the line still goes out
            stream.flush()
    if again:
        name = signal.Signals(signum).name
        msg = f"avmm: interrupted again by {name}; exiting now (outputs in progress were removed)"
    else:
        msg = line(signum)
    try:
        os.write(2, (msg + "\n").encode())
    finally:
        os._exit(128 + signum)
