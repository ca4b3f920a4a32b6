"""The ``avmm`` command line: a thin shell over the library, one module per command group.

Each command parses its options, calls one library function and renders the result; ``main``
turns errors into one line on stderr and an exit code.
"""


def main() -> None:
    """The ``avmm`` console script."""
    from avmm.cli.app import main as run

    run()
