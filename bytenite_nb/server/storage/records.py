"""What ByteNite Local stores: the job record (a typed dict) and the rows of its other tables.

A stored job is the wire form of ByteNite's ``Job`` as one JSON document: camelCase keys,
Python ints for int64 fields (``duration``, ``numChunks``, the ``config`` timeouts), RFC 3339
strings for timestamps. `StoredJob` names its keys and their types; `JOB_FIELDS` lists every
field of ByteNite's ``Job`` with the proto3 default a response shows when the job lacks it.
The HTTP layer renders responses from these tables (``http/protojson.py``), and the job
listing renders them in SQL from the same tables (``listing/render.py``), so the two agree.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, TypedDict

from bytenite_nb import wire

#: The params sections of a job, in the order the pipeline runs them.
PARAM_SECTIONS = ("partitioner", "app", "assembler")
#: ``config`` keys that are int64 (strings on the wire, ints when stored).
CONFIG_INT64 = ("taskTimeout", "jobTimeout", "maxTaskRetries")
#: Every field of ByteNite's ``Job`` and its proto3 default, in the order ByteNite lists them.
JOB_FIELDS: dict[str, Any] = {
    "id": "",
    "templateId": "",
    "name": "",
    "config": None,
    "priority": wire.ExecutionPriority.UNDEFINED.value,
    "startAt": None,
    "submittedAt": None,
    "startedAt": None,
    "endedAt": None,
    "regions": None,
    "state": wire.JobState.NEW.value,
    "dataSource": None,
    "params": None,
    "dataDestination": None,
    "duration": 0,
    "deletedAt": None,
    "createdAt": None,
    "paymentAmount": 0,
    "numUnitsEstimation": "",
    "numChunks": 0,
    "errorMessage": "",
    "description": "",
    "stateTimestamps": {},
    "appId": "",
    "templateInfo": None,
}
#: Top-level int64 fields of a job.
JOB_INT64 = ("duration", "paymentAmount", "numChunks")


class DataSource(TypedDict):
    """A data source or destination: ``bypass``, ``url``, ``file``, ``bucket``, ``s3`` ...
    with its ``@type``d params (``None`` when it has none)."""

    dataSourceDescriptor: str
    params: dict[str, Any] | None


class JobConfig(TypedDict, total=False):
    """Limits of a run, in seconds (0 or missing: no limit)."""

    taskTimeout: int
    jobTimeout: int
    isTestJob: bool
    maxTaskRetries: int


class JobParams(TypedDict, total=False):
    """Each engine's params (the template's defaults, updated by what the user gave)."""

    preset: str
    partitioner: dict[str, Any]
    app: dict[str, Any]
    assembler: dict[str, Any]


class TemplateInfo(TypedDict):
    """The short template description a job carries."""

    id: str
    owner: str
    description: str
    app: str
    partitioner: str
    assembler: str


class _JobKeys(TypedDict):
    id: str
    templateId: str
    state: str


class StoredJob(_JobKeys, total=False):
    """One job as stored (``jobs.data``). ``id``, ``templateId`` and ``state`` are always
    there; the rest appears as the job gets it. ``stateTimestamps`` maps each state the job
    went through to when. ByteNite's other ``Job`` fields (``priority``, ``regions`` ...) are
    never set by ByteNite Local and show their defaults from `JOB_FIELDS`."""

    name: str
    description: str
    createdAt: str
    config: JobConfig
    dataSource: DataSource | None
    dataDestination: DataSource | None
    params: JobParams
    stateTimestamps: dict[str, str]
    appId: str
    templateInfo: TemplateInfo
    submittedAt: str
    startedAt: str
    endedAt: str
    duration: int
    numChunks: int
    errorMessage: str


def descriptor_of(source: DataSource | None) -> str | None:
    """The descriptor of a stored data source (None when there is none)."""
    return (source or {}).get("dataSourceDescriptor")


def stored_data_source(descriptor: str, params: dict[str, Any] | None) -> DataSource:
    """A data source in stored form: descriptor lower-cased, params kept as given except that
    the ``@type`` of the descriptor's params is filled in and a ``file`` source's ``tempUrl``
    is dropped (the server, not the user, owns the upload target)."""
    kind = descriptor.strip().lower()
    params = copy.deepcopy(params) if params is not None else None
    try:
        type_url = wire.DESCRIPTOR_PARAM_TYPES.get(wire.Descriptor(kind))
    except ValueError:
        type_url = None
    if params is not None:
        if kind == wire.Descriptor.FILE.value:
            params.pop("tempUrl", None)
            params.pop("temp_url", None)
        if type_url and "@type" not in params:
            params = {"@type": type_url, **params}
    elif type_url:
        params = {"@type": type_url}
    return {"dataSourceDescriptor": kind, "params": params}


# -- rows of the other tables -------------------------------------------------------------------


@dataclass(frozen=True)
class TaskRow:
    """One task of a job (ByteNite Local's task table)."""

    job_id: str
    chunk: int
    state: str
    attempts: int
    started_at: str | None
    ended_at: str | None
    duration: float | None
    exit_code: int | None
    error_message: str | None


@dataclass(frozen=True)
class LogRow:
    """One log line of a job."""

    id: int
    job_id: str
    service: str
    chunk: int | None
    level: str
    message: str
    container: str
    timestamp: str


@dataclass(frozen=True)
class EventRow:
    """One persisted event; ``seq`` orders all events of this data dir."""

    seq: int
    name: str
    job_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class ResultRow:
    """One result file of a job, served at an unguessable, expiring link."""

    token: str
    job_id: str
    name: str
    path: str
    size: int
    expires_at: float


@dataclass(frozen=True)
class UploadRow:
    """The upload target of a job with a ``file`` data source."""

    token: str
    job_id: str
    path: str
    size: int | None
    completed: bool


@dataclass(frozen=True)
class CacheUploadRow:
    """An upload URL of the user cache (``scope`` ``"shared"``: the shared cache): PUTs to it
    store ``path`` until ``expires_at``."""

    token: str
    path: str
    expires_at: float
    scope: str = "user"


@dataclass(frozen=True)
class SecretRow:
    """One stored secret; the key is kept out of the repr."""

    secret_type: str
    id: str
    name: str
    access_key: str
    secret_key: str = field(repr=False)
    expires_at: str | None
    params: dict[str, Any]

    def record(self, *, with_key: bool = False) -> dict[str, Any]:
        """The ``DataSourceSecret`` record (``secretKey`` only when asked)."""
        out = {"id": self.id, "secretType": self.secret_type, "accessKey": self.access_key,
               "expiresAt": self.expires_at, "params": dict(self.params), "name": self.name}
        if with_key:
            out["secretKey"] = self.secret_key
        return out
