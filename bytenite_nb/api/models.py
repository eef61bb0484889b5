"""Small typed records for API answers: templates, logs, results, tasks, data source info,
secrets.

Each keeps the JSON it was built from in ``raw``, so fields this version does not know about
are never lost. Parsing is lenient: an unknown enum name becomes ``UNKNOWN`` (or stays a
string) rather than failing, because the server may be newer than the client.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bytenite_nb import wire

__all__ = [
    "DataSourceInfo",
    "LogEntry",
    "Pagination",
    "ResultFile",
    "Secret",
    "TaskInfo",
    "Template",
    "opt_int",
    "opt_str",
    "parse_enum",
    "parse_ts",
]

E = TypeVar("E", bound=wire._NamedEnum)


def parse_enum(cls: type[E], value: Any, default: E) -> E:
    """``cls.parse(value)``, or ``default`` for a missing or unknown name."""
    if value is None or value == "":
        return default
    try:
        return cls.parse(value)  # type: ignore[return-value]
    except ValueError:
        return default


def parse_ts(value: Any) -> dt.datetime | None:
    """An RFC 3339 string as an aware UTC datetime; ``None`` for missing or unparseable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return wire.parse_timestamp(value)
    except ValueError:
        return None


def opt_int(value: Any) -> int | None:
    """A protojson int64 (number or string) as ``int``; ``None`` for missing or malformed."""
    try:
        return wire.int64_in(value)
    except ValueError:
        return None


def opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _get(raw: dict[str, Any], camel: str) -> Any:
    """A field by its camelCase name, falling back to snake_case (both are valid protojson)."""
    if camel in raw:
        return raw[camel]
    return raw.get(wire.to_snake(camel))


@dataclass(frozen=True)
class Pagination:
    """``commonPaginatedResponse``: where a page sits in the whole listing."""

    total: int | None
    offset: int
    has_next: bool
    has_previous: bool
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> Pagination:
        raw = raw or {}
        return cls(
            total=opt_int(raw.get("total")),
            offset=opt_int(raw.get("offset")) or 0,
            has_next=bool(_get(raw, "hasNext")),
            has_previous=bool(_get(raw, "hasPrevious")),
            raw=raw,
        )


@dataclass(frozen=True)
class Template:
    """A job template: which app, partitioner and assembler run, and the job defaults.

    Displayed (``str()``, or as a cell's result) it describes itself: its engines, every
    param of each section with type, default, allowed values and description (from the
    engines' ``schema.json``), and an example ``%%bytenite`` cell (:meth:`example_cell`).
    ``engines`` holds each section's engine record (name, version, description) when the
    template came from :meth:`Client.template <bytenite_nb.api.client.Client.template>`.
    """

    id: str
    description: str | None
    app: str | None
    partitioner: str | None
    assembler: str | None
    owner: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    engines: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Template:
        return cls(
            id=str(raw.get("id") or ""),
            description=opt_str(raw.get("description")),
            app=opt_str(raw.get("app")),
            partitioner=opt_str(raw.get("partitioner")),
            assembler=opt_str(raw.get("assembler")),
            owner=opt_str(raw.get("owner")),
            raw=raw,
        )

    @property
    def data_source(self) -> dict[str, Any] | None:
        return _get(self.raw, "dataSource")

    @property
    def data_destination(self) -> dict[str, Any] | None:
        return _get(self.raw, "dataDestination")

    @property
    def params(self) -> dict[str, Any] | None:
        return self.raw.get("params")

    @property
    def config(self) -> dict[str, Any] | None:
        return self.raw.get("config")

    @property
    def unknown_keys(self) -> list[str]:
        """Keys of the template file the server does not read (ByteNite Local extension)."""
        return [str(k) for k in self.raw.get("unknownKeys") or []]

    @property
    def params_schema(self) -> dict[str, dict[str, Any]]:
        """The params schemas by section (``{"app": {...}}``; ``{}`` when none was sent)."""
        from bytenite_nb.api.template_doc import schemas_of

        return schemas_of(self)

    def param_docs(self) -> list[Any]:
        """Every param, section by section (:class:`~bytenite_nb.api.template_doc.ParamDoc`)."""
        from bytenite_nb.api.template_doc import param_docs

        return param_docs(self)

    def example_cell(self, variable: str = "job") -> str:
        """A ``%%bytenite`` cell running this template with its defaults, ready to copy."""
        from bytenite_nb.api.template_doc import example_cell

        return example_cell(self, variable)

    def __str__(self) -> str:
        from bytenite_nb.api.template_doc import render_text

        return render_text(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self) if not cycle else f"Template({self.id!r})")

    def _repr_html_(self) -> str:
        from bytenite_nb.api.template_doc import render_html

        return render_html(self)


@dataclass(frozen=True)
class ResultFile:
    """One output file of a job: its name (a relative path) and a temporary download link."""

    name: str
    link: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ResultFile:
        return cls(
            name=str(raw.get("name") or ""),
            link=str(raw.get("link") or raw.get("url") or ""),
            raw=raw,
        )

    @property
    def size(self) -> int | None:
        """Size in bytes when the server says (ByteNite Local does), else ``None``."""
        return opt_int(self.raw.get("size"))


@dataclass(frozen=True)
class LogEntry:
    """One log line of a job, from ``POST /logs`` (flattened) or a ``job.log`` event."""

    job_id: str
    service: str
    task_id: str | None
    level: wire.LogLevel
    timestamp: dt.datetime | None
    message: str
    container: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(
        cls,
        raw: dict[str, Any],
        *,
        job_id: str = "",
        service: str | None = None,
        task_id: str | None = None,
    ) -> LogEntry:
        return cls(
            job_id=str(_get(raw, "jobId") or job_id),
            service=str(service or raw.get("service") or ""),
            task_id=task_id or opt_str(_get(raw, "taskId")),
            level=parse_enum(wire.LogLevel, raw.get("level"), wire.LogLevel.UNKNOWN),
            timestamp=parse_ts(raw.get("timestamp")),
            message=str(raw.get("log") if raw.get("log") is not None else raw.get("message") or ""),
            container=opt_str(raw.get("container")),
            raw=raw,
        )

    def __str__(self) -> str:
        when = wire.format_timestamp(self.timestamp) if self.timestamp else "-"
        who = self.service + (f"/{self.task_id}" if self.task_id else "")
        return f"{when} {self.level.value:<5} {who}: {self.message}"


def flatten_logs(body: dict[str, Any], job_id: str) -> list[dict[str, Any]]:
    """``logsGetLogsResponse`` -> one flat record per line with ``jobId``/``service``/``taskId``.

    The wire groups lines by service (and by task for the task runner); analysis wants one
    row per line, so the grouping keys are folded into each record.
    """
    records: list[dict[str, Any]] = []
    for key, service in (("partitioner", "PARTITIONER"), ("assembler", "ASSEMBLER")):
        for line in body.get(key) or ():
            records.append({**line, "jobId": job_id, "service": service, "taskId": None})
    runner = body.get("taskrunner") or {}
    if isinstance(runner, dict):
        for tid, group in runner.items():
            lines = group.get("logs") if isinstance(group, dict) else group
            for line in lines or ():
                records.append({**line, "jobId": job_id, "service": "TASKRUNNER", "taskId": tid})
    # ISO 8601 UTC strings sort chronologically; a stable sort keeps each stream's own order.
    records.sort(key=lambda r: r.get("timestamp") or "")
    return records


@dataclass(frozen=True)
class TaskInfo:
    """One task of a job (ByteNite Local's ``GET /jobs/{id}/tasks`` extension)."""

    job_id: str
    task_id: str
    chunk_number: int | None
    state: wire.TaskState | None
    attempt: int | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    exit_code: int | None
    error_message: str | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, raw: dict[str, Any], *, job_id: str = "") -> TaskInfo:
        state = _get(raw, "state")
        chunk = opt_int(_get(raw, "chunkNumber"))
        return cls(
            job_id=str(_get(raw, "jobId") or job_id),
            task_id=str(
                _get(raw, "taskId")
                or raw.get("id")
                or (wire.task_id(chunk) if chunk is not None else "")
            ),
            chunk_number=chunk,
            state=parse_enum(wire.TaskState, state, None) if state else None,  # type: ignore[arg-type]
            attempt=opt_int(raw.get("attempt", raw.get("attempts"))),
            started_at=parse_ts(_get(raw, "startedAt")),
            ended_at=parse_ts(_get(raw, "endedAt")),
            exit_code=opt_int(_get(raw, "exitCode")),
            error_message=opt_str(_get(raw, "errorMessage")),
            raw=raw,
        )

    @property
    def attempt_history(self) -> list[dict[str, Any]]:
        """Each attempt of this task (``attempt``, ``state``, ``startedAt``, ``endedAt``,
        ``exitCode``, ``errorMessage``), oldest first, when the server sent them
        (``Client.tasks(job_id, attempts=True)``); ``[]`` otherwise."""
        history = _get(self.raw, "attemptHistory")
        return [dict(h) for h in history if isinstance(h, dict)] \
            if isinstance(history, list) else []

    @property
    def duration(self) -> dt.timedelta | None:
        """The server's ``duration`` (seconds) if given, else ``ended_at - started_at``."""
        seconds = self.raw.get("duration")
        if isinstance(seconds, (int, float, str)) and seconds != "":
            try:
                return dt.timedelta(seconds=float(seconds))
            except ValueError:
                pass
        if self.started_at and self.ended_at:
            return self.ended_at - self.started_at
        return None


@dataclass(frozen=True)
class DataSourceInfo:
    """``POST /datasource/test``: what the server sees at a data source."""

    filename: str | None
    path: str | None
    size: int | None
    properties: dict[str, str]
    temp_url: str | None
    files: dict[str, Any] | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DataSourceInfo:
        return cls(
            filename=opt_str(raw.get("filename")),
            path=opt_str(raw.get("path")),
            size=opt_int(raw.get("size")),
            properties=dict(raw.get("properties") or {}),
            temp_url=opt_str(_get(raw, "tempUrl")),
            files=raw.get("files"),
            raw=raw,
        )


@dataclass(frozen=True)
class Secret:
    """One of your secrets (``GET /v1/auth/secrets``): everything but the secret key, which
    no API call returns (and which is dropped here should a server send it anyway)."""

    id: str
    secret_type: str
    access_key: str | None
    name: str | None
    expires_at: dt.datetime | None
    params: dict[str, Any]
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Secret:
        raw = {k: v for k, v in raw.items() if k not in ("secretKey", "secret_key")}
        params = raw.get("params")
        return cls(
            id=str(raw.get("id") or ""),
            secret_type=str(_get(raw, "secretType") or ""),
            access_key=opt_str(_get(raw, "accessKey")),
            name=opt_str(raw.get("name")),
            expires_at=parse_ts(_get(raw, "expiresAt")),
            params=dict(params) if isinstance(params, dict) else {},
            raw=raw,
        )
