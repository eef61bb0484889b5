"""Starting ByteNite Local servers for tests, each on a fresh data dir, all stopped at the end.

`ServerFactory` is what the ``start_server`` / ``start_module_server`` fixtures hand out (see
``tests/conftest.py``); fixtures of other scopes use it as a context manager.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bytenite_nb.local import LocalServer

#: The API key every server the factory starts accepts (``server.api_key``).
TEST_API_KEY = "test-key-0123456789abcdef"


class ServerFactory:
    """``start(**options)``: a ByteNite Local on 127.0.0.1:<free port> with a fresh data dir,
    stopped (with every other one it started) by `stop_all` or at the end of a ``with``."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._started: list[LocalServer] = []

    def __call__(self, *, data_dir: Path | None = None, in_process: bool = True,
                 **options: Any) -> LocalServer:
        """Start a server; ``options`` are `LocalServer.start`'s (``apps_dirs``, ``workers``,
        ``config_overrides``, ``heartbeat_interval``, ...). Defaults: in this process (a
        child process with ``in_process=False``), API key `TEST_API_KEY`, never a re-used
        server."""
        options.setdefault("api_keys", (TEST_API_KEY,))
        options.setdefault("reuse", False)
        folder = data_dir if data_dir is not None else self._tmp.mktemp("local")
        server = LocalServer.start(folder, port=0, in_process=in_process, **options)
        self._started.append(server)
        return server

    def stop_all(self) -> None:
        """Stop every server started here, newest first (stopping twice is harmless)."""
        while self._started:
            self._started.pop().stop()

    def __enter__(self) -> ServerFactory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
