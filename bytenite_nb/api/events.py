"""The ``GET /events`` stream: decoder, resuming reader, per-job reducer and watcher.

- :func:`decode_events` / :class:`StreamDecoder` turn raw bytes into event envelopes. They
  accept NDJSON (grpc-gateway's one ``{"result": ...}`` object per line, ByteNite's format)
  and SSE framing (``id:``/``event:``/``data:`` fields, blank-line dispatch), with ``\\n``,
  ``\\r\\n`` or ``\\r`` line ends, however the bytes are split into chunks.
- :class:`EventStream` iterates :class:`Event` objects, reconnecting with backoff and
  resuming after the last sequence number it saw (``?since=`` and ``Last-Event-ID``), and
  dropping the duplicates a resume can replay.
- :class:`JobSnapshot` folds one job's events (and polled job/task records) into its current
  state; it never moves backwards, so a stale poll cannot undo a newer event.
- :class:`JobWatcher` runs all of that on a daemon thread, polling when the stream is silent
  or absent, and calls ``on_update(snapshot)`` after every change and once at the end.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import logging
import random
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests

from bytenite_nb import wire
from bytenite_nb.api.errors import APIConnectionError, APIError, APIStatusError, NotFoundError
from bytenite_nb.api.models import LogEntry, TaskInfo, opt_int, opt_str, parse_enum, parse_ts

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api._http import Transport
    from bytenite_nb.api.client import Client
    from bytenite_nb.api.jobs import Job

__all__ = [
    "Event",
    "EventStream",
    "JobSnapshot",
    "JobWatcher",
    "StreamDecoder",
    "decode_events",
]

log = logging.getLogger("bytenite_nb.api.events")

_TERMINATOR = re.compile(rb"[\r\n]")


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


class StreamDecoder:
    """Incremental decoder: :meth:`feed` bytes as they arrive, :meth:`flush` at the end.

    Yields envelopes (``{"result": {"event", "data"}}`` or ``{"error": ...}``). SSE events are
    wrapped into the same envelope, with the SSE ``id`` kept as ``envelope["id"]``. Lines that
    are not valid JSON are logged and skipped.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        data = self._buf + chunk if self._buf else bytes(chunk)
        start = 0
        size = len(data)
        while True:
            match = _TERMINATOR.search(data, start)
            if match is None:
                break
            end = match.start()
            if data[end] == 0x0D:  # \r: a lone CR ends a line, unless \n follows (CRLF)
                if end + 1 == size:
                    break  # undecidable until the next chunk arrives
                nxt = end + 2 if data[end + 1] == 0x0A else end + 1
            else:
                nxt = end + 1
            self._line(data[start:end], out)
            start = nxt
        self._buf = data[start:]
        return out

    def flush(self) -> list[dict[str, Any]]:
        """End of stream: decode a last unterminated line and dispatch a pending SSE event."""
        out: list[dict[str, Any]] = []
        rest, self._buf = self._buf, b""
        if rest.endswith(b"\r"):
            rest = rest[:-1]
        if rest:
            self._line(rest, out)
        self._dispatch(out)
        return out

    def _line(self, raw: bytes, out: list[dict[str, Any]]) -> None:
        text = raw.decode("utf-8", errors="replace")
        if not text.strip():
            self._dispatch(out)
            return
        if not self._data and text.lstrip().startswith("{"):
            self._emit_json(text, out)
            return
        if text.startswith(":"):
            return  # SSE comment (keep-alive)
        name, _, value = text.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value

    def _dispatch(self, out: list[dict[str, Any]]) -> None:
        if self._data:
            self._emit_json("\n".join(self._data), out, sse_event=self._event, sse_id=self._id)
        self._data, self._event, self._id = [], None, None

    @staticmethod
    def _emit_json(
        text: str,
        out: list[dict[str, Any]],
        *,
        sse_event: str | None = None,
        sse_id: str | None = None,
    ) -> None:
        try:
            obj = json.loads(text)
        except ValueError:
            log.warning("skipping an undecodable event line (%d characters)", len(text))
            return
        if not isinstance(obj, dict):
            return
        if "result" not in obj and "error" not in obj:
            # SSE carrying the bare event (no grpc-gateway wrapper).
            if "event" in obj and "data" in obj:
                obj = {"result": obj}
            else:
                obj = {"result": {"event": sse_event or "message", "data": obj}}
        if sse_id is not None:
            obj.setdefault("id", sse_id)
        out.append(obj)


def decode_events(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """Decode an iterable of byte chunks (any split) into event envelopes."""
    decoder = StreamDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.flush()


@dataclass(frozen=True)
class Event:
    """One event: its ``name`` (``wire.EVENT_*``), ``data`` payload, ``seq`` and ``job_id``."""

    name: str
    data: dict[str, Any]
    seq: str | None = None
    job_id: str | None = None

    @classmethod
    def from_envelope(cls, envelope: dict[str, Any]) -> Event | None:
        """``{"result": {"event", "data"}}`` -> Event; ``None`` for errors and junk."""
        result = envelope.get("result")
        if not isinstance(result, dict):
            return None
        name = result.get("event")
        data = result.get("data")
        if not isinstance(data, dict):
            data = {} if data is None else {"value": data}
        if not isinstance(name, str):
            name = ""
        # ByteNite Local puts ``seq`` beside ``event``; accept it inside ``data`` or as the SSE id.
        seq = result.get("seq")
        if seq is None or seq == "":
            seq = data.get("seq", envelope.get("id"))
        return cls(
            name=name,
            data=data,
            seq=None if seq is None or seq == "" else str(seq),
            job_id=opt_str(data.get("jobId") or data.get("job_id")),
        )

    @property
    def seq_number(self) -> int | None:
        return opt_int(self.seq)

    @property
    def timestamp(self) -> dt.datetime | None:
        return parse_ts(self.data.get("timestamp"))


def _is_newer(seq: str | None, last: str | None) -> bool:
    """Whether ``seq`` comes after ``last`` (numeric when both are numbers)."""
    if seq is None or last is None:
        return True
    a, b = opt_int(seq), opt_int(last)
    if a is not None and b is not None:
        return a > b
    return seq != last


# --------------------------------------------------------------------------------------------
# The resuming stream reader
# --------------------------------------------------------------------------------------------


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
            if event.seq is not None and _is_newer(event.seq, self.last_seq):
                self.last_seq = event.seq
            return event if self.include_heartbeats else None
        if event.seq is not None:
            if not _is_newer(event.seq, self.last_seq):
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


# --------------------------------------------------------------------------------------------
# The per-job reducer
# --------------------------------------------------------------------------------------------

#: Human-readable stage per job state.
STAGES: dict[wire.JobState, str] = {
    wire.JobState.UNKNOWN: "unknown",
    wire.JobState.NEW: "draft",
    wire.JobState.STARTED: "starting",
    wire.JobState.UPLOADING: "fetching input",
    wire.JobState.PARTITIONING: "partitioning",
    wire.JobState.PARTITIONED: "running tasks",
    wire.JobState.TASKS_COMPLETED: "tasks completed",
    wire.JobState.MERGING: "assembling",
    wire.JobState.MERGED: "assembled",
    wire.JobState.DOWNLOADING: "saving results",
    wire.JobState.COMPLETE: "complete",
    wire.JobState.FAILED: "failed",
}

_STATE_RANK = {state: i for i, state in enumerate(wire.JOB_STATE_ORDER)}
_TERMINAL_RANK = len(wire.JOB_STATE_ORDER)
_TASK_RANK = {
    wire.TaskState.QUEUED: 0,
    wire.TaskState.RUNNING: 1,
    wire.TaskState.RETRYING: 2,
    wire.TaskState.COMPLETE: 3,
    wire.TaskState.FAILED: 3,
    wire.TaskState.CANCELLED: 3,
}
#: How many recent log lines a snapshot keeps.
LOG_TAIL = 50


def _rank(state: wire.JobState) -> int:
    return _TERMINAL_RANK if state.is_terminal else _STATE_RANK[state]


@dataclass
class JobSnapshot:
    """One job's live state, folded from events and polls. Never moves backwards.

    ``tasks_total`` is the chunk count once partitioning is done; the ``tasks_*`` counters
    are recounted from ``task_states`` (chunk number -> TaskState). ``log_tail`` keeps the
    last :data:`LOG_TAIL` log lines. ``seq`` is the last event applied.
    """

    job_id: str
    name: str | None = None
    state: wire.JobState = wire.JobState.UNKNOWN
    tasks_total: int | None = None
    tasks_done: int = 0
    tasks_failed: int = 0
    tasks_running: int = 0
    task_states: dict[int, wire.TaskState] = field(default_factory=dict)
    task_attempts: dict[int, int] = field(default_factory=dict)
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    error_message: str | None = None
    first_task_error: str | None = None
    log_tail: deque[LogEntry] = field(default_factory=lambda: deque(maxlen=LOG_TAIL))
    seq: str | None = None
    updated_at: dt.datetime | None = None

    @property
    def stage(self) -> str:
        """A short human label for where the job is (``"running tasks"``, ``"complete"``...)."""
        return STAGES.get(self.state, self.state.name.lower())

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal

    @property
    def progress(self) -> float | None:
        """Fraction of tasks finished (1.0 once COMPLETE); ``None`` before the count is known."""
        if self.state is wire.JobState.COMPLETE:
            return 1.0
        if not self.tasks_total:
            return None
        return min(1.0, (self.tasks_done + self.tasks_failed) / self.tasks_total)

    @property
    def elapsed(self) -> dt.timedelta | None:
        if self.started_at is None:
            return None
        return (self.ended_at or wire.utcnow()) - self.started_at

    def copy(self) -> JobSnapshot:
        """An independent copy, safe to hand to another thread."""
        twin = copy.copy(self)
        twin.task_states = dict(self.task_states)
        twin.task_attempts = dict(self.task_attempts)
        twin.log_tail = deque(self.log_tail, maxlen=self.log_tail.maxlen)
        return twin

    # -- folding --------------------------------------------------------------------------

    def apply(self, event: Event) -> bool:
        """Fold one event in; returns whether anything changed. Other jobs' events are ignored."""
        if event.job_id is not None and event.job_id != self.job_id:
            return False
        if event.seq is not None and not _is_newer(event.seq, self.seq):
            return False
        changed = False
        data = event.data
        if event.name == wire.EVENT_JOB_STATE:
            changed = self._set_state(
                parse_enum(wire.JobState, data.get("state"), wire.JobState.UNKNOWN),
                when=parse_ts(data.get("timestamp")),
                error=opt_str(data.get("errorMessage")),
                chunks=opt_int(data.get("numChunks")),
            )
        elif event.name == wire.EVENT_TASK_STATE:
            chunk = opt_int(data.get("chunkNumber"))
            state = parse_enum(wire.TaskState, data.get("state"), None)  # type: ignore[arg-type]
            if chunk is not None and state is not None:
                changed = self._set_task(
                    chunk,
                    state,
                    opt_int(data.get("attempt")) or 0,
                    opt_str(data.get("errorMessage")),
                )
        elif event.name == wire.EVENT_JOB_LOG:
            self.log_tail.append(LogEntry.from_json(data, job_id=self.job_id))
            changed = True
        if event.seq is not None:
            self.seq = event.seq
        if changed:
            self.updated_at = wire.utcnow()
        return changed

    def apply_job(self, job: Job | dict[str, Any]) -> bool:
        """Fold a polled job (a :class:`Job` or its JSON) in; returns whether anything changed."""
        raw = job if isinstance(job, dict) else job.raw
        changed = False
        name = opt_str(raw.get("name"))
        if name and name != self.name:
            self.name, changed = name, True
        changed |= self._set_state(
            parse_enum(wire.JobState, raw.get("state"), wire.JobState.UNKNOWN),
            when=None,
            error=opt_str(raw.get("errorMessage")),
            chunks=opt_int(raw.get("numChunks")),
        )
        for attr, key in (("started_at", "startedAt"), ("ended_at", "endedAt")):
            value = parse_ts(raw.get(key))
            if value is not None and getattr(self, attr) != value:
                setattr(self, attr, value)
                changed = True
        if changed:
            self.updated_at = wire.utcnow()
        return changed

    def apply_tasks(self, tasks: Iterable[TaskInfo]) -> bool:
        """Fold polled task records in; returns whether anything changed."""
        changed = False
        for task in tasks:
            if task.chunk_number is None or task.state is None:
                continue
            changed |= self._set_task(
                task.chunk_number, task.state, task.attempt or 0, task.error_message
            )
        if changed:
            self.updated_at = wire.utcnow()
        return changed

    def _set_state(
        self,
        state: wire.JobState,
        *,
        when: dt.datetime | None,
        error: str | None,
        chunks: int | None,
    ) -> bool:
        changed = False
        if state is not wire.JobState.UNKNOWN and (
            self.state is wire.JobState.UNKNOWN or _rank(state) > _rank(self.state)
        ):
            self.state = state
            changed = True
            if when is not None:
                if state is wire.JobState.STARTED and self.started_at is None:
                    self.started_at = when
                if state.is_terminal and self.ended_at is None:
                    self.ended_at = when
        if chunks is not None and chunks > 0 and chunks != self.tasks_total:
            self.tasks_total = chunks
            changed = True
        if (
            error
            and error != self.error_message
            and (state.is_terminal or self.error_message is None)
        ):
            self.error_message = error
            changed = True
        return changed

    def _set_task(self, chunk: int, state: wire.TaskState, attempt: int, error: str | None) -> bool:
        current = self.task_states.get(chunk)
        known_attempt = self.task_attempts.get(chunk, 0)
        if current is not None and (attempt, _TASK_RANK[state]) <= (
            known_attempt,
            _TASK_RANK[current],
        ):
            return False
        self.task_states[chunk] = state
        self.task_attempts[chunk] = max(attempt, known_attempt)
        if (
            error
            and self.first_task_error is None
            and state in (wire.TaskState.FAILED, wire.TaskState.RETRYING)
        ):
            self.first_task_error = f"{wire.task_id(chunk)}: {error}"
        counts = {s: 0 for s in wire.TaskState}
        for value in self.task_states.values():
            counts[value] += 1
        self.tasks_done = counts[wire.TaskState.COMPLETE]
        self.tasks_failed = counts[wire.TaskState.FAILED]
        self.tasks_running = counts[wire.TaskState.RUNNING] + counts[wire.TaskState.RETRYING]
        if self.tasks_total is not None and len(self.task_states) > self.tasks_total:
            self.tasks_total = len(self.task_states)
        return True


# --------------------------------------------------------------------------------------------
# The watcher
# --------------------------------------------------------------------------------------------


class JobWatcher:
    """Follow one job on a daemon thread and report every change of its :class:`JobSnapshot`.

    The events stream is the main feed. The job (and its tasks) are polled on every
    (re)connect, whenever the stream is silent for ``silence_timeout`` seconds or carries no
    news of this job for that long, and every ``poll_interval`` seconds when there is no
    stream at all. ``on_update(snapshot)`` gets a copy after every change, and exactly once
    more at the end: with the terminal snapshot, or the last one if :meth:`stop` was called.
    It runs on the watcher thread, so it should only hand data over (set traits, queue).
    """

    def __init__(
        self,
        client: Client,
        job_id: str,
        on_update: Callable[[JobSnapshot], None] | None = None,
        *,
        poll_interval: float = 1.0,
        silence_timeout: float = 15.0,
        use_events: bool = True,
        start: bool = True,
    ) -> None:
        self.client = client
        self.job_id = job_id
        self.on_update = on_update
        self.poll_interval = poll_interval
        self.silence_timeout = silence_timeout
        self.use_events = use_events
        #: Set when the watcher thread has finished (after the final ``on_update``).
        self.done = threading.Event()
        #: The exception that ended watching early (e.g. the job was deleted), if any.
        self.error: BaseException | None = None
        self._snapshot = JobSnapshot(job_id)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stream: EventStream | None = None
        self._tasks_supported = True
        self._last_news = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, name=f"bytenite-watch-{job_id[:8]}", daemon=True
        )
        if start:
            self.start()

    def __repr__(self) -> str:
        status = "done" if self.done.is_set() else "watching"
        return f"<JobWatcher {self.job_id} {self._snapshot.state.name} {status}>"

    @property
    def snapshot(self) -> JobSnapshot:
        """A copy of the latest snapshot."""
        with self._lock:
            return self._snapshot.copy()

    def start(self) -> JobWatcher:
        if not self._thread.is_alive() and not self.done.is_set():
            self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop watching (the final ``on_update`` still happens) and wait for the thread."""
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> JobSnapshot:
        """Block until the watcher ends (terminal state, stop, or error); returns the snapshot."""
        self.done.wait(timeout)
        return self.snapshot

    def __enter__(self) -> JobWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- thread body ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._poll()
            if not self._finished():
                if self.use_events:
                    self._follow_stream()
                while not self._finished():
                    self._stop.wait(self.poll_interval)
                    if self._stop.is_set():
                        break
                    self._poll()
        except Exception as exc:  # the watcher reports problems, it never dies silently
            if self._stop.is_set() and not isinstance(exc, APIStatusError):
                # Stopping closes the stream mid-read; whatever that raises is not a problem.
                log.debug("watcher for %s stopped during: %r", self.job_id, exc)
            else:
                self.error = exc
                log.debug("watcher for %s ended: %s", self.job_id, exc)
        finally:
            if self._snapshot.is_terminal and not self._snapshot.log_tail:
                self._fill_log_tail()
            self._deliver()
            self.done.set()

    def _fill_log_tail(self) -> None:
        """The job ended before its log lines streamed past us (it was already done, or the
        end came by polling): take the last lines from the logs endpoint instead, so the
        final snapshot of a finished (above all a failed) job shows them."""
        try:
            records = self.client.log_records(self.job_id)
        except Exception as exc:  # the final snapshot matters more than its log tail
            log.debug("could not fetch the log tail of %s: %s", self.job_id, exc)
            return
        with self._lock:
            self._snapshot.log_tail.extend(LogEntry.from_json(r) for r in records[-LOG_TAIL:])

    def _finished(self) -> bool:
        return self._stop.is_set() or self._snapshot.is_terminal

    def _follow_stream(self) -> None:
        stream = self.client.events(
            since=None,
            job_id=self.job_id,  # ByteNite Local then sends only this job's events + heartbeats
            include_heartbeats=True,
            idle_timeout=self.silence_timeout,
            on_connect=self._poll_quietly,
            on_idle=self._poll_quietly,
            on_disconnect=lambda exc: self._poll_quietly(),
        )
        self._stream = stream
        if self._stop.is_set():
            stream.close()
        try:
            for event in stream:
                if event.name == wire.EVENT_HEARTBEAT or event.job_id != self.job_id:
                    # A live stream with no news of this job for a while: check by polling.
                    if time.monotonic() - self._last_news > self.silence_timeout:
                        self._poll_quietly()
                else:
                    self._last_news = time.monotonic()
                    with self._lock:
                        changed = self._snapshot.apply(event)
                    if changed and not self._snapshot.is_terminal:
                        self._deliver()
                if self._finished():
                    break
        except APIStatusError as exc:
            # No events endpoint (404) or not allowed: polling alone still works.
            log.debug("events stream unavailable (%s); polling instead", exc.status_code)
        finally:
            stream.close()
            self._stream = None

    def _poll_quietly(self) -> None:
        try:
            self._poll()
        except NotFoundError as exc:  # the job was deleted: nothing left to watch
            self.error = exc
            self._stop.set()
        except APIError as exc:  # transient; the stream or the next poll will catch up
            log.debug("poll of %s failed: %s", self.job_id, exc)
        finally:
            if self._finished() and self._stream is not None:
                self._stream.close()

    def _poll(self) -> None:
        self._last_news = time.monotonic()
        job = self.client.job(self.job_id)
        with self._lock:
            changed = self._snapshot.apply_job(job)
        if self._tasks_supported and (
            self._snapshot.tasks_total or self._snapshot.state.is_terminal
        ):
            try:
                tasks = self.client.tasks(self.job_id)
            except (NotFoundError, APIStatusError) as exc:
                if isinstance(exc, APIStatusError) and exc.status_code in (404, 405, 501):
                    self._tasks_supported = False
                else:
                    raise
            else:
                with self._lock:
                    changed |= self._snapshot.apply_tasks(tasks)
        if changed and not self._snapshot.is_terminal:
            self._deliver()

    def _deliver(self) -> None:
        if self.on_update is None:
            return
        try:
            self.on_update(self.snapshot)
        except Exception:  # an observer's bug must not stop the watching
            log.exception("JobWatcher on_update callback failed")
