"""What an engine needs from the machine, against a real ByteNite Local: entrypoints that are
not Python (``main.js`` through node, ``.sh`` through bash), ``device_requirements``
(``min_cpu`` as worker slots, checks of CPUs, memory and GPUs, GPUs as slots of their own),
``--task-memory-limit`` and ``--pass-env``.

Concurrency is read from what the tasks themselves record (the start and end of their work),
never from timings asserted by the test.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from bytenite_nb.local import LocalServer
from tests.kit.apps import ECHO, FANOUT, write_app, write_engine
from tests.kit.loopback import Api, C
from tests.kit.servers import TEST_API_KEY, ServerFactory

#: App: records when its work started and ended (``span_<chunk>.json``: start, end, and
#: ``CUDA_VISIBLE_DEVICES``), working ``params.seconds`` (default 1) in between.
SPAN = '''\
import json, os, time
params = json.loads(os.environ.get("APP_PARAMS") or "{}")
start = time.time()
time.sleep(float(params.get("seconds", 1)))
chunk = os.environ["CHUNK_NUMBER"]
with open(os.path.join(os.environ["TASK_RESULTS_DIR"], f"span_{chunk}.json"), "w") as f:
    json.dump({"start": start, "end": time.time(),
               "gpus": os.environ.get("CUDA_VISIBLE_DEVICES")}, f)
'''

NODE_APP = '''\
const fs = require("fs");
const path = require("path");
const params = JSON.parse(process.env.APP_PARAMS || "{}");
const text = fs.readFileSync(path.join(process.env.TASK_DIR, "data.bin"), "utf8");
fs.writeFileSync(path.join(process.env.TASK_RESULTS_DIR, `upper_${process.env.CHUNK_NUMBER}.txt`),
                 (params.prefix || "") + text.toUpperCase());
console.log(`node ${process.version} did chunk ${process.env.CHUNK_NUMBER}`);
'''

SHELL_APP = '''\
set -eu
tr 'a-z' 'A-Z' < "$TASK_DIR/data.bin" > "$TASK_RESULTS_DIR/shout_$CHUNK_NUMBER.txt"
echo "bash did chunk $CHUNK_NUMBER"
'''

#: App: allocates ``params.mb`` megabytes, then says so.
HUNGRY = '''\
import json, os
params = json.loads(os.environ.get("APP_PARAMS") or "{}")
block = bytearray(int(params.get("mb", 1)) * 1024 * 1024)
print("allocated", len(block))
'''

#: App: writes the variables named in ``params.names`` (those it has) to ``env.json``.
ENV_REPORT = '''\
import json, os
params = json.loads(os.environ.get("APP_PARAMS") or "{}")
with open(os.path.join(os.environ["TASK_RESULTS_DIR"], "env.json"), "w") as f:
    json.dump({k: os.environ[k] for k in params["names"] if k in os.environ}, f)
'''


def _fanout(chunks: int) -> dict[str, Any]:
    return {"partitioner": "fanout", "params": {"partitioner": {"chunks": chunks}}}


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("needs-apps")
    write_engine(root, "fanout", FANOUT, "partitioner")
    write_app(root, "two-cpus", SPAN, template=_fanout(4),
              manifest={"device_requirements": {"min_cpu": 2, "min_memory": 1}})
    write_app(root, "huge", ECHO,
              manifest={"device_requirements": {"min_cpu": 4096, "min_memory": 1}})
    write_app(root, "gpu-app", SPAN, template=_fanout(4), manifest={
        "device_requirements": {"min_cpu": 1, "min_memory": 1,
                                "gpu": ["NVIDIA A100-SXM4-40GB", "NVIDIA GeForce RTX 4090"]}})
    write_app(root, "node-app", "", manifest={"entrypoint": "main.js"},
              files={"app/main.js": NODE_APP},
              template={**_fanout(2), "params": {"partitioner": {"chunks": 2},
                                                 "app": {"prefix": "> "}}})
    write_app(root, "shell-app", "", manifest={"entrypoint": "main.sh"},
              files={"app/main.sh": SHELL_APP}, template=_fanout(2))
    write_app(root, "hungry", HUNGRY)
    write_app(root, "env-report", ENV_REPORT)
    return root


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory, apps: Path) -> LocalServer:
    return start_module_server(apps_dirs=[apps], workers=4)


def _spans(api: Api, job: dict[str, Any]) -> list[dict[str, Any]]:
    assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
    return [json.loads(v) for k, v in sorted(api.results(job["id"]).items())]


def _most_at_once(spans: list[dict[str, Any]]) -> int:
    edges = sorted([(s["start"], 1) for s in spans] + [(s["end"], -1) for s in spans])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def _log_lines(api: Api, job_id: str) -> list[str]:
    logs = api.ok("POST", f"{C}/logs", json={"jobId": job_id})
    lines = logs["partitioner"] + logs["assembler"]
    for task in logs["taskrunner"].values():
        lines += task["logs"]
    return [line["log"] for line in lines]


# -- entrypoints ----------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_a_main_js_app_runs_through_node(api: Api) -> None:
    job = api.run(templateId="node-app-template", dataSource={
        "dataSourceDescriptor": "bypass"})
    assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
    assert api.results(job["id"]) == {"upper_0.txt": b"> CHUNK 0", "upper_1.txt": b"> CHUNK 1"}
    assert any(line.startswith("node v") and line.endswith("did chunk 1")
               for line in _log_lines(api, job["id"]))


def test_a_shell_entrypoint_runs_through_bash(api: Api) -> None:
    job = api.run(templateId="shell-app-template")
    assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
    assert api.results(job["id"]) == {"shout_0.txt": b"CHUNK 0", "shout_1.txt": b"CHUNK 1"}
    assert "bash did chunk 0" in _log_lines(api, job["id"])


def test_a_missing_interpreter_fails_the_job_naming_it(api: Api, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Tasks find programs on the server's PATH: here one without node.
    monkeypatch.setenv("PATH", str(tmp_path))
    job = api.run(templateId="node-app-template")
    assert job["state"] == "JOB_STATE_FAILED"
    assert job["errorMessage"] == (
        "the app node-app@0.1 needs node to run app/main.js, and node is not installed here "
        "(not found on PATH): install Node.js (the node program)")


# -- device requirements --------------------------------------------------------------------


def test_min_cpu_beyond_the_machine_fails_with_its_message(api: Api) -> None:
    job = api.run(templateId="huge-template")
    assert job["state"] == "JOB_STATE_FAILED"
    cpus = len(os.sched_getaffinity(0))
    assert job["errorMessage"] == (
        f"the app huge@0.1 needs min_cpu 4096 (this machine has {cpus} CPU"
        f"{'s' if cpus != 1 else ''}); run it on a machine that has them, or start the server "
        "with --ignore-requirements")
    assert api.ok("GET", f"{C}/jobs/{job['id']}/tasks")["tasks"] == []  # nothing ran


def test_min_cpu_is_the_worker_slots_each_task_takes(api: Api) -> None:
    # 4 worker slots, tasks of 2 CPUs: two at a time, never more.
    spans = _spans(api, api.run(templateId="two-cpus-template"))
    assert len(spans) == 4
    assert _most_at_once(spans) == 2


def test_ignore_requirements_runs_with_a_warning(start_server: ServerFactory,
                                                 apps: Path) -> None:
    server = start_server(apps_dirs=[apps], config_overrides={"ignore_requirements": True})
    api = Api(server.base_url, TEST_API_KEY)
    job = api.run(templateId="huge-template")
    assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
    assert any("needs min_cpu 4096" in line and "runs anyway (--ignore-requirements)" in line
               for line in _log_lines(api, job["id"]))


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a GPU")
def test_a_gpu_app_fails_clearly_on_a_machine_without_gpus(api: Api) -> None:
    job = api.run(templateId="gpu-app-template")
    assert job["state"] == "JOB_STATE_FAILED"
    assert "needs a GPU (NVIDIA A100-SXM4-40GB, NVIDIA GeForce RTX 4090; this machine has no " \
           "NVIDIA GPU: nvidia-smi -L lists none)" in job["errorMessage"]


def test_gpus_are_slots_of_their_own_with_cuda_visible_devices(
        apps: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A machine with two GPUs, as nvidia-smi -L lists them (a stand-in on PATH: the server,
    # a child process, detects the GPUs at start).
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n"
                    "echo 'GPU 0: NVIDIA GeForce RTX 4090 (UUID: GPU-aaaa)'\n"
                    "echo 'GPU 1: NVIDIA GeForce RTX 4090 (UUID: GPU-bbbb)'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    with LocalServer.start(tmp_path / "data", workers=4, apps_dirs=[apps], reuse=False,
                           api_keys=[TEST_API_KEY]) as server:  # (a child process: see above)
        api = Api(server.base_url, TEST_API_KEY)
        spans = _spans(api, api.run(templateId="gpu-app-template"))
    assert sorted(s["gpus"] for s in spans) == ["0", "0", "1", "1"]  # one GPU each
    assert _most_at_once(spans) == 2  # 4 worker slots, but 2 GPUs


# -- memory limit and environment -----------------------------------------------------------


def test_task_memory_limit_fails_the_task_and_the_server_stays_up(start_server: ServerFactory,
                                                                   apps: Path) -> None:
    server = start_server(apps_dirs=[apps], config_overrides={"task_memory_limit": "256M"})
    api = Api(server.base_url, TEST_API_KEY)
    job = api.run(templateId="hungry-template", params={"app": {"mb": 1024}})
    assert job["state"] == "JOB_STATE_FAILED"
    assert job["errorMessage"].startswith(
        "task for chunk 0 exceeded its memory limit of 256 MiB (--task-memory-limit) and "
        "failed with exit code 1: MemoryError"), job["errorMessage"]
    # The server is still up, and a task within the limit runs.
    ok = api.run(templateId="hungry-template", params={"app": {"mb": 16}})
    assert ok["state"] == "JOB_STATE_COMPLETE", ok["errorMessage"]


def test_pass_env_adds_host_variables_to_tasks(start_server: ServerFactory, apps: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", "/opt/browsers")
    monkeypatch.setenv("PLAYWRIGHT_SKIP", "1")
    monkeypatch.setenv("MY_TOOL_HOME", "/opt/tool")
    names = ["PLAYWRIGHT_BROWSERS_PATH", "PLAYWRIGHT_SKIP", "MY_TOOL_HOME", "LANG", "PATH"]
    seen = {}
    for label, overrides in (("default", {}), ("pass", {"pass_env": ("PLAYWRIGHT_*",)})):
        server = start_server(apps_dirs=[apps], config_overrides=overrides)
        api = Api(server.base_url, TEST_API_KEY)
        job = api.run(templateId="env-report-template", params={"app": {"names": names}})
        assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
        seen[label] = json.loads(api.results(job["id"])["env.json"])
    assert "PLAYWRIGHT_BROWSERS_PATH" not in seen["default"]  # not on the allow-list
    assert "PATH" in seen["default"]
    assert seen["pass"]["PLAYWRIGHT_BROWSERS_PATH"] == "/opt/browsers"
    assert seen["pass"]["PLAYWRIGHT_SKIP"] == "1"
    assert "MY_TOOL_HOME" not in seen["pass"]  # only what the glob names
