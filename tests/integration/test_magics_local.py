"""`%bytenite local` and auto_local: ByteNite Local as a real background process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
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
        assert second.run_line_magic("bytenite", f"status {job.id}").state == "COMPLETE"
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
