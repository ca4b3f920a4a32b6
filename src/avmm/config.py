"""The config file: one TOML file composed from the sections each layer declares beside itself.

``Config`` is the strategy's sections (``avmm.core.config.StrategyConfig``: ``[model]``,
``[quoting]``, ``[risk]``, ``[estimators]``, ``[logging]``) plus ``[backtest]``
(``avmm.backtest.config.BacktestConfig``). Only this module and the CLI see the whole file: the
runtimes receive their validated sections. A bad value raises ``UserError`` naming the key, the
value and the accepted range.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from avmm.backtest.config import BacktestConfig
from avmm.core.config import STRICT, StrategyConfig, checked
from avmm.errors import UserError

__all__ = ["Config", "dump_toml", "load_config", "parse_override", "validate"]


class Config(StrategyConfig):
    """The whole file: the strategy's sections and ``[backtest]``."""

    model_config = STRICT
    backtest: BacktestConfig = BacktestConfig()


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


def dump_toml(cfg: BaseModel) -> str:
    """The config as TOML text (for reports and `--json` outputs)."""
    lines: list[str] = []
    for section, model in cfg:
        lines.append(f"[{section}]")
        for key, value in model:
            if value is None:
                continue
            if isinstance(value, bool):
                v = "true" if value else "false"
            elif isinstance(value, str):
                v = f'"{value}"'
            else:
                v = repr(value)
            lines.append(f"{key} = {v}")
        lines.append("")
    return "\n".join(lines)
