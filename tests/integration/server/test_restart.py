"""Stopping ByteNite Local and starting it again on the same data dir loses nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import psutil
import requests

from bytenite_nb.local import LocalServer
from bytenite_nb.server.storage.store import Store
from tests.kit.apps import FAILING, FANOUT, SLEEPY, write_app, write_engine
from tests.kit.loopback import Api, C, current_seq, read_events
from tests.kit.processes import gone, until
from tests.kit.servers import TEST_API_KEY, ServerFactory


def _snapshot(api: Api, job_ids: list[str]) -> dict[str, object]:
    return {
        job_id: {
            "job": api.job(job_id),
            "logs": api.ok("POST", f"{C}/logs", json={"jobId": job_id}),
            "tasks": api.ok("GET", f"{C}/jobs/{job_id}/tasks"),
        }
        for job_id in job_ids
    }


def test_jobs_logs_results_and_events_survive_a_restart(tmp_path: Path) -> None:
    apps = tmp_path / "apps"
    write_app(apps, "failing", FAILING)
    write_app(apps, "slow", SLEEPY, template={"params": {"app": {"seconds": 120}}})
    data_dir = tmp_path / "data"

    # Started here, twice: the test restarts the server on the same data dir.
    with LocalServer.start(data_dir, api_keys=(TEST_API_KEY,), in_process=True,
                           apps_dirs=(apps,)) as first:
        api = Api(first.base_url, TEST_API_KEY)
        done = api.create(name="complete", params={"app": {"case": "upper"}})
        api.ok("POST", f"{C}/jobs/{done['id']}/run")
        failed = api.create(templateId="failing-template", name="failed")
        api.ok("POST", f"{C}/jobs/{failed['id']}/run")
        draft = api.create(name="draft")
        assert api.wait(done["id"])["state"] == "JOB_STATE_COMPLETE"
        assert api.wait(failed["id"])["state"] == "JOB_STATE_FAILED"
        running = api.create(templateId="slow-template", name="interrupted")
        api.ok("POST", f"{C}/jobs/{running['id']}/run")
        api.wait(running["id"], ("JOB_STATE_PARTITIONED",))
        ids = [done["id"], failed["id"], draft["id"]]
        before = _snapshot(api, ids)
        result = api.ok("GET", f"{C}/jobs/{done['id']}/results")["results"][0]
        content = requests.get(result["link"], timeout=30).content
        last_seq = current_seq(api)
        old_token = api.token

    with LocalServer.start(data_dir, api_keys=(TEST_API_KEY,), in_process=True,
                           apps_dirs=(apps,)) as second:
        api = Api(second.base_url, TEST_API_KEY)
        assert _snapshot(api, ids) == before
        # the job that was running when the server stopped ended FAILED, saying why
        interrupted = api.job(running["id"])
        assert interrupted["state"] == "JOB_STATE_FAILED"
        assert "stopped" in interrupted["errorMessage"]
        # results are still served (at this server's address) with the same content
        again = api.ok("GET", f"{C}/jobs/{done['id']}/results")["results"]
        assert [r["name"] for r in again] == [result["name"]]
        assert requests.get(again[0]["link"], timeout=30).content == content
        # tokens issued before the restart stay valid until they expire
        assert requests.get(f"{second.base_url}{C}/jobs/{draft['id']}", timeout=30,
                            headers={"Authorization": old_token}).status_code == 200
        # the events are still there to resume from
        replay = read_events(api, 0, lambda r: any(
            int(e["seq"]) >= last_seq for e in r if e["event"] != "heartbeat"))
        states = [e["data"]["state"] for e in replay
                  if e["event"] == "job.state" and e["data"]["jobId"] == done["id"]]
        assert states[0] == "JOB_STATE_NEW" and states[-1] == "JOB_STATE_COMPLETE"
        # the server still runs jobs
        api.ok("POST", f"{C}/jobs/{draft['id']}/run")
        assert api.wait(draft["id"])["state"] == "JOB_STATE_COMPLETE"


def test_sigkill_mid_fan_out_then_restart(tmp_path: Path) -> None:
    apps = tmp_path / "apps"
    write_engine(apps, "fanout", FANOUT, "partitioner")
    write_app(apps, "quick", SLEEPY, template={"partitioner": "fanout", "params": {
        "partitioner": {"chunks": 400}, "app": {"seconds": 0.05}}})
    data_dir = tmp_path / "data"
    # Started and restarted here: the test SIGKILLs the server, then opens its data dir again.
    server = LocalServer.start(data_dir, api_keys=(TEST_API_KEY,), apps_dirs=(apps,),
                               workers=2)
    try:
        api = Api(server.base_url, TEST_API_KEY)
        done = api.run(name="before", params={"app": {"case": "upper"}})
        assert done["state"] == "JOB_STATE_COMPLETE"
        [result] = api.ok("GET", f"{C}/jobs/{done['id']}/results")["results"]
        content = requests.get(result["link"], timeout=30).content
        job = api.create(templateId="quick-template")
        api.ok("POST", f"{C}/jobs/{job['id']}/run")

        def completed() -> int:
            tasks = api.ok("GET", f"{C}/jobs/{job['id']}/tasks")["tasks"]
            return sum(t["state"] == "TASK_STATE_COMPLETE" for t in tasks)

        assert until(lambda: completed() >= 40), "the fan-out did not get going"
        assert (data_dir / "jobs" / job["id"] / "work").is_dir()
        assert server.pid is not None
        family = [p.pid for p in psutil.Process(server.pid).children(recursive=True)]
        os.kill(server.pid, signal.SIGKILL)
        assert until(lambda: all(gone(pid) for pid in family), timeout=30), [
            pid for pid in family if not gone(pid)]
    finally:
        server.stop()
    with sqlite3.connect(data_dir / "bytenite-local.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finished = {chunk for (chunk,) in db.execute(
            "SELECT chunk FROM tasks WHERE job_id = ? AND state = 'TASK_STATE_COMPLETE'",
            (job["id"],))}
    assert 40 <= len(finished) < 400
    with LocalServer.start(data_dir, api_keys=(TEST_API_KEY,), apps_dirs=(apps,)) as again:
        api = Api(again.base_url, TEST_API_KEY)
        failed = api.job(job["id"])
        assert failed["state"] == "JOB_STATE_FAILED"
        assert "restarted while this job was running" in failed["errorMessage"]
        assert "create and run the job again" in failed["errorMessage"]
        tasks = api.ok("GET", f"{C}/jobs/{job['id']}/tasks")["tasks"]
        assert {t["chunkNumber"] for t in tasks if t["state"] == "TASK_STATE_COMPLETE"} == \
            finished
        assert {t["state"] for t in tasks} <= {"TASK_STATE_COMPLETE", "TASK_STATE_CANCELLED"}
        assert not (data_dir / "jobs" / job["id"] / "work").exists()  # its scratch is gone
        [kept] = api.ok("GET", f"{C}/jobs/{done['id']}/results")["results"]
        assert requests.get(kept["link"], timeout=30).content == content
        replay = [e for e in read_events(api, 0, lambda r: any(
            e["event"] == "job.state" and e["data"]["jobId"] == job["id"] and
            e["data"]["state"] == "JOB_STATE_FAILED" for e in r), jobId=job["id"])
            if e["event"] != "heartbeat"]
        seqs = [int(e["seq"]) for e in replay]
        assert seqs == sorted(set(seqs))
        assert api.run(params={"app": {"case": "lower"}})["state"] == "JOB_STATE_COMPLETE"
    with sqlite3.connect(data_dir / "bytenite-local.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_job_left_running_by_a_crash_is_failed_at_start_up(
        tmp_path: Path, start_server: ServerFactory) -> None:
    store = Store(tmp_path / "bytenite-local.db")
    stamp = "2026-01-01T00:00:00.000Z"
    store.put_job({"id": "crashed-job", "templateId": "hello-world-template", "name": "c",
                   "state": "JOB_STATE_PARTITIONING", "createdAt": stamp, "startedAt": stamp,
                   "stateTimestamps": {"JOB_STATE_NEW": stamp}})
    store.upsert_task("crashed-job", 0, state="TASK_STATE_RUNNING")
    store.close()
    server = start_server(data_dir=tmp_path)
    api = Api(server.base_url, server.api_key)
    job = api.job("crashed-job")
    assert job["state"] == "JOB_STATE_FAILED"
    assert "restarted" in job["errorMessage"]
    assert "JOB_STATE_PARTITIONING" in job["errorMessage"]
    assert job["endedAt"] and "JOB_STATE_FAILED" in job["stateTimestamps"]
    tasks = api.ok("GET", f"{C}/jobs/crashed-job/tasks")["tasks"]
    assert tasks[0]["state"] == "TASK_STATE_CANCELLED"


def test_recovery_removes_the_scratch_folders_crashed_runs_left(
        tmp_path: Path, start_server: ServerFactory) -> None:
    store = Store(tmp_path / "bytenite-local.db")
    stamp = "2026-01-01T00:00:00.000Z"
    for job_id, state in (("crashed-job", "JOB_STATE_PARTITIONED"), ("draft-job", "JOB_STATE_NEW"),
                          ("done-job", "JOB_STATE_COMPLETE")):
        store.put_job({"id": job_id, "templateId": "hello-world-template", "name": job_id,
                       "state": state, "createdAt": stamp, "stateTimestamps": {state: stamp}})
    store.close()
    jobs = tmp_path / "jobs"
    scratch = jobs / "crashed-job" / "work" / "tasks" / "7"
    scratch.mkdir(parents=True)
    (scratch / "data.bin").write_bytes(b"x" * 100_000)
    (jobs / "done-job" / "work").mkdir(parents=True)  # a run cut short before its clean-up
    upload = jobs / "draft-job" / "upload" / "input.csv"
    upload.parent.mkdir(parents=True)
    upload.write_text("a,b\n")
    server = start_server(data_dir=tmp_path)
    assert Api(server.base_url, server.api_key).job("crashed-job")["state"] == "JOB_STATE_FAILED"
    assert not (jobs / "crashed-job" / "work").exists()
    assert not (jobs / "done-job" / "work").exists()
    assert upload.read_text() == "a,b\n"  # a draft's upload is not scratch space


def test_serve_in_a_child_process_and_find_it_again(tmp_path: Path) -> None:
    from bytenite_nb.local import find_running

    # Started here: the test looks for the server by its data dir, and for what its stop leaves.
    server = LocalServer.start(tmp_path)
    try:
        key_file = tmp_path / "api_key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert server.api_key == key_file.read_text().strip()
        found = find_running(tmp_path)
        assert found is not None and found.base_url == server.base_url
        found.stop()  # not the owner: the server keeps running
        assert Api(server.base_url, server.api_key).ok("GET", f"{C}/jobs")
        assert server.api_key not in repr(server)
    finally:
        server.stop()
    deadline = time.monotonic() + 30
    while find_running(tmp_path) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert find_running(tmp_path) is None
    assert not (tmp_path / "server.json").exists()
    log = (tmp_path / "server.log").read_text()
    assert "listening on http://127.0.0.1:" in log and server.api_key not in log
