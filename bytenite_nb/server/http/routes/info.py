"""``GET /info`` of the Customer API (`router`) and of the Developer API (`dev_router`):
the server's version and what it serves. (The auth service's ``/info`` is in `auth`.)"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from bytenite_nb.server.http import models
from bytenite_nb.server.http.responses import DEV_API, version_info

router = APIRouter(tags=["info"])
dev_router = APIRouter(tags=["developer"])


@router.get("/info", response_model=models.InfoResponse)
def info() -> JSONResponse:
    """Server version and messages."""
    return JSONResponse(version_info("ByteNite Local: the ByteNite Customer API, run locally"))


@dev_router.get("/info", openapi_extra=DEV_API, response_model=models.InfoResponse)
def dev_info() -> JSONResponse:
    """Developer API version."""
    return JSONResponse(version_info("ByteNite Local: ByteNite's Developer API subset (apps, "
                                     "engines, templates, user cache)"))
