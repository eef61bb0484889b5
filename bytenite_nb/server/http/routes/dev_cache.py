"""Developer API user cache (``/v1/dev/cache``): files every job finds in ``USER_CACHE_DIR``.

``GET /cache/upload-url?path=`` is documented by ByteNite without a shape; ByteNite Local
answers ``{"url", "method": "PUT", "path", "expiresAt"}``, the URL being served by
`files` under ``/local/cache/{token}``. ``GET /cache`` (the files) and ``DELETE
/cache/{path}`` are ByteNite Local extensions. The files live in
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
from bytenite_nb.server.storage.user_cache import check_path

router = APIRouter(tags=["developer"])

CachePath = Annotated[str, Query(
    description="where the file goes inside USER_CACHE_DIR: relative, '/'-separated, e.g. "
                "models/w.bin (no leading '/', no '..', at most 1024 bytes)")]


@router.get("/cache/upload-url", openapi_extra=DEV_API, response_model=dm.CacheUploadUrl,
            responses=error_responses(409))
def cache_upload_url(request: Request, ctx: Ctx, path: CachePath) -> JSONResponse:
    """Where to PUT a file for ``USER_CACHE_DIR/<path>`` (model weights, lookup tables):
    ``url`` takes the raw bytes with no auth header until ``expiresAt`` (one hour), each
    PUT replacing the file; jobs started afterwards see it."""
    checked = check_path(path)
    ctx.user_cache.check_writable(checked)
    token = secrets.token_urlsafe(24)
    expires_at = time.time() + ctx.config.cache_upload_ttl
    ctx.store.add_cache_upload(CacheUploadRow(token=token, path=checked, expires_at=expires_at))
    expires = _dt.datetime.fromtimestamp(expires_at, _dt.timezone.utc)
    return JSONResponse({"url": f"{base_url(request)}/local/cache/{token}",
                         "method": "PUT", "path": checked,
                         "expiresAt": wire.format_timestamp(expires)})


@router.get("/cache", openapi_extra={**DEV_API, **EXTENSION}, tags=["extension"],
            response_model=dm.CacheFilesResponse)
def cache_files(ctx: Ctx) -> JSONResponse:
    """ByteNite Local extension: every file in ``USER_CACHE_DIR`` (uploaded or written
    by jobs), by path; ``size`` in bytes, ``modifiedAt`` RFC 3339."""
    return JSONResponse({"files": ctx.user_cache.files()})


@router.delete("/cache/{path:path}", openapi_extra={**DEV_API, **EXTENSION},
               tags=["extension"], response_model=models.GenericResponse,
               responses=error_responses(404))
def delete_cache_file(request: Request, ctx: Ctx, path: str) -> JSONResponse:
    """ByteNite Local extension: delete a file of ``USER_CACHE_DIR`` (or a folder, with
    everything in it). Jobs already running may still have it open."""
    count = ctx.user_cache.delete(check_path(path))
    files = "1 file" if count == 1 else f"{count} files"
    return ok(request, f"Deleted {path} from the user cache ({files})")
