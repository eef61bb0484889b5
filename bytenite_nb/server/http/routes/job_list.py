"""Listing jobs: ``GET /jobs``, ``POST /jobs/filter`` (ByteNite's 11 filter conditions, see
`bytenite_nb.server.storage.listing.query`) and ``POST /jobs/runningTasks``.

A page is filtered, ordered and cut in SQL (`listing.sql`), and most rows come back already
rendered as protojson text by SQLite (`listing.render`); they are spliced into the response
as they are, which is most of what makes a page of 10,000 jobs fast.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse, Response

from bytenite_nb.server.http import models
from bytenite_nb.server.http.deps import Ctx, Limit, Offset, OrderBy
from bytenite_nb.server.http.responses import job_dict, json_text
from bytenite_nb.server.storage.listing import render, sql

router = APIRouter(tags=["jobs"])


def _jobs_page(request: Request, ctx: Ctx, filters: list[tuple[str, str, Any]],
               limit: int | None, offset: int | None, order_by: str | None) -> Response:
    page = sql.jobs_page(ctx.store, filters, order_by, limit, offset, render=True)
    # The rows SQLite rendered are spliced in as they are: decoding them only to encode them
    # again was most of a page's cost. The rest is encoded as JSONResponse would encode it.
    parts = [item.text if isinstance(item, render.Rendered) else json_text(
        job_dict(request, ctx.jobs, item)) for item in page.items]
    body = f'{{"pagination":{json_text(page.pagination())},"data":[{",".join(parts)}]}}'
    return Response(body.encode("utf-8"), media_type="application/json")


@router.get("/jobs", response_model=models.JobsResponse)
def list_jobs(request: Request, ctx: Ctx, limit: Limit = None, offset: Offset = None,
              order_by: OrderBy = None) -> Response:
    """All jobs, newest first unless ``orderBy`` says otherwise."""
    return _jobs_page(request, ctx, [], limit, offset, order_by)


@router.post("/jobs/filter", response_model=models.JobsResponse)
def filter_jobs(request: Request, ctx: Ctx,
                body: Annotated[models.FilterJobsRequest | None, Body()] = None) -> Response:
    """Jobs matching every filter (see ``query`` for the 11 conditions)."""
    body = body or models.FilterJobsRequest()
    pagination = body.pagination or models.PaginationIn()
    filters = [(f.field, f.condition, f.value) for f in body.filters]
    return _jobs_page(request, ctx, filters, pagination.limit, pagination.offset,
                      body.order_by)


@router.post("/jobs/runningTasks", response_model=models.RunningTasksResponse)
def running_tasks(ctx: Ctx, body: models.RunningTasksRequest) -> JSONResponse:
    """How many tasks of each listed job are running now (0 for idle or unknown jobs)."""
    return JSONResponse({"jobsRunningTasks": ctx.store.running_task_counts(body.jobs_ids)})
