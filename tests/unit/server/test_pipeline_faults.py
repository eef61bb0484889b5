"""Retries, timeouts, cancel: every process stops, nothing is left behind."""

from __future__ import annotations

import threading
from pathlib import Path

import psutil
import pytest

from bytenite_nb.server.execution.executors import ForkServerExecutor
from bytenite_nb.server.execution.pipeline import (
    PipelineCancelled,
    PipelineError,
    PipelineTimeout,
    run_pipeline,
)
from bytenite_nb.wire import LogLevel, TaskState
from tests.kit.apps import DETACHED_CHILDREN, FANOUT, FLAKY, SLOW_WITH_CHILD
from tests.kit.pipeline import Recorder, load_engine, spec
from tests.kit.processes import marked, unique_marker, until


def test_tasks_run_in_parallel(tmp_path: Path, executor: object) -> None:
    # Each task marks that it started, then waits until the other one has started too (a
    # task that gives up fails the job), and writes down whom it met.
    rendezvous = tmp_path / "rv"
    rendezvous.mkdir()
    partitioner = load_engine(tmp_path / "apps", "fanout", FANOUT, kind="partitioner")
    app = load_engine(tmp_path / "apps", "meet", f"""
import os, sys, time
rv = {str(rendezvous)!r}
open(os.path.join(rv, os.environ["CHUNK_NUMBER"]), "w").close()
deadline = time.monotonic() + 60
while len(os.listdir(rv)) < 2:
    if time.monotonic() > deadline:
        sys.exit("the other task never started")
    time.sleep(0.01)
met = " ".join(sorted(os.listdir(rv)))
open(os.path.join(os.environ["TASK_RESULTS_DIR"], "met.txt"), "w").write(met)
""")
    rec = Recorder()
    s = spec(tmp_path, app, partitioner=partitioner, params={"partitioner": {"chunks": 2}})
    out = run_pipeline(s, rec, threading.Event(), executor=executor)  # type: ignore[arg-type]
    # Each task, while it was running, saw that the other one had started...
    assert {p.name: p.read_text() for p in out.iterdir()} == {"met.txt": "0 1",
                                                              "met-chunk1.txt": "0 1"}
    # ...and the pipeline reported both tasks running before it reported either one complete.
    events = [(chunk, state) for chunk, state, *_ in rec.tasks]
    first_end = next(i for i, (_, state) in enumerate(events) if state is TaskState.COMPLETE)
    assert {chunk for chunk, state in events[:first_end] if state is TaskState.RUNNING} == {0, 1}
    assert [state for _, state in events].count(TaskState.COMPLETE) == 2


def test_retry_then_success(tmp_path: Path, executor: object) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    partitioner = load_engine(tmp_path / "apps", "fanout", FANOUT, kind="partitioner")
    app = load_engine(tmp_path / "apps", "flaky", FLAKY)
    rec = Recorder()
    s = spec(tmp_path, app, partitioner=partitioner, max_task_retries=2,
             params={"partitioner": {"chunks": 2},
                     "app": {"dir": str(marks), "fail": 1, "chunk": 1}})
    out = run_pipeline(s, rec, threading.Event(), executor=executor)  # type: ignore[arg-type]
    assert rec.states(1) == [(TaskState.QUEUED, 1), (TaskState.RUNNING, 1),
                             (TaskState.RETRYING, 1), (TaskState.RUNNING, 2),
                             (TaskState.COMPLETE, 2)]
    retrying = next(t for t in rec.tasks if t[1] is TaskState.RETRYING)
    assert retrying[3] == 7 and "flaky failure number 1" in (retrying[4] or "")
    assert any("attempt 1 of 3" in m and "retrying" in m for m in rec.messages(LogLevel.WARN))
    assert "flaky failure number 1" in rec.messages(LogLevel.ERROR)
    # the failed attempt's partial.txt was discarded with its task folder
    names = sorted(p.name for p in out.iterdir())
    assert names == ["ok-chunk1.txt", "ok.txt"]


def test_retries_exhausted(tmp_path: Path, executor: object) -> None:
    app = load_engine(tmp_path / "apps", "always", "import sys\nsys.exit('nope')\n")
    rec = Recorder()
    with pytest.raises(PipelineError, match=r"chunk 0 failed with exit code 1: nope after 2 "):
        run_pipeline(spec(tmp_path, app, max_task_retries=1), rec, threading.Event(),
                     executor=executor)  # type: ignore[arg-type]
    assert [s for s, _ in rec.states(0)] == [TaskState.QUEUED, TaskState.RUNNING,
                                             TaskState.RETRYING, TaskState.RUNNING,
                                             TaskState.FAILED]


#: A task that dies the way playwright does when its browser is missing: the exception, then
#: a framed hint of several lines (its last line is box-drawing characters only).
FRAMED_HINT = """import sys
print("working", file=sys.stderr)
print("lib.errors.Error: Executable doesn't exist at /x/chrome", file=sys.stderr)
for line in ("\u2554" + "\u2550" * 20 + "\u2557", "\u2551 run: lib install  \u2551",
             "\u255a" + "\u2550" * 20 + "\u255d"):
    print(line, file=sys.stderr)
sys.exit(1)
"""


def test_the_error_message_is_the_exception_not_a_frame_around_its_hint(
        tmp_path: Path, executor: object) -> None:
    app = load_engine(tmp_path / "apps", "framed", FRAMED_HINT)
    with pytest.raises(PipelineError) as caught:
        run_pipeline(spec(tmp_path, app), Recorder(), threading.Event(),
                     executor=executor)  # type: ignore[arg-type]
    assert ("chunk 0 failed with exit code 1: lib.errors.Error: Executable doesn't exist "
            "at /x/chrome") in str(caught.value)


def test_a_last_line_without_words_is_passed_over(tmp_path: Path, executor: object) -> None:
    app = load_engine(tmp_path / "apps", "dashes", "import sys\n"
                      "print('disk full while writing out.csv', file=sys.stderr)\n"
                      "print('-' * 40, file=sys.stderr)\nsys.exit(3)\n")
    with pytest.raises(PipelineError, match=r"exit code 3: disk full while writing out\.csv"):
        run_pipeline(spec(tmp_path, app), Recorder(), threading.Event(),
                     executor=executor)  # type: ignore[arg-type]


def test_task_timeout_kills_and_counts_as_failed_attempt(tmp_path: Path,
                                                         executor: object) -> None:
    marker = unique_marker("timeout")
    # the task's child, in the task's process group, must die with it
    app = load_engine(tmp_path / "apps", "slow", SLOW_WITH_CHILD)
    rec = Recorder()
    s = spec(tmp_path, app, task_timeout=0.5, max_task_retries=1,
             params={"app": {"marker": marker}})
    with pytest.raises(PipelineError, match=r"chunk 0 timed out after 0.5 s \(taskTimeout\)"):
        run_pipeline(s, rec, threading.Event(), executor=executor)  # type: ignore[arg-type]
    assert [s for s, _ in rec.states(0)][-3:] == [TaskState.RETRYING, TaskState.RUNNING,
                                                  TaskState.FAILED]
    assert rec.messages().count("working") == 2
    assert until(lambda: not marked(marker), 10)


def test_job_timeout(tmp_path: Path, executor: object) -> None:
    partitioner = load_engine(tmp_path / "apps", "fanout", FANOUT, kind="partitioner")
    app = load_engine(tmp_path / "apps", "sleepy", "import time\ntime.sleep(60)\n")
    rec = Recorder()
    s = spec(tmp_path, app, partitioner=partitioner, params={"partitioner": {"chunks": 4}},
             job_timeout=1.0)
    with pytest.raises(PipelineTimeout, match="jobTimeout of 1 s"):
        run_pipeline(s, rec, threading.Event(), executor=executor)  # type: ignore[arg-type]
    final = {c: rec.states(c)[-1][0] for c in range(4)}
    assert set(final.values()) == {TaskState.CANCELLED}


def test_job_timeout_during_partitioner(tmp_path: Path, executor: object) -> None:
    slow = load_engine(tmp_path / "apps", "slow-part", "import time\ntime.sleep(60)\n",
                       kind="partitioner")
    app = load_engine(tmp_path / "apps", "noop", "pass\n")
    with pytest.raises(PipelineTimeout):
        run_pipeline(spec(tmp_path, app, partitioner=slow, job_timeout=0.5), Recorder(),
                     threading.Event(), executor=executor)  # type: ignore[arg-type]


def test_one_final_failure_cancels_the_rest(tmp_path: Path, executor: object) -> None:
    partitioner = load_engine(tmp_path / "apps", "fanout", FANOUT, kind="partitioner")
    app = load_engine(tmp_path / "apps", "one-bad", """
import os, sys, time
if os.environ["CHUNK_NUMBER"] == "0":
    sys.exit("chunk zero is corrupt")
time.sleep(60)
""")
    rec = Recorder()
    s = spec(tmp_path, app, partitioner=partitioner, params={"partitioner": {"chunks": 6}})
    with pytest.raises(PipelineError, match="chunk 0 failed with exit code 1: chunk zero is"):
        run_pipeline(s, rec, threading.Event(), executor=executor)  # type: ignore[arg-type]
    finals = [rec.states(c)[-1][0] for c in range(6)]
    assert finals[0] is TaskState.FAILED
    assert set(finals[1:]) == {TaskState.CANCELLED}
    # a cancelled task did not fail: it shows no exit code (not the kill's, not the failed
    # task's), and says why it stopped
    cancelled = [t for t in rec.tasks if t[1] is TaskState.CANCELLED]
    assert [exit_code for _, _, _, exit_code, _ in cancelled] == [None] * 5
    assert all(error and "chunk 0 failed" in error for *_, error in cancelled)


@pytest.mark.parametrize("stage", ["task", "partitioner", "assembler"])
def test_cancel_stops_everything_quickly_without_orphans(tmp_path: Path, executor: object,
                                                         stage: str) -> None:
    marker = unique_marker(f"cancel-{stage}")
    # Other tests' long-lived processes (a session server's fork server, say) are not ours.
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    apps = tmp_path / "apps"
    app = load_engine(apps, "app", "pass\n")
    kw: dict[str, object] = {"params": {"partitioner": {"chunks": 3, "marker": marker},
                                        "app": {"marker": marker},
                                        "assembler": {"marker": marker}}}
    if stage == "task":
        app = load_engine(apps, "slow", SLOW_WITH_CHILD)
        kw["partitioner"] = load_engine(apps, "fanout", FANOUT, kind="partitioner")
    elif stage == "partitioner":
        kw["partitioner"] = load_engine(apps, "slow-part", SLOW_WITH_CHILD, kind="partitioner")
    else:
        kw["assembler"] = load_engine(apps, "slow-asm", SLOW_WITH_CHILD, kind="assembler")
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
    assert until(lambda: len(marked(marker)) >= 1)
    cancel.set()  # how fast the run winds down is measured by benchmarks/abort.py
    thread.join(30)
    assert not thread.is_alive()
    assert isinstance(outcome.get("exc"), PipelineCancelled)
    assert until(lambda: not marked(marker), 10), "orphan processes left behind"
    zygotes = set(getattr(executor, "zygote_pids", ()))
    for zygote in zygotes:
        assert until(lambda z=zygote: not psutil.Process(z).children(recursive=True), 10)
    new_children = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert new_children <= zygotes, "processes this job started are still alive"


def test_cancel_kills_children_that_left_the_process_group(tmp_path: Path,
                                                          executor: object) -> None:
    marker = unique_marker("detached")
    app = load_engine(tmp_path / "apps", "detached", DETACHED_CHILDREN)
    cancel = threading.Event()
    rec = Recorder()
    outcome: dict[str, BaseException] = {}
    s = spec(tmp_path, app, params={"app": {"marker": marker, "ready": str(tmp_path / "up")}})

    def run() -> None:
        try:
            run_pipeline(s, rec, cancel, executor=executor)  # type: ignore[arg-type]
        except BaseException as exc:
            outcome["exc"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    assert until(lambda: "working" in rec.messages()), "the task never started its children"
    assert len(marked(marker)) == 2
    cancel.set()
    thread.join(30)
    assert not thread.is_alive()
    assert isinstance(outcome.get("exc"), PipelineCancelled)
    # every descendant, the ones in a session of their own too, is gone (not just its group)
    assert until(lambda: not marked(marker), 10), [p.cmdline() for p in marked(marker)]


def test_a_task_that_ends_takes_its_detached_children_with_it(tmp_path: Path) -> None:
    """On the fork server, as in a container: whatever a task started dies when it ends."""
    marker = unique_marker("leftover")
    ex = ForkServerExecutor(1)
    try:
        app = load_engine(tmp_path / "apps", "detached", DETACHED_CHILDREN.replace(
            "time.sleep(120)\n", "sys.exit(0)\n"))
        ready = tmp_path / "up"
        rec = Recorder()
        run_pipeline(spec(tmp_path, app, params={"app": {"marker": marker,
                                                         "ready": str(ready)}}),
                     rec, threading.Event(), executor=ex)
        assert "working" in rec.messages()
        assert until(lambda: not marked(marker), 10), [p.cmdline() for p in marked(marker)]
    finally:
        ex.close()


def test_close_executor_kills_running_tasks(tmp_path: Path) -> None:
    marker = unique_marker("close")
    ex = ForkServerExecutor(1)
    zygote = ex.zygote_pid
    app = load_engine(tmp_path / "apps", "slow", SLOW_WITH_CHILD)
    rec = Recorder()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_pipeline(spec(tmp_path, app, params={"app": {"marker": marker}}), rec,
                         threading.Event(), executor=ex)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert until(lambda: len(marked(marker)) >= 1)
    ex.close()
    thread.join(30)
    assert not thread.is_alive()
    assert errors and isinstance(errors[0], PipelineError)
    assert until(lambda: not marked(marker), 10)
    assert zygote is not None and not psutil.pid_exists(zygote)


def test_zygote_killed_mid_task_leaves_no_orphans_and_restarts(tmp_path: Path) -> None:
    import os
    import signal

    marker = unique_marker("zkill")
    ex = ForkServerExecutor(1)
    try:
        app = load_engine(tmp_path / "apps", "slow", SLOW_WITH_CHILD)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                run_pipeline(spec(tmp_path, app, params={"app": {"marker": marker}}),
                             Recorder(), threading.Event(), executor=ex)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        assert until(lambda: len(marked(marker)) >= 1)
        old = ex.zygote_pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        thread.join(30)
        assert not thread.is_alive()
        assert errors and "fork server dropped the task" in str(errors[0])
        assert until(lambda: not marked(marker), 10), "orphans survived the zygote"
        # the next job gets a fresh zygote
        ok = load_engine(tmp_path / "apps2", "ok", "print('fine')\n")
        rec = Recorder()
        run_pipeline(spec(tmp_path / "again", ok), rec, threading.Event(), executor=ex)
        assert "fine" in rec.messages()
        assert ex.zygote_pid not in (None, old)
    finally:
        ex.close()
