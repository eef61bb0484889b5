"""What counts as activity for the idle timeout (``bytenite_nb.server.http.idle``)."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

import pytest

from bytenite_nb.server.config import ServerConfig
from bytenite_nb.server.http.idle import Activity, ActivityMiddleware, idle_message


def test_config_idle_timeout_is_none_zero_or_positive(tmp_path: Path) -> None:
    assert ServerConfig(data_dir=tmp_path).idle_timeout is None
    assert ServerConfig(data_dir=tmp_path, idle_timeout=0).idle_timeout is None
    assert ServerConfig(data_dir=tmp_path, idle_timeout=2).idle_timeout == 2.0
    assert ServerConfig(data_dir=tmp_path, idle_timeout=math.inf).idle_timeout == math.inf
    for bad in (-1, math.nan):
        with pytest.raises(ValueError, match=r"--idle-timeout \(idle_timeout=\) must be more "
                                             "than 0 seconds, or 0 to never stop when idle"):
            ServerConfig(data_dir=tmp_path, idle_timeout=bad)


def test_idle_message() -> None:
    assert idle_message(3600) == ("ByteNite Local: idle for 3600 s (no requests, no running "
                                  "jobs): stopping (--idle-timeout)")


def test_a_streamed_response_counts_until_its_last_byte_is_sent() -> None:
    activity = Activity()
    seen: list[tuple[int, float]] = []
    release = asyncio.Event()

    async def streaming_app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await release.wait()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def send(message: Any) -> None:
        seen.append((activity.in_flight, activity.idle_seconds()))

    async def main() -> None:
        middleware = ActivityMiddleware(streaming_app, activity)
        request = asyncio.create_task(middleware({"type": "http"}, None, send))
        while len(seen) < 2:
            await asyncio.sleep(0.01)
        assert activity.in_flight == 1
        assert activity.idle_seconds() == 0.0
        release.set()
        await request

    asyncio.run(main())
    assert [n for n, _ in seen] == [1, 1, 1]
    assert [idle for _, idle in seen] == [0.0, 0.0, 0.0]
    assert activity.in_flight == 0


def test_a_failing_request_still_ends_and_other_scopes_do_not_count() -> None:
    activity = Activity()

    async def failing_app(scope: Any, receive: Any, send: Any) -> None:
        assert activity.in_flight == (1 if scope["type"] == "http" else 0)
        if scope["type"] == "http":
            raise RuntimeError("boom")

    middleware = ActivityMiddleware(failing_app, activity)
    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(middleware({"type": "http"}, None, None))
    asyncio.run(middleware({"type": "lifespan"}, None, None))
    assert activity.in_flight == 0


def test_idle_time_counts_from_the_later_of_the_last_request_and_busy_until() -> None:
    activity = Activity()
    activity.begin()
    activity.end()
    # A job that ended after the last request: the idle clock starts at the job's end.
    assert activity.idle_seconds(busy_until=time.monotonic() + 100) == 0.0
    activity.begin()
    assert activity.idle_seconds(busy_until=time.monotonic() - 100) == 0.0  # in flight
    activity.end()
