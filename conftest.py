"""Root pytest configuration: keep every test run off the user's real ByteNite Local.

Notebooks (run by nbval in their own kernels) call ``%bytenite local``, which would otherwise
start or re-use the user's own ByteNite Local and its data dir; kernels inherit this
process's environment, so pointing ``BYTENITE_LOCAL_DIR`` at a scratch dir isolates them.
"""

from __future__ import annotations

import os
import tempfile

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if "BYTENITE_LOCAL_DIR" not in os.environ:
        os.environ["BYTENITE_LOCAL_DIR"] = tempfile.mkdtemp(prefix="bytenite-test-local-")
