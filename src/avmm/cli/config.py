"""``avmm config check``: validate a config file and print it in full, every key followed by a
comment giving its meaning, unit and accepted range (from the config sections' field metadata)."""

from __future__ import annotations

import typer

app = typer.Typer(rich_markup_mode=None, help="Strategy configuration files.", no_args_is_help=True)


@app.command("check")
def config_check(
    path: str = typer.Argument(None, help="TOML file (omit for the defaults)", show_default=False),
    set_: list[str] = typer.Option(
        [], "--set", metavar="<section.key=value>", help="override a value, e.g. model.gamma=0.05 (repeatable)"
    ),
) -> None:
    """Validate a config file and print it in full: defaults filled in, each key's unit and range."""
    from avmm.config import dump_toml, load_config
    from avmm.core.config import to_params

    cfg = load_config(path, set_)
    to_params(cfg)  # what only the whole config tells (the skew target's limit), at the config's own lot
    print(dump_toml(cfg, comments=True), end="")
