"""The auth service (``/v1/auth``): exchange an API key for an access token, and its
``/info``. The user's secrets, also under ``/v1/auth``, are in `secrets`."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from bytenite_nb import wire
from bytenite_nb.server.http import models
from bytenite_nb.server.http.deps import Ctx
from bytenite_nb.server.http.responses import error_responses, version_info

router = APIRouter(tags=["auth"])


@router.post("/access_token", response_model=models.AccessTokenResponse,
             responses=error_responses(400, 401))
def access_token(ctx: Ctx, body: models.AccessTokenRequest) -> JSONResponse:
    """Exchange an API key for an access token (``expiresIn`` seconds)."""
    token, ttl = ctx.auth.issue(body.api_key)
    return JSONResponse({"token": token, "expiresIn": wire.int64_out(ttl), "scope": "openid"})


@router.get("/info", response_model=models.InfoResponse)
def auth_info() -> JSONResponse:
    """Auth service version."""
    return JSONResponse(version_info())
