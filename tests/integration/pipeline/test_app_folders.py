"""Apps from folders over loopback: `serve --apps`, official ByteNite app folders unchanged,
params checked against schema.json, and the bundled csv-rows-template."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests

from bytenite_nb import wire
from bytenite_nb.local import LocalServer
from tests.kit.apps import REPLICAS, ZIPPER, write_app, write_folder
from tests.kit.loopback import Api, C, assert_error
from tests.kit.servers import ServerFactory

# The app follows the skeleton `bytenite app new` generates, with the per-task logic ByteNite's
# samples use; the partitioner and the assembler are the kit's skeleton-shaped REPLICAS and ZIPPER.
APP = '''
# === BYTENITE APP - MAIN SCRIPT ===
import json
import os

task_dir = os.getenv("TASK_DIR")
task_results_dir = os.getenv("TASK_RESULTS_DIR")
app_params = json.loads(os.getenv("APP_PARAMS"))

if __name__ == "__main__":
    # 1. Reading Inputs
    with open(os.path.join(task_dir, "data.bin"), "r") as f:
        data = f.read()
    # 4. Saving Outputs: every task writes a file of the same name
    with open(os.path.join(task_results_dir, "output_image.txt"), "w") as f:
        f.write(app_params["prefix"] + data)
'''


def official_folder(root: Path, name: str, kind: str, code: str, **kw: Any) -> Path:
    """A folder as the Dev CLI generated it (capitalised manifest keys, docker platform)."""
    manifest = {"Name": name, "Version": "1.0", "Platform": "docker", "Entrypoint": "main.py",
                "Description": f"{kind} {name}",
                "platform_config": {"container": "python:latest"},
                "device_requirements": {"min_cpu": 2, "min_memory": 2}}
    if kind != "app":
        manifest["type"] = kind
    return write_folder(root, name, code, manifest, **kw)


@pytest.fixture(scope="module")
def apps_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    first = tmp_path_factory.mktemp("apps-a")
    official_folder(first, "fanout-replica", "partitioner", REPLICAS)
    official_folder(first, "zipper", "assembler", ZIPPER)
    official_folder(first, "img-gen", "app", APP, template={
        "id": "img-gen-template", "description": "replicas, zipped", "app": "img-gen@1",
        "partitioner": "fanout-replica", "assembler": "zipper",
        "dataSource": {"dataSourceDescriptor": "bypass"},
        "dataDestination": {"dataSourceDescriptor": "bucket"},
        "params": {"partitioner": {"num_replicas": 5}, "app": {"prefix": "> "}},
        "config": {"jobTimeout": 600, "taskTimeout": 300, "maxTaskRetries": 1}}, schema={
        "type": "object", "required": ["prefix"],
        "properties": {"prefix": {"type": "string", "maxLength": 5}}})
    second = tmp_path_factory.mktemp("apps-b")
    write_app(second, "needs-case", "print('hi')\n", schema={
        "type": "object", "required": ["case"], "additionalProperties": False,
        "properties": {"case": {"enum": ["upper", "lower"]},
                       "times": {"type": "integer", "minimum": 1}}})
    # bad folders: each must be reported with its path and reason, and skipped
    (second / "no-manifest" / "app").mkdir(parents=True)
    (second / "no-manifest" / "app" / "main.py").write_text("")
    broken = second / "broken-json"
    (broken / "app").mkdir(parents=True)
    (broken / "manifest.json").write_text("{not json")
    missing = second / "missing-entry"
    missing.mkdir()
    (missing / "manifest.json").write_text('{"name": "missing-entry", "version": "0.1"}')
    return first, second


@pytest.fixture(scope="module")
def server(apps_dirs: tuple[Path, Path], start_module_server: ServerFactory) -> LocalServer:
    return start_module_server(workers=2, apps_dirs=apps_dirs)


def test_serve_apps_repeatable_reports_bad_folders_and_keeps_serving(
        apps_dirs: tuple[Path, Path], start_server: ServerFactory) -> None:
    first, second = apps_dirs
    # the real CLI in a child process: bytenite-nb serve --apps A --apps B
    srv = start_server(in_process=False, apps_dirs=(first, second))
    api = Api(srv.base_url, srv.api_key)
    ids = {t["id"] for t in api.ok("GET", f"{C}/jobs/templates",
                                   params={"pagination.limit": 1000})["data"]}
    assert {"img-gen-template", "needs-case-template", "hello-world-template"} <= ids
    log = (srv.data_dir / "server.log").read_text()
    skipped = [line for line in log.splitlines() if "app folder skipped" in line]
    reasons = {
        second / "no-manifest": "no manifest.json",
        second / "broken-json": "not valid JSON",
        second / "missing-entry": "entrypoint app/main.py not found",
    }
    for path, reason in reasons.items():
        assert any(str(path) in line and reason in line for line in skipped), (path, log)


def test_official_folders_run_unchanged_all_results_reach_the_assembler(api: Api) -> None:
    job = api.create(templateId="img-gen-template")
    assert job["params"]["partitioner"] == {"num_replicas": 5}
    api.ok("POST", f"{C}/jobs/{job['id']}/run")
    job = api.wait(job["id"])
    assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
    assert job["numChunks"] == "5"
    [result] = api.ok("GET", f"{C}/jobs/{job['id']}/results")["results"]
    assert result["name"] == "results_archive.zip"
    archive = zipfile.ZipFile(io.BytesIO(requests.get(result["link"], timeout=30).content))
    contents = sorted(archive.read(name).decode() for name in archive.namelist())
    # five tasks each wrote output_image.txt: five distinct files reached the assembler
    assert contents == [f"> replica {i}" for i in range(5)]
    assert len(set(archive.namelist())) == 5
    logs = api.ok("POST", f"{C}/logs", json={"jobId": job["id"]})
    assert any(e["log"] == "zipped 5 files" for e in logs["assembler"])


def test_params_checked_at_create_patch_and_run_each_field_named(api: Api) -> None:
    body = assert_error(api("POST", f"{C}/jobs", json={
        "templateId": "needs-case-template",
        "params": {"app": {"case": "shout", "times": 0, "colour": "red"}}}), 400,
        "app.case", "app.times", "app.colour")
    assert "'shout' is not one of" in body["message"]
    assert "less than the minimum of 1" in body["message"]
    # created without params (set later, as ByteNite's recipe does): fine until run
    job = api.create(templateId="needs-case-template")
    assert_error(api("POST", f"{C}/jobs/{job['id']}/run"), 400, "app.case: is required")
    assert_error(api("PATCH", f"{C}/jobs/{job['id']}/params",
                     json={"app": {"times": "2"}}), 400, "app.case", "app.times")
    assert api.job(job["id"])["state"] == "JOB_STATE_NEW"  # a refused change changes nothing
    api.ok("PATCH", f"{C}/jobs/{job['id']}/params", json={"app": {"case": "upper"}})
    # engines' schemas count too (the template's engines are resolved)
    img = api.create(templateId="img-gen-template")
    assert_error(api("PATCH", f"{C}/jobs/{img['id']}/params",
                     json={"app": {"prefix": "far too long"}}), 400,
                 "app.prefix", "is too long")


def _csv_bytes(rows: list[dict[str, object]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def test_bundled_csv_rows_template_through_the_api(api: Api) -> None:
    rows = [{"id": i, "city": ["Rome", "Oslo"][i % 2], "price": i * 2} for i in range(23)]
    job = api.create(templateId="csv-rows-template", dataSource=wire.file_source(), params={
        "partitioner": {"rows_per_chunk": 5},
        "app": {"steps": [{"op": "filter", "where": "price >= 10"},
                          {"op": "eval", "columns": {"double": "price * 2"}}]},
        "assembler": {"output": "big.csv"}})
    put = requests.put(job["dataSource"]["params"]["tempUrl"], data=_csv_bytes(rows),
                       headers={"Content-Disposition": 'attachment; filename="sales.csv"'},
                       timeout=30)
    assert put.status_code == 200, put.text
    api.ok("PATCH", f"{C}/jobs/{job['id']}/uploadcompleted")
    api.ok("POST", f"{C}/jobs/{job['id']}/run")
    job = api.wait(job["id"])
    assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
    assert job["numChunks"] == "5"  # 23 rows, 5 per chunk
    [result] = api.ok("GET", f"{C}/jobs/{job['id']}/results")["results"]
    assert result["name"] == "big.csv"
    table = list(csv.DictReader(io.StringIO(requests.get(result["link"], timeout=30).text)))
    assert [int(r["id"]) for r in table] == list(range(5, 23))  # chunk order kept
    assert all(float(r["double"]) == 2 * float(r["price"]) for r in table)


def test_csv_rows_template_schema_errors_name_every_field(api: Api) -> None:
    body = assert_error(api("POST", f"{C}/jobs", json={
        "templateId": "csv-rows-template",
        "params": {"partitioner": {"rows_per_chunk": 0, "colour": 1},
                   "app": {"op": "explode"},
                   "assembler": {"output": "../x.csv"}}}), 400,
        "partitioner.rows_per_chunk", "partitioner.colour", "app.op", "assembler.output")
    assert "minimum of 1" in body["message"]
    job = api.create(templateId="csv-rows-template")
    assert_error(api("PATCH", f"{C}/jobs/{job['id']}/params",
                     json={"app": {"op": "filter"}}), 400, "app.where: is required")
