"""Filtering, ordering and paginating lists (``GET /jobs``, ``POST /jobs/filter``, templates).

Field names are accepted in camelCase or snake_case, dotted for nested fields
(``config.isTestJob``). Filter values may be bare JSON or wrapped as a
``google.protobuf.Value`` Any (``{"@type": ".../google.protobuf.Value", "value": X}``).

Semantics of the 11 conditions:

* ``EQ NEQ GT GTE LT LTE``: compare the field with the value, typed by the field (timestamps as
  instants, states in lifecycle order, numbers as numbers). A missing field never matches an
  ordering comparison.
* ``IN NOT_IN``: the value is a list; the field is (not) one of its items.
* ``ARRAY_CONTAINS`` / ``ARRAY_CONTAINS_ANY``: the field (a list, e.g. ``stateTimestamps`` =
  the states the job went through; a scalar counts as a one-item list) contains the value /
  any item of the value list.
* ``LIKE``: SQL ``LIKE`` on the field's text (``%`` any run, ``_`` one character),
  case-insensitive.

This module is the definition of those semantics and of the orderings (`sort_records`); for
jobs, `sql` evaluates the same in SQL and `select` is the reference it is tested against
and falls back to.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from bytenite_nb import wire
from bytenite_nb.server.errors import InvalidRequest
from bytenite_nb.server.storage.records import StoredJob

#: A record a list is made of: a stored job, or a template or app as a route renders it.
Record = Mapping[str, Any]
RecordT = TypeVar("RecordT", bound=Record)

DEFAULT_LIMIT = 100
#: A page is rendered in one response; 10,000 jobs are about 11 MB of JSON.
MAX_LIMIT = 10_000

#: Job fields that can be filtered and ordered on, and how their values are typed.
JOB_FIELDS: dict[str, str] = {
    "id": "str",
    "templateId": "str",
    "name": "str",
    "description": "str",
    "state": "state",
    "priority": "str",
    "errorMessage": "str",
    "appId": "str",
    "createdAt": "time",
    "submittedAt": "time",
    "startedAt": "time",
    "endedAt": "time",
    "startAt": "time",
    "duration": "int",
    "numChunks": "int",
    "paymentAmount": "int",
    "config.taskTimeout": "int",
    "config.jobTimeout": "int",
    "config.maxTaskRetries": "int",
    "config.isTestJob": "bool",
    "dataSource.dataSourceDescriptor": "str",
    "dataDestination.dataSourceDescriptor": "str",
    "stateTimestamps": "array",
    "regions.whitelist": "array",
    "regions.blacklist": "array",
}

#: Template fields that can be ordered on.
TEMPLATE_FIELDS: dict[str, str] = {
    "id": "str", "owner": "str", "description": "str", "app": "str",
    "partitioner": "str", "assembler": "str", "createdAt": "time",
}


@dataclass(frozen=True)
class Page:
    """One page of a list plus ByteNite's ``commonPaginatedResponse``."""

    items: list[Any]
    total: int
    offset: int

    def pagination(self) -> dict[str, Any]:
        """``{"total","offset","hasPrevious","hasNext"}``, int64 as strings."""
        return {
            "total": wire.int64_out(self.total),
            "offset": wire.int64_out(self.offset),
            "hasPrevious": self.offset > 0,
            "hasNext": self.offset + len(self.items) < self.total,
        }


def canonical_field(name: str, fields: dict[str, str]) -> str:
    """``created_at`` / ``createdAt`` / ``config.is_test_job`` -> the wire name; 400 if unknown."""
    cleaned = ".".join(wire.to_camel(part.strip()) for part in str(name).strip().split("."))
    if cleaned in fields:
        return cleaned
    lowered = {k.lower(): k for k in fields}
    if cleaned.lower() in lowered:
        return lowered[cleaned.lower()]
    raise InvalidRequest(f"Unknown field {name!r}; the fields you can use are: {', '.join(fields)}")


def _raw(record: Record, field: str) -> Any:
    value: Any = record
    for part in field.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _unwrap(value: Any) -> Any:
    """Strip a ``google.protobuf.Value`` Any wrapper (``{"@type": ..., "value": X}``)."""
    while isinstance(value, dict) and "@type" in value and "value" in value:
        value = value["value"]
    return value


def _typed(kind: str, value: Any, field: str) -> Any:
    """A filter value or field value as a comparable Python value (None stays None)."""
    if value is None or (value == "" and kind != "str"):
        return None
    try:
        if kind == "state":
            return wire.JOB_STATE_ORDER.index(wire.JobState.parse(str(value)))
        if kind == "time":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return _dt.datetime.fromtimestamp(value, _dt.timezone.utc)
            return wire.parse_timestamp(str(value))
        if kind == "int":
            return wire.int64_in(value, field=field)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "1"):
                return True
            if text in ("false", "0"):
                return False
            raise ValueError(f"{field} must be true or false, got {value!r}")
        if kind == "array":
            return str(value)
        return str(value)
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidRequest(f"Invalid value for {field}: {exc}") from None


def _field_value(record: Record, field: str, kind: str) -> Any:
    raw = _raw(record, field)
    if kind == "array":
        if isinstance(raw, dict):
            return [str(k) for k in raw]
        if isinstance(raw, list):
            return [str(v) for v in raw]
        return [] if raw is None else [str(raw)]
    if kind == "state" and raw is not None:
        return wire.JOB_STATE_ORDER.index(wire.JobState.parse(str(raw)))
    if kind == "time" and raw:
        return wire.parse_timestamp(str(raw))
    if kind == "bool":
        return bool(raw) if raw is not None else None
    return raw


def _like(pattern: str) -> re.Pattern[str]:
    parts = []
    for char in pattern:
        parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
    # Used with fullmatch: "$" would also match before a final newline.
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _as_list(value: Any, field: str, condition: str) -> list[Any]:
    value = _unwrap(value)
    if isinstance(value, dict) and "values" in value:  # google.protobuf.ListValue
        value = value["values"]
    if not isinstance(value, list):
        raise InvalidRequest(f"{condition} on {field} needs a list value, got {value!r}")
    return [_unwrap(v) for v in value]


Predicate = Callable[[Record], bool]


def compile_filter(field: str, condition: str, value: Any,
                   fields: dict[str, str] = JOB_FIELDS) -> Predicate:
    """A predicate for one ``commonFilter``; 400 for an unknown field/condition or bad value."""
    name = canonical_field(field, fields)
    kind = fields[name]
    try:
        cond = wire.FilterCondition.parse(condition)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    C = wire.FilterCondition
    elem_kind = "str" if kind == "array" else kind

    if cond is C.LIKE:
        pattern = _like(str(_unwrap(value)))

        def like(rec: Record) -> bool:
            raw = _raw(rec, name)
            if kind == "array":
                return any(pattern.fullmatch(v) for v in _field_value(rec, name, kind))
            return raw is not None and bool(pattern.fullmatch(str(raw)))
        return like

    if cond in (C.IN, C.NOT_IN):
        wanted = [_typed(elem_kind, v, name) for v in _as_list(value, name, cond.value)]

        def member(rec: Record) -> bool:
            have = _field_value(rec, name, kind)
            found = (any(h in wanted for h in have) if kind == "array" else have in wanted)
            return found if cond is C.IN else not found
        return member

    if cond in (C.ARRAY_CONTAINS, C.ARRAY_CONTAINS_ANY):
        if cond is C.ARRAY_CONTAINS:
            wanted = [_typed(elem_kind, _unwrap(value), name)]
        else:
            wanted = [_typed(elem_kind, v, name) for v in _as_list(value, name, cond.value)]

        def contains(rec: Record) -> bool:
            have = _field_value(rec, name, kind)
            items = have if kind == "array" else [have]
            return any(w in items for w in wanted)
        return contains

    target = _typed(elem_kind, _unwrap(value), name)
    if kind == "array":
        if cond not in (C.EQ, C.NEQ):
            raise InvalidRequest(f"{cond.value} does not apply to the list field {name}")
        target_list = [str(v) for v in _unwrap(value)] if isinstance(_unwrap(value), list) \
            else [target]

        def same(rec: Record) -> bool:
            equal = sorted(_field_value(rec, name, kind)) == sorted(target_list)
            return equal if cond is C.EQ else not equal
        return same

    def compare(rec: Record) -> bool:
        have = _field_value(rec, name, kind)
        if cond is C.EQ:
            return have == target
        if cond is C.NEQ:
            return have != target
        if have is None or target is None:
            return False
        try:
            if cond is C.GT:
                return have > target
            if cond is C.GTE:
                return have >= target
            if cond is C.LT:
                return have < target
            return have <= target
        except TypeError:
            return False
    return compare


def parse_order(order_by: str | None, fields: dict[str, str],
                default: Sequence[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """``"createdAt desc, name"`` / ``"-createdAt"`` / ``"created_at DESC"`` -> [(field, desc)]."""
    if order_by is None or not order_by.strip():
        return list(default)
    keys: list[tuple[str, bool]] = []
    for part in order_by.split(","):
        words = part.split()
        if not words:
            continue
        name, descending = words[0], False
        if name.startswith("-"):
            name, descending = name[1:], True
        elif name.startswith("+"):
            name = name[1:]
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise InvalidRequest(
                f"Invalid orderBy {order_by!r}: use 'field', 'field asc', 'field desc' or "
                "'-field', comma separated")
        if len(words) == 2:
            descending = words[1].lower() == "desc"
        sortable = {k: v for k, v in fields.items() if v != "array"}
        keys.append((canonical_field(name, sortable), descending))
    return keys or list(default)


def sort_records(records: Sequence[RecordT], keys: Sequence[tuple[str, bool]],
                 fields: dict[str, str]) -> list[RecordT]:
    """Sort by ``keys`` (missing values last in either direction).

    Ties keep the given order (creation order for jobs), reversed when the first key is
    descending, so "newest first" stays newest first within one millisecond too.
    """
    out = list(records)
    if keys and keys[0][1]:
        out.reverse()
    for name, descending in reversed(list(keys)):
        kind = fields[name]
        present = [r for r in out if _field_value(r, name, kind) is not None]
        missing = [r for r in out if _field_value(r, name, kind) is None]
        present.sort(key=lambda r, n=name, k=kind: _field_value(r, n, k), reverse=descending)
        out = present + missing
    return out


def page_size(limit: int | None) -> int:
    """The page size a ``limit`` asks for: 0/None means the default (100), at most `MAX_LIMIT`."""
    return DEFAULT_LIMIT if not limit else min(int(limit), MAX_LIMIT)


def paginate(items: list[Any], limit: int | None, offset: int | None) -> Page:
    """A page of ``items`` (see `page_size`)."""
    size = page_size(limit)
    start = int(offset or 0)
    return Page(items=items[start:start + size], total=len(items), offset=start)


def select(jobs: Sequence[StoredJob], predicates: Sequence[Predicate],
           keys: Sequence[tuple[str, bool]], limit: int | None, offset: int | None) -> Page:
    """The reference job listing: filter ``jobs`` (oldest first), sort by ``keys``, page.

    `sql` does the same in SQL; this is what it falls back to, and what tests compare
    it with.
    """
    matching = [j for j in jobs if all(p(j) for p in predicates)]
    return paginate(sort_records(matching, keys, JOB_FIELDS), limit, offset)
