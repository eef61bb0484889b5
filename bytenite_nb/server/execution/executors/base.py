"""What every executor is: the `Executor` protocol and its vocabulary.

An executor runs one `ProcessSpec` (``python <script>`` in a folder with exactly the given
environment) to completion in the calling thread, streaming the process's output lines to an
`OutputCallback`, enforcing a per-process timeout, a job deadline and a cancel event, and
returns a `ProcessResult` saying how it ended. ``workers`` bounds how many processes run at
once across all jobs sharing the executor (`WorkerSlots`). The implementations:
`forkserver.ForkServerExecutor` (the default), `subprocess.SubprocessExecutor` and
`dask.DaskExecutor`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

__all__ = [
    "NOTE_STREAM",
    "POLL",
    "Executor",
    "ExecutorError",
    "Outcome",
    "OutputCallback",
    "ProcessResult",
    "ProcessSpec",
    "WorkerSlots",
    "base_environment",
]

#: Called with ``("stdout" | "stderr", line)`` for each line a process writes, or with
#: ``(NOTE_STREAM, message)`` for a line of the executor's own about the run (e.g. the Dask
#: executor saying that a lost worker's task runs again).
OutputCallback = Callable[[str, str], None]
NOTE_STREAM = "bytenite-local"
Outcome = Literal["exited", "timeout", "deadline", "cancelled", "error"]


#: How often a waiting run checks cancel and deadlines; bounds the cancel latency.
POLL = 0.05

# Variables a task inherits from the server's environment (everything else, such as the
# server's API keys, stays out, as a container starts from a clean environment).
_ENV_KEEP = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP",
     "SHELL", "TERM", "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX", "SYSTEMROOT",
     "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE",
     "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"}
)
_ENV_KEEP_PREFIXES = ("LC_", "CUDA_", "NVIDIA_", "OMP_", "MKL_", "OPENBLAS_", "HF_", "XDG_")


def base_environment() -> dict[str, str]:
    """The part of the server's environment every task gets, plus UTF-8/unbuffered output."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k in _ENV_KEEP or (k.startswith(_ENV_KEEP_PREFIXES) and not k.startswith("BYTENITE"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


class ExecutorError(RuntimeError):
    """The executor itself failed (e.g. its fork server could not start)."""


@dataclass(frozen=True)
class ProcessSpec:
    """One process to run: ``python <script>`` in ``cwd`` with exactly ``env``.

    ``secret_names``: the variables of ``env`` that hold a secret listed in the manifest
    (``<id>``, ``<id>_ACCESS_KEY``, ``<id>_SECRET_KEY``); an executor that runs the process
    elsewhere sends them along with the contract's. ``env`` stays out of the repr.
    """

    script: Path
    cwd: Path
    env: Mapping[str, str] = field(repr=False)
    argv: Sequence[str] = ()  # defaults to [script]
    path0: Path | None = None  # sys.path[0]; defaults to the script's folder
    secret_names: tuple[str, ...] = ()

    def request(self) -> dict[str, object]:
        return {
            "script": str(self.script),
            "argv": list(self.argv) or [str(self.script)],
            "env": dict(self.env),
            "cwd": str(self.cwd),
            "path0": str(self.path0 or Path(self.script).parent),
        }


@dataclass
class ProcessResult:
    """How a process ended.

    ``exit_code`` follows ``subprocess``: negative = killed by that signal, ``None`` = never
    started. ``outcome`` says why it ended: ``exited`` on its own, killed on ``timeout``
    (the per-process limit), past the job ``deadline``, ``cancelled``, or an executor
    ``error`` (see ``error``).
    """

    exit_code: int | None
    outcome: Outcome = "exited"
    last_stderr: str | None = None
    pid: int | None = None
    duration: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "exited" and self.exit_code == 0


class Executor(Protocol):
    """What the pipeline needs from an executor."""

    workers: int

    def run(
        self,
        spec: ProcessSpec,
        on_output: OutputCallback,
        *,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> ProcessResult: ...

    def close(self) -> None: ...


class WorkerSlots:
    """``workers`` run slots, acquired in a way that still notices cancel and deadlines."""

    def __init__(self, workers: int) -> None:
        self._sem = threading.BoundedSemaphore(workers)

    def acquire(self, cancel: threading.Event | None, deadline: float | None) -> Outcome | None:
        """Wait for a slot; ``"cancelled"`` or ``"deadline"`` (and no slot) if either comes
        first, else None."""
        while not self._sem.acquire(timeout=POLL):
            if cancel is not None and cancel.is_set():
                return "cancelled"
            if deadline is not None and time.monotonic() > deadline:
                return "deadline"
        return None

    def release(self) -> None:
        """Give the slot back."""
        self._sem.release()
