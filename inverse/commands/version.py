"""``inverse version``: print the installed package version."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``version`` subcommand to an ``argparse`` subparsers object; returns its parser."""
    return subparsers.add_parser("version", help="print the package version")


def run(args) -> int:
    """Print ``inverse.__version__``."""
    from inverse import __version__

    print(__version__)
    return 0
