"""`%bytenite local` and auto_local: ByteNite Local as a real background process."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest
from IPython.core.error import UsageError

from bytenite_nb.local import LOG_FILE, find_running
from bytenite_nb.testing import TestingShell


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BYTENITE_CONFIG_FILE", str(tmp_path / "config.toml"))
    monkeypatch.setenv("BYTENITE_LOCAL_DIR", str(tmp_path / "default-local"))
    monkeypatch.delenv("BYTENITE_BASE_URL", raising=False)
    monkeypatch.delenv("BYTENITE_API_KEY", raising=False)
    return tmp_path


@pytest.fixture(autouse=True)
def _release_shells() -> Iterator[None]:
    yield
    from IPython.core.interactiveshell import InteractiveShell

    if isinstance(InteractiveShell._instance, TestingShell):
        InteractiveShell._instance.dispose()


def _shell(env: Path) -> TestingShell:
    shell = TestingShell.create()  # the newest shell is the current IPython until the next
    shell.run_cell(f"%config ByteniteMagics.ledger_path = '{env / 'ledger.jsonl'}'")
    return shell


def test_local_start_reuse_and_stop(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = env / "local-data"
    first = _shell(env)
    first.run_line_magic("bytenite", f"local --data-dir {data_dir} --workers 1 "
                                     "--preload decimal")
    out = capsys.readouterr().out
    assert "ByteNite Local started: http://127.0.0.1:" in out
    assert "(1 worker, preloading decimal)" in (data_dir / LOG_FILE).read_text()
    try:
        url = first.run_line_magic("config", "ByteniteMagics.base_url")
        assert isinstance(first.run_line_magic("bytenite", "templates"), pd.DataFrame)
        job = first.run_line_magic("bytenite", "run hello-world-template --source bypass --wait")
        assert job.state.name == "COMPLETE"

        # A second notebook on the same data dir re-uses the server and cannot stop it alone.
        second = _shell(env)
        second.run_line_magic("bytenite", f"local --data-dir {data_dir}")
        assert "re-used" in capsys.readouterr().out
        assert second.run_line_magic("bytenite", f"status {job.id}").state == "complete"
        second.run_line_magic("bytenite", "local stop")
        assert "keeps running" in capsys.readouterr().out
        assert find_running(data_dir) is not None

        first.run_line_magic("bytenite", "local status")
        assert "started by this session" in capsys.readouterr().out
        info = first.run_line_magic("bytenite", "info")
        assert "%bytenite local" in info.get("server")
        assert url
    finally:
        first.run_line_magic("bytenite", "local stop")
    assert "Stopped ByteNite Local" in capsys.readouterr().out
    assert find_running(data_dir) is None
    assert first.run_line_magic("config", "ByteniteMagics.base_url") == ""
    with pytest.raises(UsageError, match="not using a ByteNite Local"):
        first.run_line_magic("bytenite", "local stop")


def test_auto_local_starts_a_server_when_nothing_is_configured(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shell = _shell(env)
    shell.run_cell(f"%config ByteniteMagics.local_data_dir = '{env / 'auto'}'")
    try:
        templates = shell.run_line_magic("bytenite", "templates")
        assert "hello-world-template" in templates.index
        assert "No server configured, so ByteNite Local was started" in capsys.readouterr().out
    finally:
        shell.run_line_magic("bytenite", "local stop")
    assert find_running(env / "auto") is None


def test_without_a_server_or_key_the_errors_say_what_to_do(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shell = _shell(env)
    shell.run_cell("%config ByteniteMagics.auto_local = False")
    shell.run_cell("%config ByteniteMagics.base_url = 'http://127.0.0.1:9'")
    with pytest.raises(UsageError) as err:
        shell.run_line_magic("bytenite", "jobs")
    assert str(err.value).startswith("MissingCredentialsError: no ByteNite API key found")
    assert str(err.value).endswith("or `%bytenite local` to use ByteNite Local on this machine")
    monkeypatch.setenv("BYTENITE_API_KEY", "some-key-123456")
    with pytest.raises(UsageError) as err:
        shell.run_line_magic("bytenite", "jobs")
    assert str(err.value).startswith("APIConnectionError: ")
    assert "cannot reach http://127.0.0.1:9" in str(err.value)
    assert "some-key-123456" not in str(err.value)


def _status(shell: TestingShell, capsys: pytest.CaptureFixture[str]) -> str:
    shell.run_line_magic("bytenite", "local status")
    return capsys.readouterr().out


def _local(shell: TestingShell) -> Any:
    """The session's ByteNite Local handle (`LocalServer`)."""
    return shell.magics_manager.registry["ByteniteMagics"].connection.local


def _wait_until_stopped(shell: TestingShell, capsys: pytest.CaptureFixture[str]) -> str:
    """Poll `%bytenite local status` (no requests) until it says the server stopped."""
    deadline = time.monotonic() + 60
    while "has stopped by itself" not in (status := _status(shell, capsys)):
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    return status


def test_an_idle_local_server_stops_and_the_next_command_restarts_it(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = env / "idle-data"
    shell = _shell(env)
    shell.run_cell("%config ByteniteMagics.local_idle_timeout = 1")
    shell.run_line_magic("bytenite", f"local --data-dir {data_dir} --workers 1")
    assert "ByteNite Local started: http://127.0.0.1:" in capsys.readouterr().out
    try:
        assert "it stops by itself after 1 s idle" in _status(shell, capsys)
        job = shell.run_line_magic("bytenite", "run hello-world-template --source bypass --wait")
        assert job.state.name == "COMPLETE"
        first = _local(shell)

        # Nobody uses it: its process exits by itself (generous deadline, no timing asserted).
        status = _wait_until_stopped(shell, capsys)
        assert "(idle for 1 s (no requests, no running jobs))" in status
        assert "the next command that needs it" in status
        assert not psutil.pid_exists(first.pid)
        assert find_running(data_dir) is None
        assert not (data_dir / "server.json").exists()
        assert "stopped by itself" in shell.run_line_magic("bytenite", "info").get(
            "ByteNite Local")

        # The next verb that needs the server starts it again, saying so; nothing is lost.
        templates = shell.run_line_magic("bytenite", "templates")
        assert "hello-world-template" in templates.index
        out = capsys.readouterr().out
        assert out.startswith("ByteNite Local had stopped (idle for 1 s (no requests, no "
                              "running jobs)); restarted it on the same data dir"), out
        assert len(out.splitlines()) == 1
        again = _local(shell)
        assert again.pid != first.pid and again.data_dir == first.data_dir
        assert shell.run_line_magic("config", "ByteniteMagics.base_url") == again.base_url
        # (If it went idle again meanwhile, this restarts it once more: nothing fails.)
        assert shell.run_line_magic("bytenite", f"status {job.id}").state == "complete"

        # Stopping a server that already stopped by itself just detaches from it.
        _wait_until_stopped(shell, capsys)
        shell.run_line_magic("bytenite", "local stop")
        assert "had already stopped (idle for 1 s" in capsys.readouterr().out
        assert shell.run_line_magic("config", "ByteniteMagics.base_url") == ""
    finally:
        with contextlib.suppress(UsageError):  # not using one any more: fine
            shell.run_line_magic("bytenite", "local stop")
    assert find_running(data_dir) is None


def test_the_idle_timeout_flag_beats_the_setting(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shell = _shell(env)
    shell.run_cell("%config ByteniteMagics.local_idle_timeout = 1")
    with pytest.raises(UsageError, match="--idle-timeout: expected 0 or more seconds, got '-1'"):
        shell.run_line_magic("bytenite", f"local --data-dir {env / 'never'} --idle-timeout -1")
    assert find_running(env / "never") is None
    shell.run_line_magic("bytenite", f"local --data-dir {env / 'never'} --idle-timeout 0")
    try:
        status = _status(shell, capsys)
        assert "started by this session." in status
        assert "stops by itself" not in status
        assert "--idle-timeout" not in (env / "never" / LOG_FILE).read_text()
    finally:
        shell.run_line_magic("bytenite", "local stop")
