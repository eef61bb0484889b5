"""ByteNite's Developer API subset (``/v1/dev``): push, list, get, activate apps and engines,
push and read job templates. What the ByteNite Dev CLI (``bytenite app push`` ...) called.

Shapes follow ByteNite's developer SDK (reference section 9.6): ``POST /apps`` answers the
App record, ``GET /apps`` ``{"apps": [...]}``, ``GET /apps/{tag}`` ``{"app": ...}``,
activate/deactivate/status a ``GenericResponse``; engines answer the Engine record (with
``type``) for push and get, ``{"engines": [...]}`` for the list and a
``DeveloperEngineMessage`` (``engineId, engineTag, engineData, engineLink, engineStatus``)
for activate/deactivate/status; ``GET /templates`` ``{"templates": [...]}``,
``GET /templates/{id}`` the template, ``POST /templates`` a ``GenericResponse`` (plus the
stored ``template``). Persistence and archive checks live in `devstore`.

Where ByteNite documents a route but not its shapes, ByteNite Local chooses them (documented
in ``docs/local-server.md``): ``GET /apps/{tag}/download`` (and engines) answer
``{"data", "tag", "hash"}``, ``data`` in the format ``POST /apps`` takes;
``GET /cache/upload-url?path=`` answers ``{"url", "method": "PUT", "path", "expiresAt"}``, the
URL being served by `app` under ``/local/cache/{token}`` (`usercache` holds the files).
``GET /cache`` and ``DELETE /cache/{path}`` are extensions.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse

from bytenite_nb import __version__, wire
from bytenite_nb.server.execution.registry import Engine, RegistryError, Template
from bytenite_nb.server.http import dev_models as dm
from bytenite_nb.server.http import models
from bytenite_nb.server.http.errors import ApiError, bad_request, not_found, request_id_of
from bytenite_nb.server.http.routes.jobs import (
    EXTENSION,
    base_url,
    ctx_of,
    error_responses,
    ok,
    require_token,
)
from bytenite_nb.server.storage.dev_store import DevStore, PushError, stable_id
from bytenite_nb.server.storage.listing import query
from bytenite_nb.server.storage.store import CacheUploadRow
from bytenite_nb.server.storage.user_cache import CacheError, check_path

#: OpenAPI marker on every Developer API operation.
DEV_API = {"x-bytenite-api": "developer"}

_ENGINE_KINDS = ("partitioner", "assembler")
_LIST_FIELDS: dict[str, str] = {
    "id": "str", "name": "str", "version": "str", "status": "str", "type": "str",
    "owner": "str", "createdAt": "time", "updatedAt": "time",
}
_TEMPLATE_FIELDS = {**query.TEMPLATE_FIELDS, "updatedAt": "time"}

# Module level: with postponed annotations FastAPI resolves these names in the module.
Limit = Annotated[int | None, Query(alias="pagination.limit", ge=0, le=2**63 - 1)]
Offset = Annotated[int | None, Query(alias="pagination.offset", ge=0, le=2**63 - 1)]
OrderBy = Annotated[str | None, Query(alias="orderBy")]
CachePath = Annotated[str, Query(
    description="where the file goes inside USER_CACHE_DIR: relative, '/'-separated, e.g. "
                "models/w.bin (no leading '/', no '..', at most 1024 bytes)")]
EngineType = Annotated[str | None, Query(
    alias="type", description="ByteNite Local: partitioner or assembler, when a name is both")]

_PUSH_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["data"],
    "properties": {"data": {"type": "string", "format": "byte",
                            "description": "base64 of a tar (or tar.gz) of the folder's "
                                           "contents: manifest.json, app/, template.json, "
                                           "schema.json"}}}}}}}


def dev_of(request: Request) -> DevStore:
    """The data dir's `DevStore` (created with the server context)."""
    return ctx_of(request).dev


def _platform_config(manifest: dict[str, Any]) -> dict[str, Any]:
    keys = {str(k).lower().replace("_", ""): v for k, v in manifest.items()}
    raw = keys.get("platformconfig") or {}
    if not isinstance(raw, dict):
        return {}
    # Registry credentials never leave the server (ByteNite's records omit them too).
    return {wire.to_camel(str(k)): v for k, v in raw.items()
            if str(k).lower().replace("_", "") not in ("token", "password", "username")}


def _device_requirements(manifest: dict[str, Any]) -> dict[str, Any]:
    keys = {str(k).lower().replace("_", ""): v for k, v in manifest.items()}
    raw = keys.get("devicerequirements") or {}
    if not isinstance(raw, dict):
        return {"minCpu": 0, "minMemory": 0}
    out = {wire.to_camel(str(k)): v for k, v in raw.items()}
    out.setdefault("minCpu", 0)
    out.setdefault("minMemory", 0)
    return out


def engine_record(engine: Engine) -> dict[str, Any]:
    """The Developer API's App record; engines add ``type`` and ``deletedAt``."""
    keys = {str(k).lower(): v for k, v in engine.manifest.items()}
    record: dict[str, Any] = {
        "id": engine.id or stable_id(engine.kind, engine.name, engine.version),
        "name": engine.name,
        "version": engine.version,
        "owner": engine.owner,
        "status": engine.status,
        "deviceRequirements": _device_requirements(engine.manifest),
        "createdAt": wire.format_timestamp(engine.created_at),
        "updatedAt": wire.format_timestamp(engine.updated_at or engine.created_at),
        "platform": str(keys.get("platform") or ("builtin" if engine.builtin else "docker")),
        "hash": engine.hash,
        "link": "",
        "platformConfig": _platform_config(engine.manifest),
        "entrypoint": engine.entrypoint,
        "revision": "1",
        "description": engine.description,
    }
    if engine.kind != "app":
        record["type"] = engine.kind
        record["deletedAt"] = None
    return record


def template_record(template: Template) -> dict[str, Any]:
    """A job template as the Developer API lists it (``JobTemplate`` plus its defaults)."""
    out = dict(template.to_wire())
    out["updatedAt"] = wire.format_timestamp(template.updated_at or template.created_at)
    out["isPublic"] = False
    out["userName"] = template.owner
    return out


def _page(records: list[dict[str, Any]], fields: dict[str, str], order_by: str | None,
          limit: int | None, offset: int | None) -> list[dict[str, Any]]:
    keys = query.parse_order(order_by, fields, [("createdAt", False)])
    return query.paginate(query.sort_records(records, keys, fields), limit, offset).items


def _resolve_app(request: Request, tag: str) -> Engine:
    return _resolve(request, tag, ("app",))


def _resolve(request: Request, tag: str, kinds: tuple[str, ...]) -> Engine:
    registry = ctx_of(request).registry
    by_id = [e for e in registry.engines() if e.kind in kinds and tag in (
        e.id, stable_id(e.kind, e.name, e.version))]
    if by_id:
        return by_id[0]
    found: list[Engine] = []
    reasons: list[str] = []
    for kind in kinds:
        try:
            found.append(registry.resolve(tag, kind, include_inactive=True))
        except RegistryError as exc:
            reasons.append(str(exc))
    if not found:
        noun = "app" if kinds == ("app",) else "engine"
        raise not_found(f"No {noun} matches {tag!r}: {'; '.join(reasons)}")
    if len(found) > 1:
        raise bad_request(f"{tag!r} names both a partitioner and an assembler; use ?type="
                          "partitioner or ?type=assembler")
    return found[0]


def _engine_message(engine: Engine) -> dict[str, Any]:
    return {"engineId": engine.id or stable_id(engine.kind, engine.name, engine.version),
            "engineTag": engine.tag, "engineData": "", "engineLink": "",
            "engineStatus": engine.status}


def build_dev_router() -> APIRouter:
    """The Developer API router (mounted at ``/v1/dev``), same auth as the Customer API."""
    router = APIRouter(dependencies=[Depends(require_token)], tags=["developer"],
                       responses=error_responses(400, 401))
    e404 = error_responses(404)

    def kinds_for(engine_type: str | None) -> tuple[str, ...]:
        if engine_type is None:
            return _ENGINE_KINDS
        if engine_type not in _ENGINE_KINDS:
            raise bad_request("type must be 'partitioner' or 'assembler'")
        return (engine_type,)

    @router.get("/info", openapi_extra=DEV_API, response_model=models.InfoResponse)
    def info() -> JSONResponse:
        """Developer API version."""
        major, minor = [*__version__.split("."), "0"][:2]
        return JSONResponse({
            "version": {"major": major, "minor": minor, "tag": f"bytenite-local-{__version__}"},
            "messages": {"server": "ByteNite Local: ByteNite's Developer API subset (apps, "
                                   "engines, templates, user cache)"}})

    # -- apps -----------------------------------------------------------------------------

    @router.get("/apps", openapi_extra=DEV_API, response_model=dm.AppsResponse)
    def list_apps(request: Request, limit: Limit = None, offset: Offset = None,
                  order_by: OrderBy = None) -> JSONResponse:
        """Every app on this server (bundled, ``--apps`` folders and pushed), any status."""
        records = [engine_record(e) for e in ctx_of(request).registry.engines("app")]
        return JSONResponse({"apps": _page(records, _LIST_FIELDS, order_by, limit, offset)})

    @router.post("/apps", openapi_extra={**DEV_API, **_PUSH_BODY}, response_model=dm.AppOut)
    def push_app(request: Request,
                 body: Annotated[dict[str, Any], Body()]) -> JSONResponse:
        """Upload an app folder (``bytenite app push``). A first push is ``inactive``:
        activate it before running jobs. Its ``template.json`` is registered too."""
        try:
            engine = dev_of(request).push(body.get("data"), engines=False)
        except PushError as exc:
            raise bad_request(str(exc)) from None
        return JSONResponse(engine_record(engine))

    @router.get("/apps/{appTag}", openapi_extra=DEV_API, responses=e404,
                response_model=dm.AppResponse)
    def get_app(request: Request, appTag: str) -> JSONResponse:
        """The app a tag (``name``, ``name@1``, ``name@1.2``) or id names, any status."""
        return JSONResponse({"app": engine_record(_resolve_app(request, appTag))})

    @router.get("/apps/{appTag}/download", openapi_extra=DEV_API, responses=e404,
                response_model=dm.DownloadResponse)
    def download_app(request: Request, appTag: str) -> JSONResponse:
        """The app's folder (``bytenite app pull``): ``data`` is the base64 of a tar of its
        contents, what ``POST /apps`` takes, so push → download → unpack gives the same files.
        Pushed, bundled and ``--apps`` apps alike."""
        return JSONResponse(_download(request, _resolve_app(request, appTag)))

    @router.post("/apps/{appTag}/activate", openapi_extra=DEV_API, responses=e404,
                 response_model=models.GenericResponse)
    def activate_app(request: Request, appTag: str) -> JSONResponse:
        """Let jobs use this app version."""
        engine = _set_status(request, _resolve_app(request, appTag), True)
        return ok(request, f"app {engine.tag} is active")

    @router.post("/apps/{appTag}/deactivate", openapi_extra=DEV_API, responses=e404,
                 response_model=models.GenericResponse)
    def deactivate_app(request: Request, appTag: str) -> JSONResponse:
        """Stop jobs from using this app version (runs already started are not affected)."""
        engine = _set_status(request, _resolve_app(request, appTag), False)
        return ok(request, f"app {engine.tag} is inactive")

    @router.get("/apps/{appTag}/status", openapi_extra=DEV_API, responses=e404,
                response_model=dm.AppStatusResponse)
    def app_status(request: Request, appTag: str) -> JSONResponse:
        """``message`` (and ByteNite Local's ``status``) is ``active`` or ``inactive``."""
        engine = _resolve_app(request, appTag)
        return JSONResponse({**_generic(request, engine.status), "status": engine.status})

    # -- engines --------------------------------------------------------------------------

    @router.get("/engines", openapi_extra=DEV_API, response_model=dm.EnginesResponse)
    def list_engines(request: Request, limit: Limit = None, offset: Offset = None,
                     order_by: OrderBy = None) -> JSONResponse:
        """Every partitioner and assembler, the built-in ``passthrough`` ones included."""
        registry = ctx_of(request).registry
        records = [engine_record(e) for kind in _ENGINE_KINDS for e in registry.engines(kind)]
        return JSONResponse({"engines": _page(records, _LIST_FIELDS, order_by, limit,
                                              offset)})

    @router.post("/engines", openapi_extra={**DEV_API, **_PUSH_BODY},
                 response_model=dm.EngineOut)
    def push_engine(request: Request,
                    body: Annotated[dict[str, Any], Body()]) -> JSONResponse:
        """Upload a partitioner or assembler folder (manifest ``type``); first push inactive."""
        data = body.get("data", body.get("engineData"))
        try:
            engine = dev_of(request).push(data, engines=True)
        except PushError as exc:
            raise bad_request(str(exc)) from None
        return JSONResponse(engine_record(engine))

    @router.get("/engines/{engineTag}", openapi_extra=DEV_API, responses=e404,
                response_model=dm.EngineOut)
    def get_engine(request: Request, engineTag: str,
                   engine_type: EngineType = None) -> JSONResponse:
        """The engine record (unwrapped, as ByteNite's SDK declares it)."""
        return JSONResponse(engine_record(_resolve(request, engineTag,
                                                   kinds_for(engine_type))))

    @router.get("/engines/{engineTag}/download", openapi_extra=DEV_API, responses=e404,
                response_model=dm.DownloadResponse)
    def download_engine(request: Request, engineTag: str,
                        engine_type: EngineType = None) -> JSONResponse:
        """The engine's folder, as ``GET /apps/{appTag}/download`` (built-in ``passthrough``
        has none: 400)."""
        return JSONResponse(_download(request, _resolve(request, engineTag,
                                                        kinds_for(engine_type))))

    @router.post("/engines/{engineTag}/activate", openapi_extra=DEV_API, responses=e404,
                 response_model=dm.EngineMessage)
    def activate_engine(request: Request, engineTag: str,
                        engine_type: EngineType = None) -> JSONResponse:
        """Let jobs use this engine version."""
        engine = _resolve(request, engineTag, kinds_for(engine_type))
        return JSONResponse(_engine_message(_set_status(request, engine, True)))

    @router.post("/engines/{engineTag}/deactivate", openapi_extra=DEV_API, responses=e404,
                 response_model=dm.EngineMessage)
    def deactivate_engine(request: Request, engineTag: str,
                          engine_type: EngineType = None) -> JSONResponse:
        """Stop jobs from using this engine version."""
        engine = _resolve(request, engineTag, kinds_for(engine_type))
        return JSONResponse(_engine_message(_set_status(request, engine, False)))

    @router.get("/engines/{engineTag}/status", openapi_extra=DEV_API, responses=e404,
                response_model=dm.EngineMessage)
    def engine_status(request: Request, engineTag: str,
                      engine_type: EngineType = None) -> JSONResponse:
        """``engineStatus`` is ``active`` or ``inactive``."""
        return JSONResponse(_engine_message(_resolve(request, engineTag,
                                                     kinds_for(engine_type))))

    # -- templates ------------------------------------------------------------------------

    @router.get("/templates", openapi_extra=DEV_API, response_model=dm.DevTemplatesResponse)
    def list_templates(request: Request, limit: Limit = None, offset: Offset = None,
                       order_by: OrderBy = None) -> JSONResponse:
        """Every job template."""
        records = [template_record(t) for t in ctx_of(request).registry.templates()]
        return JSONResponse({"templates": _page(records, _TEMPLATE_FIELDS, order_by, limit,
                                                offset)})

    @router.post("/templates", openapi_extra=DEV_API, response_model=dm.TemplatePushResponse)
    def push_template(request: Request,
                      body: Annotated[dict[str, Any], Body()]) -> JSONResponse:
        """Upload a job template (``bytenite template push``): the ``template.json`` object.
        Its app and engines need not exist yet; a job checks them when it runs."""
        try:
            template = dev_of(request).push_template(body)
        except PushError as exc:
            raise bad_request(str(exc)) from None
        return JSONResponse({**_generic(request, f"template {template.id} saved"),
                             "template": template_record(template)})

    @router.get("/templates/{templateId}", openapi_extra=DEV_API, responses=e404,
                response_model=dm.DevTemplateOut)
    def get_template(request: Request, templateId: str) -> JSONResponse:
        """One job template (unwrapped, as ByteNite's SDK declares it)."""
        try:
            template = ctx_of(request).registry.template(templateId)
        except RegistryError as exc:
            raise not_found(f"Template {templateId!r} not found: {exc}") from None
        return JSONResponse(template_record(template))

    # -- user cache (USER_CACHE_DIR) ------------------------------------------------------

    @router.get("/cache/upload-url", openapi_extra=DEV_API, response_model=dm.CacheUploadUrl,
                responses=error_responses(409))
    def cache_upload_url(request: Request, path: CachePath) -> JSONResponse:
        """Where to PUT a file for ``USER_CACHE_DIR/<path>`` (model weights, lookup tables):
        ``url`` takes the raw bytes with no auth header until ``expiresAt`` (one hour), each
        PUT replacing the file; jobs started afterwards see it."""
        ctx = ctx_of(request)
        try:
            checked = check_path(path)
            ctx.user_cache.check_writable(checked)
        except CacheError as exc:
            raise ApiError(exc.status, exc.message) from None
        token = secrets.token_urlsafe(24)
        expires_at = time.time() + ctx.config.cache_upload_ttl
        ctx.store.add_cache_upload(CacheUploadRow(token=token, path=checked,
                                                  expires_at=expires_at))
        expires = _dt.datetime.fromtimestamp(expires_at, _dt.timezone.utc)
        return JSONResponse({"url": f"{base_url(request)}/local/cache/{token}",
                             "method": "PUT", "path": checked,
                             "expiresAt": wire.format_timestamp(expires)})

    @router.get("/cache", openapi_extra={**DEV_API, **EXTENSION}, tags=["extension"],
                response_model=dm.CacheFilesResponse)
    def cache_files(request: Request) -> JSONResponse:
        """ByteNite Local extension: every file in ``USER_CACHE_DIR`` (uploaded or written
        by jobs), by path; ``size`` in bytes, ``modifiedAt`` RFC 3339."""
        return JSONResponse({"files": ctx_of(request).user_cache.files()})

    @router.delete("/cache/{path:path}", openapi_extra={**DEV_API, **EXTENSION},
                   tags=["extension"], response_model=models.GenericResponse, responses=e404)
    def delete_cache_file(request: Request, path: str) -> JSONResponse:
        """ByteNite Local extension: delete a file of ``USER_CACHE_DIR`` (or a folder, with
        everything in it). Jobs already running may still have it open."""
        try:
            count = ctx_of(request).user_cache.delete(check_path(path))
        except CacheError as exc:
            raise ApiError(exc.status, exc.message) from None
        files = "1 file" if count == 1 else f"{count} files"
        return ok(request, f"Deleted {path} from the user cache ({files})")

    return router


def _download(request: Request, engine: Engine) -> dict[str, Any]:
    try:
        archive = dev_of(request).archive(engine)
    except PushError as exc:
        raise bad_request(str(exc)) from None
    return {"data": base64.b64encode(archive).decode("ascii"), "tag": engine.tag,
            "hash": hashlib.sha256(archive).hexdigest()}


def _set_status(request: Request, engine: Engine, active: bool) -> Engine:
    try:
        return dev_of(request).set_status(engine, active)
    except PushError as exc:
        raise bad_request(str(exc)) from None


def _generic(request: Request, message: str) -> dict[str, Any]:
    """A successful ``GenericResponse`` body, for answers that add fields to it."""
    return {"ok": True, "requestId": request_id_of(request), "message": message,
            "error": None}
