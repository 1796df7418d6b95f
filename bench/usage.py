"""`--help` for the bench scripts that take no options: they print their docstring and
stop, instead of starting a minute of measurement (any other argument is refused)."""

from __future__ import annotations

import argparse


def no_options(doc: str | None, argv: list[str] | None = None) -> None:
    """Parse ARGV (sys.argv[1:] by default) for a script whose only option is --help."""
    argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args(argv)
