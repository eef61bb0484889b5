"""How many output lines a job keeps: ``max_log_lines`` (``serve --max-log-lines``).

A task that prints without end must not fill the disk nor make every ``/logs`` answer huge,
and what matters in a long log is how it began and how it ended. So a job keeps its first
half of ``max_log_lines`` lines and its last half; the lines in between are dropped, and the
first dropped line is replaced by a note (``bytenite-local`` container, WARN) saying how many
went, where they went. Every line still reaches the live ``/events`` stream as it is written;
the trimming (`Store.trim_logs`) keeps the stored lines and their ``job.log`` events, which
a resumed stream replays, within the limit: a running job is trimmed every `BATCH` lines
past it (so at most that many more are held for a while), and once more when it ends.
"""

from __future__ import annotations

import threading
from typing import Any

from bytenite_nb import wire
from bytenite_nb.server.storage.store import Store

__all__ = ["BATCH", "LogCaps"]

#: A running job over its limit is trimmed each time this many more lines came in.
BATCH = 1000


class LogCaps:
    """Counts each job's log lines and trims the jobs that went past ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.head = limit // 2
        self.tail = limit - self.head
        self._lock = threading.Lock()
        self._lines: dict[str, int] = {}
        self._dropped: dict[str, int] = {}

    def counted(self, job_id: str) -> bool:
        """Count one more line of ``job_id``; True when it is time to trim."""
        with self._lock:
            lines = self._lines[job_id] = self._lines.get(job_id, 0) + 1
        over = lines - self.limit
        return over > 0 and over % BATCH == 0

    def trim(self, store: Store, job_id: str, *, final: bool = False) -> None:
        """Trim ``job_id``'s stored lines to the limit (``final``: it ended, forget it)."""
        with self._lock:
            lines = self._lines.pop(job_id, 0) if final else self._lines.get(job_id, 0)
            dropped = self._dropped.pop(job_id, 0) if final else self._dropped.get(job_id, 0)
        if lines <= self.limit:
            return

        def note(count: int) -> str:
            return (f"{count} output lines of this job were dropped here: ByteNite Local keeps "
                    f"the first {self.head} and the last {self.tail} (--max-log-lines "
                    f"{self.limit})")

        def event_note(count: int) -> dict[str, Any]:
            return {"log": note(count), "level": wire.LogLevel.WARN.value,
                    "container": wire.RUNTIME_LOG_CONTAINER}

        dropped = store.trim_logs(job_id, self.head, self.tail, note, event_note, dropped)
        if not final:
            with self._lock:
                if job_id in self._lines:
                    self._dropped[job_id] = dropped
