"""Waiting for things, and finding the processes tasks leave behind.

Deadlines here only keep a broken build from hanging: no test asserts how long anything took.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import psutil


def until(predicate: Callable[[], object], timeout: float = 60.0) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds pass (its last answer).

    Use as ``assert until(lambda: ...), "what did not happen"``.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def unique_marker(what: str) -> str:
    """A command-line marker no other process has: tmp_path names repeat across pytest sessions
    (and other sessions may run at the same time), and a stranger's process with the same
    marker would make a test act (e.g. kill something) before its own task ran."""
    return f"bn-{what}-{uuid.uuid4().hex}"


def gone(pid: int) -> bool:
    """Whether the process ``pid`` has ended (a zombie waiting for its parent counts)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def marked(marker: str) -> list[psutil.Process]:
    """The live processes with ``marker`` in their command line (zombies left out)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(proc.info["cmdline"] or []) and not gone(proc.pid):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found
