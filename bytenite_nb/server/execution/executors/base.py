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

import collections
import fnmatch
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

__all__ = [
    "NOTE_STREAM",
    "POLL",
    "Executor",
    "ExecutorError",
    "Grant",
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
# server's API keys, stays out, as a container starts from a clean environment); `serve
# --pass-env NAME` adds more. docs/local-server.md lists them.
ENV_KEEP = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP",
     "SHELL", "TERM", "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX", "SYSTEMROOT",
     "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE",
     "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"}
)
ENV_KEEP_PREFIXES = ("LC_", "CUDA_", "NVIDIA_", "OMP_", "MKL_", "OPENBLAS_", "HF_", "XDG_")


def base_environment(pass_env: Iterable[str] = ()) -> dict[str, str]:
    """The part of the server's environment every task gets, plus UTF-8/unbuffered output.

    ``pass_env``: more names to let through, each a name or a glob (``PLAYWRIGHT_*``).
    """
    patterns = tuple(pass_env)
    env = {
        k: v
        for k, v in os.environ.items()
        if k in ENV_KEEP or (k.startswith(ENV_KEEP_PREFIXES) and not k.startswith("BYTENITE"))
        or any(fnmatch.fnmatchcase(k, pattern) for pattern in patterns)
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

    What the process needs, for the executors that run it here:

    * ``python``: the interpreter of a Python entrypoint (an app environment's, see
      `environments`); None: the executor's own (the server's Python);
    * ``command``: for an entrypoint that is not Python, the program that runs it (e.g.
      ``("/usr/bin/node",)``: the process is ``command + [script]``);
    * ``cpus`` worker slots, ``gpus`` GPUs (each GPU process gets ``CUDA_VISIBLE_DEVICES``);
    * ``memory_limit``: bytes of address space (``RLIMIT_AS``), None for no limit;
    * ``readonly``: folders the process may read but not write (``SHARED_CACHE_DIR``);
    * ``mask``: the job's secret masking, applied by a local executor to an output line before
    it cuts it (a line past 64 KiB), so no cut splits a secret into pieces masked apart;
    ``mask_span``: the longest text it replaces. (Every line is masked again by the caller.)
    """

    script: Path
    cwd: Path
    env: Mapping[str, str] = field(repr=False)
    argv: Sequence[str] = ()  # defaults to [script]
    path0: Path | None = None  # sys.path[0]; defaults to the script's folder
    secret_names: tuple[str, ...] = ()
    python: str | None = None
    command: tuple[str, ...] = ()
    cpus: int = 1
    gpus: int = 0
    memory_limit: int | None = None
    readonly: tuple[str, ...] = ()
    mask: Callable[[str], str] | None = field(default=None, repr=False, compare=False)
    mask_span: int = 0

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
    #: What the output says went wrong, when it says it plainly (a missing module, memory
    #: exhausted); set by the pipeline, which reads every line.
    diagnosis: str | None = None

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


@dataclass(frozen=True)
class Grant:
    """What `WorkerSlots.take` gave: ``cpus`` slots and these GPUs (``nvidia-smi`` indices)."""

    cpus: int
    gpus: tuple[str, ...] = ()

    def environment(self, env: Mapping[str, str]) -> Mapping[str, str]:
        """``env`` with ``CUDA_VISIBLE_DEVICES`` naming the granted GPUs (``env`` itself when
        there are none)."""
        if not self.gpus:
            return env
        return {**env, "CUDA_VISIBLE_DEVICES": ",".join(self.gpus)}


class WorkerSlots:
    """``workers`` run slots and a set of GPUs, taken in a way that still notices cancel and
    deadlines.

    A process may take several slots at once (``min_cpu`` of its manifest) and GPUs: the
    waiting ones are served first come, first served, so a process that needs many slots is
    not overtaken for ever by ones that need fewer. A request for more slots than there are
    takes them all (the pipeline has said so in the job's log, or refused the job).
    """

    def __init__(self, workers: int, gpus: Sequence[str] = ()) -> None:
        self.workers = max(1, int(workers))
        self._free = self.workers
        self._gpus = list(gpus)
        #: How many GPUs there are in all (free or taken).
        self.gpus = len(self._gpus)
        self._cond = threading.Condition()
        self._waiting: collections.deque[object] = collections.deque()

    def take(self, cancel: threading.Event | None, deadline: float | None, *, cpus: int = 1,
             gpus: int = 0) -> Grant | Outcome:
        """Wait for ``cpus`` slots and ``gpus`` GPUs; `Grant` when they are yours, else
        ``"cancelled"`` or ``"deadline"`` (and nothing taken) if either comes first."""
        cpus = min(max(1, int(cpus)), self.workers)
        gpus = min(max(0, int(gpus)), self.gpus)
        ticket = object()
        with self._cond:
            self._waiting.append(ticket)
            try:
                while not (self._waiting[0] is ticket and self._free >= cpus
                           and len(self._gpus) >= gpus):
                    if cancel is not None and cancel.is_set():
                        return "cancelled"
                    if deadline is not None and time.monotonic() > deadline:
                        return "deadline"
                    self._cond.wait(POLL)
                self._free -= cpus
                granted = tuple(self._gpus[:gpus])
                del self._gpus[:gpus]
                return Grant(cpus, granted)
            finally:
                self._waiting.remove(ticket)
                self._cond.notify_all()

    def give_back(self, grant: Grant) -> None:
        """Return what `take` granted."""
        with self._cond:
            self._free += grant.cpus
            self._gpus.extend(grant.gpus)
            self._cond.notify_all()

    def acquire(self, cancel: threading.Event | None, deadline: float | None) -> Outcome | None:
        """Wait for one slot; ``"cancelled"`` or ``"deadline"`` (and no slot) if either comes
        first, else None. Give it back with `release`."""
        got = self.take(cancel, deadline)
        return got if isinstance(got, str) else None

    def release(self) -> None:
        """Give one slot (taken with `acquire`) back."""
        self.give_back(Grant(1))
