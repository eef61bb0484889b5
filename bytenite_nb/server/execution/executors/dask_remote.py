"""The part of the Dask executor that runs on Dask workers (standard library only).

Workers need ``distributed`` and nothing of bytenite-nb. What they run comes in two forms:

* **Shims**, small functions pickled by value (cloudpickle) into the task graph:
  :func:`hold` (the app archive), :func:`sealed` (a batch's environment), :func:`call`
  (the task function) and :func:`make_plugin` (the worker plugin). They use only the standard
  library and ``distributed``, and define no module-level class, so unpickling them (on the
  scheduler too, which reads every graph) never touches the server's own classes.
* **This module and the fork server it uses** (:mod:`.forkserver`, :mod:`.zygote`,
  :mod:`.entry_imports`: standard library only, importing each other relatively), shipped as
  source in the plugin and imported on each worker as a private package named after their
  hash (``_bytenite_remote_<hash>``), so several servers, even of different versions, can
  share a cluster. The plugin (:class:`WorkerSide`) starts a warm fork server per worker,
  exactly the local executor's (a task forks from a warm interpreter instead of starting
  Python), unpacks each app once per worker and version, and runs batches of tasks.

A batch (:meth:`WorkerSide.run_batch`) runs its tasks one after the other in the Dask task's
thread, each in a fresh process forked from the worker's zygote, with the runtime contract's
environment, and returns every task's exit status, output lines and result files as bytes.
A task's own process group is killed when it ends, on its ``taskTimeout``, or when the batch
is cancelled: the server cancels its Dask future (abort, job timeout), the worker moves the
key out of ``executing``, and the plugin's ``transition`` hook stops the batch at once. A
worker that dies takes its fork server, and so its tasks, with it.

Output lines also travel while tasks run: numbered from 0 per task (one sequence over stdout
and stderr) and sent, for all the tasks of a worker, at most every 100 ms (:class:`_Sender`)
as the worker's events (``Worker.log_event(topic, …)``, relayed by the scheduler to the
server's client, subscribed with ``Client.subscribe_topic``). Each run of a task has its own
attempt id, so the lines of a run Dask repeats after losing a worker are never taken for the
lost run's. The result carries every line again: the server delivers those it did not get
live. The scheduler keeps a topic's last events, so lines are masked here already, with the
server's rule (:func:`_masker`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .base import ProcessSpec, base_environment
from .forkserver import ForkServerExecutor

_MAX_LINE = 64 * 1024
# Live output: a batch of lines goes when the last one went this long ago (the first line
# after a quiet spell goes at once), or when this many lines or bytes wait, so a chatty task
# makes a few messages a second, not one a line.
_FLUSH_EVERY = 0.1
_FLUSH_LINES = 500
_FLUSH_BYTES = 32 * 1024
_SPOOL_BYTES = 1024 * 1024  # bigger result files are read by the server in pieces
_MASK = "***"
_MIN_MASKED = 4  # as `usersecrets.MIN_MASKED`: shorter keys are not masked
# Worker-side task states that mean "stop": the server cancelled the batch, or the worker
# is letting go of it (it is closing, or the task was stolen back by the scheduler).
_STOPPED = frozenset({"released", "cancelled", "forgotten", "rescheduled"})


# --------------------------------------------------------------------------------------------
# shims: pickled by value into task graphs and the plugin (functions only)
# --------------------------------------------------------------------------------------------


def hold(data: bytes) -> bytes:
    """Identity: the server submits an app archive through this instead of scattering it, so
    the scheduler can recompute it when the worker holding it dies (scattered data is lost)."""
    return data


def sealed(env: dict[str, str]) -> Callable[[], dict[str, str]]:
    """``env`` behind a function: a worker that logs a failed task's arguments shows
    ``<function …>``, never the secrets a task environment may hold."""
    return lambda: env


def call(plugin_name: str, method: str, *args: Any) -> Any:
    """The Dask task: call ``method`` of this worker's :class:`WorkerSide` (``run_batch``,
    ``read_spooled``, ``drop_spooled``)."""
    from distributed import get_worker

    plugin = get_worker().plugins.get(plugin_name)
    impl = getattr(plugin, "impl", None)
    if impl is None:
        raise RuntimeError(f"the ByteNite Local worker plugin {plugin_name} is not set up on "
                           "this worker (see the worker's log)")
    return getattr(impl, method)(*args)


def make_plugin(name: str, sources: dict[str, str], digest: str) -> Any:
    """The worker plugin that carries :class:`WorkerSide` (as source) to every worker,
    present and future."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class ByteNiteLocalPlugin(WorkerPlugin):
        idempotent = True  # a second server with the same code shares the first one's

        def __init__(self) -> None:
            self.name = name
            self.sources = sources
            self.digest = digest
            self.impl: Any = None

        def setup(self, worker: Any) -> None:
            module = install(self.sources, self.digest, worker.local_directory)
            self.impl = module.WorkerSide(worker)

        def teardown(self, worker: Any) -> None:
            if self.impl is not None:
                self.impl.close()

        def transition(self, key: Any, start: str, finish: str, *args: Any,
                       **kwargs: Any) -> None:
            if self.impl is not None:
                self.impl.transition(key, start, finish)

    return ByteNiteLocalPlugin()


def install(sources: dict[str, str], digest: str, where: str) -> Any:
    """Import ``sources`` (file name → text) as the package ``_bytenite_remote_<digest>``
    from a folder under ``where`` (written once, atomically); returns its ``dask_remote``."""
    import importlib
    import importlib.util
    import sys

    package = f"_bytenite_remote_{digest[:16]}"
    if package not in sys.modules:
        folder = os.path.join(where, package)
        if not os.path.isdir(folder):
            staging = tempfile.mkdtemp(prefix=".staging-", dir=where)
            for filename, text in sources.items():
                with open(os.path.join(staging, filename), "w", encoding="utf-8") as f:
                    f.write(text)
            try:
                os.rename(staging, folder)
            except OSError:  # another worker process in this folder was first
                shutil.rmtree(staging, ignore_errors=True)
        spec = importlib.util.spec_from_file_location(
            package, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[package] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[package]
            raise
    return importlib.import_module(f"{package}.dask_remote")


# --------------------------------------------------------------------------------------------
# worker side: runs from the private package on each worker
# --------------------------------------------------------------------------------------------


def _unpack(root: str, app_tar: bytes, digest: str) -> str:
    """The app folder under ``root``, unpacked once per content hash (atomically)."""
    target = os.path.join(root, "apps", digest)
    if os.path.isdir(target):
        return target
    if hashlib.sha256(app_tar).hexdigest() != digest:
        raise ValueError("the app archive does not match its hash")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    staging = tempfile.mkdtemp(dir=os.path.dirname(target), prefix=".unpack-")
    with tarfile.open(fileobj=io.BytesIO(app_tar)) as tar:
        for member in tar.getmembers():  # the server built it, but stay inside staging anyway
            if member.name.startswith(("/", "..")) or ".." in member.name.split("/"):
                raise ValueError(f"unsafe path in the app archive: {member.name}")
        tar.extractall(staging)
    try:
        os.rename(staging, target)
    except OSError:  # another task unpacked the same app first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _collect(results_dir: str, outbox: str) -> dict[str, Any]:
    """Every file under ``results_dir`` by relative path (``/``-separated), in name order: its
    bytes, or for a file bigger than ``_SPOOL_BYTES`` ``{"spooled": path, "size": n}``, the
    file moved to ``outbox`` for the server to read in pieces (:meth:`WorkerSide.read_spooled`:
    Dask holds a whole message twice while it decodes it, so one 100 MB result would cost the
    server 200 MB)."""
    found: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(results_dir):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if not os.path.isfile(path):
                continue
            rel = os.path.relpath(path, results_dir).replace(os.sep, "/")
            size = os.path.getsize(path)
            if size > _SPOOL_BYTES:
                spooled = os.path.join(outbox, os.urandom(12).hex())
                os.replace(path, spooled)
                found[rel] = {"spooled": spooled, "size": size}
            else:
                with open(path, "rb") as f:
                    found[rel] = f.read()
    return found


def _masker(env: dict[str, str]) -> tuple[Callable[[str], str], int]:
    """The server's masking (`usersecrets.JobSecrets.mask`) for the secrets in ``SECRETS``:
    every key of 4 characters or more, also as it appears inside a printed JSON string, and
    each line of a multi-line key, becomes ``***``, longest first; and the length of the
    longest text it replaces (`ProcessSpec.mask_span`: a long line is masked before it is
    cut). The server masks every line again before recording it."""
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
            # (each line of a multi-line key too, as `usersecrets.masked_strings` does)
            masked.update(line.strip() for line in key.splitlines()
                          if len(line.strip()) >= _MIN_MASKED)
    keys = sorted(masked, key=len, reverse=True)

    def mask(text: str) -> str:
        for key in keys:
            if key in text:
                text = text.replace(key, _MASK)
        return text

    return mask, len(keys[0]) if keys else 0


class _Output:
    """One run of one task's output lines, numbered from 0 in the order read (both
    streams), kept for the result; :class:`_Sender` sends them while the task runs."""

    def __init__(self, token: str | None, worker: str | None,
                 mask: Callable[[str], str], span: int = 0) -> None:
        self.token, self.worker, self.mask = token, worker, mask
        self.span = span  # the longest text ``mask`` replaces
        self.lines: list[tuple[str, str]] = []
        #: This run's id: Dask runs a batch again when the worker running it is lost.
        self.attempt = os.urandom(8).hex()
        self.sent = 0  # lines[:sent] were sent

    def add(self, stream: str, text: str) -> None:
        if text.strip():
            self.lines.append((stream, self.mask(text[:_MAX_LINE])))


class _Sender:
    """Sends the worker's tasks' new output lines as events on ``topic``:
    ``{"tasks": [{"token", "attempt", "first", "lines": [[stream, line], ...], "worker"}]}``
    (``first``: the number of the item's first line), one event for all the tasks with new
    lines, when one is due (see ``_FLUSH_*``); a thread sends what waits longer. Best effort:
    once sending fails, lines only travel with the results."""

    def __init__(self, worker: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.worker = worker
        self.clock = clock
        self.lock = threading.Condition()
        self.pending: dict[tuple[str, int], tuple[str, _Output]] = {}  # by (topic, id)
        self.unsent_lines = 0
        self.unsent_bytes = 0
        self.last_sent = -float("inf")
        self.closed = False
        self.thread: threading.Thread | None = None

    def add(self, topic: str | None, output: _Output, stream: str, text: str) -> None:
        """Record a line of ``output`` and send what is due."""
        before = len(output.lines)
        output.add(stream, text)
        if topic is None or output.token is None or self.worker is None:
            return
        with self.lock:
            if len(output.lines) == before:
                return
            self.pending[(topic, id(output))] = (topic, output)
            self.unsent_lines += 1
            self.unsent_bytes += len(output.lines[-1][1])
            if self.due():
                self.flush_locked()
            else:
                self._start_thread()
                self.lock.notify()

    def due(self) -> bool:
        return (self.unsent_lines >= _FLUSH_LINES or self.unsent_bytes >= _FLUSH_BYTES
                or self.clock() - self.last_sent >= _FLUSH_EVERY)

    def flush_locked(self) -> None:
        """Send every pending line now (the caller holds the lock)."""
        by_topic: dict[str, list[dict[str, Any]]] = {}
        for topic, output in self.pending.values():
            lines = output.lines[output.sent:]
            if lines:
                by_topic.setdefault(topic, []).append({
                    "token": output.token, "attempt": output.attempt, "first": output.sent,
                    "lines": [list(line) for line in lines], "worker": output.worker})
                output.sent += len(lines)
        self.pending.clear()
        self.unsent_lines = self.unsent_bytes = 0
        self.last_sent = self.clock()
        for topic, items in by_topic.items():
            try:  # thread-safe: queued on the worker's event loop, never blocks
                self.worker.log_event(topic, {"tasks": items})
            except Exception:  # a closing worker: the results still carry every line
                self.worker = None
                return

    def _start_thread(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._loop, name="bytenite-output",
                                           daemon=True)
            self.thread.start()

    def _loop(self) -> None:
        with self.lock:
            while not self.closed:
                if not self.pending:
                    self.lock.wait()
                elif self.due():
                    self.flush_locked()
                else:
                    self.lock.wait(max(0.001, self.last_sent + _FLUSH_EVERY - self.clock()))

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.lock.notify()


class WorkerSide:
    """What the plugin keeps on one worker: its fork server (one zygote per worker thread),
    its folders (under the worker's local directory), the live-output sender, and a cancel
    event per running batch (set by :meth:`transition`)."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.address = str(getattr(worker, "address", "") or "")
        self.root = os.path.join(worker.local_directory, "bytenite")
        self.tasks_root = os.path.join(self.root, "tasks")
        self.shared_cache = os.path.join(self.root, "shared-cache")
        self.user_cache = os.path.join(self.root, "user-cache")
        self.outbox = os.path.join(self.root, "outbox")
        for folder in (self.tasks_root, self.shared_cache, self.user_cache, self.outbox):
            os.makedirs(folder, exist_ok=True)
        self.threads = int(getattr(getattr(worker, "state", None), "nthreads", 0) or
                           getattr(worker, "nthreads", 1) or 1)
        self._executor: ForkServerExecutor | None = None  # started by the first batch
        self.sender = _Sender(worker)
        self.running: dict[Any, threading.Event] = {}
        self.lock = threading.Lock()
        self.local = threading.local()

    def close(self) -> None:
        with self.lock:
            for event in self.running.values():
                event.set()
        self.sender.close()
        if self._executor is not None:
            self._executor.close()
        shutil.rmtree(self.outbox, ignore_errors=True)

    def read_spooled(self, path: str, offset: int, length: int) -> bytes:
        """A piece of a spooled result file (see `_collect`)."""
        if os.path.dirname(path) != self.outbox:
            raise ValueError(f"not a spooled result: {path}")
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(length)

    def drop_spooled(self, path: str) -> None:
        """Remove a spooled result file once the server has it."""
        if os.path.dirname(path) == self.outbox:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    @property
    def executor(self) -> ForkServerExecutor:
        """The worker's fork server, one zygote per worker thread, started on first use (so
        a plugin left behind by a server that went away costs its workers nothing)."""
        with self.lock:
            if self._executor is None:
                self._executor = ForkServerExecutor(self.threads)
            return self._executor

    def transition(self, key: Any, start: str, finish: str) -> None:
        """Called by the worker for each task state change (on its event loop)."""
        if start == "executing" and finish in _STOPPED:
            event = self.running.get(key)
            if event is not None:
                event.set()

    def run_batch(self, app_tar: bytes, digest: str, entrypoint: str, chunks: list[str],
                  tokens: list[str], datas: list[Any], env: Callable[[], dict[str, str]],
                  timeout: float | None, topic: str | None) -> dict[str, Any]:
        """Run the tasks of a batch one after the other (a chunk is bytes, or a list of
        pieces of it); returns ``{"worker", "tasks":
        [{"exit_code", "outcome", "last_stderr", "error", "pid", "duration", "attempt",
        "lines", "results"}, ...]}``, a task per chunk, in order (``outcome`` ``cancelled``
        for those the batch did not start once it was cancelled)."""
        key = self.worker.get_current_task()
        cancel = threading.Event()
        with self.lock:
            self.running[key] = cancel
        try:
            app_dir = _unpack(self.root, app_tar, digest)
            task_env = dict(env())
            mask, span = _masker(task_env)
            base = base_environment()
            base.update(task_env)
            base.update(SHARED_CACHE_DIR=self.shared_cache, USER_CACHE_DIR=self.user_cache)
            script = Path(app_dir, "app", *entrypoint.split("/"))
            tasks = []
            for chunk, token, data in zip(chunks, tokens, datas, strict=True):
                output = _Output(token, self.address, mask, span)
                if cancel.is_set():
                    tasks.append(_ended(output, "cancelled"))
                    continue
                tasks.append(self._run_one(script, app_dir, chunk, data, base, timeout,
                                           cancel, output, topic))
            return {"worker": self.address, "tasks": tasks}
        finally:
            with self.lock:
                self.running.pop(key, None)

    def _run_one(self, script: Path, app_dir: str, chunk: str, data: Any,
                 base: dict[str, str], timeout: float | None, cancel: threading.Event,
                 output: _Output, topic: str | None) -> dict[str, Any]:
        task_dir, results_dir = self._folders()
        try:
            with open(os.path.join(task_dir, "data.bin"), "wb") as f:
                for piece in data if isinstance(data, (list, tuple)) else (data,):
                    f.write(piece)
            env = dict(base, TASK_DIR=task_dir, TASK_RESULTS_DIR=results_dir,
                       CHUNK_NUMBER=chunk)
            spec = ProcessSpec(script=script, cwd=Path(task_dir), env=env,
                               path0=Path(app_dir, "app"), mask=output.mask,
                               mask_span=output.span)
            sender = self.sender

            def on_output(stream: str, line: str) -> None:
                sender.add(topic, output, stream, line)

            result = self.executor.run(spec, on_output, cancel=cancel, timeout=timeout)
            ended = _ended(output, result.outcome)
            ended.update(
                exit_code=result.exit_code, pid=result.pid, duration=result.duration,
                error=result.error and output.mask(result.error),
                last_stderr=result.last_stderr and output.mask(result.last_stderr),
                results=_collect(results_dir, self.outbox) if result.outcome == "exited" else {})
            return ended
        finally:
            for folder in (task_dir, results_dir):
                _empty(folder)

    def _folders(self) -> tuple[str, str]:
        """This thread's ``TASK_DIR`` and ``TASK_RESULTS_DIR``: made once and emptied after
        each task (removing a folder costs about a millisecond on common filesystems, which
        a batch of tiny tasks would pay twice per task)."""
        folders = getattr(self.local, "folders", None)
        if folders is None:
            work = tempfile.mkdtemp(dir=self.tasks_root, prefix="thread-")
            folders = (os.path.join(work, "task"), os.path.join(work, "results"))
            for folder in folders:
                os.mkdir(folder)
            self.local.folders = folders
        return folders


def _empty(folder: str) -> None:
    """Remove everything in ``folder`` (not ``folder`` itself)."""
    with os.scandir(folder) as entries:
        for entry in list(entries):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def _ended(output: _Output, outcome: str) -> dict[str, Any]:
    return {"exit_code": None, "outcome": outcome, "last_stderr": None, "error": None,
            "pid": None, "duration": 0.0, "attempt": output.attempt, "lines": output.lines,
            "results": {}}

