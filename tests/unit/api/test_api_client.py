"""Client behaviour that needs no server: submit's steps, uploads, pagination, the watcher's
fallbacks (mocked HTTP)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from bytenite_nb import wire
from bytenite_nb.api import Client, JobSnapshot, JobWatcher
from bytenite_nb.api.models import Pagination
from bytenite_nb.api.pagination import Page, paginate
from tests.unit.api._scripted import KEY

BASE = "http://bytenite.test"
C = f"{BASE}/v1/customer"
UPLOAD = f"{BASE}/local/uploads/tok123"


def job(state: str = "JOB_STATE_NEW", **extra: Any) -> dict[str, Any]:
    return {"job": {"id": "j1", "state": state, "templateId": "t", **extra}}


@pytest.fixture()
def mocked() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(f"{BASE}/v1/auth/access_token", json={"token": "tok", "expiresIn": "3600"})
        yield rsps


def test_api_layer_imports_no_ui_no_pandas_no_server() -> None:
    import subprocess

    code = (
        "import sys, bytenite_nb.api, bytenite_nb.api.dev; "
        "print([m for m in ('pandas', 'IPython', 'ipywidgets', 'bytenite_nb.server', "
        "'bytenite_nb.local', 'bytenite_nb.notebook') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_submit_bytes_creates_sets_uploads_without_auth_and_runs(mocked: Any) -> None:
    file_job = job(
        dataSource={
            "dataSourceDescriptor": "file",
            "params": {"@type": wire.LOCAL_FILE_DATA_SOURCE_TYPE, "tempUrl": UPLOAD},
        }
    )
    mocked.get(f"{C}/jobs/templates/t", json={"id": "t", "app": "a"})  # submit checks it first
    mocked.post(f"{C}/jobs", json=job())
    mocked.patch(f"{C}/jobs/j1/datasource", json=file_job)
    mocked.patch(f"{C}/jobs/j1/params", json=file_job)
    mocked.put(UPLOAD, json={"ok": True})
    mocked.patch(f"{C}/jobs/j1/uploadcompleted", json={"ok": True})
    mocked.post(f"{C}/jobs/j1/run", json={"ok": True})
    mocked.get(f"{C}/jobs/j1", json=job("JOB_STATE_STARTED"))
    result = Client(api_key=KEY, base_url=BASE).submit(
        "t", source=b"payload", params={"app": {"case": "upper"}}, name="n"
    )
    assert result.state is wire.JobState.STARTED
    calls = {(c.request.method, c.request.url.split("?")[0]): c.request for c in mocked.calls}
    create = json.loads(calls[("POST", f"{C}/jobs")].body)
    assert create["templateId"] == "t" and create["name"] == "n" and create["jobId"]
    ds = json.loads(calls[("PATCH", f"{C}/jobs/j1/datasource")].body)
    assert ds["dataSource"]["dataSourceDescriptor"] == "file"
    assert ds["dataDestination"] == {"dataSourceDescriptor": "bucket"}
    put = calls[("PUT", UPLOAD)]
    assert "Authorization" not in put.headers  # the upload URL is its own credential
    assert put.body == b"payload"
    assert 'filename="data.bin"' in put.headers["Content-Disposition"]
    order = [(c.request.method, c.request.url.rsplit("/", 1)[-1]) for c in mocked.calls]
    assert (
        order.index(("PUT", "tok123"))
        < order.index(("PATCH", "uploadcompleted"))
        < order.index(("POST", "run"))
    )


def test_submit_streams_a_path(mocked: Any, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    bodies: list[Any] = []
    send = requests.Session.request

    def spy(self: requests.Session, method: str, url: str, **kw: Any) -> Any:
        if method == "PUT":
            bodies.append(kw.get("data"))
        return send(self, method, url, **kw)

    monkeypatch.setattr(requests.Session, "request", spy)
    src = tmp_path / "notes.txt"
    src.write_bytes(b"x" * 100_000)
    file_job = job(dataSource={"dataSourceDescriptor": "file", "params": {"tempUrl": UPLOAD}})
    mocked.get(f"{C}/jobs/templates/t", json={"id": "t", "app": "a"})
    mocked.post(f"{C}/jobs", json=job())
    mocked.patch(f"{C}/jobs/j1/datasource", json=file_job)
    mocked.put(UPLOAD, json={"ok": True})
    mocked.patch(f"{C}/jobs/j1/uploadcompleted", json={"ok": True})
    mocked.get(f"{C}/jobs/j1", json=file_job)
    Client(api_key=KEY, base_url=BASE).submit("t", source=src, run=False)
    put = next(c.request for c in mocked.calls if c.request.method == "PUT")
    # requests got the open file (which it sends in blocks), never the file's bytes
    [body] = bodies
    assert not isinstance(body, (bytes, bytearray)) and body.name == str(src)
    assert body.closed  # and the client closed it once sent
    assert put.headers["Content-Length"] == "100000"
    assert 'filename="notes.txt"' in put.headers["Content-Disposition"]


def test_submit_deletes_the_draft_when_a_step_fails(mocked: Any) -> None:
    mocked.get(f"{C}/jobs/templates/t", json={"id": "t", "app": "a"})
    mocked.post(f"{C}/jobs", json=job())
    mocked.patch(
        f"{C}/jobs/j1/params",
        status=400,
        json={"ok": False, "message": "params invalid", "error": {"code": 400}},
    )
    mocked.delete(f"{C}/jobs/j1", json={"ok": True})
    with pytest.raises(ValueError, match="params invalid"):
        Client(api_key=KEY, base_url=BASE).submit("t", params={"app": {"case": 3}})
    assert mocked.calls[-1].request.method == "DELETE"


def test_submit_checks_input_before_creating(mocked: Any) -> None:
    c = Client(api_key=KEY, base_url=BASE)
    with pytest.raises(FileNotFoundError):
        c.submit("t", source="not/a/file.csv")
    with pytest.raises(ValueError):
        c.submit("t", params={"case": "upper"})
    with pytest.raises(ValueError):
        c.submit("t", source=12345)
    assert [x.request.url for x in mocked.calls] == []  # not even a token was fetched


def test_download_refuses_names_that_escape_the_directory(mocked: Any, tmp_path: Path) -> None:
    mocked.get(f"{C}/jobs/j1/results", json={"results": [{"name": "../evil", "link": "http://x"}]})
    from bytenite_nb.api import ByteniteError

    with pytest.raises(ByteniteError, match="outside"):
        Client(api_key=KEY, base_url=BASE).download_results("j1", tmp_path / "out")
    assert not (tmp_path / "evil").exists()


def test_logs_are_flattened_and_sorted(mocked: Any) -> None:
    mocked.post(
        f"{C}/logs",
        json={
            "partitioner": [{"log": "p", "timestamp": "2026-01-01T00:00:01Z", "level": "INFO"}],
            "assembler": [{"log": "a", "timestamp": "2026-01-01T00:00:03Z", "level": "WARN"}],
            "taskrunner": {
                "task-0": {
                    "logs": [{"log": "t", "timestamp": "2026-01-01T00:00:02Z", "level": "ERROR"}]
                }
            },
        },
    )
    entries = Client(api_key=KEY, base_url=BASE).logs("j1", levels=["info"], services=["assembler"])
    assert [(e.service, e.task_id, e.message) for e in entries] == [
        ("PARTITIONER", None, "p"),
        ("TASKRUNNER", "task-0", "t"),
        ("ASSEMBLER", None, "a"),
    ]
    body = json.loads(mocked.calls[-1].request.body)
    assert body == {"jobId": "j1", "taskIds": [], "levels": ["INFO"], "services": ["ASSEMBLER"]}


def test_paginate_is_lazy_and_respects_limit() -> None:
    fetched: list[tuple[int, int]] = []

    def fetch(offset: int, size: int) -> Page[int]:
        fetched.append((offset, size))
        items = list(range(offset, min(offset + size, 23)))
        return Page(items, Pagination(23, offset, offset + size < 23, offset > 0))

    it = paginate(fetch, page_size=10)
    assert fetched == []
    assert list(it) == list(range(23)) and fetched == [(0, 10), (10, 10), (20, 10)]
    fetched.clear()
    assert list(paginate(fetch, page_size=10, limit=12)) == list(range(12))
    assert fetched == [(0, 10), (10, 2)]
    with pytest.raises(ValueError):
        list(paginate(fetch, page_size=0))


def test_watcher_polls_when_there_is_no_event_stream(mocked: Any) -> None:
    mocked.get(f"{C}/events", status=404, json={"message": "no stream here"})
    for state, chunks in (
        ("JOB_STATE_STARTED", "0"),
        ("JOB_STATE_PARTITIONED", "2"),
        ("JOB_STATE_COMPLETE", "2"),
    ):
        mocked.get(f"{C}/jobs/j1", json=job(state, numChunks=chunks))
    mocked.get(
        f"{C}/jobs/j1/tasks",
        json={
            "tasks": [
                {"id": "task-0", "chunkNumber": 0, "state": "TASK_STATE_COMPLETE", "attempts": 1},
                {"id": "task-1", "chunkNumber": 1, "state": "TASK_STATE_COMPLETE", "attempts": 1},
            ]
        },
    )
    updates: list[JobSnapshot] = []
    watcher = JobWatcher(
        Client(api_key=KEY, base_url=BASE), "j1", updates.append, poll_interval=0.01
    )
    final = watcher.wait(timeout=30)
    assert watcher.done.is_set() and watcher.error is None
    assert final.state is wire.JobState.COMPLETE and final.tasks_done == 2
    assert [u.state.name for u in updates] == ["STARTED", "PARTITIONED", "COMPLETE"]


def test_watcher_reads_the_final_task_states_after_the_job_ended(mocked: Any) -> None:
    # The poll that finds the job COMPLETE fails to read its tasks (a 500): the end must not
    # be reported with the task states of the poll before (1 of 2 done); the tasks are read
    # again once the job has ended.
    mocked.get(f"{C}/events", status=404, json={"message": "no stream here"})
    mocked.get(f"{C}/jobs/j1", json=job("JOB_STATE_PARTITIONED", numChunks="2"))
    mocked.get(f"{C}/jobs/j1", json=job("JOB_STATE_COMPLETE", numChunks="2"))

    def tasks(*states: str) -> dict[str, Any]:
        return {"tasks": [{"id": f"task-{n}", "chunkNumber": n, "state": state, "attempts": 1}
                          for n, state in enumerate(states)]}

    mocked.get(f"{C}/jobs/j1/tasks",
               json=tasks("TASK_STATE_COMPLETE", "TASK_STATE_RUNNING"))
    mocked.get(f"{C}/jobs/j1/tasks", status=500, json={"message": "busy"})
    mocked.get(f"{C}/jobs/j1/tasks",
               json=tasks("TASK_STATE_COMPLETE", "TASK_STATE_COMPLETE"))
    updates: list[JobSnapshot] = []
    watcher = JobWatcher(
        Client(api_key=KEY, base_url=BASE, max_retries=0), "j1", updates.append,
        poll_interval=0.01,
    )
    final = watcher.wait(timeout=30)
    assert final.state is wire.JobState.COMPLETE
    assert watcher.error is None  # the job's end was known: nothing to report as a problem
    assert (final.tasks_done, final.tasks_running) == (2, 0)
    assert updates[-1].is_terminal and updates[-1].tasks_done == 2


def test_watcher_polls_when_the_stream_is_silent(mocked: Any) -> None:
    # The stream only ever sends a heartbeat and ends: the watcher must learn from polls.
    heartbeat = json.dumps({"result": {"event": "heartbeat", "seq": "1", "data": {}}}) + "\n"
    mocked.get(f"{C}/events", body=heartbeat)
    mocked.get(f"{C}/jobs/j1", json=job("JOB_STATE_STARTED"))
    mocked.get(f"{C}/jobs/j1", json=job("JOB_STATE_FAILED", errorMessage="boom", numChunks="1"))
    mocked.get(f"{C}/jobs/j1/tasks", json={"tasks": []})
    updates: list[JobSnapshot] = []
    final = JobWatcher(
        Client(api_key=KEY, base_url=BASE), "j1", updates.append, silence_timeout=0.2
    ).wait(timeout=30)
    assert final.state is wire.JobState.FAILED and final.error_message == "boom"
    assert updates[-1].is_terminal


def test_watcher_reports_a_deleted_job(mocked: Any) -> None:
    mocked.get(f"{C}/jobs/j1", status=404, json={"message": "Job 'j1' not found"})
    watcher = JobWatcher(Client(api_key=KEY, base_url=BASE), "j1")
    watcher.wait(timeout=30)
    assert isinstance(watcher.error, LookupError)


def test_presigned_urls_stay_out_of_errors(mocked: Any, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from bytenite_nb.api import PermissionDeniedError

    caplog.set_level(logging.DEBUG)
    mocked.put(UPLOAD, status=403, json={"message": "link expired"})
    with pytest.raises(PermissionDeniedError) as info:
        Client(api_key=KEY, base_url=BASE).upload("j1", b"x", upload_url=UPLOAD)
    assert "tok123" not in str(info.value) and "tok123" not in caplog.text
    assert "bytenite.test" in str(info.value)
