"""SQLite (WAL) persistence for ByteNite Local: jobs, tasks, logs, events, results, uploads, tokens,
secrets, user-cache upload URLs.

One connection guarded by one lock: ByteNite Local's write rate (state changes and log lines)
is far below what a single SQLite connection sustains, and a single writer keeps every
read-modify-write (`update_job`) atomic without retry loops on ``SQLITE_BUSY``.

Jobs are stored as their wire-form JSON (`records.StoredJob`: camelCase keys, Python ints for
int64, RFC 3339 strings for timestamps); the HTTP layer turns them into responses. Beside the
JSON, each job row carries its filter fields as indexed columns (`listing.index`), written in
the same statement, so `listing.sql` filters, orders, counts and pages jobs in SQL. The tables
are declared in `schema`.

The user's secrets (``/v1/auth/secrets``) are stored with their keys, so the database files
(the db, its ``-wal`` and ``-shm``) are made readable by their owner only (mode 0600).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from bytenite_nb import wire
from bytenite_nb.server.storage.listing import index as jobindex
from bytenite_nb.server.storage.records import (
    CacheUploadRow,
    EventRow,
    LogRow,
    ResultRow,
    SecretRow,
    StoredJob,
    TaskRow,
    UploadRow,
)
from bytenite_nb.server.storage.schema import SCHEMA

__all__ = ["SCHEMA", "CacheUploadRow", "EventRow", "LogRow", "ResultRow", "SecretRow", "Store",
           "TaskRow", "UploadRow", "make_private"]

log = logging.getLogger(__name__)


#: The database file and SQLite's companions that hold its pages.
_DB_SUFFIXES = ("", "-wal", "-shm", "-journal")


def make_private(path: Path) -> None:
    """Mode 0600 for the database and its ``-wal``/``-shm``/``-journal`` files that exist."""
    for suffix in _DB_SUFFIXES:
        target = Path(str(path) + suffix)
        try:
            if (target.stat().st_mode & 0o777) != 0o600:
                os.chmod(target, 0o600)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot make %s readable by its owner only (mode 0600): %s", target, exc)


class Store:
    """Thread-safe access to the data dir's SQLite database (``data_dir/bytenite-local.db``)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # 0600 from the first byte; SQLite creates -wal and -shm with the database's mode.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        make_private(path)
        self._lock = threading.RLock()
        # isolation_level=None: autocommit; multi-statement changes use explicit transactions.
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=10000")
        # Deleted rows (a deleted secret) are zeroed on pages that are written anyway.
        self._conn.execute("PRAGMA secure_delete=FAST")
        self._conn.create_function("bn_like", 2, jobindex.like_json, deterministic=True)
        self._conn.executescript(SCHEMA)
        # A data dir of an earlier version: its cache upload URLs were all the user cache's.
        columns = {r[1] for r in self._conn.execute("PRAGMA table_info(cache_uploads)")}
        if "scope" not in columns:
            self._conn.execute("ALTER TABLE cache_uploads ADD COLUMN scope TEXT NOT NULL "
                               "DEFAULT 'user'")
        with self._tx():
            jobindex.upgrade(self._conn)
            jobindex.rederive(self._conn)
        make_private(path)  # a data dir of an earlier version may have left them readable
        self._closed = False

    def close(self) -> None:
        """Close the connection (further calls raise)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def _tx(self) -> _Transaction:
        return _Transaction(self._conn, self._lock)

    def transaction(self) -> _Transaction:
        """``with store.transaction():`` the writes made in the block commit together (the
        store's lock is held meanwhile; the store's own methods join it)."""
        return self._tx()

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside a `transaction`: the block's writes are undone if it raises, the
        transaction's others are kept."""
        with self._lock:
            self._conn.execute("SAVEPOINT block")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK TO block")
                self._conn.execute("RELEASE block")
                raise
            self._conn.execute("RELEASE block")

    # -- jobs ---------------------------------------------------------------------------------

    def get_job(self, job_id: str) -> StoredJob | None:
        """The stored job, or None."""
        with self._lock:
            row = self._conn.execute("SELECT data FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return json.loads(row["data"]) if row else None

    def list_jobs(self) -> list[StoredJob]:
        """Every job, oldest first (what `listing.query`'s reference filtering takes)."""
        with self._lock:
            rows = self._conn.execute("SELECT data FROM jobs ORDER BY rowid").fetchall()
        return [json.loads(r["data"]) for r in rows]

    def put_job(self, job: StoredJob) -> None:
        """Insert or replace a job."""
        data, bad_json = jobindex.dump(job)
        values, irregular = jobindex.encode(job)
        columns = ", ".join(jobindex.COLUMNS.values())
        marks = ", ".join("?" * len(values))
        with self._lock:
            self._conn.execute(
                f"INSERT OR REPLACE INTO jobs (id, created_at, state, data, {columns}, "
                f"ix_irregular, ix_fresh) VALUES (?, ?, ?, ?, {marks}, ?, 1)",
                (job["id"], job.get("createdAt") or "", job["state"], data, *values,
                 irregular | bad_json),
            )

    def update_job(
        self, job_id: str, change: Callable[[StoredJob], StoredJob | None]
    ) -> StoredJob | None:
        """Atomically read, change and write a job. ``change`` may raise to abort.

        ``change`` gets a copy and returns the new job (or None to keep it unchanged).
        Returns the job as stored afterwards, or None if it does not exist.
        """
        with self._tx():
            row = self._conn.execute("SELECT data FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            job = json.loads(row["data"])
            new = change(json.loads(row["data"]))
            if new is None:
                return job
            data, bad_json = jobindex.dump(new)
            values, irregular = jobindex.encode(new)
            sets = ", ".join(f"{c} = ?" for c in jobindex.COLUMNS.values())
            # ix_stamp changes so the trigger knows the columns were written with the data.
            self._conn.execute(
                f"UPDATE jobs SET state = ?, data = ?, {sets}, ix_irregular = ?, ix_fresh = 1, "
                "ix_stamp = ix_stamp + 1 WHERE id = ?",
                (new["state"], data, *values, irregular | bad_json, job_id))
            return new

    def delete_job(self, job_id: str) -> bool:
        """Remove a job with its tasks, logs, results and upload rows. True if it existed."""
        with self._tx():
            cur = self._conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            for table in ("tasks", "logs", "results", "uploads"):
                self._conn.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))
            return cur.rowcount > 0

    @contextlib.contextmanager
    def reading_jobs(self) -> Iterator[sqlite3.Connection]:
        """The connection for a consistent series of job reads (`listing.sql`'s count and page).

        Holds the lock and one read transaction; first re-derives the indexed columns of rows
        some other writer changed (`listing.index.rederive`), so they are never stale.
        """
        with self._lock:
            if self._conn.execute("SELECT 1 FROM jobs WHERE ix_fresh = 0 LIMIT 1").fetchone():
                with self._tx():
                    jobindex.rederive(self._conn)
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")

    def job_ids_in_states(self, states: Iterable[str]) -> list[str]:
        """Ids of the jobs currently in any of ``states``."""
        states = list(states)
        marks = ",".join("?" * len(states))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT id FROM jobs WHERE state IN ({marks})", states).fetchall()
        return [r["id"] for r in rows]

    # -- tasks --------------------------------------------------------------------------------

    def upsert_task(self, job_id: str, chunk: int, **fields: Any) -> TaskRow:
        """Create the task row if needed and set ``fields`` (column names) on it."""
        allowed = {"state", "attempts", "started_at", "ended_at", "started_mono", "duration",
                   "exit_code", "error_message"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown task fields: {sorted(unknown)}")
        with self._tx():
            self._conn.execute(
                "INSERT OR IGNORE INTO tasks (job_id, chunk, state) VALUES (?, ?, ?)",
                (job_id, chunk, fields.get("state", "TASK_STATE_QUEUED")),
            )
            if fields:
                sets = ", ".join(f"{k} = ?" for k in fields)
                self._conn.execute(f"UPDATE tasks SET {sets} WHERE job_id = ? AND chunk = ?",
                                   (*fields.values(), job_id, chunk))
            row = self._conn.execute("SELECT * FROM tasks WHERE job_id = ? AND chunk = ?",
                                     (job_id, chunk)).fetchone()
        return _task(row)

    def add_queued_tasks(self, job_id: str, count: int) -> None:
        """Rows for tasks ``0 … count-1`` in ``TASK_STATE_QUEUED``, in one transaction;
        existing rows are kept."""
        with self._tx():
            self._conn.executemany(
                "INSERT OR IGNORE INTO tasks (job_id, chunk, state) VALUES (?, ?, ?)",
                ((job_id, chunk, "TASK_STATE_QUEUED") for chunk in range(int(count))))

    def get_task(self, job_id: str, chunk: int) -> TaskRow | None:
        """One task, or None."""
        with self._lock:
            row = self._conn.execute("SELECT * FROM tasks WHERE job_id = ? AND chunk = ?",
                                     (job_id, chunk)).fetchone()
        return _task(row) if row else None

    def task_started_mono(self, job_id: str, chunk: int) -> float | None:
        """Monotonic clock reading when the task's current attempt started (this process)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT started_mono FROM tasks WHERE job_id = ? AND chunk = ?",
                (job_id, chunk)).fetchone()
        return row["started_mono"] if row else None

    def list_tasks(self, job_id: str) -> list[TaskRow]:
        """A job's tasks by chunk number."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM tasks WHERE job_id = ? ORDER BY chunk",
                                      (job_id,)).fetchall()
        return [_task(r) for r in rows]

    def cancel_open_tasks(self, job_id: str, state: str, ended_at: str) -> list[int]:
        """Mark every non-terminal task of a job ``state``; returns their chunk numbers."""
        open_states = ("TASK_STATE_QUEUED", "TASK_STATE_RUNNING", "TASK_STATE_RETRYING")
        with self._tx():
            rows = self._conn.execute(
                "SELECT chunk FROM tasks WHERE job_id = ? AND state IN (?, ?, ?)",
                (job_id, *open_states)).fetchall()
            self._conn.execute(
                "UPDATE tasks SET state = ?, ended_at = ? WHERE job_id = ? AND state IN (?, ?, ?)",
                (state, ended_at, job_id, *open_states))
        return [r["chunk"] for r in rows]

    def running_task_counts(self, job_ids: Iterable[str]) -> dict[str, int]:
        """How many tasks of each job are running right now (0 for unknown jobs)."""
        ids = list(dict.fromkeys(job_ids))
        counts = dict.fromkeys(ids, 0)
        if not ids:
            return counts
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT job_id, COUNT(*) AS n FROM tasks WHERE state = 'TASK_STATE_RUNNING' "
                f"AND job_id IN ({marks}) GROUP BY job_id", ids).fetchall()
        for r in rows:
            counts[r["job_id"]] = r["n"]
        return counts

    # -- logs ---------------------------------------------------------------------------------

    def add_log(self, job_id: str, service: str, chunk: int | None, level: str, message: str,
                container: str, timestamp: str) -> int:
        """Append one log line; returns its id."""
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO logs (job_id, service, chunk, level, message, container, timestamp) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job_id, service, chunk, level, message, container, timestamp))
            return int(cur.lastrowid or 0)

    def logs(self, job_id: str) -> list[LogRow]:
        """Every log line of a job, in the order written."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM logs WHERE job_id = ? ORDER BY id",
                                      (job_id,)).fetchall()
        return [LogRow(**dict(r)) for r in rows]

    def trim_logs(self, job_id: str, head: int, tail: int, note: Callable[[int], str],
                  event_note: Callable[[int], dict[str, Any]], dropped: int = 0) -> int:
        """Keep a job's first ``head`` and last ``tail`` log lines (and ``job.log`` events);
        the first line after the head becomes the note ``note(count)`` saying how many went
        (``event_note(count)`` is merged into its event's data).

        ``dropped``: how many lines this job has dropped so far (0: none, no note yet); the
        count grows with each call. Returns the new count. Both tables are trimmed in one
        transaction, so ``/logs`` and a replay of ``/events`` tell the same story.
        """
        with self._tx():
            count = dropped
            for table, key, where, args in (
                    ("logs", "id", "job_id = ?", (job_id,)),
                    ("events", "seq", "job_id = ? AND name = ?", (job_id, wire.EVENT_JOB_LOG))):
                rows = self._conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}",
                                          args).fetchone()[0]
                noted = dropped > 0  # the note is one of the rows already
                excess = max(0, rows - noted - head - tail)
                if not noted and not excess:
                    continue  # nothing to drop yet
                note_key = self._conn.execute(
                    f"SELECT {key} FROM {table} WHERE {where} ORDER BY {key} LIMIT 1 OFFSET ?",
                    (*args, head)).fetchone()[0]
                # Without a note yet, the first line to drop becomes it.
                gone = excess if noted else excess - 1
                if gone:
                    self._conn.execute(
                        f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} "
                        f"WHERE {where} AND {key} > ? ORDER BY {key} LIMIT ?)",
                        (*args, note_key, gone))
                if table == "logs":
                    count = dropped + excess
                    self._conn.execute(
                        "UPDATE logs SET message = ?, level = ?, container = ? WHERE id = ?",
                        (note(count), wire.LogLevel.WARN.value, wire.RUNTIME_LOG_CONTAINER,
                         note_key))
                else:
                    data = json.loads(self._conn.execute(
                        "SELECT data FROM events WHERE seq = ?", (note_key,)).fetchone()[0])
                    data.update(event_note(count))
                    self._conn.execute("UPDATE events SET data = ? WHERE seq = ?",
                                       (json.dumps(data), note_key))
            return count

    # -- events -------------------------------------------------------------------------------

    def add_event(self, name: str, job_id: str | None, data: dict[str, Any] | str) -> int:
        """Persist an event (``data`` as a dict, or already encoded as JSON); returns its
        sequence number."""
        text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        with self._lock:
            cur = self._conn.execute("INSERT INTO events (name, job_id, data) VALUES (?, ?, ?)",
                                     (name, job_id, text))
            return int(cur.lastrowid or 0)

    def events_after(self, seq: int, limit: int = 500) -> list[EventRow]:
        """Up to ``limit`` events with a sequence number greater than ``seq``, in order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)).fetchall()
        return [EventRow(r["seq"], r["name"], r["job_id"], json.loads(r["data"])) for r in rows]

    def job_events(self, job_id: str, name: str) -> list[dict[str, Any]]:
        """The payloads of one job's stored events called ``name``, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT data FROM events WHERE job_id = ? AND name = ? ORDER BY seq",
                (job_id, name)).fetchall()
        return [json.loads(r["data"]) for r in rows]

    def last_seq(self) -> int:
        """The highest sequence number handed out so far (0 if none)."""
        with self._lock:
            row = self._conn.execute("SELECT MAX(seq) AS m FROM events").fetchone()
        return int(row["m"] or 0)

    # -- results ------------------------------------------------------------------------------

    def add_results(self, rows: Iterable[ResultRow]) -> None:
        """Record a job's result files."""
        with self._tx():
            self._conn.executemany(
                "INSERT INTO results (token, job_id, name, path, size, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(r.token, r.job_id, r.name, r.path, r.size, r.expires_at) for r in rows])

    def results(self, job_id: str) -> list[ResultRow]:
        """A job's result files by name."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM results WHERE job_id = ? ORDER BY name",
                                      (job_id,)).fetchall()
        return [ResultRow(**dict(r)) for r in rows]

    def expired_results(self, now: float) -> list[ResultRow]:
        """Result files whose links expired before ``now`` (unix time)."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM results WHERE expires_at <= ?",
                                      (now,)).fetchall()
        return [ResultRow(**dict(r)) for r in rows]

    def result_by_token(self, token: str) -> ResultRow | None:
        """The result file a link token points at, or None."""
        with self._lock:
            row = self._conn.execute("SELECT * FROM results WHERE token = ?",
                                     (token,)).fetchone()
        return ResultRow(**dict(row)) if row else None

    # -- uploads ------------------------------------------------------------------------------

    def ensure_upload(self, job_id: str, token: str, path: str) -> UploadRow:
        """The job's upload target, created with ``token``/``path`` if it has none yet."""
        with self._tx():
            self._conn.execute(
                "INSERT OR IGNORE INTO uploads (token, job_id, path) VALUES (?, ?, ?)",
                (token, job_id, path))
            row = self._conn.execute("SELECT * FROM uploads WHERE job_id = ?",
                                     (job_id,)).fetchone()
        return _upload(row)

    def upload_for_job(self, job_id: str) -> UploadRow | None:
        """The job's upload target, or None."""
        with self._lock:
            row = self._conn.execute("SELECT * FROM uploads WHERE job_id = ?",
                                     (job_id,)).fetchone()
        return _upload(row) if row else None

    def upload_by_token(self, token: str) -> UploadRow | None:
        """The upload target a token names, or None."""
        with self._lock:
            row = self._conn.execute("SELECT * FROM uploads WHERE token = ?",
                                     (token,)).fetchone()
        return _upload(row) if row else None

    def set_upload(self, job_id: str, *, size: int | None = None, path: str | None = None,
                   completed: bool | None = None) -> None:
        """Record the stored size/path and/or the completed flag of a job's upload."""
        with self._lock:
            if path is not None:
                self._conn.execute("UPDATE uploads SET path = ? WHERE job_id = ?", (path, job_id))
            if size is not None:
                self._conn.execute("UPDATE uploads SET size = ? WHERE job_id = ?", (size, job_id))
            if completed is not None:
                self._conn.execute("UPDATE uploads SET completed = ? WHERE job_id = ?",
                                   (int(completed), job_id))

    def delete_upload(self, job_id: str) -> None:
        """Forget a job's upload target (its data source is no longer ``file``)."""
        with self._lock:
            self._conn.execute("DELETE FROM uploads WHERE job_id = ?", (job_id,))

    # -- user-cache upload URLs ---------------------------------------------------------------

    def add_cache_upload(self, row: CacheUploadRow) -> None:
        """Remember an issued upload URL; drop those expired more than a day ago (until then
        they answer "expired" rather than "unknown")."""
        with self._tx():
            self._conn.execute(
                "INSERT INTO cache_uploads (token, path, expires_at, scope) VALUES (?, ?, ?, ?)",
                (row.token, row.path, row.expires_at, row.scope))
            self._conn.execute("DELETE FROM cache_uploads WHERE expires_at < ?",
                               (time.time() - 86400,))

    def cache_upload_by_token(self, token: str) -> CacheUploadRow | None:
        """The upload URL a token names (expired or not), or None."""
        with self._lock:
            row = self._conn.execute("SELECT * FROM cache_uploads WHERE token = ?",
                                     (token,)).fetchone()
        return CacheUploadRow(**dict(row)) if row else None

    # -- tokens -------------------------------------------------------------------------------

    def add_token(self, token_hash: str, expires_at: float, scope: str) -> None:
        """Remember an issued access token (by hash) and drop long-expired ones."""
        with self._lock:
            self._conn.execute("INSERT INTO tokens (hash, expires_at, scope) VALUES (?, ?, ?)",
                               (token_hash, expires_at, scope))
            self._conn.execute("DELETE FROM tokens WHERE expires_at < ?", (time.time() - 86400,))

    def token_expiry(self, token_hash: str) -> float | None:
        """When the token with this hash expires (unix time), or None if never issued."""
        with self._lock:
            row = self._conn.execute("SELECT expires_at FROM tokens WHERE hash = ?",
                                     (token_hash,)).fetchone()
        return float(row["expires_at"]) if row else None

    # -- secrets ------------------------------------------------------------------------------

    def save_secret(self, record: dict[str, Any]) -> bool:
        """Insert or replace the secret ``(secretType, id)``; True if it replaced one."""
        with self._tx():
            existed = self._conn.execute(
                "SELECT 1 FROM secrets WHERE secret_type = ? AND id = ?",
                (record["secretType"], record["id"])).fetchone() is not None
            self._conn.execute(
                "INSERT INTO secrets (secret_type, id, name, access_key, secret_key, expires_at, "
                "params, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (secret_type, id) DO UPDATE SET name = excluded.name, "
                "access_key = excluded.access_key, secret_key = excluded.secret_key, "
                "expires_at = excluded.expires_at, params = excluded.params",
                (record["secretType"], record["id"], record.get("name") or "",
                 record.get("accessKey") or "", record["secretKey"], record.get("expiresAt"),
                 json.dumps(record.get("params") or {}), time.time()))
        return existed

    def secrets(self, secret_type: str | None = None) -> list[SecretRow]:
        """The stored secrets (of one type, if given), oldest first."""
        sql = "SELECT * FROM secrets"
        args: tuple[Any, ...] = ()
        if secret_type:
            sql += " WHERE secret_type = ?"
            args = (secret_type,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY created_at, secret_type, id",
                                      args).fetchall()
        return [_secret(r) for r in rows]

    def delete_secret(self, secret_type: str, secret_id: str) -> bool:
        """Forget a secret; True if it existed."""
        with self._lock:
            cur = self._conn.execute("DELETE FROM secrets WHERE secret_type = ? AND id = ?",
                                     (secret_type, secret_id))
        return cur.rowcount > 0


class _Transaction:
    """``with store._tx():`` holds the lock and wraps the block in BEGIN IMMEDIATE/COMMIT.
    Inside another one (same thread: the lock is re-entrant), it joins the outer transaction,
    so that several writes made for one change commit once."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock) -> None:
        self._conn = conn
        self._lock = lock
        self._outer: list[bool] = []

    def __enter__(self) -> None:
        self._lock.acquire()
        try:
            outer = not self._conn.in_transaction
            if outer:
                self._conn.execute("BEGIN IMMEDIATE")
            self._outer.append(outer)
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if self._outer.pop():
                self._conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._lock.release()


def _task(row: sqlite3.Row) -> TaskRow:
    return TaskRow(job_id=row["job_id"], chunk=row["chunk"], state=row["state"],
                   attempts=row["attempts"], started_at=row["started_at"],
                   ended_at=row["ended_at"], duration=row["duration"],
                   exit_code=row["exit_code"], error_message=row["error_message"])


def _secret(row: sqlite3.Row) -> SecretRow:
    try:
        params = json.loads(row["params"] or "{}")
    except ValueError:
        params = {}
    return SecretRow(secret_type=row["secret_type"], id=row["id"], name=row["name"],
                     access_key=row["access_key"], secret_key=row["secret_key"],
                     expires_at=row["expires_at"],
                     params=params if isinstance(params, dict) else {})


def _upload(row: sqlite3.Row) -> UploadRow:
    return UploadRow(token=row["token"], job_id=row["job_id"], path=row["path"],
                     size=row["size"], completed=bool(row["completed"]))
