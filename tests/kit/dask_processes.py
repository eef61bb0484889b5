"""A Dask cluster started the way users start one: ``dask scheduler`` and ``dask worker`` as
separate processes, from a virtual environment that has ``distributed`` and nothing of ours.

:func:`worker_python` builds that environment once (``python -m venv`` + ``pip install
distributed==<the version this interpreter has>``, from PyPI or the configured index) under the
system's temp folder, keyed on the Python and ``distributed`` versions, and reuses it in later
sessions; ``BYTENITE_TEST_WORKER_PYTHON`` names an existing interpreter instead. Building is
atomic (a staging folder renamed into place), so concurrent sessions never see half of one.

:class:`ProcessCluster` runs a scheduler and workers from it, each in its own process group,
from an empty working folder and with ``PYTHONPATH`` unset: nothing of this checkout is
importable on them.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["ProcessCluster", "free_port", "imports_bytenite_nb", "worker_python"]

_ENV_OVERRIDE = "BYTENITE_TEST_WORKER_PYTHON"


def worker_python() -> Path:
    """The interpreter of an environment with only ``distributed`` (built on first use)."""
    given = os.environ.get(_ENV_OVERRIDE)
    if given:
        return Path(given)
    versions = {name: importlib.metadata.version(name) for name in ("distributed", "cloudpickle")}
    tag = (f"py{sys.version_info.major}{sys.version_info.minor}-distributed-"
           f"{versions['distributed']}-cloudpickle-{versions['cloudpickle']}")
    home = Path(tempfile.gettempdir()) / f"bytenite-nb-tests-{os.getuid()}"
    target = home / f"worker-venv-{tag}"
    python = target / "bin" / "python"
    if (target / ".complete").exists():
        return python
    home.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="building-", dir=home))
    try:
        subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True,
                       capture_output=True)
        # Only what the README tells users to install on workers; the same versions as
        # here, since Dask wants client, scheduler and workers to agree.
        subprocess.run([str(staging / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "--root-user-action=ignore",
                        *(f"{name}=={version}" for name, version in versions.items())],
                       check=True, capture_output=True, env=_clean_env(), timeout=900)
        (staging / ".complete").touch()
        with contextlib.suppress(OSError):  # (another session may have finished first)
            staging.rename(target)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"cannot build the Dask worker environment: {exc}\n"
                           f"{exc.stderr.decode(errors='replace')[-2000:]}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # The venv was built elsewhere and moved: its scripts' shebangs point at the staging
    # folder, so everything is started as ``python -m`` (its interpreter resolves sys.prefix
    # from where it is).
    return python


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith("DASK_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProcessCluster:
    """``dask scheduler`` on 127.0.0.1 and ``workers`` single-threaded ``dask worker``s (with
    their nannies), started from :func:`worker_python` in ``folder``. A context manager."""

    def __init__(self, folder: Path, workers: int = 2, *, port: int | None = None,
                 scheduler_env: dict[str, str] | None = None) -> None:
        self.python = worker_python()
        self.folder = folder
        self.cwd = folder / "cwd"  # empty: nothing importable from the working folder
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self._scheduler_env = scheduler_env or {}
        self._n = 0
        self.start_scheduler()
        for _ in range(workers):
            self.add_worker()
        if workers:
            self.wait_for_workers(workers)

    def _spawn(self, args: list[str], log_name: str,
               extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        env = _clean_env()
        env.update(extra_env or {})
        with open(self.folder / log_name, "ab") as log:
            return subprocess.Popen([str(self.python), "-m", "dask", *args], cwd=self.cwd,
                                    env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True)

    def start_scheduler(self) -> None:
        """Start the scheduler (again) on this cluster's port; returns once it listens."""
        self.scheduler = self._spawn(["scheduler", "--host", "127.0.0.1", "--port",
                                      str(self.port), "--no-dashboard"], "scheduler.log",
                                     self._scheduler_env)
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=1):
                return
            if self.scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Dask scheduler did not start:\n" + self.log("scheduler"))
            time.sleep(0.1)

    def add_worker(self, resources: str | None = None) -> subprocess.Popen[bytes]:
        """Start one more ``dask worker`` (1 thread; ``resources`` as ``--resources`` takes)."""
        self._n += 1
        args = ["worker", self.address, "--nthreads", "1", "--no-dashboard",
                "--name", f"worker-{self._n}",
                "--local-directory", str(self.folder / f"space-{self._n}")]
        if resources:
            args += ["--resources", resources]
        worker = self._spawn(args, f"worker-{self._n}.log")
        self.workers.append(worker)
        return worker

    def wait_for_workers(self, n: int, timeout: float = 120) -> None:
        """Until the scheduler has ``n`` workers (asked with a script run by the workers'
        own interpreter, so this process needs no connection of its own)."""
        probe = ("import sys, distributed\n"
                 "with distributed.Client(sys.argv[1], timeout='30s') as c:\n"
                 "    c.wait_for_workers(int(sys.argv[2]), timeout=float(sys.argv[3]))\n")
        subprocess.run([str(self.python), "-c", probe, self.address, str(n), str(timeout)],
                       cwd=self.cwd, env=_clean_env(), check=True, capture_output=True,
                       timeout=timeout + 30)

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def logs(self) -> str:
        """Every process's log (for assertion messages)."""
        return "\n".join(f"--- {p.stem}\n{self.log(p.stem)}"
                         for p in sorted(self.folder.glob("*.log")))

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes] | None) -> None:
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the worker, its nanny and their children
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)

    def kill_workers(self) -> None:
        """SIGKILL every worker with its nanny (no clean goodbye to the scheduler)."""
        for worker in self.workers:
            self._kill(worker)
        self.workers = []

    def kill_scheduler(self) -> None:
        self._kill(self.scheduler)
        self.scheduler = None

    def close(self) -> None:
        self.kill_workers()
        self.kill_scheduler()

    def __enter__(self) -> ProcessCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def imports_bytenite_nb(python: Path, cwd: Path) -> bool:
    """Whether ``python`` started in ``cwd`` (as the workers are) can import bytenite_nb."""
    code = "import importlib.util; print(int(bool(importlib.util.find_spec('bytenite_nb'))))"
    out = subprocess.run([str(python), "-c", code], cwd=cwd, env=_clean_env(), check=True,
                         capture_output=True, text=True).stdout
    return bool(int(out))
