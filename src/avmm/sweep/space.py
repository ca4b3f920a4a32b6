"""The points of a sweep: ``--grid KEY=V1,V2,...`` (a cartesian product), ``--random N`` draws over
``--range KEY=LO:HI`` (deterministic: ``seed``), and the search space ``--optimize`` explores.

Keys are the config file's dotted keys (``quoting.refresh_s``, ``backtest.maker_fee``), checked
against the config's sections; every value (each grid value, both ends of a range) is validated by
the config models applied to the base config, so a bad key or value is one line before any work.
"""

from __future__ import annotations

import copy
import itertools
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from avmm.errors import UserError

Validator = Callable[[dict[str, Any], str], Any]  # (the file's data, where) -> the validated config


def _value(raw: str) -> Any:
    """A value as TOML reads it (``0.5``, ``true``, ``"glft"``); else the bare text."""
    raw = raw.strip()
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _numeric_kind(model: type[BaseModel], path: list[str]) -> str | None:
    """``"int"`` / ``"float"`` for a numeric key (``None`` otherwise)."""
    *sections, key = path
    for section in sections:
        model = model.model_fields[section].annotation  # type: ignore[assignment]
    ann = model.model_fields[key].annotation
    kinds = {ann} if get_origin(ann) is None else set(get_args(ann))
    flat: set[Any] = set()
    for k in kinds:
        flat |= set(get_args(k)) if get_origin(k) is not None else {k}
    if bool in flat:
        return None
    if float in flat:
        return "float"
    if int in flat:
        return "int"
    return None


def _is_section(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel)


def check_key(model: type[BaseModel], key: str, flag: str, text: str) -> list[str]:
    """``section.key`` (or ``section.sub.key``: ``signals.vamp.weight``) -> its path, or one line
    naming the flag and what exists."""
    parts = key.split(".")
    if len(parts) < 2 or not all(parts):
        raise UserError(f"{flag} {text}: the key needs a section, e.g. quoting.refresh_s (got {key!r})")
    node: Any = model
    for depth, name in enumerate(parts):
        fields = node.model_fields
        where = "[" + ".".join(parts[:depth]) + "]"
        if name not in fields:
            if depth == 0:
                raise UserError(f"{flag} {text}: no section [{name}] in the config (sections: {', '.join(fields)})")
            raise UserError(f"{flag} {text}: no key {name!r} in {where}")
        ann = fields[name].annotation
        last = depth == len(parts) - 1
        if last and _is_section(ann):
            raise UserError(f"{flag} {text}: [{'.'.join(parts)}] is a section: name one of its keys")
        if not last and not _is_section(ann):
            raise UserError(f"{flag} {text}: {'.'.join(parts[: depth + 1])} is a key, not a section")
        node = ann
    return parts


def with_keys(base: dict[str, Any], keys: dict[str, Any]) -> dict[str, Any]:
    """The base config's data with the dotted ``keys`` set (``section.key`` or deeper)."""
    data = copy.deepcopy(base)
    for dotted, v in keys.items():
        *sections, name = dotted.split(".")
        node = data
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = v
    return data


def _check_value(validate: Validator, base: dict[str, Any], key: str, v: Any, flag: str, text: str) -> None:
    try:
        validate(with_keys(base, {key: v}), f"{flag} {text}")
    except UserError as e:
        raise UserError(str(e)) from None


@dataclass
class Range:
    key: str
    lo: float
    hi: float
    kind: str  # "int" | "float"
    log: bool = False


@dataclass
class Space:
    """The sweep's search space: grid keys with their values, range keys with their bounds."""

    grid: dict[str, list[Any]] = field(default_factory=dict)
    ranges: dict[str, Range] = field(default_factory=dict)

    def spec(self) -> dict[str, Any]:
        """JSON-ready: what identifies the space (in a partial file's header)."""
        return {
            "grid": self.grid,
            "ranges": {k: [r.lo, r.hi, r.kind, r.log] for k, r in self.ranges.items()},
        }

    def grid_points(self) -> list[dict[str, Any]]:
        keys = list(self.grid)
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(self.grid[k] for k in keys))]

    def random_points(self, n: int, seed: int) -> list[dict[str, Any]]:
        """``n`` draws over the ranges (uniform, or log-uniform with ``:log``), each crossed with
        the grid; the same ``seed`` gives the same points."""
        import numpy as np

        rng = np.random.default_rng(seed)
        out: list[dict[str, Any]] = []
        grid = self.grid_points() if self.grid else [{}]
        for _ in range(n):
            draw: dict[str, Any] = {}
            for k, r in self.ranges.items():
                if r.kind == "int":
                    draw[k] = int(rng.integers(int(r.lo), int(r.hi) + 1))
                elif r.log:
                    draw[k] = float(np.exp(rng.uniform(np.log(r.lo), np.log(r.hi))))
                else:
                    draw[k] = float(rng.uniform(r.lo, r.hi))
            out.extend({**g, **draw} for g in grid)
        return out


def parse_space(
    model: type[BaseModel],
    validate: Validator,
    base: dict[str, Any],
    grids: list[str],
    ranges: list[str],
) -> Space:
    """``--grid`` and ``--range`` texts -> a ``Space``; one line for the first bad one."""
    space = Space()
    for text in grids:
        key, values = _split(text, "--grid", "KEY=V1,V2,...")
        check_key(model, key, "--grid", text)
        if key in space.grid:
            raise UserError(f"--grid {text}: {key} is already swept by another --grid")
        raw = [x for x in values.split(",")]
        if any(not x.strip() for x in raw):
            raise UserError(f"--grid {text}: an empty value; expected KEY=V1,V2,...")
        vals = [_value(x) for x in raw]
        seen: set[str] = set()
        for v in vals:
            tag = json.dumps(v, sort_keys=True)
            if tag in seen:
                raise UserError(f"--grid {text}: the value {v!r} is given twice")
            seen.add(tag)
            _check_value(validate, base, key, v, "--grid", text)
        space.grid[key] = vals
    for text in ranges:
        r = _parse_range(model, validate, base, text)
        if r.key in space.ranges or r.key in space.grid:
            raise UserError(f"--range {text}: {r.key} is already swept")
        space.ranges[r.key] = r
    return space


def _split(text: str, flag: str, form: str) -> tuple[str, str]:
    if "=" not in text:
        raise UserError(f"{flag} {text}: expected {form}")
    key, rest = text.split("=", 1)
    key = key.strip()
    if not rest.strip():
        raise UserError(f"{flag} {text}: no values; expected {form}")
    return key, rest


def _parse_range(model: type[BaseModel], validate: Validator, base: dict[str, Any], text: str) -> Range:
    key, rest = _split(text, "--range", "KEY=LO:HI or KEY=LO:HI:log")
    path = check_key(model, key, "--range", text)
    kind = _numeric_kind(model, path)
    if kind is None:
        raise UserError(f"--range {text}: {key} is not a number; sweep it with --grid")
    parts = rest.split(":")
    log = len(parts) == 3 and parts[2].strip() == "log"
    if len(parts) not in (2, 3) or (len(parts) == 3 and not log):
        raise UserError(f"--range {text}: expected KEY=LO:HI or KEY=LO:HI:log")
    ends = []
    for p in parts[:2]:
        v = _value(p)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise UserError(f"--range {text}: {p.strip()!r} is not a number")
        if kind == "int" and not float(v).is_integer():
            raise UserError(f"--range {text}: {key} takes whole numbers; {p.strip()!r} is not one")
        ends.append(int(v) if kind == "int" else float(v))
    lo, hi = ends
    if not lo < hi:
        raise UserError(f"--range {text}: LO must be below HI")
    if log and lo <= 0:
        raise UserError(f"--range {text}: a log range needs LO > 0")
    for v in (lo, hi):
        _check_value(validate, base, key, v, "--range", text)
    return Range(key, lo, hi, kind, log)
