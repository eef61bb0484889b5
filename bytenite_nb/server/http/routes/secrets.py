"""``/v1/auth/secrets``: the user's secrets (data source credentials and the secrets apps
list in their manifest). A secret's key is write-only: it is stored, handed to the jobs
started afterwards (``SECRETS``), and never answered back. Rules in
`bytenite_nb.server.execution.secrets`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from bytenite_nb import wire
from bytenite_nb.server.errors import InvalidRequest, NotFound
from bytenite_nb.server.execution import secrets as usersecrets
from bytenite_nb.server.http import limits, models
from bytenite_nb.server.http.deps import Ctx
from bytenite_nb.server.http.responses import error_responses, generic, ok

router = APIRouter(tags=["auth"], responses=error_responses(400, 401))


def _secret_type(value: str) -> str:
    """The canonical secretType (``s3`` → ``aws``), or a 400 naming the accepted ones."""
    try:
        return wire.secret_type(value)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None


@router.get("/secrets", response_model=models.SecretsResponse)
def list_secrets(
    ctx: Ctx, secret_type: Annotated[str | None, Query(alias="secretType",
                                                      max_length=limits.MAX_WORD)] = None,
) -> JSONResponse:
    """Your secrets (of one ``secretType``, if given), oldest first, without their keys."""
    kind = _secret_type(secret_type) if secret_type else None
    return JSONResponse({"secrets": [row.record() for row in ctx.store.secrets(kind)]})


@router.post("/secrets", response_model=models.SaveSecretResponse)
def save_secret(request: Request, ctx: Ctx, body: models.SaveSecretRequest) -> JSONResponse:
    """Save a secret; the same ``(secretType, id)`` again replaces it. Apps read it from
    ``SECRETS``, and as ``<id>`` / ``<id>_ACCESS_KEY`` + ``<id>_SECRET_KEY`` when their
    manifest lists the id in ``platform_config.secrets``."""
    secret = body.secret
    record = usersecrets.validate_secret(
        secret_id=secret.id, secret_type=secret.secret_type, access_key=secret.access_key,
        secret_key=body.secret_key, expires_at=secret.expires_at, params=secret.params,
        name=secret.name)
    verb = "replaced" if ctx.store.save_secret(record) else "saved"
    return JSONResponse({
        **generic(request, f"Secret {record['id']} ({record['secretType']}) {verb}"),
        "id": record["id"]})


@router.delete("/secrets/{secretType}/{id}", response_model=models.GenericResponse,
               responses=error_responses(404))
def delete_secret(request: Request, ctx: Ctx, secretType: str, id: str) -> JSONResponse:
    """Delete a secret (jobs started afterwards no longer get it)."""
    kind = _secret_type(secretType)
    if not ctx.store.delete_secret(kind, id):
        raise NotFound(f"No {kind} secret with id {id[:140]!r}: GET /v1/auth/secrets "
                       "lists your secrets")
    return ok(request, f"Secret {id} ({kind}) deleted")
