"""The job rules: what a job may be created with, when it may change, run, stop or go.

`JobService` is what the HTTP routes call (and what tests call without HTTP): it builds the
stored job from a template and the user's request, checks params against the engines'
``schema.json``, guards every change of a draft (only while ``JOB_STATE_NEW``), checks what a
run needs before handing the job to the `Runner`, and removes a job's folders in one place.
It speaks `StoredJob` records and raises `bytenite_nb.server.errors` kinds; rendering
responses and mapping errors to statuses is the HTTP layer's job.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bytenite_nb import wire
from bytenite_nb.server.errors import Conflict, Gone, InvalidRequest, NotFound, Unavailable
from bytenite_nb.server.execution import datasources
from bytenite_nb.server.execution.registry import Registry, RegistryError, Template
from bytenite_nb.server.execution.registry import validate_params as _validate_section
from bytenite_nb.server.service.runner import Runner
from bytenite_nb.server.service.templates import (
    check_data_source,
    find_template,
    merge_params,
    normalize_config,
    template_default_source,
    template_info,
)
from bytenite_nb.server.storage.records import (
    PARAM_SECTIONS,
    DataSource,
    JobConfig,
    JobParams,
    LogRow,
    ResultRow,
    StoredJob,
    TaskRow,
    UploadRow,
    descriptor_of,
)
from bytenite_nb.server.storage.store import Store

JobState = wire.JobState
FILE = wire.Descriptor.FILE.value
BYPASS = wire.Descriptor.BYPASS.value

#: How long an abort waits for the job's run to wind down before it answers (seconds).
ABORT_WAIT = 0.5
#: A job id as ByteNite's clients send them (UUIDs) or as a person types one.
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_UPLOAD_URL = re.compile(r"/local/uploads/([A-Za-z0-9_-]+)/?\Z")


@dataclass
class JobDraft:
    """What a create request asks for; ``None`` means "the template's default".

    ``params`` holds only the sections the request gave (``partitioner``, ``app``,
    ``assembler``, ``preset``); each is merged key by key over the template's."""

    template_id: str
    job_id: str | None = None
    name: str = ""
    description: str = ""
    data_source: DataSource | None = None
    data_destination: DataSource | None = None
    params: dict[str, Any] | None = None
    config: JobConfig = field(default_factory=dict)  # type: ignore[assignment]


@dataclass
class JobLogs:
    """A job's log lines by service: the engines' lists and the tasks' by task id."""

    partitioner: list[LogRow] = field(default_factory=list)
    assembler: list[LogRow] = field(default_factory=list)
    tasks: dict[str, list[LogRow]] = field(default_factory=dict)


class JobService:
    """The job rules over one server's store, registry and runner."""

    def __init__(self, store: Store, registry: Registry, runner: Runner) -> None:
        self.store = store
        self.registry = registry
        self.runner = runner

    # -- reading -----------------------------------------------------------------------------

    def get(self, job_id: str) -> StoredJob:
        """The job, or `NotFound` naming it."""
        job = self.store.get_job(job_id) if JOB_ID.fullmatch(job_id) else None
        if job is None:
            raise NotFound(f"Job {job_id!r} not found")
        return job

    def upload_token(self, job: StoredJob) -> str | None:
        """The token of a ``file`` job's upload target (None for other sources)."""
        if descriptor_of(job.get("dataSource")) != FILE:
            return None
        upload = self.store.upload_for_job(job["id"])
        return upload.token if upload is not None else None

    def results(self, job_id: str) -> list[ResultRow]:
        """A completed job's result files; `InvalidRequest` before it completed."""
        job = self.get(job_id)
        if job["state"] != JobState.COMPLETE.value:
            raise InvalidRequest(f"Job {job_id} has not yet been completed "
                                 f"(it is in state {job['state']})")
        return self.store.results(job_id)

    def tasks(self, job_id: str) -> list[TaskRow]:
        """Every task of the job, by chunk number."""
        self.get(job_id)
        return self.store.list_tasks(job_id)

    def task_attempts(self, job_id: str) -> dict[int, list[dict[str, Any]]]:
        """Each task's attempts, from the job's stored ``task.state`` events: ``{chunk:
        [{"attempt", "state", "startedAt", "endedAt", "exitCode", "errorMessage"}, ...]}``.

        An attempt starts with its RUNNING event and ends with the next RETRYING, COMPLETE,
        FAILED or CANCELLED of the same attempt; tasks that never ran have none."""
        self.get(job_id)
        attempts: dict[int, dict[int, dict[str, Any]]] = {}
        running = wire.TaskState.RUNNING.value
        for event in self.store.job_events(job_id, wire.EVENT_TASK_STATE):
            chunk, number = event.get("chunkNumber"), event.get("attempt")
            if chunk is None or not number:
                continue
            mine = attempts.setdefault(int(chunk), {})
            if event.get("state") == running:
                mine[int(number)] = {"attempt": int(number), "state": running,
                                     "startedAt": event.get("timestamp"), "endedAt": None,
                                     "exitCode": None, "errorMessage": None}
            elif int(number) in mine:
                mine[int(number)].update(state=event.get("state"),
                                         endedAt=event.get("timestamp"),
                                         exitCode=event.get("exitCode"),
                                         errorMessage=event.get("errorMessage") or None)
        return {chunk: [mine[n] for n in sorted(mine)] for chunk, mine in attempts.items()}

    def logs(self, job_id: str, *, levels: list[str], services: list[str],
             task_ids: list[str]) -> JobLogs:
        """The job's log lines, of the given levels/services/tasks only (empty = all). Asking
        for tasks leaves out the engines' lines, which belong to no task."""
        self.get(job_id)
        try:
            wanted_levels = {wire.LogLevel.parse(v).value for v in levels}
            wanted_services = {wire.LogService.parse(v).value for v in services}
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        wanted_tasks = set(task_ids)
        out = JobLogs()
        for row in self.store.logs(job_id):
            if (wanted_levels and row.level not in wanted_levels) or (
                    wanted_services and row.service not in wanted_services):
                continue
            if row.service == wire.LogService.TASKRUNNER.value:
                tid = wire.task_id(row.chunk) if row.chunk is not None else "job"
                if not wanted_tasks or tid in wanted_tasks:
                    out.tasks.setdefault(tid, []).append(row)
            elif not wanted_tasks:
                engine = row.service == wire.LogService.PARTITIONER.value
                (out.partitioner if engine else out.assembler).append(row)
        return out

    # -- creating and changing drafts --------------------------------------------------------

    def create(self, draft: JobDraft) -> StoredJob:
        """Create a job in ``JOB_STATE_NEW`` with the template's defaults applied.

        With ``job_id``, a retried create is idempotent: while the job is still NEW it is
        replaced (keeping its creation time); once it has run, `Conflict`."""
        template = find_template(self.registry, draft.template_id)
        job_id = draft.job_id or str(uuid.uuid4())
        if not JOB_ID.fullmatch(job_id):
            raise InvalidRequest("jobId may only contain letters, digits, '-' and '_' "
                                 "(at most 128 characters)")
        source = draft.data_source or template_default_source(template, "dataSource",
                                                       template.data_source)
        destination = draft.data_destination or template_default_source(
            template, "dataDestination", template.data_destination)
        check_data_source(source, destination)
        params = merge_params(template.params, draft.params)
        given = tuple(s for s in PARAM_SECTIONS if (draft.params or {}).get(s) is not None)
        if given:  # a job created first and given its params later is checked then
            self._validate_params(template, params, strict=False, sections=given)
        now = wire.format_timestamp(wire.utcnow()) or ""
        job: StoredJob = {
            "id": job_id, "templateId": template.id, "name": draft.name,
            "description": draft.description,
            "config": {**normalize_config(template.config), **draft.config},  # type: ignore[typeddict-item]
            "state": JobState.NEW.value, "dataSource": source, "dataDestination": destination,
            "params": params, "createdAt": now, "stateTimestamps": {JobState.NEW.value: now},
            "appId": template.app, "templateInfo": template_info(template),
        }
        if self.store.get_job(job_id) is not None:
            def replace(current: StoredJob) -> StoredJob:
                if current["state"] != JobState.NEW.value:
                    raise Conflict(f"Job {job_id} already exists and is in state "
                                   f"{current['state']}; it can no longer be re-created")
                return {**job, "createdAt": current.get("createdAt", now),
                        "stateTimestamps": current.get("stateTimestamps") or {}}
            stored = self.store.update_job(job_id, replace) or job
        else:
            self.store.put_job(job)
            stored = job
            self.runner.jobs.publish_state(stored, None)
        self._sync_upload(stored)
        return stored

    def set_data_source(self, job_id: str, source: DataSource | None,
                        destination: DataSource | None) -> StoredJob:
        """Set the data source and/or destination of a draft."""
        if source is None and destination is None:
            raise InvalidRequest("Give dataSource and/or dataDestination")
        check_data_source(source, destination)

        def change(job: StoredJob) -> StoredJob:
            if source is not None:
                job["dataSource"] = source
            if destination is not None:
                job["dataDestination"] = destination
            return job
        job = self._change_draft(job_id, "set the data source", change)
        self._sync_upload(job)
        return job

    def set_params(self, job_id: str, given: Mapping[str, Any]) -> StoredJob:
        """Replace the given params sections of a draft (each over the template's defaults)
        and check them against the engines' schemas."""
        job = self.get(job_id)
        template = find_template(self.registry, job["templateId"])
        merged = merge_params(template.params, given)
        sections = [s for s in PARAM_SECTIONS if given.get(s) is not None]

        def apply(params: Mapping[str, Any]) -> JobParams:
            out: dict[str, Any] = {**params}
            for section in sections:
                out[section] = merged[section]  # type: ignore[literal-required]
            if given.get("preset") is not None:
                out["preset"] = given["preset"]
            return out  # type: ignore[return-value]
        self._validate_params(template, apply(job.get("params") or {}), strict=False,
                              sections=tuple(sections))

        def change(current: StoredJob) -> StoredJob:
            current["params"] = apply(current.get("params") or {})
            return current
        return self._change_draft(job_id, "set params", change)

    def rename(self, job_id: str, name: str) -> StoredJob:
        """Rename a draft."""
        def change(job: StoredJob) -> StoredJob:
            job["name"] = name
            return job
        return self._change_draft(job_id, "rename the job", change)

    def set_config(self, job_id: str, config: JobConfig) -> StoredJob:
        """Set some config fields of a draft (the others are kept)."""
        def change(job: StoredJob) -> StoredJob:
            job["config"] = {**(job.get("config") or {}), **config}  # type: ignore[typeddict-item]
            return job
        return self._change_draft(job_id, "set the config", change)

    def complete_upload(self, job_id: str) -> UploadRow:
        """Mark a draft's ``file`` upload complete (its bytes must have been PUT)."""
        job = self.get(job_id)
        if job["state"] != JobState.NEW.value:
            raise _not_new(job, "complete the upload")
        upload = self.store.upload_for_job(job_id)
        if upload is None:
            raise InvalidRequest(f"Job {job_id} has no 'file' data source to upload to")
        if upload.size is None:
            raise InvalidRequest(f"Nothing was uploaded for job {job_id} yet: PUT the file's "
                                 "bytes to dataSource.params.tempUrl first")
        self.store.set_upload(job_id, completed=True)
        return upload

    def describe_source(self, source: DataSource | None, temp_url: str,
                        list_files: bool) -> dict[str, Any]:
        """What a data source holds (`datasources.describe_source`); nothing is downloaded.
        ``temp_url`` is the ``tempUrl`` the request gave: a ``file`` source naming one of our
        upload targets describes the bytes PUT there."""
        uploaded: Path | None = None
        url: str | None = None
        if descriptor_of(source) == FILE:
            url = temp_url or None
            match = _UPLOAD_URL.search(temp_url)
            row = self.store.upload_by_token(match.group(1)) if match else None
            if row is not None and row.size is not None:
                uploaded = Path(row.path)
        try:
            return datasources.describe_source(
                source, list_files, uploaded_file=uploaded, temp_url=url,
                deny_private=self.runner.config.deny_private_sources)
        except datasources.DataSourceError as exc:
            raise InvalidRequest(str(exc)) from None

    def upload_target(self, token: str) -> UploadRow:
        """The upload target a ``tempUrl`` token names, while its job still takes uploads
        (`NotFound`, or `InvalidRequest` once the job left ``JOB_STATE_NEW``)."""
        row = self.store.upload_by_token(token)
        job = self.store.get_job(row.job_id) if row is not None else None
        if row is None or job is None:
            raise NotFound("No such upload target")
        if job["state"] != JobState.NEW.value:
            raise InvalidRequest(f"Job {row.job_id} is in state {job['state']}; uploads are "
                                 f"only accepted while {JobState.NEW.value}")
        return row

    def upload_folder(self, job_id: str) -> Path:
        """The folder a job's uploaded file goes to (created): write the bytes aside in it,
        then `accept_upload`."""
        folder = self.runner.job_dir(job_id) / "upload"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def accept_upload(self, job_id: str, partial: Path, name: str, size: int) -> Path:
        """Make ``partial`` (in `upload_folder`) the job's uploaded file ``name``, replacing
        an earlier upload; the upload is complete once `complete_upload` says so."""
        folder = partial.parent
        for old in folder.iterdir():
            if old != partial and not old.name.startswith("."):
                old.unlink(missing_ok=True)
        final = folder / name
        os.replace(partial, final)
        self.store.set_upload(job_id, size=size, path=str(final), completed=False)
        return final

    def result_file(self, token: str, filename: str) -> ResultRow:
        """The result file a link (its token and file name) names; `Gone` once the link
        expired (the file is removed then), `NotFound` for a wrong link or a deleted job. The
        token is bound to its file: another name with the right token is a wrong link."""
        row = self.store.result_by_token(token)
        if row is not None and filename != row.name.rsplit("/", 1)[-1]:
            row = None
        if row is not None and time.time() >= row.expires_at:
            Path(row.path).unlink(missing_ok=True)
            raise Gone("This result link expired (result files are kept 48 hours)")
        if row is None or not Path(row.path).is_file():
            raise NotFound("No such result file (the link is wrong or the job was deleted)")
        return row

    # -- running, stopping, deleting ---------------------------------------------------------

    def run(self, job_id: str, config: JobConfig) -> StoredJob:
        """Start a draft after checking everything a run needs: its data source and
        destination, a completed upload for a ``file`` source, engines that resolve and
        params their schemas accept. ``config`` overrides the job's config fields."""
        job = self.get(job_id)
        if job["state"] != JobState.NEW.value:
            raise InvalidRequest(f"Cannot run job {job_id}: it is in state {job['state']}, "
                                 f"only {JobState.NEW.value} jobs can be run")
        merged: JobConfig = {**(job.get("config") or {}), **config}  # type: ignore[typeddict-item]
        template = find_template(self.registry, job["templateId"])
        source = job.get("dataSource") or wire.bypass()
        destination = job.get("dataDestination") or wire.bucket_destination()
        check_data_source(source, destination)  # type: ignore[arg-type]
        if template.needs_input and source.get("dataSourceDescriptor") == BYPASS:
            # A run over bypass's empty dummy file would "complete" over nothing.
            raise InvalidRequest(
                f"{template.id} needs input data and none was given: set the job's data "
                f"source first (PATCH /jobs/{job_id}/datasource with a url or file source)")
        if source.get("dataSourceDescriptor") == FILE:
            upload = self.store.upload_for_job(job_id)
            if upload is None or not upload.completed:
                raise InvalidRequest(
                    f"Job {job_id} has a 'file' data source whose upload is not complete: PUT "
                    "the bytes to dataSource.params.tempUrl, then PATCH "
                    f"/jobs/{job_id}/uploadcompleted")
        self._validate_params(template, job.get("params") or {}, strict=True)
        submitted = wire.format_timestamp(wire.utcnow()) or ""

        def extra(current: StoredJob) -> None:
            current["config"] = merged
            current["dataSource"] = source  # type: ignore[typeddict-item]
            current["dataDestination"] = destination  # type: ignore[typeddict-item]
            current["submittedAt"] = submitted
        started = self.runner.jobs.transition(job_id, JobState.STARTED, extra=extra)
        if started is None:
            raise InvalidRequest(f"Cannot run job {job_id}: it is in state "
                                 f"{self.get(job_id)['state']}")
        try:
            self.runner.start(job_id)
        except RuntimeError as exc:
            self.runner.jobs.transition(job_id, JobState.FAILED, error=str(exc))
            raise Unavailable(str(exc)) from None
        return started

    def abort(self, job_id: str) -> bool:
        """Abort a running job (it ends FAILED, saying it was aborted); a job that never
        started is deleted instead. Returns True when it was deleted."""
        job = self.get(job_id)
        state = JobState.parse(job["state"])
        if state is JobState.NEW:
            self.store.delete_job(job_id)
            self.remove_files(job_id)
            return True
        if state.is_terminal:
            raise InvalidRequest(f"Cannot abort job {job_id}: it already ended in state "
                                 f"{state.value}")
        # The job is FAILED and its processes are killed at once; the answer does not wait
        # for the run's thread to wind down (files, task states) more than ABORT_WAIT.
        self.runner.abort(job_id, wait=ABORT_WAIT)
        return False

    def delete(self, job_id: str) -> None:
        """Delete a job with its files and results. A running job is aborted first, the way
        `abort` does it (its processes are killed at once, the answer waits for its run to
        wind down at most ``ABORT_WAIT``); whatever that run still writes afterwards is
        removed when it ends (`Runner` sees its job gone)."""
        job = self.get(job_id)
        if JobState.parse(job["state"]).is_running:
            self.runner.abort(job_id, wait=ABORT_WAIT)
        self.store.delete_job(job_id)
        self.remove_files(job_id, results=True)

    def remove_files(self, job_id: str, *, results: bool = False,
                     only: str | None = None) -> None:
        """Remove a job's private folder (scratch space and upload), or just its ``only``
        subfolder, and with ``results`` its result files too."""
        folder = self.runner.job_dir(job_id)
        shutil.rmtree(folder / only if only else folder, ignore_errors=True)
        if results:
            shutil.rmtree(self.runner.results_dir(job_id), ignore_errors=True)

    # -- helpers -----------------------------------------------------------------------------

    def _change_draft(self, job_id: str, action: str,
                      change: Callable[[StoredJob], StoredJob]) -> StoredJob:
        """Apply ``change`` to a NEW job atomically; `NotFound` if it is missing,
        `InvalidRequest` naming its state if it is no longer NEW."""
        self.get(job_id)

        def guarded(job: StoredJob) -> StoredJob:
            if job["state"] != JobState.NEW.value:
                raise _not_new(job, action)
            return change(job)
        job = self.store.update_job(job_id, guarded)
        if job is None:
            raise NotFound(f"Job {job_id!r} not found")
        return job

    def _validate_params(self, template: Template, params: Mapping[str, Any], *, strict: bool,
                         sections: tuple[str, ...] = PARAM_SECTIONS) -> None:
        """Check params against the app/engine ``schema.json``; ``strict`` also needs the
        engines to resolve. Only ``sections`` are checked: a draft may set its params one
        section at a time, so a required field of another section is only missed at run."""
        try:
            engines = self.registry.resolve_template(template)
        except RegistryError as exc:
            if strict:
                raise InvalidRequest(f"Cannot run the job: {exc}") from None
            return
        problems: list[str] = []
        for section, engine in zip(("partitioner", "app", "assembler"), engines, strict=True):
            if section in sections:
                problems += _validate_section(engine, params.get(section) or {},
                                              prefix=f"{section}.")
        if problems:
            raise InvalidRequest("Invalid params: " + "; ".join(problems))

    def _sync_upload(self, job: StoredJob) -> None:
        """Give a ``file`` job an upload target; drop it when the source is no longer
        ``file``."""
        if descriptor_of(job.get("dataSource")) == FILE:
            folder = self.runner.job_dir(job["id"]) / "upload"
            self.store.ensure_upload(job["id"], secrets.token_urlsafe(24),
                                     str(folder / "upload.bin"))
        elif self.store.upload_for_job(job["id"]) is not None:
            self.store.delete_upload(job["id"])
            self.remove_files(job["id"], only="upload")


def _not_new(job: StoredJob, action: str) -> InvalidRequest:
    return InvalidRequest(
        f"Cannot {action}: job {job['id']} is in state {job['state']}; jobs can only be "
        f"changed while {JobState.NEW.value}")
