"""The words a person reads and types about a job: one spelling for each, everywhere.

The wire speaks ``JOB_STATE_PARTITIONED``; a person reads and types ``running``. Every view
(``job.status``, the ``status`` columns of ``jobs_df``/``tasks_df``, the monitor's badge, the
dashboard, ``%bytenite status``) shows these words, and every input (``--state``,
``jobs(state=...)``, ``jobs_df(state=...)``, the dashboard's filter) accepts them, their
aliases and the wire's own names. ``docs/vocabulary.md`` is the table.

A job's **status**, in lifecycle order:

============  =====================================================  ==========
status        wire states                                            finished?
============  =====================================================  ==========
draft         NEW                                                    no
queued        STARTED, UPLOADING (fetching the input)                no
partitioning  PARTITIONING                                           no
running       PARTITIONED (the tasks run)                            no
assembling    TASKS_COMPLETED, MERGING, MERGED, DOWNLOADING          no
complete      COMPLETE                                               yes
failed        FAILED, for any reason but an abort                    yes
aborted       FAILED with an ``errorMessage`` that says it was        yes
              aborted (ByteNite reports an abort as a failure)
============  =====================================================  ==========

(``unknown`` is what a record without a state reads as.) The three finished statuses are
the job's **outcome**. Labels (badges, the first word of a summary) show the same word in
capitals: ``COMPLETE``, ``ABORTED``.

A task's status: ``queued``, ``running``, ``retrying``, ``complete``, ``failed``,
``cancelled`` (the wire's ``TASK_STATE_*`` without the prefix, lower case).

Log levels keep the wire's names (``INFO``, ``WARN``, ``ERROR``...); ``warning``,
``critical`` and friends are accepted as input.

This module imports the standard library and :mod:`bytenite_nb.wire` only, so the client,
the frames and the notebook layer (whose ``%load_ext`` must stay light) all use it;
``js/monitor_logic.js`` and ``js/dashboard_logic.js`` repeat what the browser needs of it (a
parity test keeps them equal).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from bytenite_nb import wire

__all__ = [
    "ABORTED",
    "ASSEMBLING",
    "COMPLETE",
    "DRAFT",
    "FAILED",
    "OUTCOMES",
    "PARTITIONING",
    "QUEUED",
    "RUNNING",
    "STATUSES",
    "STATUS_ALIASES",
    "TASK_STATUSES",
    "UNKNOWN",
    "is_aborted",
    "job_status",
    "parse_level",
    "parse_status",
    "parse_statuses",
    "status_of",
    "suggest",
    "task_status",
    "wire_states",
]

UNKNOWN = "unknown"
DRAFT = "draft"
QUEUED = "queued"
PARTITIONING = "partitioning"
RUNNING = "running"
ASSEMBLING = "assembling"
COMPLETE = "complete"
FAILED = "failed"
ABORTED = "aborted"

#: Every status, in lifecycle order (the order of the ``status`` categoricals in frames).
STATUSES: tuple[str, ...] = (UNKNOWN, DRAFT, QUEUED, PARTITIONING, RUNNING, ASSEMBLING,
                             COMPLETE, FAILED, ABORTED)
#: The statuses of a finished job: its outcome.
OUTCOMES: tuple[str, ...] = (COMPLETE, FAILED, ABORTED)

_OF_STATE: dict[wire.JobState, str] = {
    wire.JobState.UNKNOWN: UNKNOWN,
    wire.JobState.NEW: DRAFT,
    wire.JobState.STARTED: QUEUED,
    wire.JobState.UPLOADING: QUEUED,
    wire.JobState.PARTITIONING: PARTITIONING,
    wire.JobState.PARTITIONED: RUNNING,
    wire.JobState.TASKS_COMPLETED: ASSEMBLING,
    wire.JobState.MERGING: ASSEMBLING,
    wire.JobState.MERGED: ASSEMBLING,
    wire.JobState.DOWNLOADING: ASSEMBLING,
    wire.JobState.COMPLETE: COMPLETE,
    wire.JobState.FAILED: FAILED,
}

#: Other words people type for a status (the wire's names are accepted too, see
#: :func:`parse_status`).
STATUS_ALIASES: dict[str, str] = {
    "new": DRAFT, "created": DRAFT,
    "pending": QUEUED, "waiting": QUEUED, "started": QUEUED, "starting": QUEUED,
    "uploading": QUEUED,
    "partitioned": RUNNING, "tasks": RUNNING, "in_progress": RUNNING, "processing": RUNNING,
    "tasks_completed": ASSEMBLING, "merging": ASSEMBLING, "merged": ASSEMBLING,
    "downloading": ASSEMBLING,
    "completed": COMPLETE, "done": COMPLETE, "success": COMPLETE, "succeeded": COMPLETE,
    "successful": COMPLETE, "finished": COMPLETE, "ok": COMPLETE,
    "error": FAILED, "errored": FAILED, "failure": FAILED, "crashed": FAILED, "fail": FAILED,
    "abort": ABORTED, "cancelled": ABORTED, "canceled": ABORTED, "stopped": ABORTED,
    "killed": ABORTED, "interrupted": ABORTED,
}

#: The status words of a task, in the order of the wire's ``TaskState``.
TASK_STATUSES: tuple[str, ...] = tuple(s.name.lower() for s in wire.TaskState)

#: Other words people type for a log level.
LEVEL_ALIASES: dict[str, wire.LogLevel] = {
    "warning": wire.LogLevel.WARN, "warnings": wire.LogLevel.WARN,
    "err": wire.LogLevel.ERROR, "errors": wire.LogLevel.ERROR,
    "critical": wire.LogLevel.FATAL, "crit": wire.LogLevel.FATAL,
    "information": wire.LogLevel.INFO, "notice": wire.LogLevel.INFO,
    "dbg": wire.LogLevel.DEBUG,
}

_ABORT_WORDS = re.compile(r"\babort", re.IGNORECASE)


def suggest(word: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str:
    """`` Did you mean 'x'?`` for the closest of ``choices`` (case-insensitive), or ``""``.

    ``cutoff``: how alike (0..1) a choice must be; raise it for names that share long parts
    (template ids all end in ``-template``)."""
    options = list(dict.fromkeys(choices))
    lowered = {c.lower(): c for c in options}
    close = difflib.get_close_matches(str(word).lower(), list(lowered), n=2, cutoff=cutoff)
    if not close:
        return ""
    return " Did you mean " + " or ".join(f"'{lowered[c]}'" for c in close) + "?"


def is_aborted(state: Any, error_message: str | None) -> bool:
    """Whether a job in ``state`` with ``error_message`` ended by an abort (a user's, Ctrl-C's,
    the monitor's Abort button's): FAILED with a message that says it was aborted."""
    try:
        parsed = wire.JobState.parse(state) if state else wire.JobState.UNKNOWN
    except ValueError:
        return False
    return parsed is wire.JobState.FAILED and bool(_ABORT_WORDS.search(error_message or ""))


#: Wire name -> status, for the common case (a listing reads thousands of these).
_OF_NAME: dict[str, str] = {state.value: status for state, status in _OF_STATE.items()}


def status_of(state: Any, error_message: str | None = None) -> str:
    """The status word of a wire state (``JobState`` or its name) and the job's
    ``errorMessage`` (which tells an abort from a failure)."""
    status = _OF_NAME.get(state) if isinstance(state, str) else None
    if status is None:
        if state is None or state == "":
            return UNKNOWN
        try:
            status = _OF_STATE[wire.JobState.parse(state)]
        except ValueError:
            return UNKNOWN
    if status == FAILED and error_message and _ABORT_WORDS.search(error_message):
        return ABORTED
    return status


def job_status(record: Any) -> str:
    """The status of a job: a ``Job``, a snapshot, or the job's JSON."""
    raw = getattr(record, "raw", record)
    if isinstance(raw, Mapping):
        return status_of(raw.get("state"), raw.get("errorMessage") or raw.get("error_message"))
    return status_of(getattr(record, "state", None), getattr(record, "error_message", None))


def task_status(state: Any) -> str:
    """The status word of a task state (``TaskState`` or its name); ``""`` when unknown."""
    if state is None or state == "":
        return ""
    try:
        return wire.TaskState.parse(state).name.lower()
    except ValueError:
        return ""


def parse_status(value: Any) -> str:
    """The status a person means by ``value``: a status word, an alias (``completed``,
    ``cancelled``...), a wire name (``JOB_STATE_PARTITIONED``, ``partitioned``), any case.

    Raises ``ValueError`` naming the statuses, with a did-you-mean.
    """
    if isinstance(value, wire.JobState):
        return _OF_STATE[value]
    text = str(value).strip().lower().replace("-", "_").replace(" ", "_")
    text = text.removeprefix("job_state_")
    if text in STATUSES:
        return text
    if text in STATUS_ALIASES:
        return STATUS_ALIASES[text]
    raise ValueError(
        f"unknown job state {value!r}.{suggest(text, [*STATUSES[1:], *STATUS_ALIASES])} "
        f"Use one of: {', '.join(STATUSES[1:])}"
    )


def parse_statuses(value: Any) -> tuple[str, ...]:
    """:func:`parse_status` for one value or several (a list, tuple or set)."""
    items = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
    return tuple(dict.fromkeys(parse_status(item) for item in items))


def wire_states(statuses: Iterable[str]) -> list[wire.JobState]:
    """The wire states that hold jobs of these statuses (``failed`` and ``aborted`` share
    ``FAILED``: tell them apart with :func:`status_of` on each job)."""
    wanted = set(statuses)
    found = [state for state, status in _OF_STATE.items() if status in wanted]
    if ABORTED in wanted and wire.JobState.FAILED not in found:
        found.append(wire.JobState.FAILED)
    return found


def parse_level(value: Any) -> wire.LogLevel:
    """A log level from its wire name or a common alias (``warning``, ``critical``...).

    Raises ``ValueError`` naming the levels, with a did-you-mean.
    """
    if isinstance(value, wire.LogLevel):
        return value
    text = str(value).strip()
    alias = LEVEL_ALIASES.get(text.lower())
    if alias is not None:
        return alias
    try:
        return wire.LogLevel.parse(text)
    except ValueError:
        names = [level.value.lower() for level in wire.LogLevel
                 if level is not wire.LogLevel.UNKNOWN]
        raise ValueError(
            f"unknown log level {value!r}.{suggest(text, [*names, *LEVEL_ALIASES])} "
            f"Use one of: {', '.join(names)}"
        ) from None
