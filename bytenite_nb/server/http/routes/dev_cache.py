"""Developer API caches (``/v1/dev/cache``): files every job finds in ``USER_CACHE_DIR``, or
with ``shared=true`` in ``SHARED_CACHE_DIR`` (read-only for jobs).

``GET /cache/upload-url?path=`` is documented by ByteNite without a shape; ByteNite Local
answers ``{"url", "method": "PUT", "path", "expiresAt"}``, the URL being served by
`files` under ``/local/cache/{token}``. ``GET /cache`` (the files), ``DELETE /cache/{path}``
and ``shared`` are ByteNite Local extensions. The files live in
`bytenite_nb.server.storage.user_cache`.
"""

from __future__ import annotations

import datetime as _dt
import secrets
import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from bytenite_nb import wire
from bytenite_nb.server.http import dev_models as dm
from bytenite_nb.server.http import models
from bytenite_nb.server.http.deps import Ctx
from bytenite_nb.server.http.responses import (
    DEV_API,
    EXTENSION,
    base_url,
    error_responses,
    ok,
)
from bytenite_nb.server.storage.records import CacheUploadRow

router = APIRouter(tags=["developer"])

CachePath = Annotated[str, Query(
    description="where the file goes inside USER_CACHE_DIR: relative, '/'-separated, e.g. "
                "models/w.bin (no leading '/', no '..', at most 1024 bytes)")]
Shared = Annotated[bool, Query(
    description="ByteNite Local extension: the shared cache (SHARED_CACHE_DIR, read-only "
                "for jobs) instead of the user cache")]


@router.get("/cache/upload-url", openapi_extra=DEV_API, response_model=dm.CacheUploadUrl,
            responses=error_responses(409))
def cache_upload_url(request: Request, ctx: Ctx, path: CachePath,
                     shared: Shared = False) -> JSONResponse:
    """Where to PUT a file for ``USER_CACHE_DIR/<path>`` (model weights, lookup tables;
    ``shared=true``: ``SHARED_CACHE_DIR/<path>``): ``url`` takes the raw bytes with no auth
    header until ``expiresAt`` (one hour), each PUT replacing the file; jobs started
    afterwards see it."""
    cache = ctx.cache(shared)
    checked = cache.check(path)
    cache.check_writable(checked)
    token = secrets.token_urlsafe(24)
    expires_at = time.time() + ctx.config.cache_upload_ttl
    ctx.store.add_cache_upload(CacheUploadRow(token=token, path=checked, expires_at=expires_at,
                                              scope="shared" if shared else "user"))
    expires = _dt.datetime.fromtimestamp(expires_at, _dt.timezone.utc)
    return JSONResponse({"url": f"{base_url(request)}/local/cache/{token}",
                         "method": "PUT", "path": checked,
                         "expiresAt": wire.format_timestamp(expires)})


@router.get("/cache", openapi_extra={**DEV_API, **EXTENSION}, tags=["extension"],
            response_model=dm.CacheFilesResponse)
def cache_files(ctx: Ctx, shared: Shared = False) -> JSONResponse:
    """ByteNite Local extension: every file in ``USER_CACHE_DIR`` (uploaded or written
    by jobs; ``shared=true``: in ``SHARED_CACHE_DIR``), by path; ``size`` in bytes,
    ``modifiedAt`` RFC 3339."""
    return JSONResponse({"files": ctx.cache(shared).files()})


@router.delete("/cache/{path:path}", openapi_extra={**DEV_API, **EXTENSION},
               tags=["extension"], response_model=models.GenericResponse,
               responses=error_responses(404))
def delete_cache_file(request: Request, ctx: Ctx, path: str,
                      shared: Shared = False) -> JSONResponse:
    """ByteNite Local extension: delete a file of ``USER_CACHE_DIR`` (``shared=true``: of
    ``SHARED_CACHE_DIR``), or a folder with everything in it. Jobs already running may still
    have it open."""
    cache = ctx.cache(shared)
    count = cache.delete(cache.check(path))
    files = "1 file" if count == 1 else f"{count} files"
    return ok(request, f"Deleted {path} from the {cache.label} ({files})")
