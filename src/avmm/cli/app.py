"""The `avmm` command line: a thin typer layer over the library.

Every command turns a `UserError` (bad file, bad config value, bad argument) into one line on
stderr and exit code 2 -- never a traceback. Signals: SIGINT exits 130 and SIGTERM 143 (SIGHUP
129), after the command's outputs in progress are removed (``avmm.outputs``), with one line naming
what was kept. A second signal while the first one unwinds exits at once (temp files removed); a
signal whose exception some library swallowed is delivered again (``avmm.cli.signals``). stderr is ours:
library warnings and log records are silenced unless ``--verbose`` (or ``AVMM_DEBUG=1``), which
also shows the traceback of an internal error.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import warnings
from typing import Any

import typer

from avmm._version import __version__
from avmm.cli import signals
from avmm.cli.backtest import backtest_command
from avmm.cli.bench import app as bench_app
from avmm.cli.calibrate import calibrate_command
from avmm.cli.config import app as config_app
from avmm.cli.ctl import ctl_command
from avmm.cli.data import app as data_app
from avmm.cli.emulate import emulate_command
from avmm.cli.live import live_command
from avmm.cli.paper import paper_command, report_command
from avmm.cli.quote import quote_command
from avmm.cli.record import record_command
from avmm.cli.replicate import app as replicate_app
from avmm.cli.sweep import sweep_command
from avmm.errors import UserError
from avmm.outputs import Terminated

app = typer.Typer(
    rich_markup_mode=None,
    name="avmm",
    help="Avellaneda-Stoikov market making: quote models, estimators, backtests, benchmarks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", is_eager=True, help="Print the version and exit.", callback=lambda v: _version(v)
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show library warnings and the full traceback of an internal error."
    ),
) -> None:
    """Avellaneda-Stoikov market making: quote models, estimators, backtests, benchmarks."""
    if verbose:
        os.environ["AVMM_DEBUG"] = "1"
        warnings.resetwarnings()
        logging.getLogger().removeHandler(_QUIET)


def _version(value: bool) -> None:
    if value:
        print(f"avmm {__version__}")
        raise typer.Exit()


app.command("quote")(quote_command)
app.command("backtest")(backtest_command)
app.command("calibrate")(calibrate_command)
app.command("sweep")(sweep_command)
app.command("emulate")(emulate_command)
app.command("paper")(paper_command)
app.command("live")(live_command)
app.command("record")(record_command)
app.command("report")(report_command)
app.command("ctl")(ctl_command)
app.add_typer(bench_app, name="bench")
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


_QUIET = logging.NullHandler()  # on the root logger: library log records are not printed


def main() -> None:
    """Run the command line; exits with the command's code."""
    if not signals.installed():  # ``avmm.cli.main`` installs them before the imports
        signals.install()
    if not os.environ.get("AVMM_DEBUG"):
        warnings.simplefilter("ignore")
        logging.getLogger().addHandler(_QUIET)
    cx = _click_exceptions()
    exits = tuple(x for x in (typer.Exit, getattr(cx, "Exit", None)) if isinstance(x, type))
    aborts = tuple(x for x in (typer.Abort, getattr(cx, "Abort", None)) if isinstance(x, type))
    code = _run(cx, exits, aborts)
    # the failed command's frames (and any open readers in them) are gone by now: close what they
    # held before the interpreter shuts down, not during
    gc.collect()
    sys.exit(code)


def _run(cx: Any, exits: tuple[type[BaseException], ...], aborts: tuple[type[BaseException], ...]) -> int:
    """Run the app; returns the exit code (one line on stderr for an error or a signal)."""
    try:
        code, msg = _outcome(cx, exits, aborts)
        first = signals.pending()  # a signal whose exception was swallowed on the way: it counts
        if first is not None:
            code, msg = 128 + first, signals.line(first)
        signals.finish()  # from here a signal exits at once, with its own line
    except Terminated as e:  # a signal, or one while the outcome above was worked out
        signals.finish()
        code, msg = 128 + e.signum, signals.line(e.signum)
    if msg:
        print(msg, file=sys.stderr)
    return code


def _outcome(
    cx: Any, exits: tuple[type[BaseException], ...], aborts: tuple[type[BaseException], ...]
) -> tuple[int, str]:
    """Run the app: the exit code and the line for stderr ("" for none)."""
    try:
        rv = app(standalone_mode=False)
        return (rv if isinstance(rv, int) else 0), ""
    except UserError as e:
        return e.exit_code, f"avmm: error: {e}"
    except cx.UsageError as e:  # bad option value, unknown command or option
        where = e.ctx.command_path if e.ctx is not None else "avmm"
        msg = " ".join(e.format_message().split())
        return e.exit_code, f"{where}: error: {msg} (see --help)"
    except cx.ClickException as e:
        return e.exit_code, f"avmm: error: {' '.join(e.format_message().split())}"
    except exits as e:
        return int(getattr(e, "exit_code", 0)), ""
    except aborts:
        return 130, signals.line(signal.SIGINT)
    except BrokenPipeError:
        return 0, ""
    except Exception as e:  # a bug: one line unless AVMM_DEBUG asks for the traceback
        if signals.pending() is not None:  # raised from a swallowed signal's exception: the signal counts
            return 0, ""
        if os.environ.get("AVMM_DEBUG"):
            raise
        return 1, f"avmm: internal error: {type(e).__name__}: {e} (set AVMM_DEBUG=1 for the traceback)"


if __name__ == "__main__":
    main()
