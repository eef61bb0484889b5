"""Where app, partitioner and assembler processes run, laid out like httpx's transports:

* `base`: the `Executor` protocol, `ProcessSpec`, `ProcessResult`, `ExecutorError`, the
  environment every task starts from, worker slots;
* `forkserver` (+ `zygote`, the fork server script, and `entry_imports`): the default, each
  task a fork of a warm interpreter;
* `subprocess`: each task a fresh ``python`` (`process` holds the wait loop both share);
* `dask` (+ `dask_remote`, the worker side): app tasks on a ``dask.distributed`` cluster;
* `shared`: process-wide executors for pipelines run without a server; `setup`: the one a
  server's configuration asks for.
"""

from bytenite_nb.server.execution.executors.base import (
    NOTE_STREAM,
    Executor,
    ExecutorError,
    OutputCallback,
    ProcessResult,
    ProcessSpec,
    base_environment,
)
from bytenite_nb.server.execution.executors.forkserver import ForkServerExecutor
from bytenite_nb.server.execution.executors.shared import close_shared_executors, shared_executor
from bytenite_nb.server.execution.executors.subprocess import SubprocessExecutor

__all__ = [
    "NOTE_STREAM",
    "Executor",
    "ExecutorError",
    "ForkServerExecutor",
    "OutputCallback",
    "ProcessResult",
    "ProcessSpec",
    "SubprocessExecutor",
    "base_environment",
    "close_shared_executors",
    "shared_executor",
]
