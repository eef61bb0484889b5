"""The job state machine: validates and runs jobs, one thread per running job.

The runner turns `pipeline.run_pipeline`'s observer callbacks into store rows (job state,
tasks, logs) and broker events, and finishes every run in exactly one terminal state:
COMPLETE with results stored, or FAILED with an ``errorMessage``. State changes never go
backwards and never leave a terminal state, so a late callback after an abort is harmless.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bytenite_nb import wire
from bytenite_nb.server.config import ServerConfig
from bytenite_nb.server.service.broker import Broker
from bytenite_nb.server.service.logcap import LogCaps
from bytenite_nb.server.storage import user_cache as usercache
from bytenite_nb.server.storage.records import ResultRow, StoredJob
from bytenite_nb.server.storage.store import Store

if TYPE_CHECKING:
    from bytenite_nb.server.execution.environments import Environments
    from bytenite_nb.server.execution.registry import Registry

log = logging.getLogger(__name__)

JobState = wire.JobState
TaskState = wire.TaskState

ABORTED_MESSAGE = wire.ABORTED_MESSAGE
SHUTDOWN_MESSAGE = (
    "ByteNite Local was stopped while this job was running: create and run the job again"
)
RESTARTED_MESSAGE = (
    "ByteNite Local restarted while this job was running (it was in {state}); "
    "its run was lost: create and run the job again"
)


def now_text() -> str:
    """The current time as ByteNite writes timestamps (`wire.format_timestamp` of now,
    without building a datetime: it is called for every state change and log line)."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def seconds_between(start: str | None, end: str | None) -> int:
    """Whole seconds from ``start`` to ``end`` (RFC 3339), 0 if either is missing."""
    a, b = wire.parse_timestamp(start), wire.parse_timestamp(end)
    if a is None or b is None:
        return 0
    return max(0, round((b - a).total_seconds()))


class Jobs:
    """Job state changes shared by the API routes and the runner: persist, then publish."""

    def __init__(self, store: Store, broker: Broker) -> None:
        self.store = store
        self.broker = broker

    def transition(self, job_id: str, state: JobState, *, error: str | None = None,
                   extra: Callable[[StoredJob], None] | None = None) -> StoredJob | None:
        """Move a job forward to ``state``; ignored if that would go backwards or leave a
        terminal state. Returns the job if it changed, else None."""
        changed: dict[str, Any] = {}

        def change(job: StoredJob) -> StoredJob | None:
            current = JobState.parse(job["state"])
            if current.is_terminal:
                return None
            order = wire.JOB_STATE_ORDER
            if state is not JobState.FAILED and order.index(state) <= order.index(current):
                return None
            stamp = now_text()
            job["state"] = state.value
            job.setdefault("stateTimestamps", {})[state.value] = stamp
            if state is JobState.STARTED:
                job["startedAt"] = job.get("startedAt") or stamp
            if state.is_terminal:
                job["endedAt"] = stamp
                job["duration"] = seconds_between(job.get("startedAt"), stamp)
            if error is not None:
                job["errorMessage"] = error
            if extra is not None:
                extra(job)
            changed["previous"] = current.value
            return job

        job = self.store.update_job(job_id, change)
        if job is None or not changed:
            return None
        self.publish_state(job, changed["previous"])
        return job

    def publish_state(self, job: StoredJob, previous: str | None) -> None:
        """Emit ``job.state`` for ``job`` as stored."""
        self.broker.publish(wire.EVENT_JOB_STATE, job["id"], {
            "jobId": job["id"],
            "state": job["state"],
            "previousState": previous,
            "timestamp": (job.get("stateTimestamps") or {}).get(job["state"]) or now_text(),
            "numChunks": wire.int64_out(job.get("numChunks") or 0),
            "errorMessage": job.get("errorMessage") or "",
        })


class _Observer:
    """`pipeline.PipelineObserver` for one job: store rows + events."""

    def __init__(self, runner: Runner, job_id: str) -> None:
        self._runner = runner
        self._jobs = runner.jobs
        self._store = runner.store
        self._job_id = job_id
        #: When each running task's current attempt started (``time.monotonic()``).
        self._started: dict[int, float] = {}

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """The calls made in the block stored in one transaction (see `Broker.batch`)."""
        return self._runner.broker.batch()

    def stage(self, state: JobState) -> None:
        self._jobs.transition(self._job_id, JobState.parse(state))

    def chunks(self, count: int) -> None:
        def change(job: StoredJob) -> StoredJob:
            job["numChunks"] = int(count)
            return job

        self._store.update_job(self._job_id, change)
        self._store.add_queued_tasks(self._job_id, int(count))

    def task(self, chunk: int, state: TaskState, attempt: int, *,
             exit_code: int | None = None, error: str | None = None) -> None:
        state = TaskState.parse(state)
        stamp = now_text()
        fields: dict[str, Any] = {"state": state.value}
        if state is TaskState.RUNNING:
            # `attempts` counts attempts that really started: a task queued, or cancelled
            # before it ran, has made none (the pipeline numbers the attempt it would make).
            fields.update(attempts=int(attempt), started_at=stamp,
                          started_mono=time.monotonic(), ended_at=None,
                          duration=None, exit_code=None, error_message=None)
            self._started[chunk] = fields["started_mono"]
        if state.is_terminal or state is TaskState.RETRYING:
            started = self._started.pop(chunk, None)
            fields["ended_at"] = stamp
            if started is not None:
                fields["duration"] = round(time.monotonic() - started, 6)
        if exit_code is not None:
            fields["exit_code"] = int(exit_code)
        if error is not None:
            fields["error_message"] = error
        # The row and its event in one transaction (one commit per state change).
        self._runner.broker.publish_with(
            lambda: self._store.upsert_task(self._job_id, chunk, **fields),
            wire.EVENT_TASK_STATE, self._job_id, lambda row: {
                "jobId": self._job_id,
                "taskId": wire.task_id(chunk),
                "chunkNumber": chunk,
                "state": row.state,
                "attempt": row.attempts,
                "timestamp": stamp,
                "exitCode": row.exit_code,
                "errorMessage": row.error_message or "",
            })

    def log(self, service: wire.LogService, chunk: int | None, level: wire.LogLevel,
            message: str, container: str) -> None:
        self._runner.add_log(self._job_id, wire.LogService.parse(service), chunk,
                             wire.LogLevel.parse(level), message, container)


class Runner:
    """Starts, aborts and finishes job runs; owns the per-job threads and cancel events."""

    def __init__(self, config: ServerConfig, store: Store, broker: Broker,
                 registry: Registry, executor: Any = None,
                 environments: Environments | None = None) -> None:
        """``executor``: an already connected executor (see `executors.setup.open_executor`)
        that the runner then owns; None = the server's own fork server, started on demand.
        ``environments``: where app environments are built (used unless
        ``config.app_envs`` is off)."""
        from bytenite_nb.server.execution.resources import this_machine
        from bytenite_nb.server.execution.runtime import RuntimeSettings

        self.config = config
        self.environments = environments
        self.machine = this_machine()
        self.runtime = RuntimeSettings(
            environments=environments if config.app_envs else None, machine=self.machine,
            ignore_requirements=config.ignore_requirements,
            memory_limit=config.task_memory_limit)  # type: ignore[arg-type]
        self.store = store
        self.broker = broker
        self.registry = registry
        self.jobs = Jobs(store, broker)
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._cancels: dict[str, threading.Event] = {}
        self._closing = False
        self._pool: Any = executor
        #: When (``time.monotonic()``) the last job run ended; None before the first one.
        self.last_job_end: float | None = None
        #: Each running job's output lines against ``config.max_log_lines``.
        self.log_caps = LogCaps(config.max_log_lines)

    # -- paths ---------------------------------------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        """The job's private folder (scratch space and uploads)."""
        return self.config.data_dir / "jobs" / job_id

    def results_dir(self, job_id: str) -> Path:
        """Where a job's result files are kept for their links."""
        return self.config.data_dir / "results" / job_id

    # -- logs ----------------------------------------------------------------------------------

    def add_log(self, job_id: str, service: wire.LogService, chunk: int | None,
                level: wire.LogLevel, message: str, container: str = "main") -> None:
        """Persist one log line and emit ``job.log``."""
        stamp = now_text()
        self.broker.publish_with(  # the line and its event in one commit
            lambda: self.store.add_log(job_id, service.value, chunk, level.value, message,
                                       container, stamp),
            wire.EVENT_JOB_LOG, job_id, lambda _: {
                "jobId": job_id,
                "service": service.value,
                "taskId": wire.task_id(chunk) if chunk is not None else "",
                "level": level.value,
                "log": message,
                "container": container,
                "timestamp": stamp,
            })
        if self.log_caps.counted(job_id):
            self.trim_logs(job_id)

    def trim_logs(self, job_id: str) -> None:
        """Drop the job's lines past ``max_log_lines`` (its first and last half stay)."""
        self.log_caps.trim(self.store, job_id)

    # -- lifecycle -----------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Fail the jobs a previous server left running and remove the scratch folders its
        runs left (called once at start-up, before any job runs)."""
        running = [s.value for s in JobState if s.is_running]
        failed = []
        for job_id in self.store.job_ids_in_states(running):
            job = self.store.get_job(job_id)
            if job is None:
                continue
            message = RESTARTED_MESSAGE.format(state=job["state"])
            self.cancel_open_tasks(job_id)
            if self.jobs.transition(job_id, JobState.FAILED, error=message):
                failed.append(job_id)
        # Nothing runs yet, so every jobs/<id>/work is what a run cut short (a crash, a
        # SIGKILL) left behind; a draft's upload folder beside it stays.
        for scratch in (self.config.data_dir / "jobs").glob("*/work"):
            shutil.rmtree(scratch, ignore_errors=True)
        return failed

    def purge_expired_results(self) -> int:
        """Delete result files whose links expired (the links keep answering 410)."""
        removed = 0
        for row in self.store.expired_results(time.time()):
            path = Path(row.path)
            if path.is_file():
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def start(self, job_id: str) -> None:
        """Run a job (already moved to STARTED) on its own thread."""
        cancel = threading.Event()
        thread = threading.Thread(target=self._run, args=(job_id, cancel),
                                  name=f"bytenite-job-{job_id}", daemon=True)
        with self._lock:
            if self._closing:
                raise RuntimeError("ByteNite Local is shutting down")
            self._threads[job_id] = thread
            self._cancels[job_id] = cancel
        try:
            thread.start()
        except BaseException:  # e.g. no more threads: the job must not count as running
            with self._lock:
                self._threads.pop(job_id, None)
                self._cancels.pop(job_id, None)
            raise

    def running_jobs(self) -> int:
        """How many job runs are in progress (started and not yet finished)."""
        with self._lock:
            return len(self._threads)

    def is_running(self, job_id: str) -> bool:
        """True while the job's thread is alive."""
        with self._lock:
            thread = self._threads.get(job_id)
        return thread is not None and thread.is_alive()

    def abort(self, job_id: str, message: str = ABORTED_MESSAGE, wait: float = 10.0) -> None:
        """Fail a running job now and tell its pipeline to stop (waits up to ``wait`` s)."""
        self.jobs.transition(job_id, JobState.FAILED, error=message)
        with self._lock:
            cancel = self._cancels.get(job_id)
            thread = self._threads.get(job_id)
        if cancel is not None:
            cancel.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(wait)

    def shutdown(self, wait: float = 10.0) -> None:
        """Abort every running job (server stopping) and wait for their threads."""
        with self._lock:
            self._closing = True
            ids = list(self._threads)
        deadline = time.monotonic() + wait
        for job_id in ids:
            if self.is_running(job_id):
                self.jobs.transition(job_id, JobState.FAILED, error=SHUTDOWN_MESSAGE)
            with self._lock:
                cancel = self._cancels.get(job_id)
            if cancel is not None:
                cancel.set()
        for job_id in ids:
            with self._lock:
                thread = self._threads.get(job_id)
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        from bytenite_nb.server.execution.executors.setup import close_executor

        with self._lock:
            pool, self._pool = self._pool, None
        close_executor(pool)  # a Dask executor: its client and the server's engine executor

    # -- the run -------------------------------------------------------------------------------

    def _spec(self, job: StoredJob, workdir: Path) -> Any:
        from bytenite_nb.server.execution import pipeline

        template = self.registry.template(job["templateId"])
        partitioner, app, assembler = self.registry.resolve_template(template)
        config = job.get("config") or {}
        upload = self.store.upload_for_job(job["id"])
        source = job.get("dataSource") or wire.bypass()
        return pipeline.PipelineSpec(
            job_id=job["id"],
            workdir=workdir,
            data_source=source,
            partitioner=partitioner,
            app=app,
            assembler=assembler,
            params={k: (job.get("params") or {}).get(k) or {}
                    for k in ("partitioner", "app", "assembler")},
            task_timeout=float(config["taskTimeout"]) if config.get("taskTimeout") else None,
            job_timeout=float(config["jobTimeout"]) if config.get("jobTimeout") else None,
            max_task_retries=int(config.get("maxTaskRetries") or 0),
            uploaded_file=Path(upload.path) if upload and upload.completed else None,
            workers=self.config.workers,
            max_download_bytes=self.config.max_download_bytes,
            deny_private_sources=self.config.deny_private_sources,
            user_cache_dir=usercache.user_dir(self.config.data_dir),
            shared_cache_dir=usercache.shared_dir(self.config.data_dir),
            # As they are when the job starts: a secret saved or deleted later is not seen.
            secrets=tuple(row.record(with_key=True) for row in self.store.secrets()),
            runtime=self.runtime,
            pass_env=self.config.pass_env,
        )

    @property
    def executor(self) -> Any:
        """The executor jobs run on (None until the first job, for the local one)."""
        return self._pool

    def _executor(self) -> Any:
        """This server's own worker pool, so stopping the server stops its processes too
        (or the Dask executor given at start-up, which sends app tasks to the cluster)."""
        from bytenite_nb.server.execution.executors import ForkServerExecutor

        with self._lock:
            if self._closing:
                raise RuntimeError("ByteNite Local is shutting down")
            if self._pool is None:
                self._pool = ForkServerExecutor(
                    self.config.workers, preload=self.config.preload,
                    gpus=[gpu.index for gpu in self.machine.gpus])
            return self._pool

    def _run(self, job_id: str, cancel: threading.Event) -> None:
        from bytenite_nb.server.execution import pipeline

        workdir = self.job_dir(job_id) / "work"
        try:
            job = self.store.get_job(job_id)
            if job is None or JobState.parse(job["state"]).is_terminal:
                return  # deleted or aborted before this thread got going
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir(parents=True, exist_ok=True)
            spec = self._spec(job, workdir)
            output = pipeline.run_pipeline(spec, _Observer(self, job_id), cancel,
                                           executor=self._executor())
            if cancel.is_set():
                raise pipeline.PipelineCancelled(ABORTED_MESSAGE)
            self.jobs.transition(job_id, JobState.DOWNLOADING)
            self._store_results(job_id, Path(output))
            self.jobs.transition(job_id, JobState.COMPLETE)
        except Exception as exc:
            self._fail(job_id, exc, pipeline_module=pipeline)
        finally:
            self.cancel_open_tasks(job_id)  # safety net: no task stays RUNNING forever
            self.log_caps.trim(self.store, job_id, final=True)
            shutil.rmtree(workdir, ignore_errors=True)
            if self.store.get_job(job_id) is None:
                self._remove_deleted(job_id)
            with self._lock:
                # (A job deleted while it ran may have been created and started again under
                # the same id since: its new run's entries stay.)
                if self._threads.get(job_id) is threading.current_thread():
                    self._threads.pop(job_id, None)
                    self._cancels.pop(job_id, None)
                self.last_job_end = time.monotonic()

    def _remove_deleted(self, job_id: str) -> None:
        """Remove what the run of a job deleted while it ran wrote after the delete (a
        delete does not wait for the run to wind down): rows of log lines and tasks, its
        folder and results."""
        self.store.delete_job(job_id)
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        shutil.rmtree(self.results_dir(job_id), ignore_errors=True)

    def cancel_open_tasks(self, job_id: str) -> None:
        """Mark the job's unfinished tasks CANCELLED, with their ``task.state`` events."""
        stamp = now_text()
        for chunk in self.store.cancel_open_tasks(job_id, TaskState.CANCELLED.value, stamp):
            row = self.store.get_task(job_id, chunk)
            self.broker.publish(wire.EVENT_TASK_STATE, job_id, {
                "jobId": job_id, "taskId": wire.task_id(chunk), "chunkNumber": chunk,
                "state": TaskState.CANCELLED.value, "attempt": row.attempts if row else 0,
                "timestamp": stamp, "exitCode": None, "errorMessage": "",
            })

    def _fail(self, job_id: str, exc: Exception, *, pipeline_module: Any) -> None:
        if isinstance(exc, pipeline_module.PipelineCancelled):
            message = ABORTED_MESSAGE
        elif isinstance(exc, pipeline_module.PipelineTimeout):
            message = str(exc) or "Job exceeded its jobTimeout"
        elif isinstance(exc, pipeline_module.PipelineError):
            message = str(exc) or type(exc).__name__
        elif type(exc).__name__ == "RegistryError":
            message = f"Cannot run the job: {exc}"
        else:
            log.exception("job %s failed with an internal error", job_id)
            message = f"ByteNite Local internal error: {type(exc).__name__}: {exc}"
        # Tasks end before their job does, so the events stream tells it in that order.
        self.cancel_open_tasks(job_id)
        failed = self.jobs.transition(job_id, JobState.FAILED, error=message) is not None
        if failed and not isinstance(exc, (pipeline_module.PipelineError,
                                           pipeline_module.PipelineCancelled,
                                           pipeline_module.PipelineTimeout)):
            # The pipeline logs its own failures; make ours visible in the logs too.
            self.add_log(job_id, wire.LogService.PARTITIONER, None, wire.LogLevel.ERROR,
                         message, wire.RUNTIME_LOG_CONTAINER)

    def _store_results(self, job_id: str, output: Path) -> None:
        job = self.store.get_job(job_id) or {}
        destination = (job.get("dataDestination") or {}).get("dataSourceDescriptor") or "bucket"
        if destination != wire.Descriptor.BUCKET.value or not output.is_dir():
            return  # bypass: the job's output is discarded, as ByteNite does
        target = self.results_dir(job_id)
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            # One rename for every result (the job's folder and its results are both in the
            # data dir), rather than one per file; files only from a real folder.
            if output.is_symlink():
                raise OSError("OUTPUT_DIR was replaced by a symbolic link")
            os.rename(output, target)
        except OSError:
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted(p for p in output.rglob("*") if p.is_file()):
                dest = target / path.relative_to(output)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(path), dest)
        expires = time.time() + self.config.result_link_ttl
        rows = []
        for dest in sorted(p for p in target.rglob("*") if p.is_file()):
            rows.append(ResultRow(token=secrets.token_urlsafe(24), job_id=job_id,
                                  name=dest.relative_to(target).as_posix(), path=str(dest),
                                  size=dest.stat().st_size, expires_at=expires))
        self.store.add_results(rows)
