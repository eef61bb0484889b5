"""``bytenite-nb``: the command line.

``serve`` runs ByteNite Local and ``notebook`` runs a notebook end to end (`serve`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from bytenite_nb.cli import serve

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``bytenite-nb`` argument parser."""
    parser = argparse.ArgumentParser(prog="bytenite-nb",
                                     description="Run and analyse ByteNite jobs.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bytenite-nb`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))
