"""Faults through the HTTP API: timeouts, retries, abort, delete, and a SIGKILLed server."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from pathlib import Path

import psutil
import pytest
import requests

from bytenite_nb import wire
from bytenite_nb.local import LocalServer
from tests.kit.apps import (
    DETACHED_CHILDREN,
    FANOUT,
    FLAKY,
    SLEEPY,
    SLOW_WITH_CHILD,
    write_app,
    write_engine,
)
from tests.kit.loopback import Api, C, assert_error, current_seq, read_events
from tests.kit.processes import gone, marked, unique_marker, until
from tests.kit.servers import TEST_API_KEY, ServerFactory


def _apps(root: Path) -> Path:
    write_engine(root, "fanout", FANOUT, "partitioner")
    write_app(root, "slow", SLOW_WITH_CHILD, template={"partitioner": "fanout@0"})
    write_app(root, "sleeper", SLEEPY, template={"params": {"app": {"seconds": 120}}})
    write_app(root, "flaky", FLAKY, template={"partitioner": "fanout@0"})
    write_app(root, "detached", DETACHED_CHILDREN)
    write_app(root, "one-bad", ONE_BAD, template={"partitioner": "fanout@0", "params": {
        "partitioner": {"chunks": 2}}})
    return root


#: Chunk 0 fails with exit code 3 once chunk 1 is running; chunk 1 would run for two minutes.
ONE_BAD = """
import os, sys, time
if os.environ["CHUNK_NUMBER"] == "0":
    time.sleep(0.5)
    sys.exit(3)
time.sleep(120)
"""


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory,
           tmp_path_factory: pytest.TempPathFactory) -> LocalServer:
    apps = _apps(tmp_path_factory.mktemp("fault-apps"))
    return start_module_server(apps_dirs=(apps,), workers=2)


def _job_events(api: Api, since: int, job_id: str) -> list[dict[str, object]]:
    def ended(results: list[dict[str, object]]) -> bool:
        return any(e["event"] == "job.state" and e["data"]["state"] in (  # type: ignore[index]
            "JOB_STATE_COMPLETE", "JOB_STATE_FAILED") for e in results)
    return [e for e in read_events(api, since, ended, jobId=job_id) if e["event"] != "heartbeat"]


def test_task_timeout_is_enforced(api: Api) -> None:
    job = api.create(templateId="sleeper-template", config={"taskTimeout": 1})
    api.ok("POST", f"{C}/jobs/{job['id']}/run")
    job = api.wait(job["id"])
    assert job["state"] == "JOB_STATE_FAILED"
    assert "taskTimeout" in job["errorMessage"] and "timed out" in job["errorMessage"]
    [task] = api.ok("GET", f"{C}/jobs/{job['id']}/tasks")["tasks"]
    assert task["state"] == "TASK_STATE_FAILED" and task["duration"] < 30


def test_job_timeout_is_enforced(api: Api) -> None:
    job = api.create(templateId="sleeper-template")
    api.ok("POST", f"{C}/jobs/{job['id']}/run",
           json={"config": {"jobTimeout": 1, "taskTimeout": 300}})
    job = api.wait(job["id"])
    assert job["state"] == "JOB_STATE_FAILED" and "jobTimeout" in job["errorMessage"]
    assert int(job["duration"]) < 30
    [task] = api.ok("GET", f"{C}/jobs/{job['id']}/tasks")["tasks"]
    assert task["state"] == "TASK_STATE_CANCELLED"


def test_retries_each_attempt_in_logs_and_events(api: Api, tmp_path: Path) -> None:
    since = current_seq(api)
    job = api.create(templateId="flaky-template", config={"maxTaskRetries": 2},
                     params={"partitioner": {"chunks": 2},
                             "app": {"dir": str(tmp_path), "fail": 2}})
    assert job["config"]["maxTaskRetries"] == "2"
    api.ok("POST", f"{C}/jobs/{job['id']}/run")
    job = api.wait(job["id"])
    assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
    tasks = api.ok("GET", f"{C}/jobs/{job['id']}/tasks")["tasks"]
    assert [t["attempts"] for t in tasks] == [3, 3]
    results = api.ok("GET", f"{C}/jobs/{job['id']}/results")["results"]
    assert {requests.get(r["link"], timeout=30).text for r in results} == {"attempt 3"}
    # every failed attempt is in the task's logs: the app's stderr and the runtime's note
    logs = api.ok("POST", f"{C}/logs", json={"jobId": job["id"], "taskIds": ["task-1"]})
    lines = [e["log"] for e in logs["taskrunner"]["task-1"]["logs"]]
    assert "flaky failure number 1" in lines and "flaky failure number 2" in lines
    assert any("attempt 1 of 3" in line and "retrying" in line for line in lines)
    assert any("attempt 2 of 3" in line and "retrying" in line for line in lines)
    # and in the events: RUNNING 1, RETRYING 1, RUNNING 2, RETRYING 2, RUNNING 3, COMPLETE 3
    events = [e["data"] for e in _job_events(api, since, job["id"])
              if e["event"] == "task.state" and e["data"]["chunkNumber"] == 1]
    steps = [(e["state"], e["attempt"]) for e in events if e["state"] != "TASK_STATE_QUEUED"]
    assert steps == [("TASK_STATE_RUNNING", 1), ("TASK_STATE_RETRYING", 1),
                     ("TASK_STATE_RUNNING", 2), ("TASK_STATE_RETRYING", 2),
                     ("TASK_STATE_RUNNING", 3), ("TASK_STATE_COMPLETE", 3)]
    retrying = [e for e in events if e["state"] == "TASK_STATE_RETRYING"]
    assert all(e["exitCode"] == 7 and "exit code 7" in e["errorMessage"] for e in retrying)


def test_retries_exhausted_fail_the_job(api: Api, tmp_path: Path) -> None:
    job = api.create(templateId="flaky-template", config={"maxTaskRetries": 1},
                     params={"app": {"dir": str(tmp_path), "fail": 5}})
    api.ok("POST", f"{C}/jobs/{job['id']}/run")
    job = api.wait(job["id"])
    assert job["state"] == "JOB_STATE_FAILED"
    assert "after 2 attempts" in job["errorMessage"] and "exit code 7" in job["errorMessage"]


def _start_slow(api: Api, tmp_path: Path, marker: str, n: int = 2) -> tuple[str, Path]:
    pids = tmp_path / f"pids-{marker}"
    pids.mkdir()
    job = api.create(templateId="slow-template",
                     params={"partitioner": {"chunks": n},
                             "app": {"pids": str(pids), "marker": marker}})
    api.ok("POST", f"{C}/jobs/{job['id']}/run")
    assert until(lambda: len(list(pids.iterdir())) == n), "the tasks did not start"
    return job["id"], pids


def _task_pids(pids: Path) -> list[int]:
    return [p for f in pids.iterdir() for p in (int(f.name), int(f.read_text()))]


def test_abort_stops_everything_fast_and_leaves_failed(api: Api, tmp_path: Path) -> None:
    marker = unique_marker("abort")
    job_id, pids = _start_slow(api, tmp_path, marker)
    processes = _task_pids(pids)
    assert len(marked(marker)) == 2
    # How fast is measured by benchmarks/abort.py; here: everything goes, and stays gone.
    assert api.ok("POST", f"{C}/jobs/{job_id}/abort")["ok"] is True
    assert until(lambda: all(gone(pid) for pid in processes), timeout=20)
    assert marked(marker) == []  # the apps' own children died with them
    job = api.job(job_id)
    assert job["state"] == "JOB_STATE_FAILED" and "aborted" in job["errorMessage"].lower()
    assert until(lambda: all(t["state"] == "TASK_STATE_CANCELLED" for t in api.ok(
        "GET", f"{C}/jobs/{job_id}/tasks")["tasks"]))
    assert_error(api("POST", f"{C}/jobs/{job_id}/abort"), 400, "already ended")
    fresh = api.create(templateId="slow-template")
    assert "deleted" in api.ok("POST", f"{C}/jobs/{fresh['id']}/abort")["message"]
    assert_error(api("GET", f"{C}/jobs/{fresh['id']}"), 404)


def test_abort_kills_children_that_left_the_task_s_process_group(api: Api,
                                                                tmp_path: Path) -> None:
    marker = unique_marker("abort-detached")
    job = api.create(templateId="detached-template",
                     params={"app": {"marker": marker, "ready": str(tmp_path / "up")}})
    api.ok("POST", f"{C}/jobs/{job['id']}/run")
    assert until(lambda: len(marked(marker)) == 2), "the task did not start its children"
    children = [p.pid for p in marked(marker)]
    assert api.ok("POST", f"{C}/jobs/{job['id']}/abort")["ok"] is True
    # a child in a session of its own and a daemon whose parent is gone die with the task
    assert until(lambda: all(gone(pid) for pid in children), timeout=20), marked(marker)
    assert api.wait(job["id"])["state"] == "JOB_STATE_FAILED"


def test_a_task_cancelled_because_another_failed_shows_no_exit_code(api: Api) -> None:
    job = api.run(templateId="one-bad-template")
    assert job["state"] == "JOB_STATE_FAILED" and "exit code 3" in job["errorMessage"]
    failed, cancelled = api.ok("GET", f"{C}/jobs/{job['id']}/tasks")["tasks"]
    assert (failed["state"], failed["exitCode"]) == ("TASK_STATE_FAILED", 3)
    assert (cancelled["state"], cancelled["exitCode"]) == ("TASK_STATE_CANCELLED", None)
    assert "task for chunk 0 failed" in cancelled["errorMessage"]
    events = _job_events(api, 0, job["id"])
    [state] = [e["data"] for e in events if e["event"] == "task.state"
               and e["data"]["taskId"] == "task-1" and e["data"]["state"] ==
               "TASK_STATE_CANCELLED"]
    assert state["exitCode"] is None and "chunk 0 failed" in state["errorMessage"]


def test_tasks_that_never_started_report_no_attempts(api: Api, tmp_path: Path) -> None:
    """4 slow tasks on 2 workers, aborted while 2 run: the 2 that never ran made 0 attempts."""
    marker = unique_marker("never")
    pids = tmp_path / "pids"
    pids.mkdir()
    job = api.create(templateId="slow-template",
                     params={"partitioner": {"chunks": 4},
                             "app": {"pids": str(pids), "marker": marker}})
    api.ok("POST", f"{C}/jobs/{job['id']}/run")
    assert until(lambda: len(list(pids.iterdir())) == 2), "two tasks did not start"
    api.ok("POST", f"{C}/jobs/{job['id']}/abort")
    assert until(lambda: all(t["state"] == "TASK_STATE_CANCELLED" for t in api.ok(
        "GET", f"{C}/jobs/{job['id']}/tasks")["tasks"]))
    tasks = api.ok("GET", f"{C}/jobs/{job['id']}/tasks")["tasks"]
    assert sorted(t["attempts"] for t in tasks) == [0, 0, 1, 1]
    assert all(t["startedAt"] is None for t in tasks if t["attempts"] == 0)


def test_delete_removes_job_files_and_results(api: Api, server: LocalServer,
                                               tmp_path: Path) -> None:
    data = Path(server.data_dir)
    done = api.create(params={"app": {"case": "upper"}})
    api.ok("POST", f"{C}/jobs/{done['id']}/run")
    assert api.wait(done["id"])["state"] == "JOB_STATE_COMPLETE"
    link = api.ok("GET", f"{C}/jobs/{done['id']}/results")["results"][0]["link"]
    assert (data / "results" / done["id"]).is_dir()
    api.ok("DELETE", f"{C}/jobs/{done['id']}")
    assert not (data / "results" / done["id"]).exists()
    assert not (data / "jobs" / done["id"]).exists()
    assert_error(requests.get(link, timeout=30), 404)
    assert_error(api("POST", f"{C}/logs", json={"jobId": done["id"]}), 404)
    assert_error(api("GET", f"{C}/jobs/{done['id']}/tasks"), 404)

    uploaded = api.create(dataSource=wire.file_source())
    temp_url = uploaded["dataSource"]["params"]["tempUrl"]
    requests.put(temp_url, data=b"some bytes", timeout=30)
    assert (data / "jobs" / uploaded["id"] / "upload").is_dir()
    api.ok("DELETE", f"{C}/jobs/{uploaded['id']}")
    assert not (data / "jobs" / uploaded["id"]).exists()
    assert_error(requests.put(temp_url, data=b"x", timeout=30), 404)

    with sqlite3.connect(data / "bytenite-local.db") as db:
        for table in ("tasks", "logs", "results", "uploads"):
            count = db.execute(f"SELECT COUNT(*) FROM {table} WHERE job_id IN (?, ?)",
                               (done["id"], uploaded["id"])).fetchone()[0]
            assert count == 0, table


def test_deleting_a_running_job_aborts_it_and_leaves_nothing_of_it(
        api: Api, server: LocalServer, tmp_path: Path) -> None:
    data = Path(server.data_dir)
    marker = unique_marker("delete")
    since = current_seq(api)
    running, pids = _start_slow(api, tmp_path, marker)
    processes = _task_pids(pids)
    api.ok("DELETE", f"{C}/jobs/{running}")
    assert_error(api("GET", f"{C}/jobs/{running}"), 404)
    assert until(lambda: all(gone(pid) for pid in processes), timeout=20)
    assert marked(marker) == []  # the apps' own children died with them
    # whoever watches the job is told it ended, aborted, after its tasks were cancelled
    events = _job_events(api, since, running)
    [ended] = [e["data"] for e in events if e["event"] == "job.state"
               and e["data"]["state"] == "JOB_STATE_FAILED"]
    assert "aborted" in ended["errorMessage"].lower()
    # The delete answers without waiting for the run to wind down; once it has, nothing of
    # the job is left, also what the run wrote after the delete.
    assert until(lambda: f"bytenite-job-{running}" not in {
        t.name for t in threading.enumerate()}, timeout=30)
    assert not (data / "jobs" / running).exists()
    assert not (data / "results" / running).exists()
    with sqlite3.connect(data / "bytenite-local.db") as db:
        for table in ("jobs", "tasks", "logs", "results", "uploads"):
            column = "id" if table == "jobs" else "job_id"
            count = db.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?",
                               (running,)).fetchone()[0]
            assert count == 0, table
    assert_error(api("GET", f"{C}/jobs/{running}/tasks"), 404)


def test_sigkill_mid_job_then_restart(tmp_path: Path) -> None:
    apps = _apps(tmp_path / "apps")
    data_dir = tmp_path / "data"
    marker = unique_marker("sigkill")
    # Started and restarted here: the test kills the server, then opens its data dir again.
    server = LocalServer.start(data_dir, api_keys=(TEST_API_KEY,), apps_dirs=(apps,),
                               workers=2)
    try:
        api = Api(server.base_url, TEST_API_KEY)
        done = api.create(params={"app": {"case": "upper"}})
        api.ok("POST", f"{C}/jobs/{done['id']}/run")
        assert api.wait(done["id"])["state"] == "JOB_STATE_COMPLETE"
        [result] = api.ok("GET", f"{C}/jobs/{done['id']}/results")["results"]
        content = requests.get(result["link"], timeout=30).content
        running, pids = _start_slow(api, tmp_path, marker)
        assert server.pid is not None
        family = [p.pid for p in psutil.Process(server.pid).children(recursive=True)]
        family += _task_pids(pids)
        os.kill(server.pid, signal.SIGKILL)
        # nothing the server started outlives it: fork server, tasks, the tasks' children
        assert until(lambda: all(gone(pid) for pid in family), timeout=30), [
            pid for pid in family if not gone(pid)]
        assert marked(marker) == []
    finally:
        server.stop()
    with sqlite3.connect(data_dir / "bytenite-local.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with LocalServer.start(data_dir, api_keys=(TEST_API_KEY,), apps_dirs=(apps,)) as again:
        api = Api(again.base_url, TEST_API_KEY)
        job = api.job(running)
        assert job["state"] == "JOB_STATE_FAILED"
        assert "restarted while this job was running" in job["errorMessage"]
        assert all(t["state"] == "TASK_STATE_CANCELLED"
                   for t in api.ok("GET", f"{C}/jobs/{running}/tasks")["tasks"])
        assert api.job(done["id"])["state"] == "JOB_STATE_COMPLETE"
        [kept] = api.ok("GET", f"{C}/jobs/{done['id']}/results")["results"]
        assert requests.get(kept["link"], timeout=30).content == content
        # and it still runs jobs
        job = api.create(params={"app": {"case": "lower"}})
        api.ok("POST", f"{C}/jobs/{job['id']}/run")
        assert api.wait(job["id"])["state"] == "JOB_STATE_COMPLETE"
    with sqlite3.connect(data_dir / "bytenite-local.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
