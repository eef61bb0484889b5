"""`SubprocessExecutor`: each process started as ``python <script>`` with ``subprocess``.

Slower than the fork server (a fresh interpreter per task costs tens of milliseconds) and
the simplest; also what the fork server's behaviour is compared with in tests and
benchmarks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from bytenite_nb.server.execution.executors.base import (
    POLL,
    OutputCallback,
    ProcessResult,
    ProcessSpec,
    WorkerSlots,
)
from bytenite_nb.server.execution.executors.process import KILL_GRACE, Run, kill_group

__all__ = ["SubprocessExecutor"]


class SubprocessExecutor:
    """Runs each process as ``python <script>`` with ``subprocess`` (slower, simplest)."""

    def __init__(self, workers: int | None = None, *, python: str | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._slots = WorkerSlots(self.workers)
        self.python = python or sys.executable

    def close(self) -> None:
        """Nothing to stop: every process belongs to the run that started it."""

    def run(
        self,
        spec: ProcessSpec,
        on_output: OutputCallback,
        *,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> ProcessResult:
        """Run ``spec`` as a child process; blocks until it ends."""
        waited = self._slots.acquire(cancel, deadline)
        if waited is not None:
            return ProcessResult(None, waited)
        try:
            return self._run(spec, on_output, cancel, timeout, deadline)
        finally:
            self._slots.release()

    def _run(
        self,
        spec: ProcessSpec,
        on_output: OutputCallback,
        cancel: threading.Event | None,
        timeout: float | None,
        deadline: float | None,
    ) -> ProcessResult:
        req = spec.request()
        env = dict(spec.env)
        if spec.path0 is not None and Path(spec.path0) != Path(spec.script).parent:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(spec.path0),
                                                              env.get("PYTHONPATH")]))
        try:
            proc = subprocess.Popen(
                [self.python, str(spec.script), *list(req["argv"])[1:]],  # type: ignore[index]
                cwd=spec.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group, killed as a whole
            )
        except OSError as exc:
            return ProcessResult(None, "error", error=f"cannot start {self.python}: {exc}")
        assert proc.stdout is not None and proc.stderr is not None
        run = Run(on_output, os.dup(proc.stdout.fileno()), os.dup(proc.stderr.fileno()),
                   cancel, timeout, deadline)
        proc.stdout.close()
        proc.stderr.close()
        exit_code: int | None = None
        try:
            while True:
                run.pump(POLL)
                if exit_code is None:
                    exit_code = proc.poll()
                    if exit_code is not None:
                        kill_group(proc.pid)  # stragglers die with the task
                if exit_code is not None and not run.pipes_open:
                    break
                if run.killed_at is None:
                    reason = run.check_limits()
                    if reason is not None:
                        run.outcome, run.killed_at = reason, time.monotonic()
                        kill_group(proc.pid)
                elif time.monotonic() - run.killed_at > KILL_GRACE:
                    break
        finally:
            if proc.poll() is None:
                kill_group(proc.pid)
            exit_code = proc.wait()
            run.close()
        return ProcessResult(
            exit_code=exit_code,
            outcome=run.outcome,
            last_stderr=run.err.last_line,
            pid=proc.pid,
            duration=time.monotonic() - run.started,
        )

