"""App environments (``/v1/dev/environments``, a ByteNite Local extension): the virtual
environments built from app folders' ``requirements.txt``, listed and removed
(``bytenite-nb envs``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bytenite_nb import wire
from bytenite_nb.server.errors import InvalidRequest
from bytenite_nb.server.execution.resources import format_bytes
from bytenite_nb.server.http import dev_models as dm
from bytenite_nb.server.http import models
from bytenite_nb.server.http.deps import Ctx
from bytenite_nb.server.http.responses import DEV_API, EXTENSION, error_responses, generic, ok
from bytenite_nb.server.service import environments as service

router = APIRouter(tags=["developer", "extension"])
_EXTRA = {**DEV_API, **EXTENSION}


@router.get("/environments", openapi_extra=_EXTRA, response_model=dm.EnvironmentsResponse)
async def list_environments(ctx: Ctx) -> JSONResponse:
    """Every app environment: its requirements, size (bytes), when it was built and last
    used, and the apps and engines whose requirements it holds (``usedBy``)."""
    assert ctx.environments is not None
    found = await run_in_threadpool(service.list_environments, ctx.registry, ctx.environments)
    return JSONResponse({"environments": found})


@router.delete("/environments", openapi_extra=_EXTRA, response_model=dm.EnvironmentsRemoved,
               responses=error_responses(400))
async def remove_unused(request: Request, ctx: Ctx,
                        unused: Annotated[bool, Query(
                            description="must be true: remove every environment that no "
                                        "app or engine uses")] = False) -> JSONResponse:
    """Remove every environment no app or engine uses (and no running job holds)."""
    if not unused:
        raise InvalidRequest("DELETE /v1/dev/environments removes every unused environment: "
                             "say so with ?unused=true (or DELETE /v1/dev/environments/NAME)")
    assert ctx.environments is not None
    removed, freed = await run_in_threadpool(service.remove_unused, ctx.registry,
                                             ctx.environments, ctx.runner.executor)
    what = f"{len(removed)} unused environment{'s' if len(removed) != 1 else ''}"
    return JSONResponse({**generic(request, f"Removed {what} ({format_bytes(freed)})"),
                         "removed": removed, "freed": wire.int64_out(freed)})


@router.delete("/environments/{name}", openapi_extra=_EXTRA,
               response_model=models.GenericResponse, responses=error_responses(404, 409))
async def remove_environment(request: Request, ctx: Ctx, name: str) -> JSONResponse:
    """Remove one environment (a later job that needs it builds it again)."""
    assert ctx.environments is not None
    freed = await run_in_threadpool(service.remove_environment, ctx.environments, name,
                                    ctx.runner.executor)
    return ok(request, f"Removed environment {name} ({format_bytes(freed)})")
