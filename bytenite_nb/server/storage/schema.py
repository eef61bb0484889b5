"""The tables of ByteNite Local's SQLite database (``data_dir/bytenite-local.db``).

`store.Store` creates them; `listing.index` adds the jobs table's indexed filter columns.
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    job_id TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at TEXT,
    ended_at TEXT,
    started_mono REAL,
    duration REAL,
    exit_code INTEGER,
    error_message TEXT,
    PRIMARY KEY (job_id, chunk)
);
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    service TEXT NOT NULL,
    chunk INTEGER,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    container TEXT NOT NULL,
    timestamp TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_job ON logs (job_id, id);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    job_id TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_job ON events (job_id, seq);
CREATE TABLE IF NOT EXISTS results (
    token TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_job ON results (job_id, name);
CREATE TABLE IF NOT EXISTS uploads (
    token TEXT PRIMARY KEY,
    job_id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    size INTEGER,
    completed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS cache_uploads (
    token TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    expires_at REAL NOT NULL,
    scope TEXT NOT NULL DEFAULT 'user'
);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,
    expires_at REAL NOT NULL,
    scope TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS secrets (
    secret_type TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    access_key TEXT NOT NULL DEFAULT '',
    secret_key TEXT NOT NULL,
    expires_at TEXT,
    params TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    PRIMARY KEY (secret_type, id)
);
"""
