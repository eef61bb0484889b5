"""Comm messages and kernel CPU time of the JobMonitor for a 2,000-task job.

A synthetic ``/events`` stream (wire-format events, folded by the client's real
``JobSnapshot`` reducer and copied as ``JobWatcher`` does) is replayed at about 5,000
events/s into:

* ``baseline``    the reducer alone (no widget), to subtract the feed's own cost;
* ``throttled``   ``JobMonitor`` as shipped (at most one message per 0.1 s, ``hold_sync``);
* ``unthrottled`` the same widget with a zero interval: every event becomes a message.

Messages are JSON-encoded as the kernel's session would (bytes counted). Prints absolute
figures and ratios measured in this run; asserts nothing about time.

    .venv/bin/python benchmarks/widget_updates.py [--tasks 2000] [--rate 5000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bytenite_nb.api.snapshot import JobSnapshot
from bytenite_nb.notebook.widgets.monitor import JobMonitor
from tests.unit.notebook._feed import job_events


@dataclass
class Result:
    name: str
    events: int
    messages: int
    bytes: int
    cpu: float
    wall: float
    final_state: str


class Recorder:
    """Stands in for the widget's comm: serialises like the kernel session, counts."""

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.messages += 1
        self.bytes += len(json.dumps(data, separators=(",", ":")))


def replay(name: str, tasks: int, rate: float, interval: float | None) -> Result:
    events = list(job_events(f"bench-{name}", tasks, int(tasks * 2.5)))
    monitor = None
    rec = Recorder()
    if interval is not None:
        monitor = JobMonitor(job_id=f"bench-{name}", name=name, interval=interval)
        monitor.comm.send = rec.send
    snapshot = JobSnapshot(f"bench-{name}")
    batch = max(1, int(rate / 100))  # sleep every `batch` events: ~100 pauses a second
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i, event in enumerate(events):
        if snapshot.apply(event) and monitor is not None:
            monitor.update(snapshot.copy())
        elif monitor is None:
            snapshot.copy()  # the watcher's copy, so the baseline costs the same feed
        if i % batch == batch - 1:
            time.sleep(0.01)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    final = monitor.state if monitor is not None else snapshot.status
    if monitor is not None:
        monitor.close()
    return Result(name, len(events), rec.messages, rec.bytes, cpu, wall, final)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=5000.0, help="events per second")
    args = parser.parse_args(argv)

    base = replay("baseline", args.tasks, args.rate, None)
    thr = replay("throttled", args.tasks, args.rate, 0.1)
    unt = replay("unthrottled", args.tasks, args.rate, 0.0)
    print(f"{args.tasks} tasks, {thr.events} events at ~{args.rate:.0f} events/s")
    print(f"{'run':<12}{'messages':>10}{'msg/s':>9}{'KiB sent':>11}{'CPU s':>9}"
          f"{'widget CPU s':>14}{'wall s':>9}  final")
    for r in (base, thr, unt):
        widget_cpu = max(0.0, r.cpu - base.cpu) if r is not base else 0.0
        print(f"{r.name:<12}{r.messages:>10}{r.messages / r.wall:>9.1f}{r.bytes / 1024:>11.1f}"
              f"{r.cpu:>9.3f}{widget_cpu:>14.3f}{r.wall:>9.2f}  {r.final_state}")
    thr_widget = max(1e-9, thr.cpu - base.cpu)
    unt_widget = max(1e-9, unt.cpu - base.cpu)
    print()
    print(f"messages     unthrottled/throttled = {unt.messages / max(1, thr.messages):8.1f}x")
    print(f"bytes        unthrottled/throttled = {unt.bytes / max(1, thr.bytes):8.1f}x")
    print(f"widget CPU   unthrottled/throttled = {unt_widget / thr_widget:8.1f}x")
    print(f"total CPU    unthrottled/throttled = {unt.cpu / max(1e-9, thr.cpu):8.2f}x")
    ok = thr.final_state == unt.final_state == "complete"
    print(f"final state delivered in both runs: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
