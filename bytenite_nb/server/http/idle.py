"""Idle shutdown support: what counts as activity, and how long the server has been idle.

`Activity` counts the HTTP requests in flight (from the moment a request arrives until its
response has been completely sent, so an open ``/events`` stream or a download counts for as
long as it is open) and remembers when the last one ended. `ActivityMiddleware` feeds it. The
server is idle while no request is in flight and no job is running (see
`ServerContext.idle_seconds`); ``bytenite-nb serve --idle-timeout`` stops it after a while.
"""

from __future__ import annotations

import threading
import time

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["IDLE_MARKER", "Activity", "ActivityMiddleware", "idle_message"]


class Activity:
    """HTTP requests in flight and the (monotonic) time the server was last busy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._last = time.monotonic()

    @property
    def in_flight(self) -> int:
        """Requests received whose response has not been completely sent yet."""
        with self._lock:
            return self._in_flight

    def touch(self) -> None:
        """Count now as activity (e.g. the moment the server starts listening)."""
        with self._lock:
            self._last = time.monotonic()

    def begin(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._last = time.monotonic()

    def end(self) -> None:
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self._last = time.monotonic()

    def idle_seconds(self, busy_until: float | None = None) -> float:
        """Seconds since the last request ended (or ``busy_until``, if later: e.g. the end
        of the last job); 0 while a request is in flight."""
        now = time.monotonic()
        with self._lock:
            if self._in_flight:
                return 0.0
            last = self._last if busy_until is None else max(self._last, busy_until)
        return max(0.0, now - last)


class ActivityMiddleware:
    """Pure ASGI middleware: every HTTP request counts in `Activity` until the app has sent
    its whole response (or failed), however long a streamed body takes."""

    def __init__(self, app: ASGIApp, activity: Activity) -> None:
        self.app = app
        self.activity = activity

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.activity.begin()
        try:
            await self.app(scope, receive, send)
        finally:
            self.activity.end()


def idle_message(timeout: float) -> str:
    """The line the server logs when it stops for being idle."""
    return (f"ByteNite Local: idle for {timeout:g} s (no requests, no running jobs): "
            "stopping (--idle-timeout)")


#: What every idle-shutdown line contains (`LocalServer.stop_reason` looks for it in the log).
IDLE_MARKER = "stopping (--idle-timeout)"
