"""``RequestIdMiddleware``: every HTTP request gets an id (``request.state.request_id``),
answered in the ``X-Request-Id`` header and in the body of every error. (The idle timeout's
middleware is in `idle`.)"""

from __future__ import annotations

import uuid

from starlette.datastructures import MutableHeaders
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
