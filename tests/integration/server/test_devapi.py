"""The Developer API subset (/v1/dev) over loopback: push, activate, run, persist, refuse."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import requests

from bytenite_nb.api.dev import tar_folder
from bytenite_nb.local import LocalServer
from tests.kit.apps import REVERSE, write_app, write_folder
from tests.kit.archives import make_tar
from tests.kit.loopback import Api, C, assert_error, serve_dir
from tests.kit.servers import TEST_API_KEY, ServerFactory

D = "/v1/dev"

# A partitioner: one chunk per character of the first source file.
SPLIT = """
import os, pathlib
src = next(pathlib.Path(os.environ["SOURCE_DIR"]).iterdir()).read_text()
for i, ch in enumerate(src):
    pathlib.Path(os.environ["CHUNKS_DIR"], f"data_{i}.bin").write_text(ch)
"""


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory) -> LocalServer:
    return start_module_server(workers=2)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_info_and_auth(api: Api, server: LocalServer) -> None:
    info = api.ok("GET", f"{D}/info")
    assert info["version"]["tag"].startswith("bytenite-local")
    assert_error(requests.get(f"{server.base_url}{D}/apps", timeout=30), 401)


def test_push_app_inactive_until_activated_then_runs(api: Api, tmp_path: Path) -> None:
    folder = write_app(tmp_path, "rev-dev", REVERSE,
                       schema={"type": "object", "properties": {"n": {"type": "integer"}}},
                       manifest={"description": "reverses text",
                                 "platform_config": {"container": "python:latest",
                                                     "token": "dckr_pat_SECRET"},
                                 "device_requirements": {"min_cpu": 2, "min_memory": 4}})
    archive = tar_folder(folder)
    app = api.ok("POST", f"{D}/apps", json={"data": _b64(archive)})
    assert app["name"] == "rev-dev" and app["version"] == "0.1"
    assert app["status"] == "inactive" and app["owner"] and app["id"]
    assert app["hash"] == hashlib.sha256(archive).hexdigest()
    assert app["entrypoint"] == "main.py" and app["platform"] == "docker"
    assert app["deviceRequirements"] == {"minCpu": 2, "minMemory": 4}
    assert "SECRET" not in json.dumps(app) and app["platformConfig"]["container"]
    assert app["createdAt"] and app["updatedAt"] and app["description"] == "reverses text"

    # the template pushed with the app is usable at once; the inactive app is not
    job = api.create(templateId="rev-dev-template", dataSource={
        "dataSourceDescriptor": "bypass"})
    assert_error(api("POST", f"{C}/jobs/{job['id']}/run"), 400, "inactive", "activate")
    assert api.ok("GET", f"{D}/apps/rev-dev/status")["status"] == "inactive"
    assert api.ok("POST", f"{D}/apps/rev-dev@0/activate")["ok"] is True
    status = api.ok("GET", f"{D}/apps/rev-dev@0.1/status")
    assert status["message"] == status["status"] == "active"
    assert api.ok("GET", f"{D}/apps/rev-dev")["app"]["status"] == "active"
    assert api.ok("GET", f"{D}/apps/{app['id']}")["app"]["name"] == "rev-dev"
    assert "rev-dev" in {a["name"] for a in api.ok("GET", f"{D}/apps")["apps"]}

    # a job created after the push runs the pushed code, schema included
    assert_error(api("POST", f"{C}/jobs", json={
        "templateId": "rev-dev-template", "params": {"app": {"n": "x"}}}), 400, "app.n")
    api.ok("POST", f"{C}/jobs/{job['id']}/run")
    assert api.wait(job["id"])["state"] == "JOB_STATE_COMPLETE"

    api.ok("POST", f"{D}/apps/rev-dev/deactivate")
    again = api.create(templateId="rev-dev-template")
    assert_error(api("POST", f"{C}/jobs/{again['id']}/run"), 400, "inactive")
    assert_error(api("GET", f"{D}/apps/no-such-app"), 404, "no-such-app")


def test_push_engine_gz_and_template_then_run(api: Api, tmp_path: Path) -> None:
    # The manifest keys capitalised, as the Dev CLI writes them.
    part = write_folder(tmp_path, "split-chars", SPLIT, {
        "Name": "split-chars", "Version": "1.0", "Type": "partitioner", "Entrypoint": "main.py"})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(part, arcname="split-chars")  # a top-level folder is accepted too
    engine = api.ok("POST", f"{D}/engines", json={"data": _b64(buffer.getvalue())})
    assert engine["type"] == "partitioner" and engine["status"] == "inactive"
    assert engine["hash"] == hashlib.sha256(buffer.getvalue()).hexdigest()
    assert engine["name"] == "split-chars" and engine["version"] == "1.0"
    message = api.ok("POST", f"{D}/engines/split-chars/activate")
    assert message["engineStatus"] == "active" and message["engineTag"] == "split-chars@1.0"
    assert api.ok("GET", f"{D}/engines/split-chars@1/status")["engineStatus"] == "active"
    assert api.ok("GET", f"{D}/engines/split-chars")["type"] == "partitioner"
    listed = {e["name"]: e for e in api.ok("GET", f"{D}/engines")["engines"]}
    assert listed["split-chars"]["status"] == "active"
    assert listed["passthrough"]["status"] == "active"
    assert_error(api("POST", f"{D}/engines/passthrough/deactivate",
                     params={"type": "assembler"}), 400, "built in")

    app = write_app(tmp_path, "upper-dev", """
        import os, pathlib
        text = pathlib.Path(os.environ["TASK_DIR"], "data.bin").read_text()
        pathlib.Path(os.environ["TASK_RESULTS_DIR"], "out.txt").write_text(text.upper())
    """, template=False)
    api.ok("POST", f"{D}/apps", json={"data": _b64(tar_folder(app))})
    api.ok("POST", f"{D}/apps/upper-dev/activate")
    template = {"id": "upper-split", "description": "per character", "app": "upper-dev@0",
                "partitioner": "split-chars@1", "assembler": "passthrough"}
    pushed = api.ok("POST", f"{D}/templates", json=template)
    assert pushed["ok"] is True and pushed["template"]["id"] == "upper-split"
    got = api.ok("GET", f"{D}/templates/upper-split")
    assert got["app"] == "upper-dev@0" and got["createdAt"] and got["updatedAt"]
    assert "upper-split" in {t["id"] for t in api.ok("GET", f"{D}/templates")["templates"]}
    assert_error(api("GET", f"{D}/templates/nope"), 404, "nope")
    assert_error(api("POST", f"{D}/templates", json={"id": "x"}), 400, "app")

    src = tmp_path / "src"
    src.mkdir()
    (src / "in.txt").write_text("abc")
    with serve_dir(src) as url:
        job = api.create(templateId="upper-split", dataSource={
            "dataSourceDescriptor": "url", "params": {"url": f"{url}/in.txt"}})
        api.ok("POST", f"{C}/jobs/{job['id']}/run")
        done = api.wait(job["id"])
    assert done["state"] == "JOB_STATE_COMPLETE", done["errorMessage"]
    assert done["numChunks"] == "3"
    results = api.ok("GET", f"{C}/jobs/{job['id']}/results")["results"]
    assert sorted(requests.get(r["link"], timeout=30).text for r in results) == ["A", "B", "C"]


def test_push_refuses_bad_archives_and_folders(api: Api, tmp_path: Path,
                                               server: LocalServer) -> None:
    manifest = json.dumps({"name": "evil", "version": "0.1"}).encode()
    main = b"print('hi')\n"
    ok_members = {"manifest.json": manifest, "app/main.py": main}

    def refused(data: object, *words: str, path: str = "apps") -> None:
        assert_error(api("POST", f"{D}/{path}", json={"data": data}), 400, *words)

    refused(_b64(make_tar({**ok_members, "../escaped.txt": b"x"})), "../escaped.txt", "inside")
    refused(_b64(make_tar({**ok_members, "/tmp/abs.txt": b"x"})), "/tmp/abs.txt")
    link = tarfile.TarInfo("app/link.py")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    refused(_b64(make_tar(ok_members, extra=[link])), "app/link.py", "links")
    fifo = tarfile.TarInfo("app/pipe")
    fifo.type = tarfile.FIFOTYPE
    refused(_b64(make_tar(ok_members, extra=[fifo])), "only files")
    refused("not base64!!", "base64")
    refused(_b64(b"definitely not a tar archive" * 40), "tar")
    refused(None, "data")
    refused(_b64(make_tar({"app/main.py": main})), "manifest.json")
    refused(_b64(make_tar({"manifest.json": b"{nope", "app/main.py": main})),
            "manifest.json is not valid JSON")
    refused(_b64(make_tar({"manifest.json": manifest})), "app/main.py not found")
    refused(_b64(make_tar({**ok_members, "schema.json": b'{"type": 5}'})), "schema.json")
    refused(_b64(make_tar({**ok_members, "template.json": b'{"id": "t"}'})), "template.json",
            "app")
    refused(_b64(make_tar(ok_members)), "is an app", "/v1/dev/apps", path="engines")
    engine_manifest = json.dumps({"name": "e", "version": "0.1", "type": "assembler"})
    refused(_b64(make_tar({"manifest.json": engine_manifest.encode(), "app/main.py": main})),
            "is an assembler", "/v1/dev/engines")
    # nothing escaped, nothing half-registered
    assert not (Path(server.data_dir) / "dev" / "escaped.txt").exists()
    assert not list(Path(server.data_dir).rglob("escaped.txt"))
    assert not list(Path(server.data_dir).rglob("abs.txt"))
    assert "evil" not in {a["name"] for a in api.ok("GET", f"{D}/apps")["apps"]}


def test_openapi_marks_the_developer_api(server: LocalServer) -> None:
    doc = requests.get(f"{server.base_url}/openapi.json", timeout=30).json()
    ops = [op for path, item in doc["paths"].items() if path.startswith(D)
           for op in item.values()]
    assert len(ops) >= 15
    assert all(op.get("x-bytenite-api") == "developer" and "developer" in op["tags"]
               for op in ops)


def test_pushed_apps_and_statuses_survive_a_restart(tmp_path: Path) -> None:
    folder = write_app(tmp_path / "src", "kept", REVERSE)
    # Started here: the test stops the server and opens its data dir again.
    data_dir = tmp_path / "data"
    with LocalServer.start(data_dir, api_keys=(TEST_API_KEY,), in_process=True) as first:
        api = Api(first.base_url, TEST_API_KEY)
        pushed = api.ok("POST", f"{D}/apps", json={"data": _b64(tar_folder(folder))})
        api.ok("POST", f"{D}/apps/kept/activate")
        api.ok("POST", f"{D}/apps/hello-world/deactivate")  # a bundled app's status persists
        api.ok("POST", f"{D}/templates", json={"id": "kept-too", "app": "kept"})
    with LocalServer.start(data_dir, api_keys=(TEST_API_KEY,), in_process=True) as second:
        api = Api(second.base_url, TEST_API_KEY)
        app = api.ok("GET", f"{D}/apps/kept")["app"]
        assert app["status"] == "active"
        assert (app["id"], app["hash"], app["createdAt"]) == (
            pushed["id"], pushed["hash"], pushed["createdAt"])
        assert api.ok("GET", f"{D}/apps/hello-world")["app"]["status"] == "inactive"
        assert api.ok("GET", f"{D}/templates/kept-too")["app"] == "kept"
        # a re-push of the same version keeps its status and id
        again = api.ok("POST", f"{D}/apps", json={"data": _b64(tar_folder(folder))})
        assert again["status"] == "active" and again["id"] == pushed["id"]
        job = api.create(templateId="kept-template")
        api.ok("POST", f"{C}/jobs/{job['id']}/run")
        assert api.wait(job["id"])["state"] == "JOB_STATE_COMPLETE"
