"""``bytenite-nb app ...`` and ``bytenite-nb engine ...``: ByteNite's Dev CLI verbs for apps,
partitioners and assemblers, on the Developer API (``client.dev``).

An app and an engine differ only by the manifest's ``type``, so a folder is pushed as what
its manifest says, whichever group the command was typed in (and the output says so); the
commands that take a tag fall back the same way when the server has no such app (or engine)
but has an engine (or app) by that tag.
"""

from __future__ import annotations

import argparse
import json
import sys
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
    api_errors,
    call,
    connect,
    print_fields,
    print_json,
    print_listing,
    read_json_file,
    when,
)

__all__ = ["add_parsers"]

_ENGINE_TYPES = ("partitioner", "assembler")


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def read_manifest(folder_arg: str) -> tuple[Path, dict[str, Any], str]:
    """The folder, its manifest and its kind (app, partitioner, assembler); usage errors for
    a missing folder or an unreadable manifest (nothing is sent then)."""
    folder = Path(folder_arg).expanduser()
    if not folder.exists():
        raise CliError(f"no folder at {folder}: give the app's folder (the one holding "
                       "manifest.json and app/)", USAGE)
    if not folder.is_dir():
        raise CliError(f"{folder} is a file: give the folder that holds manifest.json",
                       USAGE)
    path = folder / "manifest.json"
    if not path.is_file():
        raise CliError(f"{folder} has no manifest.json: is it the app's folder? "
                       f"('{PROG} app new NAME' makes one)", USAGE)
    manifest = read_json_file(path)
    if not isinstance(manifest, dict):
        raise CliError(f"{path} must hold a JSON object (name, version, entrypoint, ...)",
                       USAGE)
    kind = str({str(k).lower(): v for k, v in manifest.items()}.get("type") or "app")
    kind = kind.strip().lower()
    if kind not in scaffold.KINDS:
        raise CliError(f"{path}: type {kind!r} is not one of partitioner, assembler (or app, "
                       "the default): fix it and push again", USAGE)
    return folder, manifest, kind


# -- the Developer API calls, by kind -------------------------------------------------------


class _Target:
    """What a tag names on the server: an app, or an engine of some (or any) type."""

    def __init__(self, kind: str, engine_type: str | None = None) -> None:
        self.kind = kind  # "app" | "engine"
        self.engine_type = engine_type

    def label(self, record: dict[str, Any]) -> str:
        return str(record.get("type") or "app") if self.kind == "engine" else "app"

    def get(self, dev: Any, tag: str) -> dict[str, Any]:
        return dev.app(tag) if self.kind == "app" else dev.engine(tag, self.engine_type)

    def action(self, dev: Any, tag: str, verb: str) -> dict[str, Any]:
        if self.kind == "app":
            return getattr(dev, f"{verb}_app")(tag)
        return getattr(dev, f"{verb}_engine")(tag, self.engine_type)

    def download(self, dev: Any, tag: str, folder: Path, overwrite: bool) -> Path:
        if self.kind == "app":
            return dev.download_app(tag, folder, overwrite=overwrite)
        return dev.download_engine(tag, folder, self.engine_type, overwrite=overwrite)


def _resolve(args: argparse.Namespace, dev: Any, tag: str) -> tuple[_Target, dict[str, Any]]:
    """The target ``tag`` names and its record: the group's own kind first, then the other
    (unless ``--type`` narrowed it down)."""
    from bytenite_nb.api.errors import BadRequestError, NotFoundError

    own = _Target(args.group, getattr(args, "type", None))
    candidates = [own]
    if not own.engine_type:
        candidates.append(_Target("engine" if args.group == "app" else "app"))
    listing = f"see '{PROG} {args.group} list' for the tags there are"
    first: NotFoundError | None = None
    with api_errors(listing):
        for target in candidates:
            try:
                return target, target.get(dev, tag)
            except NotFoundError as exc:
                first = first or exc
            except BadRequestError as exc:
                if "both a partitioner and an assembler" in exc.message:
                    raise CliError(f"{tag!r} names both a partitioner and an assembler: say "
                                   f"which with '{PROG} engine {args.verb} {tag} --type "
                                   "partitioner' (or --type assembler)", USAGE) from None
                raise
        assert first is not None
        raise first


def _note_other(target: _Target, record: dict[str, Any], args: argparse.Namespace) -> None:
    if target.kind != args.group:
        what = target.label(record)
        print(f"note: {_tag(record)} is {_a(what)}, not {_a(args.group)}: "
              f"handled as {_a(what)} (next time: {PROG} {target.kind} ...)")


def _tag(record: dict[str, Any]) -> str:
    return f"{record.get('name')}@{record.get('version')}"


# -- commands ------------------------------------------------------------------------------


def _new(args: argparse.Namespace) -> int:
    kind = args.type or ("app" if args.group == "app" else "partitioner")
    folder, files = scaffold.new_engine_folder(kind, args.name, Path(args.dir).expanduser())
    print(f"Created {_a(kind)} in {folder}/: {', '.join(files)}")
    if args.group == "engine" and not args.type:
        print(f"(a partitioner: '{PROG} engine new NAME --type assembler' makes an assembler)")
    print(f"Next: {PROG} {'app' if kind == 'app' else 'engine'} push {folder}")
    return 0


def _push(args: argparse.Namespace) -> int:
    folder, _manifest, kind = read_manifest(args.folder)
    group = "app" if kind == "app" else "engine"
    record = call(args, lambda client: (client.dev.push_app(folder) if kind == "app" else
                                        client.dev.push_engine(folder)))
    if group != args.group:
        # Said on stderr under --json, so that stdout stays the server's answer.
        print(f"{folder}'s manifest says it is {_a(kind)}: pushed it as {_a(kind)} "
              f"(the Developer API's {group}s)", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print_json(record)
        return 0
    status = record.get("status") or "inactive"
    print(f"Pushed {kind} {_tag(record)} ({status}, hash {str(record.get('hash', ''))[:12]})")
    template = folder / "template.json"
    if kind == "app" and template.is_file():
        try:
            template_id = json.loads(template.read_text(encoding="utf-8")).get("id")
        except (ValueError, OSError, AttributeError):
            template_id = None
        if template_id:
            print(f"  with its template {template_id} (template.json)")
    if status != "active":
        print(f"Next: {PROG} {group} activate {_tag(record)}")
    return 0


def _pull(args: argparse.Namespace) -> int:
    client = connect(args)
    with client:
        target, record = _resolve(args, client.dev, args.tag)
        folder = Path(args.folder or str(record.get("name") or args.tag.split("@")[0]))
        try:
            with api_errors():
                target.download(client.dev, _tag(record), folder.expanduser(), args.force)
        except FileExistsError:
            raise CliError(f"{folder} is not empty: pull into a new or empty folder, or pass "
                           "--force to replace the files it downloads", USAGE) from None
        except NotADirectoryError:
            raise CliError(f"{folder} is a file: give a folder to pull {_tag(record)} into",
                           USAGE) from None
    _note_other(target, record, args)
    print(f"Pulled {target.label(record)} {_tag(record)} into {folder}/")
    return 0


def _get(args: argparse.Namespace) -> int:
    client = connect(args)
    with client:
        target, record = _resolve(args, client.dev, args.tag)
    if args.json:
        print_json(record)
        return 0
    _note_other(target, record, args)
    req = record.get("deviceRequirements") or {}
    gpu = req.get("gpu")
    needs = ", ".join(text for value, text in (
        (req.get("minCpu"), f"{req.get('minCpu')} CPU"),
        (req.get("minMemory"), f"{req.get('minMemory')} GB memory"),
        (gpu, f"GPU {', '.join(map(str, gpu)) if isinstance(gpu, list) else gpu}")) if value)
    print_fields([
        ("name", record.get("name")), ("version", record.get("version")),
        ("type", target.label(record)), ("status", record.get("status")),
        ("description", record.get("description")), ("entrypoint", record.get("entrypoint")),
        ("platform", record.get("platform")),
        ("container", (record.get("platformConfig") or {}).get("container")),
        ("requirements", needs), ("owner", record.get("owner")), ("id", record.get("id")),
        ("hash", record.get("hash")), ("created", when(record.get("createdAt"))),
        ("updated", when(record.get("updatedAt"))),
    ])
    return 0


def _list(args: argparse.Namespace) -> int:
    records = call(args, lambda client: (client.dev.apps() if args.group == "app" else
                                         client.dev.engines()))
    columns = [Column("NAME", "name", shrink=True), Column("VERSION", "version")]
    if args.group == "engine":
        columns.append(Column("TYPE", "type"))
    columns += [Column("STATUS", "status"),
                Column("UPDATED", lambda r: when(r.get("updatedAt"))),
                Column("DESCRIPTION", "description", shrink=True)]
    print_listing(args, records, columns,
                  empty=f"No {args.group}s yet: '{PROG} {args.group} push FOLDER' adds one")
    return 0


def _status_action(verb: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        client = connect(args)
        with client:
            target, record = _resolve(args, client.dev, args.tag)
            tag = _tag(record)
            with api_errors():
                answer = target.action(client.dev, tag, verb) if verb != "status" else None
                if answer is not None:
                    record = target.get(client.dev, tag)
        if args.json:
            print_json(answer if answer is not None else
                       {"tag": tag, "type": target.label(record), "status": record["status"]})
            return 0
        _note_other(target, record, args)
        if verb == "status":
            print(f"{tag}: {record.get('status')}")
        else:
            print(f"{target.label(record)} {tag} is {record.get('status')}")
        return 0
    return run


# -- parsers -------------------------------------------------------------------------------


def add_parsers(sub: Any) -> None:
    """Add the ``app`` and ``engine`` groups to the ``bytenite-nb`` subcommands ``sub``."""
    for group, what in (("app", "apps"), ("engine", "engines (partitioners, assemblers)")):
        verbs = add_group(sub, group, help=f"create, push, pull and activate {what}",
                          description=f"ByteNite's Dev CLI '{group}' commands: {what}.")
        kinds = scaffold.KINDS if group == "app" else _ENGINE_TYPES

        p = verbs.add_parser("new", help=f"scaffold a new {group} folder")
        p.add_argument("name", help="its name (letters, digits, '-', '_')")
        p.add_argument("--type", choices=kinds,
                       help=f"what to scaffold (default: {kinds[0]})")
        p.add_argument("--dir", default=".", help="where to create it (default: here)")
        p.set_defaults(func=_new)

        p = verbs.add_parser("push", help=f"upload {_a(group)} folder (a new version, or "
                                          "the same version replaced)")
        p.add_argument("folder", help="the folder holding manifest.json and app/")
        add_common(p)
        p.set_defaults(func=_push)

        p = verbs.add_parser("pull", help=f"download {_a(group)}'s folder")
        p.add_argument("tag", help="name or name@version")
        p.add_argument("folder", nargs="?", help="where to put it (default: ./NAME)")
        p.add_argument("--force", action="store_true",
                       help="write into a folder that is not empty (files of the same name "
                            "are replaced)")
        add_common(p, json_output=False)
        p.set_defaults(func=_pull)

        p = verbs.add_parser("get", help=f"details of {_a(group)}")
        p.add_argument("tag", help="name, name@version or id")
        add_common(p)
        p.set_defaults(func=_get)

        p = verbs.add_parser("list", help=f"every {group} on the server")
        add_common(p)
        p.set_defaults(func=_list)

        for verb, text in (("activate", f"let jobs use {_a(group)} version"),
                           ("deactivate", f"stop new jobs from using {_a(group)} version"),
                           ("status", f"whether {_a(group)} version is active")):
            p = verbs.add_parser(verb, help=text)
            p.add_argument("tag", help="name or name@version")
            add_common(p)
            p.set_defaults(func=_status_action(verb))

        if group == "engine":
            for name in ("pull", "get", "activate", "deactivate", "status"):
                verbs.choices[name].add_argument(
                    "--type", choices=_ENGINE_TYPES,
                    help="which one, when a partitioner and an assembler share the name")
