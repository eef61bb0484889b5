"""ByteNite Local's unauthenticated file routes (``/local``), each addressed by an
unguessable token that is its credential: result links, the ``file`` data source's upload
target (``tempUrl``) and the user cache's upload URLs.

Uploads are streamed to disk as they arrive (never held in memory), capped at
``max_upload_bytes``, written aside and renamed into place, so a broken upload never leaves
half a file where a job would read it.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from bytenite_nb import wire
from bytenite_nb.server.errors import Gone, NotFound, TooLarge
from bytenite_nb.server.http import dev_models as dm
from bytenite_nb.server.http import models
from bytenite_nb.server.http.deps import Ctx, Jobs
from bytenite_nb.server.http.responses import EXTENSION, RAW_BODY, error_responses
from bytenite_nb.server.private import open_private

router = APIRouter(tags=["extension"])

_SAFE_FILENAME = re.compile(r"[^A-Za-z0-9._ +=,@()-]+")


@router.get("/results/{token}/{filename}", openapi_extra=EXTENSION,
            responses={200: {"description": "the result file",
                             "content": {"application/octet-stream": {}}},
                       **error_responses(404, 410)})
def result_file(jobs: Jobs, token: str, filename: str) -> FileResponse:
    """A job's result file (the ``link`` of ``GET /jobs/{jobId}/results``); no auth,
    the link's token is the credential. Gone after 48 hours."""
    row = jobs.result_file(token, filename)
    return FileResponse(row.path, filename=Path(row.name).name,
                        media_type="application/octet-stream")


@router.put("/uploads/{token}", response_model=models.UploadResponse,
            openapi_extra={**EXTENSION, **RAW_BODY}, responses=error_responses(400, 404, 413))
async def upload(request: Request, ctx: Ctx, jobs: Jobs, token: str,
                 content_disposition: Annotated[str | None, Header()] = None,
                 ) -> JSONResponse:
    """The ``tempUrl`` of a ``file`` data source: PUT the raw bytes (no auth header; the
    URL's token is the credential). Then ``PATCH /jobs/{jobId}/uploadcompleted``."""
    row = await run_in_threadpool(jobs.upload_target, token)
    limit = ctx.config.max_upload_bytes
    _refuse_declared_size(request, limit)
    folder = await run_in_threadpool(jobs.upload_folder, row.job_id)
    partial = folder / f".{uuid.uuid4().hex}.part"
    try:
        size = await receive_file(request, partial, limit)
        await run_in_threadpool(jobs.accept_upload, row.job_id, partial,
                                _filename(content_disposition), size)
    finally:
        partial.unlink(missing_ok=True)
    return JSONResponse({"ok": True, "size": wire.int64_out(size)})


@router.put("/cache/{token}", response_model=dm.CacheUploadResponse,
            openapi_extra={**EXTENSION, **RAW_BODY},
            responses=error_responses(400, 404, 409, 410, 413))
async def cache_upload(request: Request, ctx: Ctx, token: str) -> JSONResponse:
    """The ``url`` of ``GET /v1/dev/cache/upload-url``: PUT the raw bytes (no auth header;
    the URL's token is the credential, until ``expiresAt``; each PUT replaces the file).
    Jobs started afterwards find it at ``USER_CACHE_DIR/<path>`` (or ``SHARED_CACHE_DIR``,
    for a URL asked with ``shared=true``)."""
    row = await run_in_threadpool(ctx.store.cache_upload_by_token, token)
    if row is None:
        raise NotFound("No such cache upload URL: get one with GET "
                       "/v1/dev/cache/upload-url?path=...")
    if time.time() >= row.expires_at:
        raise Gone(f"This cache upload URL expired (they last {ctx.config.cache_upload_ttl:g} "
                   f"seconds): get a new one with GET /v1/dev/cache/upload-url?path={row.path}")
    limit = ctx.config.max_upload_bytes
    _refuse_declared_size(request, limit)
    cache = ctx.cache(row.scope == "shared")
    # Refuse before reading the body when a folder is in the way (and again at the end).
    await run_in_threadpool(cache.check_writable, row.path)
    partial = await run_in_threadpool(cache.partial)
    try:
        size = await receive_file(request, partial, limit)
        await run_in_threadpool(cache.install, partial, row.path)
    finally:
        partial.unlink(missing_ok=True)
    return JSONResponse({"ok": True, "path": row.path, "size": wire.int64_out(size)})


def _refuse_declared_size(request: Request, limit: int) -> None:
    """413 before reading anything when ``Content-Length`` already says the body is too big."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"Upload of {declared} bytes is larger than the {limit} byte limit")


async def receive_file(request: Request, partial: Path, limit: int) -> int:
    """Stream the request body into ``partial`` (created or truncated); returns its size.

    At most ``limit`` bytes: past that, a 413 (the caller removes ``partial``). Used by every
    upload target, so each stores its file the same way: written aside, then renamed into place.
    """
    size = 0
    with open_private(partial, "wb") as fh:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"Upload larger than the {limit} byte limit")
            # Disk writes off the event loop: a big upload must not stall other requests.
            await run_in_threadpool(fh.write, chunk)
    return size


def _filename(content_disposition: str | None) -> str:
    """The upload's file name from ``Content-Disposition`` (sanitised), else ``upload.bin``."""
    match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', content_disposition or "")
    name = Path(match.group(1)).name if match else ""
    name = _SAFE_FILENAME.sub("_", name).strip(". ")
    return name[:200] or "upload.bin"
