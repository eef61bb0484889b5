"""`ForkServerExecutor`: every task a fresh fork of a warm, single-threaded interpreter.

Every task runs in a fresh process, as each ran in its own container on ByteNite. Starting an
interpreter per task is slow (tens of ms), so the executor forks each one from a warm
"zygote" interpreter (one per worker slot, see :mod:`.zygote`); the server's own process,
which runs threads (uvicorn, maybe a Jupyter kernel), is never forked. The contract it
fulfils is in :mod:`.base`; the wait loop it shares with the subprocess executor in
:mod:`.process`.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import logging
import os
import queue
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

# Relative imports only, and nothing beyond the standard library: this module also runs on
# Dask workers, shipped there as source with the siblings it imports (see dask_remote).
from . import zygote
from .base import (
    NOTE_STREAM,
    POLL,
    ExecutorError,
    Grant,
    Outcome,
    OutputCallback,
    ProcessResult,
    ProcessSpec,
    WorkerSlots,
    base_environment,
)
from .entry_imports import stdlib_imports
from .process import KILL_GRACE, Run, kill_task

__all__ = ["ForkServerExecutor"]

log = logging.getLogger(__name__)

_ZYGOTE_CHECK = 0.5  # how often a waiting run checks that the fork server is still alive


class _Zygote:
    """One running fork server: its process, socket folder and the environment it got.
    ``python``: the interpreter it runs in (the server's, or an app environment's: the
    zygote script is standard library only, so any Python of the same version runs it)."""

    def __init__(self, preload: Sequence[str], python: str = sys.executable) -> None:
        self.python = python
        self.dir = tempfile.mkdtemp(prefix="bytenite-zygote-")
        self.socket_path = os.path.join(self.dir, "zygote.sock")
        # Requests carry only the differences from this (see zygote's protocol).
        self.env = base_environment()
        #: Modules it has imported or been asked to import (each is asked for once).
        self.imported: set[str] = set(preload)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self.socket_path)
            listener.listen(128)
            self.proc = subprocess.Popen(
                [python, zygote.__file__, str(listener.fileno()), ",".join(preload)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=self.env,
                pass_fds=(listener.fileno(),),
                cwd=self.dir,
                # Its own session: a terminal's Ctrl-C goes to the server, which then closes
                # the zygote cleanly instead of killing tasks behind the runner's back.
                start_new_session=True,
            )
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        finally:
            listener.close()
        assert self.proc.stdout is not None
        #: Readable (at EOF) once the zygote is gone: after "ready" it writes nothing to its
        #: stdout, and no task holds it (fd 1 of a task is the task's own pipe). Every run
        #: polls it, so a dead zygote is noticed at once, without relying on waitpid.
        self.death_fd = self.proc.stdout.fileno()

    def wait_ready(self) -> _Zygote:
        """Wait for the zygote's "ready" (its preloads imported); stops it if it failed.
        Preloads it could not import are in :attr:`preload_failures`."""
        assert self.proc.stdout is not None
        #: ``(module, error)`` for each preload the zygote could not import.
        self.preload_failures: list[tuple[str, str]] = []
        while True:
            line = self.proc.stdout.readline().strip()
            if line == b"ready":
                return self
            if not line.startswith(b"preload-failed "):
                self.stop()
                raise ExecutorError("the fork server failed to start (see the server's stderr)")
            with contextlib.suppress(ValueError, KeyError, TypeError):
                failure = json.loads(line.split(b" ", 1)[1])
                self.preload_failures.append((str(failure["module"]), str(failure["error"])))

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """EOF on its stdin: the zygote kills its tasks and exits (killed if it does not)."""
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class _Channel:
    """A persistent connection to a zygote: one worker slot, one task at a time."""

    def __init__(self, zyg: _Zygote) -> None:
        self.zygote = zyg
        self.buf = b""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(zyg.socket_path)
        except OSError as exc:
            self.sock.close()
            raise ExecutorError(f"cannot reach the fork server: {exc}") from None

    def close(self) -> None:
        """Hang up; the zygote kills this channel's task if one still runs."""
        self.sock.close()


class _Slot:
    """A worker slot: its own zygote and its persistent connection to it, both replaced
    when the zygote dies. Used by one run at a time (whoever took it from the free queue)."""

    def __init__(self, zyg: _Zygote | None) -> None:
        self.zygote = zyg
        self.chan: _Channel | None = None

    def hang_up(self) -> None:
        if self.chan is not None:
            self.chan.close()
            self.chan = None


class _Pool:
    """The slots of one interpreter: each with its zygote, started on first use and reused
    last-in first-out. How many run at once is bounded by the executor's `WorkerSlots`, so a
    pool never holds more slots than the executor has workers."""

    def __init__(self, python: str, first: _Zygote | None = None) -> None:
        self.python = python
        self.slots: list[_Slot] = []
        self.free: queue.LifoQueue[_Slot] = queue.LifoQueue()
        if first is not None:
            self.slots.append(_Slot(first))
            self.free.put(self.slots[0])
        #: Whether a zygote of this pool has said which preloads it could not import.
        self.preloads_reported = first is not None

    def take(self) -> _Slot:
        try:
            return self.free.get_nowait()
        except queue.Empty:
            slot = _Slot(None)
            self.slots.append(slot)
            return slot

    def give_back(self, slot: _Slot) -> None:
        self.free.put(slot)

    def idle(self) -> list[_Slot]:
        """Take every free slot (to close them); `give_back` them afterwards."""
        taken: list[_Slot] = []
        while True:
            try:
                taken.append(self.free.get_nowait())
            except queue.Empty:
                return taken


class ForkServerExecutor:
    """Runs each process as a fresh fork of a warm zygote interpreter (the default).

    ``workers`` bounds concurrent processes (default ``os.cpu_count()``). A zygote imports
    the standard-library modules an app's entrypoint imports before it forks that app's
    first task (see :mod:`.entry_imports`), so later tasks start with them warm;
    ``preload`` names more modules to import up front (e.g. ``"numpy"`` when every app
    uses it). The zygotes are started here, restarted if they die, and stopped by
    :meth:`close` (and at interpreter exit), taking any running task down with them.

    Each worker slot has its own zygote, so forks (whose page-table copy is most of a
    zygote's work) happen in parallel on as many cores, and a zygote's death only affects
    its slot's task. Each costs about ten megabytes (more with preloaded modules), so only
    the first is started here; the others start on their slot's first use, and free slots
    are reused last-in first-out, so a server that runs one task at a time keeps using one
    warm zygote however many workers it has. A slot talks to its zygote over a persistent
    connection: a task costs one request message and its replies, not a connect/accept and
    a socket's set-up and teardown on both sides.

    A process whose spec names another interpreter (``spec.python``: an app environment's)
    runs on zygotes of that interpreter, kept warm the same way, so an app with its own
    environment starts as fast as one without. Slots are counted across interpreters
    (`WorkerSlots`): a process takes ``spec.cpus`` of them and ``spec.gpus`` of ``gpus``
    (GPU indices; each such process gets ``CUDA_VISIBLE_DEVICES``).
    """

    def __init__(self, workers: int | None = None, *, preload: Sequence[str] | None = None,
                 gpus: Sequence[str] = ()) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._preload = tuple(zygote.DEFAULT_PRELOAD if preload is None else preload)
        self._lock = threading.Lock()
        self._closed = False
        self._ids = itertools.count(1)
        self.slots = WorkerSlots(self.workers, gpus)
        first = _Zygote(self._preload).wait_ready()
        _report_preloads(first)
        self._pools: dict[str, _Pool] = {sys.executable: _Pool(sys.executable, first)}
        atexit.register(self.close)  # unregistered by close(), so no closed executor lingers

    @property
    def _slots(self) -> list[_Slot]:
        with self._lock:
            return [slot for pool in self._pools.values() for slot in pool.slots]

    @property
    def zygote_pids(self) -> list[int]:
        """The fork servers' pids (for diagnostics and tests)."""
        return [s.zygote.proc.pid for s in self._slots if s.zygote is not None]

    def interpreter_pids(self, python: str) -> list[int]:
        """The pids of the fork servers running ``python`` (for diagnostics and tests)."""
        with self._lock:
            pool = self._pools.get(python)
            slots = list(pool.slots) if pool is not None else []
        return [s.zygote.proc.pid for s in slots if s.zygote is not None]

    def forget_interpreter(self, python: str) -> None:
        """Stop the idle fork servers of ``python`` (an app environment being removed); a
        later process that asks for it starts new ones."""
        with self._lock:
            pool = self._pools.get(python) if python != sys.executable else None
            if pool is None:
                return
        zygotes = []
        idle = pool.idle()
        for slot in idle:
            slot.hang_up()
            if slot.zygote is not None:
                zygotes.append(slot.zygote)
                slot.zygote = None
            pool.give_back(slot)
        for zyg in zygotes:
            zyg.stop()

    @property
    def zygote_pid(self) -> int | None:
        """The first slot's fork server's pid (for diagnostics and tests)."""
        pids = self.zygote_pids
        return pids[0] if pids else None

    def close(self) -> None:
        """Stop the zygotes (and with them any task still running). Idempotent."""
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
            slots = [slot for pool in pools for slot in pool.slots]
            zygotes = [s.zygote for s in slots if s.zygote is not None]
            for slot in slots:
                slot.zygote = None
        # Hang up the idle slots' connections; busy ones are closed by their runs when they
        # end (the zygotes' exit makes them end at once).
        for pool in pools:
            for slot in pool.idle():
                slot.hang_up()
                pool.give_back(slot)
        for zyg in zygotes:
            zyg.stop()
        atexit.unregister(self.close)

    def __enter__(self) -> ForkServerExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pool(self, python: str | None) -> _Pool:
        python = python or sys.executable
        with self._lock:
            if self._closed:
                raise ExecutorError("the executor is closed")
            pool = self._pools.get(python)
            if pool is None:
                pool = self._pools[python] = _Pool(python)
            return pool

    def _ready(self, slot: _Slot, pool: _Pool) -> _Channel:
        """The slot's connection, starting (or restarting) its zygote and (re)connecting as
        needed."""
        with self._lock:
            if self._closed:
                raise ExecutorError("the executor is closed")
            zyg = slot.zygote
        if zyg is None or not zyg.alive:
            slot.hang_up()
            if zyg is not None:
                zyg.stop()
            try:  # (outside the lock: ~0.1 s)
                fresh = _Zygote(self._preload, pool.python).wait_ready()
            except OSError as exc:
                raise ExecutorError(f"cannot start the fork server ({pool.python}): "
                                    f"{exc}") from None
            if not pool.preloads_reported:
                pool.preloads_reported = True
                _report_preloads(fresh)
            with self._lock:
                if self._closed:  # closed meanwhile: this zygote must not outlive it
                    fresh.stop()
                    raise ExecutorError("the executor is closed")
                slot.zygote = zyg = fresh
        if slot.chan is None or slot.chan.zygote is not zyg:
            slot.hang_up()
            slot.chan = _Channel(zyg)
        return slot.chan

    def run(
        self,
        spec: ProcessSpec,
        on_output: OutputCallback,
        *,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> ProcessResult:
        """Run ``spec`` in a fresh forked process; blocks until it ends. Never raises for the
        process's own failures: they are in the returned :class:`ProcessResult`."""
        try:
            pool = self._pool(spec.python)
        except ExecutorError as exc:
            return ProcessResult(None, "error", error=str(exc))
        grant = self.slots.take(cancel, deadline, cpus=spec.cpus, gpus=spec.gpus)
        if isinstance(grant, str):
            return ProcessResult(None, grant)
        slot = pool.take()
        keep = False
        try:
            chan = self._ready(slot, pool)
            result, keep = self._run(chan, spec, on_output, cancel, timeout, deadline, grant)
            return result
        except ExecutorError as exc:
            return ProcessResult(None, "error", error=str(exc))
        finally:
            if not keep or self._closed:
                slot.hang_up()
            pool.give_back(slot)
            self.slots.give_back(grant)

    def _run(
        self,
        chan: _Channel,
        spec: ProcessSpec,
        on_output: OutputCallback,
        cancel: threading.Event | None,
        timeout: float | None,
        deadline: float | None,
        grant: Grant,
    ) -> tuple[ProcessResult, bool]:
        """One task on ``chan``; returns its result and whether ``chan`` can be used again."""
        task_id = next(self._ids)
        pipes = _send_task(chan, task_id, spec, grant)
        if isinstance(pipes, ProcessResult):
            return pipes, False
        task = _Task(chan, task_id, Run(on_output, *pipes, cancel, timeout, deadline,
                                        spec.mask, spec.mask_span),
                     on_output)
        try:
            task.wait()
        finally:
            task.run.close()
        return task.result(), task.reusable



def _report_preloads(zyg: _Zygote) -> None:
    """Log the preloads a zygote could not import (every zygote of its interpreter would say
    the same, so once per interpreter)."""
    for module, error in zyg.preload_failures:
        log.warning("preload %s: cannot import it in the fork server of %s (%s); each task "
                    "imports it itself", module, zyg.python, error)


def _send_task(chan: _Channel, task_id: int, spec: ProcessSpec,
               grant: Grant) -> tuple[int, int] | ProcessResult:
    """Send the task's request with the write ends of two new pipes (its stdout and stderr);
    returns the read ends, or the failed `ProcessResult` when the zygote cannot be told."""
    zyg = chan.zygote
    base = zyg.env
    env = grant.environment(spec.env)
    request: dict[str, object] = {
        "id": task_id,
        "script": str(spec.script),
        "argv": list(spec.argv) or [str(spec.script)],
        "cwd": str(spec.cwd),
        "path0": str(spec.path0 or Path(spec.script).parent),
        "env": {k: v for k, v in env.items() if base.get(k) != v},
        "unset": [k for k in base if k not in env],
    }
    if spec.command:
        request["exec"] = [*spec.command, str(spec.script), *list(spec.argv)[1:]]
    if spec.memory_limit:
        request["rlimit_as"] = int(spec.memory_limit)
    if spec.readonly:
        request["readonly"] = [str(p) for p in spec.readonly]
    imports = [] if spec.command else [
        m for m in stdlib_imports(spec.script, spec.path0) if m not in zyg.imported]
    if imports:  # the app's first task on this zygote: warm them up for all the others
        request["imports"] = imports
        zyg.imported.update(imports)
    payload = json.dumps(request, separators=(",", ":")).encode() + b"\n"
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        # The fds travel with the first bytes; a stream socket may take only part of them.
        sent = socket.send_fds(chan.sock, [payload[:4096]], [out_w, err_w])
        if sent < len(payload):
            chan.sock.sendall(payload[sent:])
    except OSError as exc:
        for fd in (out_r, err_r):
            os.close(fd)
        return ProcessResult(None, "error",
                             error=f"cannot send the task to the fork server: {exc}")
    finally:
        # The child holds its own copies now; ours must go or the pipes never reach EOF.
        # (Exactly once: a second close could hit a reused fd of another thread.)
        os.close(out_w)
        os.close(err_w)
    return out_r, err_r


class _Task:
    """Waiting for one task sent to a zygote: its output (`Run`), the zygote's reports on the
    channel (pid, then exit status), the zygote's death, and the task's limits."""

    def __init__(self, chan: _Channel, task_id: int, run: Run,
                 on_output: OutputCallback) -> None:
        self.chan = chan
        self.on_output = on_output
        self.zygote = chan.zygote
        self.task_id = task_id
        self.run = run
        run.poller.register(self.zygote.death_fd, select.POLLIN)
        self.next_zygote_check = run.started + _ZYGOTE_CHECK
        self.pid: int | None = None
        self.exit_code: int | None = None
        self.status_known = False
        self.broken = False  # the zygote died or hung up: nothing more comes on the channel
        self.discard = False  # the channel is not to be reused (its state is unsure)
        self.error: str | None = None
        self.watching_sock = False

    @property
    def reusable(self) -> bool:
        """Whether the channel is in a known state for the slot's next task."""
        return self.status_known and not self.broken and not self.discard

    def result(self) -> ProcessResult:
        outcome: Outcome = self.run.outcome
        if self.error is not None and outcome == "exited":
            outcome = "error"
        return ProcessResult(exit_code=self.exit_code, outcome=outcome,
                             last_stderr=self.run.err.telling_line, pid=self.pid,
                             duration=time.monotonic() - self.run.started, error=self.error)

    def wait(self) -> None:
        """Until the exit status is known and the pipes are closed (or a kill's grace ran
        out)."""
        run = self.run
        while not (self.status_known and not run.pipes_open):
            # The connection is read without waking up for it while output still flows
            # (the pid message needs no reaction); it is watched once the pipes closed,
            # when only the exit report is missing.
            died = False
            for fd, events in run.pump(POLL):
                if fd != self.zygote.death_fd:
                    continue
                if events & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                    died = True  # handled below, once the pid it sent has been read
                else:  # it wrote something after "ready": rely on checking its pid
                    run.poller.unregister(fd)
            self.read_channel()
            if died:
                self.zygote_died()
            if not self.status_known and time.monotonic() > self.next_zygote_check:
                # Also by its pid, now and then: the death fd may have been unwatchable,
                # or closed (and its number reused) by a concurrent stop of the zygote.
                self.next_zygote_check = time.monotonic() + _ZYGOTE_CHECK
                if not self.zygote.alive:
                    self.zygote_died()
            if (not run.pipes_open and not self.status_known and not self.watching_sock
                    and not self.broken):
                run.poller.register(self.chan.sock.fileno(), select.POLLIN)
                self.watching_sock = True
            if not self.check_limits():
                break  # something holds the pipes open; stop waiting for it

    def read_channel(self) -> None:
        """Take in whatever the zygote (or the task, for its exit code) wrote so far."""
        chan = self.chan
        while not self.broken:
            try:
                data = chan.sock.recv(65536, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:  # the zygote hung up on this channel: it died or gave up
                self.zygote_died()
                return
            chan.buf += data
            while b"\n" in chan.buf:
                line, chan.buf = chan.buf.split(b"\n", 1)
                self.on_message(line)

    def on_message(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            self.discard = True  # not the zygote's nor the task's
            return
        if msg.get("id", self.task_id) != self.task_id:
            return  # about an earlier task on this channel
        if "note" in msg:  # something the request asked for that the zygote could not do
            self.on_output(NOTE_STREAM, str(msg["note"]))
            return
        self.pid = msg.get("pid", self.pid)
        if self.status_known:
            return  # the first exit report is the outcome
        if "exit" in msg:
            self.exit_code, self.status_known = msg["exit"], True
        elif "signal" in msg:
            self.exit_code, self.status_known = -msg["signal"], True
        elif "error" in msg:
            self.error, self.status_known = msg["error"], True
        elif self.run.killed_at is not None:  # forked after we decided to kill
            kill_task(self.pid)

    def zygote_died(self) -> None:
        self.broken = True
        if not self.status_known:
            kill_task(self.pid)  # its orphaned task must not live on
            self.status_known = True
            self.error = self.error or "the fork server dropped the task"

    def check_limits(self) -> bool:
        """Kill the task when a limit is reached; False once a kill's grace has run out."""
        run = self.run
        if run.killed_at is None:
            reason = run.check_limits()
            if reason is not None:
                run.outcome = reason
                run.killed_at = time.monotonic()
                # Kill the group ourselves if the pid is known; the zygote does it too (and
                # covers a task not yet forked), and it still reports how the task ended.
                kill_task(self.pid)
                try:
                    self.chan.sock.send(b'{"kill": %d}\n' % self.task_id, socket.MSG_DONTWAIT)
                except OSError:  # the hang-up at the end makes the zygote kill it
                    self.discard = True
        elif time.monotonic() - run.killed_at > KILL_GRACE:
            return False
        if self.status_known and run.pipes_open and run.killed_at is None:
            # The task is gone and its group killed; a stray holder of the pipes (e.g. a
            # daemon that left the group) may delay the end by 1 s at most.
            run.killed_at = time.monotonic() - KILL_GRACE + 1.0
        return True
