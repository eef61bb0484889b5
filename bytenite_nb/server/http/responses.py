"""Response pieces every route module shares: success bodies, OpenAPI markers and error
entries, links back to this server, version info and jobs rendered as protojson."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import JSONResponse

from bytenite_nb import __version__
from bytenite_nb.server.http import models, protojson
from bytenite_nb.server.http.errors import STATUS_DESCRIPTIONS, request_id_of
from bytenite_nb.server.service.jobs import JobService
from bytenite_nb.server.storage.records import StoredJob

#: OpenAPI marker of what ByteNite Local offers beyond ByteNite's API.
EXTENSION = {"x-bytenite-local-extension": True}
#: OpenAPI marker on every Developer API operation.
DEV_API = {"x-bytenite-api": "developer"}
#: OpenAPI request body of the raw-bytes upload targets.
RAW_BODY = {"requestBody": {"content": {"application/octet-stream": {"schema": {
    "type": "string", "format": "binary"}}}}}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses, all in ByteNite's error shape."""
    return {code: {"model": models.GenericResponse, "description": STATUS_DESCRIPTIONS[code]}
            for code in codes}


def generic(request: Request, message: str = "") -> dict[str, Any]:
    """A successful ``GenericResponse`` body, for answers that add fields to it."""
    return {"ok": True, "requestId": request_id_of(request), "message": message,
            "error": None}


def ok(request: Request, message: str = "") -> JSONResponse:
    """A successful ``GenericResponse``."""
    return JSONResponse(generic(request, message))


def version_info(server: str | None = None) -> dict[str, Any]:
    """The ``/info`` body: this package's version (and a server message, when given)."""
    major, minor = [*__version__.split("."), "0"][:2]
    out: dict[str, Any] = {"version": {"major": major, "minor": minor,
                                       "tag": f"bytenite-local-{__version__}"}}
    if server is not None:
        out["messages"] = {"server": server}
    return out


def base_url(request: Request) -> str:
    """The root URL this client reached us at (for links it can follow back)."""
    return str(request.base_url).rstrip("/")


def upload_url(request: Request, token: str) -> str:
    """The ``tempUrl`` of a ``file`` job's upload target."""
    return f"{base_url(request)}/local/uploads/{token}"


def result_link(request: Request, token: str, name: str) -> str:
    """The unauthenticated link of a result file (its last path part names the download)."""
    return f"{base_url(request)}/local/results/{token}/{quote(name.rsplit('/', 1)[-1], safe='')}"


def job_dict(request: Request, jobs: JobService, job: StoredJob) -> dict[str, Any]:
    """A protojson ``Job`` with the upload target filled in for ``file`` sources."""
    token = jobs.upload_token(job)
    return protojson.job_out(job, temp_url=upload_url(request, token) if token else None)


def job_response(request: Request, jobs: JobService, job: StoredJob) -> JSONResponse:
    """A ``JobResponse`` with the upload target filled in for ``file`` sources."""
    token = jobs.upload_token(job)
    return JSONResponse(protojson.job_response(
        job, temp_url=upload_url(request, token) if token else None))


def json_text(value: Any) -> str:
    """``value`` encoded as `JSONResponse` encodes it."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


#: OpenAPI request body of the Developer API's folder pushes (``POST /apps``, ``/engines``).
PUSH_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["data"],
    "properties": {"data": {"type": "string", "format": "byte",
                            "description": "base64 of a tar (or tar.gz) of the folder's "
                                           "contents: manifest.json, app/, template.json, "
                                           "schema.json"}}}}}}}
