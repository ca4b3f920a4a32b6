"""Fault knobs of the emulator: ``NAME[:ARG][@SECONDS][/PATHS]``, given at start (``--fault``) or at
run time (``POST /_avmm/fault``, ``Emulator.fault``).

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
msgrate    N          a connection sending more than N messages in a second (requests, pings,
                      pongs) is closed with 1008 "Too many requests"; 0: no limit (default:
                      Binance's 5 on spot, 10 on USD-M)
maxstreams N          a SUBSCRIBE past N streams on one connection is refused (code 4) and the
                      connection closed with 1008; 0: no limit (default: Binance's 1024)
weightlimit N         the request weight a minute (REST and WebSocket API); 0: no limit
                      (default: Binance's 6000 on spot, 2400 on USD-M)
orderlimit N          the orders an account may place in 10 s; 0: no limit (default: 50 / 300)
ratelimit  N (1)      the next N requests are answered 429 (-1003, ``retryAfter``)
ackdelay   MS         the answers to order requests leave MS ms late (the order is matched at
                      once; its user-data events are not delayed); 0: none
fillfirst  N (1)      the answers to the next N placed orders wait for the order's first fill
                      (or its end): the fill reaches the client before the ack
partial    N          every fill is reported as N executions (trade ids of their own); 1: off
exectimeout N (1)     the next N order requests are matched, then answered -1007 (408)
noanswer   N (1)      the next N order requests are matched and never answered (REST: the
                      connection is dropped)
keyexpired            every listenKey expires: ``listenKeyExpired`` on its streams, then silence
terminated            ``eventStreamTerminated`` on every WebSocket API user-data subscription;
                      the subscriptions end
foreign    N (1)      N open orders appear on each account's book, placed by nobody it knows
                      (at once, or at the first quote when there is no book yet)
========== ========== =====================================================================

``@SECONDS`` fires the fault that many seconds of venue time (the capture's clock) after the replay
started (default: at once, or at the start of the replay for a fault given at start; a time past
the end of the store never fires; ``msgrate`` and ``maxstreams`` given at start without a time hold
from the first connection). The durations of ``stall`` and ``lifetime`` are wall seconds.
``/PATHS`` limits ``stall``, ``close``, ``shutdown`` and ``lifetime`` to the sockets on those paths:
``public`` (``/public/ws``, ``/public/stream``), ``market`` (``/market/...``) or ``legacy`` (``/ws``,
``/stream``), e.g. ``close@2/public``; ``close`` also takes ``api`` (the WebSocket API connections)
and ``user`` (the listenKey user streams). ``close`` without paths closes every socket. The faults
from ``ackdelay`` down act on the private side (``avmm emulate --keys``).
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
    "msgrate": ("limit", None, "close a connection sending more than N messages a second (0: no limit)"),
    "maxstreams": ("limit", None, "refuse more than N streams on a connection (0: no limit)"),
    "weightlimit": ("limit", None, "request weight a minute (0: no limit)"),
    "orderlimit": ("limit", None, "orders per 10 s per account (0: no limit)"),
    "ratelimit": ("count", 1, "answer the next N requests 429 (-1003)"),
    "ackdelay": ("delay", None, "answer order requests MS ms late (0: at once)"),
    "fillfirst": ("count", 1, "the next N placed orders are answered after their first fill"),
    "partial": ("parts", None, "report every fill as N executions (1: off)"),
    "exectimeout": ("count", 1, "match the next N order requests, answer -1007"),
    "noanswer": ("count", 1, "match the next N order requests, never answer"),
    "keyexpired": ("none", None, "expire every listenKey (listenKeyExpired)"),
    "terminated": ("none", None, "end every WebSocket API user-data subscription (eventStreamTerminated)"),
    "foreign": ("count", 1, "N open orders on each account that its client did not place"),
}
SCOPED = ("stall", "close", "shutdown", "lifetime")  # the faults that take /PATHS
SCOPES = ("public", "market", "legacy", "api", "user")
PRIVATE_SCOPES = ("api", "user")  # ``close`` only
# limits and knobs: given at start without a time, they hold at once (not at the replay's start)
KNOBS: tuple[str, ...] = ("msgrate", "maxstreams", "weightlimit", "orderlimit", "ratelimit", "ackdelay")
KNOBS += ("fillfirst", "partial", "exectimeout", "noanswer", "foreign")
LIMITS = ("weightlimit", "orderlimit", "ratelimit")  # the emulator's rate limits (keys or not)
# the faults of the private side: they need keys (``avmm emulate --keys``)
PRIVATE = ("ackdelay", "fillfirst", "partial", "exectimeout", "noanswer", "keyexpired", "terminated", "foreign")

FAULT_HELP = "; ".join(f"{k}{'' if v[0] == 'none' else ':' + v[0].upper()} ({v[2]})" for k, v in FAULTS.items())


@dataclass(frozen=True)
class Fault:
    """One parsed fault: ``name``, its argument (None: the default), when it fires (seconds of
    venue time after the replay started; None: at once) and the socket paths it acts on (None:
    every socket)."""

    name: str
    arg: float | None = None
    at_s: float | None = None
    scope: str | None = None

    def spec(self) -> str:
        a = "" if self.arg is None else f":{self.arg:g}"
        t = "" if self.at_s is None else f"@{self.at_s:g}"
        p = "" if self.scope is None else f"/{self.scope}"
        return f"{self.name}{a}{t}{p}"


def _number(text: str, spec: str, what: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise UserError(f"--fault {spec}: {what} {text!r} is not a number") from None
    if not math.isfinite(v):
        raise UserError(f"--fault {spec}: {what} {text!r} is not a finite number")
    return v


def _split(s: str) -> tuple[str, float | None, str | None]:
    """``NAME[:ARG]``, the time and the paths of a spec."""
    rest, scope = s, None
    if "/" in rest:
        rest, _, scope = rest.partition("/")
        scope = scope.strip().lower()
        if scope not in SCOPES:
            raise UserError(f"--fault {s}: unknown paths {scope!r} (use {', '.join(SCOPES)})")
    at_s = None
    if "@" in rest:
        rest, _, at_text = rest.partition("@")
        at_s = _number(at_text, s, "time")
        if at_s < 0:
            raise UserError(f"--fault {s}: time {at_text!r} must not be negative")
    return rest, at_s, scope


def _argument(s: str, name: str, kind: str, text: str) -> float:
    arg = _number(text, s, "argument")
    if kind == "count" and (arg < 1 or arg != int(arg)):
        what = "diffs" if name == "drop" else "orders" if name == "foreign" else "requests"
        raise UserError(f"--fault {s}: {name} takes a whole number of {what} >= 1")
    if kind == "limit" and (arg < 0 or arg != int(arg)):
        raise UserError(f"--fault {s}: {name} takes a whole number >= 0 (0: no limit)")
    if kind == "seconds" and arg <= 0:
        raise UserError(f"--fault {s}: {name} takes a positive number of seconds")
    if kind == "delay" and arg < 0:
        raise UserError(f"--fault {s}: {name} takes a number of milliseconds >= 0")
    if kind == "parts" and (arg < 1 or arg != int(arg)):
        raise UserError(f"--fault {s}: {name} takes a whole number of parts >= 1")
    return arg


def parse_fault(spec: str) -> Fault:
    """Parse ``NAME[:ARG][@SECONDS][/PATHS]``.

    Raises
    ------
    UserError
        An unknown name, a missing, extra or bad argument, a bad time or paths: one line naming
        the fault.
    """
    s = str(spec).strip()
    rest, at_s, scope = _split(s)
    name, sep, arg_text = rest.partition(":")
    name = name.strip().lower()
    if name not in FAULTS:
        raise UserError(f"--fault {s}: unknown fault {name!r} (known: {', '.join(FAULTS)})")
    if scope is not None and name not in SCOPED:
        raise UserError(f"--fault {s}: {name} acts on every socket (paths: {', '.join(SCOPED)} only)")
    if scope in PRIVATE_SCOPES and name != "close":
        raise UserError(f"--fault {s}: /{scope} is for close only")
    kind, default, _ = FAULTS[name]
    if kind == "none":
        if sep:
            raise UserError(f"--fault {s}: {name} takes no argument")
        return Fault(name, None, at_s, scope)
    if not sep:
        if kind in ("ms", "limit", "delay", "parts") or name == "lifetime":
            what = "N" if kind in ("limit", "parts") else "MS" if kind == "delay" else kind.upper()
            raise UserError(f"--fault {s}: {name} needs an argument ({name}:{what})")
        return Fault(name, default, at_s, scope)
    return Fault(name, _argument(s, name, kind, arg_text), at_s, scope)
