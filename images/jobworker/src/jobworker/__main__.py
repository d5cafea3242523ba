"""`python -m jobworker` is the same as the `jobworker` command."""

from jobworker.cli import main

main()
