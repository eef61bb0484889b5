"""Job lifecycle over loopback: failures, aborts, uploads, lists, filters, logs, tasks."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import requests

from bytenite_nb import wire
from bytenite_nb.local import LocalServer
from tests.kit.apps import ECHO, FAILING, FAILING_MESSAGE, FANOUT, SLEEPY, write_app, write_engine
from tests.kit.loopback import Api, C, assert_error
from tests.kit.servers import ServerFactory


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory,
           tmp_path_factory: pytest.TempPathFactory) -> LocalServer:
    apps = tmp_path_factory.mktemp("apps")
    write_app(apps, "failing", FAILING)
    write_app(apps, "slow", SLEEPY, template={"params": {"app": {"seconds": 120}}})
    write_engine(apps, "fanout", FANOUT, "partitioner")
    write_app(apps, "echo", ECHO, template={"partitioner": "fanout@0.1",
                                            "params": {"partitioner": {"chunks": 3}}},
              schema={"type": "object", "properties": {"tag": {"type": "string"}}})
    return start_module_server(apps_dirs=(apps,), workers=2)


def test_failing_app_fails_the_job_with_its_stderr_in_the_logs(api: Api) -> None:
    job = api.create(templateId="failing-template")
    api.ok("POST", f"{C}/jobs/{job['id']}/run", json={"config": {"taskTimeout": 60}})
    job = api.wait(job["id"])
    assert job["state"] == "JOB_STATE_FAILED"
    assert job["errorMessage"] and job["endedAt"]
    logs = api.ok("POST", f"{C}/logs", json={"jobId": job["id"]})
    lines = logs["taskrunner"]["task-0"]["logs"]
    errors = [entry for entry in lines if entry["level"] == "ERROR"]
    assert any(FAILING_MESSAGE in e["log"] for e in errors)
    assert any(e["log"] == "about to fail" and e["level"] == "INFO" for e in lines)
    only_errors = api.ok("POST", f"{C}/logs", json={"jobId": job["id"], "levels": ["ERROR"]})
    assert all(e["level"] == "ERROR" for e in only_errors["taskrunner"]["task-0"]["logs"])
    tasks = api.ok("GET", f"{C}/jobs/{job['id']}/tasks")["tasks"]
    assert tasks[0]["state"] == "TASK_STATE_FAILED" and tasks[0]["exitCode"] == 3
    assert_error(api("GET", f"{C}/jobs/{job['id']}/results"), 400, "not yet been completed")


def test_abort_running_job_fails_it_and_abort_new_job_deletes_it(api: Api) -> None:
    job = api.create(templateId="slow-template")
    api.ok("POST", f"{C}/jobs/{job['id']}/run")
    deadline = time.monotonic() + 60
    while True:
        counts = api.ok("POST", f"{C}/jobs/runningTasks",
                        json={"jobsIds": [job["id"], "unknown"]})["jobsRunningTasks"]
        if counts[job["id"]] == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert counts == {job["id"]: 1, "unknown": 0}
    assert api.ok("POST", f"{C}/jobs/{job['id']}/abort")["ok"] is True
    job = api.wait(job["id"])
    assert job["state"] == "JOB_STATE_FAILED" and "abort" in job["errorMessage"].lower()
    deadline = time.monotonic() + 60
    while (tasks := api.ok("GET", f"{C}/jobs/{job['id']}/tasks")["tasks"])[0]["state"] in (
            "TASK_STATE_RUNNING", "TASK_STATE_QUEUED") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tasks[0]["state"] == "TASK_STATE_CANCELLED"
    assert api.ok("POST", f"{C}/jobs/runningTasks",
                  json={"jobsIds": [job["id"]]})["jobsRunningTasks"] == {job["id"]: 0}
    assert_error(api("POST", f"{C}/jobs/{job['id']}/abort"), 400, "JOB_STATE_FAILED")

    fresh = api.create(templateId="slow-template")
    assert api.ok("POST", f"{C}/jobs/{fresh['id']}/abort")["ok"] is True
    assert_error(api("GET", f"{C}/jobs/{fresh['id']}"), 404)


def test_fan_out_template_defaults_schema_and_many_tasks(api: Api) -> None:
    job = api.create(templateId="echo-template", params={"app": {"tag": "x"}})
    assert job["params"]["partitioner"] == {"chunks": 3} and job["params"]["app"] == {"tag": "x"}
    assert_error(api("PATCH", f"{C}/jobs/{job['id']}/params", json={"app": {"tag": 5}}), 400,
                 "app.tag")
    api.ok("PATCH", f"{C}/jobs/{job['id']}/params", json={"partitioner": {"chunks": 4}})
    assert api.job(job["id"])["params"]["app"] == {"tag": "x"}  # other sections kept
    api.ok("POST", f"{C}/jobs/{job['id']}/run", json={})
    job = api.wait(job["id"])
    assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
    assert job["numChunks"] == "4"
    tasks = api.ok("GET", f"{C}/jobs/{job['id']}/tasks")["tasks"]
    assert [t["id"] for t in tasks] == ["task-0", "task-1", "task-2", "task-3"]
    assert all(t["state"] == "TASK_STATE_COMPLETE" and t["exitCode"] == 0 for t in tasks)
    assert all(t["startedAt"] and t["endedAt"] and t["duration"] is not None for t in tasks)
    results = api.ok("GET", f"{C}/jobs/{job['id']}/results")["results"]
    contents = sorted(requests.get(r["link"], timeout=30).text for r in results)
    assert contents == [f"chunk {i}" for i in range(4)]
    some = api.ok("POST", f"{C}/logs", json={"jobId": job["id"], "taskIds": ["task-2"]})
    assert list(some["taskrunner"]) == ["task-2"] and some["partitioner"] == []
    tr = api.ok("POST", f"{C}/logs", json={"jobId": job["id"], "services": ["TASKRUNNER"]})
    assert len(tr["taskrunner"]) == 4


def test_file_upload_flow(api: Api, server: LocalServer) -> None:
    job = api.create(dataSource=wire.file_source(), params={"app": {"case": "lower"}})
    temp_url = job["dataSource"]["params"]["tempUrl"]
    assert temp_url.startswith(server.base_url)
    assert_error(api("POST", f"{C}/jobs/{job['id']}/run"), 400, "upload")
    assert_error(api("PATCH", f"{C}/jobs/{job['id']}/uploadcompleted"), 400, "tempUrl")
    put = requests.put(temp_url, data=b"SHOUTING TEXT", timeout=30,
                       headers={"Content-Disposition": 'attachment; filename="in.txt"'})
    assert put.status_code == 200 and put.json()["size"] == "13"
    api.ok("PATCH", f"{C}/jobs/{job['id']}/uploadcompleted")
    api.ok("POST", f"{C}/jobs/{job['id']}/run")
    job = api.wait(job["id"])
    assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
    link = api.ok("GET", f"{C}/jobs/{job['id']}/results")["results"][0]["link"]
    assert requests.get(link, timeout=30).text == "shouting text"
    # the upload target is closed once the job has run
    assert_error(requests.put(temp_url, data=b"again", timeout=30), 400, "JOB_STATE_COMPLETE")


def test_create_with_job_id_is_idempotent_while_new(api: Api) -> None:
    job_id = "my-own-id-1234"
    first = api.create(jobId=job_id, name="first")
    second = api.create(jobId=job_id, name="second")
    assert first["id"] == second["id"] == job_id and second["name"] == "second"
    assert second["createdAt"] == first["createdAt"]
    listed = api.ok("POST", f"{C}/jobs/filter", json={"filters": [
        {"field": "id", "condition": "FILTER_CONDITION_EQ", "value": job_id}]})
    assert listed["pagination"]["total"] == "1"
    api.ok("POST", f"{C}/jobs/{job_id}/run")
    assert_error(api("POST", f"{C}/jobs", json={"templateId": "hello-world-template",
                                                "jobId": job_id}), 409, "JOB_STATE_")
    assert_error(api("POST", f"{C}/jobs", json={"templateId": "hello-world-template",
                                                "jobId": "../escape"}), 400, "jobId")


def test_list_filter_order_and_paginate(api: Api) -> None:
    ids = [api.create(name=f"page-{i}", description="paging")["id"] for i in range(5)]
    body = {"filters": [{"field": "description", "condition": "FILTER_CONDITION_EQ",
                         "value": {"@type": wire.PROTOBUF_VALUE_TYPE, "value": "paging"}}],
            "pagination": {"limit": 2, "offset": "2"}, "orderBy": "name asc"}
    page = api.ok("POST", f"{C}/jobs/filter", json=body)
    assert page["pagination"] == {"total": "5", "offset": "2", "hasPrevious": True,
                                  "hasNext": True}
    assert [j["name"] for j in page["data"]] == ["page-2", "page-3"]
    last = api.ok("POST", f"{C}/jobs/filter",
                  json={**body, "pagination": {"limit": 2, "offset": 4}, "orderBy": "-name"})
    assert [j["name"] for j in last["data"]] == ["page-0"]
    assert last["pagination"]["hasNext"] is False
    newest = api.ok("GET", f"{C}/jobs",
                    params={"pagination.limit": 1, "orderBy": "created_at desc"})
    assert newest["data"][0]["id"] == ids[-1] and newest["pagination"]["hasNext"] is True
    like = api.ok("POST", f"{C}/jobs/filter", json={"filters": [
        {"field": "name", "condition": "FILTER_CONDITION_LIKE", "value": "page-%"},
        {"field": "state", "condition": "FILTER_CONDITION_IN",
         "value": ["JOB_STATE_NEW", "JOB_STATE_STARTED"]},
        {"field": "created_at", "condition": "FILTER_CONDITION_GTE",
         "value": "2000-01-01T00:00:00Z"}]})
    assert {j["id"] for j in like["data"]} == set(ids)
    body = assert_error(api("POST", f"{C}/jobs/filter", json={"filters": [
        {"field": "colour", "condition": "FILTER_CONDITION_EQ", "value": "red"}]}), 400,
        "colour")
    assert "templateId" in body["message"]
    assert_error(api("GET", f"{C}/jobs", params={"orderBy": "colour"}), 400, "colour")
    assert_error(api("GET", f"{C}/jobs", params={"pagination.limit": "-1"}), 400)


def test_templates_are_listed_with_pagination(api: Api) -> None:
    page = api.ok("GET", f"{C}/jobs/templates", params={"orderBy": "id"})
    ids = [t["id"] for t in page["data"]]
    assert "hello-world-template" in ids and "failing-template" in ids
    assert ids == sorted(ids) and page["pagination"]["total"] == str(len(ids))
    one = api.ok("GET", f"{C}/jobs/templates", params={"pagination.limit": 1,
                                                       "pagination.offset": 1})
    assert len(one["data"]) == 1 and one["pagination"]["hasPrevious"] is True


def test_data_source_test_and_delete(api: Api) -> None:
    info = api.ok("POST", f"{C}/datasource/test",
                  json={"dataSource": {"dataSourceDescriptor": "bypass"}, "listFiles": True})
    assert info["files"]["files"] and isinstance(info["size"], str)
    assert_error(api("POST", f"{C}/datasource/test",
                     json={"dataSource": {"dataSourceDescriptor": "url",
                                          "params": {"url": "ftp://x"}}}), 400, "url")
    job = api.create()
    assert api.ok("DELETE", f"{C}/jobs/{job['id']}")["ok"] is True
    assert_error(api("GET", f"{C}/jobs/{job['id']}"), 404)


def test_a_result_link_serves_only_the_file_it_names(api: Api) -> None:
    job = api.run()
    [result] = api.ok("GET", f"{C}/jobs/{job['id']}/results")["results"]
    link = result["link"]
    assert requests.get(link, timeout=30).status_code == 200
    token_part, name = link.rsplit("/", 1)
    for other in ("other.txt", "..", "%2e%2e", name + "x"):
        assert_error(requests.get(f"{token_part}/{other}", timeout=30), 404)


def test_result_links_expire(api: Api, server: LocalServer) -> None:
    job = api.create()
    api.ok("POST", f"{C}/jobs/{job['id']}/run")
    assert api.wait(job["id"])["state"] == "JOB_STATE_COMPLETE"
    link = api.ok("GET", f"{C}/jobs/{job['id']}/results")["results"][0]["link"]
    assert requests.get(link, timeout=30).status_code == 200
    # 48 hours later (moving the clock is not possible; moving the expiry is)
    with sqlite3.connect(Path(server.data_dir) / "bytenite-local.db") as db:
        db.execute("UPDATE results SET expires_at = 0 WHERE job_id = ?", (job["id"],))
    assert_error(requests.get(link, timeout=30), 410, "expired")
