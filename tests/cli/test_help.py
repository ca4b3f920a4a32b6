"""Help texts: every option and argument of every command has a description, choices are shown in
full in the plain help (``<as|as-rolling|glft>``), and no option shows a ``<bool>`` metavar."""

from __future__ import annotations

import re

import pytest
import typer

from avmm.cli.app import app


def _commands(cmd, path=()):
    """(path, command) for every command under ``cmd``, groups included."""
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))
# every command that runs something: the leaves, and the groups that run without a subcommand
# (``avmm bench``, beside ``avmm bench live``)
LEAVES = [(p, c) for p, c in COMMANDS if p and (not hasattr(c, "commands") or c.invoke_without_command)]


def test_the_walk_sees_every_command():
    names = {" ".join(p) for p, _ in LEAVES}
    assert {"quote", "bench", "bench live", "backtest", "config check", "data synth", "replicate as2008"} <= names
    assert len(names) >= 10


@pytest.mark.parametrize("path, cmd", LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_option_has_a_description(path, cmd):
    missing = [p.name for p in cmd.params if not (getattr(p, "help", None) or "").strip()]
    assert not missing, f"avmm {' '.join(path)}: no help for {missing}"
    assert (cmd.help or "").strip(), f"avmm {' '.join(path)} has no description"


@pytest.mark.parametrize("path, cmd", COMMANDS, ids=[" ".join(p) or "avmm" for p, _ in COMMANDS])
def test_plain_help(run_main, path, cmd):
    """``--help`` of every command and group: exit 0, no ``<bool>``, every option line described,
    and every option with a fixed set of values shows the set."""
    code, out, err = run_main(*path, "--help")
    assert code == 0 and err == "", err
    assert "<bool>" not in out and "[bold]" not in out
    options = out.split("Options:", 1)[1].split("Commands:", 1)[0] if "Options:" in out else ""
    lines = options.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^  -", line):  # an option's first line: flags and metavar, then its help
            text = re.split(r"\s{2,}", line.strip(), maxsplit=1)[1:] or [lines[i + 1] if i + 1 < len(lines) else ""]
            described = re.sub(r"\[[^\]]*\]?", "", text[0]).strip()
            assert described, f"avmm {' '.join(path)}: {line!r} has no description"
    for p in getattr(cmd, "params", []):
        choices = getattr(getattr(p, "type", None), "choices", None)
        if choices:
            assert "<" + "|".join(map(str, choices)) + ">" in out, (p.name, out)


CHOICES = [
    (("quote",), "--model", "<as|as-rolling|glft>"),
    (("bench",), "--requote", "<always|triggers>"),
    (("bench", "live"), "--venue", "<binance-spot|binance-um>"),
    (("data", "convert"), "--format", "<auto|binance-ws|binance-archive|tardis|lobster>"),
    (("data", "fetch"), "--kind", "<bookTicker|aggTrades|trades>"),
]


@pytest.mark.parametrize("path, flag, shown", CHOICES)
def test_choices_shown_in_full(run_main, path, flag, shown):
    _, out, _ = run_main(*path, "--help")
    assert any(flag in x and shown in x for x in out.splitlines()), out
