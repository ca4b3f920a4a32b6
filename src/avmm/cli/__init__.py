"""The ``avmm`` command line: a thin shell over the library, one module per command group.

Each command parses its options, calls one library function and renders the result; ``main``
turns errors into one line on stderr and an exit code.
"""


def main() -> None:
    """The ``avmm`` console script."""
    import sys

    from avmm.cli import signals
    from avmm.outputs import Terminated

    signals.install()  # first: a signal while the command line loads is handled as one at work
    try:
        if sys.argv[1:2] == ["sweep"]:
            import contextlib

            with contextlib.suppress(Exception):  # a guess: the command starts the server itself anyway
                _start_sweep_server(sys.argv[2:])
        from avmm.cli.app import main as run
    except Terminated as e:
        signals.finish()
        print(signals.line(e.signum), file=sys.stderr)
        sys.exit(128 + e.signum)
    run()


def _start_sweep_server(args: list[str]) -> None:
    """``avmm sweep`` on the local pool (the default): the workers' server starts before the command
    line loads, since loading avmm's backtest and the compiled loop takes it longer than this process
    takes to load and read the config (``avmm.sweep.server``). A guess from the raw arguments that
    only costs time when wrong: the command starts the server if this did not, and stops it on its
    way out (at exit as well, for an error before the command runs)."""
    from avmm.sweep.server import default_workers, start_local, stop_local

    executor, workers = "local", default_workers()
    for i, arg in enumerate(args):
        key, eq, value = arg.partition("=")
        if not eq:
            value = args[i + 1] if i + 1 < len(args) else ""
        if key == "--executor":
            executor = value
        elif key == "--workers":
            workers = int(value) if value.isdigit() else 0
    if "--help" not in args and executor == "local" and workers > 1:
        import atexit

        start_local(["avmm.config"])
        atexit.register(stop_local)
