"""``GET /events``: the live NDJSON stream of job states, task states, logs and heartbeats
(names and shapes in ``docs/events.md``), resumable with ``?since`` or ``Last-Event-ID``.

The one ``async`` route: it holds its connection open while `Broker` feeds it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from bytenite_nb import wire
from bytenite_nb.server.errors import InvalidRequest
from bytenite_nb.server.http import limits
from bytenite_nb.server.http.deps import Ctx

router = APIRouter(tags=["events"])


@router.get("/events", responses={200: {
    "description": "NDJSON stream: one {\"result\":{\"event\",\"seq\",\"data\"}} per line "
                   "(see docs/events.md)",
    "content": {"application/x-ndjson": {}}}})
async def events(
    ctx: Ctx,
    since: Annotated[str | None, Query(
        max_length=limits.MAX_INT64_TEXT,
        description="ByteNite Local extension: replay events after this seq")] = None,
    job_id: Annotated[str | None, Query(
        alias="jobId", max_length=limits.MAX_ID,
        description="ByteNite Local extension: only this job's events")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """The live events stream (job states, task states, logs, heartbeats)."""
    given_since = since not in (None, "")
    resume = since if given_since else last_event_id
    start: int | None = None
    if resume not in (None, ""):
        try:
            # (range-checked: a seq beyond int64 must be a 400 here, not a dropped stream)
            start = wire.int64_in(resume, field="since" if given_since else "Last-Event-ID")
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
    return StreamingResponse(ctx.broker.stream(start, job_id),
                             media_type="application/x-ndjson",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
