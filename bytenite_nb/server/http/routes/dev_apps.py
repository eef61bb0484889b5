"""Developer API apps (``/v1/dev/apps``): push, list, get, download, activate, deactivate,
status. What the ByteNite Dev CLI's ``bytenite app ...`` commands call.

Shapes follow ByteNite's developer SDK: ``POST /apps`` answers the App record, ``GET /apps``
``{"apps": [...]}``, ``GET /apps/{tag}`` ``{"app": ...}``, activate/deactivate/status a
``GenericResponse``. ``GET /apps/{tag}/download`` is documented by ByteNite without a shape;
ByteNite Local answers ``{"data", "tag", "hash"}``, ``data`` in the format ``POST /apps``
takes (see ``docs/local-server.md``). Persistence and archive checks live in
`bytenite_nb.server.storage.dev_store`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from bytenite_nb.server.http import dev_models as dm
from bytenite_nb.server.http import dev_render, models
from bytenite_nb.server.http.deps import Ctx, Limit, Offset, OrderBy
from bytenite_nb.server.http.responses import (
    DEV_API,
    PUSH_BODY,
    error_responses,
    generic,
    ok,
)
from bytenite_nb.server.service.developer import find_engine

router = APIRouter(tags=["developer"])
_APP = ("app",)
_404 = error_responses(404)


@router.get("/apps", openapi_extra=DEV_API, response_model=dm.AppsResponse)
def list_apps(ctx: Ctx, limit: Limit = None, offset: Offset = None,
              order_by: OrderBy = None) -> JSONResponse:
    """Every app on this server (bundled, ``--apps`` folders and pushed), any status."""
    records = [dev_render.engine_record(e) for e in ctx.registry.engines("app")]
    return JSONResponse({"apps": dev_render.page(records, dev_render.LIST_FIELDS, order_by,
                                                 limit, offset)})


@router.post("/apps", openapi_extra={**DEV_API, **PUSH_BODY}, response_model=dm.AppOut)
def push_app(ctx: Ctx, body: Annotated[models.JsonObject, Body()]) -> JSONResponse:
    """Upload an app folder (``bytenite app push``). A first push is ``inactive``:
    activate it before running jobs. Its ``template.json`` is registered too."""
    return JSONResponse(dev_render.engine_record(ctx.dev.push(body.get("data"), engines=False)))


@router.get("/apps/{appTag}", openapi_extra=DEV_API, responses=_404,
            response_model=dm.AppResponse)
def get_app(ctx: Ctx, appTag: str) -> JSONResponse:
    """The app a tag (``name``, ``name@1``, ``name@1.2``) or id names, any status."""
    return JSONResponse({"app": dev_render.engine_record(find_engine(ctx.registry, appTag,
                                                                     _APP))})


@router.get("/apps/{appTag}/download", openapi_extra=DEV_API, responses=_404,
            response_model=dm.DownloadResponse)
def download_app(ctx: Ctx, appTag: str) -> JSONResponse:
    """The app's folder (``bytenite app pull``): ``data`` is the base64 of a tar of its
    contents, what ``POST /apps`` takes, so push → download → unpack gives the same files.
    Pushed, bundled and ``--apps`` apps alike."""
    engine = find_engine(ctx.registry, appTag, _APP)
    return JSONResponse(dev_render.download(engine, ctx.dev.archive(engine)))


@router.post("/apps/{appTag}/activate", openapi_extra=DEV_API, responses=_404,
             response_model=models.GenericResponse)
def activate_app(request: Request, ctx: Ctx, appTag: str) -> JSONResponse:
    """Let jobs use this app version."""
    engine = ctx.dev.set_status(find_engine(ctx.registry, appTag, _APP), True)
    return ok(request, f"app {engine.tag} is active")


@router.post("/apps/{appTag}/deactivate", openapi_extra=DEV_API, responses=_404,
             response_model=models.GenericResponse)
def deactivate_app(request: Request, ctx: Ctx, appTag: str) -> JSONResponse:
    """Stop jobs from using this app version (runs already started are not affected)."""
    engine = ctx.dev.set_status(find_engine(ctx.registry, appTag, _APP), False)
    return ok(request, f"app {engine.tag} is inactive")


@router.get("/apps/{appTag}/status", openapi_extra=DEV_API, responses=_404,
            response_model=dm.AppStatusResponse)
def app_status(request: Request, ctx: Ctx, appTag: str) -> JSONResponse:
    """``message`` (and ByteNite Local's ``status``) is ``active`` or ``inactive``."""
    engine = find_engine(ctx.registry, appTag, _APP)
    return JSONResponse({**generic(request, engine.status), "status": engine.status})
