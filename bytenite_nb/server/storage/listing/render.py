"""The HTTP layer's ``protojson.job_out`` as one SQL expression, so a page of jobs is rendered
by SQLite's JSON functions instead of decoding, converting and re-encoding each job in Python.

The expression is built from the tables both read (`records.JOB_FIELDS` with their defaults,
`records.JOB_INT64`, `records.CONFIG_INT64`), so a field added there is rendered here too;
tests compare it with ``protojson.job_out`` over varied jobs. SQL renders a row only when its
shape is the one ByteNite Local writes (int64 fields integers or null, ``config`` an object or
null, valid JSON) and it needs no per-request part (a ``file`` data source gets its upload
URL); any other row comes back as ``NULL`` and is rendered by ``protojson.job_out`` as before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bytenite_nb import wire
from bytenite_nb.server.storage import records
from bytenite_nb.server.storage.listing import index as jobindex


@dataclass(frozen=True)
class Rendered:
    """A job already rendered as its protojson ``Job`` JSON text."""

    text: str


def _path(*parts: str) -> str:
    return "'$." + ".".join(parts) + "'"


def _int64_ok(path: str) -> str:
    # A JSON integer SQLite holds as a 64-bit integer, or null / missing (rendered "0"/null).
    return (f"(IFNULL(json_type(data, {path}), 'null') = 'null' OR "
            f"(json_type(data, {path}) = 'integer' AND "
            f"typeof(json_extract(data, {path})) = 'integer'))")


def _int64_text(path: str) -> str:
    return f"CAST(json_extract(data, {path}) AS TEXT)"


def _value(key: str, default: object) -> str:
    path = _path(key)
    if key in records.JOB_INT64:  # int64_out(value or 0)
        return f"json_quote(IFNULL({_int64_text(path)}, '0'))"
    if key == "config":  # config_out: int64 keys that are present become strings
        sets = ", ".join(f"{_path(k)}, {_int64_text(_path(key, k))}"
                         for k in records.CONFIG_INT64)
        return f"json_replace(json(IFNULL(data -> {path}, 'null')), {sets})"
    # job.get(key, default), a JSON null also replaced by a non-null default
    fallback = json.dumps(default).replace("'", "''")
    if default is None:
        return f"json(IFNULL(data -> {path}, 'null'))"
    return f"json(IFNULL(NULLIF(data -> {path}, 'null'), '{fallback}'))"


def _build() -> str:
    checks = [_int64_ok(_path(key)) for key in records.JOB_INT64]
    checks.append("IFNULL(json_type(data, '$.config'), 'null') IN ('object', 'null')")
    checks += [_int64_ok(_path("config", k)) for k in records.CONFIG_INT64]
    # a file source gets its upload URL per request (`protojson.job_out`): never here
    checks.append("(IFNULL(json_type(data, '$.dataSource'), 'null') IN ('object', 'null'))")
    checks.append("json_extract(data, '$.dataSource.dataSourceDescriptor') IS NOT "
                  f"'{wire.Descriptor.FILE.value}'")
    pairs = ", ".join(f"'{key}', {_value(key, default)}"
                      for key, default in records.JOB_FIELDS.items())
    # CASE evaluates in order: data SQLite's JSON functions reject is never passed to them.
    return (f"CASE WHEN ix_irregular & {jobindex.BIT_JSON} THEN NULL "
            f"WHEN {' AND '.join(checks)} THEN json_object({pairs}) END")


#: The rendering of the current row of ``jobs``, or NULL where `protojson.job_out` must do it.
RENDER_SQL = _build()
