"""--wait, Ctrl-C, and "no job left behind", against a private ByteNite Local.

The private server has one extra app, ``sleepy`` (its task sleeps for ``seconds``), so a job is
reliably still running when the test interrupts the wait, and a tiny upload limit, so an upload
really fails after the job was created. The interrupt is a real one: a helper thread calls
``_thread.interrupt_main()`` once the job is running, exactly like Ctrl-C in a kernel.
"""

from __future__ import annotations

import _thread
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

from bytenite_nb import wire
from bytenite_nb.api.client import Client
from bytenite_nb.api.errors import JobFailedError
from bytenite_nb.local import LocalServer
from bytenite_nb.testing import TestingShell
from tests.integration.magics.conftest import ShellFor
from tests.kit.apps import SLEEPY as SLEEPY_APP
from tests.kit.apps import write_app
from tests.kit.servers import ServerFactory

#: The ``sleepy`` app (one task sleeping ``params.app.seconds``) between passthrough engines.
SLEEPY = "sleepy-template"
UPLOAD_LIMIT = 64


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory,
           tmp_path_factory: pytest.TempPathFactory) -> LocalServer:
    apps = tmp_path_factory.mktemp("magics-wait-apps")
    write_app(apps, "sleepy", SLEEPY_APP)
    return start_module_server(workers=2, apps_dirs=(apps,),
                               config_overrides={"max_upload_bytes": UPLOAD_LIMIT})


@pytest.fixture()
def ip(server: LocalServer, shell_for: ShellFor) -> TestingShell:
    shell = shell_for(server)
    shell.run_cell("%config ByteniteMagics.poll_interval = 0.2")
    return shell


def _interrupt_when_running(ip: TestingShell, client: Client, var: str) -> threading.Thread:
    """Ctrl-C the main thread once the job bound to ``var`` is running on the server."""

    def watch() -> None:
        deadline = time.monotonic() + 120  # a safety net for a broken server, not an assertion
        while time.monotonic() < deadline:
            job = ip.user_ns.get(var)
            if job is not None and client.job(job.id).state.is_running:
                _thread.interrupt_main()
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _wait_terminal(client: Client, job_id: str) -> Any:
    return client.job(job_id).wait(timeout=120)


def test_ctrl_c_while_waiting_aborts_the_job(
    ip: TestingShell, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    thread = _interrupt_when_running(ip, client, "slow")
    with pytest.raises(UsageError) as err:
        ip.run_cell(f"%bytenite run {SLEEPY} --source bypass --param seconds=120 --wait "
                    "--progress-after 0 -o slow")
    thread.join()
    job_id = ip.user_ns["slow"].id
    assert str(err.value).startswith(f"Interrupted: aborted job {job_id} on the server")
    assert "Traceback" not in capsys.readouterr().err
    final = client.job(job_id)
    if not final.state.is_terminal:
        with pytest.raises(JobFailedError):
            _wait_terminal(client, job_id)
        final = client.job(job_id)
    assert final.state is wire.JobState.FAILED
    assert "abort" in (final.error_message or "").lower()


def test_keep_running_leaves_the_job_alone(ip: TestingShell, client: Client) -> None:
    ip.run_cell("%config ByteniteMagics.abort_on_interrupt = True")
    thread = _interrupt_when_running(ip, client, "kept")
    with pytest.raises(UsageError, match="keeps running"):
        ip.run_cell("%%bytenite kept --wait --keep-running --progress-after -1\n"
                    f"templateId: {SLEEPY}\nsource: bypass\nparams: {{seconds: 120}}\n")
    thread.join()
    job = client.job(ip.user_ns["kept"].id)
    assert job.state.is_running
    attached = ip.run_line_magic("bytenite", "attach --last")
    assert attached.id == job.id
    ip.run_line_magic("bytenite", f"abort {job.id}")


def test_config_can_turn_abort_on_interrupt_off(ip: TestingShell, client: Client) -> None:
    ip.run_cell("%config ByteniteMagics.abort_on_interrupt = False")
    ip.run_cell("%config ByteniteMagics.wait = True")
    thread = _interrupt_when_running(ip, client, "cfg")
    with pytest.raises(UsageError, match="keeps running"):
        ip.run_line_magic("bytenite", f"run {SLEEPY} --source bypass --param seconds=120 -o cfg")
    thread.join()
    job_id = ip.user_ns["cfg"].id
    assert client.job(job_id).state.is_running
    client.abort_job(job_id)


def test_no_wait_flag_beats_wait_config(ip: TestingShell, client: Client) -> None:
    ip.run_cell("%config ByteniteMagics.wait = True")
    job = ip.run_line_magic("bytenite", f"run {SLEEPY} --source bypass --param seconds=120 "
                                        "--no-wait")
    assert not job.state.is_terminal  # returned at once: the flag won
    client.abort_job(job.id)


def test_failed_upload_deletes_the_draft(
    ip: TestingShell, client: Client, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (UPLOAD_LIMIT * 4))
    before = {j.id for j in client.jobs()}
    with pytest.raises(UsageError) as err:
        ip.run_line_magic("bytenite", f"run {SLEEPY} --source {big} -o never")
    text = str(err.value)
    assert "was deleted" in text or "was aborted" in text
    assert "never" not in ip.user_ns
    leftovers = [j for j in client.jobs() if j.id not in before]
    assert all(j.state.is_terminal for j in leftovers)  # nothing NEW or running remains
    assert not [j for j in leftovers if j.state is wire.JobState.NEW]


def test_wait_completes_and_shows_progress_text(
    ip: TestingShell, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    job = ip.run_line_magic("bytenite", f"run {SLEEPY} --source bypass --param seconds=0.5 "
                                        "--wait --progress-after 0")
    assert job.state is wire.JobState.COMPLETE
    assert job.id in capsys.readouterr().out  # the progress view named the job


def test_in_place_progress_is_retired_to_a_note_when_the_wait_ends(
    ip: TestingShell, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The updating-HTML display (frontends without widgets); in a terminal shell every update
    # prints, so the last thing printed for the progress view is the closing note.
    monkeypatch.setenv("BYTENITE_DISPLAY", "html")
    job = ip.run_line_magic("bytenite", f"run {SLEEPY} --source bypass --param seconds=0.5 "
                                        "--wait --progress-after 0")
    assert job.state is wire.JobState.COMPLETE
    out = capsys.readouterr().out
    assert "(waited " in out and f"for job {job.id})" in out
