"""``bytenite-nb``: the command line.

``serve`` runs ByteNite Local and ``notebook`` runs a notebook end to end (`serve`); ``app``,
``engine`` and ``template`` are ByteNite's Dev CLI commands with its verbs and arguments, so a
ByteNite README's ``bytenite app push ./my-app`` works as ``bytenite-nb app push ./my-app``
(`engines`, `templates`, the scaffolds in `scaffold`); ``auth`` stores the API key (`auth`);
``version`` prints the version; ``cache`` fills the caches jobs read (`cache`) and ``envs``
manages the app environments (`envs`), both ByteNite Local extensions. Exit codes and shared
output are in `common`.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Sequence

from bytenite_nb.cli import auth, cache, engines, envs, serve, templates
from bytenite_nb.cli.common import PROG, USAGE, CliError, Parser, print_json

__all__ = ["build_parser", "main"]


def _version(args: argparse.Namespace) -> int:
    from bytenite_nb import __version__

    if args.json:
        print_json({"version": __version__, "python": platform.python_version()})
    else:
        print(f"{PROG} {__version__} (Python {platform.python_version()})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``bytenite-nb`` argument parser."""
    from bytenite_nb import __version__

    parser = Parser(prog=PROG, description="Run and analyse ByteNite jobs; develop, push and "
                                           "activate ByteNite apps (the Dev CLI's commands).")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve.add_parsers(sub)
    engines.add_parsers(sub)
    templates.add_parsers(sub)
    auth.add_parsers(sub)
    cache.add_parsers(sub)
    envs.add_parsers(sub)
    p = sub.add_parser("version", help="print the version of bytenite-nb")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(func=_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bytenite-nb`` console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (2) and --help/--version (0)
        return exc.code if isinstance(exc.code, int) else USAGE
    func = getattr(args, "func", None)
    if func is None:  # a group without its command, or nothing at all
        (getattr(args, "group_parser", None) or parser).print_help(sys.stderr)
        return USAGE
    command = " ".join(str(p) for p in (PROG, args.command, getattr(args, "verb", None)) if p)
    try:
        return int(func(args))
    except CliError as exc:
        print(f"{command}: {exc.message}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"\n{command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. '| head': the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
