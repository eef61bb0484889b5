"""Fixtures shared by the notebook tests that need real jobs of the test apps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.notebook._apps import write_test_apps

#: The API key of :func:`widget_server`.
WIDGET_KEY = "widget-key-0123456789abcdef"


@pytest.fixture(scope="module")
def widget_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A private ByteNite Local that also serves the test apps (fan-out, slow, failing)."""
    from bytenite_nb.local import LocalServer

    apps = write_test_apps(tmp_path_factory.mktemp("apps"))
    server = LocalServer.start(tmp_path_factory.mktemp("widget-local"), port=0,
                               api_keys=(WIDGET_KEY,), apps_dirs=(apps,), in_process=True,
                               workers=2)
    try:
        yield server
    finally:
        server.stop()
