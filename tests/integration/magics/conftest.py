"""A shell with the magics loaded, pointed at one server, kept off the user's config."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bytenite_nb.testing import TestingShell

ShellFor = Callable[[Any], TestingShell]


@pytest.fixture()
def shell_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ShellFor]:
    """``shell_for(server)``: a TestingShell whose magics use ``server`` and its key, with
    their own config file and ledger, and no ByteNite Local of the user's in sight."""
    shells: list[TestingShell] = []

    def make(server: Any) -> TestingShell:
        monkeypatch.setenv("BYTENITE_CONFIG_FILE", str(tmp_path / "config.toml"))
        monkeypatch.setenv("BYTENITE_LOCAL_DIR", str(tmp_path / "no-local"))
        monkeypatch.delenv("BYTENITE_BASE_URL", raising=False)
        monkeypatch.delenv("BYTENITE_NONINTERACTIVE", raising=False)
        monkeypatch.delenv("BYTENITE_DISPLAY", raising=False)
        monkeypatch.setenv("BYTENITE_API_KEY", server.api_key)
        shell = TestingShell.create()
        shell.run_cell(f"%config ByteniteMagics.base_url = '{server.base_url}'")
        shell.run_cell(f"%config ByteniteMagics.ledger_path = '{tmp_path / 'ledger.jsonl'}'")
        shells.append(shell)
        return shell

    yield make
    for shell in shells:
        if "bytenite" in shell.magics_manager.magics["line"]:
            shell.run_cell("%unload_ext bytenite_nb")
        shell.dispose()
