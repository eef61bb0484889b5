"""``bytenite-nb cache push|list|delete [--shared]``: the files every job finds in
``USER_CACHE_DIR``, or with ``--shared`` in ``SHARED_CACHE_DIR`` (read-only for jobs: model
weights and the like), through the Developer API."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bytenite_nb.cli.common import (
    PROG,
    USAGE,
    CliError,
    Column,
    add_common,
    add_group,
    call,
    print_answer,
    print_json,
    print_listing,
    when,
)
from bytenite_nb.cli.envs import human_size

__all__ = ["add_parsers"]


def _which(args: argparse.Namespace) -> str:
    return "SHARED_CACHE_DIR" if args.shared else "USER_CACHE_DIR"


def _push(args: argparse.Namespace) -> int:
    source = Path(args.file).expanduser()
    if not source.is_file():
        raise CliError(f"no file at {source}: give the file to upload, then its path in "
                       f"the cache ('{PROG} cache push model.bin models/model.bin')", USAGE)
    path = args.path or source.name
    stored = call(args, lambda client: client.dev.upload_to_cache(source, path,
                                                                  shared=args.shared))
    size = source.stat().st_size
    if args.json:
        print_json({"path": stored, "size": str(size), "shared": args.shared})
        return 0
    print(f"Stored {source} as {_which(args)}/{stored} ({human_size(size)}); jobs started "
          "from now on read it there")
    return 0


def _list(args: argparse.Namespace) -> int:
    files = call(args, lambda client: client.dev.cache_files(shared=args.shared))
    flag = " --shared" if args.shared else ""
    print_listing(args, files, [
        Column("PATH", "path", shrink=True),
        Column("SIZE", lambda r: human_size(r.get("size"))),
        Column("MODIFIED", lambda r: when(r.get("modifiedAt"))),
    ], empty=f"{_which(args)} is empty: '{PROG} cache push{flag} FILE PATH' adds a file")
    return 0


def _delete(args: argparse.Namespace) -> int:
    flag = " --shared" if args.shared else ""
    answer = call(args, lambda client: client.dev.delete_from_cache(args.path,
                                                                    shared=args.shared),
                  not_found=f"see '{PROG} cache list{flag}' for what is there")
    print_answer(args, answer, f"Deleted {args.path}")
    return 0


def add_parsers(sub: Any) -> None:
    """Add the ``cache`` group to the ``bytenite-nb`` subcommands ``sub``."""
    verbs = add_group(sub, "cache", help="fill the caches jobs read (USER_CACHE_DIR, "
                                         "SHARED_CACHE_DIR)",
                      description="Files every job finds in USER_CACHE_DIR, or with --shared "
                                  "in SHARED_CACHE_DIR (read-only for jobs).")

    def shared(p: argparse.ArgumentParser) -> None:
        p.add_argument("--shared", action="store_true",
                       help="SHARED_CACHE_DIR (read-only for jobs) instead of USER_CACHE_DIR")

    p = verbs.add_parser("push", help="upload a file into the cache")
    p.add_argument("file", help="the local file")
    p.add_argument("path", nargs="?",
                   help="where it goes in the cache, e.g. models/w.bin (default: its name)")
    shared(p)
    add_common(p)
    p.set_defaults(func=_push)

    p = verbs.add_parser("list", help="every file in the cache")
    shared(p)
    add_common(p)
    p.set_defaults(func=_list)

    p = verbs.add_parser("delete", help="delete a file (or a folder, with everything in it)")
    p.add_argument("path", help="its path in the cache")
    shared(p)
    add_common(p)
    p.set_defaults(func=_delete)
