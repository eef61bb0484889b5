"""Running app tasks on an existing ``dask.distributed`` cluster (``--executor dask``).

Each app task becomes one Dask task: the app folder (as a tar, sent once per worker per app
version) and the chunk travel to a worker through Dask; the worker runs ``python main.py`` in a
fresh process with the runtime contract's environment (see :mod:`.dask_remote`), and the
result files travel back. Workers need no shared disk and no bytenite-nb.
Partitioner and assembler stay on the server (``engine_executor``, a fork server executor).

Output lines reach ``on_output`` while the task runs, as with the local executor: the worker
sends them in batches (about every 100 ms, or sooner for many lines) as events on a topic of
this executor (``Worker.log_event``, relayed by the scheduler to this client, which subscribed
with ``Client.subscribe_topic``: Dask's own worker-to-client channel, the one its
``forward_logging`` and ``print`` use, in order, with nothing to install on workers). Lines are
numbered per run of the task; the result carries them all again, and :class:`_Lines` delivers
each line once, in order, whether it came live or only with the result (live messages that
never arrive lose nothing).

Differences from the local executor, by design: a worker that dies mid-task makes Dask run the
task again elsewhere (up to the scheduler's ``allowed-failures``). The lines the lost run wrote
and sent stay in the job's logs (they were written, like a failed attempt's on the local
executor), followed by a ByteNite Local note (`executors.NOTE_STREAM`) naming the lost worker,
then the new run's lines, numbered afresh under its own attempt id so they are never taken for
the lost run's (late lines of a lost run are dropped; a lost run that sent no line leaves no
note); the lines the lost worker had read but not yet sent (at most ~100 ms of output) are lost
with it. ``SHARED_CACHE_DIR`` and
``USER_CACHE_DIR`` are per-worker folders.

The environment a task gets on its worker: the contract's ``APP_PARAMS``, ``CHUNK_NUMBER`` and
``SECRETS``, the per-secret variables its manifest asks for (``ProcessSpec.secret_names``), and
the worker's own paths. It travels sealed (`dask_remote.SealedEnv`), so a worker that logs a
failed task's arguments never logs a secret.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import queue
import tarfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bytenite_nb.server.execution.executors import dask_remote
from bytenite_nb.server.execution.executors.base import (
    NOTE_STREAM,
    POLL,
    Executor,
    ExecutorError,
    OutputCallback,
    ProcessResult,
    ProcessSpec,
    WorkerSlots,
)
from bytenite_nb.server.execution.executors.forkserver import ForkServerExecutor

__all__ = ["DaskExecutor"]

_CANCEL_GRACE = 1.5  # how long a cancelled task's worker gets to kill it and say so
# Only these travel: paths are the worker's own, the rest of the environment is the worker's.
_CONTRACT_KEYS = ("APP_PARAMS", "CHUNK_NUMBER", "SECRETS")


def _app_archive(app_dir: Path) -> bytes:
    """``app_dir``'s parent folder layout (``app/...``) as an uncompressed tar, deterministic."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(app_dir.rglob("*")):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            info = tar.gettarinfo(str(path), arcname="app/" + path.relative_to(app_dir).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with open(path, "rb") as f:
                tar.addfile(info, f)
    return buf.getvalue()


class _Lines:
    """Delivers one task's output lines to ``on_output`` once each, in order, from live
    batches and then from the result (see :mod:`.dask_remote`): a line is delivered when
    every line before it was; numbers already delivered are skipped. A batch of another
    attempt than the current one means Dask ran the task again (the worker was lost):
    a note says so and numbering starts afresh; batches of a superseded attempt are dropped."""

    def __init__(self, on_output: OutputCallback) -> None:
        self.on_output = on_output
        self.attempt: str | None = None
        self.worker: str | None = None
        self.next = 0  # the number of the next line to deliver
        self.ahead: dict[int, tuple[str, str]] = {}  # received after a gap
        self.lost: set[str] = set()

    def add(self, attempt: str, first: int, lines: Sequence[Any],
            worker: str | None = None) -> None:
        if attempt in self.lost:
            return
        if attempt != self.attempt:
            if self.attempt is not None:
                self.lost.add(self.attempt)
                where = f" {self.worker}" if self.worker else ""
                again = f" on {worker}" if worker else ""
                self.on_output(NOTE_STREAM, (
                    f"the Dask worker{where} running this task was lost; Dask runs the task "
                    f"again{again}: the lines above are the lost run's output, the lines below "
                    "the new run's"))
            self.attempt, self.next, self.ahead = attempt, 0, {}
        if worker:
            self.worker = worker
        for n in range(max(first, self.next), first + len(lines)):
            self.ahead.setdefault(n, lines[n - first])
        while self.next in self.ahead:
            stream, line = self.ahead.pop(self.next)
            self.next += 1
            self.on_output(stream, line)

    def take(self, inbox: queue.SimpleQueue[dict[str, Any]]) -> None:
        """Deliver the batches that arrived."""
        while True:
            try:
                msg = inbox.get_nowait()
            except queue.Empty:
                return
            self.add(msg["attempt"], msg["first"], msg["lines"], msg.get("worker"))


class DaskExecutor:
    """Sends app tasks to a Dask cluster; runs partitioner and assembler locally.

    ``scheduler`` is an address (``tcp://host:port``) or a ``distributed.Client``.
    ``workers`` bounds tasks in flight (default: the cluster's total threads when connecting).
    ``connect_timeout`` (seconds) bounds the wait for the scheduler; then `ExecutorError`.
    """

    def __init__(self, scheduler: Any, workers: int | None = None, *,
                 engine_executor: Executor | None = None,
                 connect_timeout: float = 10.0) -> None:
        try:
            import cloudpickle
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ExecutorError(
                "the dask executor needs the 'dask' extra: pip install 'bytenite-nb[dask]'"
            ) from exc
        # Ship the worker-side code by value: workers need Python, not bytenite-nb.
        cloudpickle.register_pickle_by_value(dask_remote)
        if isinstance(scheduler, Client):
            self.client, self._own_client = scheduler, False
        else:
            try:
                self.client = Client(scheduler, set_as_default=False,
                                     timeout=f"{connect_timeout}s")
            except Exception as exc:  # refused, timed out, a malformed address, not Dask...
                raise ExecutorError(
                    f"cannot reach the Dask scheduler at {scheduler} (waited up to "
                    f"{connect_timeout:g} s): {type(exc).__name__}: {exc}") from None
            self._own_client = True
        threads = sum(self.client.nthreads().values()) or 1
        self.workers = max(1, workers or threads)
        self._slots = WorkerSlots(self.workers)
        #: Partitioner and assembler run here, on the server.
        self.engine_executor: Executor = engine_executor or ForkServerExecutor()
        self._own_engine_executor = engine_executor is None
        self._lock = threading.Lock()
        self._apps: dict[str, tuple[tuple[int, int], str, Any]] = {}
        # Live output: every task's batches come on this topic, each to its run's inbox.
        self._topic = f"bytenite-output-{uuid.uuid4().hex}"
        self._inboxes: dict[str, queue.SimpleQueue[dict[str, Any]]] = {}
        self.client.subscribe_topic(self._topic, self._on_event)

    def _on_event(self, event: Any) -> None:
        """On the client's event loop: hand a batch of output lines to its task's run."""
        try:
            msg = event[1]
            inbox = self._inboxes.get(msg["token"])
            if inbox is not None and isinstance(msg["attempt"], str) and isinstance(
                    msg["first"], int) and isinstance(msg["lines"], (list, tuple)):
                inbox.put(msg)
        except Exception:  # not ours or malformed: the result still carries every line
            pass

    def close(self) -> None:
        """Close the client (if this executor opened it) and the local engine executor."""
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(self._topic)
        if self._own_client:
            with contextlib.suppress(Exception):
                self.client.close()
        if self._own_engine_executor:
            self.engine_executor.close()

    def _app(self, app_dir: Path) -> tuple[str, Any]:
        """(hash, a Dask future of the app archive), built and sent once per version."""
        stamp = max(((p.stat().st_mtime_ns, p.stat().st_size) for p in app_dir.rglob("*")
                     if p.is_file()), default=(0, 0))
        key = str(app_dir)
        with self._lock:
            cached = self._apps.get(key)
            if cached and cached[0] == stamp:
                return cached[1], cached[2]
            archive = _app_archive(app_dir)
            digest = hashlib.sha256(archive).hexdigest()
            future = self.client.submit(dask_remote.hold, archive, pure=False,
                                        key=f"bytenite-app-{digest[:16]}-{uuid.uuid4().hex[:8]}")
            self._apps[key] = (stamp, digest, future)
            return digest, future

    def run(
        self,
        spec: ProcessSpec,
        on_output: OutputCallback,
        *,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> ProcessResult:
        """Run one app task on the cluster; blocks until it ends (see the module docstring)."""
        if "TASK_DIR" not in spec.env:  # partitioner/assembler: not a task, stays here
            return self.engine_executor.run(spec, on_output, cancel=cancel, timeout=timeout,
                                            deadline=deadline)
        waited = self._slots.acquire(cancel, deadline)
        if waited is not None:
            return ProcessResult(None, waited)
        try:
            return self._run(spec, on_output, cancel, timeout, deadline)
        finally:
            self._slots.release()

    def _run(self, spec: ProcessSpec, on_output: OutputCallback,
             cancel: threading.Event | None, timeout: float | None,
             deadline: float | None) -> ProcessResult:
        started = time.monotonic()
        app_dir = Path(spec.path0 or Path(spec.script).parent)
        entrypoint = Path(spec.script).relative_to(app_dir).as_posix()
        task_dir = Path(spec.env["TASK_DIR"])
        results_dir = Path(spec.env["TASK_RESULTS_DIR"])
        try:
            digest, archive = self._app(app_dir)
            data = (task_dir / "data.bin").read_bytes()
        except (OSError, ValueError) as exc:
            return ProcessResult(None, "error", error=f"cannot prepare the task: {exc}")
        env = {k: spec.env[k] for k in (*_CONTRACT_KEYS, *spec.secret_names) if k in spec.env}
        cancel_name = f"bytenite-cancel-{uuid.uuid4().hex}"
        token = uuid.uuid4().hex  # this run's live output batches carry it
        inbox: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._inboxes[token] = inbox
        try:
            future = self.client.submit(
                dask_remote.run_task, archive, digest, entrypoint, data,
                dask_remote.SealedEnv(env), timeout, cancel_name, self._topic, token,
                key=f"bytenite-task-{env.get('CHUNK_NUMBER', 'x')}-{uuid.uuid4().hex[:12]}",
                pure=False,
            )
            return self._wait(future, _Lines(on_output), inbox, cancel_name, cancel, deadline,
                              started, results_dir)
        finally:
            self._inboxes.pop(token, None)

    def _wait(self, future: Any, lines: _Lines, inbox: queue.SimpleQueue[dict[str, Any]],
              cancel_name: str, cancel: threading.Event | None, deadline: float | None,
              started: float, results_dir: Path) -> ProcessResult:
        """Deliver ``future``'s output lines while it runs, enforce cancel and the job
        deadline, then deliver the rest of its lines and write its result files."""
        from distributed import Event

        finished = threading.Event()
        future.add_done_callback(lambda _: finished.set())
        outcome = None
        while not finished.wait(POLL):
            lines.take(inbox)
            if cancel is not None and cancel.is_set():
                outcome = "cancelled"
            elif deadline is not None and time.monotonic() > deadline:
                outcome = "deadline"
            if outcome:
                # The worker polls this event (and clears it once seen), kills the task's
                # process group and returns; give it a moment before cancelling the future
                # (a cancelled Dask task can no longer reach the scheduler to see the event).
                with contextlib.suppress(Exception):
                    Event(cancel_name, client=self.client).set()
                finished.wait(_CANCEL_GRACE)
                # The lines written until the kill: live ones, then the rest with the result.
                lines.take(inbox)
                if future.status == "finished":
                    with contextlib.suppress(Exception):
                        result = future.result(timeout=_CANCEL_GRACE)
                        lines.add(result["attempt"], 0, result["lines"])
                future.cancel()
                return ProcessResult(None, outcome, duration=time.monotonic() - started)
        try:
            result = future.result()
        except Exception as exc:  # KilledWorker, a lost scheduler, ...
            return ProcessResult(None, "error",
                                 error=f"the Dask task failed: {type(exc).__name__}: {exc}",
                                 duration=time.monotonic() - started)
        lines.take(inbox)
        lines.add(result["attempt"], 0, result["lines"])  # those that did not come live
        last_stderr = None
        for stream, line in result["lines"]:
            if stream == "stderr":
                last_stderr = line
        for rel, content in result["results"].items():
            target = results_dir.joinpath(*rel.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        return ProcessResult(
            exit_code=result["exit_code"],
            outcome=result["outcome"],
            last_stderr=last_stderr,
            pid=result.get("pid"),
            duration=time.monotonic() - started,
        )
