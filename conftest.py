"""Settings for the whole test session (``tests/`` and the notebooks run by nbval).

App environments (built from app folders' ``requirements.txt``) go to one folder for the
whole session, shared by every ByteNite Local the tests and notebooks start (in-process or
child processes: through ``BYTENITE_LOCAL_ENVS_DIR``), so each requirement set is built once
per session. Tests that must see a build start their server with ``envs_dir`` of their own.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_ENVS = "BYTENITE_LOCAL_ENVS_DIR"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(_ENVS):
        return  # the caller chose (e.g. to keep environments across sessions)
    folder = tempfile.mkdtemp(prefix="bytenite-test-envs-")
    os.environ[_ENVS] = folder
    config.stash[_STASH] = folder


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_STASH, None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(_ENVS, None)


_STASH = pytest.StashKey[str]()
