"""ByteNite's error body for every error ByteNite Local returns, and the status of each kind.

Every error, whether raised by a route, by request validation, or by the router itself (unknown
path, wrong method), leaves as ``{"ok": false, "requestId", "message", "error": {"code",
"message", "description"}}`` with the HTTP status equal to ``error.code``. The layers below
raise the kinds of `bytenite_nb.server.errors` (and the user cache its `CacheError`);
`STATUS_OF` says which status each gets. Routes may also raise `ApiError` with a status
of their own.
"""

from __future__ import annotations

import json
import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bytenite_nb import wire
from bytenite_nb.server import errors
from bytenite_nb.server.http import models
from bytenite_nb.server.storage.user_cache import CacheError

log = logging.getLogger(__name__)

#: Descriptions ByteNite's OpenAPI document gives each status (those it documents; the others
#: in the same style).
STATUS_DESCRIPTIONS: dict[int, str] = {
    400: "Returned when the users sends a malformed request.",
    401: "Returned when the user is not authenticated.",
    403: "Returned when the user does not have permission to access the resource.",
    404: "Returned when the resource does not exist.",
    405: "Returned when the method is not allowed on this path.",
    409: "Returned when the resource already exists in a state that forbids the change.",
    410: "Returned when the resource is gone or the endpoint was retired.",
    413: "Returned when the request body is larger than the server accepts.",
    500: "Returned when an error on the server occurred.",
    503: "Returned when the resource is temporarily unavailable.",
}


#: The HTTP status of each kind of refusal the service and storage layers raise.
STATUS_OF: dict[type[errors.ServerError], int] = {
    errors.InvalidRequest: 400,
    errors.Unauthorized: 401,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Gone: 410,
    errors.TooLarge: 413,
    errors.Unavailable: 503,
}


def status_of(exc: errors.ServerError) -> int:
    """The status `STATUS_OF` gives ``exc``'s kind (or the nearest kind it derives from)."""
    for kind in type(exc).__mro__:
        if kind in STATUS_OF:
            return STATUS_OF[kind]
    return 500


class ApiError(Exception):
    """An error with an HTTP status and a user-facing message. Raise it from any route."""

    def __init__(self, status: int, message: str, *, description: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.description = description


def bad_request(message: str) -> ApiError:
    """400: the request itself is wrong (the message says how)."""
    return ApiError(400, message)


def not_found(message: str) -> ApiError:
    """404: the named resource does not exist."""
    return ApiError(404, message)


def request_id_of(request: Request) -> str:
    """The id the request-id middleware gave this request ("" if it never ran)."""
    return str(getattr(request.state, "request_id", "") or "")


def error_body(status: int, message: str, request_id: str, description: str | None = None) -> dict:
    """The GenericResponse-shaped error body."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {
        "ok": False,
        "requestId": request_id,
        "message": message,
        "error": {
            "code": str(status),
            "message": phrase,
            "description": description or STATUS_DESCRIPTIONS.get(status, phrase),
        },
    }


def error_response(request: Request, status: int, message: str,
                   description: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSONResponse carrying ByteNite's error body and the request id header."""
    rid = request_id_of(request)
    out_headers = {wire.REQUEST_ID_HEADER: rid} if rid else {}
    out_headers.update(headers or {})
    return JSONResponse(error_body(status, message, rid, description), status_code=status,
                        headers=out_headers)


def _malformed(body: Any) -> str | None:
    """Why ``body`` (raw bytes FastAPI did not parse, e.g. sent without a JSON content type)
    is not JSON, or None if it is JSON or absent."""
    if not isinstance(body, (bytes, bytearray)) or not body.strip():
        return None
    try:
        json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"Malformed JSON in request body: {exc}"
    return None


#: Errors that only say a value is not of some shape (a union's other branches).
_WRONG_SHAPE = frozenset({"model_type", "model_attributes_type", "dict_type", "string_type"})
#: What pydantic puts in an error's location for a branch of a union (``str``,
#: ``function-after[...]``, a model's name), which is no field name of the request.
_UNION_TAG = re.compile(r"str|int|float|bool|function-\w+\[.*\]|constrained-str|[A-Z]\w*")


def _describe_validation(exc: RequestValidationError) -> str:
    """One readable sentence per pydantic error, naming the offending field."""
    malformed = _malformed(getattr(exc, "body", None))
    if malformed:
        return malformed
    parts: list[str] = []
    found = list(exc.errors())
    # A body that may be one of several shapes (a raw string or an object) fails each; keep
    # what the value said about the shape it has, not that it is not the other shape.
    specific = [e for e in found if e.get("type") not in _WRONG_SHAPE]
    not_utf8 = [e for e in found if e.get("type") == models.NOT_UTF8]
    if not_utf8:  # (pydantic's own word for it on a plain string says less)
        return "Invalid request: " + str(not_utf8[0].get("msg"))
    for err in specific or found:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        kind = err.get("type", "")
        if kind == "json_invalid":
            detail = err.get("ctx", {}).get("error", "") if isinstance(err.get("ctx"), dict) else ""
            return f"Malformed JSON in request body{': ' + str(detail) if detail else ''}"
        loc = [part for part in loc if not _UNION_TAG.fullmatch(part)]
        where = ".".join(loc) if loc else "request body"
        msg = str(err.get("msg", "is invalid"))
        # pydantic prefixes custom ValueErrors with "Value error, ": drop the noise.
        msg = msg.removeprefix("Value error, ")
        if kind == "missing":
            parts.append(f"{where} is required")
        else:
            parts.append(f"{where}: {msg}")
    return "Invalid request: " + "; ".join(parts) if parts else "Invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Route every kind of failure through ByteNite's error body."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(request, exc.status, exc.message, exc.description)

    @app.exception_handler(errors.ServerError)
    async def _server_error(request: Request, exc: errors.ServerError) -> JSONResponse:
        return error_response(request, status_of(exc), exc.message)

    @app.exception_handler(CacheError)
    async def _cache_error(request: Request, exc: CacheError) -> JSONResponse:
        return error_response(request, exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(request, 400, _describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        if status == 404:
            message = f"No route {request.method} {request.url.path}"
        elif status == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        headers: dict[str, Any] = dict(exc.headers or {})
        return error_response(request, status, message, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, f"Internal error: {type(exc).__name__}: {exc}")
