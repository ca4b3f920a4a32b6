"""``python -m avmm``: the command line."""

from avmm.cli import main

main()
