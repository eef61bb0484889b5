"""Failing and aborted jobs through the client, on a private ByteNite Local with test apps."""

from __future__ import annotations

import pytest

from bytenite_nb import wire
from bytenite_nb.api import Client, JobFailedError, JobSnapshot
from bytenite_nb.local import LocalServer
from tests.kit.apps import FAILING, FAILING_MESSAGE, SLEEPY, write_app, write_engine
from tests.kit.servers import ServerFactory


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory,
           tmp_path_factory: pytest.TempPathFactory) -> LocalServer:
    apps = tmp_path_factory.mktemp("apps")
    write_app(apps, "crash", FAILING)
    write_app(apps, "sleepy", SLEEPY, template={"params": {"app": {"seconds": 120}}})
    # A partitioner that reports on stderr, as Python's logging does by default: its lines
    # are recorded at ERROR level although nothing went wrong there.
    write_engine(apps, "chatty", """
        import os, sys
        for i in range(8):
            print(f"progress: writing chunk {i}", file=sys.stderr)
        open(os.path.join(os.environ["CHUNKS_DIR"], "data_0.bin"), "w").write("x")
        """, "partitioner")
    write_app(apps, "crash-after-chatter", FAILING, template={"partitioner": "chatty"})
    return start_module_server(apps_dirs=(apps,))


def test_wait_raises_with_error_message_and_first_error_lines(client: Client) -> None:
    updates: list[JobSnapshot] = []
    job = client.submit("crash-template", source=b"x")
    with pytest.raises(JobFailedError) as info:
        job.wait(timeout=120, on_update=updates.append)
    err = info.value
    assert err.job.state is wire.JobState.FAILED and err.job.id == job.id
    assert err.error_message and err.error_message in str(err)
    assert any(FAILING_MESSAGE in line for line in err.error_logs)
    # ByteNite Local's own "attempt 1 of 1 failed ..." line only restates the errorMessage
    assert not any("attempt 1 of 1" in line for line in err.error_logs)
    assert any("attempt 1 of 1" in e.message for e in job.logs())  # (it is in the logs)
    assert FAILING_MESSAGE in str(err)
    assert updates[-1].state is wire.JobState.FAILED
    assert updates[-1].first_task_error is not None or updates[-1].tasks_failed == 1
    tasks = job.tasks_df()
    assert tasks["status"].tolist() == ["failed"] and tasks["exit_code"].tolist() == [3]
    logs = job.logs_df()
    assert "ERROR" in set(logs["level"].astype("str"))


def test_the_error_lines_shown_are_those_of_the_step_that_failed(client: Client) -> None:
    job = client.submit("crash-after-chatter-template", source=b"x")
    with pytest.raises(JobFailedError) as info:
        job.wait(timeout=120)
    lines = info.value.error_logs
    assert lines and FAILING_MESSAGE in lines[0]
    assert "TASKRUNNER" in lines[0]


def test_abort_a_running_job(client: Client) -> None:
    import time

    job = client.submit("sleepy-template", source=b"x")
    deadline = time.monotonic() + 60
    while client.running_tasks([job.id]).get(job.id, 0) < 1:  # its task is running now
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.05)
    job.abort()
    assert job.state is wire.JobState.FAILED
    assert "abort" in (job.error_message or "").lower()
    with pytest.raises(JobFailedError):
        job.wait(timeout=60)  # already over: wait answers at once
    fast = client.with_options(timeout=5, max_retries=0)
    assert fast.job(job.id).state is wire.JobState.FAILED and fast.max_retries == 0
    tasks = fast.tasks(job.id)
    assert tasks and tasks[0].state in (wire.TaskState.CANCELLED, wire.TaskState.FAILED)
