"""Fixtures shared by the notebook tests that need real jobs of the standard test apps."""

from __future__ import annotations

import pytest

from bytenite_nb.local import LocalServer
from tests.kit.apps import standard_apps
from tests.kit.servers import TEST_API_KEY, ServerFactory

#: The API key of :func:`widget_server`.
WIDGET_KEY = TEST_API_KEY


@pytest.fixture(scope="module")
def widget_server(start_module_server: ServerFactory,
                  tmp_path_factory: pytest.TempPathFactory) -> LocalServer:
    """A private ByteNite Local that also serves the standard test apps (`standard_apps`)."""
    return start_module_server(workers=2,
                               apps_dirs=(standard_apps(tmp_path_factory.mktemp("apps")),))
