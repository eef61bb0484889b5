"""``bytenite-nb envs list|size|remove|remove-unused``: the app environments ByteNite Local
built from app folders' ``requirements.txt`` (a ByteNite Local extension of the Developer
API; ByteNite's Dev CLI has no such command: its apps ran in containers)."""

from __future__ import annotations

import argparse
from typing import Any

from bytenite_nb.cli.common import (
    PROG,
    Column,
    add_common,
    add_group,
    call,
    print_answer,
    print_json,
    print_listing,
    when,
)

__all__ = ["add_parsers", "human_size"]


def human_size(size: Any) -> str:
    """``12.3 MiB`` for a byte count (an int64 string or a number)."""
    try:
        value = float(size)
    except (TypeError, ValueError):
        return ""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= factor:
            return f"{value / factor:.1f} {unit}"
    return f"{int(value)} B"


def _fetch(args: argparse.Namespace) -> list[dict[str, Any]]:
    return call(args, lambda client: client.dev.environments())


def _used_by(record: dict[str, Any]) -> str:
    users = record.get("usedBy") or []
    if record.get("inUse"):
        users = ["(a running job)", *users]
    return ", ".join(users) or "unused"


def _list(args: argparse.Namespace) -> int:
    print_listing(args, _fetch(args), [
        Column("NAME", "name"),
        Column("SIZE", lambda r: human_size(r.get("size"))),
        Column("REQUIREMENTS", lambda r: ", ".join(r.get("requirements") or []), shrink=True),
        Column("LAST USED", lambda r: when(r.get("lastUsedAt") or r.get("createdAt"))),
        Column("USED BY", _used_by, shrink=True),
    ], empty="No app environments yet: a job whose app folder has a requirements.txt builds "
             "one")
    return 0


def _size(args: argparse.Namespace) -> int:
    records = _fetch(args)
    total = sum(int(r.get("size") or 0) for r in records)
    unused = [r for r in records if not r.get("usedBy") and not r.get("inUse")]
    freeable = sum(int(r.get("size") or 0) for r in unused)
    if args.json:
        print_json({"environments": len(records), "size": str(total),
                    "unused": len(unused), "unusedSize": str(freeable)})
        return 0
    count = f"{len(records)} environment{'s' if len(records) != 1 else ''}"
    print(f"{count}: {human_size(total)}")
    if unused:
        print(f"{len(unused)} unused: {human_size(freeable)} ('{PROG} envs remove-unused' "
              "frees it)")
    return 0


def _remove(args: argparse.Namespace) -> int:
    answer = call(args, lambda client: client.dev.remove_environment(args.name),
                  not_found=f"see '{PROG} envs list' for the names there are")
    print_answer(args, answer, f"Removed environment {args.name}")
    return 0


def _remove_unused(args: argparse.Namespace) -> int:
    answer = call(args, lambda client: client.dev.remove_unused_environments())
    print_answer(args, answer, "Removed the unused environments")
    if args.json:
        return 0
    for name in answer.get("removed") or []:
        print(f"  {name}")
    return 0


def add_parsers(sub: Any) -> None:
    """Add the ``envs`` group to the ``bytenite-nb`` subcommands ``sub``."""
    verbs = add_group(sub, "envs", help="list and remove the app environments ByteNite "
                                        "Local built",
                      description="The Python environments ByteNite Local builds from app "
                                  "folders' requirements.txt, one per requirement set.")

    p = verbs.add_parser("list", help="every environment: size, requirements, who uses it")
    add_common(p)
    p.set_defaults(func=_list)

    p = verbs.add_parser("size", help="how much disk the environments take")
    add_common(p)
    p.set_defaults(func=_size)

    p = verbs.add_parser("remove", help="remove one environment (rebuilt when needed)")
    p.add_argument("name", help="its name, e.g. py3.11-0123456789abcdef")
    add_common(p)
    p.set_defaults(func=_remove)

    p = verbs.add_parser("remove-unused", help="remove every environment no app or engine "
                                               "uses")
    add_common(p)
    p.set_defaults(func=_remove_unused)
