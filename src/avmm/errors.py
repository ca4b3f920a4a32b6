"""User-facing errors: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

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


_UNION_TAGS = {"float", "int", "str", "bool", "list[float]", "none"}


def _loc(err: dict[str, Any]) -> str:
    """The dotted key of an error, without pydantic's union-member and validator tags."""
    parts = [str(x) for x in err["loc"]]
    parts = [x for x in parts if x not in _UNION_TAGS and not x.startswith(("function-", "literal["))]
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
        return f"{loc} = {inp!r}: {msg}{more}"
    return f"{loc}: {msg}{more}"
