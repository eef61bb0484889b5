"""ByteNite Local with ``--executor dask`` through its HTTP API, on a real LocalCluster.

One 2-worker ``distributed.LocalCluster`` (worker processes) serves the whole module. The same
jobs run on a ByteNite Local with the local executor and on one whose app tasks go to the
cluster, and must give the same result files; a worker killed mid-task is survived; an abort
stops the remote tasks.
"""

from __future__ import annotations

import csv
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from bytenite_nb import wire
from bytenite_nb.local import LocalServer
from tests.integration.server_kit import Api, C, read_events, serve_dir, write_app

distributed = pytest.importorskip("distributed")
pytestmark = [pytest.mark.dask, pytest.mark.slow]

KEY = "dask-http-key"

FAN = """
import json, os
for i in range(json.loads(os.environ["PARTITIONER_PARAMS"]).get("n", 1)):
    open(os.path.join(os.environ["CHUNKS_DIR"], f"data_{i}.bin"), "w").write(f"chunk {i}")
"""
# Every task writes files of the same names: the passthrough assembler must keep them all.
SAME_NAME = """
import os
data = open(os.path.join(os.environ["TASK_DIR"], "data.bin")).read()
results = os.environ["TASK_RESULTS_DIR"]
os.makedirs(os.path.join(results, "sub"))
open(os.path.join(results, "out.txt"), "w").write(data.upper())
open(os.path.join(results, "sub", "n.txt"), "w").write(os.environ["CHUNK_NUMBER"])
print("did", os.environ["CHUNK_NUMBER"], flush=True)
"""
# The first attempt records the Dask worker running it and hangs, to be killed.
VICTIM = """
import json, os, time
flag = json.loads(os.environ["APP_PARAMS"])["flag"]
if not os.path.exists(flag):
    open(flag + ".pid", "w").write(str(os.getpid()))
    # the Dask worker: the parent of the fork server that started this task
    stat = open("/proc/%d/stat" % os.getppid()).read()
    open(flag + ".tmp", "w").write(stat.rsplit(")", 1)[1].split()[1])
    os.replace(flag + ".tmp", flag)
    time.sleep(120)
open(os.path.join(os.environ["TASK_RESULTS_DIR"], "ok.txt"), "w").write("survived")
"""
# Starts a grandchild carrying a marker in its command line, then works "forever".
SLOW = """
import json, subprocess, sys, time
marker = json.loads(__import__("os").environ["APP_PARAMS"])["marker"]
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker])
print("working", flush=True)
time.sleep(120)
"""
# Writes a line to each stream, then waits for the test to create the gate file.
GATED = """
import json, os, sys, time
gate = json.loads(os.environ["APP_PARAMS"])["gate"]
print("waiting for the gate", flush=True)
print("stderr while waiting", file=sys.stderr, flush=True)
for _ in range(1200):
    if os.path.exists(gate):
        break
    time.sleep(0.1)
else:
    sys.exit(3)
print("through the gate", flush=True)
"""

ROWS = [{"id": i, "city": ["Rome", "Oslo", "Lima"][i % 3], "price": i * 1.5, "qty": i % 4}
        for i in range(45)]


def _apps(root: Path) -> Path:
    write_app(root, "same", SAME_NAME, template={"partitioner": "fan@0"})
    write_app(root, "victim", VICTIM)
    write_app(root, "slow", SLOW, template={"partitioner": "fan@0"})
    write_app(root, "gated", GATED)
    fan = root / "fan"
    (fan / "app").mkdir(parents=True)
    (fan / "manifest.json").write_text('{"name": "fan", "version": "0.1", "type": "partitioner"}')
    (fan / "app" / "main.py").write_text(FAN)
    return root


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as c:
        yield c


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _apps(tmp_path_factory.mktemp("dask-apps"))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTP server for url data sources: hello.txt and rows.csv."""
    folder = tmp_path_factory.mktemp("dask-files")
    (folder / "hello.txt").write_text("Hello, Dask!\nSecond line.\n", encoding="utf-8")
    with open(folder / "rows.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(ROWS[0]))
        writer.writeheader()
        writer.writerows(ROWS)
    with serve_dir(folder) as url:
        yield url


@pytest.fixture(scope="module")
def dask_server(cluster: Any, apps: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer.start(tmp_path_factory.mktemp("dask-server"), api_keys=(KEY,),
                           in_process=True, workers=2, apps_dirs=(apps,), executor="dask",
                           scheduler=cluster.scheduler_address) as srv:
        yield srv


@pytest.fixture(scope="module")
def local_server(apps: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer.start(tmp_path_factory.mktemp("local-server"), api_keys=(KEY,),
                           in_process=True, workers=2, apps_dirs=(apps,)) as srv:
        yield srv


@pytest.fixture(scope="module")
def dask_api(dask_server: LocalServer) -> Api:
    return Api(dask_server.base_url, KEY)


def _until(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _run(api: Api, **body: Any) -> dict[str, Any]:
    job = api.create(**body)
    api.ok("POST", f"{C}/jobs/{job['id']}/run")
    return api.wait(job["id"])


def _results(api: Api, job_id: str) -> dict[str, bytes]:
    listed = api.ok("GET", f"{C}/jobs/{job_id}/results")["results"]
    return {r["name"]: requests.get(r["link"], timeout=30).content for r in listed}


JOBS: dict[str, Callable[[str], dict[str, Any]]] = {
    "hello-world": lambda files: {
        "templateId": "hello-world-template",
        "dataSource": wire.url_source(f"{files}/hello.txt"),
        "params": {"app": {"case": "upper"}},
    },
    "csv-rows": lambda files: {
        "templateId": "csv-rows-template",
        "dataSource": wire.url_source(f"{files}/rows.csv"),
        "params": {"partitioner": {"rows_per_chunk": 10},
                   "app": {"steps": [{"op": "filter", "where": "qty > 0"},
                                     {"op": "eval", "columns": {"total": "price * qty"}}]},
                   "assembler": {"output": "result.csv"}},
    },
    "fan-out": lambda files: {"templateId": "same-template", "params": {"partitioner": {"n": 6}}},
}


@pytest.mark.parametrize("name", list(JOBS))
def test_same_results_as_the_local_executor(name: str, dask_api: Api,
                                            local_server: LocalServer, files: str) -> None:
    local_api = Api(local_server.base_url, KEY)
    on_dask = _run(dask_api, **JOBS[name](files))
    on_local = _run(local_api, **JOBS[name](files))
    assert on_dask["state"] == "JOB_STATE_COMPLETE", on_dask["errorMessage"]
    assert on_local["state"] == "JOB_STATE_COMPLETE", on_local["errorMessage"]
    assert on_dask["numChunks"] == on_local["numChunks"]
    got = _results(dask_api, on_dask["id"])
    assert got == _results(local_api, on_local["id"])
    tasks = dask_api.ok("GET", f"{C}/jobs/{on_dask['id']}/tasks")["tasks"]
    assert len(tasks) == int(on_dask["numChunks"])
    assert all(t["state"] == "TASK_STATE_COMPLETE" and t["exitCode"] == 0 for t in tasks)
    if name == "csv-rows":
        assert on_dask["numChunks"] == "5"
        header, *rows = got["result.csv"].decode().splitlines()
        assert header == "id,city,price,qty,total" and len(rows) == 33
    if name == "fan-out":
        assert len(got) == 12  # 6 tasks x 2 files of the same names, none overwritten
        logs = dask_api.ok("POST", f"{C}/logs", json={"jobId": on_dask["id"]})["taskrunner"]
        lines = {entry["log"] for task in logs.values() for entry in task["logs"]}
        assert {f"did {i}" for i in range(6)} <= lines  # the tasks' output came back


def _marked(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if marker in (proc.info["cmdline"] or []) and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def test_abort_stops_the_remote_tasks(dask_api: Api) -> None:
    marker = f"bnl-dask-abort-{uuid.uuid4().hex}"
    job = dask_api.create(templateId="slow-template",
                          params={"partitioner": {"n": 2}, "app": {"marker": marker}})
    dask_api.ok("POST", f"{C}/jobs/{job['id']}/run")
    assert _until(lambda: len(_marked(marker)) == 2), "both tasks should run on the workers"
    assert dask_api.ok("POST", f"{C}/jobs/{job['id']}/abort")["ok"] is True
    ended = dask_api.wait(job["id"])
    assert ended["state"] == "JOB_STATE_FAILED" and "aborted" in ended["errorMessage"].lower()
    assert _until(lambda: not _marked(marker), 30), "remote task processes outlived the abort"
    tasks = dask_api.ok("GET", f"{C}/jobs/{job['id']}/tasks")["tasks"]
    assert {t["state"] for t in tasks} == {"TASK_STATE_CANCELLED"}


def test_worker_killed_mid_task_is_survived(dask_api: Api, cluster: Any,
                                            tmp_path: Path) -> None:
    flag = tmp_path / "killed-once"
    job = dask_api.create(templateId="victim-template", params={"app": {"flag": str(flag)}})
    dask_api.ok("POST", f"{C}/jobs/{job['id']}/run")
    assert _until(flag.exists), "the task should start on a worker"
    worker = int(flag.read_text())
    assert worker in {p.pid for p in psutil.Process().children(recursive=True)}
    os.kill(worker, signal.SIGKILL)  # the Dask worker process running the task
    ended = dask_api.wait(job["id"])
    assert ended["state"] == "JOB_STATE_COMPLETE", ended["errorMessage"]
    assert _results(dask_api, job["id"]) == {"ok.txt": b"survived"}
    # the first attempt died with its worker, and the nanny brought the worker back
    victim = int(Path(f"{flag}.pid").read_text())
    assert _until(lambda: not psutil.pid_exists(victim)
                  or psutil.Process(victim).status() == psutil.STATUS_ZOMBIE, 30)
    with distributed.Client(cluster, set_as_default=False) as client:
        assert _until(lambda: len(client.nthreads()) == 2)


def test_task_output_reaches_logs_and_events_while_it_runs(dask_api: Api,
                                                           tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    job = dask_api.create(templateId="gated-template", params={"app": {"gate": str(gate)}})
    dask_api.ok("POST", f"{C}/jobs/{job['id']}/run")
    try:
        def seen_line(results: list[dict[str, Any]]) -> bool:
            return any(e["event"] == "job.log" and e["data"]["log"] == "waiting for the gate"
                       for e in results)

        events = read_events(dask_api, 0, seen_line, jobId=job["id"])
        # the line came while the task ran (it cannot end before the gate exists)
        assert not gate.exists()
        assert [e["data"]["state"] for e in events if e["event"] == "task.state"][-1] == (
            "TASK_STATE_RUNNING")
        assert not any(e["event"] == "job.state" and e["data"]["state"] in
                       ("JOB_STATE_COMPLETE", "JOB_STATE_FAILED") for e in events)
        tasks = dask_api.ok("GET", f"{C}/jobs/{job['id']}/tasks")["tasks"]
        assert [t["state"] for t in tasks] == ["TASK_STATE_RUNNING"]
        logs = dask_api.ok("POST", f"{C}/logs", json={"jobId": job["id"]})["taskrunner"]
        assert "waiting for the gate" in [entry["log"] for entry in logs["task-0"]["logs"]]
    finally:
        gate.touch()
    ended = dask_api.wait(job["id"])
    assert ended["state"] == "JOB_STATE_COMPLETE", ended["errorMessage"]
    logs = dask_api.ok("POST", f"{C}/logs", json={"jobId": job["id"]})["taskrunner"]
    entries = [(e["level"], e["log"]) for e in logs["task-0"]["logs"]
               if e["container"] == wire.APP_LOG_CONTAINER]
    assert [m for lv, m in entries if lv == "INFO"] == ["waiting for the gate",
                                                         "through the gate"]
    assert [m for lv, m in entries if lv == "ERROR"] == ["stderr while waiting"]


def test_child_process_server_on_dask(cluster: Any, apps: Path, tmp_path: Path) -> None:
    with LocalServer.start(tmp_path / "data", api_keys=(KEY,), workers=1, apps_dirs=(apps,),
                           executor="dask", scheduler=cluster.scheduler_address) as srv:
        api = Api(srv.base_url, KEY)
        job = _run(api, templateId="same-template", params={"partitioner": {"n": 3}})
        assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
        assert len(_results(api, job["id"])) == 6
    banner = (tmp_path / "data" / "server.log").read_text()
    assert f"executor: dask at {cluster.scheduler_address}" in banner
    assert not (tmp_path / "data" / "server.json").exists()  # stopped cleanly
