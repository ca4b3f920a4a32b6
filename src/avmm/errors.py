"""User-facing errors: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

import os
from typing import Any


class UserError(Exception):
    """Bad input from the user (file, config value, argument). Printed as one line, exit code 2."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # one line, always
        return " ".join(self.message.split("\n"))


def missing_extra(what: str, extra: str, module: str) -> UserError:
    """The error for an optional dependency that is not installed: one line naming the install.

    Parameters
    ----------
    what : str
        The feature that needs it, e.g. ``"--report"``.
    extra : str
        The avmm extra that brings it, e.g. ``"report"``.
    module : str
        The missing module, e.g. ``"plotly"``.
    """
    return UserError(f"{what} needs {module}, which is not installed: pip install 'avmm[{extra}]'")


def size_text(n: float) -> str:
    """Bytes as a short figure for messages: ``149 GiB``, ``1.5 MiB``, ``512 bytes``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if unit == "PiB" and n >= 1e5:
            return f"{n:.2g} PiB"
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" or n >= 10 else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def machine_memory() -> int | None:
    """The memory this process can have: the machine's physical memory, or the cgroup's limit
    (a container) if lower; None if neither is known."""
    try:
        total: int | None = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        total = None
    for f in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(f) as fh:
                limit = int(fh.read().strip())
        except (OSError, ValueError):
            continue
        if 0 < limit < (total or limit + 1):
            total = limit
    return total


def require_memory(need_bytes: float, what: str, fix: str = "lower it") -> None:
    """Raise a one-line ``UserError`` before allocating if ``need_bytes`` exceeds the machine's memory.

    Parameters
    ----------
    need_bytes : float
        What the run would allocate (its largest arrays at once).
    what : str
        The option that sets the size, as the user gave it, e.g. ``"--paths 100000000"``.
    fix : str
        What to do about it, e.g. ``"lower it"``.

    Raises
    ------
    UserError
        ``needs 149 GiB for --paths 100000000 (this machine has 23 GiB); lower it``.
    """
    have = machine_memory()
    if have is not None and need_bytes > have:
        raise UserError(f"needs {size_text(need_bytes)} for {what} (this machine has {size_text(have)}); {fix}")


_UNION_TAGS = {"float", "int", "str", "bool", "list[float]", "none"}


def _loc(err: dict[str, Any]) -> str:
    """The dotted key of an error, without pydantic's union-member and validator tags."""
    parts = [str(x) for x in err["loc"]]
    parts = [x for x in parts if x not in _UNION_TAGS and not x.startswith(("function-", "literal[", "constrained-"))]
    return ".".join(parts)


def describe_validation(errors: list[dict[str, Any]]) -> str:
    """One line for the first bad key of a pydantic ``ValidationError.errors()`` list; a union's
    alternatives are joined with 'or'."""
    loc = _loc(errors[0])
    same = [e for e in errors if _loc(e) == loc]
    msgs = list(dict.fromkeys(e["msg"].removeprefix("Value error, ") for e in same))
    msg = " or ".join(msgs)
    others = len({_loc(e) for e in errors}) - 1
    more = f" (and {others} more)" if others else ""
    inp = errors[0].get("input")
    if inp is not None and not isinstance(inp, dict):
        return f"{loc} = {_short(inp)}: {msg}{more}"
    return f"{loc}: {msg}{more}"


def _short(value: Any, limit: int = 40) -> str:
    """``repr(value)``, cut in the middle when longer than ``limit`` (a 400-digit number, a long string)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit // 2]}...{text[-8:]} ({len(text)} characters)"
