"""Events fan-out for ``GET /events``: persisted, sequenced, never blocking a producer.

Every event is written to the ``events`` table first (which gives it its sequence number) and
then offered to each live subscriber's bounded queue. Publishing holds one lock across both
steps, so live delivery order equals sequence order.

Slow consumers: when a subscriber's queue is full, the broker stops queueing for it and marks
it *lagging*; its stream then catches up by reading the ``events`` table from the last sequence
number it delivered, and rejoins the live queue. So a slow or vanished consumer costs at most
``queue_size`` events of memory, never blocks a job, and never misses an event.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from bytenite_nb import wire
from bytenite_nb.server.storage.store import EventRow, Store

T = TypeVar("T")

#: Seconds a woken stream waits before taking its queued events. Events come in bursts (a
#: task's state changes, a process's output lines, hundreds a second): sending a burst as one
#: chunk costs the event loop one wake-up and one socket write instead of one per event, for
#: a few milliseconds of latency.
GATHER_SECONDS = 0.005


#: An event as delivered is the event as stored: sequence number, name, job id (None for
#: heartbeats) and data.
Event = EventRow


def event_line(event: Event) -> bytes:
    """The NDJSON line: ``{"result":{"event","seq","data":{"@type",...}}}``."""
    body = {"result": {"event": event.name, "seq": str(event.seq), "data": event.data}}
    return (json.dumps(body, separators=(",", ":")) + "\n").encode()


def _encode(data: dict[str, Any]) -> str:
    """``data`` as stored in the events table and sent: compact JSON."""
    return json.dumps(data, separators=(",", ":"))


def _line(name: str, seq: int, data_json: str) -> bytes:
    """`event_line` of an event whose data is already encoded (`_encode`): the same bytes,
    without encoding the data a second time."""
    return (f'{{"result":{{"event":{json.dumps(name)},"seq":"{seq}","data":{data_json}}}}}\n'
            ).encode()


class Subscription:
    """One ``/events`` consumer's bounded queue, fed from any thread, read on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int,
                 gather: float = GATHER_SECONDS) -> None:
        self._loop = loop
        self._gather = gather
        self._maxsize = maxsize
        self._lock = threading.Lock()
        #: Each queued event with its NDJSON line (encoded once for every subscriber).
        self._items: collections.deque[tuple[Event, bytes]] = collections.deque()
        self._wake = asyncio.Event()
        self.lagging = False
        self.closed = False

    def offer(self, event: Event, line: bytes) -> None:
        """Queue ``event`` (``line``: its `event_line`) unless full (then mark lagging).
        Never blocks."""
        with self._lock:
            if self.closed or self.lagging:
                return
            if len(self._items) >= self._maxsize:
                # Drop the queue: the stream catches up from the events table instead.
                self._items.clear()
                self.lagging = True
            else:
                self._items.append((event, line))
                if len(self._items) > 1:
                    # The reader was woken for the first queued item and takes them all:
                    # one wake-up of the event loop per batch, not per event.
                    return
        self._notify()

    def close(self) -> None:
        """End the stream at its next wake-up."""
        with self._lock:
            self.closed = True
        self._notify()

    def _notify(self) -> None:
        # A closed loop raises RuntimeError: nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._wake.set)

    def rejoin(self) -> None:
        """Start queueing again after a catch-up from the table."""
        with self._lock:
            self.lagging = False

    async def wait(self, timeout: float) -> list[tuple[Event, bytes]] | None:
        """The queued events (possibly empty if lagging/closed), or None after ``timeout``."""
        with self._lock:
            if self._items or self.lagging or self.closed:
                return self._take()
            self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except asyncio.TimeoutError:
            return None
        if self._gather > 0:
            await asyncio.sleep(self._gather)  # let the rest of the burst queue up
        with self._lock:
            return self._take()

    def _take(self) -> list[tuple[Event, bytes]]:
        items = list(self._items)
        self._items.clear()
        return items


class Broker:
    """Publishes events (persist, then fan out) and serves resumable streams of them."""

    def __init__(self, store: Store, *, queue_size: int = 2000,
                 heartbeat_interval: float = 5.0) -> None:
        self._store = store
        self._queue_size = queue_size
        self.heartbeat_interval = heartbeat_interval
        # Re-entrant: a batch holds it while its publish calls take it again.
        self._lock = threading.RLock()
        self._subs: set[Subscription] = set()
        self._closed = False
        #: The events of the open `batch` (only touched by the thread holding the lock).
        self._pending: list[tuple[Event, str]] | None = None

    def publish(self, name: str, job_id: str | None, data: dict[str, Any]) -> Event:
        """Persist and fan out one event. ``data`` gets its ``@type`` from `wire.EVENT_TYPES`."""
        payload = {"@type": wire.EVENT_TYPES.get(name, wire.PROTOBUF_VALUE_TYPE), **data}
        text = _encode(payload)
        with self._lock:
            seq = self._store.add_event(name, job_id, text)
            event = Event(seq, name, job_id, payload)
            self._fan_out(event, text)
        return event

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Events published in the block (by this thread) are stored in one transaction and
        fanned out, in order, once it committed; other threads' publish calls wait meanwhile,
        so delivery order stays seq order. A `publish_with` that raises inside the block
        undoes only its own writes. Nested batches join the outer one."""
        with self._lock:
            if self._pending is not None:
                yield
                return
            self._pending = []
            try:
                with self._store.transaction():
                    yield
                pending = self._pending
            finally:
                self._pending = None
            for event, text in pending:
                self._fan_out(event, text)

    def _fan_out(self, event: Event, data_json: str) -> None:
        """Offer ``event`` to every subscriber (called under the lock, in seq order); in a
        batch, once the batch committed."""
        if self._pending is not None:
            self._pending.append((event, data_json))
            return
        if not self._subs:
            return
        line = _line(event.name, event.seq, data_json)
        for sub in list(self._subs):
            sub.offer(event, line)

    def publish_with(self, write: Callable[[], T], name: str, job_id: str | None,
                     data: Callable[[T], dict[str, Any]]) -> tuple[T, Event]:
        """``write()`` (store writes) and the event ``data(its result)`` committed in one
        transaction, then the event fanned out; returns both. One commit instead of two for
        a change and its event (a task's state, hundreds of times a second)."""
        with self._lock:  # (fanned out under the lock too: streams see seq order)
            # In a batch, a savepoint: a write that fails is undone without the batch's others.
            with (self._store.savepoint() if self._pending is not None
                  else self._store.transaction()):
                result = write()
                payload = {"@type": wire.EVENT_TYPES.get(name, wire.PROTOBUF_VALUE_TYPE),
                           **data(result)}
                text = _encode(payload)
                seq = self._store.add_event(name, job_id, text)
            event = Event(seq, name, job_id, payload)
            self._fan_out(event, text)
        return result, event

    def subscribe(self, loop: asyncio.AbstractEventLoop) -> Subscription:
        """A new live subscription (call `unsubscribe` when done)."""
        sub = Subscription(loop, self._queue_size)
        with self._lock:
            if self._closed:
                sub.close()
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop feeding ``sub``."""
        with self._lock:
            self._subs.discard(sub)

    def close(self) -> None:
        """End every open stream (server shutdown) and refuse new ones."""
        with self._lock:
            self._closed = True
            subs = list(self._subs)
        for sub in subs:
            sub.close()

    @property
    def closed(self) -> bool:
        """True once `close` was called."""
        return self._closed

    def heartbeat(self, seq: int) -> Event:
        """A heartbeat carrying the stream's resume point ``seq`` (not persisted)."""
        return Event(seq, wire.EVENT_HEARTBEAT, None, {
            "@type": wire.HEARTBEAT_EVENT_TYPE,
            "timestamp": wire.format_timestamp(wire.utcnow()),
        })

    async def stream(self, since: int | None = None, job_id: str | None = None,
                     ) -> AsyncIterator[bytes]:
        """NDJSON lines: events after ``since`` (None: only new ones), then live, with heartbeats.

        ``job_id`` keeps only that job's events (heartbeats always pass).
        """
        # Read the resume point before subscribing and always catch up from the table once:
        # an event published in between is then read from the table, never lost.
        last = await run_in_threadpool(self._store.last_seq) if since is None else since
        sub = self.subscribe(asyncio.get_running_loop())
        try:
            # Heartbeat first so a client learns the resume point and that the stream is live.
            yield event_line(self.heartbeat(last))
            catch_up = True
            while not sub.closed:
                if catch_up or sub.lagging:
                    sub.rejoin()
                    while True:
                        rows: list[Event] = await run_in_threadpool(
                            self._store.events_after, last, 500)
                        if not rows:
                            break
                        lines = []
                        for row in rows:
                            last = row.seq
                            if job_id is None or row.job_id == job_id:
                                lines.append(event_line(row))
                        if lines:
                            yield b"".join(lines)
                    catch_up = False
                batch = await sub.wait(self.heartbeat_interval)
                if batch is None:
                    yield event_line(self.heartbeat(last))
                    continue
                # Written as one chunk: one send through the middleware and the socket for
                # every event that arrived since the last wake-up.
                lines = []
                for event, line in batch:
                    if event.seq <= last:
                        continue  # already delivered by the catch-up read
                    last = event.seq
                    if job_id is None or event.job_id == job_id:
                        lines.append(line)
                if lines:
                    yield b"".join(lines)
        finally:
            self.unsubscribe(sub)
