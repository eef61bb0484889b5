"""ByteNite Local's own ASGI middleware: ``RequestIdMiddleware`` (every HTTP request gets an id,
``request.state.request_id``, answered in the ``X-Request-Id`` header and in the body of every
error) and ``BodyLimitMiddleware`` (request bodies past the server's cap are a 413). (The idle
timeout's middleware is in `idle`.)"""

from __future__ import annotations

import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bytenite_nb import wire


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


#: Methods whose routes read no body (passed through untouched: the common, fast case).
_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


class BodyLimitMiddleware:
    """Refuses a request body larger than ``limit`` bytes with a 413, before the route (or
    FastAPI's JSON parsing) holds it: a declared ``Content-Length`` is checked before anything
    is read, and a body without one is counted as it arrives.

    ``exempt``: path prefixes (with their method) whose routes stream their body under a cap
    of their own (the upload targets) or decode it under ``max_upload_bytes`` (the Developer
    API's pushes).
    """

    def __init__(self, app: ASGIApp, limit: int,
                 exempt: tuple[tuple[str, str], ...] = ()) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt

    def _exempt(self, scope: Scope) -> bool:
        path, method = scope.get("path", ""), scope.get("method", "")
        return any(method == m and path.startswith(prefix) for m, prefix in self.exempt)

    def _too_large(self, size: str) -> HTTPException:
        return HTTPException(413, f"Request body of {size} is larger than the {self.limit} "
                                  "byte limit of this server (serve --max-request-bytes): send "
                                  "less, e.g. a data source instead of data inline in params")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope.get("method") in _NO_BODY
                or self._exempt(scope)):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            too_large = self._too_large(f"{declared} bytes")

            async def refuse() -> Message:  # raised where the route reads its body
                raise too_large

            await self.app(scope, refuse, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise self._too_large(f"more than {self.limit} bytes")
            return message

        await self.app(scope, counted, send)
