"""The jobs table's indexed columns: each scalar filter field of `query.JOB_FIELDS` as a column.

`store` writes a job's JSON (``data``) together with these columns in one statement, so they
are derived from the row itself and cannot drift from it. Each column holds `query`'s *typed*
value of the field (what its filters compare and its orderings sort), encoded so that SQLite's
comparison equals Python's:

* ``state``: the position in `wire.JOB_STATE_ORDER` (lifecycle order);
* ``time``: microseconds since the epoch (instants, whatever the offset or precision written);
* ``int``: the integer; ``bool``: 0/1; ``str``: the text (UTF-8 byte order = code point order);
* a missing field or JSON ``null``: SQL ``NULL``.

A value that has no such encoding (a string in a number field, an unparseable timestamp, text
SQLite cannot hold exactly, ...) sets that field's bit in ``ix_irregular``; a query touching a
field with an irregular row falls back to `query`'s Python evaluation, which keeps its exact
(error) behaviour. ``BIT_JSON`` marks ``data`` that SQLite's JSON functions reject (NaN).

Writers that do not know these columns (an older bytenite-nb on the same data dir, a hand-made
``UPDATE``) are caught: ``ix_fresh`` defaults to 0 for their inserts, and a trigger resets it
when ``data`` changes without ``ix_stamp`` changing. `store` re-derives such rows before
listing, and on opening a data dir of an older schema (`upgrade`).
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import re
import sqlite3
from typing import Any

from bytenite_nb import wire
from bytenite_nb.server.storage.listing import query
from bytenite_nb.server.storage.records import StoredJob

#: Bumped when the columns or their encoding change; older data dirs are re-derived.
INDEX_VERSION = 1

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_US = _dt.timedelta(microseconds=1)
_INT64 = (-(2**63), 2**63 - 1)

#: Filter field -> column, for every field that is not a list.
COLUMNS: dict[str, str] = {
    name: "f_" + re.sub(r"\W", "_", wire.to_snake(name).replace(".", "__"))
    for name, kind in query.JOB_FIELDS.items() if kind != "array"
}
#: The ``ix_irregular`` bit of each column's field.
BITS: dict[str, int] = {name: 1 << i for i, name in enumerate(COLUMNS)}
BIT_JSON = 1 << len(COLUMNS)

#: Fields listed or filtered on most: indexed (the rest is still filtered in SQL, by a scan).
INDEXED = ("state", "templateId", "name", "createdAt", "submittedAt", "startedAt", "endedAt",
           "duration", "numChunks")

_SQL_TYPE = {"str": "TEXT", "state": "INTEGER", "time": "INTEGER", "int": "INTEGER",
             "bool": "INTEGER"}

_BOOKKEEPING = {
    "ix_fresh": "INTEGER NOT NULL DEFAULT 0",
    "ix_stamp": "INTEGER NOT NULL DEFAULT 0",
    "ix_irregular": "INTEGER NOT NULL DEFAULT 0",
}


class Unencodable(Exception):
    """A value with no SQL encoding that compares exactly as Python compares it."""


def bind(kind: str, value: Any) -> Any:
    """`query`'s typed value (field or filter target) as an SQL value; `Unencodable` if none."""
    if value is None:
        return None
    if kind == "time":
        if not isinstance(value, _dt.datetime) or value.tzinfo is None:
            raise Unencodable(value)
        return (value - _EPOCH) // _US
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise Unencodable(value)
        return value
    if isinstance(value, str) and kind in ("str", "array"):
        # NUL and lone surrogates: SQLite text cannot compare them as Python does.
        if "\x00" in value:
            raise Unencodable(value)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Unencodable(value) from None
        return value
    raise Unencodable(value)


def _field(job: StoredJob, name: str, kind: str) -> Any:
    raw = query._raw(job, name)
    if raw is None:
        return None
    if kind == "str" and not isinstance(raw, str):
        raise Unencodable(raw)  # Python compares 5 != "5" and cannot order them: keep that
    if kind == "int" and not isinstance(raw, int):
        raise Unencodable(raw)
    if kind in ("state", "time") and not (isinstance(raw, str) and raw.isascii()):
        raise Unencodable(raw)
    try:
        value = query._field_value(job, name, kind)
    except (ValueError, OverflowError):
        raise Unencodable(raw) from None
    return bind(kind, value)


def encode(job: StoredJob) -> tuple[list[Any], int]:
    """The column values of ``job`` (in `COLUMNS` order) and its ``ix_irregular`` bits."""
    values: list[Any] = []
    irregular = 0
    for name in COLUMNS:
        try:
            values.append(_field(job, name, query.JOB_FIELDS[name]))
        except Unencodable:
            values.append(None)
            irregular |= BITS[name]
    return values, irregular


@functools.lru_cache(maxsize=64)
def _pattern(pattern: str) -> re.Pattern[str]:
    return query._like(pattern)


def like_json(value_json: str | None, pattern: str) -> int:
    """SQL ``bn_like(data -> '$.field', pattern)``: `query`'s ``LIKE`` on a field's JSON text.

    Evaluated in Python with `query`'s own pattern, so the match (case folding beyond ASCII
    included) is exactly the Python filter's: the field as text, ``str(value)``.
    """
    raw = None if value_json is None else json.loads(value_json)
    return int(raw is not None and bool(_pattern(pattern).fullmatch(str(raw))))


def dump(job: StoredJob) -> tuple[str, int]:
    """``job`` as stored JSON, and `BIT_JSON` if SQLite's JSON functions would reject it."""
    try:
        return json.dumps(job, allow_nan=False), 0
    except ValueError:
        return json.dumps(job), BIT_JSON


def upgrade(conn: sqlite3.Connection) -> None:
    """Add what an older data dir lacks (columns, indexes, trigger); mark its rows for re-deriving.

    Idempotent, and safe on a new database. Runs in the caller's transaction.
    """
    have = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    wanted = {col: _SQL_TYPE[query.JOB_FIELDS[name]] for name, col in COLUMNS.items()}
    wanted.update(_BOOKKEEPING)
    for column, decl in wanted.items():
        if column not in have:
            conn.execute(f"ALTER TABLE jobs ADD COLUMN {column} {decl}")
    for name in INDEXED:
        conn.execute(f"CREATE INDEX IF NOT EXISTS jobs_{COLUMNS[name]} ON jobs ({COLUMNS[name]})")
    # Partial indexes: finding the (normally zero) stale or irregular rows is a probe, no scan.
    conn.execute("CREATE INDEX IF NOT EXISTS jobs_ix_stale ON jobs (ix_fresh) WHERE ix_fresh = 0")
    conn.execute("CREATE INDEX IF NOT EXISTS jobs_ix_irregular ON jobs (ix_irregular) "
                 "WHERE ix_irregular != 0")
    conn.execute(
        "CREATE TRIGGER IF NOT EXISTS jobs_ix_data_changed AFTER UPDATE OF data ON jobs "
        "WHEN NEW.ix_stamp IS OLD.ix_stamp "
        "BEGIN UPDATE jobs SET ix_fresh = 0 WHERE rowid = NEW.rowid; END")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version < INDEX_VERSION:
        conn.execute("UPDATE jobs SET ix_fresh = 0")
        conn.execute(f"PRAGMA user_version = {INDEX_VERSION}")


def rederive(conn: sqlite3.Connection) -> int:
    """Re-derive the columns of every stale row (see the module docstring); returns how many.

    Runs in the caller's transaction.
    """
    rows = conn.execute("SELECT rowid, data FROM jobs WHERE ix_fresh = 0").fetchall()
    sets = ", ".join(f"{c} = ?" for c in COLUMNS.values())
    for rowid, data in rows:
        job = json.loads(data)
        values, irregular = encode(job)
        irregular |= dump(job)[1]
        conn.execute(f"UPDATE jobs SET {sets}, ix_irregular = ?, ix_fresh = 1, "
                     "ix_stamp = ix_stamp + 1 WHERE rowid = ?", (*values, irregular, rowid))
    return len(rows)
