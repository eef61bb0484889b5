"""Customer API job templates: ``GET /jobs/templates`` (paginated) and, as a ByteNite Local
extension, ``GET /jobs/templates/{templateId}``. Each template carries its engines' params
schemas as ``paramsSchema`` (an extension).

Mounted before `jobs`, so ``templates`` is never taken for a job id.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from bytenite_nb.server.execution.registry import Registry, Template
from bytenite_nb.server.http import models, protojson
from bytenite_nb.server.http.deps import Ctx, Limit, Offset, OrderBy
from bytenite_nb.server.http.responses import EXTENSION, error_responses
from bytenite_nb.server.service.templates import find_template, params_schemas
from bytenite_nb.server.storage.listing import query

router = APIRouter(tags=["templates"])


def _template_out(registry: Registry, template: Template) -> dict[str, Any]:
    return protojson.template_out(template, params_schemas(registry, template))


@router.get("/jobs/templates", response_model=models.TemplatesResponse)
def list_templates(ctx: Ctx, limit: Limit = None, offset: Offset = None,
                   order_by: OrderBy = None) -> JSONResponse:
    """Job templates, paginated (``orderBy`` defaults to ``createdAt``)."""
    records = [_template_out(ctx.registry, t) for t in ctx.registry.templates()]
    keys = query.parse_order(order_by, query.TEMPLATE_FIELDS, [("createdAt", False)])
    page = query.paginate(query.sort_records(records, keys, query.TEMPLATE_FIELDS),
                          limit, offset)
    return JSONResponse({"pagination": page.pagination(), "data": page.items})


@router.get("/jobs/templates/{templateId}", response_model=models.TemplateResponse,
            tags=["extension"], openapi_extra=EXTENSION, responses=error_responses(404))
def get_template(ctx: Ctx, templateId: str) -> JSONResponse:
    """ByteNite Local extension: one job template with its defaults."""
    template = find_template(ctx.registry, templateId)
    return JSONResponse({"template": _template_out(ctx.registry, template)})
