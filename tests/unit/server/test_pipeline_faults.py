"""Retries, timeouts, cancel: every process stops, nothing is left behind."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bytenite_nb.server.execution.executors.forkserver import ForkServerExecutor, SubprocessExecutor
from bytenite_nb.server.execution.pipeline import (
    PipelineCancelled,
    PipelineError,
    PipelineTimeout,
    run_pipeline,
)
from bytenite_nb.wire import LogLevel, TaskState
from tests.kit.pipeline import Recorder, engine, spec

MANY = """
import json, os
for i in range(json.loads(os.environ["PARTITIONER_PARAMS"])["n"]):
    open(os.path.join(os.environ["CHUNKS_DIR"], f"data_{i}.bin"), "w").write(str(i))
"""


@pytest.fixture(scope="module", params=["forkserver", "subprocess"])
def executor(request: pytest.FixtureRequest) -> Iterator[object]:
    ex = ForkServerExecutor(2) if request.param == "forkserver" else SubprocessExecutor(2)
    yield ex
    ex.close()


def _marker(what: str) -> str:
    """A command-line marker no other process has: tmp_path names repeat across pytest
    sessions (and other sessions may run at the same time), and a stranger's process with
    the same marker would make a test act (e.g. kill the zygote) before its own task ran."""
    return f"bn-{what}-{uuid.uuid4().hex}"


def _marked(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _wait_until(predicate, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_tasks_run_in_parallel(tmp_path: Path, executor: object) -> None:
    # Each task waits for the other to have started: only parallel execution completes.
    rendezvous = tmp_path / "rv"
    rendezvous.mkdir()
    partitioner = engine(tmp_path / "apps", "many", MANY, kind="partitioner")
    app = engine(tmp_path / "apps", "meet", f"""
import os, sys, time
rv = {str(rendezvous)!r}
open(os.path.join(rv, os.environ["CHUNK_NUMBER"]), "w").close()
deadline = time.time() + 30
while len(os.listdir(rv)) < 2:
    if time.time() > deadline:
        sys.exit("the other task never started")
    time.sleep(0.01)
""")
    s = spec(tmp_path, app, partitioner=partitioner, params={"partitioner": {"n": 2}})
    run_pipeline(s, Recorder(), threading.Event(), executor=executor)  # type: ignore[arg-type]


def test_retry_then_success(tmp_path: Path, executor: object) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    partitioner = engine(tmp_path / "apps", "many", MANY, kind="partitioner")
    app = engine(tmp_path / "apps", "flaky", f"""
import os, sys
mark = os.path.join({str(marks)!r}, os.environ["CHUNK_NUMBER"])
open(os.path.join(os.environ["TASK_RESULTS_DIR"], "partial.txt"), "w").write("x")
if os.environ["CHUNK_NUMBER"] == "1" and not os.path.exists(mark):
    open(mark, "w").close()
    sys.exit("transient failure")
open(os.path.join(os.environ["TASK_RESULTS_DIR"], "ok.txt"), "w").write("ok")
""")
    rec = Recorder()
    s = spec(tmp_path, app, partitioner=partitioner, params={"partitioner": {"n": 2}},
             max_task_retries=2)
    out = run_pipeline(s, rec, threading.Event(), executor=executor)  # type: ignore[arg-type]
    assert rec.states(1) == [(TaskState.QUEUED, 1), (TaskState.RUNNING, 1),
                             (TaskState.RETRYING, 1), (TaskState.RUNNING, 2),
                             (TaskState.COMPLETE, 2)]
    retrying = next(t for t in rec.tasks if t[1] is TaskState.RETRYING)
    assert retrying[3] == 1 and "transient failure" in (retrying[4] or "")
    assert any("attempt 1 of 3" in m and "retrying" in m for m in rec.messages(LogLevel.WARN))
    assert "transient failure" in rec.messages(LogLevel.ERROR)
    # the failed attempt's partial results were discarded: one partial.txt per chunk
    names = sorted(p.name for p in out.iterdir())
    assert names == ["ok-chunk1.txt", "ok.txt", "partial-chunk1.txt", "partial.txt"]


def test_retries_exhausted(tmp_path: Path, executor: object) -> None:
    app = engine(tmp_path / "apps", "always", "import sys\nsys.exit('nope')\n")
    rec = Recorder()
    with pytest.raises(PipelineError, match=r"chunk 0 failed with exit code 1: nope after 2 "):
        run_pipeline(spec(tmp_path, app, max_task_retries=1), rec, threading.Event(),
                     executor=executor)  # type: ignore[arg-type]
    assert [s for s, _ in rec.states(0)] == [TaskState.QUEUED, TaskState.RUNNING,
                                             TaskState.RETRYING, TaskState.RUNNING,
                                             TaskState.FAILED]


def test_task_timeout_kills_and_counts_as_failed_attempt(tmp_path: Path,
                                                         executor: object) -> None:
    marker = _marker("timeout")
    app = engine(tmp_path / "apps", "sleepy", f"""
import subprocess, sys, time
# a grandchild in the task's process group must die with it
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", {marker!r}])
print("sleeping", flush=True)
time.sleep(60)
""")
    rec = Recorder()
    with pytest.raises(PipelineError, match=r"chunk 0 timed out after 0.5 s \(taskTimeout\)"):
        run_pipeline(spec(tmp_path, app, task_timeout=0.5, max_task_retries=1), rec,
                     threading.Event(), executor=executor)  # type: ignore[arg-type]
    assert [s for s, _ in rec.states(0)][-3:] == [TaskState.RETRYING, TaskState.RUNNING,
                                                  TaskState.FAILED]
    assert rec.messages().count("sleeping") == 2
    assert _wait_until(lambda: not _marked(marker), 10)


def test_job_timeout(tmp_path: Path, executor: object) -> None:
    partitioner = engine(tmp_path / "apps", "many", MANY, kind="partitioner")
    app = engine(tmp_path / "apps", "sleepy", "import time\ntime.sleep(60)\n")
    rec = Recorder()
    s = spec(tmp_path, app, partitioner=partitioner, params={"partitioner": {"n": 4}},
             job_timeout=1.0)
    with pytest.raises(PipelineTimeout, match="jobTimeout of 1 s"):
        run_pipeline(s, rec, threading.Event(), executor=executor)  # type: ignore[arg-type]
    final = {c: rec.states(c)[-1][0] for c in range(4)}
    assert set(final.values()) == {TaskState.CANCELLED}


def test_job_timeout_during_partitioner(tmp_path: Path, executor: object) -> None:
    slow = engine(tmp_path / "apps", "slow-part", "import time\ntime.sleep(60)\n",
                  kind="partitioner")
    app = engine(tmp_path / "apps", "noop", "pass\n")
    with pytest.raises(PipelineTimeout):
        run_pipeline(spec(tmp_path, app, partitioner=slow, job_timeout=0.5), Recorder(),
                     threading.Event(), executor=executor)  # type: ignore[arg-type]


def test_one_final_failure_cancels_the_rest(tmp_path: Path, executor: object) -> None:
    partitioner = engine(tmp_path / "apps", "many", MANY, kind="partitioner")
    app = engine(tmp_path / "apps", "one-bad", """
import os, sys, time
if os.environ["CHUNK_NUMBER"] == "0":
    sys.exit("chunk zero is corrupt")
time.sleep(60)
""")
    rec = Recorder()
    s = spec(tmp_path, app, partitioner=partitioner, params={"partitioner": {"n": 6}})
    with pytest.raises(PipelineError, match="chunk 0 failed with exit code 1: chunk zero is"):
        run_pipeline(s, rec, threading.Event(), executor=executor)  # type: ignore[arg-type]
    finals = [rec.states(c)[-1][0] for c in range(6)]
    assert finals[0] is TaskState.FAILED
    assert set(finals[1:]) == {TaskState.CANCELLED}


@pytest.mark.parametrize("stage", ["task", "partitioner", "assembler"])
def test_cancel_stops_everything_quickly_without_orphans(tmp_path: Path, executor: object,
                                                         stage: str) -> None:
    marker = _marker(f"cancel-{stage}")
    # Other tests' long-lived processes (a session server's fork server, say) are not ours.
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    started = tmp_path / "started"
    sleeper = f"""
import os, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", {marker!r}])
open({str(started)!r}, "w").close()
time.sleep(60)
"""
    partitioner = engine(tmp_path / "apps", "many", MANY, kind="partitioner")
    app = engine(tmp_path / "apps", "app", "pass\n")
    kw: dict[str, object] = {"params": {"partitioner": {"n": 3}}}
    if stage == "task":
        app = engine(tmp_path / "apps", "sleepy", sleeper)
        kw["partitioner"] = partitioner
    elif stage == "partitioner":
        kw["partitioner"] = engine(tmp_path / "apps", "sleepy-part", sleeper, kind="partitioner")
    else:
        kw["assembler"] = engine(tmp_path / "apps", "sleepy-asm", sleeper, kind="assembler")
    cancel = threading.Event()
    rec = Recorder()
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            run_pipeline(spec(tmp_path, app, **kw), rec, cancel, executor=executor)  # type: ignore[arg-type]
        except BaseException as exc:
            outcome["exc"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    assert _wait_until(lambda: started.exists() and len(_marked(marker)) >= 1)
    t0 = time.monotonic()
    cancel.set()
    thread.join(30)
    elapsed = time.monotonic() - t0
    assert not thread.is_alive()
    assert isinstance(outcome.get("exc"), PipelineCancelled)
    assert elapsed < 5  # functional bound ("within a second"), loose for a loaded machine
    assert _wait_until(lambda: not _marked(marker), 10), "orphan processes left behind"
    zygotes = set(getattr(executor, "zygote_pids", ()))
    for zygote in zygotes:
        assert _wait_until(lambda z=zygote: not psutil.Process(z).children(recursive=True), 10)
    new_children = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert new_children <= zygotes, "processes this job started are still alive"


def test_close_executor_kills_running_tasks(tmp_path: Path) -> None:
    marker = _marker("close")
    ex = ForkServerExecutor(1)
    zygote = ex.zygote_pid
    app = engine(tmp_path / "apps", "sleepy", f"""
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", {marker!r}])
time.sleep(60)
""")
    rec = Recorder()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_pipeline(spec(tmp_path, app), rec, threading.Event(), executor=ex)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert _wait_until(lambda: len(_marked(marker)) >= 1)
    ex.close()
    thread.join(30)
    assert not thread.is_alive()
    assert errors and isinstance(errors[0], PipelineError)
    assert _wait_until(lambda: not _marked(marker), 10)
    assert zygote is not None and not psutil.pid_exists(zygote)


def test_zygote_killed_mid_task_leaves_no_orphans_and_restarts(tmp_path: Path) -> None:
    import os
    import signal

    marker = _marker("zkill")
    ex = ForkServerExecutor(1)
    try:
        app = engine(tmp_path / "apps", "sleepy", f"""
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", {marker!r}])
time.sleep(60)
""")
        errors: list[BaseException] = []

        def run() -> None:
            try:
                run_pipeline(spec(tmp_path, app), Recorder(), threading.Event(), executor=ex)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        assert _wait_until(lambda: len(_marked(marker)) >= 1)
        old = ex.zygote_pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        thread.join(30)
        assert not thread.is_alive()
        assert errors and "fork server dropped the task" in str(errors[0])
        assert _wait_until(lambda: not _marked(marker), 10), "orphans survived the zygote"
        # the next job gets a fresh zygote
        ok = engine(tmp_path / "apps2", "ok", "print('fine')\n")
        rec = Recorder()
        run_pipeline(spec(tmp_path / "again", ok), rec, threading.Event(), executor=ex)
        assert "fine" in rec.messages()
        assert ex.zygote_pid not in (None, old)
    finally:
        ex.close()
