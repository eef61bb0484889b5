"""Apps, engines and templates pushed through the Developer API, kept in the data dir.

Layout under ``<data dir>/dev/``::

    apps/<name>/<version>/folder/      the extracted app folder (manifest.json, app/, ...)
    apps/<name>/<version>/meta.json    {"id", "hash", "createdAt", "updatedAt"}
    engines/<name>/<version>/...       the same for partitioners and assemblers
    templates/<id>.json                {"template": {...}, "createdAt", "updatedAt"}
    status.json                        {"<kind>/<name>/<version>": "active" | "inactive"}

``status.json`` holds every activate/deactivate (of pushed apps and of folders given with
``--apps`` or bundled alike), so a status survives a restart. A push replaces the same
``(name, version)`` as ByteNite's did; a first push is ``inactive`` (ByteNite needed
``activate`` too), a re-push keeps the status the version already had.

Archives are checked before anything is written where the registry looks: no absolute
paths, no ``..``, no links, devices or fifos, a bounded unpacked size; then the folder is
validated by a scratch `Registry`, with the same rules (and messages) as ``--apps``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import io
import json
import logging
import os
import shutil
import tarfile
import threading
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from bytenite_nb import wire
from bytenite_nb.server.errors import InvalidRequest
from bytenite_nb.server.execution.registry import Engine, Registry, RegistryError, Template
from bytenite_nb.server.private import make_tree_private, open_private

log = logging.getLogger(__name__)

__all__ = ["DevStore", "PushError", "extract_tar"]

#: The owner written on everything pushed (ByteNite Local has one tenant).
PUSH_OWNER = "local"
#: Unpacked bytes one pushed folder may hold (a tar bomb must not fill the disk).
MAX_UNPACKED_BYTES = 1024**3
MAX_MEMBERS = 20_000
_ID_NAMESPACE = uuid.UUID("6b1f4a52-3c55-4c6e-9d0f-7f6d7f1b9a10")


class PushError(InvalidRequest, ValueError):
    """A push that cannot be accepted; the message says why (a 400 answer)."""


def stable_id(kind: str, name: str, version: str) -> str:
    """The id of an engine that was never pushed (bundled or ``--apps``): same on every start."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{kind}/{name}/{version}"))


def decode_archive(data: Any, limit: int) -> bytes:
    """The tar bytes of a push body's base64 ``data``; raises `PushError`."""
    if not isinstance(data, str) or not data.strip():
        raise PushError('the body needs "data": the base64 of a tar (or tar.gz) of the folder')
    if len(data) > limit * 4 // 3 + 4:
        raise PushError(f"the archive is larger than the {limit} byte upload limit")
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise PushError('"data" is not valid base64') from None


def extract_tar(archive: bytes, dest: Path) -> None:
    """Unpack a tar (plain, gz, bz2 or xz) into ``dest``, refusing anything unsafe.

    Raises `PushError` naming the offending member: absolute paths, ``..`` components,
    symbolic or hard links, device files and fifos, more than `MAX_MEMBERS` members or
    more than `MAX_UNPACKED_BYTES` unpacked.
    """
    try:
        # Entered just below, once opening succeeded, so a bad archive gets its own message.
        tar = tarfile.open(fileobj=io.BytesIO(archive), mode="r:*")  # noqa: SIM115
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise PushError(f"the archive is not a readable tar or tar.gz: {exc}") from None
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise PushError(f"the archive is damaged: {exc}") from None
        if len(members) > MAX_MEMBERS:
            raise PushError(f"the archive has more than {MAX_MEMBERS} entries")
        total = 0
        for member in members:
            problem = wire.tar_member_problem(member)
            if problem:
                raise PushError(problem)
            total += max(0, member.size)
            if total > MAX_UNPACKED_BYTES:
                raise PushError(f"the archive unpacks to more than {MAX_UNPACKED_BYTES} bytes")
        dest.mkdir(parents=True, exist_ok=True)
        try:
            # The "data" filter re-checks everything above and drops modes such as setuid.
            tar.extractall(dest, members=members, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise PushError(f"the archive could not be unpacked: {exc}") from None
        make_tree_private(dest)  # (the archive's modes may let others read the app)


def find_root(extracted: Path) -> Path:
    """The folder holding ``manifest.json``: the archive's top level, or its single folder."""
    if (extracted / "manifest.json").is_file():
        return extracted
    entries = [e for e in extracted.iterdir() if not e.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir() and (entries[0] / "manifest.json").is_file():
        return entries[0]
    raise PushError("the archive has no manifest.json at its top level (tar the folder's "
                    "contents: manifest.json, app/, template.json, schema.json)")


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open_private(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _time(text: Any) -> _dt.datetime | None:
    return wire.parse_timestamp(text) if isinstance(text, str) and text else None


class DevStore:
    """Pushed apps/engines/templates and every status change, persisted under ``root``."""

    def __init__(self, root: Path, registry: Registry, *, max_bytes: int) -> None:
        self.root = Path(root)
        self.registry = registry
        self.max_bytes = max_bytes
        self._lock = threading.RLock()
        self._status: dict[str, str] = {}

    # -- start-up ----------------------------------------------------------------------------

    def load(self) -> list[str]:
        """Register everything pushed before, then apply stored statuses; returns problems."""
        problems: list[str] = []
        # Leftovers of pushes a crash interrupted: never registered, safe to drop.
        shutil.rmtree(self.root / ".incoming", ignore_errors=True)
        for leftover in self.root.glob("*/*/*/.[no][el][wd]-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        status_file = self.root / "status.json"
        if status_file.is_file():
            try:
                self._status = {str(k): str(v) for k, v in _read_json(status_file).items()}
            except (OSError, ValueError, AttributeError) as exc:
                problems.append(f"{status_file}: unreadable ({exc}); statuses reset")
        for kind_dir in ("apps", "engines"):
            for meta_path in sorted((self.root / kind_dir).glob("*/*/meta.json")):
                folder = meta_path.parent / "folder"
                try:
                    meta = _read_json(meta_path)
                    engine = self.registry.add_folder(folder, owner=PUSH_OWNER)
                except (OSError, ValueError, RegistryError) as exc:
                    problems.append(f"{folder}: {exc}")
                    continue
                self.registry.put_engine(replace(
                    engine, id=str(meta.get("id") or ""), hash=str(meta.get("hash") or ""),
                    status=self._status.get(self.status_key(engine), "inactive"),
                    created_at=_time(meta.get("createdAt")) or engine.created_at,
                    updated_at=_time(meta.get("updatedAt"))))
        for path in sorted((self.root / "templates").glob("*.json")):
            try:
                stored = _read_json(path)
                template = self.registry.add_template(stored["template"], path=path,
                                                      owner=PUSH_OWNER)
            except (OSError, ValueError, KeyError, TypeError, RegistryError) as exc:
                problems.append(f"{path}: {exc}")
                continue
            self.registry.put_template(replace(
                template, created_at=_time(stored.get("createdAt")) or template.created_at,
                updated_at=_time(stored.get("updatedAt"))))
        for key, status in self._status.items():
            kind, _, rest = key.partition("/")
            name, _, version = rest.partition("/")
            engine = self._exact(kind, name, version)
            if engine is not None and not engine.builtin:
                self.registry.put_engine(replace(engine, status=status))
        for problem in problems:
            log.warning("pushed app not loaded: %s", problem)
        return problems

    def _exact(self, kind: str, name: str, version: str) -> Engine | None:
        for engine in self.registry.engines(kind if kind in ("app", "partitioner",
                                                             "assembler") else None):
            if engine.name == name and engine.version == version:
                return engine
        return None

    # -- pushes ------------------------------------------------------------------------------

    def push(self, data: Any, *, engines: bool) -> Engine:
        """Accept a pushed folder (base64 tar) as an app, or as an engine when ``engines``.

        Raises `PushError` (bad archive, bad folder, wrong kind for the endpoint).
        """
        archive = decode_archive(data, self.max_bytes)
        digest = hashlib.sha256(archive).hexdigest()
        incoming = self.root / ".incoming" / uuid.uuid4().hex
        try:
            extract_tar(archive, incoming)
            folder = find_root(incoming)
            scratch = Registry(bundled=False)
            try:
                probe = scratch.add_folder(folder, owner=PUSH_OWNER)
            except RegistryError as exc:
                raise PushError(f"the pushed folder cannot be loaded: {exc}") from None
            if scratch.problems:
                raise PushError("the pushed folder cannot be loaded: "
                                + "; ".join(p.reason if p.path == folder else
                                            f"{p.path.relative_to(folder)}: {p.reason}"
                                            for p in scratch.problems))
            is_engine = probe.kind != "app"
            if is_engine != engines:
                where = "POST /v1/dev/engines" if is_engine else "POST /v1/dev/apps"
                what = {"app": "an app", "assembler": "an assembler"}.get(
                    probe.kind, f"a {probe.kind}")
                raise PushError(f"{probe.name}@{probe.version} is {what} (manifest type "
                                f"{probe.kind!r}); push it with {where}")
            return self._install(folder, probe, digest)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)

    def _install(self, folder: Path, probe: Engine, digest: str) -> Engine:
        kind_dir = "engines" if probe.kind != "app" else "apps"
        home = self.root / kind_dir / probe.name / probe.version
        now = wire.utcnow()
        with self._lock:
            meta_path = home / "meta.json"
            old = _read_json(meta_path) if meta_path.is_file() else {}
            meta = {"id": old.get("id") or str(uuid.uuid4()), "hash": digest,
                    "kind": probe.kind, "createdAt": old.get("createdAt")
                    or wire.format_timestamp(now), "updatedAt": wire.format_timestamp(now)}
            home.mkdir(parents=True, exist_ok=True)
            target = home / "folder"
            # Swap folders by rename so a reader never sees half a folder.
            staging = home / f".new-{uuid.uuid4().hex}"
            shutil.move(str(folder), staging)
            retired = home / f".old-{uuid.uuid4().hex}"
            if target.exists():
                os.replace(target, retired)
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
            _write_json(meta_path, meta)
            key = self.status_key(probe)
            status = self._status.get(key, "inactive")
            self._status[key] = status
            self._save_status()
            engine = self.registry.add_folder(target, owner=PUSH_OWNER,
                                              active=status == "active")
            return self.registry.put_engine(replace(
                engine, id=meta["id"], hash=digest, created_at=_time(meta["createdAt"]) or now,
                updated_at=now))

    def push_template(self, body: Any) -> Template:
        """Accept a job template (its JSON); raises `PushError`."""
        if isinstance(body, dict) and isinstance(body.get("template"), dict):
            body = body["template"]
        if not isinstance(body, dict):
            raise PushError("the body must be a job template object (id, app, partitioner, "
                            "assembler, ...)")
        try:
            template = self.registry.add_template(body, owner=PUSH_OWNER)
        except RegistryError as exc:
            raise PushError(f"invalid template: {exc}") from None
        now = wire.utcnow()
        path = self.root / "templates" / f"{template.id}.json"
        with self._lock:
            old = _read_json(path) if path.is_file() else {}
            created = _time(old.get("createdAt")) or now
            _write_json(path, {"template": body, "createdAt": wire.format_timestamp(created),
                               "updatedAt": wire.format_timestamp(now)})
        return self.registry.put_template(replace(template, path=path, created_at=created,
                                                  updated_at=now))

    # -- downloads ---------------------------------------------------------------------------

    def archive(self, engine: Engine) -> bytes:
        """The tar of ``engine``'s folder as a push sends it (`wire.tar_folder`), so pushing
        it back gives the same folder. Raises `PushError` for a built-in engine and for a
        folder larger than a push accepts."""
        folder = engine.folder
        if folder is None:
            raise PushError(f"'{engine.name}' is built in: it has no folder to download")
        limit = min(MAX_UNPACKED_BYTES, self.max_bytes)
        for attempt in (1, 2):
            try:
                size = sum(path.stat().st_size for path in folder.rglob("*")
                           if path.is_file() and not wire.ARCHIVE_SKIP_DIRS.intersection(
                               path.relative_to(folder).parts))
                if size > limit:
                    raise PushError(f"{engine.tag}'s folder holds {size} bytes, more than a "
                                    f"push accepts ({limit}), so it is not offered as a "
                                    "download: copy the folder instead")
                return wire.tar_folder(folder)
            except FileNotFoundError:
                # A re-push swaps the folder by two renames: read the new one once.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    # -- status ------------------------------------------------------------------------------

    @staticmethod
    def status_key(engine: Engine) -> str:
        return f"{engine.kind}/{engine.name}/{engine.version}"

    def set_status(self, engine: Engine, active: bool) -> Engine:
        """Activate or deactivate exactly this engine version, persistently."""
        if engine.builtin:
            raise PushError(f"'{engine.name}' is built in and always active")
        status = "active" if active else "inactive"
        with self._lock:
            self._status[self.status_key(engine)] = status
            self._save_status()
            return self.registry.put_engine(replace(engine, status=status,
                                                    updated_at=wire.utcnow()))

    def _save_status(self) -> None:
        _write_json(self.root / "status.json", dict(sorted(self._status.items())))
