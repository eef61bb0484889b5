"""Apps, engines and templates known to ByteNite Local.

Everything is loaded from folders in the ByteNite Dev CLI layout::

    <name>/
      manifest.json     name, version, entrypoint (default main.py), type (engines)
      app/main.py       the entrypoint and any modules next to it
      template.json     optional (apps only): a job template pushed with the app
      schema.json       optional: JSON Schema (Draft 2020-12) for the params of this app/engine

Manifest keys are read case-insensitively (CLI-generated manifests wrote ``Name``/``Version``,
the docs write ``name``/``version``). ``type`` = ``partitioner``/``assembler`` makes an engine,
anything else (missing, ``app``) an app. The entrypoint is Python (``.py``), JavaScript run by
``node`` (``.js``, ``.mjs``, ``.cjs``) or a shell script run by ``bash`` (``.sh``), see
`ENTRYPOINT_PROGRAMS`. Standalone template files (``*.json`` with ``id`` and ``app``) anywhere
under a scanned dir are loaded as templates too.

Templates: the keys ByteNite's template files carry are read (``default_params`` as the
default ``params``); any other key is kept in ``Template.unknown_keys``, logged and reported
(push answer, template records), never silently dropped.

A folder that cannot be loaded is recorded in :attr:`Registry.problems` (path and reason) and
skipped: a bad folder never stops the server. Params are checked against ``schema.json`` in
`params_schema`.

Why one module of more than 500 lines: the records (`Engine`, `Template`), the folder loader
and the lookups by tag share the rules of names, versions and tags, and the loader and the
lookups share the registry's lock and indexes.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bytenite_nb import wire
from bytenite_nb.server.execution.params_schema import check_schema, validate_params
from bytenite_nb.server.execution.resources import DeviceRequirements

__all__ = [
    "BUNDLED_DIR",
    "ENTRYPOINT_PROGRAMS",
    "Engine",
    "Kind",
    "Problem",
    "Registry",
    "RegistryError",
    "Template",
    "manifest_secret_ids",
    "parse_tag",
    "validate_params",
]

log = logging.getLogger(__name__)

Kind = Literal["app", "partitioner", "assembler"]
KINDS: tuple[str, ...] = ("app", "partitioner", "assembler")
ENGINE_KINDS: tuple[str, ...] = ("partitioner", "assembler")

#: The bundled app/engine/template folders shipped inside the package.
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "builtin_apps"
PASSTHROUGH = "passthrough"
BUNDLED_OWNER = "bytenite-local"

_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_VERSION_RE = re.compile(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")
# Folders never worth descending into while looking for app folders.
_SKIP_DIRS = frozenset(
    {"__pycache__", "node_modules", ".git", ".venv", "venv", ".ipynb_checkpoints"}
)
_MAX_SCAN_DEPTH = 4

#: Entrypoint suffix -> the program that runs it (None: Python, the app environment's or the
#: server's interpreter).
ENTRYPOINT_PROGRAMS: dict[str, str | None] = {
    ".py": None, ".js": "node", ".mjs": "node", ".cjs": "node", ".sh": "bash",
}

#: Keys of a template file that ByteNite Local reads (camelCase), and those it knows and
#: ignores (bookkeeping its own records carry, so a record pushed back is not "unknown").
TEMPLATE_KEYS = frozenset({"id", "description", "app", "partitioner", "assembler", "dataSource",
                           "dataDestination", "params", "defaultParams", "config", "owner",
                           "needsInput"})
_TEMPLATE_RECORD_KEYS = frozenset({"createdAt", "updatedAt", "isPublic", "userName",
                                   "paramsSchema", "unknownKeys"})
# The keys of ByteNite's job-request shape for one section ({"app_id", "version",
# "parameters"}), as web-scraper's template.json writes its default_params.
_SECTION_WRAPPER = frozenset({"appId", "version", "parameters", "engineId", "name"})


class RegistryError(LookupError):
    """A tag, template or folder could not be resolved or loaded; the message says which."""


@dataclass(frozen=True)
class Problem:
    """A folder or file that could not be loaded, and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class Engine:
    """An app, partitioner or assembler that the pipeline can run.

    ``builtin`` is ``"passthrough"`` for the built-in engines (no folder, no entrypoint);
    otherwise the code is ``folder / "app" / entrypoint``.
    """

    name: str
    version: str
    kind: str
    folder: Path | None
    entrypoint: str
    manifest: dict[str, Any]
    schema: dict[str, Any] | None = None
    builtin: str | None = None
    status: str = "active"
    description: str = ""
    owner: str = BUNDLED_OWNER
    created_at: _dt.datetime = field(default_factory=wire.utcnow)
    #: Developer API metadata: a stable id, the SHA-256 of the pushed tar ("" when the
    #: engine came from a folder on disk), when it was last pushed or re-activated.
    id: str = ""
    hash: str = ""
    updated_at: _dt.datetime | None = None

    @property
    def tag(self) -> str:
        """``name@version``, e.g. ``hello-world@0.1``."""
        return self.name if self.builtin else f"{self.name}@{self.version}"

    @property
    def app_dir(self) -> Path | None:
        """The ``app/`` folder the entrypoint runs from (``sys.path[0]`` and the cwd)."""
        return None if self.folder is None else self.folder / "app"

    @property
    def entrypoint_path(self) -> Path | None:
        """The file to run, or ``None`` for a built-in engine."""
        return None if self.folder is None else self.folder / "app" / self.entrypoint

    @property
    def version_key(self) -> tuple[int, ...]:
        return _version_key(self.version)

    @property
    def program(self) -> str | None:
        """The program that runs the entrypoint (``node``, ``bash``), None for Python."""
        return ENTRYPOINT_PROGRAMS.get(Path(self.entrypoint).suffix.lower())

    @property
    def device_requirements(self) -> DeviceRequirements:
        """The manifest's ``device_requirements`` (checked when the folder was loaded)."""
        return DeviceRequirements.from_manifest(self.manifest)

    @property
    def container(self) -> str | None:
        """``platform_config.container``: the image ByteNite ran the engine in."""
        config = _lower_keys(self.manifest).get("platformconfig")
        if not isinstance(config, Mapping):
            return None
        image = _lower_keys(config).get("container")
        return image.strip() if isinstance(image, str) and image.strip() else None

    @property
    def secret_ids(self) -> tuple[str, ...]:
        """The secret ids the manifest lists in ``platform_config.secrets`` (keys read
        case-insensitively; the ids themselves are case-sensitive)."""
        return manifest_secret_ids(self.manifest)


@dataclass(frozen=True)
class Template:
    """A job template: which app and engines to run, plus job defaults."""

    id: str
    description: str
    app: str
    partitioner: str = PASSTHROUGH
    assembler: str = PASSTHROUGH
    data_source: dict[str, Any] | None = None
    data_destination: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    owner: str = BUNDLED_OWNER
    created_at: _dt.datetime = field(default_factory=wire.utcnow)
    path: Path | None = None
    updated_at: _dt.datetime | None = None
    #: ``needsInput`` in template.json (a ByteNite Local extension): a job of this template
    #: needs input data; without a data source (or with ``bypass``) it is refused, not run
    #: over an empty dummy file.
    needs_input: bool = False
    #: Keys of the template file that ByteNite Local does not read (as written there).
    unknown_keys: tuple[str, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        """The template as the API returns it (camelCase; unset fields ``null``)."""
        return {
            "id": self.id,
            "owner": self.owner,
            "description": self.description,
            "app": self.app,
            "partitioner": self.partitioner,
            "assembler": self.assembler,
            "dataSource": self.data_source,
            "dataDestination": self.data_destination,
            "params": self.params,
            "config": self.config,
            "createdAt": wire.format_timestamp(self.created_at),
            "needsInput": self.needs_input,
            "unknownKeys": list(self.unknown_keys),
        }


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _version_key(version: str) -> tuple[int, ...]:
    match = _VERSION_RE.fullmatch(version)
    if not match:
        raise ValueError(f"version {version!r} is not of the form major.minor (e.g. 0.1)")
    return tuple(int(p) for p in match.groups() if p is not None)


def parse_tag(tag: str) -> tuple[str, tuple[int, ...] | None]:
    """Split ``name``, ``name@1``, ``name@1.2`` into ``(name, version parts or None)``.

    Raises :class:`RegistryError` when the tag is malformed.
    """
    text = str(tag).strip()
    if not text:
        raise RegistryError("empty app/engine tag")
    name, sep, version = text.partition("@")
    if not _NAME_RE.fullmatch(name):
        raise RegistryError(
            f"invalid tag {tag!r}: the name may contain letters, digits, '-' and '_' (max 64)"
        )
    if not sep:
        return name, None
    try:
        return name, _version_key(version)
    except ValueError:
        raise RegistryError(
            f"invalid tag {tag!r}: expected name, name@major or name@major.minor"
        ) from None


def _lower_keys(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Manifest keys case-insensitively, ``platform_config``/``platformConfig`` alike."""
    return {str(k).lower().replace("_", ""): v for k, v in obj.items()}


def manifest_secret_ids(manifest: Mapping[str, Any]) -> tuple[str, ...]:
    """``platform_config.secrets`` of a manifest (``platformConfig``, any key case).

    Raises ``ValueError`` when it is there but not a list of non-empty strings.
    """
    config = _lower_keys(manifest).get("platformconfig")
    if not isinstance(config, Mapping):
        return ()
    ids = _lower_keys(config).get("secrets")
    if ids is None:
        return ()
    if not isinstance(ids, list) or not all(isinstance(i, str) and i.strip() for i in ids):
        raise ValueError("manifest.json: platform_config.secrets must be a list of secret ids "
                         'such as ["MY_SECRET_ID"]')
    return tuple(dict.fromkeys(i.strip() for i in ids))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path.name} is not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path.name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def _unwrap_section(value: Any) -> Any:
    """A params section written in ByteNite's job-request shape (``{"app_id", "version",
    "parameters": {...}}``) -> its parameters; any other value as it is."""
    if (isinstance(value, dict) and isinstance(value.get("parameters"), dict)
            and {wire.to_camel(str(k)) for k in value} <= _SECTION_WRAPPER):
        return value["parameters"]
    return value


def _template_params(keys: dict[str, Any], tid: str) -> dict[str, Any]:
    """``params``, section by section over ``defaultParams`` (ByteNite's template files
    carry their defaults under ``default_params``)."""
    params = keys.get("params") or {}
    defaults = keys.get("defaultParams") or {}
    if not isinstance(params, dict) or not isinstance(defaults, dict):
        raise ValueError(f"template {tid!r}: 'params' and 'default_params' must be JSON objects")
    merged = {k: _unwrap_section(v) for k, v in defaults.items()}
    merged.update(params)
    return merged


def _template_from(data: Any, *, path: Path | None, owner: str) -> Template:
    if not isinstance(data, dict):
        raise ValueError("a template must be a JSON object")
    keys = {wire.to_camel(str(k)): v for k, v in data.items()}
    unknown = tuple(str(k) for k in data
                    if wire.to_camel(str(k)) not in TEMPLATE_KEYS | _TEMPLATE_RECORD_KEYS)
    tid = keys.get("id")
    if not isinstance(tid, str) or not tid.strip():
        raise ValueError("the template has no 'id'")
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,128}", tid):
        raise ValueError(f"template id {tid!r} may contain letters, digits, '-', '_', '.', '@'")
    app = keys.get("app")
    if not isinstance(app, str) or not app.strip():
        raise ValueError(f"template {tid!r} has no 'app' tag")
    parse_tag(app)
    partitioner = keys.get("partitioner") or PASSTHROUGH
    assembler = keys.get("assembler") or PASSTHROUGH
    for tag in (partitioner, assembler):
        if not isinstance(tag, str):
            raise ValueError(f"template {tid!r}: engine tags must be strings")
        parse_tag(tag)
    params = _template_params(keys, tid)
    config = keys.get("config") or {}
    if not isinstance(config, dict):
        raise ValueError(f"template {tid!r}: 'config' must be a JSON object")
    bad = sorted(set(params) - {"partitioner", "app", "assembler", "preset"})
    if bad:
        raise ValueError(
            f"template {tid!r}: unknown params section(s) {bad}; "
            "expected partitioner, app, assembler"
        )
    for key in ("dataSource", "dataDestination"):
        value = keys.get(key)
        has_descriptor = isinstance(value, dict) and value.get("dataSourceDescriptor")
        if value is not None and not has_descriptor:
            raise ValueError(f"template {tid!r}: {key} must have a dataSourceDescriptor")
    needs_input = keys.get("needsInput", False)
    if not isinstance(needs_input, bool):
        raise ValueError(f"template {tid!r}: needsInput must be true or false")
    return Template(
        id=tid,
        description=str(keys.get("description") or ""),
        app=app,
        partitioner=partitioner,
        assembler=assembler,
        data_source=keys.get("dataSource"),
        data_destination=keys.get("dataDestination"),
        params=params,
        config=config,
        owner=str(keys.get("owner") or owner),
        path=path,
        needs_input=needs_input,
        unknown_keys=unknown,
    )


def known_template_keys() -> str:
    """The template keys ByteNite Local reads (for messages)."""
    return ("id, description, app, partitioner, assembler, params (or default_params), "
            "dataSource, dataDestination, config")


def _builtin(kind: str) -> Engine:
    return Engine(
        name=PASSTHROUGH,
        version="0.0",
        kind=kind,
        folder=None,
        entrypoint="",
        manifest={"name": PASSTHROUGH, "type": kind},
        builtin=PASSTHROUGH,
        description=f"built-in passthrough {kind}",
    )


# --------------------------------------------------------------------------------------------
# the registry
# --------------------------------------------------------------------------------------------


class Registry:
    """Apps, engines and templates, loaded from folders; thread-safe.

    ``Registry(bundled=True, dirs=())`` loads the bundled folders in ``server/builtin_apps/``
    and then every folder found under each of ``dirs``. Later definitions of the same
    ``(kind, name, version)`` or template id replace earlier ones (as a Dev CLI re-push does).
    """

    def __init__(self, bundled: bool = True, dirs: Iterable[str | Path] = ()) -> None:
        self._lock = threading.RLock()
        self._engines: dict[tuple[str, str, str], Engine] = {}
        self._templates: dict[str, Template] = {}
        #: Folders and files that could not be loaded: path and reason.
        self.problems: list[Problem] = []
        for kind in ENGINE_KINDS:
            engine = _builtin(kind)
            self._engines[(kind, engine.name, engine.version)] = engine
        if bundled:
            self.load_dir(BUNDLED_DIR, owner=BUNDLED_OWNER)
        for d in dirs:
            self.load_dir(Path(d))

    # -- loading --------------------------------------------------------------------------

    def _problem(self, path: Path, reason: str) -> None:
        problem = Problem(Path(path), reason)
        with self._lock:
            self.problems.append(problem)
        log.warning("skipped %s", problem)

    def load_dir(self, root: str | Path, *, owner: str = "local") -> list[Problem]:
        """Load every app/engine folder and template file under ``root``.

        Returns the problems found in this call (also appended to :attr:`problems`).
        """
        root = Path(root)
        before = len(self.problems)
        if not root.is_dir():
            self._problem(root, "not a directory")
            return self.problems[before:]
        self._scan(root, owner, depth=0)
        return self.problems[before:]

    def _scan(self, folder: Path, owner: str, depth: int) -> None:
        if (folder / "manifest.json").is_file():
            try:
                self.add_folder(folder, owner=owner)
            except RegistryError as exc:
                self._problem(folder, str(exc))
            return
        if (folder / "app").is_dir() and depth > 0:
            self._problem(folder, "has an app/ folder but no manifest.json")
            return
        if depth >= _MAX_SCAN_DEPTH:
            return
        try:
            entries = sorted(folder.iterdir())
        except OSError as exc:
            self._problem(folder, f"cannot be read: {exc.strerror or exc}")
            return
        for entry in entries:
            if entry.name.startswith(".") or entry.name in _SKIP_DIRS:
                continue
            if entry.is_dir():
                self._scan(entry, owner, depth + 1)
            elif entry.suffix == ".json" and entry.is_file():
                self._maybe_template_file(entry, owner)

    def _maybe_template_file(self, path: Path, owner: str) -> None:
        try:
            data = _read_json(path)
        except ValueError as exc:
            if "template" in path.name:
                self._problem(path, str(exc))
            return
        if not (isinstance(data, dict) and "id" in data and "app" in data):
            return  # some other JSON file; not ours to judge
        try:
            self.add_template(data, path=path, owner=owner)
        except RegistryError as exc:
            self._problem(path, str(exc))

    def add_folder(
        self, folder: str | Path, *, owner: str = "local", active: bool = True
    ) -> Engine:
        """Load one app/engine folder (and its ``template.json``); returns the engine.

        Raises :class:`RegistryError` with the reason when the folder is not loadable; a bad
        ``template.json`` next to a good app is recorded in :attr:`problems` instead.
        """
        folder = Path(folder).resolve()
        try:
            engine = self._engine_from_folder(folder, owner=owner, active=active)
        except ValueError as exc:
            raise RegistryError(str(exc)) from None
        key = (engine.kind, engine.name, engine.version)
        with self._lock:
            if engine.name == PASSTHROUGH and engine.kind in ENGINE_KINDS:
                raise RegistryError(f"'{PASSTHROUGH}' is a built-in {engine.kind}")
            self._engines[key] = engine
        template_path = folder / "template.json"
        if template_path.is_file():
            if engine.kind != "app":
                self._problem(template_path, "only apps carry a template.json; ignored")
            else:
                try:
                    self.add_template(_read_json(template_path), path=template_path, owner=owner)
                except (ValueError, RegistryError) as exc:
                    self._problem(template_path, str(exc))
        return engine

    def _engine_from_folder(self, folder: Path, *, owner: str, active: bool) -> Engine:
        if not folder.is_dir():
            raise ValueError("not a directory")
        manifest_path = folder / "manifest.json"
        if not manifest_path.is_file():
            raise ValueError("no manifest.json")
        manifest = _read_json(manifest_path)
        if not isinstance(manifest, dict):
            raise ValueError("manifest.json must be a JSON object")
        keys = _lower_keys(manifest)
        name = keys.get("name")
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise ValueError(
                "manifest.json needs a 'name' of letters, digits, '-' and '_' (max 64), "
                f"got {name!r}"
            )
        version = keys.get("version")
        if isinstance(version, (int, float)) and not isinstance(version, bool):
            version = str(version)
        if not isinstance(version, str):
            raise ValueError("manifest.json has no 'version' (e.g. \"0.1\")")
        try:
            _version_key(version)
        except ValueError as exc:
            raise ValueError(f"manifest.json: {exc}") from None
        kind = str(keys.get("type") or "app").strip().lower()
        if kind not in KINDS:
            raise ValueError(
                f"manifest.json: type {kind!r} is not one of partitioner, assembler, app"
            )
        entrypoint = keys.get("entrypoint") or "main.py"
        if not isinstance(entrypoint, str) or Path(entrypoint).is_absolute() or ".." in Path(
            entrypoint
        ).parts:
            raise ValueError(f"manifest.json: bad entrypoint {entrypoint!r}")
        if Path(entrypoint).suffix.lower() not in ENTRYPOINT_PROGRAMS:
            raise ValueError(
                f"entrypoint {entrypoint!r}: ByteNite Local runs Python (.py), JavaScript "
                "(.js, .mjs, .cjs: node) and shell (.sh: bash) entrypoints"
            )
        if not (folder / "app" / entrypoint).is_file():
            raise ValueError(f"entrypoint app/{entrypoint} not found")
        manifest_secret_ids(manifest)  # a malformed list is a load problem, not a run failure
        DeviceRequirements.from_manifest(manifest)  # (the same: said when it is loaded)
        schema = None
        schema_path = folder / "schema.json"
        if schema_path.is_file():
            schema = check_schema(_read_json(schema_path), "schema.json")
        return Engine(
            name=name,
            version=version.strip(),
            kind=kind,
            folder=folder,
            entrypoint=entrypoint,
            manifest=manifest,
            schema=schema,
            status="active" if active else "inactive",
            description=str(keys.get("description") or ""),
            owner=owner,
        )

    def add_template(
        self, data: Mapping[str, Any], *, path: Path | None = None, owner: str = "local"
    ) -> Template:
        """Add (or replace) a template from its JSON form; raises :class:`RegistryError`."""
        try:
            template = _template_from(dict(data), path=path, owner=owner)
        except ValueError as exc:
            raise RegistryError(str(exc)) from None
        if template.unknown_keys:
            log.warning("template %s: unknown key(s) %s ignored (ByteNite Local reads %s)",
                        template.id, ", ".join(template.unknown_keys), known_template_keys())
        with self._lock:
            self._templates[template.id] = template
        return template

    def set_status(self, tag: str, kind: str, active: bool) -> Engine:
        """Activate or deactivate the engine ``tag`` resolves to (Dev API); returns it."""
        engine = self.resolve(tag, kind, include_inactive=True)
        if engine.builtin:
            raise RegistryError(f"'{engine.name}' is built in and always active")
        from dataclasses import replace

        updated = replace(engine, status="active" if active else "inactive")
        with self._lock:
            self._engines[(engine.kind, engine.name, engine.version)] = updated
        return updated

    def put_engine(self, engine: Engine) -> Engine:
        """Register (or replace) an already-built engine, e.g. with Developer API metadata."""
        if engine.builtin:
            raise RegistryError(f"'{engine.name}' is built in")
        with self._lock:
            self._engines[(engine.kind, engine.name, engine.version)] = engine
        return engine

    def put_template(self, template: Template) -> Template:
        """Register (or replace) an already-built template."""
        with self._lock:
            self._templates[template.id] = template
        return template

    # -- lookups --------------------------------------------------------------------------

    def engines(self, kind: str | None = None) -> list[Engine]:
        """All engines (apps too), optionally of one kind, by name then version."""
        with self._lock:
            found = [e for e in self._engines.values() if kind is None or e.kind == kind]
        return sorted(found, key=lambda e: (e.kind, e.name, e.version_key))

    def resolve(self, tag: str, kind: str, *, include_inactive: bool = False) -> Engine:
        """The engine a tag names: ``name`` → highest version, ``name@1`` → highest 1.x,
        ``name@1.2`` → exactly 1.2. Raises :class:`RegistryError` naming the tag."""
        if kind not in KINDS:
            raise RegistryError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        name, want = parse_tag(tag)
        with self._lock:
            candidates = [e for e in self._engines.values() if e.kind == kind and e.name == name]
            other_kinds = sorted(
                {e.kind for e in self._engines.values() if e.name == name and e.kind != kind}
            )
        if not candidates:
            hint = ""
            if other_kinds:
                kinds = " and ".join(("an " if k[0] in "aeiou" else "a ") + k for k in other_kinds)
                hint = f" (there is {kinds} named {name!r})"
            raise RegistryError(f"no {kind} named {name!r} (tag {tag!r}){hint}")
        if want is not None:
            candidates = [e for e in candidates if e.version_key[: len(want)] == want]
            if not candidates:
                raise RegistryError(f"no version of {kind} {name!r} matches tag {tag!r}")
        active = candidates if include_inactive else [c for c in candidates if c.status == "active"]
        if not active:
            raise RegistryError(
                f"{kind} {tag!r} is inactive; activate it before running jobs with it"
            )
        return max(active, key=lambda e: e.version_key)

    def templates(self) -> list[Template]:
        """Every template, by id."""
        with self._lock:
            return sorted(self._templates.values(), key=lambda t: t.id)

    def template(self, template_id: str) -> Template:
        """The template with this id; raises :class:`RegistryError` naming it."""
        with self._lock:
            found = self._templates.get(template_id)
        if found is None:
            raise RegistryError(f"no template with id {template_id!r}")
        return found

    def resolve_template(self, template: Template | str) -> tuple[Engine, Engine, Engine]:
        """``(partitioner, app, assembler)`` for a template; raises :class:`RegistryError`."""
        if isinstance(template, str):
            template = self.template(template)
        return (
            self.resolve(template.partitioner, "partitioner"),
            self.resolve(template.app, "app"),
            self.resolve(template.assembler, "assembler"),
        )
