"""`SubprocessExecutor`: each process started as ``python <script>`` with ``subprocess``.

Slower than the fork server (a fresh interpreter per task costs tens of milliseconds) and
the simplest; also what the fork server's behaviour is compared with in tests and
benchmarks. It honours a spec's interpreter, slots, GPUs, memory limit and ``readonly``
folders as the fork server does: each process that has such folders (``SHARED_CACHE_DIR``)
enters a mount namespace of its own before its program starts, with the folders bind-mounted
read-only there (`zygote.readonly_folders`, the fork server's own mechanism); where that is
not possible the run gets a note saying the folder stays writable.

A cancel or a timeout kills the task with everything it started (`kill_task`); when a task
ends by itself, what it left in its process group is killed, but a process it started in a
session of its own outlives it here (the fork server kills that too: there the task's own
process does it as it ends).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bytenite_nb.server.execution.executors.base import (
    NOTE_STREAM,
    POLL,
    Grant,
    OutputCallback,
    ProcessResult,
    ProcessSpec,
    WorkerSlots,
)
from bytenite_nb.server.execution.executors.process import (
    KILL_GRACE,
    Run,
    kill_group,
    kill_task,
)
from bytenite_nb.server.execution.executors.zygote import (
    prepare_readonly,
    readonly_folders,
    set_child_subreaper,
)

__all__ = ["SubprocessExecutor"]


def _in_child(readonly: list[str], notes_fd: int) -> Callable[[], None]:
    """The ``preexec_fn`` of a task: a child subreaper, with ``readonly`` made read-only in a
    mount namespace of its own (why not, if it cannot be, written to ``notes_fd``, which is
    closed by the exec)."""
    def run() -> None:
        set_child_subreaper()
        if readonly:
            try:
                note = readonly_folders(readonly)
            except Exception as exc:  # told to the run: never a task that cannot start
                note = f"{', '.join(readonly)} stays writable for this task: {exc}"
            if note:
                os.write(notes_fd, note.encode(errors="replace"))
    return run


class SubprocessExecutor:
    """Runs each process as ``python <script>`` with ``subprocess`` (slower, simplest)."""

    def __init__(self, workers: int | None = None, *, python: str | None = None,
                 gpus: tuple[str, ...] = ()) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.slots = WorkerSlots(self.workers, gpus)
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
        grant = self.slots.take(cancel, deadline, cpus=spec.cpus, gpus=spec.gpus)
        if isinstance(grant, str):
            return ProcessResult(None, grant)
        try:
            return self._run(spec, on_output, cancel, timeout, deadline, grant)
        finally:
            self.slots.give_back(grant)

    def _run(
        self,
        spec: ProcessSpec,
        on_output: OutputCallback,
        cancel: threading.Event | None,
        timeout: float | None,
        deadline: float | None,
        grant: Grant,
    ) -> ProcessResult:
        req = spec.request()
        env = dict(grant.environment(spec.env))
        if spec.path0 is not None and Path(spec.path0) != Path(spec.script).parent:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(spec.path0),
                                                              env.get("PYTHONPATH")]))
        program = list(spec.command) or [spec.python or self.python]
        readonly = [str(p) for p in spec.readonly]
        notes_r, notes_w = os.pipe() if readonly else (-1, -1)
        if readonly:
            prepare_readonly()
        try:
            proc = subprocess.Popen(
                [*program, str(spec.script), *list(req["argv"])[1:]],  # type: ignore[index]
                cwd=spec.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group, killed as a whole
                # A child subreaper (set between fork and exec; it survives the exec): what
                # the task starts stays in its process tree, for `kill_task`.
                preexec_fn=_in_child(readonly, notes_w),
                umask=0o077,  # what tasks write in the data dir is the user's alone
            )
        except OSError as exc:
            if readonly:
                os.close(notes_r)
            return ProcessResult(None, "error", error=f"cannot start {program[0]}: {exc}")
        finally:
            if readonly:
                os.close(notes_w)
        if readonly:
            # The child wrote its note (if any) before its exec, which Popen waited for.
            with os.fdopen(notes_r, "rb") as notes:
                note = notes.read().decode(errors="replace")
            if note:
                on_output(NOTE_STREAM, note)
        if spec.memory_limit:
            # Right after the start (an interpreter takes milliseconds to reach the script);
            # preexec_fn would do it before, but is unsafe in a server that runs threads.
            import resource

            with contextlib.suppress(OSError, ValueError):
                resource.prlimit(proc.pid, resource.RLIMIT_AS,
                                 (spec.memory_limit, spec.memory_limit))
        assert proc.stdout is not None and proc.stderr is not None
        run = Run(on_output, os.dup(proc.stdout.fileno()), os.dup(proc.stderr.fileno()),
                  cancel, timeout, deadline, spec.mask, spec.mask_span)
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
                        kill_task(proc.pid)
                elif time.monotonic() - run.killed_at > KILL_GRACE:
                    break
        finally:
            if proc.poll() is None:
                kill_task(proc.pid)
            exit_code = proc.wait()
            run.close()
        return ProcessResult(
            exit_code=exit_code,
            outcome=run.outcome,
            last_stderr=run.err.telling_line,
            pid=proc.pid,
            duration=time.monotonic() - run.started,
        )

