"""The :class:`Job` handle: a job's JSON plus the client it came from.

Attributes are read from the job's protojson (``raw``) on access, so unknown fields are kept
and building thousands of jobs from a listing costs one small object each.

Handles are live. Every handle of one job on one server shares one record, and every answer
that carries the job (any client call that returns it, an abort, a delete, a watcher's poll
or a ``job.state`` event it follows) updates that record, so ``job.state`` and
``job.status`` in your namespace say what the server says without a ``refresh()``: after
``%bytenite abort $job``, ``job.status`` is ``aborted``. A record never moves backwards in the
job's lifecycle (an older answer arriving late is ignored). A deleted job's handles say
``deleted``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bytenite_nb import vocabulary, wire
from bytenite_nb.api.errors import (
    JobFailedError,
    ResultsNotReadyError,
    WaitTimeoutError,
)
from bytenite_nb.api.models import (
    LogEntry,
    ResultFile,
    TaskInfo,
    opt_int,
    opt_str,
    parse_enum,
    parse_ts,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from bytenite_nb.api.client import Client
    from bytenite_nb.api.events import EventStream
    from bytenite_nb.api.outputs import Outputs
    from bytenite_nb.api.snapshot import JobSnapshot
    from bytenite_nb.api.watcher import JobWatcher
    from bytenite_nb.timeline import Timeline

__all__ = ["Job", "set_wait_view"]

log = logging.getLogger("bytenite_nb.api")

#: How many ERROR-or-worse log lines a JobFailedError quotes.
ERROR_LOG_LINES = 5
_ERROR_LEVELS = (wire.LogLevel.ERROR, wire.LogLevel.FATAL, wire.LogLevel.PANIC)
_RANK = {state: i for i, state in enumerate(wire.JOB_STATE_ORDER)}


def _rank(raw: dict[str, Any]) -> int:
    try:
        state = wire.JobState.parse(raw.get("state") or "JOB_STATE_UNKNOWN")
    except ValueError:
        return -1
    if state is wire.JobState.UNKNOWN:
        return -1
    return len(_RANK) if state.is_terminal else _RANK[state]


class _Record:
    """The one copy of a job's JSON that every handle of that job shares."""

    __slots__ = ("__weakref__", "deleted", "outputs", "raw", "template_info")

    def __init__(self, raw: dict[str, Any], template_info: dict[str, Any] | None) -> None:
        self.raw = raw
        self.template_info = template_info
        self.deleted = False
        self.outputs: Outputs | None = None  # what the job produced, once someone asked

    def take(self, raw: dict[str, Any], template_info: dict[str, Any] | None) -> None:
        """Adopt a newer answer about the job (never one from earlier in its lifecycle)."""
        if _rank(raw) >= _rank(self.raw):
            self.raw = raw
        if template_info:
            self.template_info = template_info


#: (base URL, job id) -> the record the live handles of that job share.
_LIVE: weakref.WeakValueDictionary[tuple[str, str], _Record] = weakref.WeakValueDictionary()
_LIVE_LOCK = threading.Lock()


def _shared(client: Client, raw: dict[str, Any],
            template_info: dict[str, Any] | None) -> _Record:
    job_id = str(raw.get("id") or "")
    if not job_id:
        return _Record(raw, template_info)
    key = (str(getattr(client, "base_url", "")), job_id)
    with _LIVE_LOCK:
        record = _LIVE.get(key)
        if record is None:
            record = _LIVE[key] = _Record(raw, template_info)
            return record
    record.take(raw, template_info)
    return record


def update_live(client: Client, job_id: str, fields: dict[str, Any]) -> None:
    """Merge ``fields`` (camelCase job fields, e.g. from a ``job.state`` event) into the live
    record of ``job_id``, if any handle of it is alive."""
    record = _LIVE.get((str(getattr(client, "base_url", "")), job_id))
    if record is not None:
        record.take({**record.raw, **{k: v for k, v in fields.items() if v is not None}}, None)


def has_live(client: Client, job_id: str) -> bool:
    """Whether some handle of ``job_id`` on ``client``'s server is alive."""
    return (str(getattr(client, "base_url", "")), job_id) in _LIVE


def mark_deleted(client: Client, job_id: str) -> None:
    """Tell every live handle of ``job_id`` that the job no longer exists."""
    record = _LIVE.get((str(getattr(client, "base_url", "")), job_id))
    if record is not None:
        record.deleted = True


#: Shows a job's progress while :meth:`Job.load_results` waits for it; the notebook layer
#: sets it (``None``: wait without showing anything).
_WAIT_VIEW: Callable[[Job], contextlib.AbstractContextManager[Any]] | None = None


def set_wait_view(factory: Callable[[Job], contextlib.AbstractContextManager[Any]] | None,
                  ) -> None:
    """Set what shows a job's progress while ``load_results`` waits for it (a context
    manager factory taking the job), or ``None``. The notebook extension sets it."""
    global _WAIT_VIEW
    _WAIT_VIEW = factory


class Job:
    """A ByteNite job, bound to the :class:`~bytenite_nb.api.client.Client` that fetched it.

    Read-only attributes mirror the job's JSON (``id``, ``name``, ``state``, ``template_id``,
    ``error_message``, ``num_chunks``, timestamps as aware UTC datetimes, ``duration`` as a
    timedelta); ``raw`` is the JSON itself. ``status`` is the job's state in the words a
    person reads (``running``, ``complete``, ``aborted``...; see
    :mod:`bytenite_nb.vocabulary`), ``state`` the wire's :class:`~bytenite_nb.wire.JobState`.
    Methods act on the server. Handles are live (see the module docstring).
    """

    __slots__ = ("_client", "_rec")

    def __init__(
        self, client: Client, raw: dict[str, Any], template_info: dict[str, Any] | None = None
    ) -> None:
        self._client = client
        self._rec = _shared(client, raw, template_info or raw.get("templateInfo"))

    @property
    def raw(self) -> dict[str, Any]:
        """The job's JSON, as the server last sent it."""
        return self._rec.raw

    @property
    def template_info(self) -> dict[str, Any] | None:
        """The template the job was made from, when the server sent it (``templateInfo``)."""
        return self._rec.template_info

    @property
    def _outputs(self) -> Outputs | None:
        # Kept with the shared record: what one handle learned, every handle knows.
        return self._rec.outputs

    @_outputs.setter
    def _outputs(self, value: Outputs | None) -> None:
        self._rec.outputs = value

    @classmethod
    def from_response(cls, client: Client, body: dict[str, Any]) -> Job:
        """Build from a ``JobResponse`` (``{"job": ..., "templateInfo": ...}``) or a bare job."""
        if isinstance(body.get("job"), dict):
            return cls(client, body["job"], body.get("templateInfo"))
        return cls(client, body)

    def _replace(self, other: Job | dict[str, Any]) -> Job:
        if isinstance(other, Job):
            if other._rec is not self._rec:
                self._rec.take(other.raw, other.template_info)
        else:
            self._rec.take(other, None)
        return self

    # -- attributes -----------------------------------------------------------------------

    @property
    def client(self) -> Client:
        return self._client

    @property
    def id(self) -> str:
        return str(self.raw.get("id") or "")

    @property
    def name(self) -> str | None:
        return opt_str(self.raw.get("name"))

    @property
    def description(self) -> str | None:
        return opt_str(self.raw.get("description"))

    @property
    def template_id(self) -> str | None:
        return opt_str(self.raw.get("templateId"))

    @property
    def state(self) -> wire.JobState:
        return parse_enum(wire.JobState, self.raw.get("state"), wire.JobState.UNKNOWN)

    @property
    def status(self) -> str:
        """The job's state as a person reads it: ``draft``, ``queued``, ``partitioning``,
        ``running``, ``assembling``, ``complete``, ``failed`` or ``aborted`` (``deleted`` once
        deleted). See :mod:`bytenite_nb.vocabulary`."""
        if self._rec.deleted:
            return "deleted"
        return vocabulary.status_of(self.raw.get("state"), self.raw.get("errorMessage"))

    @property
    def outcome(self) -> str | None:
        """How the job ended (``complete``, ``failed``, ``aborted``), ``None`` until then."""
        status = self.status
        return status if status in vocabulary.OUTCOMES else None

    @property
    def deleted(self) -> bool:
        """Whether this job was deleted (by this client, a magic, or an abort before it ran)."""
        return self._rec.deleted

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal

    @property
    def error_message(self) -> str | None:
        return opt_str(self.raw.get("errorMessage"))

    @property
    def num_chunks(self) -> int | None:
        return opt_int(self.raw.get("numChunks"))

    @property
    def created_at(self) -> dt.datetime | None:
        return parse_ts(self.raw.get("createdAt"))

    @property
    def submitted_at(self) -> dt.datetime | None:
        return parse_ts(self.raw.get("submittedAt"))

    @property
    def started_at(self) -> dt.datetime | None:
        return parse_ts(self.raw.get("startedAt"))

    @property
    def ended_at(self) -> dt.datetime | None:
        return parse_ts(self.raw.get("endedAt"))

    @property
    def duration(self) -> dt.timedelta | None:
        """Run time: ``ended_at - started_at`` when both are known, else the ``duration`` field
        (int64 seconds), else time since start for a running job."""
        start, end = self.started_at, self.ended_at
        if start and end:
            return end - start
        if start and self.state.is_running:
            return wire.utcnow() - start  # elapsed so far (the server's field says 0)
        seconds = opt_int(self.raw.get("duration"))
        if seconds:
            return dt.timedelta(seconds=seconds)
        return None

    @property
    def data_source(self) -> dict[str, Any] | None:
        return self.raw.get("dataSource")

    @property
    def data_destination(self) -> dict[str, Any] | None:
        return self.raw.get("dataDestination")

    @property
    def params(self) -> dict[str, Any] | None:
        return self.raw.get("params")

    @property
    def config(self) -> dict[str, Any] | None:
        return self.raw.get("config")

    @property
    def state_timestamps(self) -> dict[str, dt.datetime | None]:
        return {k: parse_ts(v) for k, v in (self.raw.get("stateTimestamps") or {}).items()}

    @property
    def upload_url(self) -> str | None:
        """The ``tempUrl`` to PUT the input to, for a ``file`` data source."""
        params = (self.data_source or {}).get("params") or {}
        return opt_str(params.get("tempUrl") or params.get("temp_url"))

    @property
    def outputs(self) -> Outputs | None:
        """What this job produced (files, size, rows when counted), once known: after
        :meth:`wait`, :meth:`results`, :meth:`fetch_outputs` or a display has asked; never
        fetched by reading this property."""
        return self._outputs if self.state is wire.JobState.COMPLETE else None

    def fetch_outputs(self, *, count_rows: bool = True) -> Outputs:
        """Ask the server what this COMPLETE job produced (see :mod:`bytenite_nb.api.outputs`)
        and remember it for :attr:`outputs` and the job's repr."""
        from bytenite_nb.api.outputs import outputs_of

        self._outputs = outputs_of(self._client, self.id, count_rows=count_rows)
        return self._outputs

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        out = self.outputs
        what = f" · {out.describe()} · .load_results()" if out is not None else ""
        return f"<Job {self.id}{name} {self.status}{what}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id

    def __hash__(self) -> int:
        return hash(("Job", self.id))

    # -- server actions ---------------------------------------------------------------------

    def refresh(self) -> Job:
        """Re-read the job from the server; returns ``self``."""
        return self._replace(self._client.job(self.id))

    def run(self, config: dict[str, Any] | None = None) -> Job:
        """Start a NEW job (``POST /jobs/{id}/run``); returns ``self``, refreshed (by the
        client, which brings every live handle of the job up to date)."""
        self._client.run_job(self.id, config=config)
        return self

    def abort(self) -> Job:
        """Abort: a running job ends ``aborted`` (FAILED on the wire, with a message saying
        so); a job that never started is deleted (then :attr:`deleted` is true)."""
        self._client.abort_job(self.id)  # (re-reads the job for its live handles, this one too)
        return self

    def delete(self) -> None:
        """Delete the job (every handle of it then says ``deleted``)."""
        self._client.delete_job(self.id)

    def set_params(self, params: dict[str, Any]) -> Job:
        """Set ``{"app": ..., "partitioner": ..., "assembler": ...}`` on this NEW job."""
        return self._replace(self._client.set_params(self.id, params))

    def set_data_source(
        self,
        data_source: Any = None,
        data_destination: Any = None,
    ) -> Job:
        """Set the input and/or output (wire dicts, a URL, or names like ``"bucket"``)."""
        return self._replace(self._client.set_data_source(self.id, data_source, data_destination))

    def set_name(self, name: str) -> Job:
        """Rename the job."""
        return self._replace(self._client.set_name(self.id, name))

    def set_config(self, config: dict[str, Any]) -> Job:
        """Set ``task_timeout`` / ``job_timeout`` / ``is_test_job`` (snake or camel case)."""
        return self._replace(self._client.set_config(self.id, config))

    def upload(self, source: Any) -> Job:
        """Upload the input of a ``file`` data source (path, bytes or binary file object)."""
        self._client.upload(self.id, source)
        return self.refresh()

    def results(self) -> list[ResultFile]:
        """The result files. Raises :class:`ResultsNotReadyError` (a ``BadRequestError``)
        while the job runs."""
        from bytenite_nb.api.outputs import outputs_of

        files = self._client.results(self.id)
        if self._outputs is None or self._outputs.rows is None:
            self._outputs = outputs_of(self._client, self.id, results=files, count_rows=False)
        return files

    def download(self, directory: str | Path = ".", *, overwrite: bool = True) -> list[Path]:
        """Download every result file into ``directory``; returns the written paths."""
        return self._client.download_results(self.id, directory, overwrite=overwrite)

    def logs(
        self,
        *,
        task_ids: Iterable[str] | None = None,
        levels: Iterable[Any] | None = None,
        services: Iterable[Any] | None = None,
    ) -> list[LogEntry]:
        """The job's log lines, oldest first."""
        return self._client.logs(self.id, task_ids=task_ids, levels=levels, services=services)

    def logs_df(self, **filters: Any) -> pd.DataFrame:
        """:meth:`logs` as a typed DataFrame (see :func:`bytenite_nb.frames.logs_df`)."""
        from bytenite_nb import frames

        return frames.logs_df(self.logs(**filters))

    def tasks(self) -> list[TaskInfo]:
        """Per-task states and timings (a ByteNite Local extension)."""
        return self._client.tasks(self.id)

    def tasks_df(self) -> pd.DataFrame:
        """:meth:`tasks` as a typed DataFrame, one row per task (see
        :func:`bytenite_nb.frames.tasks_df`); the job's id is in ``attrs["job_id"]`` rather
        than on every row."""
        from bytenite_nb import frames

        return frames.tasks_df(self.tasks(), job_id=self.id)

    def timeline(self, *, rows: str = "slot", straggler: float = 2.0,
                 width: int = 860) -> Timeline:
        """The job's task timeline, displayed as an SVG (see :mod:`bytenite_nb.timeline`).

        Every task attempt is a bar from its start to its end, on rows by worker slot
        (``rows="chunk"``: one row per chunk), coloured by outcome, under the job's phases;
        completed tasks slower than ``straggler`` times the median are marked. Its
        ``frame()`` is the data, one row per attempt.
        """
        from bytenite_nb.timeline import timeline_of

        return timeline_of(self, self._client.tasks(self.id, attempts=True), rows=rows,  # type: ignore[arg-type]
                           straggler=straggler, width=width)

    def results_df(self) -> pd.DataFrame:
        """:meth:`results` as a typed DataFrame (see :func:`bytenite_nb.frames.results_df`)."""
        from bytenite_nb import frames

        return frames.results_df(self.results(), job_id=self.id)

    def events(self, *, since: str | None = None, **kwargs: Any) -> EventStream:
        """This job's events (other jobs' events are filtered out)."""
        return self._client.events(since=since, job_id=self.id, **kwargs)

    def load_results(self, *, concat: bool = False, directory: str | Path | None = None,
                     read_options: dict[str, dict[str, Any]] | None = None,
                     wait: bool = True, timeout: float | None = None) -> Any:
        """Download the results and read them: tables as DataFrames, text as ``str``.

        ``docs/results.md`` is the rule, in one place: CSV, TSV, JSON, JSON Lines and Parquet
        become DataFrames (pandas' defaults: ``NA``, ``null`` or an empty field are missing
        values; ``read_options`` passes arguments to a format's reader, e.g. ``{"csv":
        {"keep_default_na": False}}``); ``.txt``/``.log``/``.md`` become one ``str`` each;
        other files are left out. Returns ``{name: DataFrame | str}``, or with
        ``concat=True`` one DataFrame of every table with a ``result_file`` column.

        A job still running is waited for first (its progress shows where a display
        exists); ``wait=False`` raises :class:`ResultsNotReadyError` instead. A failed or
        aborted job raises :class:`JobFailedError`. A job that produced nothing (no result
        files, or only empty ones) raises :class:`EmptyResultsError` saying so.
        """
        from bytenite_nb import frames

        options = frames.check_read_options(read_options)  # before anything is downloaded
        self._ready(wait=wait, timeout=timeout)
        if directory is None:
            import tempfile

            with tempfile.TemporaryDirectory(prefix="bytenite-results-") as tmp:
                paths = self.download(tmp)
                return frames.load_result_files(paths, Path(tmp), concat=concat,
                                                read_options=options, job=self)
        target = Path(directory)
        return frames.load_result_files(self.download(target), target, concat=concat,
                                        read_options=options, job=self)

    def _ready(self, *, wait: bool, timeout: float | None) -> None:
        """Make sure the job completed: wait for it (showing progress where the notebook
        layer can), or raise what says why its results cannot be read."""
        if not self.is_terminal:
            self.refresh()
        if not self.is_terminal:
            if not wait:
                raise ResultsNotReadyError.for_job(self)
            view = _WAIT_VIEW(self) if _WAIT_VIEW is not None else contextlib.nullcontext()
            with view:
                self.wait(timeout)
        if self.state is wire.JobState.FAILED:
            raise JobFailedError(self, self.error_log_lines())

    def watch(
        self, on_update: Callable[[JobSnapshot], None] | None = None, **kwargs: Any
    ) -> JobWatcher:
        """Start a :class:`~bytenite_nb.api.watcher.JobWatcher` feeding ``on_update``."""
        from bytenite_nb.api.watcher import JobWatcher

        return JobWatcher(self._client, self.id, on_update, **kwargs)

    def wait(
        self,
        timeout: float | None = None,
        *,
        poll_interval: float = 1.0,
        on_update: Callable[[JobSnapshot], None] | None = None,
    ) -> Job:
        """Block until the job is COMPLETE or FAILED; returns ``self``, refreshed.

        Follows the events stream (polling when it is silent or absent). Raises
        :class:`JobFailedError` (with ``errorMessage`` and the first ERROR log lines) when the
        job fails, :class:`WaitTimeoutError` after ``timeout`` seconds (the job keeps running).
        A KeyboardInterrupt stops waiting and propagates; it does not abort the job.
        """
        from bytenite_nb.api.watcher import JobWatcher

        done = threading.Event()

        def forward(snapshot: JobSnapshot) -> None:
            if on_update is not None:
                on_update(snapshot)
            if snapshot.is_terminal:
                done.set()

        watcher = JobWatcher(self._client, self.id, forward, poll_interval=poll_interval)
        try:
            finished = _wait_interruptibly(done, watcher.done, timeout)
        finally:
            watcher.stop()
        # Only an error that ended the watcher on its own counts (e.g. the job was deleted);
        # after a timeout the stop is ours and the answer is WaitTimeoutError.
        if finished and watcher.error is not None and not done.is_set():
            raise watcher.error
        self.refresh()
        if not self.is_terminal:
            raise WaitTimeoutError(self, timeout if timeout is not None else 0.0)
        if self.state is wire.JobState.FAILED:
            raise JobFailedError(self, self.error_log_lines())
        if self._outputs is None:
            try:  # so the job's repr says what came out
                self.fetch_outputs(count_rows=False)
            except Exception as exc:  # the job completed; a summary is no reason to fail
                log.debug("could not list the results of job %s: %s", self.id, exc)
        return self

    def error_log_lines(self, limit: int = ERROR_LOG_LINES) -> list[str]:
        """The job's first ``limit`` ERROR-or-worse log lines, formatted (``[]`` if the logs
        cannot be fetched: a failure's own message matters more).

        When the job has an ``errorMessage``, ByteNite Local's own lines (container
        ``bytenite-local``: "attempt 1 of 1 failed …") are left out: they restate it, and
        the app's own output is what explains it. They still say which step failed (their
        ``service``: partitioner, task runner, assembler), and the lines of that step come
        first: a partitioner that logs to stderr has its lines counted as errors, and they
        should not stand in front of the task's traceback.
        """
        try:
            entries = self._client.logs(self.id, levels=_ERROR_LEVELS)
        except Exception as exc:
            log.debug("could not fetch logs of failed job %s: %s", self.id, exc)
            return []
        errors = [e for e in entries if e.level in _ERROR_LEVELS]
        runtime = [e for e in errors if e.container == wire.RUNTIME_LOG_CONTAINER]
        if self.error_message:
            errors = [e for e in errors if e.container != wire.RUNTIME_LOG_CONTAINER]
        failed_steps = {e.service for e in runtime}
        errors.sort(key=lambda e: e.service not in failed_steps)  # stable: order kept within
        return [str(e) for e in errors[:limit]]


def _wait_interruptibly(
    done: threading.Event, stopped: threading.Event, timeout: float | None
) -> bool:
    """Wait for ``done`` (or the watcher ending) in short slices so Ctrl-C gets through."""
    import time

    deadline = None if timeout is None else time.monotonic() + timeout
    while not done.is_set() and not stopped.is_set():
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return False
        done.wait(0.2 if remaining is None else min(0.2, remaining))
    return done.is_set() or stopped.is_set()
