"""Process-wide executors shared by every pipeline that is not given one (tests, notebooks
running `run_pipeline` directly), closed at interpreter exit."""

from __future__ import annotations

import atexit
import os
import threading

from bytenite_nb.server.execution.executors.base import Executor
from bytenite_nb.server.execution.executors.forkserver import ForkServerExecutor
from bytenite_nb.server.execution.executors.subprocess import SubprocessExecutor

__all__ = ["close_shared_executors", "shared_executor"]

_shared: dict[tuple[str, int], Executor] = {}
_shared_lock = threading.Lock()


def shared_executor(workers: int | None = None, kind: str = "forkserver") -> Executor:
    """A process-wide executor for ``(kind, workers)``, created on first use.

    Jobs that share it share its worker slots, so ``workers`` bounds all of the server's
    concurrent processes. ``kind`` is ``"forkserver"`` (default) or ``"subprocess"``.
    """
    n = max(1, workers or os.cpu_count() or 1)
    with _shared_lock:
        executor = _shared.get((kind, n))
        if executor is None:
            if kind == "forkserver":
                executor = ForkServerExecutor(n)
            elif kind == "subprocess":
                executor = SubprocessExecutor(n)
            else:
                raise ValueError(f"unknown executor kind {kind!r}; use forkserver or subprocess")
            _shared[(kind, n)] = executor
        return executor


def close_shared_executors() -> None:
    """Close every executor :func:`shared_executor` created (they are re-created on demand)."""
    with _shared_lock:
        executors = list(_shared.values())
        _shared.clear()
    for executor in executors:
        executor.close()


atexit.register(close_shared_executors)
