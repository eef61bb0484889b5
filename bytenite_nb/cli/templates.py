"""``bytenite-nb template new|push|pull|get|list``: job templates on the Developer API."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bytenite_nb.cli import scaffold
from bytenite_nb.cli.common import (
    PROG,
    USAGE,
    CliError,
    Column,
    add_common,
    add_group,
    call,
    print_fields,
    print_json,
    print_listing,
    read_json_file,
    when,
)

__all__ = ["add_parsers"]

#: What a ``template.json`` holds; the server's answers add bookkeeping (owner, times, the
#: engines' params schemas) that ``pull`` leaves out, so a pulled file pushes back as it was.
_TEMPLATE_KEYS = ("id", "description", "app", "partitioner", "assembler", "dataSource",
                  "dataDestination", "params", "config")


def _listing() -> str:
    return f"see '{PROG} template list' for the ids there are"


def _read_template(arg: str) -> tuple[Path, dict[str, Any]]:
    path = Path(arg).expanduser()
    if path.is_dir():
        path = path / "template.json"
    if not path.is_file():
        raise CliError(f"no template file at {path}: give a template .json file (or a "
                       f"folder holding template.json); '{PROG} template new ID' makes one",
                       USAGE)
    body = read_json_file(path)
    if not isinstance(body, dict) or not body.get("id"):
        raise CliError(f"{path} needs an \"id\" (e.g. \"my-app-template\") and an \"app\" tag",
                       USAGE)
    return path, body


def _new(args: argparse.Namespace) -> int:
    app = args.app or (args.id[: -len("-template")] if args.id.endswith("-template")
                       else args.id)
    path = Path(args.output or f"{args.id}.json").expanduser()
    scaffold.new_template(args.id, path, app=app, partitioner=args.partitioner,
                          assembler=args.assembler, force=args.force)
    print(f"Created {path}: template {args.id} runs app {app} with the {args.partitioner} "
          f"partitioner and the {args.assembler} assembler")
    print(f"Next: {PROG} template push {path}")
    return 0


def _push(args: argparse.Namespace) -> int:
    path, body = _read_template(args.path)
    record = call(args, lambda client: client.dev.push_template(body))
    if args.json:
        print_json(record)
        return 0
    print(f"Pushed template {record.get('id') or body['id']} from {path} (app "
          f"{record.get('app')}, partitioner {record.get('partitioner')}, assembler "
          f"{record.get('assembler')})")
    return 0


def _fetch(args: argparse.Namespace) -> dict[str, Any]:
    return call(args, lambda client: client.dev.template(args.id), not_found=_listing())


def _pull(args: argparse.Namespace) -> int:
    path = Path(args.output or f"{args.id}.json").expanduser()
    if path.is_dir():
        path = path / "template.json"
    if path.exists() and not args.force:
        raise CliError(f"{path} already exists: pass --force to replace it, or -o another "
                       "file", USAGE)
    record = _fetch(args)
    body = {k: record[k] for k in _TEMPLATE_KEYS if record.get(k) not in (None, "")}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    print(f"Pulled template {body.get('id')} into {path}")
    return 0


def _get(args: argparse.Namespace) -> int:
    record = _fetch(args)
    if args.json:
        print_json(record)
        return 0
    source = (record.get("dataSource") or {}).get("dataSourceDescriptor")
    destination = (record.get("dataDestination") or {}).get("dataSourceDescriptor")
    params = record.get("params") or {}
    print_fields([
        ("id", record.get("id")), ("description", record.get("description")),
        ("app", record.get("app")), ("partitioner", record.get("partitioner")),
        ("assembler", record.get("assembler")), ("data source", source),
        ("destination", destination),
        *((f"params.{k}", json.dumps(v)) for k, v in params.items() if v),
        ("config", json.dumps(record["config"]) if record.get("config") else None),
        ("owner", record.get("owner") or record.get("userName")),
        ("created", when(record.get("createdAt"))),
        ("updated", when(record.get("updatedAt"))),
    ])
    return 0


def _list(args: argparse.Namespace) -> int:
    records = call(args, lambda client: client.dev.templates())
    print_listing(args, records, [
        Column("ID", "id", shrink=True), Column("APP", "app", shrink=True),
        Column("PARTITIONER", "partitioner", shrink=True),
        Column("ASSEMBLER", "assembler", shrink=True),
        Column("DESCRIPTION", "description", shrink=True),
    ], empty=f"No templates yet: '{PROG} template push FILE' adds one")
    return 0


def add_parsers(sub: Any) -> None:
    """Add the ``template`` group to the ``bytenite-nb`` subcommands ``sub``."""
    verbs = add_group(sub, "template", help="create, push and pull job templates",
                      description="ByteNite's Dev CLI 'template' commands: job templates "
                                  "(which app, partitioner and assembler a job runs).")

    p = verbs.add_parser("new", help="write a template file to edit and push")
    p.add_argument("id", help="the template id, e.g. my-app-template")
    p.add_argument("--app", help="the app's tag (default: the id without '-template')")
    p.add_argument("--partitioner", default="passthrough", help="default: passthrough")
    p.add_argument("--assembler", default="passthrough", help="default: passthrough")
    p.add_argument("-o", "--output", help="the file to write (default: ./ID.json)")
    p.add_argument("--force", action="store_true", help="replace the file if it exists")
    p.set_defaults(func=_new)

    p = verbs.add_parser("push", help="upload a template (a new id, or the same id replaced)")
    p.add_argument("path", help="the template .json file, or a folder holding template.json")
    add_common(p)
    p.set_defaults(func=_push)

    p = verbs.add_parser("pull", help="download a template as a template file")
    p.add_argument("id", help="the template id")
    p.add_argument("-o", "--output", help="the file to write (default: ./ID.json)")
    p.add_argument("--force", action="store_true", help="replace the file if it exists")
    add_common(p, json_output=False)
    p.set_defaults(func=_pull)

    p = verbs.add_parser("get", help="details of a template")
    p.add_argument("id", help="the template id")
    add_common(p)
    p.set_defaults(func=_get)

    p = verbs.add_parser("list", help="every template on the server")
    add_common(p)
    p.set_defaults(func=_list)
