"""A job's life through the Customer API: create, read, change while a draft, run, abort,
delete; the ``file`` upload's completion. Mounted under ``/v1/customer`` and
``/v1/computing``.

Each route parses its request, calls `JobService` (which holds the rules and raises the
errors) and renders the job. Routes are plain ``def``s, so FastAPI runs them on its thread
pool and SQLite never blocks the event loop.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from bytenite_nb.server.http import models, protojson
from bytenite_nb.server.http.deps import Jobs
from bytenite_nb.server.http.responses import error_responses, job_response, ok
from bytenite_nb.server.service.jobs import JobDraft

router = APIRouter(tags=["jobs"])
_404 = error_responses(404)


@router.post("/jobs", response_model=models.JobResponse,
             responses={**_404, **error_responses(409)})
def create_job(request: Request, jobs: Jobs, body: models.CreateJobRequest) -> JSONResponse:
    """Create a job in ``JOB_STATE_NEW`` with the template's defaults applied.

    With ``jobId``, a retried create is idempotent: while the job is still NEW it is
    updated and returned; once it has run, 409."""
    job = jobs.create(JobDraft(
        template_id=body.template_id, job_id=body.job_id, name=body.name or "",
        description=body.description or "",
        data_source=protojson.data_source_in(body.data_source),
        data_destination=protojson.data_source_in(body.data_destination),
        params=protojson.params_given(body.params) if body.params is not None else None,
        config=protojson.config_in(body.config)))
    return job_response(request, jobs, job)


@router.get("/jobs/{jobId}", response_model=models.JobResponse, responses=_404)
def get_job(request: Request, jobs: Jobs, jobId: str) -> JSONResponse:
    """One job."""
    return job_response(request, jobs, jobs.get(jobId))


@router.delete("/jobs/{jobId}", response_model=models.GenericResponse, responses=_404)
def delete_job(request: Request, jobs: Jobs, jobId: str) -> JSONResponse:
    """Delete a job with its files and results (a running job is aborted first)."""
    jobs.delete(jobId)
    return ok(request, f"Job {jobId} deleted")


@router.patch("/jobs/{jobId}/datasource", response_model=models.JobResponse, responses=_404)
def set_data_source(request: Request, jobs: Jobs, jobId: str,
                    body: models.SetDataSourceRequest) -> JSONResponse:
    """Set the data source and/or destination (only while NEW)."""
    job = jobs.set_data_source(jobId, protojson.data_source_in(body.data_source),
                               protojson.data_source_in(body.data_destination))
    return job_response(request, jobs, job)


@router.patch("/jobs/{jobId}/params", response_model=models.JobResponse, responses=_404)
def set_params(request: Request, jobs: Jobs, jobId: str,
               body: models.AppParamsIn) -> JSONResponse:
    """Set params sections; each given section replaces the job's (over template defaults)."""
    return job_response(request, jobs, jobs.set_params(jobId, protojson.params_given(body)))


@router.patch("/jobs/{jobId}/jobname", response_model=models.JobResponse, responses=_404)
def set_job_name(request: Request, jobs: Jobs, jobId: str,
                 body: Annotated[models.Name | models.JobNameObject, Body(
                     description="the new name as a raw JSON string, e.g. \"My Job\"")],
                 ) -> JSONResponse:
    """Rename a job (only while NEW)."""
    name = body if isinstance(body, str) else body.name
    return job_response(request, jobs, jobs.rename(jobId, name))


@router.patch("/jobs/{jobId}/configs", response_model=models.JobResponse, responses=_404)
def set_configs(request: Request, jobs: Jobs, jobId: str,
                body: models.JobConfigIn) -> JSONResponse:
    """Set ``taskTimeout``, ``jobTimeout``, ``isTestJob`` (and ``maxTaskRetries``)."""
    return job_response(request, jobs, jobs.set_config(jobId, protojson.config_in(body)))


@router.patch("/jobs/{jobId}/uploadcompleted", response_model=models.GenericResponse,
              responses=_404)
def upload_completed(request: Request, jobs: Jobs, jobId: str) -> JSONResponse:
    """Mark the ``file`` data source's upload complete (the bytes must be PUT first)."""
    upload = jobs.complete_upload(jobId)
    return ok(request, f"Upload of job {jobId} completed ({upload.size} bytes)")


@router.post("/jobs/uploadcompleted/{jobId}", response_model=models.GenericResponse,
             responses=_404, deprecated=True)
def upload_completed_legacy(request: Request, jobs: Jobs, jobId: str,
                            body: Annotated[dict[str, Any] | None, Body()] = None,
                            ) -> JSONResponse:
    """The 2023 form of ``PATCH /jobs/{jobId}/uploadcompleted`` (ByteNite's file-upload
    guide still shows it); same behaviour."""
    return upload_completed(request, jobs, jobId)


@router.post("/jobs/{jobId}/run", response_model=models.GenericResponse,
             responses={**_404, **error_responses(503)})
def run_job(request: Request, jobs: Jobs, jobId: str,
            body: Annotated[models.RunJobRequest | None, Body()] = None) -> JSONResponse:
    """Start a NEW job. Body: ``{"config": {...}}``, the same fields flat, or none."""
    config = {}
    if body is not None:
        config = {**protojson.config_in(body), **protojson.config_in(body.config)}
    jobs.run(jobId, config)  # type: ignore[arg-type]
    return ok(request, f"Job {jobId} started")


@router.post("/jobs/{jobId}/abort", response_model=models.GenericResponse, responses=_404)
def abort_job(request: Request, jobs: Jobs, jobId: str) -> JSONResponse:
    """Abort a running job (ends FAILED); a job that never started is deleted."""
    if jobs.abort(jobId):
        return ok(request, f"Job {jobId} had not started and was deleted")
    return ok(request, f"Job {jobId} aborted")
