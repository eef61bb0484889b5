"""What a job starts from: its template, the template's defaults (params, config, data source
and destination) and the engines' params schemas; and the checks of a data source."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from bytenite_nb import wire
from bytenite_nb.server.errors import InvalidRequest, NotFound
from bytenite_nb.server.execution import datasources
from bytenite_nb.server.execution.registry import Registry, RegistryError, Template
from bytenite_nb.server.storage.records import (
    CONFIG_INT64,
    PARAM_SECTIONS,
    DataSource,
    JobConfig,
    JobParams,
    TemplateInfo,
    stored_data_source,
)

__all__ = ["check_data_source", "find_template", "merge_params", "normalize_config",
           "params_schemas", "template_default_source", "template_info"]


def merge_params(template_params: Mapping[str, Any] | None,
                 given: Mapping[str, Any] | None) -> JobParams:
    """Job params: the template's sections, each updated key by key with what was given."""
    base = copy.deepcopy(dict(template_params or {}))
    out: dict[str, Any] = {"preset": "", "partitioner": {}, "app": {}, "assembler": {}}
    for section in PARAM_SECTIONS:
        if isinstance(base.get(section), dict):
            out[section] = base[section]
    for section in PARAM_SECTIONS:
        value = (given or {}).get(section)
        if value is not None:
            out[section] = {**out[section], **copy.deepcopy(value)}
    if (given or {}).get("preset") is not None:
        out["preset"] = given["preset"]  # type: ignore[index]
    return out  # type: ignore[return-value]


def normalize_config(config: Mapping[str, Any] | None) -> JobConfig:
    """A template's config (free JSON) in stored form: camelCase keys, int64 as ints (a value
    that is no int64 is left out)."""
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
    return out  # type: ignore[return-value]


def template_info(template: Template) -> TemplateInfo:
    """The short ``templateInfo`` a job carries."""
    return {"id": template.id, "owner": template.owner, "description": template.description,
            "app": template.app, "partitioner": template.partitioner,
            "assembler": template.assembler}


def find_template(registry: Registry, template_id: str) -> Template:
    """The template, or `NotFound` saying why."""
    try:
        return registry.template(template_id)
    except RegistryError as exc:
        raise NotFound(f"Template {template_id!r} not found: {exc}") from None


def params_schemas(registry: Registry, template: Template) -> dict[str, Any]:
    """Each params section's ``schema.json``, from the engine its tag resolves to (as job
    creation resolves it); a section without one, or whose tag does not resolve, is left out."""
    schemas: dict[str, Any] = {}
    for section in ("app", "partitioner", "assembler"):
        try:
            engine = registry.resolve(getattr(template, section), section)
        except RegistryError:
            continue
        if engine.schema is not None:
            schemas[section] = engine.schema
    return schemas


def template_default_source(template: Template, what: str, value: Any) -> DataSource | None:
    """A template's default data source/destination in stored form (`InvalidRequest` if it is
    not ``{"dataSourceDescriptor": ..., "params": {...}}``)."""
    if not value:
        return None
    raw = {wire.to_camel(str(k)): v for k, v in value.items()} if isinstance(value, Mapping) \
        else {}
    descriptor, params = raw.get("dataSourceDescriptor"), raw.get("params")
    if not isinstance(descriptor, str) or not descriptor.strip():
        problem = "dataSourceDescriptor is required (a non-empty string)"
    elif params is not None and not isinstance(params, dict):
        problem = "params must be an object"
    else:
        return stored_data_source(descriptor, params)
    raise InvalidRequest(f"Template {template.id!r} has an invalid {what}: {problem}")


def check_data_source(source: DataSource | None, destination: DataSource | None) -> None:
    """`InvalidRequest` naming the problem when a source or destination is malformed."""
    try:
        if source is not None:
            datasources.check_source(source)
        if destination is not None:
            datasources.check_destination(destination)
    except datasources.DataSourceError as exc:
        raise InvalidRequest(str(exc)) from None
