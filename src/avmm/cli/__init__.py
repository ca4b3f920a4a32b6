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
        from avmm.cli.app import main as run
    except Terminated as e:
        signals.finish()
        print(signals.line(e.signum), file=sys.stderr)
        sys.exit(128 + e.signum)
    run()
