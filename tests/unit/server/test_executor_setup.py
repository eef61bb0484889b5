"""Choosing the executor at start-up: clear errors for a bad --executor dask set-up."""

from __future__ import annotations

import re
import socket
import sys
from pathlib import Path

import pytest

from bytenite_nb.cli import main
from bytenite_nb.local import LocalServer, ServerStartError
from bytenite_nb.server.config import ServerConfig
from bytenite_nb.server.execution.executors import ExecutorError
from bytenite_nb.server.execution.executors.setup import describe_executor, open_executor


def _closed_port() -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dask_without_scheduler_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"needs the address .* --scheduler tcp://HOST:PORT"):
        ServerConfig(data_dir=tmp_path, executor="dask")
    with pytest.raises(ValueError, match="needs the address"):
        LocalServer.start(tmp_path, executor="dask", in_process=True)
    assert not (tmp_path / "bytenite-local.db").exists()


def test_scheduler_without_dask_executor_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only used with the dask executor"):
        ServerConfig(data_dir=tmp_path, scheduler="tcp://127.0.0.1:8786")


def test_cli_reports_missing_scheduler(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--data-dir", str(tmp_path), "--port", "0", "--executor", "dask"])
    assert code == 2
    assert "--scheduler tcp://HOST:PORT" in capsys.readouterr().err


def test_missing_dask_extra_names_the_install_command(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # what `import` sees without it
    config = ServerConfig(data_dir=tmp_path, executor="dask", scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ExecutorError, match=r"pip install 'bytenite-nb\[dask\]'"):
        open_executor(config)


@pytest.mark.dask
def test_unreachable_scheduler_fails_start_up_with_its_address(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{_closed_port()}"
    message = re.escape(f"cannot reach the Dask scheduler at {address}")
    with pytest.raises(ServerStartError, match=message):
        LocalServer.start(tmp_path / "data", executor="dask", scheduler=address,
                          in_process=True, config_overrides={"scheduler_timeout": 0.5})
    assert not (tmp_path / "data" / "bytenite-local.db").exists()  # nothing was written


@pytest.mark.dask
def test_cli_reports_unreachable_scheduler(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{_closed_port()}"
    code = main(["serve", "--data-dir", str(tmp_path), "--port", "0", "--executor", "dask",
                 "--scheduler", address, "--scheduler-timeout", "0.5"])
    assert code == 1
    err = capsys.readouterr().err
    assert f"cannot reach the Dask scheduler at {address}" in err and "0.5 s" in err


def test_describe_local(tmp_path: Path) -> None:
    assert describe_executor(ServerConfig(data_dir=tmp_path, workers=3)) == \
        "local fork server (3 workers)"
