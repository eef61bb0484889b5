"""Synthetic ByteNite Local event streams (wire format) for widget tests and the benchmark.

Events are built exactly as ``/events`` carries them and folded by the client's real
``JobSnapshot`` reducer, so the widgets see what a real stream would give them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from bytenite_nb import wire
from bytenite_nb.api.decoding import Event


def _ts() -> str:
    return wire.format_timestamp(wire.utcnow()) or ""


def job_events(job_id: str, tasks: int, total_events: int) -> Iterator[Event]:
    """About ``total_events`` events for a job of ``tasks`` tasks that ends COMPLETE.

    Task events cycle RUNNING/COMPLETE over the tasks, padded with log lines to reach the
    requested count; every task ends COMPLETE.
    """
    seq = 0

    def ev(name: str, data: dict[str, object]) -> Event:
        nonlocal seq
        seq += 1
        data = {"@type": wire.EVENT_TYPES[name], "jobId": job_id, **data}
        return Event(name=name, data=data, seq=str(seq), job_id=job_id)

    def state(s: wire.JobState, **extra: object) -> Event:
        return ev(wire.EVENT_JOB_STATE, {"state": s.value, "timestamp": _ts(), **extra})

    yield state(wire.JobState.STARTED)
    yield state(wire.JobState.PARTITIONING)
    yield state(wire.JobState.PARTITIONED, numChunks=str(tasks))
    budget = max(0, total_events - 7 - 2 * tasks)
    for chunk in range(tasks):
        yield ev(wire.EVENT_TASK_STATE, {"taskId": wire.task_id(chunk), "chunkNumber": chunk,
                                         "state": wire.TaskState.RUNNING.value, "attempt": "0"})
        extra = budget // tasks + (1 if chunk < budget % tasks else 0)
        for i in range(extra):
            yield ev(wire.EVENT_JOB_LOG, {"service": "TASKRUNNER", "taskId": wire.task_id(chunk),
                                          "level": "INFO", "message": f"chunk {chunk} line {i}",
                                          "timestamp": _ts()})
        yield ev(wire.EVENT_TASK_STATE, {"taskId": wire.task_id(chunk), "chunkNumber": chunk,
                                         "state": wire.TaskState.COMPLETE.value, "attempt": "0"})
    yield state(wire.JobState.TASKS_COMPLETED)
    yield state(wire.JobState.MERGING)
    yield state(wire.JobState.MERGED)
    yield state(wire.JobState.COMPLETE)


def started_long_ago() -> dt.datetime:
    """A fixed start time, for repr tests."""
    return dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
