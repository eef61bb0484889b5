"""Fixtures for the server's unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bytenite_nb.server.execution.executors import ForkServerExecutor, SubprocessExecutor


@pytest.fixture(scope="module", params=["forkserver", "subprocess"])
def executor(request: pytest.FixtureRequest) -> Iterator[object]:
    """Each local executor in turn (2 workers): the pipeline must behave the same on both."""
    ex = ForkServerExecutor(2) if request.param == "forkserver" else SubprocessExecutor(2)
    yield ex
    ex.close()
