"""The ``env`` and ``cli`` fixtures of the command-line tests: each module defines the
``server`` they talk to."""

from __future__ import annotations

from pathlib import Path

import pytest

from bytenite_nb.cli import main
from bytenite_nb.local import LocalServer
from tests.kit.cli import Cli, Run
from tests.kit.servers import TEST_API_KEY


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer) -> Path:
    """A scratch working dir; the server's URL and key from the environment, no config file
    of the user's, no running ByteNite Local discovered, an 80-column terminal."""
    monkeypatch.setenv("BYTENITE_CONFIG_FILE", str(tmp_path / "config" / "config.toml"))
    monkeypatch.setenv("BYTENITE_LOCAL_DIR", str(tmp_path / "no-local"))
    monkeypatch.setenv("BYTENITE_BASE_URL", server.base_url)
    monkeypatch.setenv("BYTENITE_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("COLUMNS", "80")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture()
def cli(env: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*argv: str) -> Run:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return Run(code, out, err)
    return run
