"""Job lists in SQL (`joblist`) give what the Python reference (`query.select`) gives.

hypothesis draws varied jobs (missing fields, equal instants written differently, case and
non-ASCII text, LIKE wildcards, irregular values that force the fallback) and varied filters,
orderings and pages; the page, its order and ``total`` must be identical, and so must a 400.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bytenite_nb import wire
from bytenite_nb.server.errors import ServerError
from bytenite_nb.server.http import protojson
from bytenite_nb.server.storage.listing import index as jobindex
from bytenite_nb.server.storage.listing import query
from bytenite_nb.server.storage.listing import render as jobrender
from bytenite_nb.server.storage.listing import sql as joblist
from bytenite_nb.server.storage.store import SCHEMA, Store

STATES = [s.value for s in wire.JobState]
# The same instants written in several ways, plus ones that differ by a microsecond.
TIMES = ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00Z", "2026-01-01T02:00:00+02:00",
         "2026-01-01T00:00:00.000001Z", "2025-12-31T23:59:59.999Z", "2026-03-01T10:00:00.5Z"]
TEXTS = ["alpha", "Alpha", "ALPHA", "al%ha", "a_b", "ébène", "Ébène", "straße", "", "x\ny",
         "page-1", "page-10", "β"]
MISSING = object()


def _maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(values, st.just(None), st.just(MISSING))


JOB = st.fixed_dictionaries({
    "state": st.sampled_from([*STATES, "complete", "FAILED"]),
    "templateId": _maybe(st.sampled_from(["t1", "t2", "T1", ""])),
    "name": _maybe(st.sampled_from(TEXTS)),
    "description": _maybe(st.sampled_from(TEXTS)),
    "createdAt": _maybe(st.sampled_from(TIMES)),
    "startedAt": _maybe(st.sampled_from(TIMES)),
    "endedAt": _maybe(st.sampled_from(TIMES)),
    "duration": _maybe(st.integers(-3, 3) | st.booleans()),
    "numChunks": _maybe(st.integers(0, 3)),
    "config": _maybe(st.fixed_dictionaries({}, optional={
        "isTestJob": st.none() | st.booleans(),
        "taskTimeout": st.none() | st.integers(0, 3)})),
    "stateTimestamps": _maybe(st.dictionaries(st.sampled_from(STATES[:4]), st.just("t"),
                                              max_size=2)),
    "dataSource": _maybe(st.fixed_dictionaries(
        {"dataSourceDescriptor": st.sampled_from(["url", "file", "bypass"])})),
})
# Values the SQL path cannot encode: such rows send requests touching the field to Python.
IRREGULAR = st.sampled_from([("numChunks", "5"), ("createdAt", ""), ("name", 7),
                             ("duration", 1.5), ("state", "JOB_STATE_SLEEPING"),
                             ("startedAt", "yesterday"), ("templateId", "a\x00b")])

FIELD_VALUES: dict[str, list[Any]] = {
    "state": ["JOB_STATE_COMPLETE", "new", "", STATES[3], "JOB_STATE_SLEEPING"],
    "templateId": ["t1", "T1", "", 5],
    "name": [*TEXTS, "%", "A%", "_lpha", "%È%", "x_y", "%\n"],
    "createdAt": [*TIMES, "", 1767225600, "yesterday"],
    "startedAt": TIMES[:3],
    "duration": [0, 1, "2", -1, "", True, 2**70],
    "numChunks": [0, 1, "3"],
    "config.isTestJob": [True, False, "true", "0", ""],
    "config.taskTimeout": [1, 2],
    "stateTimestamps": STATES[:4],
    "dataSource.dataSourceDescriptor": ["file", "url"],
    "id": ["j0", "j1"],
}
CONDITIONS = [c.value for c in wire.FilterCondition]


@st.composite
def filters(draw: st.DrawFn) -> tuple[str, str, Any]:
    name = draw(st.sampled_from(sorted(FIELD_VALUES)))
    condition = draw(st.sampled_from(CONDITIONS))
    pool = st.sampled_from(FIELD_VALUES[name])
    if "IN" in condition or "ANY" in condition:
        value: Any = draw(st.lists(pool | st.none(), max_size=3))
    else:
        value = draw(pool | st.none())
    if draw(st.booleans()):
        value = {"@type": wire.PROTOBUF_VALUE_TYPE, "value": value}
    field = wire.to_snake(name) if draw(st.booleans()) else name
    return field, condition, value


ORDER = st.lists(
    st.tuples(st.sampled_from(["createdAt", "created_at", "name", "state", "duration",
                               "numChunks", "startedAt", "config.isTestJob", "templateId"]),
              st.sampled_from(["", " asc", " desc", "-"])),
    max_size=3,
).map(lambda keys: ", ".join(("-" + f) if d == "-" else f + d for f, d in keys) or None)


def _job(i: int, fields: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"j{i}", **{k: v for k, v in fields.items() if v is not MISSING}}


def _outcome(fn: Any) -> Any:
    try:
        page = fn()
    except ServerError as exc:
        return ("error", type(exc).__name__, exc.message)
    except (TypeError, ValueError) as exc:  # rows the reference cannot sort: a 500, kept
        return ("raised", type(exc).__name__, str(exc))
    return ([j["id"] for j in page.items], page.total, page.offset)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs=st.lists(JOB, max_size=12), irregular=st.lists(
    st.tuples(st.integers(0, 11), IRREGULAR), max_size=2),
       fs=st.lists(filters(), max_size=3), order_by=ORDER,
       limit=st.sampled_from([None, 0, 1, 2, 5]), offset=st.sampled_from([None, 0, 1, 3, 20]))
def test_sql_listing_equals_the_python_reference(
        jobs: list[dict[str, Any]], irregular: list[tuple[int, tuple[str, Any]]],
        fs: list[tuple[str, str, Any]], order_by: str | None, limit: int | None,
        offset: int | None) -> None:
    records = [_job(i, j) for i, j in enumerate(jobs)]
    for index, (name, value) in irregular:
        if index < len(records):
            records[index][name] = value
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "db.sqlite")
        try:
            for record in records:
                store.put_job(record)
            stored = store.list_jobs()

            def reference() -> query.Page:
                predicates = [query.compile_filter(*f) for f in fs]
                keys = query.parse_order(order_by, query.JOB_FIELDS, [("createdAt", True)])
                return query.select(stored, predicates, keys, limit, offset)

            expected = _outcome(reference)
            got = _outcome(lambda: joblist.jobs_page(store, fs, order_by, limit, offset))
        finally:
            store.close()
    assert got == expected


def _raw(tmp: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(tmp / "db.sqlite"), isolation_level=None)


def test_like_is_python_like_beyond_ascii_and_on_non_text_fields(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    store.put_job({"id": "a", "state": "JOB_STATE_NEW", "name": "Ébène",
                   "config": {"isTestJob": True}, "duration": 15})
    store.put_job({"id": "b", "state": "JOB_STATE_NEW", "name": "ebene\n", "duration": 5})

    def ids(field: str, pattern: str) -> list[str]:
        page = joblist.jobs_page(store, [(field, "FILTER_CONDITION_LIKE", pattern)], "id",
                                 None, None)
        return [j["id"] for j in page.items]

    assert ids("name", "éB%") == ["a"]           # case folding of non-ASCII letters
    assert ids("name", "ebene") == []            # the whole name, its final newline too
    assert ids("name", "ebene_") == ["b"]
    assert ids("config.isTestJob", "true") == ["a"]  # str(True)
    assert ids("duration", "1_") == ["a"]
    store.close()


def test_an_older_data_dir_opens_and_lists(tmp_path: Path) -> None:
    # The previous version's database: the jobs table without the indexed columns.
    old = _raw(tmp_path)
    old.executescript(SCHEMA)
    jobs = [{"id": f"j{i}", "state": "JOB_STATE_COMPLETE" if i % 2 else "JOB_STATE_NEW",
             "createdAt": f"2026-01-0{i + 1}T00:00:00.000Z", "name": f"n{i}"} for i in range(4)]
    for job in jobs:
        old.execute("INSERT INTO jobs (id, created_at, state, data) VALUES (?, ?, ?, ?)",
                    (job["id"], job["createdAt"], job["state"], json.dumps(job)))
    old.close()
    store = Store(tmp_path / "db.sqlite")
    page = joblist.jobs_page(store, [("state", "EQ", "complete")], None, None, None)
    assert [j["id"] for j in page.items] == ["j3", "j1"] and page.total == 2
    store.close()
    again = _raw(tmp_path)
    assert again.execute("PRAGMA user_version").fetchone()[0] == jobindex.INDEX_VERSION
    assert again.execute("SELECT COUNT(*) FROM jobs WHERE ix_fresh = 0").fetchone()[0] == 0
    again.close()
    Store(tmp_path / "db.sqlite").close()  # opening an upgraded data dir again is a no-op


def test_writes_that_skip_the_columns_are_re_derived_before_listing(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    store.put_job({"id": "a", "state": "JOB_STATE_NEW", "createdAt": TIMES[0], "name": "x"})
    store.put_job({"id": "b", "state": "JOB_STATE_NEW", "createdAt": TIMES[4], "name": "y"})
    # What an older bytenite-nb (or a hand-made UPDATE) writes: data and state only.
    other = _raw(tmp_path)
    changed = {"id": "a", "state": "JOB_STATE_FAILED", "createdAt": TIMES[0], "name": "z"}
    other.execute("UPDATE jobs SET state = ?, data = ? WHERE id = 'a'",
                  (changed["state"], json.dumps(changed)))
    added = {"id": "c", "state": "JOB_STATE_FAILED", "createdAt": TIMES[5], "name": "z"}
    other.execute("INSERT OR REPLACE INTO jobs (id, created_at, state, data) VALUES (?,?,?,?)",
                  ("c", added["createdAt"], added["state"], json.dumps(added)))
    other.close()
    page = joblist.jobs_page(store, [("name", "EQ", "z"), ("state", "EQ", "failed")],
                             "createdAt", None, None)
    assert [j["id"] for j in page.items] == ["a", "c"] and page.total == 2
    # and the store's own update keeps the columns in step with the data
    store.update_job("c", lambda job: {**job, "name": "w"})
    page = joblist.jobs_page(store, [("name", "EQ", "z")], None, None, None)
    assert [j["id"] for j in page.items] == ["a"]
    store.close()


def test_a_page_reads_only_its_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path / "db.sqlite")
    for i in range(30):
        store.put_job({"id": f"j{i:02}", "state": "JOB_STATE_NEW",
                       "createdAt": f"2026-01-01T00:00:{i:02}.000Z"})
    parsed: list[str] = []
    real = joblist.json.loads

    def counting(text: str) -> Any:
        parsed.append(text)
        return real(text)

    monkeypatch.setattr(joblist.json, "loads", counting)
    page = joblist.jobs_page(store, [], None, 5, 10)
    monkeypatch.undo()
    assert [j["id"] for j in page.items] == [f"j{i:02}" for i in range(19, 14, -1)]
    assert page.total == 30 and len(parsed) == 5
    store.close()


RENDER_JOB = st.fixed_dictionaries({
    "state": st.sampled_from(STATES),
    "name": _maybe(st.text(max_size=6)),
    "createdAt": st.sampled_from(TIMES),
    "duration": _maybe(st.integers(-(2**63), 2**63 - 1) | st.sampled_from([True, 2**64, "7",
                                                                           1.5])),
    "paymentAmount": _maybe(st.integers(0, 10)),
    "priority": _maybe(st.sampled_from(["EXECUTION_PRIORITY_HIGH", ""])),
    "config": _maybe(st.fixed_dictionaries({}, optional={
        "taskTimeout": st.none() | st.integers(0, 2**63 - 1) | st.just("9"),
        "isTestJob": st.booleans(), "other": st.text(max_size=3)}) | st.just([1])),
    "params": _maybe(st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=4)
        | st.floats(allow_nan=False, allow_infinity=False),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                   max_size=3),
        max_leaves=6)),
    "dataSource": _maybe(st.fixed_dictionaries(
        {"dataSourceDescriptor": st.sampled_from(["url", "file", "bypass"])}) | st.just("")),
    "stateTimestamps": _maybe(st.dictionaries(st.sampled_from(STATES[:3]), st.sampled_from(TIMES),
                                              max_size=2)),
    "extra": _maybe(st.integers()),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs=st.lists(RENDER_JOB, min_size=1, max_size=6))
def test_sql_rendering_equals_protojson(jobs: list[dict[str, Any]]) -> None:
    records = [_job(i, j) for i, j in enumerate(jobs)]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "db.sqlite")
        try:
            for record in records:
                store.put_job(record)
            page = joblist.jobs_page(store, [], "id", None, None, render=True)
            stored = {j["id"]: j for j in store.list_jobs()}
        finally:
            store.close()
    assert len(page.items) == len(records)
    for item in page.items:
        if isinstance(item, jobrender.Rendered):
            got = json.loads(item.text)
            want = json.loads(json.dumps(protojson.job_out(stored[got["id"]])))
            assert got == want and list(got) == list(want)
        else:  # left to protojson.job_out: the stored job itself
            assert item == stored[item["id"]]


def test_the_jobs_bytenite_local_writes_are_rendered_in_sql(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    job = {"id": "a", "state": "JOB_STATE_COMPLETE", "createdAt": TIMES[0], "duration": 3,
           "numChunks": 2, "config": {"taskTimeout": 60, "isTestJob": False},
           "params": {"app": {"x": [1, 2.5, "é"]}}, "stateTimestamps": {"JOB_STATE_NEW": "t"},
           "dataSource": {"dataSourceDescriptor": "url", "params": {"url": "http://x"}}}
    store.put_job(job)
    store.put_job({**job, "id": "b", "dataSource": {"dataSourceDescriptor": "file"}})
    items = joblist.jobs_page(store, [], "id", None, None, render=True).items
    assert isinstance(items[0], jobrender.Rendered)
    assert json.loads(items[0].text) == json.loads(json.dumps(protojson.job_out(job)))
    assert items[1]["id"] == "b"  # a file source's upload URL depends on the request
    store.close()
