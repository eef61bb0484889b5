"""``POST /datasource/test``: what a data source holds (files, sizes), without downloading."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from bytenite_nb import wire
from bytenite_nb.server.http import models, protojson
from bytenite_nb.server.http.deps import Jobs

router = APIRouter(tags=["datasources"])


@router.post("/datasource/test", response_model=models.DataSourceInfoResponse)
def test_data_source(jobs: Jobs, body: models.DataSourceTestRequest) -> JSONResponse:
    """Check a data source: what file(s) it holds and their size (nothing is downloaded)."""
    raw = body.data_source
    # The stored form drops tempUrl (the server owns it), so it is read as sent.
    params = (raw.params if raw is not None else None) or {}
    temp_url = str(params.get("tempUrl") or params.get("temp_url") or "")
    info = jobs.describe_source(protojson.data_source_in(raw), temp_url, body.list_files)
    info["size"] = wire.int64_out(info.get("size") or 0)
    return JSONResponse(info)
