"""API records -> pandas DataFrames with a declared dtype schema.

Every frame has fixed columns and dtypes, whatever the input (an empty input gives an empty
frame with the same schema): ids and text ``str``; timestamps ``datetime64[us, UTC]``;
``status`` ordered categoricals of the words in :mod:`bytenite_nb.vocabulary`, in
lifecycle order (``running``, ``complete``, ``aborted``...: the words every view shows);
protojson int64-as-string fields nullable ``Int64``; durations ``timedelta64[us]``;
flags nullable ``boolean``.

Frames are built column by column straight from the JSON records (one pass per column,
vectorized conversions), which is several times faster than ``pandas.json_normalize`` and
gives the right dtypes, which ``json_normalize`` does not (see ``benchmarks/frames.py``).

Accepted inputs are the client's objects (``Job``, ``LogEntry``, ``TaskInfo``,
``ResultFile``, ``Template``, task ``Event``\\ s) or their raw JSON dicts.

Frames come back as :class:`ReadableFrame`, a DataFrame whose HTML display is made for
reading (ids shortened to their first 8 characters, long text wrapped instead of cut); the
data are exactly the same as a plain DataFrame's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bytenite_nb import vocabulary, wire
from bytenite_nb.api.errors import ByteniteWarning, EmptyResultsError

__all__ = [
    "JOBS_COLUMNS",
    "JOBS_SCHEMA",
    "LOGS_SCHEMA",
    "READ_OPTION_FORMATS",
    "RESULTS_SCHEMA",
    "SECRETS_SCHEMA",
    "TASKS_SCHEMA",
    "TEMPLATES_SCHEMA",
    "ReadableFrame",
    "check_read_options",
    "jobs_df",
    "jobs_to_records",
    "load_result_files",
    "logs_df",
    "read_result_file",
    "results_df",
    "secrets_df",
    "task_records_from_events",
    "tasks_df",
    "templates_df",
]

UTC = "datetime64[us, UTC]"
TIMEDELTA = "timedelta64[us]"
#: A job's ``status`` (:data:`bytenite_nb.vocabulary.STATUSES`, lifecycle order).
JOB_STATUS_DTYPE = pd.CategoricalDtype(list(vocabulary.STATUSES), ordered=True)
#: A task's ``status`` (:data:`bytenite_nb.vocabulary.TASK_STATUSES`).
TASK_STATUS_DTYPE = pd.CategoricalDtype(list(vocabulary.TASK_STATUSES), ordered=True)
LOG_LEVEL_DTYPE = pd.CategoricalDtype([s.value for s in wire.LOG_LEVEL_ORDER], ordered=True)
LOG_SERVICE_DTYPE = pd.CategoricalDtype([s.value for s in wire.LogService])

#: jobs_df: column -> dtype (the index, ``id``, is ``str``).
JOBS_SCHEMA: dict[str, Any] = {
    "name": "str",
    "description": "str",
    "template_id": "str",
    "status": JOB_STATUS_DTYPE,
    "created_at": UTC,
    "submitted_at": UTC,
    "started_at": UTC,
    "ended_at": UTC,
    "duration": TIMEDELTA,
    "num_chunks": "Int64",
    "error_message": "str",
    "data_source": "str",
    "data_destination": "str",
    "task_timeout": TIMEDELTA,
    "job_timeout": TIMEDELTA,
    "is_test_job": "boolean",
    "payment_amount": "Int64",
}
#: The jobs_df columns people read, shown by default (``columns="all"`` gives JOBS_SCHEMA).
JOBS_COLUMNS: tuple[str, ...] = ("name", "template_id", "status", "created_at", "duration",
                                 "num_chunks", "error_message")
LOGS_SCHEMA: dict[str, Any] = {
    "job_id": "str",
    "timestamp": UTC,
    "service": LOG_SERVICE_DTYPE,
    "task_id": "str",
    "level": LOG_LEVEL_DTYPE,
    "message": "str",
    "container": "str",
}
TASKS_SCHEMA: dict[str, Any] = {
    "job_id": "str",
    "task_id": "str",
    "chunk_number": "Int64",
    "status": TASK_STATUS_DTYPE,
    "attempts": "Int64",
    "started_at": UTC,
    "ended_at": UTC,
    "duration": TIMEDELTA,
    "exit_code": "Int64",
    "error_message": "str",
}
RESULTS_SCHEMA: dict[str, Any] = {"job_id": "str", "name": "str", "link": "str", "size": "Int64"}
#: templates_df: column -> dtype (the index, ``id``, is ``str``).
TEMPLATES_SCHEMA: dict[str, Any] = {
    "description": "str",
    "app": "str",
    "partitioner": "str",
    "assembler": "str",
    "params": "str",
    "owner": "str",
    "created_at": UTC,
}
#: secrets_df: column -> dtype (the index, ``id``, is ``str``). No secret key: no API returns it.
SECRETS_SCHEMA: dict[str, Any] = {
    "secret_type": "str",
    "name": "str",
    "access_key": "str",
    "expires_at": UTC,
}


# --------------------------------------------------------------------------------------------
# Column builders: one list in, one typed array out
# --------------------------------------------------------------------------------------------


def _records(items: Iterable[Any]) -> list[dict[str, Any]]:
    recs = items if isinstance(items, list) else list(items)
    if all(type(r) is dict for r in recs):
        return recs
    return [_raw(x) for x in recs]


def _raw(item: Any) -> dict[str, Any]:
    raw = getattr(item, "raw", item)
    if not isinstance(raw, dict):
        raise TypeError(f"expected an API object or a JSON dict, got {type(item).__name__}")
    return raw


def _str(values: list[Any], *, empty_is_missing: bool = True) -> pd.Series:
    # protojson writes unset strings as "" (or null): both are missing data in a frame. The
    # C-level membership test keeps the common no-"" case free of a Python-level pass.
    if empty_is_missing and "" in values:
        values = [v if v else None for v in values]
    arrow = _arrow()
    if arrow:
        try:
            # Handing Arrow's own array to pandas skips a second per-element conversion.
            return pd.Series(pd.array(arrow[0].array(values, type=arrow[0].string()), dtype="str"))
        except (arrow[0].ArrowInvalid, arrow[0].ArrowTypeError):
            pass  # non-string values: let pandas convert them
    return pd.Series(values, dtype="str")


def _arrow() -> Any:
    """``(pyarrow, pyarrow.compute)`` when installed (optional: it only makes frames faster)."""
    global _ARROW
    if _ARROW is None:
        try:
            import pyarrow
            import pyarrow.compute

            _ARROW = (pyarrow, pyarrow.compute)
        except ImportError:
            _ARROW = False
    return _ARROW


_ARROW: Any = None


def _arrow_cast(values: list[Any], target: str) -> Any:
    """Parse a list of strings/None with Arrow's C++ casts; ``None`` if Arrow cannot."""
    arrow = _arrow()
    if not arrow:
        return None
    pa, pc = arrow
    try:
        strings = pa.array(values, type=pa.string())
        if target == "timestamp":
            return pc.cast(strings, pa.timestamp("us", tz="UTC")).to_pandas()
        if target == "int64":
            ints = pc.cast(strings, pa.int64())
            return ints.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
        return pc.cast(strings, pa.float64()).to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # Mixed numbers and strings, "", nanosecond fractions...: the general path copes.
        return None


def _ts(values: list[Any]) -> pd.Series:
    fast = _arrow_cast(values, "timestamp")
    if fast is not None:
        return pd.Series(fast, dtype=UTC)
    series = pd.Series(values, dtype=object)
    if series.isna().all():
        return pd.Series(pd.NaT, index=series.index, dtype=UTC)
    return pd.to_datetime(series, utc=True, format="ISO8601").astype(UTC)


def _int64(values: list[Any]) -> pd.Series:
    fast = _arrow_cast(values, "int64")
    if fast is not None:
        return pd.Series(fast)
    out: list[int | None] = []
    append = out.append
    for v in values:
        if v is None or v == "" or isinstance(v, bool):
            append(None)
        elif isinstance(v, int):
            append(v)
        else:
            try:
                append(int(v))
            except (TypeError, ValueError):
                append(None)
    return pd.Series(pd.array(out, dtype="Int64"))


def _seconds(values: list[Any]) -> pd.Series:
    """Seconds (int64 string or number) -> timedelta."""
    floats = _arrow_cast(values, "float64")
    if floats is None:
        floats = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
    return pd.to_timedelta(pd.Series(floats).astype("float64"), unit="s").astype(TIMEDELTA)


def _category(values: list[Any], dtype: pd.CategoricalDtype) -> pd.Series:
    # Codes through a dict lookup are ~3x faster than pd.Categorical(values); unknown -> NaN.
    lookup = _CODES.get(id(dtype))
    if lookup is None:
        lookup = _CODES[id(dtype)] = {c: i for i, c in enumerate(dtype.categories)}
    get = lookup.get
    codes = np.array([get(v, -1) for v in values], dtype=np.int16)
    return pd.Series(pd.Categorical.from_codes(codes, dtype=dtype))


_CODES: dict[int, dict[Any, int]] = {}


def _bool(values: list[Any]) -> pd.Series:
    return pd.Series(pd.array([None if v is None else bool(v) for v in values], dtype="boolean"))


#: Columns holding job ids (long UUIDs), whose HTML display is shortened; a frame indexed by
#: job id says so in ``attrs`` (template and secret ids are names: never shortened).
_ID_NAMES = frozenset({"job_id"})
_JOB_INDEX = "bytenite_job_index"
#: Text columns whose HTML display wraps rather than cuts.
_WRAPPED = frozenset({"description", "error_message", "message", "params"})
#: How many characters of an id the HTML display shows.
SHORT_ID = 8


class ReadableFrame(pd.DataFrame):
    """A DataFrame whose HTML display is made for a person reading it.

    Job ids (``jobs_df``'s index, ``job_id`` columns) show their first :data:`SHORT_ID` characters
    and long text (descriptions, error messages, log messages) wraps instead of being cut.
    Only the display changes: values, dtypes and every operation are a DataFrame's, and
    frames derived from it (filters, selections) keep the readable display.
    """

    @property
    def _constructor(self) -> Any:
        return ReadableFrame

    def __repr__(self) -> str:
        if not _WRAPPED.intersection(self.columns):
            return super().__repr__()
        with pd.option_context("display.max_colwidth", None):  # long text whole, not cut
            return super().__repr__()

    def _repr_html_(self) -> str | None:
        shown = pd.DataFrame(self)
        if self.attrs.get(_JOB_INDEX) and shown.index.dtype == "str":
            shown.index = shown.index.map(_shorten)
        for name in _ID_NAMES.intersection(shown.columns):
            if shown[name].dtype == "str":
                shown[name] = shown[name].map(_shorten, na_action="ignore")
        wrapped = [i for i, name in enumerate(shown.columns) if name in _WRAPPED]
        if not wrapped:
            return shown._repr_html_()
        with pd.option_context("display.max_colwidth", None):
            table = shown._repr_html_()
        if table is None:
            return None
        # A class of its own, so the rule reaches only this table's wrapped columns.
        mark = f"bn-frame-{id(self):x}"
        first = shown.index.nlevels + 1  # nth-child counts the row's index cells
        cells = ",".join(f".{mark} td:nth-child({first + i})" for i in wrapped)
        style = (f"<style>{cells}{{white-space:normal;min-width:12em;max-width:42em;"
                 "text-align:left;overflow-wrap:anywhere}</style>")
        return f'<div class="{mark}">{style}{table}</div>'


def _shorten(value: Any) -> Any:
    return value[:SHORT_ID] if isinstance(value, str) and len(value) > SHORT_ID else value


def _frame(
    columns: dict[str, pd.Series],
    schema: dict[str, Any],
    index: str | None = None,
    index_values: list[Any] | None = None,
) -> ReadableFrame:
    frame = ReadableFrame({name: columns[name] for name in schema}, copy=False)
    if index is not None:
        frame.index = pd.Index(
            [v if v else None for v in index_values or []], dtype="str", name=index
        )
    return frame


# --------------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------------


def jobs_df(jobs: Iterable[Any], *, columns: str | Sequence[str] = "default") -> pd.DataFrame:
    """Jobs (``Job`` objects or protojson dicts) -> one row per job, indexed by ``id``.

    ``columns``: ``"default"`` the ones people read (:data:`JOBS_COLUMNS`: name, template,
    status, created, duration, chunks, error), ``"all"`` every column of
    :data:`JOBS_SCHEMA` (timestamps of each step, data source and destination, config,
    payment), or a list of column names. ``status`` is the job's status word (``running``,
    ``complete``, ``aborted``...). ``duration`` is ``ended_at - started_at`` once the job
    ended (else the job's own ``duration`` seconds); missing (``NaT``) while it runs,
    whatever the server's ``duration`` field says then (ByteNite Local says 0).
    """
    chosen = _job_columns(columns)
    recs = _records(jobs)
    configs = [r.get("config") or {} for r in recs]
    started = _ts([r.get("startedAt") for r in recs])
    ended = _ts([r.get("endedAt") for r in recs])
    statuses = [vocabulary.status_of(r.get("state"), r.get("errorMessage")) for r in recs]
    duration = (ended - started).astype(TIMEDELTA)
    missing = duration.isna()
    if missing.any():
        unfinished = pd.Series([s in _UNFINISHED for s in statuses], index=duration.index)
        seconds = _seconds([r.get("duration") for r in recs])
        duration = duration.where(~missing | unfinished, seconds)
    built = {
        "name": _str([r.get("name") for r in recs]),
        "description": _str([r.get("description") for r in recs]),
        "template_id": _str([r.get("templateId") for r in recs]),
        "status": _category(statuses, JOB_STATUS_DTYPE),
        "created_at": _ts([r.get("createdAt") for r in recs]),
        "submitted_at": _ts([r.get("submittedAt") for r in recs]),
        "started_at": started,
        "ended_at": ended,
        "duration": duration,
        "num_chunks": _int64([r.get("numChunks") for r in recs]),
        "error_message": _str([r.get("errorMessage") for r in recs]),
        "data_source": _str(
            [(r.get("dataSource") or {}).get("dataSourceDescriptor") for r in recs]
        ),
        "data_destination": _str(
            [(r.get("dataDestination") or {}).get("dataSourceDescriptor") for r in recs]
        ),
        "task_timeout": _seconds([c.get("taskTimeout") for c in configs]),
        "job_timeout": _seconds([c.get("jobTimeout") for c in configs]),
        "is_test_job": _bool([c.get("isTestJob") for c in configs]),
        "payment_amount": _int64([r.get("paymentAmount") for r in recs]),
    }
    frame = _frame(built, JOBS_SCHEMA, "id", [r.get("id") for r in recs])
    frame.attrs[_JOB_INDEX] = True
    return frame if len(chosen) == len(JOBS_SCHEMA) else frame[list(chosen)]


def _job_columns(columns: str | Sequence[str]) -> tuple[str, ...]:
    """The jobs_df columns asked for; a ValueError names the unknown ones."""
    if isinstance(columns, str):
        if columns == "all":
            return tuple(JOBS_SCHEMA)
        if columns == "default":
            return JOBS_COLUMNS
        columns = [columns]
    chosen = tuple(columns)
    unknown = [c for c in chosen if c not in JOBS_SCHEMA]
    if unknown:
        raise ValueError(f"jobs_df: unknown column(s) {', '.join(map(repr, unknown))}; use "
                         f"'default', 'all' or names from: {', '.join(JOBS_SCHEMA)}")
    return chosen


#: Statuses of a job that has not ended.
_UNFINISHED = frozenset({vocabulary.DRAFT, vocabulary.QUEUED, vocabulary.PARTITIONING,
                         vocabulary.RUNNING, vocabulary.ASSEMBLING})
#: The wire state written back for a status (lossy where several states share a status).
_STATE_OF_STATUS = {
    vocabulary.UNKNOWN: None, vocabulary.DRAFT: wire.JobState.NEW.value,
    vocabulary.QUEUED: wire.JobState.STARTED.value,
    vocabulary.PARTITIONING: wire.JobState.PARTITIONING.value,
    vocabulary.RUNNING: wire.JobState.PARTITIONED.value,
    vocabulary.ASSEMBLING: wire.JobState.MERGING.value,
    vocabulary.COMPLETE: wire.JobState.COMPLETE.value,
    vocabulary.FAILED: wire.JobState.FAILED.value,
    vocabulary.ABORTED: wire.JobState.FAILED.value,
}


def _ts_out(value: Any) -> str | None:
    return None if pd.isna(value) else wire.format_timestamp(value.to_pydatetime())


def _na(value: Any) -> bool:
    return value is None or value is pd.NA or (not isinstance(value, str) and pd.isna(value))


def jobs_to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The inverse of :func:`jobs_df`: protojson-shaped dicts (camelCase, int64 as strings).

    Only the schema's columns are written back; derived ``duration`` is omitted, and
    ``status`` becomes the first wire state of that status (``running`` -> PARTITIONED,
    ``assembling`` -> MERGING, ``aborted`` -> FAILED).
    """
    out: list[dict[str, Any]] = []
    for job_id, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        config: dict[str, Any] = {}
        for key, value in (("taskTimeout", row.task_timeout), ("jobTimeout", row.job_timeout)):
            if not _na(value):
                config[key] = wire.int64_out(int(value.total_seconds()))
        if not _na(row.is_test_job):
            config["isTestJob"] = bool(row.is_test_job)
        out.append(
            {
                "id": job_id,
                "name": "" if _na(row.name) else row.name,
                "description": "" if _na(row.description) else row.description,
                "templateId": "" if _na(row.template_id) else row.template_id,
                "state": None if _na(row.status) else _STATE_OF_STATUS[str(row.status)],
                "createdAt": _ts_out(row.created_at),
                "submittedAt": _ts_out(row.submitted_at),
                "startedAt": _ts_out(row.started_at),
                "endedAt": _ts_out(row.ended_at),
                "numChunks": None if _na(row.num_chunks) else wire.int64_out(int(row.num_chunks)),
                "errorMessage": "" if _na(row.error_message) else row.error_message,
                "dataSource": None
                if _na(row.data_source)
                else {"dataSourceDescriptor": row.data_source},
                "dataDestination": None
                if _na(row.data_destination)
                else {"dataSourceDescriptor": row.data_destination},
                "config": config or None,
                "paymentAmount": None
                if _na(row.payment_amount)
                else wire.int64_out(int(row.payment_amount)),
            }
        )
    return out


# --------------------------------------------------------------------------------------------
# Logs, tasks, results, templates
# --------------------------------------------------------------------------------------------


def logs_df(logs: Iterable[Any]) -> pd.DataFrame:
    """Log lines (``LogEntry`` objects or flat records from ``Client.log_records``) -> frame.

    Columns and dtypes: :data:`LOGS_SCHEMA`; ``level`` and ``service`` are categoricals
    (levels ordered by severity, so ``df[df.level >= "ERROR"]`` works).
    """
    recs = _records(logs)
    columns = {
        "job_id": _str([r.get("jobId") for r in recs]),
        "timestamp": _ts([r.get("timestamp") for r in recs]),
        "service": _category([r.get("service") for r in recs], LOG_SERVICE_DTYPE),
        "task_id": _str([r.get("taskId") for r in recs]),
        "level": _category([r.get("level") for r in recs], LOG_LEVEL_DTYPE),
        # An empty log line is a line: keep "" (only a missing one is NaN).
        "message": _str([r.get("log") for r in recs], empty_is_missing=False),
        "container": _str([r.get("container") for r in recs]),
    }
    return _frame(columns, LOGS_SCHEMA)


def task_records_from_events(events: Iterable[Any]) -> list[dict[str, Any]]:
    """Fold ``task.state`` events into one task record per (job, chunk), with timings.

    ``startedAt`` is the first RUNNING, ``endedAt`` the last terminal state's timestamp.
    """
    tasks: dict[tuple[str, int], dict[str, Any]] = {}
    for event in events:
        name = getattr(event, "name", None)
        data = getattr(event, "data", event)
        if name is not None and name != wire.EVENT_TASK_STATE:
            continue
        if not isinstance(data, dict) or data.get("chunkNumber") is None:
            continue
        chunk = int(data["chunkNumber"])
        job_id = str(data.get("jobId") or "")
        rec = tasks.setdefault(
            (job_id, chunk),
            {
                "jobId": job_id,
                "id": data.get("taskId") or wire.task_id(chunk),
                "chunkNumber": chunk,
                "startedAt": None,
                "endedAt": None,
            },
        )
        state = data.get("state")
        stamp = data.get("timestamp")
        rec["state"] = state
        rec["attempts"] = data.get("attempt", rec.get("attempts"))
        if data.get("exitCode") is not None:
            rec["exitCode"] = data["exitCode"]
        if data.get("errorMessage"):
            rec["errorMessage"] = data["errorMessage"]
        if state == wire.TaskState.RUNNING.value and rec["startedAt"] is None:
            rec["startedAt"] = stamp
        if state in {s.value for s in wire.TaskState if s.is_terminal}:
            rec["endedAt"] = stamp
    return sorted(tasks.values(), key=lambda r: (r["jobId"], r["chunkNumber"]))


def tasks_df(tasks: Iterable[Any], *, job_id: str | None = None) -> pd.DataFrame:
    """Tasks (``TaskInfo``, task records, or ``task.state`` events) -> one row per task.

    Columns and dtypes: :data:`TASKS_SCHEMA`; ``status`` is the task's status word
    (``complete``, ``failed``, ``cancelled``...). ``duration`` is the server's (seconds) when
    given, else ``ended_at - started_at``. With ``job_id`` (the tasks of that one job, as
    ``Job.tasks_df()`` gives them) the ``job_id`` column is left out, since every row would
    repeat it, and the id is kept in ``frame.attrs["job_id"]``.
    """
    items = list(tasks)
    if items and (
        getattr(items[0], "name", None) == wire.EVENT_TASK_STATE
        or (isinstance(items[0], dict) and "@type" in items[0])
    ):
        recs = task_records_from_events(items)
    else:
        recs = _records(items)
    started = _ts([r.get("startedAt") for r in recs])
    ended = _ts([r.get("endedAt") for r in recs])
    duration = _seconds([r.get("duration") for r in recs])
    missing = duration.isna()
    if missing.any():
        duration = duration.where(~missing, (ended - started).astype(TIMEDELTA))
    columns = {
        "job_id": _str([r.get("jobId") for r in recs]),
        "task_id": _str([r.get("id") or r.get("taskId") for r in recs]),
        "chunk_number": _int64([r.get("chunkNumber") for r in recs]),
        "status": _category([vocabulary.task_status(r.get("state")) for r in recs],
                            TASK_STATUS_DTYPE),
        "attempts": _int64([r.get("attempts", r.get("attempt")) for r in recs]),
        "started_at": started,
        "ended_at": ended,
        "duration": duration,
        "exit_code": _int64([r.get("exitCode") for r in recs]),
        "error_message": _str([r.get("errorMessage") for r in recs]),
    }
    frame = _frame(columns, TASKS_SCHEMA)
    if job_id is None:
        return frame
    one_job = frame.drop(columns="job_id")
    one_job.attrs["job_id"] = job_id
    return one_job


def results_df(results: Iterable[Any], *, job_id: str | None = None) -> pd.DataFrame:
    """Result files (``ResultFile`` or ``{"name","link"}``) -> one row per file."""
    recs = _records(results)
    columns = {
        "job_id": _str([r.get("jobId") or job_id for r in recs]),
        "name": _str([r.get("name") for r in recs]),
        "link": _str([r.get("link") for r in recs]),
        "size": _int64([r.get("size") for r in recs]),
    }
    return _frame(columns, RESULTS_SCHEMA)


def templates_df(templates: Iterable[Any]) -> pd.DataFrame:
    """Templates (``Template`` or dicts) -> one row per template, indexed by ``id``.

    ``params`` names the params each section declares in its schema
    (``partitioner: rows_per_chunk, format · app: op, where``); missing when none does.
    """
    recs = _records(templates)
    columns = {
        "description": _str([r.get("description") for r in recs]),
        "app": _str([r.get("app") for r in recs]),
        "partitioner": _str([r.get("partitioner") for r in recs]),
        "assembler": _str([r.get("assembler") for r in recs]),
        "params": _str([_params_text(r) for r in recs]),
        "owner": _str([r.get("owner") for r in recs]),
        "created_at": _ts([r.get("createdAt") for r in recs]),
    }
    return _frame(columns, TEMPLATES_SCHEMA, "id", [r.get("id") for r in recs])


def _params_text(record: dict[str, Any]) -> str | None:
    """``partitioner: rows_per_chunk, format · app: op`` from a template's params schemas."""
    from bytenite_nb.api.models import Template
    from bytenite_nb.api.template_doc import describe_params

    return describe_params(Template.from_json(record)) or None


def secrets_df(secrets: Iterable[Any]) -> pd.DataFrame:
    """Secrets (``Secret`` or dicts, as listed: without keys) -> one row each, indexed by ``id``
    (an id may name one secret per ``secret_type``)."""
    recs = _records(secrets)
    columns = {
        "secret_type": _str([r.get("secretType") for r in recs]),
        "name": _str([r.get("name") for r in recs]),
        "access_key": _str([r.get("accessKey") for r in recs]),
        "expires_at": _ts([r.get("expiresAt") for r in recs]),
    }
    return _frame(columns, SECRETS_SCHEMA, "id", [r.get("id") for r in recs])


# --------------------------------------------------------------------------------------------
# Result files
# --------------------------------------------------------------------------------------------

#: suffix -> (format name for ``read_options``, reader taking the path and pandas options)
_READERS: dict[str, tuple[str, Callable[..., pd.DataFrame]]] = {
    ".csv": ("csv", lambda p, **kw: pd.read_csv(p, **kw)),
    ".tsv": ("tsv", lambda p, **kw: pd.read_csv(p, **{"sep": "\t", **kw})),
    ".jsonl": ("jsonl", lambda p, **kw: pd.read_json(p, **{"lines": True, **kw})),
    ".ndjson": ("jsonl", lambda p, **kw: pd.read_json(p, **{"lines": True, **kw})),
    ".parquet": ("parquet", lambda p, **kw: pd.read_parquet(p, **kw)),
    ".pq": ("parquet", lambda p, **kw: pd.read_parquet(p, **kw)),
}
#: The formats whose pandas reader takes options (``read_options`` keys).
READ_OPTION_FORMATS = ("csv", "tsv", "jsonl", "parquet")
_TEXT_SUFFIXES = frozenset({".txt", ".log", ".text", ".md"})


def check_read_options(
        read_options: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """``read_options`` with its keys normalised (``".CSV"`` → ``"csv"``); unknown formats
    are a ``ValueError`` naming the ones that take options."""
    checked: dict[str, dict[str, Any]] = {}
    for key, options in (read_options or {}).items():
        name = str(key).lower().lstrip(".")
        name = {"ndjson": "jsonl", "pq": "parquet"}.get(name, name)
        if name not in READ_OPTION_FORMATS:
            raise ValueError(f"read_options: {key!r} is not a format whose reader takes "
                             f"options; use one of {', '.join(READ_OPTION_FORMATS)}")
        if not isinstance(options, Mapping):
            raise ValueError(f"read_options[{key!r}] must be a dict of pandas reader "
                             "arguments, e.g. {'keep_default_na': False}")
        checked[name] = dict(options)
    return checked


def _read_json(path: Path) -> pd.DataFrame:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError:
        # Not one JSON document: JSON Lines saved as .json is common enough to accept.
        return pd.read_json(path, lines=True)
    if isinstance(data, dict):
        # {"rows": [...]}-style wrappers: use the single list inside, else one row.
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else [data]
    return pd.json_normalize(data) if isinstance(data, list) else pd.DataFrame({"value": [data]})


def read_result_file(path: str | Path,
                     read_options: Mapping[str, Mapping[str, Any]] | None = None,
                     ) -> pd.DataFrame | str | None:
    """Read one result file by extension (the rule of ``docs/results.md``).

    CSV/TSV, JSON, JSON Lines and Parquet become DataFrames; ``.txt``, ``.log``, ``.text`` and
    ``.md`` become one ``str`` (UTF-8, undecodable bytes replaced); other files ``None``. An
    empty (0-byte) table file is an empty DataFrame, never a pandas error. ``read_options``
    maps a format (``csv``, ``tsv``, ``jsonl``, ``parquet``) to arguments for its pandas
    reader, e.g. ``{"csv": {"keep_default_na": False}}`` to keep ``NA``/``null`` as text.
    """
    options = check_read_options(read_options)
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix in _TEXT_SUFFIXES:
        return file.read_text(encoding="utf-8", errors="replace")
    if suffix != ".json" and suffix not in _READERS:
        return None
    if file.stat().st_size == 0:
        return pd.DataFrame()
    try:
        if suffix == ".json":
            return _read_json(file)
        name, reader = _READERS[suffix]
        return reader(file, **options.get(name, {}))
    except pd.errors.EmptyDataError:  # only blank lines: no columns, no rows
        return pd.DataFrame()


def _is_nothing(value: pd.DataFrame | str) -> bool:
    """An empty result: a text with no text, a table with neither columns nor rows."""
    if isinstance(value, str):
        return not value.strip()
    return value.empty and len(value.columns) == 0


def load_result_files(paths: Sequence[Path], root: Path, *, concat: bool = False,
                      read_options: Mapping[str, Mapping[str, Any]] | None = None,
                      job: Any = None) -> Any:
    """Read downloaded result files: ``{relative name: DataFrame | str}``, or with
    ``concat=True`` one DataFrame of every table, with a ``result_file`` column (``str``)
    saying which file each row is from.

    Files of other types are left out. Raises :class:`~bytenite_nb.api.errors.EmptyResultsError`
    when there is nothing to read (no files, or only empty ones: a job that got no input
    produces that), and with ``concat=True`` when no file is a table. ``job`` (the job the
    files came from) names it in those messages. ``read_options``: see
    :func:`read_result_file`.
    """
    options = check_read_options(read_options)  # (a typo fails before anything is read)
    who = f"job {job.id}" if job is not None else "the job"
    if not paths:
        raise EmptyResultsError(f"{who} completed without any result files: its assembler "
                                "wrote nothing (did it get its input?)", job)
    loaded: dict[str, pd.DataFrame | str] = {}
    for path in paths:
        value = read_result_file(path, options)
        if value is not None:
            loaded[Path(path).relative_to(root).as_posix()] = value
    names = ", ".join(Path(p).relative_to(root).as_posix() for p in paths)
    if all(Path(p).stat().st_size == 0 for p in paths) or (
            loaded and all(_is_nothing(v) for v in loaded.values())):
        raise EmptyResultsError(f"{who} completed, but its result files are empty ({names}): "
                                "it produced no rows (did it get its input?)", job)
    if not concat:
        if not loaded:
            import warnings

            warnings.warn(f"{who}'s results are neither tables nor text ({names}); "
                          "job.download(DIR) saves them as files", ByteniteWarning, stacklevel=3)
        return loaded
    tables = {name: v for name, v in loaded.items() if isinstance(v, pd.DataFrame)}
    if not tables:
        texts = [name for name, v in loaded.items() if isinstance(v, str)]
        kind = f"text ({', '.join(texts)})" if texts else f"not tables ({names})"
        raise EmptyResultsError(
            f"{who}'s results are {kind}: nothing to concatenate; load_results() without "
            "concat=True reads them", job)
    others = [name for name in loaded if name not in tables]
    if others:
        import warnings

        warnings.warn(f"concat=True left out {who}'s text results ({', '.join(others)}); "
                      "load_results() without concat=True returns them as str",
                      ByteniteWarning, stacklevel=3)
    parts = [
        f.assign(result_file=pd.Series(np.repeat(name, len(f)), dtype="str", index=f.index))
        for name, f in tables.items()
    ]
    return pd.concat(parts, ignore_index=True)
