"""Request and response shapes of the Customer API, as pydantic models.

Requests are parsed with these models (camelCase or snake_case keys, int64 as number or
string); responses are built as plain dicts by `protojson` and these models only document
them in the OpenAPI document, so the emitted JSON is exactly protojson's.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from bytenite_nb import wire
from bytenite_nb.server.http import limits

INT64_MIN, INT64_MAX = wire.INT64_MIN, wire.INT64_MAX

#: The error type of text that cannot be encoded as UTF-8 (its message names the field).
NOT_UTF8 = "text_not_utf8"


def _int64(value: Any) -> int | None:
    if isinstance(value, str) and len(value.strip()) > limits.MAX_INT64_TEXT:
        raise ValueError(f"is not an int64: at most {limits.MAX_INT64_TEXT} characters")
    return wire.int64_in(value)


def _non_negative_int64(value: Any) -> int | None:
    number = _int64(value)
    if number is not None and number < 0:
        raise ValueError(f"must not be negative, got {number}")
    return number


_INT64_SCHEMA = {"anyOf": [{"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX},
                           {"type": "string", "pattern": r"^[+-]?\d+$",
                            "maxLength": limits.MAX_INT64_TEXT}]}

#: An int64 accepted as a JSON number or a string of digits (protojson input rules).
Int64In = Annotated[int | None, BeforeValidator(_int64), WithJsonSchema(_INT64_SCHEMA)]
#: A non-negative int64 (timeouts, counts, pagination).
UInt64In = Annotated[int | None, BeforeValidator(_non_negative_int64),
                     WithJsonSchema(_INT64_SCHEMA)]
#: int64 on the way out: always a decimal string.
Int64Out = Annotated[str, WithJsonSchema({"type": "string", "pattern": r"^-?\d+$"})]


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def not_utf8(value: Any, path: str = "") -> str | None:
    """Where in ``value`` (parsed JSON) some text cannot be encoded as UTF-8, or None.

    JSON may spell a lone UTF-16 surrogate (``"\\ud800"``); Python decodes it into a string
    that no UTF-8 encoder accepts, so storing it would make the record unreadable. Returns the
    dotted path of the first such string (for a bad key: the object holding it)."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return where or "request body"
        elif isinstance(item, dict):
            for key, sub in item.items():
                if isinstance(key, str) and not _encodable(key):
                    return where or "request body"
                stack.append((f"{where}.{key}" if where else str(key), sub))
        elif isinstance(item, (list, tuple)):
            stack.extend((f"{where}[{i}]", sub) for i, sub in enumerate(item))
    return None


def not_utf8_error(where: str) -> PydanticCustomError:
    """The validation error for text at ``where`` that cannot be encoded as UTF-8."""
    return PydanticCustomError(
        NOT_UTF8, "{where}: is not valid UTF-8 text (it holds an unpaired surrogate such as "
                  "\\ud800, which is not a character): send the text as proper Unicode",
        {"where": where})


def _utf8_text(value: str) -> str:
    if not _encodable(value):
        raise not_utf8_error("request body")
    return value


def _utf8_tree(value: dict[str, Any]) -> dict[str, Any]:
    where = not_utf8(value)
    if where is not None:
        raise not_utf8_error(where)
    return value


#: A free JSON object as a whole request body (the Developer API's): UTF-8 text only.
JsonObject = Annotated[dict[str, Any], AfterValidator(_utf8_tree)]


def _text(max_length: int) -> Any:
    """A request string: at most ``max_length`` characters, encodable as UTF-8."""
    return Annotated[str, StringConstraints(max_length=max_length), AfterValidator(_utf8_text)]


Id = _text(limits.MAX_ID)
Name = _text(limits.MAX_NAME)
Description = _text(limits.MAX_DESCRIPTION)
Word = _text(limits.MAX_WORD)
FieldName = _text(limits.MAX_FIELD)
Timestamp = _text(limits.MAX_TIMESTAMP)
Preset = _text(limits.MAX_PRESET)
ApiKey = _text(limits.MAX_API_KEY)
AccessKey = _text(limits.MAX_ACCESS_KEY)
SecretKey = _text(limits.MAX_SECRET_KEY)


class Wire(BaseModel):
    """Base for request bodies: camelCase or snake_case keys in, unknown keys ignored; text
    that cannot be encoded as UTF-8 anywhere in the body (keys, free JSON such as params
    included) is refused naming where it is, before any field is read."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _utf8_only(cls, data: Any) -> Any:
        where = not_utf8(data)
        if where is not None:
            raise not_utf8_error(where)
        return data


class DataSourceIn(Wire):
    """``data_sourceDataSource``: a descriptor plus its ``@type``d params (user data)."""

    data_source_descriptor: Word = Field(min_length=1,
                                         description="url, file, bypass, bucket, ...")
    params: dict[str, Any] | None = Field(
        default=None, description="google.protobuf.Any: '@type' plus the descriptor's fields")


class JobConfigIn(Wire):
    """``jobJobConfig``: seconds; 0 or unset means no limit."""

    task_timeout: UInt64In = None
    job_timeout: UInt64In = None
    is_test_job: bool | None = None
    max_task_retries: UInt64In = Field(default=None, description="ByteNite Local honours it")


class AppParamsIn(Wire):
    """``jobAppParams``: free JSON objects per component (keys reach the app untouched)."""

    preset: Preset | None = Field(default=None, description="deprecated, ignored")
    partitioner: dict[str, Any] | None = None
    assembler: dict[str, Any] | None = None
    app: dict[str, Any] | None = None


class CreateJobRequest(Wire):
    """``POST /jobs``. ``jobId`` makes the call idempotent while the job is still NEW."""

    template_id: Id = Field(min_length=1)
    job_id: Id | None = None
    name: Name | None = None
    description: Description | None = None
    data_source: DataSourceIn | None = None
    data_destination: DataSourceIn | None = None
    params: AppParamsIn | None = None
    config: JobConfigIn | None = None


class SetDataSourceRequest(Wire):
    """``PATCH /jobs/{jobId}/datasource``."""

    data_source: DataSourceIn | None = None
    data_destination: DataSourceIn | None = None


class JobNameObject(Wire):
    """Accepted besides the documented raw JSON string body of ``PATCH /jobname``."""

    name: Name


class RunJobRequest(JobConfigIn):
    """``POST /jobs/{jobId}/run``: ``{"config": {...}}`` or the same fields flat."""

    config: JobConfigIn | None = None


class RunningTasksRequest(Wire):
    """``POST /jobs/runningTasks``."""

    jobs_ids: list[Id]


class DataSourceTestRequest(Wire):
    """``POST /datasource/test``."""

    data_source: DataSourceIn
    list_files: bool = False


class PaginationIn(Wire):
    """``commonLimitOffsetPagination``."""

    limit: UInt64In = None
    offset: UInt64In = None


class FilterIn(Wire):
    """``commonFilter``: ``value`` is bare JSON or a ``google.protobuf.Value`` Any."""

    field: FieldName = Field(min_length=1)
    condition: Word = Field(min_length=1)
    value: Any = None


class FilterJobsRequest(Wire):
    """``POST /jobs/filter``."""

    pagination: PaginationIn | None = None
    filters: list[FilterIn] = Field(default_factory=list)
    order_by: FieldName | None = None


class LogsRequest(Wire):
    """``POST /logs``: empty lists mean all."""

    job_id: Id = Field(min_length=1)
    task_ids: list[Id] = Field(default_factory=list)
    levels: list[Word] = Field(default_factory=list)
    services: list[Word] = Field(default_factory=list)


class AccessTokenRequest(Wire):
    """``POST /v1/auth/access_token``."""

    api_key: ApiKey


class SecretIn(Wire):
    """``DataSourceSecret`` in ``POST /v1/auth/secrets`` (its key travels beside it)."""

    model_config = ConfigDict(json_schema_extra={"required": ["secretType"]})

    id: Id | None = Field(default=None, description="generated when empty; the name apps "
                                                    "read it by (case-sensitive)")
    secret_type: Word | None = Field(default=None,
                                     description="aws (s3 accepted), gcp, storj or other")
    access_key: AccessKey | None = Field(default=None,
                                         description="required except for other")
    expires_at: Timestamp | None = Field(default=None,
                                         description="ISO 8601; unset: never expires")
    params: dict[str, Any] | None = None
    name: Name | None = None


class SaveSecretRequest(Wire):
    """``POST /v1/auth/secrets``: saving an existing ``(secretType, id)`` replaces it."""

    model_config = ConfigDict(json_schema_extra={"required": ["secret", "secretKey"]})

    secret: SecretIn
    secret_key: SecretKey | None = Field(default=None, description="the secret value; never "
                                                                    "returned by any route")


# ---------------------------------------------------------------------------------------------
# Responses (documentation only)
# ---------------------------------------------------------------------------------------------


class Out(BaseModel):
    """Base for documented responses: extra keys allowed, as protojson clients must tolerate."""

    model_config = ConfigDict(extra="allow")


class ErrorDetail(Out):
    code: Int64Out
    message: str
    description: str


class GenericResponse(Out):
    """``commonGenericResponse``; every error uses this shape too."""

    ok: bool
    requestId: str
    message: str
    error: ErrorDetail | None = None


class DataSourceOut(Out):
    dataSourceDescriptor: str
    params: dict[str, Any] | None = None


class JobConfigOut(Out):
    taskTimeout: Int64Out | None = None
    jobTimeout: Int64Out | None = None
    isTestJob: bool | None = None
    maxTaskRetries: Int64Out | None = None


class AppParamsOut(Out):
    preset: str | None = None
    partitioner: dict[str, Any] | None = None
    assembler: dict[str, Any] | None = None
    app: dict[str, Any] | None = None


class JobTemplateOut(Out):
    """``JobTemplate``, customer view (plus ByteNite Local's defaults and ``createdAt``)."""

    id: str
    owner: str | None = None
    description: str | None = None
    app: str | None = None
    partitioner: str | None = None
    assembler: str | None = None
    paramsSchema: dict[str, Any] | None = Field(
        default=None,
        description="ByteNite Local extension: the JSON Schema (schema.json) of each params "
                    "section (app, partitioner, assembler) whose engine has one; {} when none")
    needsInput: bool | None = Field(
        default=None,
        description="ByteNite Local extension (template.json `needsInput`): jobs of this "
                    "template need input data; running one without a data source (or with "
                    "bypass) is refused")
    unknownKeys: list[str] = Field(
        default_factory=list,
        description="ByteNite Local extension: keys of the template file that ByteNite Local "
                    "does not read (ignored), as written there")


class JobOut(Out):
    """``jobJob``: int64 fields are strings, unset messages are null."""

    id: str
    templateId: str
    name: str
    description: str
    state: str
    config: JobConfigOut | None = None
    priority: str
    startAt: str | None = None
    submittedAt: str | None = None
    startedAt: str | None = None
    endedAt: str | None = None
    deletedAt: str | None = None
    createdAt: str | None = None
    regions: dict[str, Any] | None = None
    dataSource: DataSourceOut | None = None
    dataDestination: DataSourceOut | None = None
    params: AppParamsOut | None = None
    duration: Int64Out
    paymentAmount: Int64Out
    numUnitsEstimation: str
    numChunks: Int64Out
    errorMessage: str
    stateTimestamps: dict[str, str]
    appId: str
    templateInfo: JobTemplateOut | None = None


class JobResponse(Out):
    job: JobOut
    templateInfo: JobTemplateOut | None = None


class PaginatedOut(Out):
    total: Int64Out
    offset: Int64Out
    hasPrevious: bool
    hasNext: bool


class JobsResponse(Out):
    pagination: PaginatedOut
    data: list[JobOut]


class TemplatesResponse(Out):
    pagination: PaginatedOut
    data: list[JobTemplateOut]


class TemplateResponse(Out):
    template: JobTemplateOut


class ResultOut(Out):
    name: str
    link: str
    size: int | None = Field(default=None, description="ByteNite Local extension: bytes")


class ResultsResponse(Out):
    results: list[ResultOut]


class LogInstance(Out):
    log: str
    timestamp: str | None = None
    level: str
    container: str


class TaskLogs(Out):
    logs: list[LogInstance]


class LogsResponse(Out):
    partitioner: list[LogInstance]
    assembler: list[LogInstance]
    taskrunner: dict[str, TaskLogs]


class RunningTasksResponse(Out):
    jobsRunningTasks: dict[str, int]


class AttemptOut(Out):
    """ByteNite Local extension: one attempt of a task."""

    attempt: int
    state: str
    startedAt: str | None = None
    endedAt: str | None = None
    exitCode: int | None = None
    errorMessage: str | None = None


class TaskOut(Out):
    """ByteNite Local extension: one task (= one chunk) of a job."""

    id: str
    chunkNumber: int
    state: str
    attempts: int
    startedAt: str | None = None
    endedAt: str | None = None
    duration: float | None = Field(default=None, description="seconds, fractional")
    exitCode: int | None = None
    errorMessage: str | None = None
    attemptHistory: list[AttemptOut] | None = Field(
        default=None, description="with ?attempts=true: each attempt, oldest first")


class TasksResponse(Out):
    tasks: list[TaskOut]


class DataSourceInfoResponse(Out):
    filename: str | None = None
    path: str | None = None
    size: Int64Out | None = None
    properties: dict[str, str] | None = None
    tempUrl: str | None = None
    files: dict[str, Any] | None = None


class VersionOut(Out):
    major: Int64Out
    minor: Int64Out
    tag: str


class InfoResponse(Out):
    version: VersionOut
    messages: dict[str, str] | None = None


class AccessTokenResponse(Out):
    token: str
    expiresIn: Int64Out
    scope: str


class SecretOut(Out):
    """``DataSourceSecret`` as listed: never with its key."""

    id: str
    secretType: str
    accessKey: str
    expiresAt: str | None = None
    params: dict[str, Any]
    name: str


class SecretsResponse(Out):
    secrets: list[SecretOut]


class SaveSecretResponse(GenericResponse):
    id: str = Field(description="ByteNite Local extension: the saved secret's id (generated "
                                "when the request left it empty)")


class UploadResponse(Out):
    """ByteNite Local extension: what the upload target stored."""

    ok: bool
    size: Int64Out
