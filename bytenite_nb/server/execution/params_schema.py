"""Params checked against an app's or engine's ``schema.json`` (JSON Schema Draft 2020-12),
with one message per failing field that names the field."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bytenite_nb.server.execution.registry import Engine

__all__ = ["check_schema", "validate_params"]


def check_schema(schema: Any, where: str) -> dict[str, Any]:
    """``schema`` if it is a valid JSON Schema (Draft 2020-12), else `ValueError` saying why
    (``where`` names the file)."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, dict):
        raise ValueError(f"{where} must be a JSON object (a JSON Schema)")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"{where} is not a valid JSON Schema: {exc.message}") from None
    return schema


def _field_name(error: Any) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        match = re.fullmatch(r"'(.+)' is a required property", error.message, re.DOTALL)
        if match:
            parts.append(match.group(1))
    return ".".join(parts) if parts else "(params)"


def validate_params(engine: Engine, params: Any, *, prefix: str = "") -> list[str]:
    """Check ``params`` against the engine's ``schema.json`` (JSON Schema Draft 2020-12).

    Returns one message per failing field, ``"<field>: <reason>"`` (``prefix`` is prepended
    to field names, e.g. ``"app."``); an empty list when the params are valid or the engine
    has no schema.
    """
    if engine.schema is None:
        return []
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(engine.schema)
    errors = sorted(
        validator.iter_errors(params if params is not None else {}),
        key=lambda e: (list(map(str, e.absolute_path)), e.message),
    )
    messages = []
    for error in errors:
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            messages += _unexpected_fields(error, prefix)
            continue
        name = _field_name(error)
        reason = error.message
        if error.validator == "required":
            reason = "is required"
        messages.append(f"{prefix}{name}: {reason}")
    # One bad value can fail the same way through two routes of a schema (a property and an
    # ``allOf``/``$ref`` that repeats it, as table-ops' ``op`` does): say each problem once.
    return list(dict.fromkeys(messages))


def _unexpected_fields(error: Any, prefix: str) -> list[str]:
    """One message per field an ``additionalProperties: false`` schema does not allow, each
    naming the field (jsonschema's own message names the object instead)."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    known = list(schema.get("properties") or {})
    patterns = list(schema.get("patternProperties") or {})
    base = [str(p) for p in error.absolute_path]
    allowed = f" (allowed: {', '.join(known)})" if known else ""
    out = []
    for key in error.instance:
        if key in known or any(re.search(p, key) for p in patterns):
            continue
        out.append(f"{prefix}{'.'.join([*base, str(key)])}: is not an allowed field{allowed}")
    return out or [f"{prefix}{_field_name(error)}: {error.message}"]
