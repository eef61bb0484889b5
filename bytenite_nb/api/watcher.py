"""Follow one job on a daemon thread: events first, polling when they fall silent."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bytenite_nb import wire
from bytenite_nb.api.errors import APIError, APIStatusError, NotFoundError
from bytenite_nb.api.models import LogEntry
from bytenite_nb.api.snapshot import LOG_TAIL, JobSnapshot

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api.client import Client
    from bytenite_nb.api.events import EventStream

__all__ = ["JobWatcher"]

log = logging.getLogger("bytenite_nb.api.events")

_WARN_LEVELS = (wire.LogLevel.WARN, wire.LogLevel.ERROR, wire.LogLevel.FATAL,
                wire.LogLevel.PANIC)
#: Pauses (seconds) before each read of a finished job's final record and task states (see
#: `JobWatcher._complete_the_end`).
_FINAL_READ_PAUSES = (0.0, 0.25, 1.0)
#: A line's own level word ("WARNING: ...", "[WARN] ..."), said again by the warning itself.
_LEVEL_WORD = re.compile(r"^\[?(?:WARNING|WARN|ERROR|CRITICAL|FATAL)\]?(?::|\s+-\s|\s)\s*")


class JobWatcher:
    """Follow one job on a daemon thread and report every change of its :class:`JobSnapshot`.

    The events stream is the main feed. The job (and its tasks) are polled on every
    (re)connect, whenever the stream is silent for ``silence_timeout`` seconds or carries no
    news of this job for that long, and every ``poll_interval`` seconds when there is no
    stream at all. ``on_update(snapshot)`` gets a copy after every change, and exactly once
    more at the end: with the terminal snapshot, or the last one if :meth:`stop` was called.
    It runs on the watcher thread, so it should only hand data over (set traits, queue).

    When the job ends, the terminal snapshot is completed from the server before it is
    delivered: the job's final record (which also brings every live ``Job`` handle of it up
    to date), its task states, its log tail, and its ``warnings`` (WARN-or-worse lines of
    the partitioner and assembler; no result files for a completed job). Every ``job.state``
    event updates the live handles too.
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
        self._ended_by_event = False
        #: Whether the task states were read after the job's record said it ended.
        self._tasks_final = False
        self._record: dict | None = None
        self._last_news = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, name=f"bytenite-watch-{job_id[:8]}", daemon=True
        )
        if start:
            self.start()

    def __repr__(self) -> str:
        status = "done" if self.done.is_set() else "watching"
        return f"<JobWatcher {self.job_id} {self._snapshot.status} {status}>"

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
            elif self._snapshot.is_terminal:
                # The job's end is known (a read after it failed): nothing was cut short,
                # and the end is completed below.
                log.debug("watcher for %s: a read after the end failed: %s", self.job_id, exc)
            else:
                self.error = exc
                log.debug("watcher for %s ended: %s", self.job_id, exc)
        finally:
            if self._snapshot.is_terminal:
                self._complete_the_end()
            self._deliver()
            self.done.set()

    def _complete_the_end(self) -> None:
        """The job ended: read what its end should show from the server (each step is a
        courtesy: the terminal state itself is already known).

        The task states must be read once the job's record says it ended: only then are they
        final. Events alone may not have brought them (a stream that fell behind, a job end
        learnt by polling whose read of the tasks failed), and an end drawn with the counts
        of a moment before would say a COMPLETE job did 38 of its 40 tasks. So the record
        and the tasks are read again, a few times if a read fails.
        """
        if self._ended_by_event or not self._tasks_final:
            for pause in _FINAL_READ_PAUSES:
                if pause and self._stop.wait(pause):
                    break
                try:  # the final record (endedAt, duration...) and the final task states
                    self._poll()
                except Exception as exc:
                    log.debug("could not read the end of %s: %s", self.job_id, exc)
                    continue
                if self._tasks_final or not self._tasks_supported:
                    break
        if not self._snapshot.log_tail:
            self._fill_log_tail()
        if self._snapshot.state is wire.JobState.COMPLETE:
            self._fill_warnings()

    def _fill_warnings(self) -> None:
        """A completed job's WARN-or-worse partitioner and assembler lines, and its missing
        results, as the snapshot's ``warnings`` (a failure already says what went wrong)."""
        found: list[str] = []
        try:
            records = self.client.log_records(
                self.job_id, levels=_WARN_LEVELS,
                services=(wire.LogService.PARTITIONER, wire.LogService.ASSEMBLER))
        except Exception as exc:
            log.debug("could not fetch the warnings of %s: %s", self.job_id, exc)
            records = []
        for record in records:
            entry = LogEntry.from_json(record)
            message = _LEVEL_WORD.sub("", entry.message.strip(), count=1)
            if entry.level in _WARN_LEVELS and message:
                found.append(f"{entry.service.lower()}: {message}")
        destination = ((self._record or {}).get("dataDestination") or {}).get(
            "dataSourceDescriptor")
        try:  # (a bypass destination discards the output: no results is what it means)
            if destination != wire.Descriptor.BYPASS.value and not self.client.results(
                    self.job_id):
                found.append("the job produced no result files")
        except Exception as exc:
            log.debug("could not list the results of %s: %s", self.job_id, exc)
        with self._lock:
            self._snapshot.warnings = found

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
                    if changed and event.name == wire.EVENT_JOB_STATE:
                        self._update_handles(event.data)
                    if changed and not self._snapshot.is_terminal:
                        self._deliver()
                    elif self._snapshot.is_terminal:
                        self._ended_by_event = True
                if self._finished():
                    break
        except APIStatusError as exc:
            # No events endpoint (404) or not allowed: polling alone still works.
            log.debug("events stream unavailable (%s); polling instead", exc.status_code)
        finally:
            stream.close()
            self._stream = None

    def _update_handles(self, data: dict) -> None:
        """Bring the live ``Job`` handles of this job up to date with a ``job.state`` event."""
        from bytenite_nb.api.jobs import update_live

        fields = {"state": data.get("state"), "errorMessage": data.get("errorMessage"),
                  "numChunks": data.get("numChunks")}
        try:
            update_live(self.client, self.job_id, fields)
        except Exception:  # a handle's bookkeeping must not stop the watching
            log.debug("could not update the handles of %s", self.job_id, exc_info=True)

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
        self._record = job.raw
        with self._lock:
            changed = self._snapshot.apply_job(job)
            ended = self._snapshot.state.is_terminal
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
                # Read after a record that says the job ended: these states are final.
                self._tasks_final = self._tasks_final or ended
        if changed and not self._snapshot.is_terminal:
            self._deliver()

    def _deliver(self) -> None:
        if self.on_update is None:
            return
        try:
            self.on_update(self.snapshot)
        except Exception:  # an observer's bug must not stop the watching
            log.exception("JobWatcher on_update callback failed")
