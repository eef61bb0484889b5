"""The events broker: sequence numbers, resume, and consumers that cannot keep up."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bytenite_nb import wire
from bytenite_nb.server.service.broker import Broker
from bytenite_nb.server.storage.store import Store


async def _lines(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The NDJSON lines of a stream, whose chunks each hold one or more whole lines."""
    async for chunk in stream:
        assert chunk.endswith(b"\n"), chunk  # a chunk never splits a line
        for line in chunk.splitlines():
            yield line


def _decode(line: bytes) -> dict:
    return json.loads(line)["result"]


async def _collect(broker: Broker, since: int | None, count: int, *,
                   job_id: str | None = None, pause: float = 0.0) -> list[dict]:
    out: list[dict] = []
    stream = broker.stream(since, job_id)
    async for line in _lines(stream):
        event = _decode(line)
        if event["event"] != wire.EVENT_HEARTBEAT:
            out.append(event)
            if pause:
                await asyncio.sleep(pause)
        if len(out) >= count:
            break
    await stream.aclose()
    return out


def test_events_are_numbered_typed_and_replayed(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    broker = Broker(store, heartbeat_interval=0.05)
    first = broker.publish(wire.EVENT_JOB_STATE, "j1", {"jobId": "j1", "state": "JOB_STATE_NEW"})
    broker.publish(wire.EVENT_JOB_LOG, "j2", {"jobId": "j2", "log": "x"})
    broker.publish(wire.EVENT_TASK_STATE, "j1", {"jobId": "j1", "taskId": "task-0"})
    events = asyncio.run(_collect(broker, 0, 3))
    assert [int(e["seq"]) for e in events] == [first.seq, first.seq + 1, first.seq + 2]
    assert [e["data"]["@type"] for e in events] == [
        wire.JOB_STATE_EVENT_TYPE, wire.JOB_LOG_EVENT_TYPE, wire.TASK_STATE_EVENT_TYPE]
    resumed = asyncio.run(_collect(broker, first.seq, 2))
    assert [int(e["seq"]) for e in resumed] == [first.seq + 1, first.seq + 2]
    only_j1 = asyncio.run(_collect(broker, 0, 2, job_id="j1"))
    assert {e["data"]["jobId"] for e in only_j1} == {"j1"}
    store.close()


def test_heartbeats_carry_the_resume_point(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    broker = Broker(store, heartbeat_interval=0.01)
    event = broker.publish(wire.EVENT_JOB_STATE, "j", {"jobId": "j"})

    async def beats() -> list[dict]:
        out = []
        stream = broker.stream(None)
        async for line in _lines(stream):
            out.append(_decode(line))
            if len(out) == 3:
                break
        await stream.aclose()
        return out

    lines = asyncio.run(beats())
    assert all(b["event"] == "heartbeat" and b["seq"] == str(event.seq) for b in lines)
    assert lines[0]["data"]["@type"] == wire.HEARTBEAT_EVENT_TYPE
    store.close()


def test_a_slow_consumer_blocks_nobody_and_misses_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    broker = Broker(store, queue_size=5, heartbeat_interval=0.05)
    total = 300
    start = store.last_seq()
    published = threading.Event()

    def producer() -> None:
        for i in range(total):
            broker.publish(wire.EVENT_JOB_LOG, "j", {"jobId": "j", "log": str(i)})
        published.set()

    async def slow_reader() -> list[dict]:
        stream = broker.stream(start)
        out: list[dict] = []
        async for line in _lines(stream):
            event = _decode(line)
            if event["event"] == wire.EVENT_HEARTBEAT:
                continue
            out.append(event)
            if len(out) == 1:
                # Stall until the producer is done: it must not wait for us.
                threading.Thread(target=producer).start()
                while not published.is_set():
                    await asyncio.sleep(0.01)
            if len(out) == total:
                break
        await stream.aclose()
        return out

    broker.publish(wire.EVENT_JOB_LOG, "j", {"jobId": "j", "log": "first"})
    events = asyncio.run(slow_reader())
    logs = [e["data"]["log"] for e in events]
    assert logs[0] == "first" and logs[1:] == [str(i) for i in range(total - 1)]
    seqs = [int(e["seq"]) for e in events]
    assert seqs == sorted(set(seqs))
    store.close()


def test_close_ends_open_streams(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    broker = Broker(store, heartbeat_interval=30)

    async def run() -> int:
        lines = 0
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, broker.close)
        async for _ in broker.stream(None):
            lines += 1
        return lines

    assert asyncio.run(run()) == 1  # the opening heartbeat, then the stream ended
    store.close()


def test_a_change_and_its_event_are_stored_together_or_not_at_all(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    broker = Broker(store, heartbeat_interval=0.05)
    row, event = broker.publish_with(
        lambda: store.upsert_task("j1", 0, state=wire.TaskState.RUNNING.value, attempts=1),
        wire.EVENT_TASK_STATE, "j1",
        lambda task: {"jobId": "j1", "taskId": "task-0", "state": task.state})
    assert row.state == wire.TaskState.RUNNING.value
    assert event.data["state"] == row.state and event.data["@type"] == wire.TASK_STATE_EVENT_TYPE
    assert [int(e["seq"]) for e in asyncio.run(_collect(broker, 0, 1))] == [event.seq]

    def broken() -> None:
        store.upsert_task("j1", 1, state=wire.TaskState.RUNNING.value)
        raise RuntimeError("the write failed half way")

    with pytest.raises(RuntimeError, match="half way"):
        broker.publish_with(broken, wire.EVENT_TASK_STATE, "j1", lambda _: {"jobId": "j1"})
    # neither the half-written row nor an event: a stream never shows a change the store lost
    assert store.get_task("j1", 1) is None
    assert [e.seq for e in store.events_after(0)] == [event.seq]
    later = broker.publish(wire.EVENT_JOB_LOG, "j1", {"jobId": "j1", "log": "next"})
    assert [e.seq for e in store.events_after(0)] == [event.seq, later.seq]
    store.close()


def test_a_batch_is_delivered_in_order_once_stored_and_a_failed_change_in_it_alone_is_lost(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    broker = Broker(store, heartbeat_interval=0.05)
    sub = broker.subscribe(asyncio.new_event_loop())

    def broken() -> None:
        store.upsert_task("j1", 1, state=wire.TaskState.QUEUED.value)
        raise RuntimeError("the write failed half way")

    with broker.batch():
        first = broker.publish(wire.EVENT_JOB_LOG, "j1", {"jobId": "j1", "log": "a"})
        with pytest.raises(RuntimeError, match="half way"):
            broker.publish_with(broken, wire.EVENT_TASK_STATE, "j1", lambda _: {"jobId": "j1"})
        _, second = broker.publish_with(
            lambda: store.upsert_task("j1", 0, state=wire.TaskState.QUEUED.value),
            wire.EVENT_TASK_STATE, "j1", lambda task: {"jobId": "j1", "state": task.state})
        assert sub._take() == []  # nothing is sent before the batch is stored
    delivered = [event for event, _ in sub._take()]
    assert [e.seq for e in delivered] == [first.seq, second.seq]
    assert [e.seq for e in store.events_after(0)] == [first.seq, second.seq]
    assert store.get_task("j1", 1) is None and store.get_task("j1", 0) is not None
    broker.unsubscribe(sub)
    store.close()
