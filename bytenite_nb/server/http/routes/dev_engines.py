"""Developer API engines (``/v1/dev/engines``): partitioners and assemblers, pushed, listed,
read, downloaded, activated and deactivated as apps are (see `dev_apps`).

Engines answer the Engine record (with ``type``) for push and get, ``{"engines": [...]}`` for
the list and a ``DeveloperEngineMessage`` (``engineId, engineTag, engineData, engineLink,
engineStatus``) for activate/deactivate/status. A name that is both a partitioner and an
assembler needs ``?type=`` (a ByteNite Local extension).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse

from bytenite_nb.server.execution.registry import ENGINE_KINDS
from bytenite_nb.server.http import dev_models as dm
from bytenite_nb.server.http import dev_render, limits, models
from bytenite_nb.server.http.deps import Ctx, Limit, Offset, OrderBy
from bytenite_nb.server.http.responses import DEV_API, PUSH_BODY, error_responses
from bytenite_nb.server.service.developer import engine_kinds, find_engine

router = APIRouter(tags=["developer"])
_404 = error_responses(404)

EngineType = Annotated[str | None, Query(
    alias="type", max_length=limits.MAX_WORD,
    description="ByteNite Local: partitioner or assembler, when a name is both")]


@router.get("/engines", openapi_extra=DEV_API, response_model=dm.EnginesResponse)
def list_engines(ctx: Ctx, limit: Limit = None, offset: Offset = None,
                 order_by: OrderBy = None) -> JSONResponse:
    """Every partitioner and assembler, the built-in ``passthrough`` ones included."""
    records = [dev_render.engine_record(e) for kind in ENGINE_KINDS
               for e in ctx.registry.engines(kind)]
    return JSONResponse({"engines": dev_render.page(records, dev_render.LIST_FIELDS, order_by,
                                                    limit, offset)})


@router.post("/engines", openapi_extra={**DEV_API, **PUSH_BODY}, response_model=dm.EngineOut)
def push_engine(ctx: Ctx, body: Annotated[models.JsonObject, Body()]) -> JSONResponse:
    """Upload a partitioner or assembler folder (manifest ``type``); first push inactive."""
    data = body.get("data", body.get("engineData"))
    return JSONResponse(dev_render.engine_record(ctx.dev.push(data, engines=True)))


@router.get("/engines/{engineTag}", openapi_extra=DEV_API, responses=_404,
            response_model=dm.EngineOut)
def get_engine(ctx: Ctx, engineTag: str, engine_type: EngineType = None) -> JSONResponse:
    """The engine record (unwrapped, as ByteNite's SDK declares it)."""
    engine = find_engine(ctx.registry, engineTag, engine_kinds(engine_type))
    return JSONResponse(dev_render.engine_record(engine))


@router.get("/engines/{engineTag}/download", openapi_extra=DEV_API, responses=_404,
            response_model=dm.DownloadResponse)
def download_engine(ctx: Ctx, engineTag: str, engine_type: EngineType = None) -> JSONResponse:
    """The engine's folder, as ``GET /apps/{appTag}/download`` (built-in ``passthrough``
    has none: 400)."""
    engine = find_engine(ctx.registry, engineTag, engine_kinds(engine_type))
    return JSONResponse(dev_render.download(engine, ctx.dev.archive(engine)))


@router.post("/engines/{engineTag}/activate", openapi_extra=DEV_API, responses=_404,
             response_model=dm.EngineMessage)
def activate_engine(ctx: Ctx, engineTag: str, engine_type: EngineType = None) -> JSONResponse:
    """Let jobs use this engine version."""
    engine = find_engine(ctx.registry, engineTag, engine_kinds(engine_type))
    return JSONResponse(dev_render.engine_message(ctx.dev.set_status(engine, True)))


@router.post("/engines/{engineTag}/deactivate", openapi_extra=DEV_API, responses=_404,
             response_model=dm.EngineMessage)
def deactivate_engine(ctx: Ctx, engineTag: str,
                      engine_type: EngineType = None) -> JSONResponse:
    """Stop jobs from using this engine version."""
    engine = find_engine(ctx.registry, engineTag, engine_kinds(engine_type))
    return JSONResponse(dev_render.engine_message(ctx.dev.set_status(engine, False)))


@router.get("/engines/{engineTag}/status", openapi_extra=DEV_API, responses=_404,
            response_model=dm.EngineMessage)
def engine_status(ctx: Ctx, engineTag: str, engine_type: EngineType = None) -> JSONResponse:
    """``engineStatus`` is ``active`` or ``inactive``."""
    engine = find_engine(ctx.registry, engineTag, engine_kinds(engine_type))
    return JSONResponse(dev_render.engine_message(engine))
