"""Running one job: data source → partitioner → one task per chunk, in parallel → assembler.

No knowledge of HTTP or SQLite: the runner gives a :class:`PipelineSpec`, receives progress on
a :class:`PipelineObserver`, and gets the ``OUTPUT_DIR`` back (or an exception).

Why one module of more than 500 lines: a run's stages share one state (the `_Job`: its folders,
observer, cancel event, deadlines and executor), and each stage's failure decides what the
next may do; split apart, the stages would hand that state around. What needs no such state
lives beside it: the files between stages in `chunks`, data sources in `datasources`,
secrets in `secrets`.

The runtime contract (ByteNite's, which official app folders rely on), per stage:

* partitioner: ``SOURCE_DIR``, ``CHUNKS_DIR``, ``PARTITIONER_PARAMS``;
* task: ``TASK_DIR`` (holding ``data.bin``), ``TASK_RESULTS_DIR``, ``APP_PARAMS``,
  ``CHUNK_NUMBER``;
* assembler: ``TASK_RESULTS_DIR`` (every task's results, flat), ``OUTPUT_DIR``,
  ``ASSEMBLER_PARAMS``;
* all: ``SHARED_CACHE_DIR`` (read-only for the processes), ``USER_CACHE_DIR``, ``SECRETS``.
  JSON params are always set.
* secrets: ``SECRETS`` is the JSON list of the user's unexpired secrets (``spec.secrets``);
  an engine whose manifest lists ids in ``platform_config.secrets`` also gets ``<id>`` (type
  ``other``) or ``<id>_ACCESS_KEY`` and ``<id>_SECRET_KEY`` per id. A listed id with no usable
  secret fails the run before anything is fetched or run. Secret keys are masked (``***``) in
  every output line and failure message the pipeline reports (see `secrets`).

How each engine runs (its app environment, interpreter, slots and GPUs, the checks of its
``device_requirements``) is decided once per job, before the data source is fetched, by
`runtime.plan_runtimes`; a failed process's output is read by `runtime.Diagnosis`.

Chunks and results: every file the partitioner leaves in ``CHUNKS_DIR`` is one task, and the
tasks' results are gathered for the assembler without losing a file; see `chunks`.

Layout of ``workdir``: ``source/``, ``chunks/``, ``tasks/<N>/`` (task N's ``TASK_DIR`` and
cwd), ``task-results/<N>/`` (its ``TASK_RESULTS_DIR``), ``results/`` (the assembler's
input), ``output/`` (returned). Two folders per task, not more: on a journaling filesystem
every ``mkdir`` costs a fraction of a millisecond, which adds up over thousands of tasks.

Logs: each output line is one ``observer.log`` call as soon as it is written: stdout → INFO,
stderr → ERROR, unless the line starts with a level name the way ``logging`` prints them
(``WARNING:root:…``, ``[INFO] …``, ``2024-01-01 12:00:00,000 - x - DEBUG - …``). Lines from the
app have container ``main``; ByteNite Local's own lines (retries, timeouts, an executor's notes
such as a Dask task run again after its worker was lost) ``bytenite-local``.

Task attempts are numbered from 1. A task reports ``QUEUED`` (attempt 1) once chunks are
known, ``RUNNING`` when an attempt starts, ``RETRYING`` when an attempt failed and another
follows, then ``COMPLETE``, ``FAILED`` or ``CANCELLED`` (stopped by an abort, the job
timeout, or another task's final failure).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bytenite_nb import wire
from bytenite_nb.server.execution import datasources
from bytenite_nb.server.execution import secrets as usersecrets
from bytenite_nb.server.execution.chunks import chunk_files, flatten_results, link_or_copy
from bytenite_nb.server.execution.executors import (
    NOTE_STREAM,
    Executor,
    ProcessResult,
    ProcessSpec,
    base_environment,
    shared_executor,
)
from bytenite_nb.server.execution.registry import Engine
from bytenite_nb.server.execution.runtime import (
    Diagnosis,
    PlanCancelled,
    PlanError,
    Runtime,
    RuntimeSettings,
    plan_runtimes,
)
from bytenite_nb.wire import JobState, LogLevel, LogService, TaskState

__all__ = [
    "PipelineCancelled",
    "PipelineError",
    "PipelineException",
    "PipelineObserver",
    "PipelineSpec",
    "PipelineTimeout",
    "chunk_files",
    "flatten_results",
    "parse_level",
    "run_pipeline",
]

log = logging.getLogger(__name__)

APP_CONTAINER = wire.APP_LOG_CONTAINER
RUNTIME_CONTAINER = wire.RUNTIME_LOG_CONTAINER
_POLL = 0.05
#: Observer calls wrapped in one `PipelineObserver` batch at most (a batch holds the
#: observer, and a server's store, for its duration).
_BATCH = 500


class PipelineException(Exception):
    """Base of the three ways a pipeline ends without output."""


class PipelineError(PipelineException):
    """The job failed; the message says where and why (for ``errorMessage``)."""


class PipelineCancelled(PipelineException):
    """The ``cancel`` event was set; all work was stopped."""


class PipelineTimeout(PipelineException):
    """The job ran past its ``jobTimeout``; all work was stopped."""


@dataclass(frozen=True)
class PipelineSpec:
    """Everything one run needs. Fields after ``uploaded_file`` are ByteNite Local extras."""

    job_id: str
    workdir: Path
    data_source: dict[str, Any] | None
    partitioner: Engine
    app: Engine
    assembler: Engine
    params: dict[str, Any]
    task_timeout: float | None
    job_timeout: float | None
    max_task_retries: int = 0
    uploaded_file: Path | None = None
    #: Worker slots when no executor is passed to run_pipeline (default: os.cpu_count()).
    workers: int | None = None
    shared_cache_dir: Path | None = None  # default: workdir/cache/shared
    user_cache_dir: Path | None = None  # default: workdir/cache/user
    #: Every secret of the user, with its key (`usersecrets`); never in the repr.
    secrets: Sequence[dict[str, Any]] = field(default_factory=tuple, repr=False)
    max_download_bytes: int | None = None
    #: App environments, requirement checks, the memory limit (see `runtime`); the default
    #: runs every Python entrypoint in the server's Python, as ``--no-app-envs``.
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    #: Names (or globs) of more host variables every process gets (``--pass-env``).
    pass_env: tuple[str, ...] = ()
    #: Fetch a ``url`` source from public addresses only (see `datasources`).
    deny_private_sources: bool = False


class PipelineObserver(Protocol):
    """Progress callbacks. The pipeline serialises calls (one at a time, from any thread).

    An observer may also have ``batch()``, a context manager: the pipeline wraps runs of many
    calls in a row (every task's ``QUEUED``, the assembler's notes) in it, so an observer that
    stores them can do so in one transaction. Calls still come one by one, in order.
    """

    def stage(self, state: JobState) -> None: ...

    def chunks(self, count: int) -> None: ...

    def task(
        self,
        chunk: int,
        state: TaskState,
        attempt: int,
        *,
        exit_code: int | None = None,
        error: str | None = None,
    ) -> None: ...

    def log(
        self,
        service: LogService,
        chunk: int | None,
        level: LogLevel,
        message: str,
        container: str,
    ) -> None: ...


class _Serialised:
    """Forwards observer calls one at a time; an observer bug never breaks the job."""

    def __init__(self, observer: PipelineObserver) -> None:
        self._observer = observer
        self._lock = threading.RLock()  # (re-entrant: held by `batch` around its calls)

    @contextlib.contextmanager
    def batch(self) -> Any:
        """The calls made in the block, in the observer's ``batch()`` if it has one (other
        threads' calls wait until the block ends); its failure never breaks the job."""
        with self._lock:
            opener = getattr(self._observer, "batch", None)
            batch = None
            if opener is not None:
                try:
                    batch = opener()
                    batch.__enter__()
                except Exception:
                    log.exception("pipeline observer batch() failed")
                    batch = None
            try:
                yield
            finally:
                if batch is not None:
                    try:
                        batch.__exit__(None, None, None)
                    except Exception:
                        log.exception("pipeline observer batch() failed")

    def _call(self, name: str, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            try:
                getattr(self._observer, name)(*args, **kwargs)
            except Exception:
                log.exception("pipeline observer %s() failed", name)

    def stage(self, state: JobState) -> None:
        self._call("stage", state)

    def chunks(self, count: int) -> None:
        self._call("chunks", count)

    def task(self, chunk: int, state: TaskState, attempt: int, *, exit_code: int | None = None,
             error: str | None = None) -> None:
        self._call("task", chunk, state, attempt, exit_code=exit_code, error=error)

    def log(self, service: LogService, chunk: int | None, level: LogLevel, message: str,
            container: str) -> None:
        self._call("log", service, chunk, level, message, container)


# --------------------------------------------------------------------------------------------
# log levels
# --------------------------------------------------------------------------------------------

_LEVELS = {
    "TRACE": LogLevel.TRACE, "DEBUG": LogLevel.DEBUG, "INFO": LogLevel.INFO,
    "WARN": LogLevel.WARN, "WARNING": LogLevel.WARN, "ERROR": LogLevel.ERROR,
    "CRITICAL": LogLevel.FATAL, "FATAL": LogLevel.FATAL, "PANIC": LogLevel.PANIC,
}
_LEVEL_NAMES = "|".join(sorted(_LEVELS, key=len, reverse=True))
_LEVEL_PREFIX = re.compile(rf"^\s*\[?({_LEVEL_NAMES})\]?(?::|\s+-\s|\s)")
_LEVEL_AFTER_TIME = re.compile(
    rf"^\d{{4}}-\d{{2}}-\d{{2}}[ T][\d:.,]+\S*\s+(?:-\s+)?(?:\S+\s+-\s+)?\[?({_LEVEL_NAMES})\]?\b"
)


def parse_level(line: str, stream: str) -> LogLevel:
    """The level of an output line: a recognised prefix wins; else stdout INFO, stderr ERROR."""
    match = _LEVEL_PREFIX.match(line) or _LEVEL_AFTER_TIME.match(line)
    if match:
        return _LEVELS[match.group(1)]
    return LogLevel.INFO if stream == "stdout" else LogLevel.ERROR


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


def _params_json(params: dict[str, Any], section: str) -> str:
    value = (params or {}).get(section)
    return json.dumps({} if value is None else value)


class _Job:
    """State of one :func:`run_pipeline` call."""

    def __init__(self, spec: PipelineSpec, observer: PipelineObserver,
                 cancel: threading.Event, executor: Executor) -> None:
        self.spec = spec
        self.obs = _Serialised(observer)
        self.cancel = cancel
        self.executor = executor
        #: Set on cancel, job timeout or a task's final failure: everything stops.
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.deadline = None if not spec.job_timeout else self.started + float(spec.job_timeout)
        self.failure: str | None = None
        self.failure_lock = threading.Lock()
        w = spec.workdir
        self.source_dir, self.chunks_dir = w / "source", w / "chunks"
        self.tasks_dir, self.results_dir, self.output_dir = w / "tasks", w / "results", w / "output"
        self.task_results_dir = w / "task-results"
        self.shared_cache = spec.shared_cache_dir or w / "cache" / "shared"
        self.user_cache = spec.user_cache_dir or w / "cache" / "user"
        self.secrets = usersecrets.JobSecrets(spec.secrets)
        #: Per-secret variables of each engine that runs, by kind (`resolve_secrets`).
        self.secret_env: dict[str, dict[str, str]] = {}
        self.base_env = base_environment(spec.pass_env)
        #: How each engine runs, by kind (`plan`).
        self.runtimes: dict[str, Runtime] = {}
        self.base_env.update(
            SHARED_CACHE_DIR=str(self.shared_cache),
            USER_CACHE_DIR=str(self.user_cache),
            SECRETS=self.secrets.secrets_json(),
        )

    # -- helpers --------------------------------------------------------------------------

    def note(self, service: LogService, chunk: int | None, level: LogLevel, message: str) -> None:
        self.obs.log(service, chunk, level, message, RUNTIME_CONTAINER)

    def resolve_secrets(self) -> None:
        """The per-secret variables of every engine that runs; a listed secret that is
        missing, expired or ambiguous fails the run here, before anything is fetched."""
        problems: list[tuple[LogService, str]] = []
        stages = ((self.spec.partitioner, LogService.PARTITIONER),
                  (self.spec.app, LogService.TASKRUNNER),
                  (self.spec.assembler, LogService.ASSEMBLER))
        for engine, service in stages:
            if engine.builtin:
                continue
            env, missing = self.secrets.env_for(engine.kind, engine.tag, engine.secret_ids)
            self.secret_env[engine.kind] = env
            problems += [(service, text) for text in missing]
        for service, text in problems:
            self.note(service, None, LogLevel.ERROR, text)
        if problems:
            raise PipelineError("; ".join(text for _, text in problems))

    def plan(self) -> None:
        """Decide how each engine runs (and build its environment); a problem fails the run
        here, before anything is fetched."""
        services = {"partitioner": LogService.PARTITIONER, "app": LogService.TASKRUNNER,
                    "assembler": LogService.ASSEMBLER}
        levels = {"INFO": LogLevel.INFO, "WARN": LogLevel.WARN, "ERROR": LogLevel.ERROR}

        def note(engine: Engine, level: str, message: str) -> None:
            self.note(services[engine.kind], None, levels[level], message)

        spec = self.spec
        try:
            self.runtimes = plan_runtimes(
                [spec.partitioner, spec.app, spec.assembler], spec.runtime,
                workers=self.executor.workers, path=self.base_env.get("PATH", os.defpath),
                note=note, cancel=self.stop, deadline=self.deadline,
                # An executor with an engine executor (Dask) runs app tasks on its workers.
                elsewhere=frozenset({"app"}) if getattr(self.executor, "engine_executor", None)
                else frozenset())
        except PlanError as exc:
            raise PipelineError(str(exc)) from None
        except PlanCancelled:
            self.check()
            raise PipelineCancelled("the job was aborted") from None

    def check(self) -> None:
        """Raise if the job was cancelled or ran out of time."""
        if self.cancel.is_set():
            self.stop.set()
            raise PipelineCancelled("the job was aborted")
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.stop.set()
            raise PipelineTimeout(self.timeout_message())

    def stop_reason(self) -> str:
        """Why the tasks still queued or running are cancelled (for their errorMessage)."""
        with self.failure_lock:
            failure = self.failure
        if failure:
            return f"cancelled: {failure}"
        if self.deadline is not None and time.monotonic() > self.deadline:
            return f"cancelled: {self.timeout_message()}"
        return "cancelled: the job was aborted"

    def timeout_message(self) -> str:
        return f"the job exceeded its jobTimeout of {_seconds(self.spec.job_timeout)}"

    def run_engine(self, engine: Engine, service: LogService, env: dict[str, str],
                   cwd: Path, chunk: int | None = None,
                   timeout: float | None = None) -> ProcessResult:
        assert engine.entrypoint_path is not None and engine.app_dir is not None
        secret_env = self.secret_env.get(engine.kind, {})
        runtime = self.runtimes.get(engine.kind) or Runtime()
        full_env = dict(self.base_env)
        full_env.update(runtime.env)
        if runtime.path_first:
            full_env["PATH"] = os.pathsep.join(filter(None, [runtime.path_first,
                                                             full_env.get("PATH")]))
        full_env.update(secret_env)
        full_env.update(env)  # the contract's variables win over a secret's
        settings = self.spec.runtime
        mask = self.secrets.mask
        spec = ProcessSpec(script=engine.entrypoint_path, cwd=cwd, env=full_env,
                           path0=engine.app_dir, secret_names=tuple(secret_env),
                           python=runtime.python, command=runtime.command, cpus=runtime.cpus,
                           gpus=runtime.gpus, memory_limit=settings.memory_limit,
                           readonly=(str(self.shared_cache),),
                           mask=mask, mask_span=self.secrets.span)
        diagnosis = Diagnosis(engine, runtime, envs_enabled=settings.environments is not None,
                              memory_limit=settings.memory_limit)

        def on_output(stream: str, line: str) -> None:
            line = mask(line)
            if stream == NOTE_STREAM:  # the executor's own line, not the app's
                self.note(service, chunk, LogLevel.WARN, line)
                return
            diagnosis.feed(line)
            self.obs.log(service, chunk, parse_level(line, stream), line, APP_CONTAINER)

        result = self.executor.run(spec, on_output, cancel=self.stop, timeout=timeout,
                                   deadline=self.deadline)
        if result.last_stderr:
            result.last_stderr = mask(result.last_stderr)
        if result.error:
            result.error = mask(result.error)
        if not result.ok and result.outcome == "exited":
            result.diagnosis = diagnosis.describe(result.exit_code)
        return result

    def stage_failure(self, what: str, result: ProcessResult) -> PipelineException:
        if result.outcome == "cancelled":
            return PipelineCancelled("the job was aborted")
        if result.outcome == "deadline":
            return PipelineTimeout(self.timeout_message())
        return PipelineError(f"the {what} {_describe(result)}")

    # -- stages ---------------------------------------------------------------------------

    def fetch(self) -> None:
        self.obs.stage(JobState.UPLOADING)
        # A re-used workdir must not leak an earlier run's chunks or results into this one.
        for d in (self.source_dir, self.chunks_dir, self.tasks_dir, self.task_results_dir,
                  self.results_dir, self.output_dir):
            shutil.rmtree(d, ignore_errors=True)
        for d in (self.source_dir, self.chunks_dir, self.tasks_dir, self.task_results_dir,
                  self.shared_cache, self.user_cache):
            d.mkdir(parents=True, exist_ok=True)
        try:
            datasources.fetch_source(
                self.spec.data_source, self.source_dir, uploaded_file=self.spec.uploaded_file,
                max_bytes=self.spec.max_download_bytes, cancel=self.cancel,
                deadline=self.deadline, deny_private=self.spec.deny_private_sources,
            )
        except datasources.DataSourceError as exc:
            self.check()
            raise PipelineError(f"data source: {exc}") from None

    def partition(self) -> list[Path]:
        self.check()
        self.obs.stage(JobState.PARTITIONING)
        engine = self.spec.partitioner
        if engine.builtin:
            sources = sorted(p for p in self.source_dir.iterdir() if p.is_file())
            for i, src in enumerate(sources):
                link_or_copy(src, self.chunks_dir / f"data_{i}.bin")
        else:
            result = self.run_engine(
                engine, LogService.PARTITIONER,
                {"SOURCE_DIR": str(self.source_dir), "CHUNKS_DIR": str(self.chunks_dir),
                 "PARTITIONER_PARAMS": _params_json(self.spec.params, "partitioner")},
                cwd=self.spec.workdir,
            )
            self.check()
            if not result.ok:
                raise self.stage_failure(f"partitioner {engine.tag}", result)
        chunks = chunk_files(self.chunks_dir)
        with os.scandir(self.chunks_dir) as it:
            folders = sorted(entry.name for entry in it if entry.is_dir())
        for name in folders:  # said out loud: a silently ignored folder is a lost chunk
            self.note(LogService.PARTITIONER, None, LogLevel.WARN,
                      f"CHUNKS_DIR/{name} is a folder and was ignored: "
                      "only files in CHUNKS_DIR become tasks")
        if not chunks:
            raise PipelineError(f"the partitioner {engine.tag} wrote no chunks to CHUNKS_DIR")
        self.obs.chunks(len(chunks))
        self.obs.stage(JobState.PARTITIONED)
        return chunks

    def run_tasks(self, chunks: list[Path]) -> list[tuple[int, Path]]:
        for start in range(0, len(chunks), _BATCH):
            with self.obs.batch():
                for n in range(start, min(start + _BATCH, len(chunks))):
                    self.obs.task(n, TaskState.QUEUED, 1)
        results = [(n, self.task_results_dir / str(n)) for n in range(len(chunks))]
        # One thread per worker slot, each taking the next chunk until none is left: no
        # Future per task, and the wait below does not re-scan every pending task each time
        # it wakes up (concurrent.futures.wait over N futures is O(N) per call). One more
        # thread makes the next tasks' folders meanwhile, so that this filesystem work is
        # not on each slot's path from one process to the next; it stays a few tasks ahead.
        nthreads = max(1, min(self.executor.workers, len(chunks)))
        # (chunk, its file, whether its folders are made); a failure to make them is raised
        # in run_tasks as it was when the task made its own.
        ready: queue.Queue[tuple[int, Path, bool] | None] = queue.Queue(maxsize=2 * nthreads)
        bugs: list[BaseException] = []

        def prepare_ahead() -> None:
            try:
                for n, path in enumerate(chunks):
                    prepared = False
                    if not self.stop.is_set():  # (still queued: its task reports CANCELLED)
                        try:
                            self.prepare_task(n, path)
                            prepared = True
                        except BaseException as exc:
                            bugs.append(exc)
                            self.stop.set()
                    ready.put((n, path, prepared))
            finally:
                for _ in range(nthreads):
                    ready.put(None)

        def work() -> None:
            while True:
                item = ready.get()
                if item is None:
                    return
                try:
                    self.run_task(*item)
                except BaseException as exc:  # a bug in run_task: re-raised below
                    bugs.append(exc)

        threads = [
            threading.Thread(target=work, name=f"bytenite-{self.spec.job_id[:8]}-{i}")
            for i in range(nthreads)
        ]
        threads.append(threading.Thread(target=prepare_ahead,
                                        name=f"bytenite-{self.spec.job_id[:8]}-folders"))
        for thread in threads:
            thread.start()
        for thread in threads:
            while True:
                thread.join(_POLL)
                if not thread.is_alive():
                    break
                if self.cancel.is_set() or (
                    self.deadline is not None and time.monotonic() > self.deadline
                ):
                    self.stop.set()
        if bugs:
            raise bugs[0]
        self.check()
        if self.failure:
            raise PipelineError(self.failure)
        self.obs.stage(JobState.TASKS_COMPLETED)
        return results

    def prepare_task(self, chunk: int, chunk_path: Path) -> None:
        """Task ``chunk``'s TASK_DIR (holding its data.bin) and empty TASK_RESULTS_DIR."""
        task_dir = os.path.join(self.tasks_dir, str(chunk))
        os.mkdir(task_dir)
        os.mkdir(os.path.join(self.task_results_dir, str(chunk)))
        link_or_copy(chunk_path, Path(task_dir, "data.bin"))

    def run_task(self, chunk: int, chunk_path: Path, prepared: bool = False) -> None:
        spec = self.spec
        attempts = max(0, int(spec.max_task_retries or 0)) + 1
        task_dir = self.tasks_dir / str(chunk)
        results_dir = self.task_results_dir / str(chunk)
        for attempt in range(1, attempts + 1):
            if self.stop.is_set():
                self.obs.task(chunk, TaskState.CANCELLED, attempt, error=self.stop_reason())
                return
            if attempt > 1:  # a retry starts from a clean slate, like a new container
                shutil.rmtree(task_dir, ignore_errors=True)
                shutil.rmtree(results_dir, ignore_errors=True)
                prepared = False
            if not prepared:
                self.prepare_task(chunk, chunk_path)
            self.obs.task(chunk, TaskState.RUNNING, attempt)
            if spec.app.builtin:  # not reachable through the registry; kept total
                raise PipelineError("an app cannot be a built-in engine")
            result = self.run_engine(
                spec.app, LogService.TASKRUNNER,
                {"TASK_DIR": str(task_dir), "TASK_RESULTS_DIR": str(results_dir),
                 "APP_PARAMS": _params_json(spec.params, "app"), "CHUNK_NUMBER": str(chunk)},
                cwd=task_dir, chunk=chunk,
                timeout=float(spec.task_timeout) if spec.task_timeout else None,
            )
            if result.ok:
                self.obs.task(chunk, TaskState.COMPLETE, attempt, exit_code=0)
                return
            if result.outcome in ("cancelled", "deadline"):
                # Killed because of the job, not failed: no exit code (it would be the
                # kill's signal), but why it was stopped.
                self.obs.task(chunk, TaskState.CANCELLED, attempt, error=self.stop_reason())
                return
            why = _describe(result, timeout=spec.task_timeout)
            if attempt < attempts:
                self.note(LogService.TASKRUNNER, chunk, LogLevel.WARN,
                          f"attempt {attempt} of {attempts} {why}; retrying")
                self.obs.task(chunk, TaskState.RETRYING, attempt,
                              exit_code=result.exit_code, error=why)
                continue
            self.note(LogService.TASKRUNNER, chunk, LogLevel.ERROR,
                      f"attempt {attempt} of {attempts} {why}")
            self.obs.task(chunk, TaskState.FAILED, attempt, exit_code=result.exit_code, error=why)
            with self.failure_lock:
                if self.failure is None:
                    tries = f" after {attempts} attempts" if attempts > 1 else ""
                    self.failure = f"task for chunk {chunk} {why}{tries}"
            self.stop.set()  # one task failed for good: the job has failed, stop the rest
            return

    def assemble(self, task_results: list[tuple[int, Path]]) -> Path:
        self.check()
        self.obs.stage(JobState.MERGING)

        notes: list[tuple[int, str]] = []

        def flatten(dest: Path) -> None:
            # A note per renamed result, possibly one per task: said in batches once the
            # results are in place.
            try:
                flatten_results(task_results, dest, lambda chunk, text: notes.append(
                    (chunk, text)))
            finally:
                for start in range(0, len(notes), _BATCH):
                    with self.obs.batch():
                        for chunk, text in notes[start:start + _BATCH]:
                            self.note(LogService.ASSEMBLER, chunk, LogLevel.INFO, text)

        engine = self.spec.assembler
        if engine.builtin:
            # The passthrough's output is the flattened results themselves: flattened
            # straight into OUTPUT_DIR, not into results/ and then moved again one by one.
            flatten(self.output_dir)
        else:
            flatten(self.results_dir)
            self.output_dir.mkdir(parents=True, exist_ok=True)
            result = self.run_engine(
                engine, LogService.ASSEMBLER,
                {"TASK_RESULTS_DIR": str(self.results_dir), "OUTPUT_DIR": str(self.output_dir),
                 "ASSEMBLER_PARAMS": _params_json(self.spec.params, "assembler")},
                cwd=self.spec.workdir,
            )
            self.check()
            if not result.ok:
                raise self.stage_failure(f"assembler {engine.tag}", result)
        self.obs.stage(JobState.MERGED)
        return self.output_dir


def _seconds(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:g} s"


def _describe(result: ProcessResult, timeout: float | None = None) -> str:
    """``failed with exit code 1: <last stderr line>`` and friends (what the output plainly
    says went wrong, when it does: a missing module, memory exhausted)."""
    if result.diagnosis and result.outcome == "exited":
        return result.diagnosis
    if result.outcome == "timeout":
        text = f"timed out after {_seconds(timeout)} (taskTimeout) and was killed"
    elif result.outcome == "error":
        text = f"could not run: {result.error}"
    elif result.exit_code is not None and result.exit_code < 0:
        text = f"was killed by signal {-result.exit_code}"
    else:
        text = f"failed with exit code {result.exit_code}"
    if result.last_stderr and result.outcome != "timeout":
        text += f": {result.last_stderr.strip()[:500]}"
    return text


def run_pipeline(
    spec: PipelineSpec,
    observer: PipelineObserver,
    cancel: threading.Event,
    *,
    executor: Executor | None = None,
) -> Path:
    """Run partitioner -> tasks -> assembler. Returns the OUTPUT_DIR (files = job results).

    Raises :class:`PipelineError` (message for ``errorMessage``) on failure,
    :class:`PipelineCancelled` when ``cancel`` was set (all processes are killed within a
    fraction of a second), :class:`PipelineTimeout` past ``job_timeout``. ``executor``
    defaults to the process-wide fork server executor with ``spec.workers`` slots.
    Observer calls are serialised but may come from any thread.
    """
    executor = executor or shared_executor(spec.workers)
    job = _Job(spec, observer, cancel, executor)
    job.resolve_secrets()
    spec.workdir.mkdir(parents=True, exist_ok=True)
    environments = spec.runtime.environments
    # ``stop`` must follow ``cancel`` while a partitioner or assembler runs too.
    linked = threading.Event()

    def link() -> None:
        while not linked.wait(_POLL):
            if cancel.is_set():
                job.stop.set()
                return

    linker = threading.Thread(target=link, name="bytenite-cancel-link", daemon=True)
    linker.start()
    try:
        job.plan()
        used = {r.environment for r in job.runtimes.values() if r.environment}
        with environments.use(used) if environments is not None else contextlib.nullcontext():
            job.fetch()
            chunks = job.partition()
            task_results = job.run_tasks(chunks)
            output = job.assemble(task_results)
            job.check()
        job.obs.stage(JobState.DOWNLOADING)
        return output
    finally:
        linked.set()
        with contextlib.suppress(RuntimeError):
            linker.join()
