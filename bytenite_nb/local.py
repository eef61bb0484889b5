"""Start and stop a ByteNite Local in the background, for notebooks, tests and the CLI.

    >>> from bytenite_nb.local import LocalServer
    >>> with LocalServer.start() as server:          # a child process on a free port
    ...     print(server.base_url, server.data_dir)

``in_process=True`` runs uvicorn on a daemon thread of this interpreter instead (fast, for
tests). Either way the server writes ``data_dir/server.json`` (pid and URL) while it runs, so
`find_running` (and `LocalServer.start`) re-use a server already serving that data dir rather
than opening the same database twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

SERVER_FILE = "server.json"
LOG_FILE = "server.log"
_START_TIMEOUT = 60.0
#: `ServerConfig` fields ``config_overrides`` may set for a child process too (its command
#: line carries them).
_CLI_OVERRIDES = frozenset({"app_envs", "envs_dir", "env_installer", "ignore_requirements",
                            "task_memory_limit", "pass_env", "max_request_bytes"})


class ServerStartError(RuntimeError):
    """ByteNite Local did not come up; the message carries the reason (and its log's tail)."""


def _uvicorn_server(app: Any, host: str, port: int, on_exit: Any) -> Any:
    """A uvicorn server that ends the open ``/events`` streams first when asked to exit,
    because uvicorn waits for running responses before it shuts down."""
    import uvicorn

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            on_exit()
            super().handle_exit(sig, frame)
            # uvicorn re-raises the signal once serving ends, which would kill the process
            # before it closes the database and removes server.json: exit normally instead.
            self._captured_signals.clear()

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                            timeout_graceful_shutdown=5, access_log=False)
    return _Server(config)


def _bound_port(server: Any) -> int:
    return int(server.servers[0].sockets[0].getsockname()[1])


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def write_server_file(data_dir: Path, url: str, pid: int) -> None:
    """Record that ``pid`` serves ``data_dir`` at ``url`` (atomic write)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # (mkstemp creates it 0600)
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".server-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"pid": pid, "url": url}, fh)
    os.replace(tmp, data_dir / SERVER_FILE)


def remove_server_file(data_dir: Path, pid: int) -> None:
    """Remove ``server.json`` if it is still ``pid``'s."""
    path = data_dir / SERVER_FILE
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == pid:
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v1/auth/info", timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def _read_key(data_dir: Path) -> str:
    from bytenite_nb.server.service.auth import key_file

    path = key_file(data_dir)
    return path.read_text(encoding="utf-8").strip() if path.exists() else ""


def find_running(data_dir: str | Path | None = None) -> LocalServer | None:
    """The ByteNite Local serving ``data_dir`` right now, or None.

    The returned handle does not own the server: its `stop` leaves it running. Its
    ``api_key`` is the data dir's generated key ("" if that server was given its keys).
    """
    from bytenite_nb.server.config import default_data_dir

    folder = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    try:
        info = json.loads((folder / SERVER_FILE).read_text(encoding="utf-8"))
        pid, url = int(info["pid"]), str(info["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _alive(pid) or not _answers(url):
        return None
    return LocalServer(url, _read_key(folder), folder, pid=pid, owned=False)


class LocalServer:
    """A running ByteNite Local: ``base_url``, ``api_key``, ``data_dir``; `stop` ends it."""

    def __init__(self, base_url: str, api_key: str, data_dir: Path, *, pid: int | None = None,
                 owned: bool = True, process: subprocess.Popen[bytes] | None = None,
                 thread: threading.Thread | None = None, server: Any = None,
                 ctx: Any = None, idle_timeout: float | None = None,
                 log_offset: int | None = None) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.data_dir = data_dir
        self.pid = pid
        self.owned = owned
        #: Seconds without requests or running jobs after which the server stops by itself
        #: (None: never, or unknown for a re-used server).
        self.idle_timeout = idle_timeout
        self._process = process
        self._thread = thread
        self._server = server
        self._ctx = ctx
        self._stopped = False
        # Where this server's lines start in the data dir's log (for `stop_reason`).
        self._log_offset = _log_size(data_dir) if log_offset is None else log_offset

    def __repr__(self) -> str:  # never shows the key
        mode = "in-process" if self._thread else "process" if self.owned else "re-used"
        return f"<LocalServer {self.base_url} data_dir={str(self.data_dir)!r} ({mode})>"

    @property
    def key_file(self) -> Path:
        """Where the data dir's generated API key is kept."""
        from bytenite_nb.server.service.auth import key_file

        return key_file(self.data_dir)

    @property
    def running(self) -> bool:
        """Whether the server is still up: False once its process (or thread) has ended,
        whether `stop` ended it or it stopped by itself (``idle_timeout``, a crash, a kill)."""
        if self._process is not None:
            if self._process.poll() is None and self._idle_line() is not None:
                # Stopping for its idle timeout right now: let it finish (a few seconds at
                # most), so that the caller starts a new one rather than talk to this one.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(_START_TIMEOUT)
            return self._process.poll() is None
        if self._thread is not None:
            return self._thread.is_alive()
        if self.pid is None or not _alive(self.pid):
            return False
        # A re-used server: its pid could have been recycled, but server.json is its own.
        return _server_file_pid(self.data_dir) == self.pid

    def stop_reason(self) -> str | None:
        """Why the server is no longer running, as a short phrase (None while it runs):
        ``"stopped by this handle"``, ``"idle for 3600 s (no requests, no running jobs)"``,
        or how its process ended."""
        if self.running:
            return None
        if self._stopped:
            return "stopped by this handle"
        line = self._idle_line()
        if line is not None:
            from bytenite_nb.server.http.idle import IDLE_MARKER

            return line.split(IDLE_MARKER)[0].removeprefix("ByteNite Local:").strip(" :")
        code = self._process.returncode if self._process is not None else None
        if code is None:
            return "its process has ended"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"its process was killed ({signal.Signals(-code).name})"
        return f"its process exited with code {code}"

    def _idle_line(self) -> str | None:
        """The line this server logged when it stopped for its idle timeout, if it did."""
        from bytenite_nb.server.http.idle import IDLE_MARKER

        for line in reversed(_log_since(self.data_dir, self._log_offset)):
            if IDLE_MARKER in line:
                return line
        return None

    @classmethod
    def start(cls, data_dir: str | Path | None = None, *, port: int = 0,
              api_keys: Sequence[str] | None = None, workers: int | None = None,
              apps_dirs: Iterable[str | Path] = (), in_process: bool = False,
              executor: str = "local", scheduler: str | None = None, host: str = "127.0.0.1",
              token_ttl: float | None = None, heartbeat_interval: float | None = None,
              preload: Sequence[str] = (), reuse: bool = True,
              config_overrides: Mapping[str, Any] | None = None,
              idle_timeout: float | None = None,
              max_log_lines: int | None = None,
              deny_private_sources: bool = False,
              ) -> LocalServer:
        """Start ByteNite Local on ``host:port`` (0 = a free port) serving ``data_dir``.

        With ``reuse`` (default), a server already serving ``data_dir`` is returned instead
        (not owned: `stop` leaves it running). ``api_keys`` None/empty: the data dir's
        generated key. ``config_overrides``: further `ServerConfig` fields (in-process only,
        e.g. ``result_link_ttl``). ``executor="dask"`` with ``scheduler="tcp://HOST:PORT"``
        sends app tasks to that ``dask.distributed`` cluster (partitioner and assembler stay
        here); the scheduler must answer at start-up. ``preload`` names modules (e.g.
        ``"pandas"``) the fork servers import once so that every task starts with them
        loaded. ``idle_timeout`` (seconds; None or 0: never) makes the server stop by itself
        after that long without requests or running jobs (`running` turns False,
        `stop_reason` says why); a child process only: ``in_process=True`` refuses it (such a
        server lives as long as this interpreter anyway). A re-used server keeps the idle
        timeout it was started with. ``max_log_lines`` (default 100,000): output lines kept
        per job, its first and last half. ``deny_private_sources``: refuse ``url`` data
        sources on loopback, link-local and private addresses (for a server reachable from
        other machines; see SECURITY.md).
        Raises `ValueError` for a bad configuration and `ServerStartError` if the server
        does not come up.
        """
        from bytenite_nb.server.config import ServerConfig, default_data_dir

        folder = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        if reuse:
            running = find_running(folder)
            if running is not None:
                return running
        kwargs: dict[str, Any] = {
            "data_dir": folder, "host": host, "port": port,
            "api_keys": tuple(api_keys or ()), "apps_dirs": tuple(Path(p) for p in apps_dirs),
            "executor": executor, "scheduler": scheduler, "preload": tuple(preload),
        }
        if workers is not None:
            kwargs["workers"] = workers
        if token_ttl is not None:
            kwargs["token_ttl"] = token_ttl
        if heartbeat_interval is not None:
            kwargs["heartbeat_interval"] = heartbeat_interval
        if idle_timeout is not None:
            kwargs["idle_timeout"] = idle_timeout
        if max_log_lines is not None:
            kwargs["max_log_lines"] = max_log_lines
        if deny_private_sources:
            kwargs["deny_private_sources"] = True
        if config_overrides:
            if not in_process and not set(config_overrides) <= _CLI_OVERRIDES:
                raise ValueError("config_overrides need in_process=True, except "
                                 + ", ".join(sorted(_CLI_OVERRIDES)))
            kwargs.update(config_overrides)
        config = ServerConfig(**kwargs)
        if in_process:
            return cls._start_thread(config)
        return cls._start_process(config)

    @classmethod
    def _start_thread(cls, config: Any) -> LocalServer:
        from bytenite_nb.server.context import ServerContext
        from bytenite_nb.server.execution.executors import ExecutorError
        from bytenite_nb.server.http.app import create_app

        if config.idle_timeout:
            raise ValueError("an idle timeout needs a server in its own process "
                             "(in_process=False); an in-process server lives as long as "
                             "this interpreter, until its stop()")

        try:
            ctx = ServerContext.open(config)
        except ExecutorError as exc:  # no dask, or its scheduler did not answer
            raise ServerStartError(str(exc)) from None
        try:
            app = create_app(config, ctx)
            server = _uvicorn_server(app, config.host, config.port, ctx.broker.close)
            thread = threading.Thread(target=server.run, name="bytenite-local-server",
                                      daemon=True)
            thread.start()
            deadline = time.monotonic() + _START_TIMEOUT
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    server.should_exit = True
                    raise ServerStartError(
                        f"ByteNite Local did not start on {config.host}:{config.port} "
                        "(is the port in use?)")
                time.sleep(0.02)
        except BaseException:
            ctx.close()
            raise
        url = _url(config.host, _bound_port(server))
        write_server_file(config.data_dir, url, os.getpid())
        return cls(url, ctx.api_key, config.data_dir, pid=os.getpid(), thread=thread,
                   server=server, ctx=ctx)

    @classmethod
    def _start_process(cls, config: Any) -> LocalServer:
        from bytenite_nb.server.private import PRIVATE_DIR, open_private

        # (0700 when new; the server makes an existing one private, and says so)
        config.data_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        ready = config.data_dir / f".ready-{os.getpid()}-{time.monotonic_ns()}.json"
        ready.unlink(missing_ok=True)
        args = [sys.executable, "-m", "bytenite_nb.cli", "serve",
                "--host", config.host, "--port", str(config.port),
                "--data-dir", str(config.data_dir), "--workers", str(config.workers),
                "--executor", config.executor, "--token-ttl", str(config.token_ttl),
                "--heartbeat-interval", str(config.heartbeat_interval),
                "--ready-file", str(ready)]
        if config.idle_timeout:
            args += ["--idle-timeout", repr(config.idle_timeout)]
        args += ["--max-log-lines", str(config.max_log_lines),
                 "--max-request-bytes", str(config.max_request_bytes)]
        if config.deny_private_sources:
            args.append("--deny-private-sources")
        for folder in config.apps_dirs:
            args += ["--apps", str(folder)]
        for module in config.preload:
            args += ["--preload", module]
        args += ["--envs-dir", str(config.envs_dir), "--env-installer", config.env_installer]
        if not config.app_envs:
            args.append("--no-app-envs")
        if config.ignore_requirements:
            args.append("--ignore-requirements")
        if config.task_memory_limit:
            args += ["--task-memory-limit", str(config.task_memory_limit)]
        for name in config.pass_env:
            args += ["--pass-env", name]
        if config.scheduler:
            args += ["--scheduler", config.scheduler,
                     "--scheduler-timeout", str(config.scheduler_timeout),
                     "--worker-timeout", str(config.worker_timeout)]
        env = dict(os.environ)
        # Keys travel in the environment, never on the command line (visible in `ps`).
        env["BYTENITE_LOCAL_API_KEYS"] = ",".join(config.api_keys)
        log_path = config.data_dir / LOG_FILE
        log_offset = _log_size(config.data_dir)
        with open_private(log_path, "ab") as log:
            process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                       env=env, start_new_session=True)
        deadline = time.monotonic() + _START_TIMEOUT
        try:
            while not ready.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise ServerStartError(
                        "ByteNite Local did not start; the end of its log "
                        f"({log_path}):\n{_tail(log_path)}")
                time.sleep(0.05)
            info = json.loads(ready.read_text(encoding="utf-8"))
        except BaseException:
            _terminate(process)
            raise
        finally:
            ready.unlink(missing_ok=True)
        key = config.api_keys[0] if config.api_keys else _read_key(config.data_dir)
        return cls(info["url"], key, config.data_dir, pid=process.pid, process=process,
                   idle_timeout=config.idle_timeout, log_offset=log_offset)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server if this handle started it: end streams, abort running jobs (they
        end FAILED), stop worker processes, close the database. Idempotent."""
        if self._stopped or not self.owned:
            return
        self._stopped = True
        if self._process is not None:
            _terminate(self._process, timeout)
            return
        if self._server is not None and self._ctx is not None:
            self._ctx.broker.close()
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout)
            self._ctx.close()
            remove_server_file(self.data_dir, os.getpid())

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _terminate(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _log_size(data_dir: Path) -> int:
    try:
        return (data_dir / LOG_FILE).stat().st_size
    except OSError:
        return 0


def _log_since(data_dir: Path, offset: int) -> list[str]:
    """The lines of the data dir's log from byte ``offset`` on (the last 64 KiB at most)."""
    try:
        with open(data_dir / LOG_FILE, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(offset, size - 65536))
            return fh.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _server_file_pid(data_dir: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return int(json.loads((data_dir / SERVER_FILE).read_text(encoding="utf-8"))["pid"])
    return None


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _idle_check_interval(timeout: float) -> float:
    """How often the idle watcher looks: a tenth of the timeout, between 0.05 and 30 s."""
    return max(0.05, min(30.0, timeout / 10))


async def _watch_idle(server: Any, ctx: Any, timeout: float) -> None:
    """Stop ``server`` as SIGTERM would once ``ctx`` has been idle for ``timeout`` seconds."""
    import asyncio

    from bytenite_nb.server.http.idle import idle_message

    interval = _idle_check_interval(timeout)
    while not server.should_exit:
        await asyncio.sleep(interval)
        if ctx.idle_seconds() >= timeout and not server.should_exit:
            print(idle_message(timeout), file=sys.stderr, flush=True)
            server.handle_exit(signal.SIGTERM, None)
            return


def serve(config: Any, *, ready_file: Path | None = None,
          announce: Any = None) -> None:
    """Run ByteNite Local in the foreground until SIGINT/SIGTERM (used by ``bytenite-nb
    serve``), or until it has been idle for ``config.idle_timeout`` seconds (then it says
    so on stderr and stops as on SIGTERM). ``announce(url, ctx)`` is called once it
    listens."""
    import asyncio

    from bytenite_nb.server.context import ServerContext
    from bytenite_nb.server.http.app import create_app

    ctx = ServerContext.open(config)
    pid = os.getpid()
    try:
        app = create_app(config, ctx)
        server = _uvicorn_server(app, config.host, config.port, ctx.broker.close)

        async def main() -> None:
            task = asyncio.create_task(server.serve())
            while not server.started:
                if task.done():
                    await task
                    raise ServerStartError(
                        f"could not listen on {config.host}:{config.port} (is it in use?)")
                await asyncio.sleep(0.02)
            url = _url(config.host, _bound_port(server))
            ctx.activity.touch()  # idle from now on, not since start-up began
            write_server_file(config.data_dir, url, pid)
            if announce is not None:
                announce(url, ctx)
            if ready_file is not None:
                tmp = ready_file.with_suffix(".tmp")
                tmp.write_text(json.dumps({"url": url, "pid": pid}), encoding="utf-8")
                os.replace(tmp, ready_file)
            if not config.idle_timeout:
                await task
                return
            watcher = asyncio.create_task(_watch_idle(server, ctx, config.idle_timeout))
            try:
                await task
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

        asyncio.run(main())
    finally:
        ctx.close()
        remove_server_file(config.data_dir, pid)
