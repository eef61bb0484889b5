"""``create_app(config)``: the ByteNite Local FastAPI application, assembled from the route
modules of `bytenite_nb.server.http.routes`:

* ``/v1/auth``: `auth` (token exchange, info) and `secrets` (the user's secrets);
* the Customer API under ``/v1/customer`` and again under ``/v1/computing``: `info`,
  `templates`, `deprecated`, `job_list`, `jobs`, `results`, `datasource`, `logs`, `events`;
* ByteNite's Developer API subset under ``/v1/dev``: `dev_apps`, `dev_engines`,
  `dev_templates`, `dev_cache`, `dev_envs` (and `info`'s ``dev_router``);
* ByteNite Local's unauthenticated file routes under ``/local``: `files` (result links, the
  ``file`` upload target and the user cache's upload URLs, all addressed by unguessable
  tokens).

Everything but ``/local`` and the token exchange needs an access token (`deps.require_token`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI

from bytenite_nb import __version__, wire
from bytenite_nb.server.config import ServerConfig
from bytenite_nb.server.context import ServerContext
from bytenite_nb.server.http.deps import require_token
from bytenite_nb.server.http.errors import ApiError, install_error_handlers
from bytenite_nb.server.http.idle import ActivityMiddleware
from bytenite_nb.server.http.middleware import BodyLimitMiddleware, RequestIdMiddleware
from bytenite_nb.server.http.responses import error_responses
from bytenite_nb.server.http.routes import (
    auth,
    datasource,
    deprecated,
    dev_apps,
    dev_cache,
    dev_engines,
    dev_envs,
    dev_templates,
    events,
    files,
    info,
    job_list,
    jobs,
    logs,
    results,
    secrets,
    templates,
)

_AUTHENTICATED = {"dependencies": [Depends(require_token)],
                  "responses": error_responses(400, 401, 413)}
#: Routes whose body is not held by the request-size cap (`BodyLimitMiddleware`): the upload
#: targets stream theirs to disk and the Developer API's pushes decode theirs, each under
#: ``max_upload_bytes``.
_OWN_BODY_LIMITS = (("PUT", "/local/uploads/"), ("PUT", "/local/cache/"),
                    ("POST", wire.DEV_PREFIX + "/apps"), ("POST", wire.DEV_PREFIX + "/engines"))


def _customer_api() -> APIRouter:
    """The Customer API, in matching order: ``/jobs/templates`` before ``/jobs/{jobId}``."""
    router = APIRouter(**_AUTHENTICATED)  # type: ignore[arg-type]
    for module in (info, templates, deprecated, job_list, jobs, results, datasource, logs,
                   events):
        router.include_router(module.router)
    return router


def _developer_api() -> APIRouter:
    router = APIRouter(**_AUTHENTICATED)  # type: ignore[arg-type]
    router.include_router(info.dev_router)
    for module in (dev_apps, dev_engines, dev_templates, dev_cache, dev_envs):
        router.include_router(module.router)
    return router


def _tidy_openapi(app: FastAPI) -> None:
    """Validation errors answer 400 in ByteNite's shape, so drop FastAPI's 422 entries."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        for item in schema.get("paths", {}).values():
            for op in item.values():
                if isinstance(op, dict):
                    op.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(config: ServerConfig, ctx: ServerContext | None = None) -> FastAPI:
    """Build the app for ``config`` (opening its data dir unless ``ctx`` is given).

    The caller owns the context: ``app.state.ctx.close()`` when the server stops.
    """
    ctx = ctx or ServerContext.open(config)
    app = FastAPI(
        title="ByteNite Local",
        version=__version__,
        description="The ByteNite Customer API, served and executed locally. Operations "
                    "tagged 'extension' (x-bytenite-local-extension) are ByteNite Local's own.",
    )
    app.state.ctx = ctx
    app.add_middleware(BodyLimitMiddleware, limit=config.max_request_bytes,
                       exempt=_OWN_BODY_LIMITS)
    app.add_middleware(RequestIdMiddleware)
    # Added last, so outermost: a request counts from arrival until fully sent (idle timeout).
    app.add_middleware(ActivityMiddleware, activity=ctx.activity)
    install_error_handlers(app)
    app.include_router(auth.router, prefix=wire.AUTH_PREFIX)
    app.include_router(secrets.router, prefix=wire.AUTH_PREFIX,
                       dependencies=[Depends(require_token)])
    customer = _customer_api()
    app.include_router(customer, prefix=wire.CUSTOMER_PREFIX)
    app.include_router(customer, prefix=wire.COMPUTING_PREFIX)
    app.include_router(_developer_api(), prefix=wire.DEV_PREFIX)
    app.include_router(files.router, prefix="/local")
    _tidy_openapi(app)
    return app


__all__ = ["ApiError", "RequestIdMiddleware", "create_app"]
