"""Turning stored records into protojson responses, and request models into stored records.

Stored jobs are wire-form dicts with Python ints for int64 fields; `job_out` writes the
protojson form: every field present, int64 as strings, unset messages ``null``, proto3 scalar
defaults (``""``, ``"0"``) for unset scalars, as the recorded ByteNite responses show.
"""

from __future__ import annotations

import copy
from typing import Any

from bytenite_nb import wire
from bytenite_nb.server.http import models
from bytenite_nb.server.storage.store import LogRow, TaskRow

#: ``config`` keys and whether each is an int64.
CONFIG_INT64 = ("taskTimeout", "jobTimeout", "maxTaskRetries")
PARAM_SECTIONS = ("partitioner", "app", "assembler")

#: Scalar job fields and their proto3 default, in the order ByteNite lists them.
_JOB_FIELDS: dict[str, Any] = {
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
_JOB_INT64 = ("duration", "paymentAmount", "numChunks")


def config_out(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """A job config with int64 fields as strings."""
    if config is None:
        return None
    out = dict(config)
    for key in CONFIG_INT64:
        if key in out:
            out[key] = wire.int64_out(out[key])
    return out


def job_out(job: dict[str, Any], *, temp_url: str | None = None) -> dict[str, Any]:
    """The protojson ``jobJob`` for a stored job. ``temp_url``: the ``file`` upload target."""
    out: dict[str, Any] = {}
    for key, default in _JOB_FIELDS.items():
        value = job.get(key, default)
        out[key] = copy.deepcopy(default) if value is None and default is not None else value
    for key in _JOB_INT64:
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


def job_response(job: dict[str, Any], *, temp_url: str | None = None) -> dict[str, Any]:
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


def template_info(template: Any) -> dict[str, Any]:
    """The short ``templateInfo`` a job carries."""
    return {
        "id": template.id,
        "owner": template.owner,
        "description": template.description,
        "app": template.app,
        "partitioner": template.partitioner,
        "assembler": template.assembler,
    }


def task_out(row: TaskRow) -> dict[str, Any]:
    """ByteNite Local's task record (an extension)."""
    return {
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


def log_out(row: LogRow) -> dict[str, Any]:
    """``LogInstance``."""
    return {"log": row.message, "timestamp": row.timestamp, "level": row.level,
            "container": row.container}


# ---------------------------------------------------------------------------------------------
# Requests -> stored form
# ---------------------------------------------------------------------------------------------


def data_source_in(source: models.DataSourceIn | None) -> dict[str, Any] | None:
    """A data source as stored: descriptor lower-cased; params kept exactly as sent."""
    if source is None:
        return None
    out: dict[str, Any] = {"dataSourceDescriptor": source.data_source_descriptor.strip().lower()}
    params = copy.deepcopy(source.params) if source.params is not None else None
    descriptor = out["dataSourceDescriptor"]
    try:
        type_url = wire.DESCRIPTOR_PARAM_TYPES.get(wire.Descriptor(descriptor))
    except ValueError:
        type_url = None
    if params is not None:
        # The server, not the user, owns tempUrl: never store a client-sent one.
        if descriptor == wire.Descriptor.FILE.value:
            params.pop("tempUrl", None)
            params.pop("temp_url", None)
        if type_url and "@type" not in params:
            params = {"@type": type_url, **params}
    elif type_url:
        params = {"@type": type_url}
    out["params"] = params
    return out


def config_in(config: models.JobConfigIn | None) -> dict[str, Any]:
    """Only the config fields the request actually set."""
    if config is None:
        return {}
    out: dict[str, Any] = {}
    for name in ("task_timeout", "job_timeout", "is_test_job", "max_task_retries"):
        value = getattr(config, name)
        if value is not None:
            out[wire.to_camel(name)] = value
    return out


def normalize_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """A template's config (free JSON) in stored form: camelCase keys, int64 as ints."""
    out: dict[str, Any] = {}
    for key, value in (config or {}).items():
        name = wire.to_camel(str(key))
        if name in CONFIG_INT64:
            try:
                out[name] = wire.int64_in(value, field=f"config.{name}")
            except ValueError:
                continue
        else:
            out[name] = value
    return out


def params_in(template_params: dict[str, Any] | None,
              given: models.AppParamsIn | None) -> dict[str, Any]:
    """Job params = the template's sections, each updated key by key with what was given."""
    base = copy.deepcopy(template_params or {})
    out: dict[str, Any] = {"preset": "", "partitioner": {}, "app": {}, "assembler": {}}
    for section in PARAM_SECTIONS:
        value = base.get(section)
        if isinstance(value, dict):
            out[section] = value
    if given is not None:
        for section in PARAM_SECTIONS:
            value = getattr(given, section)
            if value is not None:
                out[section] = {**out[section], **copy.deepcopy(value)}
        if given.preset is not None:
            out["preset"] = given.preset
    return out
