"""App tasks on a real dask.distributed LocalCluster (worker processes, no shared state)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import textwrap
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from bytenite_nb import wire
from bytenite_nb.server.execution.executors import ForkServerExecutor
from bytenite_nb.server.execution.pipeline import (
    PipelineCancelled,
    PipelineError,
    PipelineSpec,
    run_pipeline,
)
from bytenite_nb.server.execution.registry import Engine
from bytenite_nb.wire import LogLevel, TaskState
from tests.kit.apps import FANOUT, SLOW_WITH_CHILD, ZIPPER
from tests.kit.pipeline import Recorder, load_engine, passthrough, spec
from tests.kit.processes import marked, unique_marker, until

distributed = pytest.importorskip("distributed")
pytestmark = [pytest.mark.dask, pytest.mark.slow]


@pytest.fixture(scope="module")
def dask_executor(dask_cluster: Any) -> Iterator[Any]:
    from bytenite_nb.server.execution.executors.dask import DaskExecutor

    ex = DaskExecutor(dask_cluster.scheduler_address)
    yield ex
    ex.close()


def _engine(root: Path, name: str, code: str, kind: str = "app") -> Engine:
    # helper.py: the whole folder travels to the worker, not only main.py
    return load_engine(root, name, code, kind=kind, files={"app/helper.py": "SUFFIX = '!'\n"})


SAME_NAME = """
import os, sys
from helper import SUFFIX
data = open(os.path.join(os.environ["TASK_DIR"], "data.bin")).read()
os.makedirs(os.path.join(os.environ["TASK_RESULTS_DIR"], "sub"))
open(os.path.join(os.environ["TASK_RESULTS_DIR"], "out.txt"), "w").write(data.upper() + SUFFIX)
open(os.path.join(os.environ["TASK_RESULTS_DIR"], "sub", "n.txt"), "w").write(
    os.environ["CHUNK_NUMBER"])
print("did", os.environ["CHUNK_NUMBER"])
"""


def _spec(tmp_path: Path, app: Engine, partitioner: Engine, assembler: Engine,
          chunks: int, app_params: dict[str, Any] | None = None, **kw: Any) -> PipelineSpec:
    return spec(tmp_path, app, partitioner=partitioner, assembler=assembler,
                params={"partitioner": {"chunks": chunks}, "app": app_params or {},
                        "assembler": {}},
                task_timeout=kw.pop("task_timeout", 60), job_timeout=kw.pop("job_timeout", 120),
                **kw)


def _zip_contents(out: Path) -> dict[str, str]:
    with zipfile.ZipFile(out / "results_archive.zip") as z:
        return {n: z.read(n).decode() for n in z.namelist()}


def test_same_results_as_the_local_executor(tmp_path: Path, dask_executor: Any) -> None:
    apps = tmp_path / "apps"
    part = _engine(apps, "fan", FANOUT, "partitioner")
    app = _engine(apps, "same", SAME_NAME)
    zipper = _engine(apps, "zip", ZIPPER, "assembler")
    obs = Recorder()
    out_dask = run_pipeline(_spec(tmp_path / "d", app, part, zipper, 6), obs,
                            threading.Event(), executor=dask_executor)
    with ForkServerExecutor(2) as local:
        out_local = run_pipeline(_spec(tmp_path / "l", app, part, zipper, 6), Recorder(),
                                 threading.Event(), executor=local)
    assert _zip_contents(out_dask) == _zip_contents(out_local)
    assert sorted(_zip_contents(out_dask).values()) == sorted(f"CHUNK {i}!" for i in range(6))
    assert {m for *_, m, _ in obs.logs} >= {f"did {i}" for i in range(6)}


def test_passthrough_assembler_keeps_result_tree(tmp_path: Path, dask_executor: Any) -> None:
    apps = tmp_path / "apps"
    part = _engine(apps, "fan", FANOUT, "partitioner")
    app = _engine(apps, "same", SAME_NAME)
    out = run_pipeline(_spec(tmp_path, app, part, passthrough("assembler"), 2), Recorder(),
                       threading.Event(), executor=dask_executor)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["out-chunk1.txt", "out.txt", "sub/n-chunk1.txt", "sub/n.txt"]


BIG_PARTITIONER = """
import json, os
for i in range(json.loads(os.environ["PARTITIONER_PARAMS"])["chunks"]):
    with open(os.path.join(os.environ["CHUNKS_DIR"], f"data_{i}.bin"), "wb") as f:
        f.write(bytes(range(256)) * (40 * 1024 * (i + 1) + 1))  # 10 MB, 20 MB and more
"""
# Two results: the chunk reversed (as big as the chunk) and a small file.
BIG_APP = """
import hashlib, os
data = open(os.path.join(os.environ["TASK_DIR"], "data.bin"), "rb").read()
results = os.environ["TASK_RESULTS_DIR"]
open(os.path.join(results, "reversed.bin"), "wb").write(data[::-1])
open(os.path.join(results, "sha.txt"), "w").write(hashlib.sha256(data).hexdigest())
"""


def test_big_chunks_and_results_travel_whole(tmp_path: Path, dask_executor: Any) -> None:
    # chunks and results bigger than what travels in one piece (16 MiB) or inline (1 MiB)
    apps = tmp_path / "apps"
    part = _engine(apps, "bigpart", BIG_PARTITIONER, "partitioner")
    app = _engine(apps, "big", BIG_APP)
    out = run_pipeline(_spec(tmp_path, app, part, passthrough("assembler"), 2), Recorder(),
                       threading.Event(), executor=dask_executor)
    chunks = sorted((tmp_path / "work" / "chunks").iterdir())
    assert [c.stat().st_size for c in chunks] == [256 * (40 * 1024 * (i + 1) + 1)
                                                  for i in range(2)]
    for name, chunk in (("", chunks[0]), ("-chunk1", chunks[1])):
        data = chunk.read_bytes()
        assert (out / f"sha{name}.txt").read_text() == hashlib.sha256(data).hexdigest()
        assert (out / f"reversed{name}.bin").read_bytes() == data[::-1]


SECRET_DUMP = """
import json, os
names = ("MY_KEY", "S3_CRED_ACCESS_KEY", "S3_CRED_SECRET_KEY", "SECRETS")
json.dump({n: os.environ.get(n) for n in names},
          open(os.path.join(os.environ["TASK_RESULTS_DIR"], "env.json"), "w"))
print("key", os.environ.get("MY_KEY"))
"""


def test_secrets_reach_the_worker_like_the_local_executor(tmp_path: Path,
                                                          dask_executor: Any) -> None:
    app = load_engine(tmp_path / "apps", "uses-secrets", SECRET_DUMP,
                      manifest={"platform_config": {"secrets": ["MY_KEY", "S3_CRED"]}})
    secrets = [
        {"id": "MY_KEY", "secretType": "other", "expiresAt": None, "accessKey": "",
         "params": {}, "name": "", "secretKey": "sk-dask-llm-key-1"},
        {"id": "S3_CRED", "secretType": "aws", "expiresAt": None, "accessKey": "AKIA-DASK",
         "params": {}, "name": "", "secretKey": "aws-dask-secret-2"},
    ]
    obs = Recorder()
    out = run_pipeline(_spec(tmp_path, app, passthrough("partitioner"),
                             passthrough("assembler"), 0, secrets=secrets),
                       obs, threading.Event(), executor=dask_executor)
    seen = json.loads((out / "env.json").read_text())
    assert (seen["MY_KEY"], seen["S3_CRED_ACCESS_KEY"], seen["S3_CRED_SECRET_KEY"]) == (
        "sk-dask-llm-key-1", "AKIA-DASK", "aws-dask-secret-2")
    assert [s["id"] for s in json.loads(seen["SECRETS"])] == ["MY_KEY", "S3_CRED"]
    assert "key ***" in [m for *_, m, _ in obs.logs]
    assert "sk-dask-llm-key-1" not in repr(obs.logs)


def test_failing_task_reports_stderr(tmp_path: Path, dask_executor: Any) -> None:
    apps = tmp_path / "apps"
    part = _engine(apps, "fan", FANOUT, "partitioner")
    app = _engine(apps, "bad", "import sys\nprint('oops', file=sys.stderr)\nsys.exit(4)\n")
    zipper = _engine(apps, "zip", ZIPPER, "assembler")
    obs = Recorder()
    with pytest.raises(PipelineError, match="failed with exit code 4: oops"):
        run_pipeline(_spec(tmp_path, app, part, zipper, 1), obs, threading.Event(),
                     executor=dask_executor)
    assert any(lv is LogLevel.ERROR and m == "oops" for _, _, lv, m, _ in obs.logs)


def test_task_timeout_on_the_worker(tmp_path: Path, dask_executor: Any) -> None:
    apps = tmp_path / "apps"
    part = _engine(apps, "fan", FANOUT, "partitioner")
    app = _engine(apps, "slow", "import time\ntime.sleep(60)\n")
    zipper = _engine(apps, "zip", ZIPPER, "assembler")
    with pytest.raises(PipelineError, match="timed out"):
        run_pipeline(_spec(tmp_path, app, part, zipper, 1, task_timeout=1), Recorder(),
                     threading.Event(), executor=dask_executor)


def test_cancel_kills_remote_tasks(tmp_path: Path, dask_executor: Any) -> None:
    marker = unique_marker("dask-cancel")
    apps = tmp_path / "apps"
    part = _engine(apps, "fan", FANOUT, "partitioner")
    app = _engine(apps, "slow", SLOW_WITH_CHILD)
    zipper = _engine(apps, "zip", ZIPPER, "assembler")
    cancel = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_pipeline(_spec(tmp_path, app, part, zipper, 2, {"marker": marker}), Recorder(),
                         cancel, executor=dask_executor)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert until(lambda: len(marked(marker)) >= 2)
    t0 = time.monotonic()
    cancel.set()
    thread.join(30)
    assert not thread.is_alive() and isinstance(errors[0], PipelineCancelled)
    assert time.monotonic() - t0 < 5
    assert until(lambda: not marked(marker), 15), "remote processes outlived the cancel"


def test_worker_killed_mid_task_is_survived(tmp_path: Path, dask_cluster: Any,
                                            dask_executor: Any) -> None:
    flag = tmp_path / "killed-once"
    apps = tmp_path / "apps"
    part = _engine(apps, "fan", FANOUT, "partitioner")
    app = _engine(apps, "victim", f"""
import os, time
flag = {str(flag)!r}
if not os.path.exists(flag):
    open(flag + ".pid", "w").write(str(os.getpid()))
    # the Dask worker process running this task: its fork server's parent
    stat = open("/proc/%d/stat" % os.getppid()).read()
    open(flag, "w").write(stat.rsplit(")", 1)[1].split()[1])
    time.sleep(60)
open(os.path.join(os.environ["TASK_RESULTS_DIR"], "ok.txt"), "w").write("survived")
""")
    zipper = _engine(apps, "zip", ZIPPER, "assembler")
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["out"] = run_pipeline(_spec(tmp_path, app, part, zipper, 1), Recorder(),
                                         threading.Event(), executor=dask_executor)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    assert until(lambda: flag.exists() and flag.read_text().strip() != "")
    os.kill(int(flag.read_text()), signal.SIGKILL)
    thread.join(90)
    assert not thread.is_alive()
    assert "error" not in result, result.get("error")
    assert _zip_contents(result["out"]) == {"ok.txt": "survived"}
    # the first attempt did not outlive its worker
    victim = int(Path(str(flag) + ".pid").read_text())
    assert until(lambda: not psutil.pid_exists(victim)
                       or psutil.Process(victim).status() == psutil.STATUS_ZOMBIE, 15)
    # the cluster recovers its worker (the nanny restarts it)
    assert until(lambda: len(dask_executor.client.nthreads()) == 2, 60)


# -- output lines while a task runs ------------------------------------------------------------

# Writes some lines, then waits for the test to create the gate file: until then the task
# cannot end, so a line seen before that was delivered while the task was running.
GATED = """
import os, sys, time
gate = {gate!r}
{before}
for _ in range(1200):
    if os.path.exists(gate):
        break
    time.sleep(0.1)
else:
    sys.exit(3)  # never opened
{after}
"""


def _gated(gate: Path, before: str, after: str) -> str:
    return GATED.format(gate=str(gate), before=textwrap.dedent(before).strip(),
                        after=textwrap.dedent(after).strip())


def _app_lines(obs: Recorder, level: LogLevel) -> list[str]:
    """Task 0's own output lines at ``level``, in the order the pipeline recorded them."""
    return [m for _, chunk, lv, m, container in list(obs.logs)
            if chunk == 0 and lv is level and container == wire.APP_LOG_CONTAINER]


def _task_states(obs: Recorder) -> list[Any]:
    return [args[1] for args in list(obs.tasks) if args[0] == 0]


@contextlib.contextmanager
def _running(spec: PipelineSpec, obs: Recorder, executor: Any,
             gate: Path | None = None) -> Iterator[tuple[threading.Thread, dict[str, Any]]]:
    """The pipeline running on a thread; the gate is opened (and the thread joined) on exit,
    also when the test fails."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["out"] = run_pipeline(spec, obs, threading.Event(), executor=executor)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield thread, result
    finally:
        if gate is not None:
            gate.touch()
        thread.join(90)


def _one_task(tmp_path: Path, code: str) -> PipelineSpec:
    apps = tmp_path / "apps"
    part = _engine(apps, "fan", FANOUT, "partitioner")
    app = _engine(apps, "gated", code)
    return _spec(tmp_path, app, part, passthrough("assembler"), 1)


def test_lines_reach_the_logs_while_the_task_runs(tmp_path: Path, dask_executor: Any) -> None:
    gate = tmp_path / "gate"
    spec = _one_task(tmp_path, _gated(gate, """
        print("before the gate")
        print("stderr before the gate", file=sys.stderr)
    """, """
        print("after the gate")
    """))
    obs = Recorder()
    with _running(spec, obs, dask_executor, gate) as (thread, result):
        assert until(lambda: _app_lines(obs, LogLevel.INFO) == ["before the gate"]
                           and _app_lines(obs, LogLevel.ERROR) == ["stderr before the gate"])
        # seen while the task still runs: it cannot end before the gate exists
        assert not gate.exists() and thread.is_alive()
        assert _task_states(obs)[-1] is TaskState.RUNNING
    assert not thread.is_alive() and "error" not in result, result.get("error")
    assert _task_states(obs)[-1] is TaskState.COMPLETE
    # each line once, in order per stream
    assert _app_lines(obs, LogLevel.INFO) == ["before the gate", "after the gate"]
    assert _app_lines(obs, LogLevel.ERROR) == ["stderr before the gate"]


def test_many_lines_arrive_live_complete_and_in_order(tmp_path: Path,
                                                      dask_executor: Any) -> None:
    gate = tmp_path / "gate"
    spec = _one_task(tmp_path, _gated(gate, """
        for i in range(5000):
            print(f"out {i}")
            print(f"err {i}", file=sys.stderr)
    """, """
        print("out done")
    """))
    obs = Recorder()
    out = [f"out {i}" for i in range(5000)]
    err = [f"err {i}" for i in range(5000)]
    with _running(spec, obs, dask_executor, gate) as (thread, result):
        assert until(lambda: len(_app_lines(obs, LogLevel.INFO)) >= 5000
                           and len(_app_lines(obs, LogLevel.ERROR)) >= 5000)
        assert not gate.exists() and thread.is_alive()  # all of them came while it ran
        assert _task_states(obs)[-1] is TaskState.RUNNING
        assert _app_lines(obs, LogLevel.INFO) == out
        assert _app_lines(obs, LogLevel.ERROR) == err
    assert not thread.is_alive() and "error" not in result, result.get("error")
    assert _app_lines(obs, LogLevel.INFO) == [*out, "out done"]
    assert _app_lines(obs, LogLevel.ERROR) == err


class _Deaf(dict):  # type: ignore[type-arg]
    """The executor's running tasks by token, made to lose every live batch of lines once
    ``deaf`` is set."""

    deaf = False

    def get(self, key: Any, default: Any = None) -> Any:
        return default if self.deaf else super().get(key, default)


def test_lines_whose_live_messages_are_lost_come_with_the_result_once(
        tmp_path: Path, dask_executor: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    inboxes = _Deaf()
    monkeypatch.setattr(dask_executor, "_tokens", inboxes)
    gate = tmp_path / "gate"
    spec = _one_task(tmp_path, _gated(gate, """
        for i in range(100):
            print(f"live {i}")
    """, """
        for i in range(2000):
            print(f"late {i}")
            print(f"late err {i}", file=sys.stderr)
    """))
    obs = Recorder()
    live = [f"live {i}" for i in range(100)]
    with _running(spec, obs, dask_executor, gate) as (thread, result):
        assert until(lambda: _app_lines(obs, LogLevel.INFO) == live)
        assert thread.is_alive()
        inboxes.deaf = True  # from now on, no live batch reaches the task's run
    assert not thread.is_alive() and "error" not in result, result.get("error")
    # the lines delivered live are not delivered again; the others came with the result
    assert _app_lines(obs, LogLevel.INFO) == [*live, *(f"late {i}" for i in range(2000))]
    assert _app_lines(obs, LogLevel.ERROR) == [f"late err {i}" for i in range(2000)]


def test_lost_worker_lines_stay_and_the_new_run_follows_a_note(tmp_path: Path, dask_cluster: Any,
                                                               dask_executor: Any) -> None:
    flag = tmp_path / "killed-once"
    spec = _one_task(tmp_path, f"""
import os, time
flag = {str(flag)!r}
first = not os.path.exists(flag)
print("run starts", "first" if first else "again")
if first:
    # the Dask worker running this task: its fork server's parent
    stat = open("/proc/%d/stat" % os.getppid()).read()
    open(flag + ".tmp", "w").write(stat.rsplit(")", 1)[1].split()[1])
    os.replace(flag + ".tmp", flag)
    print("lost run working")
    time.sleep(60)
print("new run done")
open(os.path.join(os.environ["TASK_RESULTS_DIR"], "ok.txt"), "w").write("survived")
""")
    obs = Recorder()
    with _running(spec, obs, dask_executor) as (thread, result):
        assert until(lambda: _app_lines(obs, LogLevel.INFO)
                           == ["run starts first", "lost run working"])
        os.kill(int(flag.read_text()), signal.SIGKILL)
    assert not thread.is_alive() and "error" not in result, result.get("error")
    assert (result["out"] / "ok.txt").read_text() == "survived"
    task_logs = [(lv, m, container) for _, chunk, lv, m, container in list(obs.logs)
                 if chunk == 0]
    assert [m for _, m, _ in task_logs if "was lost" not in m] == [
        "run starts first", "lost run working", "run starts again", "new run done"]
    notes = [i for i, (_, m, _) in enumerate(task_logs) if "was lost" in m]
    assert notes == [2], task_logs  # once, between the lost run's lines and the new run's
    level, note, container = task_logs[2]
    assert level is LogLevel.WARN and container == wire.RUNTIME_LOG_CONTAINER
    assert "Dask runs the task again" in note
    assert _task_states(obs) == [TaskState.QUEUED, TaskState.RUNNING, TaskState.COMPLETE]
    assert until(lambda: len(dask_executor.client.nthreads()) == 2, 60)
