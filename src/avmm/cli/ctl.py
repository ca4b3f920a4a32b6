"""``avmm ctl SOCKET status | pause | resume | set KEY=VALUE | kill [--flatten]``: control a running
session (``avmm paper --ctl SOCKET``) over its Unix socket (``live/control.py``).

``status`` prints the session's status as one JSON line (the keys of ``--status-json``); the others
print one line saying what was done. A refused command (a bad key or value, a key that cannot
change while running), no session at the socket, or a bad argument: one line, exit 2.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from avmm.errors import UserError

COMMANDS = ("status", "pause", "resume", "set", "kill")


def ctl_command(
    socket: Path = typer.Argument(..., help="the session's control socket (avmm paper --ctl SOCKET)"),
    command: str = typer.Argument(..., metavar="<status|pause|resume|set|kill>", help="what to do"),
    arg: str = typer.Argument(None, metavar="[KEY=VALUE]", help="set: the key and its new value, e.g. model.gamma=0.2"),
    flatten: bool = typer.Option(False, "--flatten", help="kill: also close the position (where the core can)"),
    timeout: float = typer.Option(10.0, "--timeout", help="seconds to wait for the answer"),
) -> None:
    """Control a running session: its status, pause / resume quoting, change a strategy parameter
    (validated like the config file; journaled), or the kill switch (cancel all, stop)."""
    from avmm.live.control import request

    if command not in COMMANDS:
        raise UserError(f"ctl {command}: unknown command (use {', '.join(COMMANDS)})")
    if (command == "set") != (arg is not None):
        raise UserError("ctl set needs KEY=VALUE" if command == "set" else f"ctl {command}: takes no argument")
    if flatten and command != "kill":
        raise UserError("--flatten goes with kill")
    if not (math.isfinite(timeout) and timeout > 0):
        raise UserError(f"--timeout {timeout}: must be a positive number of seconds")
    req: dict[str, object] = {"cmd": command}
    if arg is not None:
        req["arg"] = arg
    if flatten:
        req["flatten"] = True
    ans = request(socket, req, timeout)
    if not ans.get("ok"):
        raise UserError(str(ans.get("error", "refused")))
    if command == "status":
        print(json.dumps(ans["status"]))
    elif command in ("pause", "resume"):
        n = ans.get("cancels", 0)
        print("paused" + (f" ({n} orders cancelled)" if n else "") if command == "pause" else "resumed")
    elif command == "set":
        print(f"{ans['key']}: {json.dumps(ans['old'])} -> {json.dumps(ans['new'])}")
    elif ans.get("already"):
        print(f"killed already (by {ans['killed']}); the session is stopping")
    else:
        fl = ans.get("flatten")
        note = "" if fl is None else ("; flattening (stops once flat)" if fl else "; not flattened")
        print(f"killed: {ans.get('cancels', 0)} orders cancelled{note}; the session is stopping")
