"""ByteNite Local on a Dask cluster started the way users start one: ``dask scheduler`` and
``dask worker`` as separate processes from an environment with only ``distributed`` (see
``tests.kit.dask_processes``), so nothing of bytenite-nb is importable where the tasks run.

Jobs run there and give their results; and every way the cluster can fail a job (workers
killed mid-job, no workers at all, the scheduler gone) ends it ``JOB_STATE_FAILED`` within the
configured timeouts, with the reason in its error message, its logs and its events.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bytenite_nb.local import LocalServer
from tests.kit.apps import FANOUT, write_app, write_engine
from tests.kit.dask_processes import ProcessCluster, imports_bytenite_nb
from tests.kit.loopback import Api, C, read_events
from tests.kit.processes import until

pytest.importorskip("distributed")
pytestmark = [pytest.mark.dask, pytest.mark.slow]

KEY = "dask-process-cluster-key"
TIMEOUT = 3.0  # the server's worker_timeout and scheduler_timeout in these tests

# Says which interpreter ran it: the workers' own, which has no bytenite-nb.
WHERE = """
import os, sys
data = open(os.path.join(os.environ["TASK_DIR"], "data.bin")).read()
with open(os.path.join(os.environ["TASK_RESULTS_DIR"], "out.txt"), "w") as f:
    f.write(f"{data.upper()} by {sys.executable}")
print("did", os.environ["CHUNK_NUMBER"], flush=True)
"""
# Marks that it started, then waits far longer than any test.
STUCK = """
import json, os, time
flag = json.loads(os.environ["APP_PARAMS"])["flag"]
open(flag + ".tmp", "w").write(str(os.getpid()))
os.replace(flag + ".tmp", flag)
print("started", flush=True)
time.sleep(600)
"""


# Says where it ran: its TASK_DIR is under its worker's --local-directory.
PLACE = """
import os
with open(os.path.join(os.environ["TASK_RESULTS_DIR"], "where.txt"), "w") as f:
    f.write(os.environ["TASK_DIR"])
"""


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("process-cluster-apps")
    write_engine(root, "fan", FANOUT, "partitioner")
    write_app(root, "where", WHERE, template={"partitioner": "fan@0.1"})
    write_app(root, "stuck", STUCK)
    write_app(root, "gpu", PLACE,
              manifest={"device_requirements": {"gpu": ["NVIDIA A100-SXM4-40GB"]}})
    write_app(root, "big", PLACE,
              manifest={"device_requirements": {"min_cpu": 64, "min_memory": 512}})
    return root


def _server(folder: Path, apps: Path, scheduler: str) -> LocalServer:
    return LocalServer.start(folder, api_keys=(KEY,), in_process=True, workers=2,
                             apps_dirs=(apps,), executor="dask", scheduler=scheduler,
                             config_overrides={"worker_timeout": TIMEOUT,
                                               "scheduler_timeout": TIMEOUT})


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ProcessCluster]:
    with ProcessCluster(tmp_path / "cluster", workers=2) as c:
        yield c


@pytest.fixture
def api(cluster: ProcessCluster, apps: Path, tmp_path: Path) -> Iterator[Api]:
    with _server(tmp_path / "server", apps, cluster.address) as srv:
        yield Api(srv.base_url, KEY)


def _start(api: Api, **body: Any) -> str:
    job = api.create(**body)
    api.ok("POST", f"{C}/jobs/{job['id']}/run")
    return str(job["id"])


def _failure_everywhere(api: Api, job_id: str, *words: str) -> dict[str, Any]:
    """The failed job; its errorMessage, its task's error log line, its task.state FAILED
    event and its job.state FAILED event all say ``words``."""
    job = api.wait(job_id)
    assert job["state"] == "JOB_STATE_FAILED", job
    message = job["errorMessage"]
    for word in words:
        assert word in message, message
    logs = api.ok("POST", f"{C}/logs", json={"jobId": job_id})["taskrunner"]
    errors = [e["log"] for task in logs.values() for e in task["logs"] if e["level"] == "ERROR"]
    assert any(all(word in line for word in words) for line in errors), errors
    events = read_events(api, 0, lambda got: any(
        e["event"] == "job.state" and e["data"]["state"] == "JOB_STATE_FAILED" for e in got),
        jobId=job_id)
    failed_tasks = [e["data"] for e in events
                    if e["event"] == "task.state" and e["data"]["state"] == "TASK_STATE_FAILED"]
    assert failed_tasks and all(word in failed_tasks[0]["errorMessage"] for word in words), events
    ended = [e["data"] for e in events if e["event"] == "job.state"][-1]
    assert ended["state"] == "JOB_STATE_FAILED" and ended["errorMessage"] == message
    return job


def test_jobs_run_on_workers_that_have_only_distributed(cluster: ProcessCluster,
                                                         api: Api) -> None:
    assert not imports_bytenite_nb(cluster.python, cluster.cwd)
    job_id = _start(api, templateId="where-template", params={"partitioner": {"chunks": 5}})
    job = api.wait(job_id)
    assert job["state"] == "JOB_STATE_COMPLETE", (job["errorMessage"], cluster.logs())
    listed = api.ok("GET", f"{C}/jobs/{job_id}/results")["results"]
    got = sorted(requests.get(r["link"], timeout=30).text for r in listed)
    assert got == [f"CHUNK {i} by {cluster.python}" for i in range(5)]
    logs = api.ok("POST", f"{C}/logs", json={"jobId": job_id})["taskrunner"]
    assert {f"did {i}" for i in range(5)} <= {e["log"] for t in logs.values() for e in t["logs"]}
    # every worker is still there: none died unpickling what the server sent
    assert all(w.poll() is None for w in cluster.workers), cluster.logs()


def test_workers_killed_mid_job_fail_the_job(cluster: ProcessCluster, api: Api,
                                             tmp_path: Path) -> None:
    flag = tmp_path / "started"
    job_id = _start(api, templateId="stuck-template", params={"app": {"flag": str(flag)}})
    assert until(flag.exists, 120), cluster.logs()
    cluster.kill_workers()
    _failure_everywhere(api, job_id, "no Dask worker", cluster.address)
    # the task's own output made it to the logs before its worker went
    logs = api.ok("POST", f"{C}/logs", json={"jobId": job_id})["taskrunner"]
    assert "started" in [e["log"] for e in logs["task-0"]["logs"]]


def test_a_cluster_without_workers_fails_the_job(apps: Path, tmp_path: Path) -> None:
    with ProcessCluster(tmp_path / "cluster", workers=0) as cluster, \
            _server(tmp_path / "server", apps, cluster.address) as srv:
        api = Api(srv.base_url, KEY)
        job_id = _start(api, templateId="where-template", params={"partitioner": {"chunks": 2}})
        _failure_everywhere(api, job_id, "no Dask worker", f"dask worker {cluster.address}")


def test_a_lost_scheduler_fails_the_job_and_a_restarted_one_is_used(
        cluster: ProcessCluster, api: Api, tmp_path: Path) -> None:
    flag = tmp_path / "started"
    job_id = _start(api, templateId="stuck-template", params={"app": {"flag": str(flag)}})
    assert until(flag.exists, 120), cluster.logs()
    cluster.kill_scheduler()
    _failure_everywhere(api, job_id, "Dask scheduler", cluster.address)
    # a job while it is away fails too, saying so
    _failure_everywhere(api, _start(api, templateId="where-template"), "Dask scheduler",
                        cluster.address)
    # Dask workers stop when their scheduler goes; a scheduler and workers started again
    # at the same address (as a supervisor would) take the next job
    cluster.kill_workers()
    cluster.start_scheduler()
    cluster.add_worker()
    cluster.wait_for_workers(1)
    job = api.wait(_start(api, templateId="where-template", params={"partitioner": {"chunks": 2}}))
    assert job["state"] == "JOB_STATE_COMPLETE", (job["errorMessage"], cluster.logs())


def test_device_requirements_pick_workers_by_their_resources(apps: Path,
                                                             tmp_path: Path) -> None:
    with ProcessCluster(tmp_path / "cluster", workers=1) as cluster, \
            _server(tmp_path / "server", apps, cluster.address) as srv:
        api = Api(srv.base_url, KEY)
        # a GPU app never runs on a worker that declares no GPU: it fails, saying what to do
        _failure_everywhere(api, _start(api, templateId="gpu-template"), "GPU=1",
                            f"dask worker {cluster.address} --resources")
        # CPU and memory that no worker declares are not enforced, and the logs say so
        job = api.wait(_start(api, templateId="big-template"))
        assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
        logs = api.ok("POST", f"{C}/logs", json={"jobId": job["id"]})["taskrunner"]["task-0"]
        notes = [e["log"] for e in logs["logs"] if e["level"] == "WARN"]
        assert any("CPU=64" in n and "not enforced" in n for n in notes), notes
        # a worker that declares a GPU takes the GPU app's tasks
        cluster.add_worker(resources="GPU=1")
        cluster.wait_for_workers(2)
        job = api.wait(_start(api, templateId="gpu-template"))
        assert job["state"] == "JOB_STATE_COMPLETE", (job["errorMessage"], cluster.logs())
        listed = api.ok("GET", f"{C}/jobs/{job['id']}/results")["results"]
        where = requests.get(listed[0]["link"], timeout=30).text
        assert str(cluster.folder / "space-2") in where, where
