"""``POST /logs``: a job's log lines by service (partitioner, assembler, each task)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from bytenite_nb.server.http import models, protojson
from bytenite_nb.server.http.deps import Jobs
from bytenite_nb.server.http.responses import error_responses

router = APIRouter(tags=["logs"])


@router.post("/logs", response_model=models.LogsResponse, responses=error_responses(404))
def get_logs(jobs: Jobs, body: models.LogsRequest) -> JSONResponse:
    """A job's logs by service; ``taskIds``/``levels``/``services`` filter (empty = all)."""
    logs = jobs.logs(body.job_id, levels=body.levels, services=body.services,
                     task_ids=body.task_ids)
    out: dict[str, Any] = {
        "partitioner": [protojson.log_out(r) for r in logs.partitioner],
        "assembler": [protojson.log_out(r) for r in logs.assembler],
        "taskrunner": {tid: {"logs": [protojson.log_out(r) for r in rows]}
                       for tid, rows in logs.tasks.items()},
    }
    return JSONResponse(out)
