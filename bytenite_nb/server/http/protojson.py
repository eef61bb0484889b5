"""Turning stored records into protojson responses, and request models into stored records.

Stored jobs (`records.StoredJob`) have Python ints for int64 fields; `job_out` writes the
protojson form: every field present, int64 as strings, unset messages ``null``, proto3 scalar
defaults (``""``, ``"0"``) for unset scalars, as the recorded ByteNite responses show.
"""

from __future__ import annotations

import copy
from typing import Any

from bytenite_nb import wire
from bytenite_nb.server.http import models
from bytenite_nb.server.storage.records import (
    CONFIG_INT64,
    JOB_FIELDS,
    JOB_INT64,
    PARAM_SECTIONS,
    DataSource,
    JobConfig,
    LogRow,
    StoredJob,
    TaskRow,
    stored_data_source,
)


def config_out(config: JobConfig | dict[str, Any] | None) -> dict[str, Any] | None:
    """A job config with int64 fields as strings."""
    if config is None:
        return None
    out = dict(config)
    for key in CONFIG_INT64:
        if key in out:
            out[key] = wire.int64_out(out[key])
    return out


def job_out(job: StoredJob | dict[str, Any], *, temp_url: str | None = None) -> dict[str, Any]:
    """The protojson ``jobJob`` for a stored job. ``temp_url``: the ``file`` upload target."""
    out: dict[str, Any] = {}
    for key, default in JOB_FIELDS.items():
        value = job.get(key, default)
        out[key] = copy.deepcopy(default) if value is None and default is not None else value
    for key in JOB_INT64:
        out[key] = wire.int64_out(out[key] or 0)
    out["config"] = config_out(out["config"])
    if temp_url and out["dataSource"] is not None:
        source = copy.deepcopy(out["dataSource"])
        if source.get("dataSourceDescriptor") == wire.Descriptor.FILE.value:
            params = source.get("params") or {"@type": wire.LOCAL_FILE_DATA_SOURCE_TYPE}
            params["tempUrl"] = temp_url
            source["params"] = params
            out["dataSource"] = source
    return out


def job_response(job: StoredJob, *, temp_url: str | None = None) -> dict[str, Any]:
    """``JobResponse``: ``{"job": Job, "templateInfo": JobTemplate}``."""
    body = job_out(job, temp_url=temp_url)
    return {"job": body, "templateInfo": body.get("templateInfo")}


def template_out(template: Any,
                 params_schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A registry ``Template`` as the customer API's ``JobTemplate`` (config int64 as strings).

    ``paramsSchema`` (a ByteNite Local extension) maps each params section whose engine has a
    ``schema.json`` to that schema; ``{}`` when none has one."""
    out = dict(template.to_wire())
    out["config"] = config_out(out.get("config")) if out.get("config") else out.get("config")
    out["paramsSchema"] = dict(params_schema or {})
    return out


def task_out(row: TaskRow, attempts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """ByteNite Local's task record (an extension); ``attempts`` adds ``attemptHistory``."""
    out = {
        "id": wire.task_id(row.chunk),
        "chunkNumber": row.chunk,
        "state": row.state,
        "attempts": row.attempts,
        "startedAt": row.started_at,
        "endedAt": row.ended_at,
        "duration": row.duration,
        "exitCode": row.exit_code,
        "errorMessage": row.error_message,
    }
    if attempts is not None:
        out["attemptHistory"] = attempts
    return out


def log_out(row: LogRow) -> dict[str, Any]:
    """``LogInstance``."""
    return {"log": row.message, "timestamp": row.timestamp, "level": row.level,
            "container": row.container}


# ---------------------------------------------------------------------------------------------
# Requests -> stored form
# ---------------------------------------------------------------------------------------------


def data_source_in(source: models.DataSourceIn | None) -> DataSource | None:
    """A requested data source in stored form (see `records.stored_data_source`)."""
    if source is None:
        return None
    return stored_data_source(source.data_source_descriptor, source.params)


def config_in(config: models.JobConfigIn | None) -> JobConfig:
    """Only the config fields the request actually set."""
    if config is None:
        return {}
    out: dict[str, Any] = {}
    for name in ("task_timeout", "job_timeout", "is_test_job", "max_task_retries"):
        value = getattr(config, name)
        if value is not None:
            out[wire.to_camel(name)] = value
    return out  # type: ignore[return-value]


def params_given(params: models.AppParamsIn | None) -> dict[str, Any]:
    """Only the params sections (and ``preset``) the request actually set."""
    if params is None:
        return {}
    return {name: getattr(params, name) for name in (*PARAM_SECTIONS, "preset")
            if getattr(params, name) is not None}
