"""ByteNite Local's configuration: one dataclass, filled from CLI flags, env vars or tests."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from bytenite_nb import wire

#: Environment variable holding comma-separated API keys (same role as repeated --api-key).
API_KEYS_ENV = "BYTENITE_LOCAL_API_KEYS"
#: Environment variable naming the folder of app environments (same role as --envs-dir).
ENVS_DIR_ENV = "BYTENITE_LOCAL_ENVS_DIR"


def default_data_dir() -> Path:
    """``platformdirs.user_data_dir("bytenite-nb")/local``: where a plain ``serve`` keeps state."""
    import platformdirs

    return Path(platformdirs.user_data_dir("bytenite-nb")) / "local"


def api_keys_from_env() -> tuple[str, ...]:
    """The keys listed in ``BYTENITE_LOCAL_API_KEYS`` (empty entries ignored)."""
    raw = os.environ.get(API_KEYS_ENV, "")
    return tuple(k.strip() for k in raw.split(",") if k.strip())


@dataclass
class ServerConfig:
    """Everything a ByteNite Local instance needs to know; see docs/internals.md.

    ``api_keys`` empty means: reuse or generate a key stored 0600 in ``data_dir/api_key``.
    ``port`` 0 picks a free port. Sizes are in bytes, times in seconds.
    """

    data_dir: Path = field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = 8765
    api_keys: tuple[str, ...] = ()
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    token_ttl: float = wire.DEFAULT_TOKEN_TTL_SECONDS
    max_download_bytes: int = 2 * 1024**3
    max_upload_bytes: int = 2 * 1024**3
    apps_dirs: tuple[Path, ...] = ()
    #: Modules every fork server imports up front, so tasks start with them warm (e.g.
    #: ``numpy``); the standard-library modules an app imports are warmed up automatically.
    preload: tuple[str, ...] = ()
    executor: str = "local"
    scheduler: str | None = None
    #: Seconds to wait for the Dask scheduler at start-up before refusing to start, and for a
    #: scheduler that stopped answering before the tasks waiting on it fail.
    scheduler_timeout: float = 10.0
    #: Seconds an app task waits on the Dask executor while no worker is connected before it
    #: fails (and with it the job), naming the scheduler.
    worker_timeout: float = 60.0
    #: Seconds between heartbeats on a quiet ``/events`` stream.
    heartbeat_interval: float = 5.0
    #: Events buffered per ``/events`` subscriber before it is cut off (it resumes with ?since).
    subscriber_queue_size: int = 2000
    #: Result links of the ``bucket`` destination live this long, as on ByteNite.
    result_link_ttl: float = wire.RESULT_LINK_TTL_SECONDS
    #: Upload URLs of the user cache (``GET /v1/dev/cache/upload-url``) live this long.
    cache_upload_ttl: float = 3600.0
    #: Stop by itself after this many seconds without requests or running jobs (None or 0:
    #: never); see `bytenite_nb.server.http.idle`.
    idle_timeout: float | None = None
    #: Build an environment for each app folder with a requirements.txt (or pyproject.toml)
    #: and run it there (False: ``--no-app-envs``, every app in the server's Python).
    app_envs: bool = True
    #: Where app environments live (default: ``$BYTENITE_LOCAL_ENVS_DIR``, else
    #: ``data_dir/envs``); servers may share one.
    envs_dir: Path | None = None
    #: ``auto`` (uv when installed, else venv + pip), ``uv`` or ``pip``.
    env_installer: str = "auto"
    #: Run engines whose device_requirements this machine does not meet (with a warning).
    ignore_requirements: bool = False
    #: Bytes of memory (address space) each process may use; a size such as ``"512M"`` is
    #: accepted too. None: no limit.
    task_memory_limit: int | str | None = None
    #: More host variables every process gets: names or globs (``PLAYWRIGHT_*``).
    pass_env: tuple[str, ...] = ()
    #: Largest request body (bytes) a JSON route reads; larger ones are a 413 (a job's params
    #: are part of every job list it appears in: data belongs in a data source). The upload
    #: targets and the Developer API's pushes stream or decode under `max_upload_bytes`.
    #: A size such as ``"4M"`` is accepted too (``serve --max-request-bytes``).
    max_request_bytes: int | str = 1024**2
    #: Output lines kept per job: the first half and the last half of them, with one line
    #: saying how many were dropped in between (``serve --max-log-lines``).
    max_log_lines: int = 100_000
    #: Refuse ``url`` data sources on loopback, link-local and private addresses, after
    #: resolving and on every redirect (``serve --deny-private-sources``): for a server
    #: reachable from other machines, whose token holders must not reach inside its network.
    deny_private_sources: bool = False

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser()
        self.apps_dirs = tuple(Path(p).expanduser() for p in self.apps_dirs)
        self.api_keys = tuple(self.api_keys)
        self.preload = tuple(dict.fromkeys(
            name.strip() for entry in self.preload for name in entry.split(",") if name.strip()
        ))
        for name in self.preload:
            if not all(part.isidentifier() for part in name.split(".")):
                raise ValueError(f"preload: {name!r} is not a module name "
                                 "(expected e.g. numpy or xml.etree.ElementTree)")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.envs_dir is None and os.environ.get(ENVS_DIR_ENV):
            self.envs_dir = Path(os.environ[ENVS_DIR_ENV])
        self.envs_dir = Path(self.envs_dir or self.data_dir / "envs").expanduser()
        if self.env_installer not in ("auto", "uv", "pip"):
            raise ValueError(f"--env-installer must be auto, uv or pip, got "
                             f"{self.env_installer!r}")
        if self.task_memory_limit is not None:
            from bytenite_nb.server.execution.resources import parse_size

            try:
                self.task_memory_limit = parse_size(self.task_memory_limit)
            except ValueError as exc:
                raise ValueError(f"--task-memory-limit: {exc}") from None
        self.pass_env = tuple(dict.fromkeys(
            name.strip() for entry in self.pass_env for name in entry.split(",") if name.strip()
        ))
        for name in self.pass_env:
            if not re.fullmatch(r"[A-Za-z_*?\[\]][A-Za-z0-9_*?\[\]!-]*", name):
                raise ValueError(f"--pass-env: {name!r} is not a variable name or a glob "
                                 "(e.g. PLAYWRIGHT_BROWSERS_PATH or PLAYWRIGHT_*)")
        if self.max_log_lines < 2:
            raise ValueError("--max-log-lines (max_log_lines=) must be at least 2: the first "
                             f"and the last lines are kept; got {self.max_log_lines}")
        from bytenite_nb.server.execution.resources import parse_size

        try:
            self.max_request_bytes = parse_size(self.max_request_bytes)
        except ValueError as exc:
            raise ValueError(f"--max-request-bytes (max_request_bytes=): {exc}") from None
        if self.max_request_bytes < 1024:
            raise ValueError("--max-request-bytes (max_request_bytes=) must be at least 1024 "
                             f"bytes, got {self.max_request_bytes}")
        if self.executor not in ("local", "dask"):
            raise ValueError(f"executor must be 'local' or 'dask', got {self.executor!r}")
        if self.idle_timeout is not None:
            timeout = float(self.idle_timeout)
            if not timeout > 0 and timeout != 0:  # negative or NaN
                raise ValueError("--idle-timeout (idle_timeout=) must be more than 0 seconds, "
                                 f"or 0 to never stop when idle; got {timeout:g}")
            self.idle_timeout = timeout or None
        if not self.scheduler_timeout > 0:
            raise ValueError("scheduler_timeout must be positive")
        if not self.worker_timeout > 0:
            raise ValueError("--worker-timeout (worker_timeout=) must be more than 0 seconds, "
                             f"got {self.worker_timeout:g}")
        if self.executor == "dask" and not self.scheduler:
            raise ValueError("the dask executor needs the address of a running dask.distributed "
                             "scheduler: --scheduler tcp://HOST:PORT (scheduler=... in Python)")
        if self.executor == "local" and self.scheduler:
            # Almost certainly a forgotten --executor dask: say so rather than run locally.
            raise ValueError(f"a scheduler ({self.scheduler}) is only used with the dask "
                             "executor: add --executor dask (executor='dask' in Python)")
