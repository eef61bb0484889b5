"""Where app, partitioner and assembler processes run.

Every task runs in a fresh process, as each ran in its own container on ByteNite. Starting an
interpreter per task is slow (tens of ms), so :class:`ForkServerExecutor` forks each one from
a warm, single-threaded "zygote" interpreter (one per worker slot, see :mod:`.zygote`); the
server's own process, which runs threads (uvicorn, maybe a Jupyter kernel), is never forked.
:class:`SubprocessExecutor` is the plain ``python main.py`` fallback.

Both share one interface: :meth:`Executor.run` runs one :class:`ProcessSpec` to completion in
the calling thread, streaming its output lines to a callback, enforcing a per-process timeout,
a job deadline and a cancel event by killing the process's whole group, and returns a
:class:`ProcessResult`. ``workers`` slots bound how many run at once across all jobs that
share the executor.
"""

from __future__ import annotations

import atexit
import codecs
import contextlib
import itertools
import json
import logging
import os
import queue
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

# Relative imports only, and nothing beyond the standard library: this module also runs on
# Dask workers, shipped there as source with its siblings (see dask_remote).
from . import zygote
from .entry_imports import stdlib_imports

__all__ = [
    "NOTE_STREAM",
    "Executor",
    "ExecutorError",
    "ForkServerExecutor",
    "ProcessResult",
    "ProcessSpec",
    "SubprocessExecutor",
    "base_environment",
    "close_shared_executors",
    "shared_executor",
]

log = logging.getLogger(__name__)

#: Called with ``("stdout" | "stderr", line)`` for each line a process writes, or with
#: ``(NOTE_STREAM, message)`` for a line of the executor's own about the run (e.g. the Dask
#: executor saying that a lost worker's task runs again).
OutputCallback = Callable[[str, str], None]
NOTE_STREAM = "bytenite-local"
Outcome = Literal["exited", "timeout", "deadline", "cancelled", "error"]

_POLL = 0.05  # how often a waiting run checks cancel/deadlines; bounds the cancel latency
_MAX_LINE = 64 * 1024
_KILL_GRACE = 5.0  # after a kill, how long to wait for pipes/status before giving up
_ZYGOTE_CHECK = 0.5  # how often a waiting run checks that the fork server is still alive

# Variables a task inherits from the server's environment (everything else, such as the
# server's API keys, stays out, as a container starts from a clean environment).
_ENV_KEEP = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP",
     "SHELL", "TERM", "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX", "SYSTEMROOT",
     "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE",
     "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"}
)
_ENV_KEEP_PREFIXES = ("LC_", "CUDA_", "NVIDIA_", "OMP_", "MKL_", "OPENBLAS_", "HF_", "XDG_")


def base_environment() -> dict[str, str]:
    """The part of the server's environment every task gets, plus UTF-8/unbuffered output."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k in _ENV_KEEP or (k.startswith(_ENV_KEEP_PREFIXES) and not k.startswith("BYTENITE"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


class ExecutorError(RuntimeError):
    """The executor itself failed (e.g. its fork server could not start)."""


@dataclass(frozen=True)
class ProcessSpec:
    """One process to run: ``python <script>`` in ``cwd`` with exactly ``env``.

    ``secret_names``: the variables of ``env`` that hold a secret listed in the manifest
    (``<id>``, ``<id>_ACCESS_KEY``, ``<id>_SECRET_KEY``); an executor that runs the process
    elsewhere sends them along with the contract's. ``env`` stays out of the repr.
    """

    script: Path
    cwd: Path
    env: Mapping[str, str] = field(repr=False)
    argv: Sequence[str] = ()  # defaults to [script]
    path0: Path | None = None  # sys.path[0]; defaults to the script's folder
    secret_names: tuple[str, ...] = ()

    def request(self) -> dict[str, object]:
        return {
            "script": str(self.script),
            "argv": list(self.argv) or [str(self.script)],
            "env": dict(self.env),
            "cwd": str(self.cwd),
            "path0": str(self.path0 or Path(self.script).parent),
        }


@dataclass
class ProcessResult:
    """How a process ended.

    ``exit_code`` follows ``subprocess``: negative = killed by that signal, ``None`` = never
    started. ``outcome`` says why it ended: ``exited`` on its own, killed on ``timeout``
    (the per-process limit), past the job ``deadline``, ``cancelled``, or an executor
    ``error`` (see ``error``).
    """

    exit_code: int | None
    outcome: Outcome = "exited"
    last_stderr: str | None = None
    pid: int | None = None
    duration: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "exited" and self.exit_code == 0


class Executor(Protocol):
    """What the pipeline needs from an executor."""

    workers: int

    def run(
        self,
        spec: ProcessSpec,
        on_output: OutputCallback,
        *,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> ProcessResult: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------------------------
# output handling shared by both executors
# --------------------------------------------------------------------------------------------


@dataclass
class _Stream:
    name: str
    fd: int
    on_output: OutputCallback
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )
    pending: str = ""
    last_line: str | None = None
    open: bool = True

    def feed(self, data: bytes) -> None:
        text = self.pending + self.decoder.decode(data, final=not data)
        lines = text.split("\n")
        self.pending = lines.pop()
        if not data and self.pending:
            lines.append(self.pending)
            self.pending = ""
        while len(self.pending) > _MAX_LINE:  # a runaway line without newlines
            lines.append(self.pending[:_MAX_LINE])
            self.pending = self.pending[_MAX_LINE:]
        for line in lines:
            line = line.rstrip("\r")
            if line.strip():
                self.last_line = line
                self.on_output(self.name, line)


def _kill_group(pid: int | None) -> None:
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class _Slots:
    """``workers`` run slots, acquired in a way that still notices cancel and deadlines."""

    def __init__(self, workers: int) -> None:
        self._sem = threading.BoundedSemaphore(workers)

    def acquire(self, cancel: threading.Event | None, deadline: float | None) -> Outcome | None:
        while not self._sem.acquire(timeout=_POLL):
            if cancel is not None and cancel.is_set():
                return "cancelled"
            if deadline is not None and time.monotonic() > deadline:
                return "deadline"
        return None

    def release(self) -> None:
        self._sem.release()


class _Run:
    """The wait loop of one running process: pipes, status, cancel and limits.

    ``select.poll`` rather than a selector: it keeps no kernel object, so a task costs no
    epoll_create/epoll_ctl/close calls, and its registrations are plain dict entries.
    """

    def __init__(
        self,
        on_output: OutputCallback,
        out_fd: int,
        err_fd: int,
        cancel: threading.Event | None,
        timeout: float | None,
        deadline: float | None,
    ) -> None:
        self.poller = select.poll()
        self.out = _Stream("stdout", out_fd, on_output)
        self.err = _Stream("stderr", err_fd, on_output)
        self.streams = {out_fd: self.out, err_fd: self.err}
        # The pipes stay blocking: only this loop reads them, and only after poll said so.
        for fd in (out_fd, err_fd):
            self.poller.register(fd, select.POLLIN)
        self.cancel = cancel
        self.started = time.monotonic()
        self.task_deadline = None if timeout is None else self.started + timeout
        self.deadline = deadline
        self.outcome: Outcome = "exited"
        self.killed_at: float | None = None

    def check_limits(self) -> Outcome | None:
        now = time.monotonic()
        if self.cancel is not None and self.cancel.is_set():
            return "cancelled"
        if self.deadline is not None and now > self.deadline:
            return "deadline"
        if self.task_deadline is not None and now > self.task_deadline:
            return "timeout"
        return None

    def pump(self, timeout: float) -> list[tuple[int, int]]:
        """Wait up to ``timeout`` seconds for output; returns the other ready ``(fd, events)``."""
        other = []
        for fd, events in self.poller.poll(timeout * 1000.0):
            stream = self.streams.get(fd)
            if stream is None:
                other.append((fd, events))
                continue
            data = os.read(fd, 65536)
            stream.feed(data)
            if not data:
                stream.open = False
                self.poller.unregister(fd)
        return other

    @property
    def pipes_open(self) -> bool:
        return self.out.open or self.err.open

    def close(self) -> None:
        for stream in (self.out, self.err):
            if stream.open:
                stream.feed(b"")
                stream.open = False
            with contextlib.suppress(OSError):
                os.close(stream.fd)


# --------------------------------------------------------------------------------------------
# fork server executor
# --------------------------------------------------------------------------------------------


class _Zygote:
    """One running fork server: its process, socket folder and the environment it got."""

    def __init__(self, preload: Sequence[str]) -> None:
        self.dir = tempfile.mkdtemp(prefix="bytenite-zygote-")
        self.socket_path = os.path.join(self.dir, "zygote.sock")
        # Requests carry only the differences from this (see zygote's protocol).
        self.env = base_environment()
        #: Modules it has imported or been asked to import (each is asked for once).
        self.imported: set[str] = set(preload)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self.socket_path)
            listener.listen(128)
            self.proc = subprocess.Popen(
                [sys.executable, zygote.__file__, str(listener.fileno()), ",".join(preload)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=self.env,
                pass_fds=(listener.fileno(),),
                cwd=self.dir,
                # Its own session: a terminal's Ctrl-C goes to the server, which then closes
                # the zygote cleanly instead of killing tasks behind the runner's back.
                start_new_session=True,
            )
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        finally:
            listener.close()
        assert self.proc.stdout is not None
        #: Readable (at EOF) once the zygote is gone: after "ready" it writes nothing to its
        #: stdout, and no task holds it (fd 1 of a task is the task's own pipe). Every run
        #: polls it, so a dead zygote is noticed at once, without relying on waitpid.
        self.death_fd = self.proc.stdout.fileno()

    def wait_ready(self) -> _Zygote:
        """Wait for the zygote's "ready" (its preloads imported); stops it if it failed.
        Preloads it could not import are in :attr:`preload_failures`."""
        assert self.proc.stdout is not None
        #: ``(module, error)`` for each preload the zygote could not import.
        self.preload_failures: list[tuple[str, str]] = []
        while True:
            line = self.proc.stdout.readline().strip()
            if line == b"ready":
                return self
            if not line.startswith(b"preload-failed "):
                self.stop()
                raise ExecutorError("the fork server failed to start (see the server's stderr)")
            with contextlib.suppress(ValueError, KeyError, TypeError):
                failure = json.loads(line.split(b" ", 1)[1])
                self.preload_failures.append((str(failure["module"]), str(failure["error"])))

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """EOF on its stdin: the zygote kills its tasks and exits (killed if it does not)."""
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class _Channel:
    """A persistent connection to a zygote: one worker slot, one task at a time."""

    def __init__(self, zyg: _Zygote) -> None:
        self.zygote = zyg
        self.buf = b""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(zyg.socket_path)
        except OSError as exc:
            self.sock.close()
            raise ExecutorError(f"cannot reach the fork server: {exc}") from None

    def close(self) -> None:
        """Hang up; the zygote kills this channel's task if one still runs."""
        self.sock.close()


class _Slot:
    """A worker slot: its own zygote and its persistent connection to it, both replaced
    when the zygote dies. Used by one run at a time (whoever took it from the free queue)."""

    def __init__(self, zyg: _Zygote | None) -> None:
        self.zygote = zyg
        self.chan: _Channel | None = None

    def hang_up(self) -> None:
        if self.chan is not None:
            self.chan.close()
            self.chan = None


class ForkServerExecutor:
    """Runs each process as a fresh fork of a warm zygote interpreter (the default).

    ``workers`` bounds concurrent processes (default ``os.cpu_count()``). A zygote imports
    the standard-library modules an app's entrypoint imports before it forks that app's
    first task (see :mod:`.entry_imports`), so later tasks start with them warm;
    ``preload`` names more modules to import up front (e.g. ``"numpy"`` when every app
    uses it). The zygotes are started here, restarted if they die, and stopped by
    :meth:`close` (and at interpreter exit), taking any running task down with them.

    Each worker slot has its own zygote, so forks (whose page-table copy is most of a
    zygote's work) happen in parallel on as many cores, and a zygote's death only affects
    its slot's task. Each costs about ten megabytes (more with preloaded modules), so only
    the first is started here; the others start on their slot's first use, and free slots
    are reused last-in first-out, so a server that runs one task at a time keeps using one
    warm zygote however many workers it has. A slot talks to its zygote over a persistent
    connection: a task costs one request message and its replies, not a connect/accept and
    a socket's set-up and teardown on both sides.
    """

    def __init__(self, workers: int | None = None, *, preload: Sequence[str] | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._preload = tuple(zygote.DEFAULT_PRELOAD if preload is None else preload)
        self._lock = threading.Lock()
        self._closed = False
        self._ids = itertools.count(1)
        first = _Zygote(self._preload).wait_ready()
        for module, error in first.preload_failures:  # (every zygote would say the same)
            log.warning("preload %s: cannot import it in the fork server (%s); each task "
                        "imports it itself", module, error)
        self._slots = [_Slot(first)]
        self._slots += [_Slot(None) for _ in range(self.workers - 1)]
        self._free: queue.LifoQueue[_Slot] = queue.LifoQueue()
        for slot in reversed(self._slots):  # the started one on top
            self._free.put(slot)
        atexit.register(self.close)  # unregistered by close(), so no closed executor lingers

    @property
    def zygote_pids(self) -> list[int]:
        """The fork servers' pids (for diagnostics and tests)."""
        return [s.zygote.proc.pid for s in list(self._slots) if s.zygote is not None]

    @property
    def zygote_pid(self) -> int | None:
        """The first slot's fork server's pid (for diagnostics and tests)."""
        pids = self.zygote_pids
        return pids[0] if pids else None

    def close(self) -> None:
        """Stop the zygotes (and with them any task still running). Idempotent."""
        with self._lock:
            self._closed = True
            zygotes = [s.zygote for s in self._slots if s.zygote is not None]
            for slot in self._slots:
                slot.zygote = None
        # Hang up the idle slots' connections; busy ones are closed by their runs when they
        # end (the zygotes' exit makes them end at once).
        idle: list[_Slot] = []
        while True:
            try:
                idle.append(self._free.get_nowait())
            except queue.Empty:
                break
        for slot in idle:
            slot.hang_up()
            self._free.put(slot)
        for zyg in zygotes:
            zyg.stop()
        atexit.unregister(self.close)

    def __enter__(self) -> ForkServerExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _acquire(self, cancel: threading.Event | None,
                 deadline: float | None) -> tuple[Outcome | None, _Slot | None]:
        """A free slot, waiting in a way that still notices cancel and deadlines."""
        while True:
            try:
                return None, self._free.get(timeout=_POLL)
            except queue.Empty:
                pass
            if cancel is not None and cancel.is_set():
                return "cancelled", None
            if deadline is not None and time.monotonic() > deadline:
                return "deadline", None

    def _ready(self, slot: _Slot) -> _Channel:
        """The slot's connection, starting (or restarting) its zygote and (re)connecting as
        needed."""
        with self._lock:
            if self._closed:
                raise ExecutorError("the executor is closed")
            zyg = slot.zygote
        if zyg is None or not zyg.alive:
            slot.hang_up()
            if zyg is not None:
                zyg.stop()
            try:
                fresh = _Zygote(self._preload).wait_ready()  # (outside the lock: ~0.1 s)
            except OSError as exc:
                raise ExecutorError(f"cannot start the fork server: {exc}") from None
            with self._lock:
                if self._closed:  # closed meanwhile: this zygote must not outlive it
                    fresh.stop()
                    raise ExecutorError("the executor is closed")
                slot.zygote = zyg = fresh
        if slot.chan is None or slot.chan.zygote is not zyg:
            slot.hang_up()
            slot.chan = _Channel(zyg)
        return slot.chan

    def run(
        self,
        spec: ProcessSpec,
        on_output: OutputCallback,
        *,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> ProcessResult:
        """Run ``spec`` in a fresh forked process; blocks until it ends. Never raises for the
        process's own failures: they are in the returned :class:`ProcessResult`."""
        waited, slot = self._acquire(cancel, deadline)
        if waited is not None or slot is None:
            return ProcessResult(None, waited or "error")
        keep = False
        try:
            chan = self._ready(slot)
            result, keep = self._run(chan, spec, on_output, cancel, timeout, deadline)
            return result
        except ExecutorError as exc:
            return ProcessResult(None, "error", error=str(exc))
        finally:
            if not keep or self._closed:
                slot.hang_up()
            self._free.put(slot)

    def _run(
        self,
        chan: _Channel,
        spec: ProcessSpec,
        on_output: OutputCallback,
        cancel: threading.Event | None,
        timeout: float | None,
        deadline: float | None,
    ) -> tuple[ProcessResult, bool]:
        """One task on ``chan``; returns its result and whether ``chan`` can be used again."""
        zyg = chan.zygote
        task_id = next(self._ids)
        base = zyg.env
        request = {
            "id": task_id,
            "script": str(spec.script),
            "argv": list(spec.argv) or [str(spec.script)],
            "cwd": str(spec.cwd),
            "path0": str(spec.path0 or Path(spec.script).parent),
            "env": {k: v for k, v in spec.env.items() if base.get(k) != v},
            "unset": [k for k in base if k not in spec.env],
        }
        imports = [m for m in stdlib_imports(spec.script, spec.path0)
                   if m not in zyg.imported]
        if imports:  # the app's first task on this zygote: warm them up for all the others
            request["imports"] = imports
            zyg.imported.update(imports)
        payload = json.dumps(request, separators=(",", ":")).encode() + b"\n"
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            # The fds travel with the first bytes; a stream socket may take only part of them.
            sent = socket.send_fds(chan.sock, [payload[:4096]], [out_w, err_w])
            if sent < len(payload):
                chan.sock.sendall(payload[sent:])
        except OSError as exc:
            for fd in (out_r, err_r):
                os.close(fd)
            return ProcessResult(None, "error",
                                 error=f"cannot send the task to the fork server: {exc}"), False
        finally:
            # The child holds its own copies now; ours must go or the pipes never reach EOF.
            # (Exactly once: a second close could hit a reused fd of another thread.)
            os.close(out_w)
            os.close(err_w)
        run = _Run(on_output, out_r, err_r, cancel, timeout, deadline)
        run.poller.register(zyg.death_fd, select.POLLIN)
        next_zygote_check = run.started + _ZYGOTE_CHECK
        sock_fd = chan.sock.fileno()
        pid: int | None = None
        exit_code: int | None = None
        status_known = False
        broken = False  # the zygote died or hung up: nothing more comes on the channel
        discard = False  # the channel is not to be reused (its state is unsure)
        error: str | None = None
        watching_sock = False

        def zygote_died() -> None:
            nonlocal status_known, error, broken
            broken = True
            if not status_known:
                _kill_group(pid)  # its orphaned task must not live on
                status_known = True
                error = error or "the fork server dropped the task"

        try:
            while not (status_known and not run.pipes_open):
                # The connection is read without waking up for it while output still flows
                # (the pid message needs no reaction); it is watched once the pipes closed,
                # when only the exit report is missing.
                died = False
                for fd, events in run.pump(_POLL):
                    if fd != zyg.death_fd:
                        continue
                    if events & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                        died = True  # handled below, once the pid it sent has been read
                    else:  # it wrote something after "ready": rely on checking its pid
                        run.poller.unregister(fd)
                while not broken:
                    try:
                        data = chan.sock.recv(65536, socket.MSG_DONTWAIT)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        data = b""
                    if not data:  # the zygote hung up on this channel: it died or gave up
                        zygote_died()
                        break
                    chan.buf += data
                    while b"\n" in chan.buf:
                        line, chan.buf = chan.buf.split(b"\n", 1)
                        try:
                            msg = json.loads(line)
                        except ValueError:
                            msg = None
                        if not isinstance(msg, dict):
                            discard = True  # not the zygote's nor the task's
                            continue
                        if msg.get("id", task_id) != task_id:
                            continue  # about an earlier task on this channel
                        pid = msg.get("pid", pid)
                        if status_known:
                            continue  # the first exit report is the outcome
                        if "exit" in msg:
                            exit_code, status_known = msg["exit"], True
                        elif "signal" in msg:
                            exit_code, status_known = -msg["signal"], True
                        elif "error" in msg:
                            error, status_known = msg["error"], True
                        elif run.killed_at is not None:  # forked after we decided to kill
                            _kill_group(pid)
                if died:
                    zygote_died()
                if not status_known and time.monotonic() > next_zygote_check:
                    # Also by its pid, now and then: the death fd may have been unwatchable,
                    # or closed (and its number reused) by a concurrent stop of the zygote.
                    next_zygote_check = time.monotonic() + _ZYGOTE_CHECK
                    if not zyg.alive:
                        zygote_died()
                if not run.pipes_open and not status_known and not watching_sock and not broken:
                    run.poller.register(sock_fd, select.POLLIN)
                    watching_sock = True
                if run.killed_at is None:
                    reason = run.check_limits()
                    if reason is not None:
                        run.outcome = reason
                        run.killed_at = time.monotonic()
                        # Kill the group ourselves if the pid is known; the zygote does it
                        # too (and covers a task not yet forked), and it still reports how
                        # the task ended.
                        _kill_group(pid)
                        try:
                            chan.sock.send(b'{"kill": %d}\n' % task_id, socket.MSG_DONTWAIT)
                        except OSError:  # the hang-up at the end makes the zygote kill it
                            discard = True
                elif time.monotonic() - run.killed_at > _KILL_GRACE:
                    break  # something holds the pipes open; stop waiting for it
                if status_known and run.pipes_open and run.killed_at is None:
                    # The task is gone and its group killed; a stray holder of the pipes
                    # (e.g. a daemon that left the group) may delay the end by 1 s at most.
                    run.killed_at = time.monotonic() - _KILL_GRACE + 1.0
        finally:
            run.close()
        outcome: Outcome = run.outcome
        if error is not None and outcome == "exited":
            outcome = "error"
        result = ProcessResult(
            exit_code=exit_code,
            outcome=outcome,
            last_stderr=run.err.last_line,
            pid=pid,
            duration=time.monotonic() - run.started,
            error=error,
        )
        return result, status_known and not broken and not discard


# --------------------------------------------------------------------------------------------
# subprocess executor
# --------------------------------------------------------------------------------------------


class SubprocessExecutor:
    """Runs each process as ``python <script>`` with ``subprocess`` (slower, simplest)."""

    def __init__(self, workers: int | None = None, *, python: str | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._slots = _Slots(self.workers)
        self.python = python or sys.executable

    def close(self) -> None:
        """Nothing to stop: every process belongs to the run that started it."""

    def run(
        self,
        spec: ProcessSpec,
        on_output: OutputCallback,
        *,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> ProcessResult:
        """Run ``spec`` as a child process; blocks until it ends."""
        waited = self._slots.acquire(cancel, deadline)
        if waited is not None:
            return ProcessResult(None, waited)
        try:
            return self._run(spec, on_output, cancel, timeout, deadline)
        finally:
            self._slots.release()

    def _run(
        self,
        spec: ProcessSpec,
        on_output: OutputCallback,
        cancel: threading.Event | None,
        timeout: float | None,
        deadline: float | None,
    ) -> ProcessResult:
        req = spec.request()
        env = dict(spec.env)
        if spec.path0 is not None and Path(spec.path0) != Path(spec.script).parent:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(spec.path0),
                                                              env.get("PYTHONPATH")]))
        try:
            proc = subprocess.Popen(
                [self.python, str(spec.script), *list(req["argv"])[1:]],  # type: ignore[index]
                cwd=spec.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group, killed as a whole
            )
        except OSError as exc:
            return ProcessResult(None, "error", error=f"cannot start {self.python}: {exc}")
        assert proc.stdout is not None and proc.stderr is not None
        run = _Run(on_output, os.dup(proc.stdout.fileno()), os.dup(proc.stderr.fileno()),
                   cancel, timeout, deadline)
        proc.stdout.close()
        proc.stderr.close()
        exit_code: int | None = None
        try:
            while True:
                run.pump(_POLL)
                if exit_code is None:
                    exit_code = proc.poll()
                    if exit_code is not None:
                        _kill_group(proc.pid)  # stragglers die with the task
                if exit_code is not None and not run.pipes_open:
                    break
                if run.killed_at is None:
                    reason = run.check_limits()
                    if reason is not None:
                        run.outcome, run.killed_at = reason, time.monotonic()
                        _kill_group(proc.pid)
                elif time.monotonic() - run.killed_at > _KILL_GRACE:
                    break
        finally:
            if proc.poll() is None:
                _kill_group(proc.pid)
            exit_code = proc.wait()
            run.close()
        return ProcessResult(
            exit_code=exit_code,
            outcome=run.outcome,
            last_stderr=run.err.last_line,
            pid=proc.pid,
            duration=time.monotonic() - run.started,
        )


# --------------------------------------------------------------------------------------------
# shared executors
# --------------------------------------------------------------------------------------------

_shared: dict[tuple[str, int], Executor] = {}
_shared_lock = threading.Lock()


def shared_executor(workers: int | None = None, kind: str = "forkserver") -> Executor:
    """A process-wide executor for ``(kind, workers)``, created on first use.

    Jobs that share it share its worker slots, so ``workers`` bounds all of the server's
    concurrent processes. ``kind`` is ``"forkserver"`` (default) or ``"subprocess"``.
    """
    n = max(1, workers or os.cpu_count() or 1)
    with _shared_lock:
        executor = _shared.get((kind, n))
        if executor is None:
            if kind == "forkserver":
                executor = ForkServerExecutor(n)
            elif kind == "subprocess":
                executor = SubprocessExecutor(n)
            else:
                raise ValueError(f"unknown executor kind {kind!r}; use forkserver or subprocess")
            _shared[(kind, n)] = executor
        return executor


def close_shared_executors() -> None:
    """Close every executor :func:`shared_executor` created (they are re-created on demand)."""
    with _shared_lock:
        executors = list(_shared.values())
        _shared.clear()
    for executor in executors:
        executor.close()


atexit.register(close_shared_executors)
