"""Customer API routes ByteNite deprecated in 2025: each answers 410 naming what replaces it.

They stay in the OpenAPI document (``deprecated: true``), so a client generated from an old
document learns where to go instead of meeting a bare 404.
"""

from __future__ import annotations

from fastapi import APIRouter

from bytenite_nb.server.errors import Gone
from bytenite_nb.server.http.responses import error_responses

router = APIRouter(tags=["deprecated"], responses=error_responses(410))


def _gone(path: str, replacement: str) -> None:
    raise Gone(f"{path} was deprecated by ByteNite in 2025 and is not served; "
               f"use {replacement} instead")


@router.get("/jobs/templates/{jobTemplateId}/presets", deprecated=True)
def deprecated_jobs_templates_jobTemplateId_presets(jobTemplateId: str) -> None:
    """Deprecated by ByteNite: use job params (PATCH /jobs/{jobId}/params)."""
    _gone("/jobs/templates/{jobTemplateId}/presets", "job params (PATCH /jobs/{jobId}/params)")


@router.get("/schema/{id}", deprecated=True)
def deprecated_schema_id(id: str) -> None:
    """Deprecated by ByteNite: use the template's schema.json (GET /jobs/templates)."""
    _gone("/schema/{id}", "the template's schema.json (GET /jobs/templates)")


@router.get("/stats/detail/{id}", deprecated=True)
def deprecated_stats_detail_id(id: str) -> None:
    """Deprecated by ByteNite: use GET /jobs/{jobId} and POST /jobs/filter."""
    _gone("/stats/detail/{id}", "GET /jobs/{jobId} and POST /jobs/filter")


@router.get("/stats/job_types", deprecated=True)
def deprecated_stats_job_types() -> None:
    """Deprecated by ByteNite: use GET /jobs/templates."""
    _gone("/stats/job_types", "GET /jobs/templates")
