"""Coalescing throttle: however fast values arrive, apply at most one every ``interval`` s.

The events stream can deliver thousands of task updates a second; every widget trait change
is a comm message, and IOPub drops output past ~1000 messages/s. A
:class:`Throttle` sits between the feeder and the widget: ``submit`` only records the latest
value; it is applied immediately if the interval has passed (leading edge), otherwise once
when it has (trailing edge, on a timer thread), so the last value is never lost. ``final=True``
applies at once and stops the throttle: end states arrive without delay and nothing stale
can overwrite them afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

_NOTHING = object()


class Throttle(Generic[T]):
    """Apply the latest submitted value at most once per ``interval`` seconds.

    ``apply`` runs on whichever thread calls :meth:`submit` (leading edge and final values)
    or on a short-lived timer thread (trailing edge); calls never overlap.
    """

    def __init__(
        self,
        apply: Callable[[T], None],
        interval: float = 0.1,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._apply = apply
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()  # guards the fields below
        self._apply_lock = threading.Lock()  # serialises apply calls
        self._pending: object = _NOTHING
        self._last_apply = float("-inf")
        self._timer: threading.Timer | None = None
        self._closed = False
        self._applying: int | None = None  # the thread running ``apply`` now, if any
        #: How many times ``apply`` ran (for tests and benchmarks).
        self.applied = 0
        #: How many values were submitted.
        self.submitted = 0

    @property
    def closed(self) -> bool:
        """True once a final value was applied (later submissions are ignored)."""
        return self._closed

    def submit(self, value: T, *, final: bool = False) -> None:
        """Record ``value``; apply it now if allowed, else schedule the trailing update."""
        with self._lock:
            if self._closed:
                return
            self.submitted += 1
            if final:
                self._closed = True
                self._pending = _NOTHING
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                run_now = True
            else:
                wait = self._last_apply + self.interval - self._clock()
                if wait <= 0 and self._timer is None:
                    run_now = True
                    self._pending = _NOTHING
                else:
                    run_now = False
                    self._pending = value
                    if self._timer is None:
                        self._timer = threading.Timer(max(wait, 0.0), self._fire)
                        self._timer.daemon = True
                        self._timer.start()
            if run_now:
                self._last_apply = self._clock()
        if run_now:
            self._run(value, final=final)

    def flush(self) -> None:
        """Apply a pending value now (if any)."""
        with self._lock:
            value, self._pending = self._pending, _NOTHING
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if value is _NOTHING:
                return
            self._last_apply = self._clock()
        self._run(value)  # type: ignore[arg-type]

    def close(self, *, wait: bool = False) -> None:
        """Drop any pending value and stop; later submissions are ignored.

        ``wait=True`` also waits for an ``apply`` already running on another thread, so
        nothing is applied once this returns (from inside ``apply`` it does not wait).
        """
        with self._lock:
            self._closed = True
            self._pending = _NOTHING
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if wait and self._applying != threading.get_ident():
            with self._apply_lock:
                pass

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
            value, self._pending = self._pending, _NOTHING
            if value is _NOTHING or self._closed:
                return
            self._last_apply = self._clock()
        self._run(value)  # type: ignore[arg-type]

    def _run(self, value: T, *, final: bool = False) -> None:
        with self._apply_lock:
            # A trailing value that lost the race against a final one must not overwrite it.
            if self._closed and not final:
                return
            self.applied += 1
            self._applying = threading.get_ident()
            try:
                self._apply(value)
            finally:
                self._applying = None
