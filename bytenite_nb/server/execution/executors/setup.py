"""Which executor runs a server's app tasks, chosen once at start-up from `ServerConfig`.

``executor="local"``: the server's own fork server runs everything (started on the first job).
``executor="dask"``: app tasks go to the ``dask.distributed`` scheduler at ``config.scheduler``;
partitioner and assembler stay on the server, on a fork server of ``config.workers`` slots.
The scheduler is contacted here, at start-up, so a wrong address or a missing extra stops the
server with a clear message instead of failing every job later.
"""

from __future__ import annotations

from typing import Any

from bytenite_nb.server.config import ServerConfig
from bytenite_nb.server.execution.executors.base import Executor, ExecutorError
from bytenite_nb.server.execution.executors.forkserver import ForkServerExecutor

__all__ = ["close_executor", "describe_executor", "open_executor"]

_MISSING_EXTRA = ("--executor dask needs dask.distributed, which is not installed: "
                  "pip install 'bytenite-nb[dask]'")


def _local(config: ServerConfig) -> ForkServerExecutor:
    from bytenite_nb.server.execution.resources import this_machine

    return ForkServerExecutor(config.workers, preload=config.preload,
                              gpus=[gpu.index for gpu in this_machine().gpus])


def open_executor(config: ServerConfig) -> Executor | None:
    """The executor ``config`` asks for, connected now; ``None`` for ``"local"`` (the runner
    starts its fork server on the first job, so a server that runs no job forks nothing).

    Raises `ExecutorError` (message naming the cause and, for an unreachable scheduler, its
    address) when ``dask`` is not installed or the scheduler does not answer within
    ``config.scheduler_timeout`` seconds.
    """
    if config.executor == "local":
        return None
    if not config.scheduler:  # ServerConfig refuses this too; keep the check next to its use
        raise ExecutorError("--executor dask needs --scheduler tcp://HOST:PORT")
    try:
        import distributed  # noqa: F401  (only to tell a missing extra from a bad address)
    except ImportError:
        raise ExecutorError(_MISSING_EXTRA) from None
    from bytenite_nb.server.execution.executors.dask import DaskExecutor

    engines = _local(config)
    try:
        return DaskExecutor(config.scheduler, engine_executor=engines,
                            connect_timeout=config.scheduler_timeout,
                            worker_timeout=config.worker_timeout)
    except BaseException:
        engines.close()
        raise


def close_executor(executor: Executor | None) -> None:
    """Close ``executor`` and, for a Dask executor, the server-side engine executor it was
    given (the Dask executor does not own that one, so it leaves it running)."""
    if executor is None:
        return
    engines = getattr(executor, "engine_executor", None)
    try:
        executor.close()
    finally:
        if engines is not None and engines is not executor:
            engines.close()


def describe_executor(config: ServerConfig, executor: Any = None) -> str:
    """One line for start-up banners and logs, e.g. ``dask at tcp://…:8786 (2 worker threads)``."""
    if config.executor == "dask":
        threads = getattr(executor, "workers", None)
        detail = f" ({threads} task{'s' if threads != 1 else ''} in flight)" if threads else ""
        return f"dask at {config.scheduler}{detail}; partitioner and assembler run here"
    workers = f"{config.workers} worker{'s' if config.workers != 1 else ''}"
    if config.preload:
        workers += ", preloading " + ", ".join(config.preload)
    return f"local fork server ({workers})"
