"""The config file: one TOML file composed from the sections each layer declares beside itself.

``Config`` is the strategy's sections (``avmm.core.config.StrategyConfig``: ``[model]``,
``[quoting]``, ``[risk]``, ``[estimators]``, ``[logging]``) plus ``[backtest]``
(``avmm.backtest.config.BacktestConfig``), ``[venue]`` (``avmm.live.config.VenueConfig``: the
live runtime's URLs and feed timers) and ``[alerts]`` (``avmm.live.config.AlertsConfig``: the live
runtime's alert hook). Only this module and the CLI see the whole file: the
runtimes receive their validated sections. A bad value raises ``UserError`` naming the key, the
value and the accepted range.
"""

from __future__ import annotations

import json
import math
import tomllib
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from avmm.backtest.config import BacktestConfig
from avmm.core.config import SEED_MAX, STRICT, StrategyConfig, checked
from avmm.errors import UserError
from avmm.live.config import AlertsConfig, VenueConfig

__all__ = ["Config", "dump_toml", "load_config", "parse_override", "validate"]


class Config(StrategyConfig):
    """The whole file: the strategy's sections, ``[backtest]``, ``[venue]`` and ``[alerts]``."""

    model_config = STRICT
    backtest: BacktestConfig = BacktestConfig()
    venue: VenueConfig = VenueConfig()
    alerts: AlertsConfig = AlertsConfig()


def validate(data: dict[str, Any], where: str = "config") -> Config:
    """``data`` (the parsed file) validated, or a one-line ``UserError`` naming the first bad key."""
    return checked(Config, data, where)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``section.key=value`` -> (path, value); the value is parsed as TOML when it can be."""
    if "=" not in text:
        raise UserError(f"--set {text!r}: expected section.key=value")
    key, raw = text.split("=", 1)
    path = [x for x in key.strip().split(".") if x]
    if len(path) < 2:
        raise UserError(f"--set {text!r}: the key needs a section, e.g. model.gamma=0.1")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path, value


def load_config(path: Path | str | None = None, overrides: list[str] | None = None) -> Config:
    """Read and validate the config file.

    Parameters
    ----------
    path : path or str, optional
        The TOML file; ``None`` for the defaults.
    overrides : list of str, optional
        ``section.key=value`` settings applied over the file (values parsed as TOML when they can
        be, e.g. ``model.gamma=0.05``, ``model.kind="glft"``).

    Returns
    -------
    Config
        The validated config.

    Raises
    ------
    UserError
        A missing or unreadable file, invalid TOML, or a bad value (one line naming the key).
    """
    data: dict[str, Any] = {}
    where = "config"
    if path is not None:
        path = Path(path)
        where = str(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"{path}: config file not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"{path}: cannot read config: {e}") from None
        except tomllib.TOMLDecodeError as e:
            raise UserError(f"{path}: invalid TOML: {e}") from None
    for text in overrides or []:
        keys, value = parse_override(text)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {text!r}: {k} is not a section")
        node[keys[-1]] = value
    return validate(data, where)


def dump_toml(cfg: BaseModel, comments: bool = False) -> str:
    """The config as TOML text (for reports and ``--json`` outputs).

    Parameters
    ----------
    cfg : BaseModel
        The config (``Config``, ``StrategyConfig``): sections of keys.
    comments : bool
        Follow every key with a comment giving its meaning, unit and range (``avmm config check``);
        keys without a value are listed commented out.

    Returns
    -------
    str
        TOML that ``load_config`` reads back to ``cfg``.
    """
    lines: list[str] = []
    for section, model in cfg:
        _dump_section(lines, section, model, comments)
    return "\n".join(lines)


def _dump_section(lines: list[str], name: str, model: BaseModel, comments: bool) -> None:
    """``[name]`` and its keys, then each subsection (``[signals.vamp]``) after them."""
    lines.append(f"[{name}]")
    rows: list[tuple[str, str]] = []
    subs: list[tuple[str, BaseModel]] = []
    fields = type(model).model_fields
    for key, value in model:
        if isinstance(value, BaseModel):
            subs.append((f"{name}.{key}", value))
            continue
        note = _comment(fields[key]) if comments else ""
        if value is None:
            if comments:
                rows.append((f"# {key} = (not set)", note))
            continue
        rows.append((f"{key} = {_toml_value(value)}", note))
    width = max((len(text) for text, note in rows if note), default=0)
    for text, note in rows:
        lines.append(f"{text:<{width}}  # {note}" if note else text)
    lines.append("")
    for sub, value in subs:
        _dump_section(lines, sub, value, comments)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: the same escapes
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def _number(x: float) -> str:
    """A bound as written in the docs: ``86400``, ``1e6``, ``0.05``, ``2**63 - 1``."""
    if x == SEED_MAX:
        return "2**63 - 1"
    if float(x).is_integer():
        if abs(x) < 1e6:
            return str(int(x))
        exp = math.log10(abs(x))
        if exp.is_integer():
            return f"{'-' if x < 0 else ''}1e{int(exp)}"
    return f"{x:g}"


_BOUNDS = ((annotated_types.Gt, "gt", ">"), (annotated_types.Ge, "ge", ">="))
_UPPER = ((annotated_types.Lt, "lt", "<"), (annotated_types.Le, "le", "<="))


def _range(metadata: list[Any]) -> str:
    """``> 0, <= 1e6`` from a field's constraints (annotated_types metadata)."""
    parts = []
    for kinds in (_BOUNDS, _UPPER):
        for m in metadata:
            for cls, attr, sym in kinds:
                if isinstance(m, cls):
                    parts.append(f"{sym} {_number(getattr(m, attr))}")
    return ", ".join(parts)


def _accepts(annotation: Any, metadata: list[Any]) -> str:
    """What a key accepts: its range, its choices, 'true | false'; unions joined with 'or'."""
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *extra = get_args(annotation)
        meta = [x for info in extra for x in getattr(info, "metadata", [info])]
        return _accepts(inner, metadata + meta)
    if origin is Literal:
        choices = get_args(annotation)
        return f'"{choices[0]}"' if len(choices) == 1 else "one of " + " | ".join(map(str, choices))
    if origin in (Union, types.UnionType):
        alts = [_accepts(a, metadata) for a in get_args(annotation) if a is not type(None)]
        return " or ".join(a for a in alts if a)
    if origin is list:
        inner = _accepts(get_args(annotation)[0], [])
        return f"a list, each {inner}" if inner else "a list"
    if annotation is bool:
        return "true | false"
    return _range(metadata)


def _comment(field: FieldInfo) -> str:
    """The comment ``config check`` prints after a key: description; accepted values."""
    accepts = _accepts(field.annotation, list(field.metadata))
    return "; ".join(x for x in (field.description, accepts) if x)
