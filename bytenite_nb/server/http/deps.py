"""The routes' dependencies, as ``Annotated`` aliases: declare a parameter ``ctx: Ctx`` or
``jobs: Jobs`` and FastAPI fills it in.

* `Ctx`: the `ServerContext` `create_app` attached to the app;
* `Jobs`: its `JobService`, which looks jobs up (404 naming the job when there is none);
* `require_token`: every authenticated router's dependency (``Authorization: <token>``, or
  ``Bearer <token>``);
* `Limit`, `Offset`, `OrderBy`: ByteNite's ``pagination.limit``, ``pagination.offset`` and
  ``orderBy`` query parameters.

`Ctx` and `Jobs` are ``async``, so they cost no thread. A route looks its job up itself
(``jobs.get(jobId)``, in its own worker thread) rather than through a ``def`` dependency:
FastAPI runs each ``def`` dependency on the thread pool separately, one more hop per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader

from bytenite_nb.server.context import ServerContext
from bytenite_nb.server.http import limits
from bytenite_nb.server.service.jobs import JobService

#: ``Authorization: <token>`` (``Bearer <token>`` accepted too), as ByteNite documents it.
token_header = APIKeyHeader(name="Authorization", auto_error=False,
                            description="Your ByteNite access token (raw or 'Bearer <token>')")


async def get_ctx(request: Request) -> ServerContext:
    """The server context `create_app` attached to the app (``async``: no thread needed)."""
    return request.app.state.ctx


Ctx = Annotated[ServerContext, Depends(get_ctx)]


async def get_jobs(ctx: Ctx) -> JobService:
    """The server's `JobService`."""
    return ctx.jobs


Jobs = Annotated[JobService, Depends(get_jobs)]


def require_token(ctx: Ctx,
                  authorization: Annotated[str | None, Depends(token_header)] = None) -> None:
    """A valid, unexpired access token (401 saying how to get one otherwise)."""
    ctx.auth.check(authorization)


Limit = Annotated[int | None, Query(alias="pagination.limit", ge=0, le=2**63 - 1)]
Offset = Annotated[int | None, Query(alias="pagination.offset", ge=0, le=2**63 - 1)]
OrderBy = Annotated[str | None, Query(alias="orderBy", max_length=limits.MAX_FIELD)]
