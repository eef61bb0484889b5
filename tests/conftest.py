"""Shared fixtures: a real ByteNite Local over loopback for integration tests.

`local_server` is one in-process ByteNite Local per test session (fast); tests that need a
private server (restarts, different options) start their own with `LocalServer.start`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

TEST_API_KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="session")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A ByteNite Local on 127.0.0.1:<free port>, API key `TEST_API_KEY`, fresh data dir."""
    from bytenite_nb.local import LocalServer

    data_dir: Path = tmp_path_factory.mktemp("bytenite-local")
    server = LocalServer.start(data_dir, port=0, api_keys=(TEST_API_KEY,), in_process=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def api_key() -> str:
    return TEST_API_KEY
