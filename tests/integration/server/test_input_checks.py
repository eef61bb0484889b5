"""Hostile input is refused before anything is stored: text that is not UTF-8, int64 values
out of range, names with a trailing newline, strings and bodies past their documented size
limits. Each refusal is a 400 (413 for a body) naming the field, and the server keeps serving
every list and job afterwards."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
import requests

from bytenite_nb.api import Client
from bytenite_nb.cli import main
from bytenite_nb.local import LocalServer
from bytenite_nb.server.http import limits
from tests.kit.apps import ECHO, write_app
from tests.kit.archives import make_tar
from tests.kit.loopback import Api, C, assert_error
from tests.kit.servers import ServerFactory

D = "/v1/dev"
S = "/v1/auth/secrets"
LONE = "bad\ud800name"  # a lone surrogate: valid in JSON text, not encodable as UTF-8


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory) -> LocalServer:
    return start_module_server(workers=1)


def _everything_still_reads(api: Api, server: LocalServer) -> None:
    """The lists a stored bad job used to break, and the client's DataFrame of them."""
    api.ok("GET", f"{C}/jobs")
    api.ok("GET", f"{C}/jobs", params={"orderBy": "name"})
    api.ok("POST", f"{C}/jobs/filter", json={"orderBy": "description"})
    with Client(api_key=server.api_key, base_url=server.base_url) as client:
        client.jobs_df()


# -- defect 2: text that cannot be encoded as UTF-8 --------------------------------------------


@pytest.mark.parametrize(("body", "field"), [
    ({"name": LONE}, "name"),
    ({"description": LONE}, "description"),
    ({"params": {"preset": LONE}}, "params.preset"),
    ({"params": {"app": {"note": LONE}}}, "params.app.note"),
    ({"params": {"app": {LONE: 1}}}, "params.app"),
])
def test_a_lone_surrogate_is_refused_naming_the_field_and_nothing_is_stored(
        api: Api, server: LocalServer, body: dict, field: str) -> None:
    job_id = str(uuid.uuid4())
    answer = api("POST", f"{C}/jobs", json={"templateId": "hello-world-template",
                                             "jobId": job_id, **body})
    error = assert_error(answer, 400, field, "UTF-8")
    assert "\ud800" not in error["message"]
    assert_error(api("GET", f"{C}/jobs/{job_id}"), 404)
    _everything_still_reads(api, server)


def test_a_lone_surrogate_in_a_rename_running_tasks_or_a_secret_is_refused(
        api: Api, server: LocalServer) -> None:
    job = api.create(name="fine")
    for body in (LONE, {"name": LONE}):
        assert_error(api("PATCH", f"{C}/jobs/{job['id']}/jobname", json=body), 400, "UTF-8")
    assert api.job(job["id"])["name"] == "fine"
    assert_error(api("POST", f"{C}/jobs/runningTasks", json={"jobsIds": [LONE]}), 400,
                 "jobsIds", "UTF-8")
    assert_error(api("POST", S, json={"secret": {"id": "SURROGATE", "secretType": "other",
                                                 "name": LONE}, "secretKey": "abcdef"}),
                 400, "secret.name", "UTF-8")
    assert "SURROGATE" not in json.dumps(api.ok("GET", S))
    assert_error(api("POST", f"{D}/templates", json={"id": "surrogate-tpl", "app": "hello-world",
                                                     "description": LONE}), 400, "description")
    assert_error(api("GET", f"{D}/templates/surrogate-tpl"), 404)
    _everything_still_reads(api, server)


# -- defect 6: int64 inputs out of range --------------------------------------------------------


def test_int64_inputs_beyond_int64_are_400(api: Api, server: LocalServer) -> None:
    huge = str(2**63)
    # the stream used to answer 200 and then drop the connection
    assert_error(api("GET", f"{C}/events", params={"since": huge}), 400, "since", "int64")
    assert_error(api("GET", f"{C}/events", headers={"Last-Event-ID": "9" * 30}), 400,
                 "Last-Event-ID")
    assert_error(api("POST", f"{C}/jobs/filter", json={"filters": [
        {"field": "numChunks", "condition": "FILTER_CONDITION_GT", "value": huge}]}),
        400, "numChunks")
    assert_error(api("POST", f"{C}/jobs/filter", json={"filters": [
        {"field": "duration", "condition": "FILTER_CONDITION_EQ", "value": 1e300}]}),
        400, "duration")
    assert_error(api("POST", f"{C}/jobs", json={"templateId": "hello-world-template",
                                                "config": {"taskTimeout": huge}}),
                 400, "taskTimeout")
    # the largest int64 is fine
    assert api("GET", f"{C}/events", params={"since": str(2**63 - 1)}, stream=True,
               timeout=30).status_code == 200
    _everything_still_reads(api, server)


# -- defect 9: names with a trailing newline ----------------------------------------------------


def test_names_with_a_trailing_newline_are_refused(api: Api) -> None:
    assert_error(api("POST", f"{C}/jobs", json={"templateId": "hello-world-template",
                                                "jobId": "nl-test\n"}), 400, "jobId")
    assert_error(api("GET", f"{C}/jobs/nl-test%0A"), 404)

    def push(name: str, version: str) -> requests.Response:
        manifest = {"name": name, "version": version, "entrypoint": "main.py"}
        archive = make_tar({"manifest.json": json.dumps(manifest).encode(),
                            "app/main.py": ECHO.encode()})
        return api("POST", f"{D}/apps", json={"data": base64.b64encode(archive).decode()})

    assert_error(push("ok\n", "0.1"), 400, "name")
    assert_error(push("okname", "0.1\n"), 400, "version")
    assert_error(api("POST", f"{D}/templates", json={"id": "ok\n", "app": "hello-world"}),
                 400, "template id")
    names = {a["name"] for a in api.ok("GET", f"{D}/apps")["apps"]}
    assert "ok\n" not in names and "okname" not in names


def test_job_list_like_filters_do_not_match_past_a_newline(api: Api) -> None:
    tag = uuid.uuid4().hex[:10]
    api.create(name=f"{tag}\n")
    api.create(name=tag)
    found = api.ok("POST", f"{C}/jobs/filter", json={"filters": [
        {"field": "name", "condition": "FILTER_CONDITION_LIKE", "value": tag}]})["data"]
    assert [job["name"] for job in found] == [tag]


# -- defect 7: size limits ----------------------------------------------------------------------


def test_strings_past_their_documented_maximum_are_400(api: Api, server: LocalServer) -> None:
    too_long = "n" * (limits.MAX_NAME + 1)
    assert_error(api("POST", f"{C}/jobs", json={"templateId": "hello-world-template",
                                                "name": too_long}), 400, "name",
                 str(limits.MAX_NAME))
    assert_error(api("POST", f"{C}/jobs", json={
        "templateId": "hello-world-template", "description": "d" * (limits.MAX_DESCRIPTION + 1)}),
        400, "description")
    job = api.create()
    assert_error(api("PATCH", f"{C}/jobs/{job['id']}/jobname", json=too_long), 400,
                 str(limits.MAX_NAME))
    assert api.create(name="n" * limits.MAX_NAME)["name"] == "n" * limits.MAX_NAME
    # every string of every request body has a maximum, in the OpenAPI document
    doc = requests.get(f"{server.base_url}/openapi.json", timeout=30).json()
    schemas = doc["components"]["schemas"]
    pending = [content["schema"] for item in doc["paths"].values() for op in item.values()
               for content in op.get("requestBody", {}).get("content", {}).values()]
    seen: set[str] = set()
    unbounded = []
    while pending:
        spec = pending.pop()
        if "$ref" in spec:
            name = spec["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                pending += [{**sub, "where": f"{name}.{prop}"}
                            for prop, sub in schemas[name].get("properties", {}).items()]
            continue
        inner = [*spec.get("anyOf", ()), *([spec["items"]] if "items" in spec else [])]
        pending += [{**sub, "where": spec.get("where")} for sub in inner]
        # (raw uploads are binary, streamed under max_upload_bytes)
        if spec.get("type") == "string" and "maxLength" not in spec and (
                spec.get("format") != "binary"):
            unbounded.append(spec.get("where") or "a raw string body")
    assert len(seen) > 10
    assert unbounded == []


def test_request_bodies_past_the_cap_are_413_and_nothing_is_stored(
        start_server: ServerFactory) -> None:
    server = start_server(config_overrides={"max_request_bytes": 4096})
    api = Api(server.base_url, server.api_key)
    job_id = str(uuid.uuid4())
    big = {"templateId": "hello-world-template", "jobId": job_id,
           "params": {"app": {"blob": "x" * 5000}}}
    assert_error(api("POST", f"{C}/jobs", json=big), 413, "4096")

    def chunks() -> object:  # no Content-Length: counted while it streams in
        yield json.dumps(big).encode()[:3000]
        yield json.dumps(big).encode()[3000:]

    assert_error(api("POST", f"{C}/jobs", data=chunks(),
                     headers={"Content-Type": "application/json"}), 413, "4096")
    assert_error(api("GET", f"{C}/jobs/{job_id}"), 404)
    # uploads stream past it, under their own cap
    job = api.create(dataSource={"dataSourceDescriptor": "file", "params": {}})
    temp_url = job["dataSource"]["params"]["tempUrl"]
    assert requests.put(temp_url, data=b"y" * 10_000, timeout=30).status_code == 200


def test_serve_max_request_bytes_reaches_the_server_and_its_413_names_the_flag(
        start_server: ServerFactory) -> None:
    # a child process: the cap travels as `bytenite-nb serve --max-request-bytes 4K`
    server = start_server(in_process=False, config_overrides={"max_request_bytes": "4K"})
    api = Api(server.base_url, server.api_key)
    big = {"templateId": "hello-world-template", "params": {"app": {"blob": "x" * 5000}}}
    response = api("POST", f"{C}/jobs", json=big)
    assert_error(response, 413, "4096")
    assert "--max-request-bytes" in response.text
    small = {"templateId": "hello-world-template", "params": {"app": {"blob": "x" * 3000}}}
    assert api("POST", f"{C}/jobs", json=small).status_code == 200


def test_serve_refuses_a_max_request_bytes_that_is_not_a_size(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for bad, says in (("lots", "is not a size"), ("100", "at least 1024")):
        code = main(["serve", "--data-dir", str(tmp_path), "--max-request-bytes", bad])
        err = capsys.readouterr().err
        assert code == 2 and "--max-request-bytes" in err and says in err


def test_a_job_printing_too_many_lines_keeps_the_first_and_last_and_says_how_many_went(
        start_server: ServerFactory, tmp_path: Path) -> None:
    apps = tmp_path / "apps"
    write_app(apps, "chatty", """
for i in range(1000):
    print(f"line {i}")
""")
    server = start_server(in_process=False, apps_dirs=(apps,), max_log_lines=100)
    api = Api(server.base_url, server.api_key)
    job = api.run(templateId="chatty-template")
    assert job["state"] == "JOB_STATE_COMPLETE"
    logs = api.ok("POST", f"{C}/logs", json={"jobId": job["id"]})
    lines = [entry["log"] for entry in logs["taskrunner"]["task-0"]["logs"]]
    app_lines = [line for line in lines if line.startswith("line ")]
    assert app_lines == [f"line {i}" for i in (*range(50), *range(950, 1000))]
    notes = [line for line in lines if "dropped" in line]
    assert len(notes) == 1 and "900" in notes[0] and "--max-log-lines" in notes[0]
    # the note sits where the lines went missing
    assert lines.index(notes[0]) == lines.index("line 950") - 1
