"""Shared fixtures: ByteNite Local servers over loopback, and what talks to them.

- ``local_server``: one in-process ByteNite Local for the whole session (the bundled apps
  only); tests that only read or add their own jobs share it.
- ``start_server(**options)`` / ``start_module_server(**options)``: a private server with
  these options (`LocalServer.start`'s: ``apps_dirs``, ``workers``, ``config_overrides``, ...)
  on a fresh data dir, stopped at the end of the test / the module. Tests that manage a
  server's life themselves (restarts, kills, what is left after a stop) call
  `LocalServer.start` and say why.
- ``server``: the server ``api`` and ``client`` talk to: ``local_server`` unless the test
  module defines its own ``server`` fixture (usually from ``start_module_server``).
- ``api``: `tests.kit.loopback.Api` (plain requests) on ``server``; ``client``: our `Client`.
- ``dask_cluster``: a 2-worker ``dask.distributed`` cluster for a module's tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.kit.loopback import Api
from tests.kit.servers import TEST_API_KEY, ServerFactory


@pytest.fixture(scope="session")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A ByteNite Local on 127.0.0.1:<free port>, API key `TEST_API_KEY`, fresh data dir."""
    with ServerFactory(tmp_path_factory) as start:
        yield start()


@pytest.fixture()
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """``start_server(**options)``: a private ByteNite Local, stopped when the test ends."""
    with ServerFactory(tmp_path_factory) as start:
        yield start


@pytest.fixture(scope="module")
def start_module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """``start_module_server(**options)``: a ByteNite Local shared by a module's tests."""
    with ServerFactory(tmp_path_factory) as start:
        yield start


@pytest.fixture(scope="session")
def server(local_server: Any) -> Any:
    """The server ``api`` and ``client`` use; test modules override it with their own."""
    return local_server


@pytest.fixture()
def api(server: Any) -> Api:
    return Api(server.base_url, server.api_key)


@pytest.fixture()
def client(server: Any) -> Iterator[Any]:
    from bytenite_nb.api import Client

    with Client(api_key=server.api_key, base_url=server.base_url) as c:
        yield c


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[Any]:
    """A ``dask.distributed.LocalCluster`` for a module's tests: 2 worker processes, one thread
    each. Skips the test where dask.distributed is not installed."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        yield cluster


@pytest.fixture()
def api_key() -> str:
    return TEST_API_KEY


@pytest.fixture(autouse=True)
def _no_stray_ipython() -> Iterator[None]:
    """Clear an IPython singleton a test left behind without meaning to (ipywidgets'
    ``Output.append_display_data`` makes a plain ``InteractiveShell.instance()`` when none
    exists): it would stay the process's IPython, and a later test's ``TestingShell`` would
    then leave it in place and ``display()`` would publish past that test's shell."""
    from IPython.core.interactiveshell import InteractiveShell

    before = InteractiveShell._instance if InteractiveShell.initialized() else None
    yield
    after = InteractiveShell._instance if InteractiveShell.initialized() else None
    if after is not None and after is not before and type(after) is InteractiveShell:
        InteractiveShell.clear_instance()
