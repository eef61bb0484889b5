"""Every data path over loopback: file uploads, /datasource/test, refused cloud descriptors,
live runningTasks counts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from bytenite_nb import wire
from bytenite_nb.local import LocalServer
from tests.kit.apps import FANOUT, GATED, write_app, write_engine
from tests.kit.loopback import Api, C, assert_error, serve_dir
from tests.kit.servers import ServerFactory

CAP = 4096


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory,
           tmp_path_factory: pytest.TempPathFactory) -> LocalServer:
    apps = tmp_path_factory.mktemp("datapath-apps")
    write_engine(apps, "fanout", FANOUT, "partitioner")
    write_app(apps, "gated", GATED, template={"partitioner": "fanout@0"})
    return start_module_server(apps_dirs=(apps,), workers=2,
                               config_overrides={"max_upload_bytes": CAP})


def test_file_source_upload_complete_run(api: Api, server: LocalServer) -> None:
    job = api.create(dataSource=wire.file_source(), params={"app": {"case": "upper"}})
    temp_url = job["dataSource"]["params"]["tempUrl"]
    assert temp_url.startswith(f"{server.base_url}/local/uploads/")
    # nothing uploaded yet: neither uploadcompleted nor run
    assert_error(api("PATCH", f"{C}/jobs/{job['id']}/uploadcompleted"), 400, "PUT")
    assert_error(api("POST", f"{C}/jobs/{job['id']}/run"), 400, "upload", "not complete")
    # uploaded but not marked complete: run still refused, saying what to do
    put = requests.put(temp_url, data=b"first version", timeout=30)
    assert put.status_code == 200 and put.json()["size"] == "13"
    assert_error(api("POST", f"{C}/jobs/{job['id']}/run"), 400, "uploadcompleted")
    # too big: refused with 413, the earlier upload kept, no partial file left
    assert_error(requests.put(temp_url, data=b"x" * (CAP + 1), timeout=30), 413, "limit")
    folder = Path(server.data_dir) / "jobs" / job["id"] / "upload"
    assert [p.name for p in folder.iterdir()] == ["upload.bin"]
    # a second PUT replaces the first, under the name Content-Disposition gives
    requests.put(temp_url, data=b"hello, file", timeout=30,
                 headers={"Content-Disposition": 'attachment; filename="greeting.txt"'})
    assert [p.name for p in folder.iterdir()] == ["greeting.txt"]
    info = api.ok("POST", f"{C}/datasource/test", json={
        "dataSource": {"dataSourceDescriptor": "file", "params": {"tempUrl": temp_url}},
        "listFiles": True})
    assert (info["filename"], info["size"]) == ("greeting.txt", "11")
    assert info["tempUrl"] == temp_url and info["properties"]["uploaded"] == "true"
    assert info["files"]["files"][0]["name"] == "greeting.txt"
    api.ok("PATCH", f"{C}/jobs/{job['id']}/uploadcompleted")
    api.ok("POST", f"{C}/jobs/{job['id']}/run")
    job = api.wait(job["id"])
    assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
    [result] = api.ok("GET", f"{C}/jobs/{job['id']}/results")["results"]
    assert requests.get(result["link"], timeout=30).text == "HELLO, FILE"
    # the target is closed once the job ran
    assert_error(requests.put(temp_url, data=b"late", timeout=30), 400, "JOB_STATE_COMPLETE")


def test_switching_away_from_file_drops_the_upload(api: Api, server: LocalServer) -> None:
    job = api.create(dataSource=wire.file_source())
    temp_url = job["dataSource"]["params"]["tempUrl"]
    requests.put(temp_url, data=b"abc", timeout=30)
    api.ok("PATCH", f"{C}/jobs/{job['id']}/datasource",
           json={"dataSource": {"dataSourceDescriptor": "bypass"}})
    assert not (Path(server.data_dir) / "jobs" / job["id"] / "upload").exists()
    assert_error(requests.put(temp_url, data=b"abc", timeout=30), 404)


def test_datasource_test_url_file_bypass(api: Api, tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    with serve_dir(tmp_path) as base:
        info = api.ok("POST", f"{C}/datasource/test", json={
            "dataSource": {"dataSourceDescriptor": "url",
                           "params": {"@type": wire.HTTP_DATA_SOURCE_TYPE,
                                      "url": f"{base}/data.csv"}},
            "listFiles": True})
        assert (info["filename"], info["size"]) == ("data.csv", "8")
        assert info["properties"]["contentType"].startswith("text/csv")
        assert [f["name"] for f in info["files"]["files"]] == ["data.csv"]
        brief = api.ok("POST", f"{C}/datasource/test", json={
            "dataSource": {"dataSourceDescriptor": "url", "params": {"url": f"{base}/data.csv"}}})
        assert brief["files"] is None and brief["size"] == "8"
        assert_error(api("POST", f"{C}/datasource/test", json={"dataSource": {
            "dataSourceDescriptor": "url", "params": {"url": f"{base}/missing.csv"}}}),
            400, "404")
    bypass = api.ok("POST", f"{C}/datasource/test", json={
        "dataSource": {"dataSourceDescriptor": "bypass"}, "listFiles": True})
    assert bypass["size"] == "0" and len(bypass["files"]["files"]) == 1
    pending = api.ok("POST", f"{C}/datasource/test", json={
        "dataSource": {"dataSourceDescriptor": "file"}, "listFiles": True})
    assert pending["properties"]["uploaded"] == "false" and pending["files"]["files"] == []


@pytest.mark.parametrize("descriptor", ["s3", "aws", "gcp", "storj"])
def test_cloud_descriptors_are_refused_when_set(api: Api, descriptor: str) -> None:
    source = {"dataSourceDescriptor": descriptor,
              "params": {"bucketName": "b", "objectName": "o", "secretId": "s"}}
    assert_error(api("POST", f"{C}/jobs", json={"templateId": "hello-world-template",
                                                "dataSource": source}),
                 400, "ByteNite Local does not serve", descriptor)
    job = api.create()
    assert_error(api("PATCH", f"{C}/jobs/{job['id']}/datasource", json={"dataSource": source}),
                 400, "ByteNite Local does not serve", descriptor)
    assert_error(api("PATCH", f"{C}/jobs/{job['id']}/datasource",
                     json={"dataDestination": source}), 400, "does not serve", descriptor)
    assert_error(api("POST", f"{C}/datasource/test", json={"dataSource": source}),
                 400, "does not serve")
    assert api.job(job["id"])["dataSource"] is None  # nothing changed


def test_running_tasks_are_live_counts(api: Api, tmp_path: Path) -> None:
    gate = tmp_path / "release"
    job = api.create(templateId="gated-template",
                     params={"partitioner": {"chunks": 3}, "app": {"gate": str(gate)}})
    idle = api.create()
    api.ok("POST", f"{C}/jobs/{job['id']}/run")
    ids = [job["id"], idle["id"], "no-such-job"]
    deadline = time.monotonic() + 60
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = api.ok("POST", f"{C}/jobs/runningTasks",
                        json={"jobsIds": ids})["jobsRunningTasks"]
        if counts[job["id"]] == 2:
            break
        time.sleep(0.05)
    # two workers: two of the three tasks run, the third waits
    assert counts == {job["id"]: 2, idle["id"]: 0, "no-such-job": 0}
    gate.touch()
    assert api.wait(job["id"])["state"] == "JOB_STATE_COMPLETE"
    assert api.ok("POST", f"{C}/jobs/runningTasks",
                  json={"jobsIds": [job["id"]]})["jobsRunningTasks"] == {job["id"]: 0}
    assert_error(api("POST", f"{C}/jobs/runningTasks", json={}), 400, "jobsIds")


def test_deny_private_sources_refuses_this_machine_and_its_network(
        start_server: ServerFactory, tmp_path: Path) -> None:
    server = start_server(in_process=False, deny_private_sources=True)  # serve's flag
    api = Api(server.base_url, server.api_key)
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    with serve_dir(tmp_path) as base:
        source = {"dataSourceDescriptor": "url", "params": {"url": f"{base}/data.csv"}}
        # /datasource/test no longer tells which local ports answer
        assert_error(api("POST", f"{C}/datasource/test", json={"dataSource": source}), 400,
                     "--deny-private-sources", "127.0.0.1")
        job = api.run(dataSource=source)
        assert job["state"] == "JOB_STATE_FAILED"
        assert "--deny-private-sources" in job["errorMessage"]
