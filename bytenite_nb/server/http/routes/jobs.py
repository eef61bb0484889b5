"""The Customer API routes (rows 1-19 of the reference's section 3, plus extensions).

Mounted twice by `app.create_app`: under ``/v1/customer`` and under ``/v1/computing``. Routes
are plain ``def``s, so FastAPI runs them on its thread pool and SQLite never blocks the event
loop; only the streaming ``/events`` route is async.
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import APIKeyHeader
from pydantic import ValidationError

from bytenite_nb import __version__, wire
from bytenite_nb.server.context import ServerContext
from bytenite_nb.server.http import models, protojson
from bytenite_nb.server.http.errors import ApiError, bad_request, not_found, request_id_of
from bytenite_nb.server.storage.listing import query
from bytenite_nb.server.storage.listing import render as jobrender
from bytenite_nb.server.storage.listing import sql as joblist

JobState = wire.JobState

#: ``Authorization: <token>`` (``Bearer <token>`` accepted too), as ByteNite documents it.
token_header = APIKeyHeader(name="Authorization", auto_error=False,
                            description="Your ByteNite access token (raw or 'Bearer <token>')")

_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
EXTENSION = {"x-bytenite-local-extension": True}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses, all in ByteNite's error shape."""
    from bytenite_nb.server.http.errors import STATUS_DESCRIPTIONS

    return {code: {"model": models.GenericResponse, "description": STATUS_DESCRIPTIONS[code]}
            for code in codes}


def ctx_of(request: Request) -> ServerContext:
    """The server context `create_app` attached to the app."""
    return request.app.state.ctx


def require_token(request: Request,
                  authorization: Annotated[str | None, Depends(token_header)] = None) -> None:
    """Dependency of every Customer route: a valid, unexpired access token."""
    ctx_of(request).auth.check(authorization)


def ok(request: Request, message: str = "") -> JSONResponse:
    """A successful ``GenericResponse``."""
    return JSONResponse({"ok": True, "requestId": request_id_of(request), "message": message,
                         "error": None})


def base_url(request: Request) -> str:
    """The root URL this client reached us at (for links it can follow back)."""
    return str(request.base_url).rstrip("/")


def upload_url(request: Request, token: str) -> str:
    """The ``tempUrl`` of an upload target."""
    return f"{base_url(request)}/local/uploads/{token}"


def load_job(ctx: ServerContext, job_id: str) -> dict[str, Any]:
    """The job or a 404 naming it."""
    job = ctx.store.get_job(job_id) if _JOB_ID.match(job_id) else None
    if job is None:
        raise not_found(f"Job {job_id!r} not found")
    return job


def _temp_url(request: Request, job: dict[str, Any]) -> str | None:
    if (job.get("dataSource") or {}).get("dataSourceDescriptor") != wire.Descriptor.FILE.value:
        return None
    upload = ctx_of(request).store.upload_for_job(job["id"])
    return upload_url(request, upload.token) if upload is not None else None


def job_body_dict(request: Request, job: dict[str, Any]) -> dict[str, Any]:
    """A protojson ``Job`` with the upload target filled in for ``file`` sources."""
    return protojson.job_out(job, temp_url=_temp_url(request, job))


def job_body(request: Request, job: dict[str, Any]) -> JSONResponse:
    """A ``JobResponse`` with the upload target filled in for ``file`` sources."""
    return JSONResponse(protojson.job_response(job, temp_url=_temp_url(request, job)))


def _not_new(job: dict[str, Any], action: str) -> ApiError:
    return bad_request(
        f"Cannot {action}: job {job['id']} is in state {job['state']}; jobs can only be "
        f"changed while {JobState.NEW.value}")


def _template(ctx: ServerContext, template_id: str) -> Any:
    from bytenite_nb.server.execution.registry import RegistryError

    try:
        return ctx.registry.template(template_id)
    except RegistryError as exc:
        raise not_found(f"Template {template_id!r} not found: {exc}") from None


def _params_schemas(ctx: ServerContext, template: Any) -> dict[str, Any]:
    """Each params section's ``schema.json``, from the engine its tag resolves to (as job
    creation resolves it); a section without one, or whose tag does not resolve, is left out."""
    from bytenite_nb.server.execution.registry import RegistryError

    schemas: dict[str, Any] = {}
    for section in ("app", "partitioner", "assembler"):
        try:
            engine = ctx.registry.resolve(getattr(template, section), section)
        except RegistryError:
            continue
        if engine.schema is not None:
            schemas[section] = engine.schema
    return schemas


def _template_out(ctx: ServerContext, template: Any) -> dict[str, Any]:
    """A ``JobTemplate`` with its engines' params schemas (``paramsSchema``, an extension)."""
    return protojson.template_out(template, _params_schemas(ctx, template))


def _template_source(template: Any, what: str, value: Any) -> dict[str, Any] | None:
    """A template's default data source/destination in stored form (400 if malformed)."""
    if not value:
        return None
    try:
        return protojson.data_source_in(models.DataSourceIn.model_validate(value))
    except ValidationError as exc:
        raise bad_request(f"Template {template.id!r} has an invalid {what}: "
                          f"{exc.errors()[0].get('msg', exc)}") from None


def _check_source(source: dict[str, Any] | None, destination: dict[str, Any] | None) -> None:
    from bytenite_nb.server.execution.datasources import (
        DataSourceError,
        check_destination,
        check_source,
    )

    try:
        if source is not None:
            check_source(source)
        if destination is not None:
            check_destination(destination)
    except DataSourceError as exc:
        raise bad_request(str(exc)) from None


def _validate_params(ctx: ServerContext, template: Any, params: dict[str, Any], *,
                     strict: bool, sections: tuple[str, ...] = protojson.PARAM_SECTIONS,
                     ) -> None:
    """Check params against the app/engine ``schema.json``; ``strict`` also needs the engines.

    Only ``sections`` are checked: a draft may set its params one section at a time, so a
    required field of another section is only missed at run time."""
    from bytenite_nb.server.execution.registry import RegistryError, validate_params

    try:
        engines = ctx.registry.resolve_template(template)
    except RegistryError as exc:
        if strict:
            raise bad_request(f"Cannot run the job: {exc}") from None
        return
    problems: list[str] = []
    for section, engine in zip(("partitioner", "app", "assembler"), engines, strict=True):
        if section in sections:
            problems += validate_params(engine, params.get(section) or {},
                                        prefix=f"{section}.")
    if problems:
        raise bad_request("Invalid params: " + "; ".join(problems))


def _upload_behind(ctx: ServerContext, source: dict[str, Any] | None,
                   ) -> tuple[Any, str | None]:
    """For a ``file`` source naming one of our upload targets (``params.tempUrl``, as a job
    shows it): the uploaded file (None until bytes were PUT) and that URL."""
    from pathlib import Path

    if (source or {}).get("dataSourceDescriptor") != wire.Descriptor.FILE.value:
        return None, None
    params = (source or {}).get("params") or {}
    temp_url = str(params.get("tempUrl") or params.get("temp_url") or "")
    match = re.search(r"/local/uploads/([A-Za-z0-9_-]+)/?$", temp_url)
    row = ctx.store.upload_by_token(match.group(1)) if match else None
    if row is None:
        return None, temp_url or None
    return (Path(row.path) if row.size is not None else None), temp_url


def _sync_upload(ctx: ServerContext, job: dict[str, Any]) -> None:
    """Give a ``file`` job an upload target; drop it when the source is no longer ``file``."""
    is_file = (job.get("dataSource") or {}).get("dataSourceDescriptor") == "file"
    if is_file:
        import secrets

        folder = ctx.runner.job_dir(job["id"]) / "upload"
        ctx.store.ensure_upload(job["id"], secrets.token_urlsafe(24), str(folder / "upload.bin"))
    elif ctx.store.upload_for_job(job["id"]) is not None:
        ctx.store.delete_upload(job["id"])
        shutil.rmtree(ctx.runner.job_dir(job["id"]) / "upload", ignore_errors=True)


def build_router() -> APIRouter:
    """The Customer API router (mounted under both prefixes)."""
    router = APIRouter(dependencies=[Depends(require_token)],
                       responses=error_responses(400, 401))
    e404 = error_responses(404)

    @router.get("/info", response_model=models.InfoResponse, tags=["info"])
    def info(request: Request) -> JSONResponse:
        """Server version and messages."""
        major, minor = [*__version__.split("."), "0"][:2]
        return JSONResponse({
            "version": {"major": major, "minor": minor, "tag": f"bytenite-local-{__version__}"},
            "messages": {"server": "ByteNite Local: the ByteNite Customer API, run locally"},
        })

    # -- templates (registered before /jobs/{jobId} so 'templates' is never a job id) --------

    @router.get("/jobs/templates", response_model=models.TemplatesResponse, tags=["templates"])
    def list_templates(
        request: Request,
        limit: Annotated[int | None, Query(alias="pagination.limit", ge=0, le=2**63 - 1)] = None,
        offset: Annotated[int | None, Query(alias="pagination.offset", ge=0,
                                            le=2**63 - 1)] = None,
        order_by: Annotated[str | None, Query(alias="orderBy")] = None,
    ) -> JSONResponse:
        """Job templates, paginated (``orderBy`` defaults to ``createdAt``)."""
        ctx = ctx_of(request)
        records = [_template_out(ctx, t) for t in ctx.registry.templates()]
        keys = query.parse_order(order_by, query.TEMPLATE_FIELDS, [("createdAt", False)])
        page = query.paginate(query.sort_records(records, keys, query.TEMPLATE_FIELDS),
                              limit, offset)
        return JSONResponse({"pagination": page.pagination(), "data": page.items})

    @router.get("/jobs/templates/{templateId}", response_model=models.TemplateResponse,
                tags=["templates", "extension"], openapi_extra=EXTENSION, responses=e404)
    def get_template(request: Request, templateId: str) -> JSONResponse:
        """ByteNite Local extension: one job template with its defaults."""
        ctx = ctx_of(request)
        return JSONResponse({"template": _template_out(ctx, _template(ctx, templateId))})

    for path in ("/jobs/templates/{jobTemplateId}/presets", "/schema/{id}",
                 "/stats/detail/{id}", "/stats/job_types"):
        router.add_api_route(path, _deprecated(path), methods=["GET"], tags=["deprecated"],
                             deprecated=True, responses=error_responses(410))

    # -- jobs --------------------------------------------------------------------------------

    @router.post("/jobs", response_model=models.JobResponse, tags=["jobs"], responses={
        **e404, **error_responses(409)})
    def create_job(request: Request, body: models.CreateJobRequest) -> JSONResponse:
        """Create a job in ``JOB_STATE_NEW`` with the template's defaults applied.

        With ``jobId``, a retried create is idempotent: while the job is still NEW it is
        updated and returned; once it has run, 409."""
        ctx = ctx_of(request)
        template = _template(ctx, body.template_id)
        job_id = body.job_id or str(uuid.uuid4())
        if not _JOB_ID.match(job_id):
            raise bad_request("jobId may only contain letters, digits, '-' and '_' "
                              "(at most 128 characters)")
        source = protojson.data_source_in(body.data_source) or _template_source(
            template, "dataSource", template.data_source)
        destination = protojson.data_source_in(body.data_destination) or _template_source(
            template, "dataDestination", template.data_destination)
        _check_source(source, destination)
        params = protojson.params_in(template.params, body.params)
        given = tuple(s for s in protojson.PARAM_SECTIONS
                      if body.params is not None and getattr(body.params, s) is not None)
        if given:  # a job created first and given its params later is checked then
            _validate_params(ctx, template, params, strict=False, sections=given)
        config = {**protojson.normalize_config(template.config), **protojson.config_in(body.config)}
        now = wire.format_timestamp(wire.utcnow())
        job: dict[str, Any] = {
            "id": job_id,
            "templateId": template.id,
            "name": body.name or "",
            "description": body.description or "",
            "config": config,
            "state": JobState.NEW.value,
            "dataSource": source,
            "dataDestination": destination,
            "params": params,
            "createdAt": now,
            "stateTimestamps": {JobState.NEW.value: now},
            "appId": template.app,
            "templateInfo": protojson.template_info(template),
        }
        existing = ctx.store.get_job(job_id)
        if existing is not None:
            def replace(current: dict[str, Any]) -> dict[str, Any]:
                if current["state"] != JobState.NEW.value:
                    raise ApiError(409, f"Job {job_id} already exists and is in state "
                                        f"{current['state']}; it can no longer be re-created")
                return {**job, "createdAt": current["createdAt"],
                        "stateTimestamps": current.get("stateTimestamps") or {}}
            stored = ctx.store.update_job(job_id, replace) or job
        else:
            ctx.store.put_job(job)
            stored = job
            ctx.runner.jobs.publish_state(stored, None)
        _sync_upload(ctx, stored)
        return job_body(request, stored)

    @router.get("/jobs", response_model=models.JobsResponse, tags=["jobs"])
    def list_jobs(
        request: Request,
        limit: Annotated[int | None, Query(alias="pagination.limit", ge=0, le=2**63 - 1)] = None,
        offset: Annotated[int | None, Query(alias="pagination.offset", ge=0,
                                            le=2**63 - 1)] = None,
        order_by: Annotated[str | None, Query(alias="orderBy")] = None,
    ) -> Response:
        """All jobs, newest first unless ``orderBy`` says otherwise."""
        return _jobs_page(request, [], limit, offset, order_by)

    @router.post("/jobs/filter", response_model=models.JobsResponse, tags=["jobs"])
    def filter_jobs(request: Request,
                    body: Annotated[models.FilterJobsRequest | None, Body()] = None,
                    ) -> Response:
        """Jobs matching every filter (see ``query`` for the 11 conditions)."""
        body = body or models.FilterJobsRequest()
        pagination = body.pagination or models.PaginationIn()
        filters = [(f.field, f.condition, f.value) for f in body.filters]
        return _jobs_page(request, filters, pagination.limit, pagination.offset, body.order_by)

    @router.post("/jobs/runningTasks", response_model=models.RunningTasksResponse,
                 tags=["jobs"])
    def running_tasks(request: Request, body: models.RunningTasksRequest) -> JSONResponse:
        """How many tasks of each listed job are running now (0 for idle or unknown jobs)."""
        counts = ctx_of(request).store.running_task_counts(body.jobs_ids)
        return JSONResponse({"jobsRunningTasks": counts})

    @router.get("/jobs/{jobId}", response_model=models.JobResponse, tags=["jobs"],
                responses=e404)
    def get_job(request: Request, jobId: str) -> JSONResponse:
        """One job."""
        return job_body(request, load_job(ctx_of(request), jobId))

    @router.delete("/jobs/{jobId}", response_model=models.GenericResponse, tags=["jobs"],
                   responses=e404)
    def delete_job(request: Request, jobId: str) -> JSONResponse:
        """Delete a job with its files and results (a running job is aborted first)."""
        ctx = ctx_of(request)
        job = load_job(ctx, jobId)
        if JobState.parse(job["state"]).is_running:
            ctx.runner.abort(jobId)
        ctx.store.delete_job(jobId)
        shutil.rmtree(ctx.runner.job_dir(jobId), ignore_errors=True)
        shutil.rmtree(ctx.runner.results_dir(jobId), ignore_errors=True)
        return ok(request, f"Job {jobId} deleted")

    @router.get("/jobs/{jobId}/results", response_model=models.ResultsResponse, tags=["jobs"],
                responses=e404)
    def job_results(request: Request, jobId: str) -> JSONResponse:
        """Result files with links ByteNite Local serves without auth for 48 hours."""
        ctx = ctx_of(request)
        job = load_job(ctx, jobId)
        if job["state"] != JobState.COMPLETE.value:
            raise bad_request(f"Job {jobId} has not yet been completed "
                              f"(it is in state {job['state']})")
        root = base_url(request)
        results = [{"name": r.name, "link": f"{root}/local/results/{r.token}/"
                    f"{_quote(r.name.rsplit('/', 1)[-1])}"}
                   for r in ctx.store.results(jobId)]
        return JSONResponse({"results": results})

    @router.get("/jobs/{jobId}/tasks", response_model=models.TasksResponse,
                tags=["jobs", "extension"], openapi_extra=EXTENSION, responses=e404)
    def job_tasks(request: Request, jobId: str) -> JSONResponse:
        """ByteNite Local extension: every task (one per chunk) with state and timing."""
        ctx = ctx_of(request)
        load_job(ctx, jobId)
        return JSONResponse({"tasks": [protojson.task_out(t)
                                       for t in ctx.store.list_tasks(jobId)]})

    @router.patch("/jobs/{jobId}/datasource", response_model=models.JobResponse,
                  tags=["jobs"], responses=e404)
    def set_data_source(request: Request, jobId: str,
                        body: models.SetDataSourceRequest) -> JSONResponse:
        """Set the data source and/or destination (only while NEW)."""
        if body.data_source is None and body.data_destination is None:
            raise bad_request("Give dataSource and/or dataDestination")
        source = protojson.data_source_in(body.data_source)
        destination = protojson.data_source_in(body.data_destination)
        _check_source(source, destination)

        def change(job: dict[str, Any]) -> dict[str, Any]:
            if source is not None:
                job["dataSource"] = source
            if destination is not None:
                job["dataDestination"] = destination
            return job
        job = _mutate(request, jobId, "set the data source", change)
        _sync_upload(ctx_of(request), job)
        return job_body(request, job)

    @router.patch("/jobs/{jobId}/params", response_model=models.JobResponse, tags=["jobs"],
                  responses=e404)
    def set_params(request: Request, jobId: str,
                   body: models.AppParamsIn) -> JSONResponse:
        """Set params sections; each given section replaces the job's (over template defaults)."""
        ctx = ctx_of(request)
        job = load_job(ctx, jobId)
        template = _template(ctx, job["templateId"])
        given = protojson.params_in(template.params, body)
        sections = [s for s in protojson.PARAM_SECTIONS if getattr(body, s) is not None]
        merged = {**(job.get("params") or {})}
        for section in sections:
            merged[section] = given[section]
        if body.preset is not None:
            merged["preset"] = body.preset
        _validate_params(ctx, template, merged, strict=False, sections=tuple(sections))

        def change(current: dict[str, Any]) -> dict[str, Any]:
            params = {**(current.get("params") or {})}
            for section in sections:
                params[section] = given[section]
            if body.preset is not None:
                params["preset"] = body.preset
            current["params"] = params
            return current
        return job_body(request, _mutate(request, jobId, "set params", change))

    @router.patch("/jobs/{jobId}/jobname", response_model=models.JobResponse, tags=["jobs"],
                  responses=e404)
    def set_job_name(request: Request, jobId: str,
                     body: Annotated[str | models.JobNameObject, Body(
                         description="the new name as a raw JSON string, e.g. \"My Job\"")],
                     ) -> JSONResponse:
        """Rename a job (only while NEW)."""
        name = body if isinstance(body, str) else body.name

        def change(job: dict[str, Any]) -> dict[str, Any]:
            job["name"] = name
            return job
        return job_body(request, _mutate(request, jobId, "rename the job", change))

    @router.patch("/jobs/{jobId}/configs", response_model=models.JobResponse, tags=["jobs"],
                  responses=e404)
    def set_configs(request: Request, jobId: str,
                    body: models.JobConfigIn) -> JSONResponse:
        """Set ``taskTimeout``, ``jobTimeout``, ``isTestJob`` (and ``maxTaskRetries``)."""
        given = protojson.config_in(body)

        def change(job: dict[str, Any]) -> dict[str, Any]:
            job["config"] = {**(job.get("config") or {}), **given}
            return job
        return job_body(request, _mutate(request, jobId, "set the config", change))

    @router.patch("/jobs/{jobId}/uploadcompleted", response_model=models.GenericResponse,
                  tags=["jobs"], responses=e404)
    def upload_completed(request: Request, jobId: str) -> JSONResponse:
        """Mark the ``file`` data source's upload complete (the bytes must be PUT first)."""
        ctx = ctx_of(request)
        job = load_job(ctx, jobId)
        if job["state"] != JobState.NEW.value:
            raise _not_new(job, "complete the upload")
        upload = ctx.store.upload_for_job(jobId)
        if upload is None:
            raise bad_request(f"Job {jobId} has no 'file' data source to upload to")
        if upload.size is None:
            raise bad_request(f"Nothing was uploaded for job {jobId} yet: PUT the file's bytes "
                              "to dataSource.params.tempUrl first")
        ctx.store.set_upload(jobId, completed=True)
        return ok(request, f"Upload of job {jobId} completed ({upload.size} bytes)")

    @router.post("/jobs/uploadcompleted/{jobId}", response_model=models.GenericResponse,
                 tags=["jobs"], responses=e404, deprecated=True)
    def upload_completed_legacy(request: Request, jobId: str,
                                body: Annotated[dict[str, Any] | None, Body()] = None,
                                ) -> JSONResponse:
        """The 2023 form of ``PATCH /jobs/{jobId}/uploadcompleted`` (ByteNite's file-upload
        guide still shows it); same behaviour."""
        return upload_completed(request, jobId)

    @router.post("/jobs/{jobId}/run", response_model=models.GenericResponse, tags=["jobs"],
                 responses={**e404, **error_responses(503)})
    def run_job(request: Request, jobId: str,
                body: Annotated[models.RunJobRequest | None, Body()] = None) -> JSONResponse:
        """Start a NEW job. Body: ``{"config": {...}}``, the same fields flat, or none."""
        ctx = ctx_of(request)
        job = load_job(ctx, jobId)
        if job["state"] != JobState.NEW.value:
            raise bad_request(f"Cannot run job {jobId}: it is in state {job['state']}, "
                              f"only {JobState.NEW.value} jobs can be run")
        config = {**(job.get("config") or {})}
        if body is not None:
            config.update(protojson.config_in(body))
            config.update(protojson.config_in(body.config))
        template = _template(ctx, job["templateId"])
        source = job.get("dataSource") or wire.bypass()
        destination = job.get("dataDestination") or wire.bucket_destination()
        _check_source(source, destination)
        if source.get("dataSourceDescriptor") == wire.Descriptor.FILE.value:
            upload = ctx.store.upload_for_job(jobId)
            if upload is None or not upload.completed:
                raise bad_request(
                    f"Job {jobId} has a 'file' data source whose upload is not complete: PUT "
                    "the bytes to dataSource.params.tempUrl, then PATCH "
                    f"/jobs/{jobId}/uploadcompleted")
        _validate_params(ctx, template, job.get("params") or {}, strict=True)
        submitted = wire.format_timestamp(wire.utcnow())

        def extra(current: dict[str, Any]) -> None:
            current["config"] = config
            current["dataSource"] = source
            current["dataDestination"] = destination
            current["submittedAt"] = submitted
        started = ctx.runner.jobs.transition(jobId, JobState.STARTED, extra=extra)
        if started is None:
            current = load_job(ctx, jobId)
            raise bad_request(f"Cannot run job {jobId}: it is in state {current['state']}")
        try:
            ctx.runner.start(jobId)
        except RuntimeError as exc:
            ctx.runner.jobs.transition(jobId, JobState.FAILED, error=str(exc))
            raise ApiError(503, str(exc)) from None
        return ok(request, f"Job {jobId} started")

    @router.post("/jobs/{jobId}/abort", response_model=models.GenericResponse, tags=["jobs"],
                 responses=e404)
    def abort_job(request: Request, jobId: str) -> JSONResponse:
        """Abort a running job (ends FAILED); a job that never started is deleted."""
        ctx = ctx_of(request)
        job = load_job(ctx, jobId)
        state = JobState.parse(job["state"])
        if state is JobState.NEW:
            ctx.store.delete_job(jobId)
            shutil.rmtree(ctx.runner.job_dir(jobId), ignore_errors=True)
            return ok(request, f"Job {jobId} had not started and was deleted")
        if state.is_terminal:
            raise bad_request(f"Cannot abort job {jobId}: it already ended in state {state.value}")
        ctx.runner.abort(jobId)
        return ok(request, f"Job {jobId} aborted")

    # -- data sources, logs, events ----------------------------------------------------------

    @router.post("/datasource/test", response_model=models.DataSourceInfoResponse,
                 tags=["datasources"])
    def test_data_source(request: Request, body: models.DataSourceTestRequest) -> JSONResponse:
        """Check a data source: what file(s) it holds and their size (nothing is downloaded)."""
        from bytenite_nb.server.execution.datasources import DataSourceError, describe_source

        source = protojson.data_source_in(body.data_source)
        # tempUrl is dropped from stored sources (the server owns it), so read it as sent.
        raw = body.data_source
        uploaded, temp_url = _upload_behind(ctx_of(request), {
            "dataSourceDescriptor": (source or {}).get("dataSourceDescriptor"),
            "params": (raw.params if raw is not None else None) or {}})
        try:
            info = describe_source(source, body.list_files, uploaded_file=uploaded,
                                   temp_url=temp_url)
        except DataSourceError as exc:
            raise bad_request(str(exc)) from None
        info["size"] = wire.int64_out(info.get("size") or 0)
        return JSONResponse(info)

    @router.post("/logs", response_model=models.LogsResponse, tags=["logs"], responses=e404)
    def get_logs(request: Request, body: models.LogsRequest) -> JSONResponse:
        """A job's logs by service; ``taskIds``/``levels``/``services`` filter (empty = all)."""
        ctx = ctx_of(request)
        load_job(ctx, body.job_id)
        try:
            levels = {wire.LogLevel.parse(v).value for v in body.levels}
            services = {wire.LogService.parse(v).value for v in body.services}
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        task_ids = set(body.task_ids)
        out: dict[str, Any] = {"partitioner": [], "assembler": [], "taskrunner": {}}
        for row in ctx.store.logs(body.job_id):
            if levels and row.level not in levels:
                continue
            if services and row.service not in services:
                continue
            if row.service == wire.LogService.TASKRUNNER.value:
                tid = wire.task_id(row.chunk) if row.chunk is not None else "job"
                if task_ids and tid not in task_ids:
                    continue
                out["taskrunner"].setdefault(tid, {"logs": []})["logs"].append(
                    protojson.log_out(row))
            elif task_ids:
                continue  # asking for tasks' logs: the engines' logs are not one of them
            else:
                key = row.service.lower()
                out.setdefault(key, []).append(protojson.log_out(row))
        return JSONResponse(out)

    @router.get("/events", tags=["events"], responses={200: {
        "description": "NDJSON stream: one {\"result\":{\"event\",\"seq\",\"data\"}} per line "
                       "(see docs/events.md)",
        "content": {"application/x-ndjson": {}}}})
    async def events(
        request: Request,
        since: Annotated[str | None, Query(
            description="ByteNite Local extension: replay events after this seq")] = None,
        job_id: Annotated[str | None, Query(
            alias="jobId", description="ByteNite Local extension: only this job's events")] = None,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> StreamingResponse:
        """The live events stream (job states, task states, logs, heartbeats)."""
        resume = since if since not in (None, "") else last_event_id
        start: int | None = None
        if resume not in (None, ""):
            try:
                start = wire.int64_in(resume, field="since")
            except ValueError as exc:
                raise bad_request(str(exc)) from None
        stream = ctx_of(request).broker.stream(start, job_id)
        return StreamingResponse(stream, media_type="application/x-ndjson",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})

    return router


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


def _deprecated(path: str) -> Any:
    replacement = {
        "/jobs/templates/{jobTemplateId}/presets": "job params (PATCH /jobs/{jobId}/params)",
        "/schema/{id}": "the template's schema.json (GET /jobs/templates)",
        "/stats/detail/{id}": "GET /jobs/{jobId} and POST /jobs/filter",
        "/stats/job_types": "GET /jobs/templates",
    }[path]

    def gone(**_: str) -> None:
        raise ApiError(410, f"{path} was deprecated by ByteNite in 2025 and is not served; "
                            f"use {replacement} instead")
    # Declare the path's parameters so the OpenAPI document stays valid.
    gone.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=str)
        for name in re.findall(r"{(\w+)}", path)])
    gone.__name__ = "deprecated_" + re.sub(r"\W+", "_", path).strip("_")
    gone.__doc__ = f"Deprecated by ByteNite: use {replacement}."
    return gone


def _mutate(request: Request, job_id: str, action: str, change: Any) -> dict[str, Any]:
    """Apply ``change`` to a NEW job atomically; 404 if missing, 400 naming the state if not NEW."""
    ctx = ctx_of(request)
    load_job(ctx, job_id)

    def guarded(job: dict[str, Any]) -> dict[str, Any]:
        if job["state"] != JobState.NEW.value:
            raise _not_new(job, action)
        return change(job)
    job = ctx.store.update_job(job_id, guarded)
    if job is None:
        raise not_found(f"Job {job_id!r} not found")
    return job


def _jobs_page(request: Request, filters: list[tuple[str, str, Any]], limit: int | None,
               offset: int | None, order_by: str | None) -> Response:
    page = joblist.jobs_page(ctx_of(request).store, filters, order_by, limit, offset,
                             render=True)
    # The rows SQLite rendered are spliced in as they are: decoding them only to encode them
    # again was most of a page's cost. The rest is encoded as JSONResponse would encode it.
    parts = [item.text if isinstance(item, jobrender.Rendered) else _json(
        job_body_dict(request, item)) for item in page.items]
    body = f'{{"pagination":{_json(page.pagination())},"data":[{",".join(parts)}]}}'
    return Response(body.encode("utf-8"), media_type="application/json")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
