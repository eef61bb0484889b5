"""``GET /jobs`` and ``POST /jobs/filter`` in SQL: filter, order, count and page in SQLite.

`query` defines what the filters and orderings mean (and stays the reference, see
`query.select`); this module translates them to SQL over `index`'s columns, so a page costs
an indexed query plus decoding the rows *of that page*, not every job:

* each filter becomes a ``WHERE`` term with the same result row by row (``NULL``-safe: a missing
  field is ``NULL``, and ``EQ``/``NEQ``/``IN``/``NOT_IN`` treat it as Python's ``None``);
* ``LIKE`` runs `query`'s own pattern in SQL through ``bn_like`` on the field's JSON;
* filters on list fields (``stateTimestamps``, ``regions.*``), or with a value SQL cannot hold
  exactly, run in Python on the rows the SQL terms left, in SQL order; ``total`` counts them;
* orderings: ``NULL`` last in both directions, ties in creation order (reversed when the first
  key is descending), as `query.sort_records` does;
* if a touched field has a row `index` could not encode, the whole request is evaluated by
  `query.select` instead, which keeps its exact behaviour for such data.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bytenite_nb import wire
from bytenite_nb.server.storage.listing import index as jobindex
from bytenite_nb.server.storage.listing import query
from bytenite_nb.server.storage.listing import render as jobrender
from bytenite_nb.server.storage.store import Store

C = wire.FilterCondition
_OPS = {C.GT: ">", C.GTE: ">=", C.LT: "<", C.LTE: "<="}
#: ``data -> path`` needs SQLite 3.38; without it ``LIKE`` runs in Python.
_HAS_ARROW = sqlite3.sqlite_version_info >= (3, 38, 0)


@dataclass
class _Plan:
    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    python: list[query.Predicate] = field(default_factory=list)
    every: list[query.Predicate] = field(default_factory=list)
    mask: int = 0


def _clause(name: str, cond: wire.FilterCondition, value: Any) -> tuple[str, list[Any], int]:
    """The SQL term of one filter on a non-list field; `index.Unencodable` if it has none."""
    kind = query.JOB_FIELDS[name]
    col, bit = jobindex.COLUMNS[name], jobindex.BITS[name]
    if cond is C.LIKE:
        if not _HAS_ARROW:
            raise jobindex.Unencodable(value)
        return ("bn_like(data -> ?, ?)", ["$." + name, str(query._unwrap(value))],
                jobindex.BIT_JSON)
    if cond in (C.IN, C.NOT_IN, C.ARRAY_CONTAINS, C.ARRAY_CONTAINS_ANY):
        # On a scalar field ARRAY_CONTAINS(_ANY) is membership too: the field as a 1-item list.
        if cond is C.ARRAY_CONTAINS:
            wanted = [query._typed(kind, query._unwrap(value), name)]
        else:
            wanted = [query._typed(kind, v, name) for v in query._as_list(value, name, cond.value)]
        binds = [jobindex.bind(kind, w) for w in wanted]
        known = [b for b in binds if b is not None]
        parts = []
        if known:  # "IS NOT NULL AND": false, not NULL, for a missing field (NOT_IN keeps it)
            parts.append(f"({col} IS NOT NULL AND {col} IN ({','.join('?' * len(known))}))")
        if len(known) < len(binds):
            parts.append(f"{col} IS NULL")
        found = " OR ".join(parts) or "0"
        return (f"NOT ({found})" if cond is C.NOT_IN else f"({found})"), known, bit
    target = jobindex.bind(kind, query._typed(kind, query._unwrap(value), name))
    if cond is C.EQ:
        return f"{col} IS ?", [target], bit
    if cond is C.NEQ:
        return f"{col} IS NOT ?", [target], bit
    if target is None:  # an ordering comparison with nothing never matches
        return "0", [], bit
    return f"{col} {_OPS[cond]} ?", [target], bit


def _plan(filters: Iterable[tuple[str, str, Any]]) -> _Plan:
    plan = _Plan()
    for field_name, condition, value in filters:
        # The Python predicate first: it validates (400s) exactly as before, in filter order.
        predicate = query.compile_filter(field_name, condition, value)
        plan.every.append(predicate)
        name = query.canonical_field(field_name, query.JOB_FIELDS)
        if query.JOB_FIELDS[name] == "array":
            plan.python.append(predicate)
            continue
        try:
            sql, params, bit = _clause(name, C.parse(condition), value)
        except jobindex.Unencodable:
            plan.python.append(predicate)
            continue
        plan.where.append(sql)
        plan.params.extend(params)
        plan.mask |= bit
    return plan


def _order_sql(conn: sqlite3.Connection, keys: Sequence[tuple[str, bool]]) -> str:
    parts = []
    for name, descending in keys:
        col = jobindex.COLUMNS[name]
        if descending:
            parts.append(f"{col} DESC")  # SQLite puts NULL first ascending, so last here
        elif name in jobindex.INDEXED and not conn.execute(
                f"SELECT 1 FROM jobs WHERE {col} IS NULL LIMIT 1").fetchone():
            parts.append(col)  # no NULL to move last: the plain form can walk the index
        else:
            parts.append(f"{col} IS NULL, {col}")
    parts.append("rowid DESC" if keys[0][1] else "rowid")
    return ", ".join(parts)


def _rendered(conn: sqlite3.Connection, where: str, order: str,
              params: list[Any]) -> list[Any]:
    rows = conn.execute(f"SELECT rowid, {jobrender.RENDER_SQL} FROM jobs WHERE {where} "
                        f"ORDER BY {order} LIMIT ? OFFSET ?", params).fetchall()
    items: list[Any] = [jobrender.Rendered(text) if text is not None else None
                        for _, text in rows]
    for i, (rowid, text) in enumerate(rows):
        if text is None:  # the rare row protojson.job_out renders (see `render`)
            data = conn.execute("SELECT data FROM jobs WHERE rowid = ?", (rowid,)).fetchone()
            items[i] = json.loads(data[0])
    return items


def jobs_page(store: Store, filters: Iterable[tuple[str, str, Any]], order_by: str | None,
              limit: int | None, offset: int | None, *, render: bool = False) -> query.Page:
    """One page of stored jobs (dicts) matching every ``(field, condition, value)`` filter.

    ``order_by`` defaults to newest first; 400 for an unknown field, condition or bad value,
    exactly as `query.select` would say. With ``render``, items SQLite could render are
    `render.Rendered` protojson (the others stay dicts for `protojson.job_out`).
    """
    plan = _plan(filters)
    keys = query.parse_order(order_by, query.JOB_FIELDS, [("createdAt", True)])
    mask = plan.mask
    for name, _ in keys:
        mask |= jobindex.BITS[name]
    size, start = query.page_size(limit), int(offset or 0)
    with store.reading_jobs() as conn:
        if conn.execute("SELECT 1 FROM jobs WHERE ix_irregular != 0 AND ix_irregular & ? "
                        "LIMIT 1", (mask,)).fetchone():
            rows = conn.execute("SELECT data FROM jobs ORDER BY rowid").fetchall()
            return query.select([json.loads(r[0]) for r in rows], plan.every, keys, limit,
                                offset)
        where = " AND ".join(plan.where) or "1"
        order = _order_sql(conn, keys)
        if not plan.python:
            total = conn.execute(f"SELECT COUNT(*) FROM jobs WHERE {where}",
                                 plan.params).fetchone()[0]
            if not render:
                rows = conn.execute(
                    f"SELECT data FROM jobs WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
                    (*plan.params, size, start)).fetchall()
                return query.Page([json.loads(r[0]) for r in rows], total, start)
            return query.Page(_rendered(conn, where, order, [*plan.params, size, start]),
                              total, start)
        rows = conn.execute(f"SELECT data FROM jobs WHERE {where} ORDER BY {order}",
                            plan.params).fetchall()
    jobs = [job for job in (json.loads(r[0]) for r in rows)
            if all(p(job) for p in plan.python)]
    return query.Page(jobs[start:start + size], len(jobs), start)
