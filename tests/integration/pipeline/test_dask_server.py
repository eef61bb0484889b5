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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from bytenite_nb import wire
from bytenite_nb.local import LocalServer
from tests.kit.apps import (
    FANOUT,
    GATED,
    SECRET_ACROSS_THE_CUT,
    SLOW_WITH_CHILD,
    write_app,
    write_engine,
)
from tests.kit.loopback import Api, C, read_events, serve_dir
from tests.kit.processes import marked, unique_marker, until
from tests.kit.servers import TEST_API_KEY, ServerFactory

distributed = pytest.importorskip("distributed")
pytestmark = [pytest.mark.dask, pytest.mark.slow]

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
# Imports a package its requirements.txt lists and no Dask worker has.
NEEDS_ABSENT = "import bytenite_nb_absent_pkg\n"
ABSENT_REQUIREMENT = "bytenite-nb-absent-pkg==1.0"
DASK_KEY = "sk-dask-7Hq2secretVALUE-across-the-cut"
DASK_PEM = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----"
ROWS = [{"id": i, "city": ["Rome", "Oslo", "Lima"][i % 3], "price": i * 1.5, "qty": i % 4}
        for i in range(45)]


def _apps(root: Path) -> Path:
    write_engine(root, "fanout", FANOUT, "partitioner")
    write_app(root, "same", SAME_NAME, template={"partitioner": "fanout@0"})
    write_app(root, "victim", VICTIM)
    write_app(root, "slow", SLOW_WITH_CHILD, template={"partitioner": "fanout@0"})
    write_app(root, "gated", GATED)
    write_app(root, "needs-absent", NEEDS_ABSENT,
              files={"app/requirements.txt": ABSENT_REQUIREMENT + "\n"},
              template={"partitioner": "fanout@0", "params": {"partitioner": {"chunks": 2}}})
    write_app(root, "leaky", SECRET_ACROSS_THE_CUT, manifest={"platform_config": {"secrets": [
        "DASK_KEY", "DASK_PEM"]}}, template={"params": {"app": {"key": "DASK_KEY",
                                                               "lines": "DASK_PEM"}}})
    return root


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
def dask_api(dask_cluster: Any, apps: Path, start_module_server: ServerFactory) -> Api:
    """A ByteNite Local whose app tasks go to the cluster."""
    server = start_module_server(workers=2, apps_dirs=(apps,), executor="dask",
                                 scheduler=dask_cluster.scheduler_address)
    return Api(server.base_url, server.api_key)


@pytest.fixture(scope="module")
def local_api(apps: Path, start_module_server: ServerFactory) -> Api:
    """The same apps on a ByteNite Local with the local executor."""
    server = start_module_server(workers=2, apps_dirs=(apps,))
    return Api(server.base_url, server.api_key)


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
    "fan-out": lambda files: {"templateId": "same-template",
                              "params": {"partitioner": {"chunks": 6}}},
}


@pytest.mark.parametrize("name", list(JOBS))
def test_same_results_as_the_local_executor(name: str, dask_api: Api, local_api: Api,
                                            files: str) -> None:
    on_dask = dask_api.run(**JOBS[name](files))
    on_local = local_api.run(**JOBS[name](files))
    assert on_dask["state"] == "JOB_STATE_COMPLETE", on_dask["errorMessage"]
    assert on_local["state"] == "JOB_STATE_COMPLETE", on_local["errorMessage"]
    assert on_dask["numChunks"] == on_local["numChunks"]
    got = dask_api.results(on_dask["id"])
    assert got == local_api.results(on_local["id"])
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


def test_abort_stops_the_remote_tasks(dask_api: Api) -> None:
    marker = unique_marker("dask-abort")
    job = dask_api.create(templateId="slow-template",
                          params={"partitioner": {"chunks": 2}, "app": {"marker": marker}})
    dask_api.ok("POST", f"{C}/jobs/{job['id']}/run")
    assert until(lambda: len(marked(marker)) == 2), "both tasks should run on the workers"
    assert dask_api.ok("POST", f"{C}/jobs/{job['id']}/abort")["ok"] is True
    ended = dask_api.wait(job["id"])
    assert ended["state"] == "JOB_STATE_FAILED" and "aborted" in ended["errorMessage"].lower()
    assert until(lambda: not marked(marker), 30), "remote task processes outlived the abort"
    tasks = dask_api.ok("GET", f"{C}/jobs/{job['id']}/tasks")["tasks"]
    assert {t["state"] for t in tasks} == {"TASK_STATE_CANCELLED"}


def test_worker_killed_mid_task_is_survived(dask_api: Api, dask_cluster: Any,
                                            tmp_path: Path) -> None:
    flag = tmp_path / "killed-once"
    job = dask_api.create(templateId="victim-template", params={"app": {"flag": str(flag)}})
    dask_api.ok("POST", f"{C}/jobs/{job['id']}/run")
    assert until(flag.exists), "the task should start on a worker"
    worker = int(flag.read_text())
    assert worker in {p.pid for p in psutil.Process().children(recursive=True)}
    os.kill(worker, signal.SIGKILL)  # the Dask worker process running the task
    ended = dask_api.wait(job["id"])
    assert ended["state"] == "JOB_STATE_COMPLETE", ended["errorMessage"]
    assert dask_api.results(job["id"]) == {"ok.txt": b"survived"}
    # the first attempt died with its worker, and the nanny brought the worker back
    victim = int(Path(f"{flag}.pid").read_text())
    assert until(lambda: not psutil.pid_exists(victim)
                  or psutil.Process(victim).status() == psutil.STATUS_ZOMBIE, 30)
    with distributed.Client(dask_cluster, set_as_default=False) as client:
        assert until(lambda: len(client.nthreads()) == 2)


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


def test_secrets_are_masked_on_workers_across_line_cuts_and_lines(dask_api: Api) -> None:
    for secret_id, value in (("DASK_KEY", DASK_KEY), ("DASK_PEM", DASK_PEM)):
        dask_api.ok("POST", "/v1/auth/secrets", json={
            "secret": {"id": secret_id, "secretType": "other"}, "secretKey": value})
    job = dask_api.run(templateId="leaky-template")
    assert job["state"] == "JOB_STATE_COMPLETE"
    logs = dask_api.ok("POST", f"{C}/logs", json={"jobId": job["id"]})["taskrunner"]["task-0"]
    joined = "".join(entry["log"] for entry in logs["logs"])
    assert DASK_KEY not in joined and "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in joined
    assert joined.replace("***", "") == "x" * 65530 + " and more"


def test_child_process_server_on_dask(dask_cluster: Any, apps: Path, tmp_path: Path) -> None:
    # Started here: the test checks what the stopped server left in its data dir.
    with LocalServer.start(tmp_path / "data", api_keys=(TEST_API_KEY,), workers=1,
                           apps_dirs=(apps,), executor="dask",
                           scheduler=dask_cluster.scheduler_address) as srv:
        api = Api(srv.base_url, TEST_API_KEY)
        job = api.run(templateId="same-template", params={"partitioner": {"chunks": 3}})
        assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
        assert len(api.results(job["id"])) == 6
    banner = (tmp_path / "data" / "server.log").read_text()
    assert f"executor: dask at {dask_cluster.scheduler_address}" in banner
    assert not (tmp_path / "data" / "server.json").exists()  # stopped cleanly


def test_an_app_with_requirements_on_dask_says_they_must_be_on_the_workers(
        dask_api: Api) -> None:
    # App environments are built for processes on this machine only: on Dask the tasks run in
    # the workers' own Python. The job's log says so (WARN, once for the job's two tasks),
    # naming the requirements and the pip line, and a task missing one fails saying which
    # module is missing, where it ran and what to install there.
    job = dask_api.run(templateId="needs-absent-template")
    assert job["state"] == "JOB_STATE_FAILED"
    message = job["errorMessage"]
    assert "'bytenite_nb_absent_pkg' is not installed" in message, message
    assert "Dask worker" in message and "not built on Dask workers" in message, message
    assert f"pip install {ABSENT_REQUIREMENT}" in message, message
    events = read_events(dask_api, 0, lambda results: any(
        e["event"] == "job.state" and e["data"]["state"] == "JOB_STATE_FAILED"
        for e in results), jobId=job["id"])
    warned = [e["data"] for e in events if e["event"] == "job.log"
              and "app environments are not built there" in e["data"]["log"]]
    assert len(warned) == 1, warned
    [line] = warned
    assert line["level"] == "WARN" and line["service"] == "TASKRUNNER"
    assert "app/requirements.txt" in line["log"] and ABSENT_REQUIREMENT in line["log"]
    assert f"pip install {ABSENT_REQUIREMENT}" in line["log"]
    logs = dask_api.ok("POST", f"{C}/logs", json={"jobId": job["id"]})
    kept = [entry["log"] for task in logs["taskrunner"].values() for entry in task["logs"]]
    kept += [entry["log"] for entry in logs["partitioner"] + logs["assembler"]]
    assert sum("app environments are not built there" in text for text in kept) == 1
