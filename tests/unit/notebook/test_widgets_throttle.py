"""Throttle: leading edge, trailing edge, final values."""

from __future__ import annotations

import threading

from bytenite_nb.notebook.widgets.throttle import Throttle


class FakeClock:
    """A manual clock (the throttle's timer still uses real time for the trailing edge)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_leading_edge_then_coalesced_trailing_value() -> None:
    applied: list[int] = []
    done = threading.Event()

    def apply(v: int) -> None:
        applied.append(v)
        if v == 99:
            done.set()

    th: Throttle[int] = Throttle(apply, 0.05)
    for i in range(100):
        th.submit(i)
    assert applied[0] == 0  # the first value is shown at once
    assert done.wait(5)  # the last value arrives on the trailing edge, never lost
    assert applied == [0, 99]
    assert th.submitted == 100


def test_final_applies_immediately_and_closes() -> None:
    applied: list[str] = []
    th: Throttle[str] = Throttle(applied.append, 60.0)
    th.submit("a")
    th.submit("b")  # pending behind a 60 s window
    th.submit("end", final=True)
    assert applied == ["a", "end"]
    th.submit("late")  # nothing after the end state
    th.flush()
    assert applied == ["a", "end"]
    assert th.closed


def test_flush_and_close() -> None:
    applied: list[int] = []
    th: Throttle[int] = Throttle(applied.append, 60.0)
    th.submit(1)
    th.submit(2)
    th.flush()
    assert applied == [1, 2]
    th.submit(3)
    th.close()
    th.flush()
    assert applied == [1, 2]


def test_interval_respected_with_manual_clock() -> None:
    clock = FakeClock()
    applied: list[int] = []
    th: Throttle[int] = Throttle(applied.append, 0.1, clock=clock)
    th.submit(1)
    clock.now = 0.2
    th.flush()  # nothing pending
    th.submit(2)  # window passed and no timer pending: applied at once
    assert applied == [1, 2]
