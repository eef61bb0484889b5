"""``create_app(config)``: the ByteNite Local FastAPI application.

Routes: ``/v1/auth`` (token exchange, info, the user's secrets), the Customer API under
``/v1/customer`` and ``/v1/computing`` (see `customer`), ByteNite's Developer API subset under
``/v1/dev`` (see `dev`), and ByteNite Local's unauthenticated file routes under ``/local``
(result links, the ``file`` upload target and the user cache's upload URLs, all addressed by
unguessable tokens).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bytenite_nb import __version__, wire
from bytenite_nb.server.config import ServerConfig
from bytenite_nb.server.context import ServerContext
from bytenite_nb.server.execution import secrets as usersecrets
from bytenite_nb.server.http import dev_models as dm
from bytenite_nb.server.http import models
from bytenite_nb.server.http.errors import (
    ApiError,
    bad_request,
    install_error_handlers,
    not_found,
    request_id_of,
)
from bytenite_nb.server.http.idle import ActivityMiddleware
from bytenite_nb.server.http.routes.jobs import (
    EXTENSION,
    build_router,
    ctx_of,
    error_responses,
    ok,
    require_token,
)
from bytenite_nb.server.http.routes.dev_apps import build_dev_router
from bytenite_nb.server.storage.user_cache import CacheError

_SAFE_FILENAME = re.compile(r"[^A-Za-z0-9._ +=,@()-]+")


class RequestIdMiddleware:
    """Gives every HTTP request an id (``request.state.request_id``, ``X-Request-Id``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if wire.REQUEST_ID_HEADER not in headers:
                    headers.append(wire.REQUEST_ID_HEADER, request_id)
            await send(message)

        await self.app(scope, receive, send_with_id)


def _auth_router() -> APIRouter:
    router = APIRouter(tags=["auth"])

    @router.post("/access_token", response_model=models.AccessTokenResponse,
                 responses=error_responses(400, 401))
    def access_token(request: Request, body: models.AccessTokenRequest) -> JSONResponse:
        """Exchange an API key for an access token (``expiresIn`` seconds)."""
        token, ttl = ctx_of(request).auth.issue(body.api_key)
        return JSONResponse({"token": token, "expiresIn": wire.int64_out(ttl), "scope": "openid"})

    @router.get("/info", response_model=models.InfoResponse)
    def auth_info() -> JSONResponse:
        """Auth service version."""
        major, minor = [*__version__.split("."), "0"][:2]
        return JSONResponse({"version": {"major": major, "minor": minor,
                                         "tag": f"bytenite-local-{__version__}"}})

    return router


def _secret_type(value: str) -> str:
    """The canonical secretType (``s3`` → ``aws``), or a 400 naming the accepted ones."""
    try:
        return wire.secret_type(value)
    except ValueError as exc:
        raise bad_request(str(exc)) from None


def _secrets_router() -> APIRouter:
    """``/v1/auth/secrets``: the user's secrets (see `usersecrets`); the key is write-only."""
    router = APIRouter(tags=["auth"], dependencies=[Depends(require_token)],
                       responses=error_responses(400, 401))

    @router.get("/secrets", response_model=models.SecretsResponse)
    def list_secrets(
        request: Request,
        secret_type: Annotated[str | None, Query(alias="secretType")] = None,
    ) -> JSONResponse:
        """Your secrets (of one ``secretType``, if given), oldest first, without their keys."""
        kind = _secret_type(secret_type) if secret_type else None
        rows = ctx_of(request).store.secrets(kind)
        return JSONResponse({"secrets": [row.record() for row in rows]})

    @router.post("/secrets", response_model=models.SaveSecretResponse)
    def save_secret(request: Request, body: models.SaveSecretRequest) -> JSONResponse:
        """Save a secret; the same ``(secretType, id)`` again replaces it. Apps read it from
        ``SECRETS``, and as ``<id>`` / ``<id>_ACCESS_KEY`` + ``<id>_SECRET_KEY`` when their
        manifest lists the id in ``platform_config.secrets``."""
        secret = body.secret
        try:
            record = usersecrets.validate_secret(
                secret_id=secret.id, secret_type=secret.secret_type,
                access_key=secret.access_key, secret_key=body.secret_key,
                expires_at=secret.expires_at, params=secret.params, name=secret.name)
        except usersecrets.SecretError as exc:
            raise bad_request(str(exc)) from None
        replaced = ctx_of(request).store.save_secret(record)
        verb = "replaced" if replaced else "saved"
        return JSONResponse({
            "ok": True, "requestId": request_id_of(request),
            "message": f"Secret {record['id']} ({record['secretType']}) {verb}",
            "error": None, "id": record["id"]})

    @router.delete("/secrets/{secretType}/{id}", response_model=models.GenericResponse,
                   responses=error_responses(404))
    def delete_secret(request: Request, secretType: str, id: str) -> JSONResponse:
        """Delete a secret (jobs started afterwards no longer get it)."""
        kind = _secret_type(secretType)
        if not ctx_of(request).store.delete_secret(kind, id):
            raise not_found(f"No {kind} secret with id {id[:140]!r}: GET /v1/auth/secrets "
                            "lists your secrets")
        return ok(request, f"Secret {id} ({kind}) deleted")

    return router


def _local_router() -> APIRouter:
    router = APIRouter(tags=["extension"])

    @router.get("/results/{token}/{filename}", openapi_extra=EXTENSION,
                responses={200: {"description": "the result file",
                                 "content": {"application/octet-stream": {}}},
                           **error_responses(404, 410)})
    def result_file(request: Request, token: str, filename: str) -> FileResponse:
        """A job's result file (the ``link`` of ``GET /jobs/{jobId}/results``); no auth,
        the link's token is the credential. Gone after 48 hours."""
        row = ctx_of(request).store.result_by_token(token)
        if row is not None and time.time() >= row.expires_at:
            Path(row.path).unlink(missing_ok=True)
            raise ApiError(410, "This result link expired (result files are kept 48 hours)")
        if row is None or not Path(row.path).is_file():
            raise not_found("No such result file (the link is wrong or the job was deleted)")
        return FileResponse(row.path, filename=Path(row.name).name,
                            media_type="application/octet-stream")

    @router.put("/uploads/{token}", response_model=models.UploadResponse,
                openapi_extra={**EXTENSION, "requestBody": {
                    "content": {"application/octet-stream": {"schema": {
                        "type": "string", "format": "binary"}}}}},
                responses=error_responses(400, 404, 413))
    async def upload(request: Request, token: str,
                     content_disposition: Annotated[str | None, Header()] = None,
                     ) -> JSONResponse:
        """The ``tempUrl`` of a ``file`` data source: PUT the raw bytes (no auth header; the
        URL's token is the credential). Then ``PATCH /jobs/{jobId}/uploadcompleted``."""
        ctx = ctx_of(request)
        row = await run_in_threadpool(ctx.store.upload_by_token, token)
        if row is None:
            raise not_found("No such upload target")
        job = await run_in_threadpool(ctx.store.get_job, row.job_id)
        if job is None:
            raise not_found("No such upload target")
        if job["state"] != wire.JobState.NEW.value:
            raise bad_request(f"Job {row.job_id} is in state {job['state']}; uploads are only "
                              f"accepted while {wire.JobState.NEW.value}")
        limit = ctx.config.max_upload_bytes
        _refuse_declared_size(request, limit)
        folder = ctx.runner.job_dir(row.job_id) / "upload"
        folder.mkdir(parents=True, exist_ok=True)
        name = _filename(content_disposition)
        partial = folder / f".{uuid.uuid4().hex}.part"
        try:
            size = await receive_file(request, partial, limit)
            for old in folder.iterdir():
                if old != partial and not old.name.startswith("."):
                    old.unlink(missing_ok=True)
            final = folder / name
            os.replace(partial, final)
        finally:
            partial.unlink(missing_ok=True)
        await run_in_threadpool(ctx.store.set_upload, row.job_id, size=size, path=str(final),
                                completed=False)
        return JSONResponse({"ok": True, "size": wire.int64_out(size)})

    @router.put("/cache/{token}", response_model=dm.CacheUploadResponse,
                openapi_extra={**EXTENSION, "requestBody": {
                    "content": {"application/octet-stream": {"schema": {
                        "type": "string", "format": "binary"}}}}},
                responses=error_responses(400, 404, 409, 410, 413))
    async def cache_upload(request: Request, token: str) -> JSONResponse:
        """The ``url`` of ``GET /v1/dev/cache/upload-url``: PUT the raw bytes (no auth header;
        the URL's token is the credential, until ``expiresAt``; each PUT replaces the file).
        Jobs started afterwards find it at ``USER_CACHE_DIR/<path>``."""
        ctx = ctx_of(request)
        row = await run_in_threadpool(ctx.store.cache_upload_by_token, token)
        if row is None:
            raise not_found("No such cache upload URL: get one with GET "
                            "/v1/dev/cache/upload-url?path=...")
        if time.time() >= row.expires_at:
            raise ApiError(410, "This cache upload URL expired (they last "
                                f"{ctx.config.cache_upload_ttl:g} seconds): get a new one with "
                                f"GET /v1/dev/cache/upload-url?path={row.path}")
        limit = ctx.config.max_upload_bytes
        _refuse_declared_size(request, limit)
        cache = ctx.user_cache
        try:
            # Refuse before reading the body when a folder is in the way (and again at the end).
            await run_in_threadpool(cache.check_writable, row.path)
            partial = await run_in_threadpool(cache.partial)
            try:
                size = await receive_file(request, partial, limit)
                await run_in_threadpool(cache.install, partial, row.path)
            finally:
                partial.unlink(missing_ok=True)
        except CacheError as exc:
            raise ApiError(exc.status, exc.message) from None
        return JSONResponse({"ok": True, "path": row.path, "size": wire.int64_out(size)})

    return router


def _refuse_declared_size(request: Request, limit: int) -> None:
    """413 before reading anything when ``Content-Length`` already says the body is too big."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"Upload of {declared} bytes is larger than the {limit} byte limit")


async def receive_file(request: Request, partial: Path, limit: int) -> int:
    """Stream the request body into ``partial`` (created or truncated); returns its size.

    At most ``limit`` bytes: past that, a 413 (the caller removes ``partial``). Used by every
    upload target, so each stores its file the same way: written aside, then renamed into place.
    """
    size = 0
    with open(partial, "wb") as fh:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"Upload larger than the {limit} byte limit")
            # Disk writes off the event loop: a big upload must not stall other requests.
            await run_in_threadpool(fh.write, chunk)
    return size


def _filename(content_disposition: str | None) -> str:
    """The upload's file name from ``Content-Disposition`` (sanitised), else ``upload.bin``."""
    match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', content_disposition or "")
    name = Path(match.group(1)).name if match else ""
    name = _SAFE_FILENAME.sub("_", name).strip(". ")
    return name[:200] or "upload.bin"


def _tidy_openapi(app: FastAPI) -> None:
    """Validation errors answer 400 in ByteNite's shape, so drop FastAPI's 422 entries."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        for item in schema.get("paths", {}).values():
            for op in item.values():
                if isinstance(op, dict):
                    op.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(config: ServerConfig, ctx: ServerContext | None = None) -> FastAPI:
    """Build the app for ``config`` (opening its data dir unless ``ctx`` is given).

    The caller owns the context: ``app.state.ctx.close()`` when the server stops.
    """
    ctx = ctx or ServerContext.open(config)
    app = FastAPI(
        title="ByteNite Local",
        version=__version__,
        description="The ByteNite Customer API, served and executed locally. Operations "
                    "tagged 'extension' (x-bytenite-local-extension) are ByteNite Local's own.",
    )
    app.state.ctx = ctx
    app.add_middleware(RequestIdMiddleware)
    # Added last, so outermost: a request counts from arrival until fully sent (idle timeout).
    app.add_middleware(ActivityMiddleware, activity=ctx.activity)
    install_error_handlers(app)
    app.include_router(_auth_router(), prefix=wire.AUTH_PREFIX)
    app.include_router(_secrets_router(), prefix=wire.AUTH_PREFIX)
    customer = build_router()
    app.include_router(customer, prefix=wire.CUSTOMER_PREFIX)
    app.include_router(customer, prefix=wire.COMPUTING_PREFIX)
    app.include_router(build_dev_router(), prefix=wire.DEV_PREFIX)
    app.include_router(_local_router(), prefix="/local")
    _tidy_openapi(app)
    return app


__all__ = ["ApiError", "RequestIdMiddleware", "create_app"]
