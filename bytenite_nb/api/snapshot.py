"""The per-job reducer: events and polled records folded into a :class:`JobSnapshot`."""

from __future__ import annotations

import copy
import datetime as dt
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bytenite_nb import wire
from bytenite_nb.api.decoding import Event, is_newer
from bytenite_nb.api.models import LogEntry, TaskInfo, opt_int, opt_str, parse_enum, parse_ts

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api.jobs import Job

__all__ = ["LOG_TAIL", "STAGES", "JobSnapshot"]


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
    last :data:`LOG_TAIL` log lines. ``seq`` is the last event applied. ``furthest`` is the
    furthest state the job reached before it ended (from its ``stateTimestamps`` and the
    states seen), so a failure can say where it happened. ``warnings`` are what the job's
    end should not hide: WARN-or-worse lines of its partitioner and assembler, a completed
    job without result files (the watcher fills them in when the job ends).
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
    furthest: wire.JobState = wire.JobState.UNKNOWN
    warnings: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """The job's status word (``running``, ``complete``, ``aborted``...)."""
        from bytenite_nb.vocabulary import status_of

        return status_of(self.state, self.error_message)

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
        twin.warnings = list(self.warnings)
        return twin

    # -- folding --------------------------------------------------------------------------

    def apply(self, event: Event) -> bool:
        """Fold one event in; returns whether anything changed. Other jobs' events are ignored."""
        if event.job_id is not None and event.job_id != self.job_id:
            return False
        if event.seq is not None and not is_newer(event.seq, self.seq):
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
        for name in raw.get("stateTimestamps") or {}:
            changed |= self._reach(parse_enum(wire.JobState, name, wire.JobState.UNKNOWN))
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

    def _reach(self, state: wire.JobState) -> bool:
        """Remember ``state`` as reached, if it is further than any before (terminal states
        are where a job ends, not where it got to)."""
        if state.is_terminal or state is wire.JobState.UNKNOWN:
            return False
        if self.furthest is wire.JobState.UNKNOWN or _rank(state) > _rank(self.furthest):
            self.furthest = state
            return True
        return False

    def _set_state(
        self,
        state: wire.JobState,
        *,
        when: dt.datetime | None,
        error: str | None,
        chunks: int | None,
    ) -> bool:
        changed = self._reach(state)
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
        if chunks:  # a chunk count exists once partitioning is done
            changed |= self._reach(wire.JobState.PARTITIONED)
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
        self._reach(wire.JobState.PARTITIONED)
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
