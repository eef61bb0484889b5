"""Events through the client: a stream that survives a server restart, the watcher, a retried
create through a connection-dropping proxy. All against real ByteNite Local servers."""

from __future__ import annotations

import http.client
import http.server
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bytenite_nb import wire
from bytenite_nb.api import Client, Event, JobSnapshot, JobWatcher
from bytenite_nb.local import LocalServer

KEY = "events-test-key-0123456789"
TEMPLATE = "hello-world-template"
LIFECYCLE = [s.value for s in (wire.JobState.NEW, *wire.RUN_STATES)]


def job_id_suffix() -> str:
    import uuid

    return uuid.uuid4().hex[:8]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_terminal(client: Client, job_id: str, timeout: float = 120.0) -> None:
    """Poll (no events) until the job ends; a generous bound, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while not client.job(job_id).is_terminal:
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.05)


def job_states(events: list[Event], job_id: str) -> list[str]:
    return [
        e.data["state"] for e in events if e.name == wire.EVENT_JOB_STATE and e.job_id == job_id
    ]


def read_until(stream: Any, done: Any, limit: int = 10_000) -> list[Event]:
    seen: list[Event] = []
    for event in stream:
        seen.append(event)
        if done(seen) or len(seen) > limit:
            break
    return seen


def test_stream_resumes_across_a_server_restart_without_losing_a_state_change(
    tmp_path: Path,
) -> None:
    data_dir, port = tmp_path / "data", free_port()
    start = {
        "port": port,
        "api_keys": (KEY,),
        "in_process": True,
        "reuse": False,
        "heartbeat_interval": 0.5,
    }
    # Started here: the test stops the server and starts it again on the same port.
    server = LocalServer.start(data_dir, **start)
    client = Client(api_key=KEY, base_url=server.base_url, max_retries=3)
    stream = client.events(include_heartbeats=True, idle_timeout=10)
    try:
        assert next(stream).name == wire.EVENT_HEARTBEAT  # connected: the resume point is set
        job1 = client.submit(TEMPLATE, source=b"first", params={"app": {"case": "upper"}})
        before = read_until(stream, lambda seen: "JOB_STATE_COMPLETE" in job_states(seen, job1.id))
        assert job_states(before, job1.id) == LIFECYCLE
        resume_point = stream.last_seq

        server.stop()  # the stream's connection dies here
        server = LocalServer.start(data_dir, **start)  # same data dir, same port
        # While this client is not reading, a whole job runs: every state change of it must
        # reach the stream after it reconnects.
        job2 = client.submit(TEMPLATE, source=b"second", params={"app": {"case": "upper"}})
        wait_terminal(client, job2.id)

        after = read_until(stream, lambda seen: "JOB_STATE_COMPLETE" in job_states(seen, job2.id))
        assert stream.connections >= 2
        assert job_states(after, job2.id) == LIFECYCLE
        assert not job_states(after, job1.id)  # nothing replayed twice
        seqs = [int(e.seq) for e in after if e.name != wire.EVENT_HEARTBEAT]
        assert seqs == sorted(set(seqs)) and seqs[0] > int(resume_point)
        tasks = [e for e in after if e.name == wire.EVENT_TASK_STATE and e.job_id == job2.id]
        assert tasks[-1].data["state"] == wire.TaskState.COMPLETE.value
    finally:
        stream.close()
        client.close()
        server.stop()


@pytest.mark.parametrize("use_events", [True, False])
def test_watcher_reports_changes_then_the_terminal_snapshot_once(
    client: Client, use_events: bool
) -> None:
    updates: list[JobSnapshot] = []
    job = client.submit(TEMPLATE, source=b"watch me", params={"app": {"case": "upper"}})
    watcher = JobWatcher(client, job.id, updates.append, poll_interval=0.05, use_events=use_events)
    final = watcher.wait(timeout=120)
    assert watcher.done.is_set() and watcher.error is None
    assert final.state is wire.JobState.COMPLETE and final.progress == 1.0
    assert [u.is_terminal for u in updates].count(True) == 1 and updates[-1].is_terminal
    assert final.tasks_total == 1 and final.task_states == {0: wire.TaskState.COMPLETE}
    assert final.started_at is not None and final.ended_at is not None
    if use_events:
        assert any(entry.message for entry in final.log_tail)


def test_watcher_on_a_finished_job_delivers_once_and_stops(client: Client) -> None:
    job = client.submit(TEMPLATE, source=b"x", params={"app": {"case": "upper"}}).wait(timeout=120)
    updates: list[JobSnapshot] = []
    watcher = client.watch(job.id, updates.append)
    snap = watcher.wait(timeout=60)
    assert snap.state is wire.JobState.COMPLETE and len(updates) == 1
    assert watcher.done.is_set() and watcher.error is None  # stopped by itself, no error


def test_watcher_stop_delivers_the_last_snapshot(client: Client) -> None:
    job = client.create_job(TEMPLATE)  # a draft never moves: the watcher would wait forever
    updates: list[JobSnapshot] = []
    watcher = job.watch(updates.append, poll_interval=0.05)
    watcher.stop()
    assert watcher.done.is_set()
    assert updates and updates[-1].state is wire.JobState.NEW
    job.delete()


def test_job_events_iterates_one_job(client: Client) -> None:
    job = client.create_job(TEMPLATE, params={"app": {"case": "upper"}})
    with job.events(since=0) as stream:  # replay from the beginning, this job only
        client.set_data_source(job.id, wire.file_source(), "bucket")
        job.refresh().upload(b"abc")
        client.run_job(job.id)
        seen = read_until(stream, lambda s: "JOB_STATE_COMPLETE" in job_states(s, job.id))
    assert {e.job_id for e in seen} == {job.id}
    assert job_states(seen, job.id) == LIFECYCLE


class DropFirstCreate:
    """An HTTP proxy to ByteNite Local that forwards the first ``POST /jobs`` and then drops
    the client's connection instead of answering: the job exists, the client never hears."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.dropped = 0
        self.creates = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                conn.close()
                if self.command == "POST" and self.path == "/v1/customer/jobs":
                    outer.creates += 1
                    if outer.dropped == 0:
                        outer.dropped += 1
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_create_retried_after_a_dropped_connection_makes_one_job(
    local_server: Any, client: Client
) -> None:
    from bytenite_nb.api import Filter

    proxy = DropFirstCreate(local_server.base_url)
    try:
        via_proxy = Client(api_key=local_server.api_key, base_url=proxy.url)
        name = f"exactly-once-{job_id_suffix()}"
        job = via_proxy.create_job(TEMPLATE, name=name)
        assert proxy.dropped == 1 and proxy.creates == 2  # the create really was sent twice
        same = list(client.jobs(filters=[Filter("name", "eq", name)]))
        assert [j.id for j in same] == [job.id]  # ...and made one job
        job.delete()
        via_proxy.close()
    finally:
        proxy.close()


def test_wait_timeout_is_always_wait_timeout_error(client: Client) -> None:
    # Regression: stopping the watcher closed its stream mid-read, and the AttributeError
    # http.client raised then escaped from wait() instead of WaitTimeoutError.
    from bytenite_nb.api import WaitTimeoutError

    job = client.create_job(TEMPLATE)  # a draft never finishes
    try:
        for i in range(8):
            with pytest.raises(WaitTimeoutError) as info:
                job.wait(timeout=0.2 + 0.05 * i, poll_interval=0.05)
            assert info.value.job.state is wire.JobState.NEW
    finally:
        job.delete()


def test_closing_a_stream_from_another_thread_ends_iteration_quietly(client: Client) -> None:
    stream = client.events(include_heartbeats=True)
    assert next(stream).name == wire.EVENT_HEARTBEAT
    timer = threading.Timer(0.2, stream.close)
    timer.start()
    rest = list(stream)  # ends promptly (not at the next heartbeat), with no exception
    assert stream.closed and all(e.name == wire.EVENT_HEARTBEAT for e in rest)
    timer.join()
