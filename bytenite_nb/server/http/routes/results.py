"""What a run produced: ``GET /jobs/{jobId}/results`` (links to the result files, served
without auth under ``/local/results/...`` by `files`, with each file's size as an
extension) and, as a ByteNite Local extension, ``GET /jobs/{jobId}/tasks`` (every task with
its state and timing, and with ``?attempts=true`` each of its attempts)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from bytenite_nb.server.http import models, protojson
from bytenite_nb.server.http.deps import Jobs
from bytenite_nb.server.http.responses import EXTENSION, error_responses, result_link

router = APIRouter(tags=["jobs"], responses=error_responses(404))


@router.get("/jobs/{jobId}/results", response_model=models.ResultsResponse)
def job_results(request: Request, jobs: Jobs, jobId: str) -> JSONResponse:
    """Result files with links ByteNite Local serves without auth for 48 hours."""
    results = [{"name": r.name, "link": result_link(request, r.token, r.name),
                "size": r.size} for r in jobs.results(jobId)]
    return JSONResponse({"results": results})


@router.get("/jobs/{jobId}/tasks", response_model=models.TasksResponse, tags=["extension"],
            openapi_extra=EXTENSION)
def job_tasks(jobs: Jobs, jobId: str, attempts: bool = Query(
        False, description="also each task's attempts (attemptHistory): when each started "
        "and ended, and how")) -> JSONResponse:
    """ByteNite Local extension: every task (one per chunk) with state and timing."""
    tasks = jobs.tasks(jobId)
    if not attempts:
        return JSONResponse({"tasks": [protojson.task_out(t) for t in tasks]})
    history = jobs.task_attempts(jobId)
    return JSONResponse({"tasks": [protojson.task_out(t, history.get(t.chunk) or None)
                                   for t in tasks]})
