"""The `avmm` command line: a thin typer layer over the library.

Every command turns a `UserError` (bad file, bad config value, bad argument) into one line on
stderr and exit code 2 -- never a traceback.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

import typer

from avmm.cli.backtest import backtest_command
from avmm.cli.bench import bench_command
from avmm.cli.config import app as config_app
from avmm.cli.data import app as data_app
from avmm.cli.quote import quote_command
from avmm.cli.replicate import app as replicate_app
from avmm.errors import UserError

app = typer.Typer(
    name="avmm",
    help="Avellaneda-Stoikov market making: quote models, estimators, backtests, benchmarks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("quote")(quote_command)
app.command("bench")(bench_command)
app.command("backtest")(backtest_command)
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")
app.add_typer(replicate_app, name="replicate")


def _click_exceptions() -> Any:
    """typer >= 0.20 vendors click as typer._click; older versions use click itself."""
    try:
        from typer._click import exceptions as cx
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click import exceptions as cx  # type: ignore[no-redef]
    return cx


def main() -> None:
    cx = _click_exceptions()
    exits = tuple(x for x in (typer.Exit, getattr(cx, "Exit", None)) if isinstance(x, type))
    aborts = tuple(x for x in (typer.Abort, getattr(cx, "Abort", None)) if isinstance(x, type))
    code = _run(cx, exits, aborts)
    # the failed command's frames (and any open readers in them) are gone by now: close what they
    # held before the interpreter shuts down, not during
    gc.collect()
    sys.exit(code)


def _run(cx: Any, exits: tuple[type[BaseException], ...], aborts: tuple[type[BaseException], ...]) -> int:
    """Run the app; returns the exit code (one line on stderr for an error)."""
    try:
        app(standalone_mode=False)
        return 0
    except UserError as e:
        print(f"avmm: error: {e}", file=sys.stderr)
        return e.exit_code
    except cx.UsageError as e:  # bad option value, unknown command or option
        where = e.ctx.command_path if e.ctx is not None else "avmm"
        msg = " ".join(e.format_message().split())
        print(f"{where}: error: {msg} (see --help)", file=sys.stderr)
        return e.exit_code
    except cx.ClickException as e:
        print(f"avmm: error: {' '.join(e.format_message().split())}", file=sys.stderr)
        return e.exit_code
    except exits as e:
        return int(getattr(e, "exit_code", 0))
    except aborts:
        print("avmm: aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("avmm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug: one line unless AVMM_DEBUG asks for the traceback
        if os.environ.get("AVMM_DEBUG"):
            raise
        print(f"avmm: internal error: {type(e).__name__}: {e} (set AVMM_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    main()
