"""The ``GET /events`` stream: :class:`EventStream`, a resuming reader.

It iterates :class:`~bytenite_nb.api.decoding.Event` objects, reconnecting with backoff and
resuming after the last sequence number it saw (``?since=`` and ``Last-Event-ID``), and drops
the duplicates a resume can replay. Its neighbours: :mod:`~bytenite_nb.api.decoding` turns
raw bytes (NDJSON or SSE, any chunk split) into events, :mod:`~bytenite_nb.api.snapshot`
folds one job's events into its current state, and :mod:`~bytenite_nb.api.watcher` follows
one job on a daemon thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import requests

from bytenite_nb import wire
from bytenite_nb.api.decoding import Event, StreamDecoder, is_newer
from bytenite_nb.api.errors import APIConnectionError, APIError, APIStatusError

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api._http import Transport

__all__ = ["EventStream"]

log = logging.getLogger("bytenite_nb.api.events")


class EventStream(Iterator[Event]):
    """Iterate the events stream, reconnecting and resuming for as long as it is open.

    ``since`` resumes after that sequence number (``None``: from now). ``job_id`` keeps one
    job's events. Heartbeats are consumed silently unless ``include_heartbeats``. When no
    byte arrives for ``idle_timeout`` seconds the connection counts as dead and is replaced.
    Callbacks (run on the iterating thread): ``on_connect()`` after each successful connect,
    ``on_idle()`` after a silent spell, ``on_disconnect(exc)`` after a failure.

    ``close()`` (from any thread) ends the iteration. Client errors (4xx other than 401/408/
    429) are raised, since reconnecting cannot fix them; everything else is retried.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        since: str | int | None = None,
        job_id: str | None = None,
        include_heartbeats: bool = False,
        reconnect: bool = True,
        idle_timeout: float = 15.0,
        max_backoff: float = 10.0,
        on_connect: Callable[[], None] | None = None,
        on_idle: Callable[[], None] | None = None,
        on_disconnect: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._transport = transport
        self.last_seq: str | None = None if since is None else str(since)
        self.job_id = job_id
        self.include_heartbeats = include_heartbeats
        self.reconnect = reconnect
        self.idle_timeout = idle_timeout
        self.max_backoff = max_backoff
        self.on_connect = on_connect
        self.on_idle = on_idle
        self.on_disconnect = on_disconnect
        #: How many times a connection was established (1 after the first connect).
        self.connections = 0
        self._received = 0  # envelopes decoded so far, heartbeats apart
        self._heartbeats = 0
        self._closed = threading.Event()
        self._response: requests.Response | None = None
        self._lock = threading.Lock()
        self._gen = self._events()

    def __repr__(self) -> str:
        scope = f" job {self.job_id}" if self.job_id else ""
        return (
            f"<EventStream{scope} last_seq={self.last_seq} {'closed' if self.closed else 'open'}>"
        )

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        return next(self._gen)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop: the iteration ends (promptly, even if blocked in a read on another thread)."""
        self._closed.set()
        with self._lock:
            response = self._response
        if response is not None:
            # Closing a socket does not wake a thread blocked in recv() on it; shutting it
            # down does. Without this, close() waits for the next heartbeat to arrive.
            connection = getattr(response.raw, "_connection", None) or getattr(
                response.raw, "connection", None
            )
            sock = getattr(connection, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(Exception):
                response.close()

    def _connect(self) -> requests.Response:
        params: dict[str, str] = {}
        headers: dict[str, str] = {
            "Accept": "application/x-ndjson, text/event-stream, application/json"
        }
        if self.job_id is not None:
            params["jobId"] = self.job_id  # ByteNite Local filters server-side; we filter too
        if self.last_seq is not None:
            params["since"] = self.last_seq
            headers[wire.LAST_EVENT_ID_HEADER] = self.last_seq
        return self._transport.send(
            "GET",
            wire.CUSTOMER_PREFIX + "/events",
            params=params,
            headers=headers,
            stream=True,
            read_timeout=self.idle_timeout,
            retry=False,
        )

    def _events(self) -> Iterator[Event]:
        failures = 0
        while not self.closed:
            error: BaseException | None = None
            try:
                response = self._connect()
            except APIStatusError as exc:
                if 400 <= exc.status_code < 500 and exc.status_code not in (408, 429):
                    raise
                error = exc
            except APIConnectionError as exc:
                error = exc
            else:
                with self._lock:
                    self._response = response
                if self.closed:
                    response.close()
                    return
                self.connections += 1
                self._callback(self.on_connect)
                received, beats, opened = self._received, self._heartbeats, time.monotonic()
                try:
                    yield from self._read(response)
                except Exception as exc:
                    if self.closed:
                        # close() from another thread pulls the socket out from under the
                        # read, which surfaces as anything from OSError to AttributeError
                        # inside http.client: that is the requested stop, not a failure.
                        return
                    if not isinstance(exc, (requests.RequestException, OSError, ValueError)):
                        raise
                    if _is_read_timeout(exc):
                        self._callback(self.on_idle)
                    else:
                        error = exc
                finally:
                    with self._lock:
                        self._response = None
                    response.close()
                # A connection that delivered events, or stayed up with heartbeats, was
                # healthy. One that ended at once with nothing counts as a failure, so a server
                # or proxy that closes streams early is retried with backoff, not in a loop.
                if self._received > received or (
                    self._heartbeats > beats and time.monotonic() - opened >= 1.0
                ):
                    failures = 0
                elif error is None:
                    failures += 1
            if self.closed:
                return
            if error is not None:
                failures += 1
                log.debug("events stream interrupted (%s); reconnecting", type(error).__name__)
                self._callback(self.on_disconnect, error)
            if not self.reconnect:
                if error is not None and isinstance(error, APIError):
                    raise error
                return
            # Reconnect at once after a healthy connection ends, with backoff after failures.
            if failures:
                delay = min(self.max_backoff, 0.25 * 2 ** (failures - 1)) * (
                    0.5 + random.random() / 2
                )
                if self._closed.wait(delay):
                    return

    def _read(self, response: requests.Response) -> Iterator[Event]:
        decoder = StreamDecoder()
        # chunk_size=None hands over bytes as they arrive; iter_lines would mangle CRLF splits.
        for chunk in response.iter_content(chunk_size=None):
            envelopes = decoder.feed(chunk)
            for envelope in envelopes:
                self._count(envelope)
                event = self._accept(envelope)
                if event is not None:
                    yield event
        for envelope in decoder.flush():
            self._count(envelope)
            event = self._accept(envelope)
            if event is not None:
                yield event

    def _count(self, envelope: dict[str, Any]) -> None:
        result = envelope.get("result")
        if isinstance(result, dict) and result.get("event") == wire.EVENT_HEARTBEAT:
            self._heartbeats += 1
        else:
            self._received += 1

    def _accept(self, envelope: dict[str, Any]) -> Event | None:
        if "error" in envelope and envelope.get("result") is None:
            log.warning("events stream reported an error: %s", _short(envelope.get("error")))
            return None
        event = Event.from_envelope(envelope)
        if event is None:
            return None
        if event.name == wire.EVENT_HEARTBEAT:
            # A heartbeat carries the stream's resume point (the last seq it has passed, which
            # may be another job's event): remember it, never treat it as a duplicate.
            if event.seq is not None and is_newer(event.seq, self.last_seq):
                self.last_seq = event.seq
            return event if self.include_heartbeats else None
        if event.seq is not None:
            if not is_newer(event.seq, self.last_seq):
                return None  # replayed after a resume: already delivered
            self.last_seq = event.seq
        if self.job_id is not None and event.job_id != self.job_id:
            return None
        return event

    @staticmethod
    def _callback(fn: Callable[..., None] | None, *args: Any) -> None:
        if fn is None:
            return
        try:
            fn(*args)
        except Exception:  # a faulty observer must not break the stream
            log.exception("events stream callback failed")


def _is_read_timeout(exc: BaseException) -> bool:
    from urllib3.exceptions import ReadTimeoutError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ReadTimeoutError, requests.ReadTimeout, TimeoutError)):
            return True
        inner = (
            current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        )
        current = inner or current.__cause__ or current.__context__
    return False


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 200 else text[:200] + "..."
