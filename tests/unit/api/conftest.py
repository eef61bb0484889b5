"""Fixtures for the client's unit tests: isolation from the user's config, a scripted server.

`scripted` is a real HTTP server on loopback whose answers are scripted per request, so the
real transport (urllib3 retries, Retry-After, dropped connections) is exercised, which the
`responses` mock cannot do (it bypasses urllib3's retry sleeps and connection handling).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bytenite_nb.api import _http
from tests.unit.api._scripted import Scripted


@pytest.fixture(autouse=True)
def _isolated_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never read the developer's real config, keyring, env or running ByteNite Local."""
    for name in ("BYTENITE_API_KEY", "BYTENITE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BYTENITE_CONFIG_FILE", str(tmp_path / "cfg" / "config.toml"))
    monkeypatch.setenv("BYTENITE_LOCAL_DIR", str(tmp_path / "no-local"))
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


@pytest.fixture()
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the transport's retry sleeps instead of sleeping (no timing in tests)."""
    recorded: list[float] = []
    monkeypatch.setattr(_http, "_sleep", recorded.append)
    return recorded


@pytest.fixture()
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    try:
        yield server
    finally:
        server.close()
