"""The part of the Dask executor that runs on a Dask worker (standard library only).

:func:`run_task` receives everything one app task needs as bytes (the app folder as a tar,
the chunk), runs the entrypoint as ``python main.py`` in a fresh process on the worker with the
runtime contract's environment, and returns the exit status, the output lines and every
result file as bytes. So workers need no shared disk and no copy of bytenite-nb: this module
is shipped to them by value (see :class:`bytenite_nb.server.execution.executors.dask.DaskExecutor`).

Output lines also travel while the task runs: numbered from 0 (one sequence over stdout and
stderr) and sent in batches (:class:`_Output`) as the worker's events
(``Worker.log_event(topic, …)``, which Dask relays through the scheduler to the server's
client, subscribed with ``Client.subscribe_topic``). Each run of :func:`run_task` has its own
attempt id, so the lines of a run Dask repeats after losing a worker are never taken for the
lost run's. The result carries every line again: the server delivers those it did not get live.
The scheduler keeps a topic's last events (``distributed.admin.low-level-log-length``), so
lines are masked here already, with the server's rule (:func:`_masker`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from typing import Any

_MAX_LINE = 64 * 1024
# Live output: a batch goes when it is this old (the first line after a quiet spell goes at
# once), this long or this big, so a chatty task makes a few messages a second, not one a line.
_FLUSH_EVERY = 0.1
_FLUSH_LINES = 500
_FLUSH_BYTES = 32 * 1024
_MASK = "***"
_MIN_MASKED = 4  # as `usersecrets.MIN_MASKED`: shorter keys are not masked
# Runs the entrypoint as __main__ (like `python main.py`) and kills the task's process group
# if the Dask worker that started it dies: a container does not outlive its host either.
_BOOTSTRAP = """
import os, runpy, signal, sys, threading, time
parent = os.getppid()
def _watch():
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os.killpg(0, signal.SIGKILL)
threading.Thread(target=_watch, name="bytenite-parent-watch", daemon=True).start()
del _watch
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))
runpy.run_path(sys.argv[0], run_name="__main__")
"""
# What a task inherits from the worker's environment (as on the server: a clean environment).
_ENV_KEEP = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH",
             "VIRTUAL_ENV", "SYSTEMROOT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "HTTP_PROXY",
             "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
_ENV_PREFIXES = ("LC_", "CUDA_", "NVIDIA_", "OMP_", "MKL_", "OPENBLAS_", "HF_")


class SealedEnv:
    """Environment variables for a task whose values never show in a repr: the worker logs a
    failed task's arguments, and these may hold the user's secrets."""

    __slots__ = ("_items",)

    def __init__(self, env: dict[str, str]) -> None:
        self._items = tuple(env.items())

    def __repr__(self) -> str:
        return f"<environment: {len(self._items)} variables, values hidden>"

    def items(self) -> tuple[tuple[str, str], ...]:
        return self._items


def hold(data: bytes) -> bytes:
    """Identity: the server submits an app archive through this instead of scattering it, so
    the scheduler can recompute it when the worker holding it dies (scattered data is lost)."""
    return data


def _root() -> str:
    root = os.path.join(tempfile.gettempdir(), f"bytenite-dask-{os.getuid()}")
    os.makedirs(root, exist_ok=True)
    return root


def _unpack(app_tar: bytes, digest: str) -> str:
    """The app folder on this worker, unpacked once per content hash (atomically)."""
    target = os.path.join(_root(), "apps", digest)
    if os.path.isdir(target):
        return target
    if hashlib.sha256(app_tar).hexdigest() != digest:
        raise ValueError("the app archive does not match its hash")
    staging = tempfile.mkdtemp(dir=_root(), prefix="unpack-")
    with tarfile.open(fileobj=io.BytesIO(app_tar)) as tar:
        for member in tar.getmembers():  # the server built it, but stay inside staging anyway
            if member.name.startswith(("/", "..")) or ".." in member.name.split("/"):
                raise ValueError(f"unsafe path in the app archive: {member.name}")
        tar.extractall(staging)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        os.rename(staging, target)
    except OSError:  # another task unpacked the same app first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _collect(results_dir: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(results_dir):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if os.path.isfile(path):
                rel = os.path.relpath(path, results_dir).replace(os.sep, "/")
                with open(path, "rb") as f:
                    found[rel] = f.read()
    return found


def _cancel_event(name: str) -> Any:
    """The scheduler's named event, made in the task's own thread (where the worker's client
    is known); ``None`` outside a Dask worker."""
    try:
        from distributed import Event

        return Event(name)
    except Exception:  # pragma: no cover - not on a Dask worker
        return None


def _masker(env: dict[str, str]) -> Callable[[str], str]:
    """The server's masking (`usersecrets.JobSecrets.mask`) for the secrets in ``SECRETS``:
    every key of 4 characters or more, also as it appears inside a printed JSON string,
    becomes ``***``, longest first. The server masks every line again before recording it."""
    try:
        records = json.loads(env.get("SECRETS") or "[]")
    except ValueError:
        records = []
    masked: set[str] = set()
    for record in records if isinstance(records, list) else ():
        key = str(record.get("secretKey") or "") if isinstance(record, dict) else ""
        if len(key) >= _MIN_MASKED:
            masked.add(key)
            masked.add(json.dumps(key)[1:-1])
    keys = sorted(masked, key=len, reverse=True)

    def mask(text: str) -> str:
        for key in keys:
            if key in text:
                text = text.replace(key, _MASK)
        return text

    return mask


def _worker() -> Any:
    """The Dask worker running this task (asked from the task's thread); ``None`` outside one."""
    try:
        from distributed import get_worker

        return get_worker()
    except Exception:  # pragma: no cover - not on a Dask worker
        return None


class _Output:
    """A task's output lines, numbered from 0 in the order read (both streams), kept for the
    result and sent while the task runs as events on ``topic``:
    ``{"token", "attempt", "first", "lines": [[stream, line], ...]}`` (``first``: the number
    of the batch's first line). Sending is best effort: once it fails, lines only travel with
    the result."""

    def __init__(self, topic: str | None, token: str | None, mask: Callable[[str], str]) -> None:
        self.lines: list[tuple[str, str]] = []
        self.mask = mask
        #: This run's id: Dask runs a task again when the worker running it is lost.
        self.attempt = os.urandom(8).hex()
        self.topic, self.token = topic, token
        self.worker = _worker() if topic and token else None
        self.sent = 0  # lines[:sent] were sent
        self.unsent_bytes = 0
        self.last_sent = -float("inf")

    def add(self, stream: str, text: str) -> None:
        if text.strip():
            text = self.mask(text)
            self.lines.append((stream, text))
            self.unsent_bytes += len(text)

    def wait(self, longest: float) -> float:
        """How long the task's loop may wait for output before a batch is due."""
        if self.worker is None or self.sent == len(self.lines):
            return longest
        return min(longest, max(0.0, self.last_sent + _FLUSH_EVERY - time.monotonic()))

    def flush(self, force: bool = False) -> None:
        """Send the lines not sent yet, if a batch is due (or ``force``)."""
        pending = len(self.lines) - self.sent
        if self.worker is None or not pending:
            return
        now = time.monotonic()
        if not (force or pending >= _FLUSH_LINES or self.unsent_bytes >= _FLUSH_BYTES
                or now - self.last_sent >= _FLUSH_EVERY):
            return
        batch = [[stream, text] for stream, text in self.lines[self.sent:]]
        try:  # from a task thread: queued on the worker's event loop, never blocks
            self.worker.log_event(self.topic, {"token": self.token, "attempt": self.attempt,
                                               "first": self.sent, "lines": batch})
        except Exception:  # a closing worker: the result still carries every line
            self.worker = None
            return
        self.sent, self.unsent_bytes, self.last_sent = len(self.lines), 0, now


def _task_env(env: SealedEnv | dict[str, str], task_dir: str,
              results_dir: str) -> tuple[dict[str, str], dict[str, str]]:
    """The task's whole environment (this worker's basics, the contract's variables, this
    worker's folders) and the part that came from the server (what is masked in output)."""
    full_env = {k: v for k, v in os.environ.items()
                if k in _ENV_KEEP or k.startswith(_ENV_PREFIXES)}
    full_env.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
    task_env = dict(env.items())
    full_env.update(task_env)
    full_env.update(
        TASK_DIR=task_dir, TASK_RESULTS_DIR=results_dir,
        SHARED_CACHE_DIR=os.path.join(_root(), "shared-cache"),
        USER_CACHE_DIR=os.path.join(_root(), "user-cache"),
    )
    for key in ("SHARED_CACHE_DIR", "USER_CACHE_DIR"):
        os.makedirs(full_env[key], exist_ok=True)
    return full_env, task_env


def _wait(proc: subprocess.Popen, output: _Output, cancel_name: str | None,
          timeout: float | None) -> str:
    """Pass the process's output lines on until its pipes close, killing its group on
    cancel or timeout; returns the outcome (``exited``, ``cancelled`` or ``timeout``)."""
    cancelled = False
    # Asked from this (the task's) thread: a Dask Event cannot be used from others.
    event = _cancel_event(cancel_name) if cancel_name else None
    next_check = time.monotonic() + 0.3
    pending = {"stdout": b"", "stderr": b""}
    sel = selectors.DefaultSelector()
    assert proc.stdout is not None and proc.stderr is not None
    sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
    sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
    outcome = "exited"
    deadline = None if not timeout else time.monotonic() + timeout
    killed = False
    while sel.get_map():
        for key, _ in sel.select(output.wait(0.1)):
            _read(key, sel, pending, output)
        output.flush()
        if event is not None and not killed and time.monotonic() > next_check:
            next_check = time.monotonic() + 0.3
            try:
                if event.is_set():
                    cancelled = True
                    event.clear()  # seen: the scheduler may forget it
            except Exception:  # a lost scheduler: the task timeout still applies
                event = None
        if not killed:
            if cancelled:
                outcome, killed = "cancelled", True
            elif deadline is not None and time.monotonic() > deadline:
                outcome, killed = "timeout", True
            if killed:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is not None:  # stragglers die with the task, as in a container
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
    sel.close()
    return outcome


def _read(key: selectors.SelectorKey, sel: selectors.BaseSelector, pending: dict[str, bytes],
          output: _Output) -> None:
    """Read what one pipe has and pass its complete lines on (a runaway line in pieces)."""
    chunk = os.read(key.fd, 65536)
    name = key.data
    if not chunk:
        sel.unregister(key.fileobj)
        if pending[name]:
            output.add(name, pending[name].decode("utf-8", "replace"))
            pending[name] = b""
        return
    buf = pending[name] + chunk
    *complete, pending[name] = buf.split(b"\n")
    while len(pending[name]) > _MAX_LINE:
        complete.append(pending[name][:_MAX_LINE])
        pending[name] = pending[name][_MAX_LINE:]
    for raw in complete:
        output.add(name, raw.decode("utf-8", "replace").rstrip("\r"))


def run_task(app_tar: bytes, digest: str, entrypoint: str, data: bytes,
             env: SealedEnv | dict[str, str], timeout: float | None,
             cancel_name: str | None, topic: str | None = None,
             token: str | None = None) -> dict[str, Any]:
    """Run one app task on this worker; returns ``{"exit_code", "outcome", "lines",
    "attempt", "results", "pid"}`` (``outcome``: ``exited``, ``timeout`` or ``cancelled``;
    ``lines``: every non-blank ``(stream, line)``, masked, in the order read).

    With ``topic`` and ``token``, the lines are also sent while the task runs (see
    :class:`_Output`), the last batch before this returns."""
    app_dir = _unpack(app_tar, digest)
    work = tempfile.mkdtemp(dir=_root(), prefix="task-")
    try:
        task_dir = os.path.join(work, "data")
        results_dir = os.path.join(work, "results")
        os.mkdir(task_dir)
        os.mkdir(results_dir)
        with open(os.path.join(task_dir, "data.bin"), "wb") as f:
            f.write(data)
        full_env, task_env = _task_env(env, task_dir, results_dir)
        script = os.path.join(app_dir, "app", entrypoint)
        proc = subprocess.Popen(
            [sys.executable, "-c", _BOOTSTRAP, script], cwd=work, env=full_env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        output = _Output(topic, token, _masker(task_env))
        outcome = _wait(proc, output, cancel_name, timeout)
        code = proc.wait()
        output.flush(force=True)  # before the result: Dask relays both in order
        return {
            "exit_code": code,
            "outcome": outcome,
            "lines": output.lines,
            "attempt": output.attempt,
            "results": _collect(results_dir) if outcome == "exited" else {},
            "pid": proc.pid,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
