"""Everything one ByteNite Local instance holds: store, broker, registry, auth, runner and the
job service; built once per server (the composition root), released with `close`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bytenite_nb.server.config import ServerConfig
from bytenite_nb.server.http.idle import Activity
from bytenite_nb.server.private import secure_data_dir
from bytenite_nb.server.service.auth import Auth, key_file, load_or_create_key
from bytenite_nb.server.service.broker import Broker
from bytenite_nb.server.service.jobs import JobService
from bytenite_nb.server.service.runner import Runner
from bytenite_nb.server.storage.store import Store
from bytenite_nb.server.storage.user_cache import UserCache

if TYPE_CHECKING:
    from bytenite_nb.server.execution.environments import Environments
    from bytenite_nb.server.execution.registry import Registry
    from bytenite_nb.server.storage.dev_store import DevStore

log = logging.getLogger(__name__)

DB_FILE = "bytenite-local.db"


@dataclass
class ServerContext:
    """The live parts of a server; build with `open`, release with `close`."""

    config: ServerConfig
    store: Store
    broker: Broker
    registry: Registry
    auth: Auth
    runner: Runner
    #: The job rules the routes call.
    jobs: JobService
    #: Apps, engines and templates pushed through the Developer API (``data_dir/dev``).
    dev: DevStore | None = None
    #: Where the generated API key lives (None when keys came from the configuration).
    key_path: Path | None = None
    recovered: list[str] = field(default_factory=list)
    #: HTTP requests in flight and when the last one ended (fed by `ActivityMiddleware`).
    activity: Activity = field(default_factory=Activity)
    #: The app environments (``config.envs_dir``), listed and removed through the API
    #: even with ``--no-app-envs``.
    environments: Environments | None = None
    _closed: bool = False

    @classmethod
    def open(cls, config: ServerConfig) -> ServerContext:
        """Connect the executor, open the data dir (database, keys, registry) and fail the
        jobs a previous run left running. Raises `ExecutorError` when ``executor="dask"`` and
        dask is not installed or the scheduler cannot be reached."""
        from bytenite_nb.server.execution.executors.setup import close_executor, open_executor

        # Connect the executor first: a bad --scheduler fails start-up (ExecutorError) before
        # anything is written, rather than failing every job later.
        executor = open_executor(config)
        try:
            return cls._open(config, executor)
        except BaseException:
            close_executor(executor)
            raise

    @classmethod
    def _open(cls, config: ServerConfig, executor: object) -> ServerContext:
        from bytenite_nb.server.execution.environments import Environments
        from bytenite_nb.server.execution.registry import Problem, Registry
        from bytenite_nb.server.storage.dev_store import DevStore

        made_private = secure_data_dir(config.data_dir)
        if made_private:
            log.warning("data dir %s was open to other users of this machine: made it and "
                        "the %d files and folders in it that were private to you (folders "
                        "0700, files 0600)", config.data_dir, made_private - 1)
        store = Store(config.data_dir / DB_FILE)
        key_path = None
        keys = tuple(config.api_keys)
        if not keys:
            keys = (load_or_create_key(config.data_dir),)
            key_path = key_file(config.data_dir)
        registry = Registry(bundled=True, dirs=config.apps_dirs)
        # Pushed apps load last: a push is newer than the folders given on the command line.
        dev = DevStore(config.data_dir / "dev", registry, max_bytes=config.max_upload_bytes)
        for problem in dev.load():
            path, _, reason = problem.partition(": ")
            registry.problems.append(Problem(Path(path), reason))
        for problem in registry.problems:
            log.warning("app folder not loaded: %s", problem)
        broker = Broker(store, queue_size=config.subscriber_queue_size,
                        heartbeat_interval=config.heartbeat_interval)
        environments = Environments(config.envs_dir or config.data_dir / "envs",
                                    installer=config.env_installer)
        runner = Runner(config, store, broker, registry, executor=executor,
                        environments=environments)
        ctx = cls(config=config, store=store, broker=broker, registry=registry,
                  auth=Auth(store, keys, config.token_ttl), runner=runner,
                  jobs=JobService(store, registry, runner), dev=dev,
                  key_path=key_path, environments=environments)
        UserCache(config.data_dir).clean_incoming()
        ctx.recovered = runner.recover()
        runner.purge_expired_results()
        return ctx

    @property
    def user_cache(self) -> UserCache:
        """``USER_CACHE_DIR`` of this server's jobs (``data_dir/cache/user``)."""
        return UserCache(self.config.data_dir)

    def cache(self, shared: bool = False) -> UserCache:
        """The user cache, or with ``shared`` ``SHARED_CACHE_DIR`` (``data_dir/cache/shared``)."""
        return UserCache(self.config.data_dir, shared=shared)

    @property
    def api_key(self) -> str:
        """The first accepted API key (what a local client should use)."""
        return self.auth.keys[0]

    def idle_seconds(self) -> float:
        """How long the server has been idle: no HTTP request in flight or finished and no
        job running for that many seconds (0 while busy)."""
        if self.runner.running_jobs():
            return 0.0
        return self.activity.idle_seconds(busy_until=self.runner.last_job_end)

    def close(self) -> None:
        """End streams, stop running jobs, close the database. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.broker.close()
        self.runner.shutdown()
        self.store.close()
