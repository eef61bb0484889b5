"""Developer API job templates (``/v1/dev/templates``): push (``bytenite template push``),
list and read. ``GET /templates`` answers ``{"templates": [...]}``, ``GET /templates/{id}``
the template, ``POST /templates`` a ``GenericResponse`` plus the stored ``template``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from bytenite_nb.server.execution.registry import known_template_keys
from bytenite_nb.server.http import dev_models as dm
from bytenite_nb.server.http import dev_render, models
from bytenite_nb.server.http.deps import Ctx, Limit, Offset, OrderBy
from bytenite_nb.server.http.responses import DEV_API, error_responses, generic
from bytenite_nb.server.service.templates import find_template

router = APIRouter(tags=["developer"])


@router.get("/templates", openapi_extra=DEV_API, response_model=dm.DevTemplatesResponse)
def list_templates(ctx: Ctx, limit: Limit = None, offset: Offset = None,
                   order_by: OrderBy = None) -> JSONResponse:
    """Every job template."""
    records = [dev_render.template_record(t) for t in ctx.registry.templates()]
    return JSONResponse({"templates": dev_render.page(records, dev_render.TEMPLATE_FIELDS,
                                                      order_by, limit, offset)})


@router.post("/templates", openapi_extra=DEV_API, response_model=dm.TemplatePushResponse)
def push_template(request: Request, ctx: Ctx,
                  body: Annotated[models.JsonObject, Body()]) -> JSONResponse:
    """Upload a job template (``bytenite template push``): the ``template.json`` object.
    Its app and engines need not exist yet; a job checks them when it runs."""
    template = ctx.dev.push_template(body)
    message = f"template {template.id} saved"
    if template.unknown_keys:
        message += (f"; unknown key(s) ignored: {', '.join(template.unknown_keys)} (ByteNite "
                    f"Local reads {known_template_keys()})")
    return JSONResponse({**generic(request, message),
                         "template": dev_render.template_record(template)})


@router.get("/templates/{templateId}", openapi_extra=DEV_API, responses=error_responses(404),
            response_model=dm.DevTemplateOut)
def get_template(ctx: Ctx, templateId: str) -> JSONResponse:
    """One job template (unwrapped, as ByteNite's SDK declares it)."""
    return JSONResponse(dev_render.template_record(find_template(ctx.registry, templateId)))
