"""The wait loop of one local process, shared by the fork server and subprocess executors:
its stdout/stderr pipes decoded into lines, its limits (cancel, job deadline, per-process
timeout) checked, and the task killed with everything it started when one is reached."""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import select
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# (relative and stdlib-only: shipped to Dask workers with the fork server, see dask_remote)
from .base import Outcome, OutputCallback
from .zygote import kill_tree

#: Longest output line passed on; a longer one (or a runaway line without newlines) is cut.
MAX_LINE = 64 * 1024
#: The line a runtime prints when it dies of an exception: ``pkg.module.SomeError: why``,
#: node's ``Error: why``, ``KeyboardInterrupt``.
_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?\w*(?:Error|Exception|Interrupt)\b(?::|$)")
#: How many lines after an exception line may still belong to its message (a message of
#: several lines, such as a framed hint); past that, the exception is no longer the story.
_EXCEPTION_TAIL = 30
#: A line that says something: it has a letter or a digit (a frame of box-drawing characters or
#: a row of dashes does not).
_SAYS_SOMETHING = re.compile(r"[^\W_]")
#: After a kill, how long to wait for the pipes and the exit status before giving up.
KILL_GRACE = 5.0


@dataclass
class _Stream:
    """One pipe of a process: bytes in, whole non-blank lines out to ``on_output``.

    A line longer than `MAX_LINE` (or a runaway one without newlines) is cut into pieces of
    that length. ``mask`` (the job's secret masking, see ``ProcessSpec.mask``) is applied to
    such a line before it is cut, and a runaway line is only cut once ``span - 1`` more
    characters have arrived past the cut: a secret (at most ``span`` characters) across the
    cut is then whole in the text masked, never split into two pieces masked apart.
    """

    name: str
    fd: int
    on_output: OutputCallback
    mask: Callable[[str], str] | None = None
    span: int = 0
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )
    pending: str = ""
    last_line: str | None = None
    exception_line: str | None = None
    since_exception: int = 0
    open: bool = True

    @property
    def telling_line(self) -> str | None:
        """The line that best says why the process failed, for its ``errorMessage``: the
        exception it died of when one was printed near the end (its message may go on for a
        few lines, e.g. a framed hint), else the last line with a letter or digit in it."""
        if self.exception_line is not None and self.since_exception <= _EXCEPTION_TAIL:
            return self.exception_line
        return self.last_line

    def _note(self, line: str) -> None:
        if _EXCEPTION.match(line.strip()):
            self.exception_line, self.since_exception = line, 0
        else:
            self.since_exception += 1
        if _SAYS_SOMETHING.search(line):
            self.last_line = line

    def _cut(self, line: str) -> list[str]:
        if len(line) <= MAX_LINE:
            return [line]
        if self.mask is not None:
            line = self.mask(line)
        return [line[i:i + MAX_LINE] for i in range(0, len(line), MAX_LINE)]

    def feed(self, data: bytes) -> None:
        text = self.pending + self.decoder.decode(data, final=not data)
        lines = text.split("\n")
        self.pending = lines.pop()
        if not data and self.pending:
            lines.append(self.pending)
            self.pending = ""
        pieces = [piece for line in lines for piece in self._cut(line)]
        hold = max(0, self.span - 1)
        while len(self.pending) > MAX_LINE + hold:  # a runaway line without newlines
            if self.mask is not None:
                self.pending = self.mask(self.pending)
                if len(self.pending) <= MAX_LINE + hold:
                    break
            pieces.append(self.pending[:MAX_LINE])
            self.pending = self.pending[MAX_LINE:]
        for line in pieces:
            line = line.rstrip("\r")
            if line.strip():
                self._note(line)
                self.on_output(self.name, line)


def kill_group(pid: int | None) -> None:
    """SIGKILL the process group ``pid`` led (what a task that has ended left in it)."""
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def kill_task(pid: int | None) -> None:
    """SIGKILL a running task ``pid`` and everything it started, also what left its process
    group (`zygote.kill_tree`: the task is a child subreaper, so nothing it started can
    leave its process tree while it runs)."""
    if pid is None:
        return
    with contextlib.suppress(OSError):
        kill_tree(pid)



class Run:
    """The wait loop of one running process: pipes, status, cancel and limits.

    ``select.poll`` rather than a selector: it keeps no kernel object, so a task costs no
    epoll_create/epoll_ctl/close calls, and its registrations are plain dict entries.
    """

    def __init__(
        self,
        on_output: OutputCallback,
        out_fd: int,
        err_fd: int,
        cancel: threading.Event | None,
        timeout: float | None,
        deadline: float | None,
        mask: Callable[[str], str] | None = None,
        span: int = 0,
    ) -> None:
        self.poller = select.poll()
        self.out = _Stream("stdout", out_fd, on_output, mask, span)
        self.err = _Stream("stderr", err_fd, on_output, mask, span)
        self.streams = {out_fd: self.out, err_fd: self.err}
        # The pipes stay blocking: only this loop reads them, and only after poll said so.
        for fd in (out_fd, err_fd):
            self.poller.register(fd, select.POLLIN)
        self.cancel = cancel
        self.started = time.monotonic()
        self.task_deadline = None if timeout is None else self.started + timeout
        self.deadline = deadline
        self.outcome: Outcome = "exited"
        self.killed_at: float | None = None

    def check_limits(self) -> Outcome | None:
        now = time.monotonic()
        if self.cancel is not None and self.cancel.is_set():
            return "cancelled"
        if self.deadline is not None and now > self.deadline:
            return "deadline"
        if self.task_deadline is not None and now > self.task_deadline:
            return "timeout"
        return None

    def pump(self, timeout: float) -> list[tuple[int, int]]:
        """Wait up to ``timeout`` seconds for output; returns the other ready ``(fd, events)``."""
        other = []
        for fd, events in self.poller.poll(timeout * 1000.0):
            stream = self.streams.get(fd)
            if stream is None:
                other.append((fd, events))
                continue
            data = os.read(fd, 65536)
            stream.feed(data)
            if not data:
                stream.open = False
                self.poller.unregister(fd)
        return other

    @property
    def pipes_open(self) -> bool:
        return self.out.open or self.err.open

    def close(self) -> None:
        for stream in (self.out, self.err):
            if stream.open:
                stream.feed(b"")
                stream.open = False
            with contextlib.suppress(OSError):
                os.close(stream.fd)


