"""Filters, ordering and pagination of ``GET /jobs``, ``POST /jobs/filter`` and templates."""

from __future__ import annotations

from typing import Any

import pytest

from bytenite_nb import wire
from bytenite_nb.server.errors import InvalidRequest
from bytenite_nb.server.storage.listing.query import (
    JOB_FIELDS,
    compile_filter,
    paginate,
    parse_order,
    sort_records,
)

JOBS: list[dict[str, Any]] = [
    {"id": "a", "name": "alpha", "state": "JOB_STATE_COMPLETE", "templateId": "t1",
     "createdAt": "2026-01-01T00:00:00.000Z", "duration": 10, "numChunks": 3,
     "config": {"isTestJob": True, "taskTimeout": 60},
     "stateTimestamps": {"JOB_STATE_NEW": "x", "JOB_STATE_COMPLETE": "y"},
     "dataSource": {"dataSourceDescriptor": "url"}},
    {"id": "b", "name": "Beta", "state": "JOB_STATE_FAILED", "templateId": "t2",
     "createdAt": "2026-01-02T00:00:00.000Z", "duration": 5, "numChunks": 1,
     "config": {"isTestJob": False},
     "stateTimestamps": {"JOB_STATE_NEW": "x", "JOB_STATE_FAILED": "y"},
     "dataSource": {"dataSourceDescriptor": "bypass"}},
    {"id": "c", "name": "gamma", "state": "JOB_STATE_NEW", "templateId": "t1",
     "createdAt": "2026-01-03T00:00:00.000Z", "duration": 0, "numChunks": 0,
     "stateTimestamps": {"JOB_STATE_NEW": "x"}},
]


def ids(field: str, condition: str, value: Any) -> list[str]:
    pred = compile_filter(field, condition, value)
    return [j["id"] for j in JOBS if pred(j)]


@pytest.mark.parametrize(("field", "condition", "value", "expected"), [
    ("state", "FILTER_CONDITION_EQ", "JOB_STATE_COMPLETE", ["a"]),
    ("state", "EQ", {"@type": wire.PROTOBUF_VALUE_TYPE, "value": "complete"}, ["a"]),
    ("template_id", "FILTER_CONDITION_NEQ", "t1", ["b"]),
    ("duration", "FILTER_CONDITION_GT", "5", ["a"]),
    ("duration", "FILTER_CONDITION_GTE", 5, ["a", "b"]),
    ("numChunks", "FILTER_CONDITION_LT", 1, ["c"]),
    ("num_chunks", "FILTER_CONDITION_LTE", "1", ["b", "c"]),
    ("createdAt", "FILTER_CONDITION_GT", "2026-01-01T12:00:00Z", ["b", "c"]),
    ("createdAt", "FILTER_CONDITION_LT", "2026-01-02T00:00:00+00:00", ["a"]),
    ("state", "FILTER_CONDITION_GT", "JOB_STATE_MERGED", ["a", "b"]),
    ("stateTimestamps", "FILTER_CONDITION_ARRAY_CONTAINS", "JOB_STATE_FAILED", ["b"]),
    ("state_timestamps", "FILTER_CONDITION_ARRAY_CONTAINS_ANY",
     ["JOB_STATE_FAILED", "JOB_STATE_COMPLETE"], ["a", "b"]),
    ("templateId", "FILTER_CONDITION_ARRAY_CONTAINS", "t2", ["b"]),
    ("state", "FILTER_CONDITION_IN", ["JOB_STATE_NEW", "JOB_STATE_FAILED"], ["b", "c"]),
    ("state", "FILTER_CONDITION_NOT_IN",
     {"@type": wire.PROTOBUF_VALUE_TYPE, "value": ["JOB_STATE_NEW"]}, ["a", "b"]),
    ("name", "FILTER_CONDITION_LIKE", "%ET%", ["b"]),
    ("name", "FILTER_CONDITION_LIKE", "_lpha", ["a"]),
    ("config.isTestJob", "FILTER_CONDITION_EQ", True, ["a"]),
    ("config.is_test_job", "FILTER_CONDITION_EQ", "false", ["b"]),
    ("config.taskTimeout", "FILTER_CONDITION_GTE", 1, ["a"]),
    ("dataSource.dataSourceDescriptor", "FILTER_CONDITION_EQ", "bypass", ["b"]),
])
def test_every_condition(field: str, condition: str, value: Any, expected: list[str]) -> None:
    assert ids(field, condition, value) == expected


def test_every_filter_condition_is_covered() -> None:
    names = {c.value for c in wire.FilterCondition}
    assert len(names) == 11
    for name in names:  # all accepted on some field
        value = ["JOB_STATE_NEW"] if "IN" in name or "ANY" in name else "JOB_STATE_NEW"
        field = "stateTimestamps" if "ARRAY" in name else "state"
        compile_filter(field, name, value)


@pytest.mark.parametrize(("field", "condition", "value", "words"), [
    ("colour", "FILTER_CONDITION_EQ", "red", ["colour", "templateId", "createdAt"]),
    ("state", "FILTER_CONDITION_ABOUT", "x", ["FILTER_CONDITION_LIKE"]),
    ("state", "FILTER_CONDITION_EQ", "JOB_STATE_SLEEPING", ["state", "JOB_STATE_NEW"]),
    ("duration", "FILTER_CONDITION_GT", "long", ["duration"]),
    ("createdAt", "FILTER_CONDITION_GT", "yesterday", ["createdAt"]),
    ("state", "FILTER_CONDITION_IN", "JOB_STATE_NEW", ["list"]),
    ("stateTimestamps", "FILTER_CONDITION_GT", "x", ["list field"]),
])
def test_bad_filters_are_400_and_say_why(field: str, condition: str, value: Any,
                                         words: list[str]) -> None:
    with pytest.raises(InvalidRequest) as info:
        compile_filter(field, condition, value)
    for word in words:
        assert word in info.value.message


def test_order_by_syntaxes() -> None:
    default = [("createdAt", True)]
    assert parse_order(None, JOB_FIELDS, default) == default
    assert parse_order("createdAt", JOB_FIELDS, default) == [("createdAt", False)]
    assert parse_order("created_at DESC", JOB_FIELDS, default) == [("createdAt", True)]
    assert parse_order("-duration, name asc", JOB_FIELDS, default) == [
        ("duration", True), ("name", False)]
    for bad in ("colour", "name sideways", "stateTimestamps"):
        with pytest.raises(InvalidRequest):
            parse_order(bad, JOB_FIELDS, default)


def test_sorting_puts_missing_values_last_and_keeps_ties_in_creation_order() -> None:
    records = [{"id": "1", "n": 2}, {"id": "2"}, {"id": "3", "n": 1}, {"id": "4", "n": 2}]
    fields = {"n": "int", "id": "str"}
    asc = sort_records(records, [("n", False)], fields)
    assert [r["id"] for r in asc] == ["3", "1", "4", "2"]
    desc = sort_records(records, [("n", True)], fields)
    assert [r["id"] for r in desc] == ["4", "1", "3", "2"]
    jobs = sort_records(JOBS, [("state", False)], JOB_FIELDS)  # lifecycle order
    assert [j["id"] for j in jobs] == ["c", "a", "b"]


def test_pagination_flags() -> None:
    items = list(range(5))
    page = paginate(items, 2, 0)
    assert page.items == [0, 1] and page.pagination() == {
        "total": "5", "offset": "0", "hasPrevious": False, "hasNext": True}
    page = paginate(items, 2, 4)
    assert page.items == [4] and page.pagination()["hasNext"] is False
    assert page.pagination()["hasPrevious"] is True
    assert paginate(items, None, None).items == items  # 0/unset: the default page size
    assert paginate(items, 10, 9).items == [] and paginate(items, 10, 9).pagination()[
        "hasNext"] is False
