"""Fault knobs of the emulator: ``NAME[:ARG][@SECONDS]``, given at start (``--fault``) or at run
time (``POST /_avmm/fault``, ``Emulator.fault``).

========== ========== =====================================================================
name       argument   what a client sees
========== ========== =====================================================================
drop       N (1)      the next N depth diffs are not sent (every depth stream): a U/u/pu gap
reorder               the next depth diff is held and sent after the one that follows it
stall      S (until   no market data on any stream socket for S seconds (the sockets stay
           the end)   open and answer pings; the replay goes on, what is not sent is lost)
close                 every stream socket is closed (close frame 1000)
shutdown              ``{"e":"serverShutdown","E":..}`` on every stream socket, then close
skew       MS         the venue clock (every E / T, ``time``, ``serverTime``) moves by MS ms
lifetime   S          a stream connection is closed S seconds after it opened (Binance: 24 h)
========== ========== =====================================================================

``@SECONDS`` fires the fault that many seconds of venue time (the capture's clock) after the replay
started (default: at once, or at the start of the replay for a fault given at start; a time past
the end of the store never fires). The durations of ``stall`` and ``lifetime`` are wall seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from avmm.errors import UserError

# name -> (argument kind, default argument, help)
FAULTS: dict[str, tuple[str, float | None, str]] = {
    "drop": ("count", 1, "drop the next N depth diffs (default 1)"),
    "reorder": ("none", None, "swap the next two depth diffs"),
    "stall": ("seconds", None, "send no market data for S seconds (default: until the end), sockets open"),
    "close": ("none", None, "close every stream socket"),
    "shutdown": ("none", None, "send serverShutdown on every stream socket, then close it"),
    "skew": ("ms", None, "move the venue clock by MS milliseconds (may be negative)"),
    "lifetime": ("seconds", None, "close stream connections S seconds after they opened"),
}

FAULT_HELP = "; ".join(f"{k}{'' if v[0] == 'none' else ':' + v[0].upper()} ({v[2]})" for k, v in FAULTS.items())


@dataclass(frozen=True)
class Fault:
    """One parsed fault: ``name``, its argument (None: the default) and when it fires (seconds of
    venue time after the replay started; None: at once)."""

    name: str
    arg: float | None = None
    at_s: float | None = None

    def spec(self) -> str:
        a = "" if self.arg is None else f":{self.arg:g}"
        t = "" if self.at_s is None else f"@{self.at_s:g}"
        return f"{self.name}{a}{t}"


def _number(text: str, spec: str, what: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise UserError(f"--fault {spec}: {what} {text!r} is not a number") from None
    if not math.isfinite(v):
        raise UserError(f"--fault {spec}: {what} {text!r} is not a finite number")
    return v


def parse_fault(spec: str) -> Fault:
    """Parse ``NAME[:ARG][@SECONDS]``.

    Raises
    ------
    UserError
        An unknown name, a missing, extra or bad argument, a bad time: one line naming the fault.
    """
    s = str(spec).strip()
    rest, at_s = s, None
    if "@" in s:
        rest, _, at_text = s.partition("@")
        at_s = _number(at_text, s, "time")
        if at_s < 0:
            raise UserError(f"--fault {s}: time {at_text!r} must not be negative")
    name, sep, arg_text = rest.partition(":")
    name = name.strip().lower()
    if name not in FAULTS:
        raise UserError(f"--fault {s}: unknown fault {name!r} (known: {', '.join(FAULTS)})")
    kind, default, _ = FAULTS[name]
    if kind == "none":
        if sep:
            raise UserError(f"--fault {s}: {name} takes no argument")
        return Fault(name, None, at_s)
    if not sep:
        if kind == "ms" or name == "lifetime":
            raise UserError(f"--fault {s}: {name} needs an argument ({name}:{kind.upper()})")
        return Fault(name, default, at_s)
    arg = _number(arg_text, s, "argument")
    if kind == "count" and (arg < 1 or arg != int(arg)):
        raise UserError(f"--fault {s}: {name} takes a whole number of diffs >= 1")
    if kind == "seconds" and arg <= 0:
        raise UserError(f"--fault {s}: {name} takes a positive number of seconds")
    return Fault(name, arg, at_s)
