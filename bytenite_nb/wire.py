"""The wire vocabulary shared by the API client and ByteNite Local.

Everything both sides of the ByteNite Customer API must agree on lives here and only here:
enum names, data source descriptors and their ``@type`` URLs, event names, the protojson
rules (camelCase keys out, camelCase or snake_case in, int64 as strings, RFC 3339 timestamps),
and the Developer API's folder archives (how a folder is packed, which entries are refused).

This module imports the standard library only, so the client (`bytenite_nb.api`) and the
server (`bytenite_nb.server`) can both depend on it without depending on each other.
"""

from __future__ import annotations

import datetime as _dt
import enum
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - tarfile is imported where archives are handled
    import tarfile

# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------

CUSTOMER_PREFIX = "/v1/customer"
#: ByteNite moved the Customer API here in 2025-09; ByteNite Local serves both prefixes.
COMPUTING_PREFIX = "/v1/computing"
AUTH_PREFIX = "/v1/auth"
DEV_PREFIX = "/v1/dev"

REQUEST_ID_HEADER = "X-Request-Id"
#: ByteNite Local's extension: resume the events stream after this sequence number.
LAST_EVENT_ID_HEADER = "Last-Event-ID"

DEFAULT_TOKEN_TTL_SECONDS = 3600
#: Result links of the temporary ``bucket`` destination expire after 48 hours, as on ByteNite.
RESULT_LINK_TTL_SECONDS = 48 * 3600


# --------------------------------------------------------------------------------------------
# Enums (values are the proto enum names, which is how protojson writes them)
# --------------------------------------------------------------------------------------------


class _NamedEnum(str, enum.Enum):
    """A ``str`` enum whose value is its proto name, so ``json.dumps`` writes the name."""

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value

    @classmethod
    def parse(cls, value: str | _NamedEnum) -> _NamedEnum:
        """Accept the full proto name, or the short name without the prefix, any case.

        ``JobState.parse("complete")`` and ``JobState.parse("JOB_STATE_COMPLETE")`` both
        give ``JobState.COMPLETE``. Raises ``ValueError`` listing the valid names.
        """
        if isinstance(value, cls):
            return value
        text = str(value).strip().upper()
        for member in cls:
            if text in (member.value, member.name):
                return member
        valid = ", ".join(m.value for m in cls)
        raise ValueError(f"{value!r} is not a valid {cls.__name__}; expected one of: {valid}")


class JobState(_NamedEnum):
    """``jobJobState``: a job's lifecycle, in the order ByteNite walks it."""

    UNKNOWN = "JOB_STATE_UNKNOWN"
    NEW = "JOB_STATE_NEW"
    STARTED = "JOB_STATE_STARTED"
    UPLOADING = "JOB_STATE_UPLOADING"
    PARTITIONING = "JOB_STATE_PARTITIONING"
    PARTITIONED = "JOB_STATE_PARTITIONED"
    TASKS_COMPLETED = "JOB_STATE_TASKS_COMPLETED"
    MERGING = "JOB_STATE_MERGING"
    MERGED = "JOB_STATE_MERGED"
    DOWNLOADING = "JOB_STATE_DOWNLOADING"
    COMPLETE = "JOB_STATE_COMPLETE"
    FAILED = "JOB_STATE_FAILED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_JOB_STATES

    @property
    def is_running(self) -> bool:
        return self not in TERMINAL_JOB_STATES and self not in (JobState.NEW, JobState.UNKNOWN)


#: Lifecycle order, used for categorical dtypes and for "has the job got past X" checks.
JOB_STATE_ORDER: tuple[JobState, ...] = tuple(JobState)
TERMINAL_JOB_STATES = frozenset({JobState.COMPLETE, JobState.FAILED})
#: ``errorMessage`` of a job ended by an abort. ByteNite reports an abort as FAILED with a
#: message saying so; a client tells an abort from a failure by such a message (any message
#: with the word "abort" in it), so this one says "aborted".
ABORTED_MESSAGE = "Job aborted by user request"
#: The states a run walks through, in order, when nothing fails.
RUN_STATES: tuple[JobState, ...] = (
    JobState.STARTED,
    JobState.UPLOADING,
    JobState.PARTITIONING,
    JobState.PARTITIONED,
    JobState.TASKS_COMPLETED,
    JobState.MERGING,
    JobState.MERGED,
    JobState.DOWNLOADING,
    JobState.COMPLETE,
)


class TaskState(_NamedEnum):
    """Per-task state. A ByteNite Local extension: the hosted API never exposed task states."""

    QUEUED = "TASK_STATE_QUEUED"
    RUNNING = "TASK_STATE_RUNNING"
    RETRYING = "TASK_STATE_RETRYING"
    COMPLETE = "TASK_STATE_COMPLETE"
    FAILED = "TASK_STATE_FAILED"
    CANCELLED = "TASK_STATE_CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in (TaskState.COMPLETE, TaskState.FAILED, TaskState.CANCELLED)


TASK_STATE_ORDER: tuple[TaskState, ...] = tuple(TaskState)


class FilterCondition(_NamedEnum):
    """``commonFilterCondition`` for ``POST /jobs/filter``."""

    EQ = "FILTER_CONDITION_EQ"
    NEQ = "FILTER_CONDITION_NEQ"
    GT = "FILTER_CONDITION_GT"
    GTE = "FILTER_CONDITION_GTE"
    LT = "FILTER_CONDITION_LT"
    LTE = "FILTER_CONDITION_LTE"
    ARRAY_CONTAINS = "FILTER_CONDITION_ARRAY_CONTAINS"
    ARRAY_CONTAINS_ANY = "FILTER_CONDITION_ARRAY_CONTAINS_ANY"
    IN = "FILTER_CONDITION_IN"
    NOT_IN = "FILTER_CONDITION_NOT_IN"
    LIKE = "FILTER_CONDITION_LIKE"


class LogLevel(_NamedEnum):
    """``logsLogLevel``, least to most severe (UNKNOWN first, as in the proto)."""

    UNKNOWN = "UNKNOWN"
    TRACE = "TRACE"
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"
    FATAL = "FATAL"
    PANIC = "PANIC"


LOG_LEVEL_ORDER: tuple[LogLevel, ...] = tuple(LogLevel)


class LogService(_NamedEnum):
    """``LogService``: which component of a job wrote a log line."""

    PARTITIONER = "PARTITIONER"
    ASSEMBLER = "ASSEMBLER"
    TASKRUNNER = "TASKRUNNER"


#: ``container`` of a log line an app, partitioner or assembler wrote (ByteNite Local).
APP_LOG_CONTAINER = "main"
#: ``container`` of ByteNite Local's own log lines about a job (retries, timeouts, failures,
#: each restating what the job's ``errorMessage`` or task record already says).
RUNTIME_LOG_CONTAINER = "bytenite-local"


class ExecutionPriority(_NamedEnum):
    """``jobByteLevel``: execution priority requirements for a job."""

    UNDEFINED = "EXECUTION_PRIORITY_UNDEFINED"
    CHEAP = "EXECUTION_PRIORITY_CHEAP"
    BALANCED = "EXECUTION_PRIORITY_BALANCED"
    FAST = "EXECUTION_PRIORITY_FAST"


# --------------------------------------------------------------------------------------------
# Data sources and destinations
# --------------------------------------------------------------------------------------------


class Descriptor(str, enum.Enum):
    """``dataSourceDescriptor`` values."""

    URL = "url"
    FILE = "file"
    BYPASS = "bypass"
    BUCKET = "bucket"
    S3 = "s3"
    AWS = "aws"
    GCP = "gcp"
    STORJ = "storj"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


TYPE_URL_PREFIX = "type.googleapis.com/"
HTTP_DATA_SOURCE_TYPE = "type.googleapis.com/bytenite.data_source.HttpDataSource"
LOCAL_FILE_DATA_SOURCE_TYPE = "type.googleapis.com/bytenite.data_source.LocalFileDataSource"
S3_DATA_SOURCE_TYPE = "type.googleapis.com/bytenite.data_source.S3DataSource"
PROTOBUF_VALUE_TYPE = "type.googleapis.com/google.protobuf.Value"

#: The ``@type`` each descriptor's params carry (``None``: the descriptor takes no params).
DESCRIPTOR_PARAM_TYPES: dict[Descriptor, str | None] = {
    Descriptor.URL: HTTP_DATA_SOURCE_TYPE,
    Descriptor.FILE: LOCAL_FILE_DATA_SOURCE_TYPE,
    Descriptor.BYPASS: None,
    Descriptor.BUCKET: None,
    Descriptor.S3: S3_DATA_SOURCE_TYPE,
    Descriptor.AWS: S3_DATA_SOURCE_TYPE,
    Descriptor.GCP: S3_DATA_SOURCE_TYPE,
    Descriptor.STORJ: S3_DATA_SOURCE_TYPE,
}
INPUT_DESCRIPTORS = frozenset(
    {Descriptor.URL, Descriptor.FILE, Descriptor.BYPASS, Descriptor.S3, Descriptor.AWS,
     Descriptor.GCP, Descriptor.STORJ}
)
OUTPUT_DESCRIPTORS = frozenset(
    {Descriptor.BUCKET, Descriptor.BYPASS, Descriptor.S3, Descriptor.AWS, Descriptor.GCP,
     Descriptor.STORJ}
)
#: Descriptors ByteNite Local can actually serve (cloud buckets need ByteNite's credentials).
LOCAL_INPUT_DESCRIPTORS = frozenset({Descriptor.URL, Descriptor.FILE, Descriptor.BYPASS})
LOCAL_OUTPUT_DESCRIPTORS = frozenset({Descriptor.BUCKET, Descriptor.BYPASS})


#: ``secretType`` values of the Auth API's secrets (``DataSourceSecret``). ``s3`` is the name
#: ``aws`` had before ByteNite renamed it (2025-09); it is accepted and means ``aws``.
SECRET_TYPES: tuple[str, ...] = ("aws", "gcp", "storj", "other")
SECRET_TYPE_ALIASES: dict[str, str] = {"s3": "aws"}


def secret_type(value: str) -> str:
    """The canonical ``secretType`` for ``value`` (any case; ``s3`` → ``aws``).

    Raises ``ValueError`` naming the accepted values.
    """
    text = str(value).strip().lower()
    text = SECRET_TYPE_ALIASES.get(text, text)
    if text not in SECRET_TYPES:
        raise ValueError(f"secretType {value!r} is not supported: use one of "
                         f"{', '.join(SECRET_TYPES)} (s3 is accepted as aws)")
    return text


def new_secret_id() -> str:
    """A fresh secret id (``secret_<12 hex digits>``), usable as an environment variable name."""
    return "secret_" + uuid.uuid4().hex[:12]


def url_source(url: str) -> dict[str, Any]:
    """A ``url`` data source descriptor for ``url``."""
    return {"dataSourceDescriptor": "url", "params": {"@type": HTTP_DATA_SOURCE_TYPE, "url": url}}


def file_source() -> dict[str, Any]:
    """A ``file`` data source descriptor (the server answers with a ``tempUrl`` to PUT to)."""
    return {"dataSourceDescriptor": "file", "params": {"@type": LOCAL_FILE_DATA_SOURCE_TYPE}}


def bypass() -> dict[str, Any]:
    """The ``bypass`` descriptor: no input (the partitioner gets one dummy file) or no output."""
    return {"dataSourceDescriptor": "bypass"}


#: The keys of a job's ``params``: one object per engine, and the (deprecated) preset name.
PARAM_SECTIONS = frozenset({"partitioner", "app", "assembler", "preset"})


def bucket_destination() -> dict[str, Any]:
    """The temporary ``bucket`` destination (results served as expiring links)."""
    return {"dataSourceDescriptor": "bucket"}


# --------------------------------------------------------------------------------------------
# Events (GET /events). ByteNite never published its event names; these are ByteNite Local's,
# documented in docs/events.md. Clients must ignore names they do not know.
# --------------------------------------------------------------------------------------------

EVENT_JOB_STATE = "job.state"
EVENT_TASK_STATE = "task.state"
EVENT_JOB_LOG = "job.log"
EVENT_HEARTBEAT = "heartbeat"

JOB_STATE_EVENT_TYPE = "type.googleapis.com/bytenite.local.JobStateEvent"
TASK_STATE_EVENT_TYPE = "type.googleapis.com/bytenite.local.TaskStateEvent"
JOB_LOG_EVENT_TYPE = "type.googleapis.com/bytenite.local.JobLogEvent"
HEARTBEAT_EVENT_TYPE = "type.googleapis.com/bytenite.local.Heartbeat"

EVENT_TYPES: dict[str, str] = {
    EVENT_JOB_STATE: JOB_STATE_EVENT_TYPE,
    EVENT_TASK_STATE: TASK_STATE_EVENT_TYPE,
    EVENT_JOB_LOG: JOB_LOG_EVENT_TYPE,
    EVENT_HEARTBEAT: HEARTBEAT_EVENT_TYPE,
}


def task_id(chunk_number: int) -> str:
    """The task id ByteNite Local gives the task that processes chunk ``chunk_number``."""
    return f"task-{chunk_number}"


# --------------------------------------------------------------------------------------------
# Developer API archives: an app or engine folder travels as the base64 of a tar of its
# contents (``POST /v1/dev/apps`` ``{"data"}``, ``GET /v1/dev/apps/{tag}/download``). The
# client packs what it pushes and unpacks what it downloads; the server does the reverse.
# --------------------------------------------------------------------------------------------

#: Folders never shipped with an app: VCS metadata, caches, virtual environments.
ARCHIVE_SKIP_DIRS = frozenset({".git", "__pycache__", ".ipynb_checkpoints", ".venv",
                               "node_modules"})


def tar_folder(folder: str | os.PathLike[str]) -> bytes:
    """A reproducible tar of ``folder``'s contents (paths relative to it, sorted, mtime 0,
    no owner), skipping `ARCHIVE_SKIP_DIRS`: the same folder always gives the same bytes.

    Raises ``FileNotFoundError`` if the folder or its ``manifest.json`` is missing.
    """
    import io
    import tarfile
    from pathlib import Path

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    if not any((root / n).is_file() for n in ("manifest.json", "Manifest.json")):
        raise FileNotFoundError(f"{root} has no manifest.json (not a Dev CLI app/engine folder)")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if any(part in ARCHIVE_SKIP_DIRS for part in rel.parts) or not path.is_file():
                continue
            info = tar.gettarinfo(str(path), arcname=rel.as_posix())
            # Same bytes for the same folder, so the server's content hash is stable.
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with path.open("rb") as fh:
                tar.addfile(info, fh)
    return buffer.getvalue()


def tar_member_problem(member: tarfile.TarInfo) -> str | None:
    """Why an archive entry must not be unpacked (absolute path, ``..``, a link, a device or
    fifo), as a message naming the entry; None when it is a plain file or folder inside."""
    name = member.name
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
        return (f"refused archive entry {name!r}: paths must stay inside the folder (no "
                "absolute paths, no '..')")
    if member.issym() or member.islnk():
        return f"refused archive entry {name!r}: links are not accepted"
    if not (member.isfile() or member.isdir()):
        return f"refused archive entry {name!r}: only files and folders are accepted"
    return None


# --------------------------------------------------------------------------------------------
# protojson helpers
# --------------------------------------------------------------------------------------------

_CAMEL_BOUNDARY = re.compile(r"_([a-z0-9])")
_SNAKE_BOUNDARY = re.compile(r"(?<=[a-z0-9])([A-Z])")


def to_camel(name: str) -> str:
    """``data_source`` -> ``dataSource`` (camelCase input is returned unchanged)."""
    return _CAMEL_BOUNDARY.sub(lambda m: m.group(1).upper(), name)


def to_snake(name: str) -> str:
    """``dataSource`` -> ``data_source`` (snake_case input is returned unchanged)."""
    return _SNAKE_BOUNDARY.sub(lambda m: "_" + m.group(1).lower(), name)


def camelize_keys(obj: Any, *, opaque: Iterable[str] = ()) -> Any:
    """Rewrite every dict key of ``obj`` to camelCase, recursively.

    Keys listed in ``opaque`` (compared after camelizing) keep their values untouched: use it
    for free-form user JSON such as job ``params`` or a data source's ``params``, whose keys
    belong to the user and must reach the app exactly as written.
    """
    opaque_set = frozenset(opaque)
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            ckey = to_camel(key) if isinstance(key, str) else key
            out[ckey] = value if ckey in opaque_set else camelize_keys(value, opaque=opaque_set)
        return out
    if isinstance(obj, list):
        return [camelize_keys(v, opaque=opaque_set) for v in obj]
    return obj


def int64_out(value: int | None) -> str | None:
    """protojson writes int64/uint64 as decimal strings; ``None`` stays ``null``."""
    return None if value is None else str(int(value))


#: The range of protobuf's int64 (every int64 ByteNite Local reads must fit in it: SQLite
#: stores exactly this range, and a larger number would fail far from where it came in).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def int64_in(value: Any, *, field: str = "value") -> int | None:
    """Read an int64 sent as a JSON number or string. Raises ``ValueError`` naming ``field``,
    also for a whole number outside the int64 range."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{field} must be an integer, got a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{field} must be a whole number, got {value!r}")
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError(
                f"{field} must be an integer (a number or a string of digits), got {value[:40]!r}"
            )
        # (int64 has at most 19 digits: longer ones need not be converted to be refused)
        too_long = len(text.lstrip("+-").lstrip("0")) > 19
        number = INT64_MAX + 1 if too_long else int(text)
    else:
        raise ValueError(f"{field} must be an integer, got {type(value).__name__}")
    if not INT64_MIN <= number <= INT64_MAX:
        shown = value.strip() if isinstance(value, str) else str(number)
        raise ValueError(f"{field} is outside the int64 range (-2^63 to 2^63-1): "
                         f"{shown[:24]}{'…' if len(shown) > 24 else ''}")
    return number


def format_timestamp(when: _dt.datetime | None) -> str | None:
    """RFC 3339 in UTC with millisecond precision and a ``Z``, as ByteNite writes them."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    when = when.astimezone(_dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def parse_timestamp(text: str | None) -> _dt.datetime | None:
    """Parse an RFC 3339 timestamp (``Z`` or offset, any fraction) into an aware UTC datetime."""
    if text is None or text == "":
        return None
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    # fromisoformat before 3.11 accepts only 3 or 6 fractional digits: normalise to 6.
    match = re.match(r"^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(.*)$", value)
    if match:
        head, frac, tail = match.groups()
        value = head + ("." + (frac + "000000")[:6] if frac else "") + tail
    parsed = _dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    return parsed.astimezone(_dt.timezone.utc)


def utcnow() -> _dt.datetime:
    """The current time as an aware UTC datetime."""
    return _dt.datetime.now(_dt.timezone.utc)
