"""ByteNite's Hello World tutorial, verbatim, against ByteNite Local over loopback."""

from __future__ import annotations

from pathlib import Path

import requests

from bytenite_nb import wire
from bytenite_nb.local import LocalServer
from tests.kit.loopback import Api, C, current_seq, read_events, serve_dir

TEXT = "Hello, World! This is ByteNite's hello world, run locally.\nSecond line.\n"


def test_hello_world_tutorial_flow(server: LocalServer, api_key: str, tmp_path: Path) -> None:
    base_url: str = server.base_url
    (tmp_path / "hello-world-I.txt").write_text(TEXT, encoding="utf-8")
    with serve_dir(tmp_path) as files:
        # 1. token
        token = requests.post(f"{base_url}/v1/auth/access_token", json={"apiKey": api_key},
                              timeout=30).json()
        assert token["expiresIn"] == "3600" and token["token"] and token["scope"]
        headers = {"Authorization": token["token"]}
        api = Api(base_url, api_key)
        start_seq = current_seq(api)

        # 2. create with a url source and the temporary bucket destination
        created = requests.post(f"{base_url}{C}/jobs", headers=headers, timeout=30, json={
            "templateId": "hello-world-template",
            "name": "Hello World",
            "dataSource": {
                "dataSourceDescriptor": "url",
                "params": {"@type": "type.googleapis.com/bytenite.data_source.HttpDataSource",
                           "url": f"{files}/hello-world-I.txt"},
            },
            "dataDestination": {"dataSourceDescriptor": "bucket"},
        })
        assert created.status_code == 200, created.text
        job = created.json()["job"]
        job_id = job["id"]
        assert job["state"] == "JOB_STATE_NEW"
        assert created.json()["templateInfo"]["app"] == "hello-world"

        # 3. params
        patched = requests.patch(f"{base_url}{C}/jobs/{job_id}/params", headers=headers,
                                 json={"app": {"case": "upper"}}, timeout=30)
        assert patched.status_code == 200, patched.text
        assert patched.json()["job"]["params"]["app"] == {"case": "upper"}

        # 4. run with the flat body the docs use
        run = requests.post(f"{base_url}{C}/jobs/{job_id}/run", headers=headers, timeout=30,
                            json={"taskTimeout": 3600, "jobTimeout": 86400, "isTestJob": True})
        assert run.status_code == 200, run.text
        assert run.json()["ok"] is True and run.json()["requestId"]

        # 5. COMPLETE, with the lifecycle recorded
        job = api.wait(job_id)
        assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
        assert job["numChunks"] == "1"
        assert job["config"]["taskTimeout"] == "3600" and job["config"]["isTestJob"] is True
        assert set(job["stateTimestamps"]) >= {s.value for s in wire.RUN_STATES}
        assert job["startedAt"] and job["endedAt"] and job["submittedAt"]
        assert int(job["duration"]) >= 0 and job["errorMessage"] == ""

        # 6. result link, fetched without any auth header
        results = requests.get(f"{base_url}{C}/jobs/{job_id}/results", headers=headers,
                               timeout=30).json()["results"]
        assert [r["name"] for r in results] == ["hello_world_processed.txt"]
        download = requests.get(results[0]["link"], timeout=30)
        assert download.status_code == 200
        assert download.content.decode("utf-8") == TEXT.upper()

    # the events stream told the story in order
    def done(results: list[dict]) -> bool:
        return any(r["event"] == "job.state" and r["data"]["jobId"] == job_id
                   and r["data"]["state"] == "JOB_STATE_COMPLETE" for r in results)

    events = read_events(api, start_seq, done)
    seqs = [int(e["seq"]) for e in events if e["event"] != "heartbeat"]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    mine = [e for e in events if e["data"].get("jobId") == job_id]
    states = [e["data"]["state"] for e in mine if e["event"] == "job.state"]
    assert states == ["JOB_STATE_NEW", *[s.value for s in wire.RUN_STATES]]
    for event in mine:
        assert event["data"]["@type"] == wire.EVENT_TYPES[event["event"]]
    task_states = [e["data"]["state"] for e in mine if e["event"] == "task.state"]
    assert task_states[-1] == "TASK_STATE_COMPLETE" and "TASK_STATE_RUNNING" in task_states
    # the task's events come between PARTITIONED and TASKS_COMPLETED
    names = [(e["event"], e["data"]["state"]) for e in mine if e["event"] != "job.log"]
    first_task = next(i for i, n in enumerate(names) if n[0] == "task.state")
    last_task = max(i for i, n in enumerate(names) if n[0] == "task.state")
    assert names.index(("job.state", "JOB_STATE_PARTITIONED")) < first_task
    assert last_task < names.index(("job.state", "JOB_STATE_TASKS_COMPLETED"))
    logs = [e["data"]["log"] for e in mine if e["event"] == "job.log"]
    assert any("hello_world_processed.txt" in line for line in logs)


def test_the_same_api_is_served_under_v1_computing(server: LocalServer, api_key: str) -> None:
    api = Api(server.base_url, api_key, bearer=True)
    job = api.ok("POST", "/v1/computing/jobs", json={"templateId": "hello-world-template",
                                                     "name": "computing alias"})["job"]
    assert api.ok("GET", f"/v1/customer/jobs/{job['id']}")["job"]["name"] == "computing alias"
    assert api.ok("GET", f"/v1/computing/jobs/{job['id']}")["job"]["state"] == "JOB_STATE_NEW"
