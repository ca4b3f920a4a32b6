"""``avmm config check``: validate a config file and print it in full."""

from __future__ import annotations

import typer

app = typer.Typer(rich_markup_mode=None, help="Strategy configuration files.", no_args_is_help=True)


@app.command("check")
def config_check(
    path: str = typer.Argument(None, help="TOML file (omit for the defaults)"),
    set_: list[str] = typer.Option([], "--set", help="override, section.key=value (repeatable)"),
) -> None:
    """Validate a config file and print it in full, defaults filled in."""
    from avmm.config import dump_toml, load_config

    print(dump_toml(load_config(path, set_)), end="")
