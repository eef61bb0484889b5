"""Where app, partitioner and assembler processes run.

Every task runs in a fresh process, as each ran in its own container on ByteNite. Starting an
interpreter per task is slow (tens of ms), so :class:`ForkServerExecutor` forks each one from
a warm, single-threaded "zygote" interpreter started once (see :mod:`.zygote`); the server's
own process, which runs threads (uvicorn, maybe a Jupyter kernel), is never forked.
:class:`SubprocessExecutor` is the plain ``python main.py`` fallback.

Both share one interface: :meth:`Executor.run` runs one :class:`ProcessSpec` to completion in
the calling thread, streaming its output lines to a callback, enforcing a per-process timeout,
a job deadline and a cancel event by killing the process's whole group, and returns a
:class:`ProcessResult`. A semaphore of ``workers`` slots bounds how many run at once across all
jobs that share the executor.
"""

from __future__ import annotations

import atexit
import codecs
import contextlib
import json
import os
import selectors
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

from bytenite_nb.server import zygote

__all__ = [
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

#: Called with ``("stdout" | "stderr", line)`` for each line a process writes.
OutputCallback = Callable[[str, str], None]
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
    """One process to run: ``python <script>`` in ``cwd`` with exactly ``env``."""

    script: Path
    cwd: Path
    env: Mapping[str, str]
    argv: Sequence[str] = ()  # defaults to [script]
    path0: Path | None = None  # sys.path[0]; defaults to the script's folder

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
    """The wait loop of one running process: pipes, status, cancel and limits."""

    def __init__(
        self,
        on_output: OutputCallback,
        out_fd: int,
        err_fd: int,
        cancel: threading.Event | None,
        timeout: float | None,
        deadline: float | None,
    ) -> None:
        self.sel = selectors.DefaultSelector()
        self.out = _Stream("stdout", out_fd, on_output)
        self.err = _Stream("stderr", err_fd, on_output)
        for stream in (self.out, self.err):
            os.set_blocking(stream.fd, False)
            self.sel.register(stream.fd, selectors.EVENT_READ, stream)
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

    def pump(self, timeout: float) -> list[object]:
        """Wait up to ``timeout`` for output; returns other ready selector data."""
        other = []
        for key, _ in self.sel.select(timeout):
            if isinstance(key.data, _Stream):
                stream = key.data
                try:
                    data = os.read(stream.fd, 65536)
                except BlockingIOError:
                    continue
                stream.feed(data)
                if not data:
                    stream.open = False
                    self.sel.unregister(stream.fd)
            else:
                other.append(key.data)
        return other

    @property
    def pipes_open(self) -> bool:
        return self.out.open or self.err.open

    def close(self) -> None:
        for stream in (self.out, self.err):
            if stream.open:
                with contextlib.suppress(KeyError, ValueError):
                    self.sel.unregister(stream.fd)
                stream.feed(b"")
                stream.open = False
            with contextlib.suppress(OSError):
                os.close(stream.fd)
        self.sel.close()


# --------------------------------------------------------------------------------------------
# fork server executor
# --------------------------------------------------------------------------------------------


class ForkServerExecutor:
    """Runs each process as a fresh fork of a warm zygote interpreter (the default).

    ``workers`` bounds concurrent processes (default ``os.cpu_count()``); ``preload`` names
    modules the zygote imports up front (default: common stdlib modules; add e.g. ``"numpy"``
    when every app uses it). The zygote is started here, restarted if it dies, and stopped by
    :meth:`close` (and at interpreter exit), taking any running task down with it.
    """

    def __init__(self, workers: int | None = None, *, preload: Sequence[str] | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._slots = _Slots(self.workers)
        self._preload = tuple(zygote.DEFAULT_PRELOAD if preload is None else preload)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: str | None = None
        self._closed = False
        self._start()
        atexit.register(self.close)  # unregistered by close(), so no closed executor lingers

    @property
    def socket_path(self) -> str:
        assert self._dir is not None
        return os.path.join(self._dir, "zygote.sock")

    @property
    def zygote_pid(self) -> int | None:
        """The fork server's pid (for diagnostics and tests)."""
        return None if self._proc is None else self._proc.pid

    def _start(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="bytenite-zygote-")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self.socket_path)
            listener.listen(128)
            self._proc = subprocess.Popen(
                [sys.executable, zygote.__file__, str(listener.fileno()), ",".join(self._preload)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=base_environment(),
                pass_fds=(listener.fileno(),),
                cwd=self._dir,
                # Its own session: a terminal's Ctrl-C goes to the server, which then closes
                # the zygote cleanly instead of killing tasks behind the runner's back.
                start_new_session=True,
            )
        finally:
            listener.close()
        assert self._proc.stdout is not None
        ready = self._proc.stdout.readline()
        if ready.strip() != b"ready":
            self._stop()
            raise ExecutorError("the fork server failed to start (see the server's stderr)")

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()  # EOF: the zygote kills its tasks and exits
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def close(self) -> None:
        """Stop the zygote (and with it any task still running). Idempotent."""
        with self._lock:
            self._closed = True
            self._stop()
        atexit.unregister(self.close)

    def __enter__(self) -> ForkServerExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> tuple[socket.socket, subprocess.Popen[bytes]]:
        with self._lock:
            if self._closed:
                raise ExecutorError("the executor is closed")
            if self._proc is None or self._proc.poll() is not None:
                self._stop()
                self._start()
            path, proc = self.socket_path, self._proc
        assert proc is not None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError as exc:
            sock.close()
            raise ExecutorError(f"cannot reach the fork server: {exc}") from None
        return sock, proc

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
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            sock, zygote_proc = self._connect()
        except ExecutorError as exc:
            for fd in (out_r, out_w, err_r, err_w):
                os.close(fd)
            return ProcessResult(None, "error", error=str(exc))
        try:
            payload = json.dumps(spec.request()).encode() + b"\n"
            # The fds travel with the first bytes; a stream socket may take only part of them.
            sent = socket.send_fds(sock, [payload[:4096]], [out_w, err_w])
            if sent < len(payload):
                # (Never an empty send: the task may already have run and the zygote hung
                # up, and even a zero-byte send to a closed peer fails with EPIPE.)
                sock.sendall(payload[sent:])
        except OSError as exc:
            sock.close()
            for fd in (out_r, err_r):
                os.close(fd)
            return ProcessResult(None, "error",
                                 error=f"cannot send the task to the fork server: {exc}")
        finally:
            # The child holds its own copies now; ours must go or the pipes never reach EOF.
            # (Exactly once: a second close could hit a reused fd of another thread.)
            os.close(out_w)
            os.close(err_w)
        run = _Run(on_output, out_r, err_r, cancel, timeout, deadline)
        sock.setblocking(False)
        buf = b""
        pid: int | None = None
        exit_code: int | None = None
        status_known = False
        error: str | None = None
        watching_sock = False
        next_zygote_check = time.monotonic() + _ZYGOTE_CHECK
        try:
            while not (status_known and not run.pipes_open):
                # The control connection is read without waking up for it while output still
                # flows (the pid message needs no reaction); it is watched once the pipes
                # closed, when only the exit report is missing.
                run.pump(_POLL)
                while True:
                    try:
                        data = sock.recv(65536)
                    except BlockingIOError:
                        break
                    except OSError:
                        data = b""
                    if not data:  # the zygote hung up
                        if watching_sock:
                            run.sel.unregister(sock)
                            watching_sock = False
                        if not status_known:  # it died: its orphaned task must not live on
                            _kill_group(pid)
                            status_known = True
                            error = error or "the fork server dropped the task"
                        break
                    buf += data
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        msg = json.loads(line)
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
                    if status_known:
                        break
                if not status_known and time.monotonic() > next_zygote_check:
                    # The task holds the connection open too (for its exit report), so the
                    # zygote's death shows here, not as an EOF.
                    next_zygote_check = time.monotonic() + _ZYGOTE_CHECK
                    if zygote_proc.poll() is not None:
                        _kill_group(pid)  # its orphaned task must not live on
                        status_known = True
                        error = error or "the fork server dropped the task"
                if not run.pipes_open and not status_known and not watching_sock:
                    run.sel.register(sock, selectors.EVENT_READ, "control")
                    watching_sock = True
                if run.killed_at is None:
                    reason = run.check_limits()
                    if reason is not None:
                        run.outcome = reason
                        run.killed_at = time.monotonic()
                        # Kill the group ourselves if the pid is known; the half-close
                        # makes the zygote do it too (and covers a task not yet forked),
                        # and it still reports how the task ended.
                        _kill_group(pid)
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_WR)
                elif time.monotonic() - run.killed_at > _KILL_GRACE:
                    break  # something holds the pipes open; stop waiting for it
                if status_known and run.pipes_open and run.killed_at is None:
                    # The task is gone and its group killed; a stray holder of the pipes
                    # (e.g. a daemon that left the group) may delay the end by 1 s at most.
                    run.killed_at = time.monotonic() - _KILL_GRACE + 1.0
        finally:
            if watching_sock:
                with contextlib.suppress(KeyError, ValueError):
                    run.sel.unregister(sock)
            sock.close()  # if the task still runs, this tells the zygote to kill it
            run.close()
        outcome: Outcome = run.outcome
        if error is not None and outcome == "exited":
            outcome = "error"
        return ProcessResult(
            exit_code=exit_code,
            outcome=outcome,
            last_stderr=run.err.last_line,
            pid=pid,
            duration=time.monotonic() - run.started,
            error=error,
        )


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
