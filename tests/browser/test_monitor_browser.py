"""The JobMonitor in real JupyterLab: a fake snapshot feed first, then real jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Lab, open_notebook, run_all

pytestmark = pytest.mark.browser

FEED_CELLS = [
    """\
import datetime as dt, threading, time, types
from bytenite_nb.notebook.widgets.monitor import JobMonitor
from bytenite_nb.wire import JobState, TaskState
m = JobMonitor(job_id="demo-0001", name="synthetic feed")
m""",
    """\
def feed():
    snap = types.SimpleNamespace(
        state=JobState.PARTITIONING, tasks_total=0, task_states={}, tasks_done=None,
        tasks_failed=None, tasks_running=None, log_tail=[], error_message=None,
        first_task_error=None, started_at=dt.datetime.now(dt.timezone.utc), ended_at=None,
        is_terminal=False)
    m.update(snap); time.sleep(0.5)
    snap.state, snap.tasks_total = JobState.PARTITIONED, 600
    for i in range(600):  # a background thread that only feeds snapshots
        snap.task_states[i] = TaskState.RUNNING
        if i >= 8:
            snap.task_states[i - 8] = TaskState.FAILED if i % 97 == 0 else TaskState.COMPLETE
        snap.log_tail = [f"task-{i}: processed chunk {i}"]
        m.update(snap)
        time.sleep(0.004)
    time.sleep(1.5)
    for i in range(592, 600):
        snap.task_states[i] = TaskState.COMPLETE
    snap.state = JobState.COMPLETE
    snap.ended_at = dt.datetime.now(dt.timezone.utc)
    snap.is_terminal = True
    m.update(snap)
threading.Thread(target=feed, daemon=True).start()""",
]


def test_monitor_renders_a_fake_feed_live(page: Any, lab: Lab, shots: Path) -> None:
    name = lab.write_notebook("feed.ipynb", FEED_CELLS)
    open_notebook(page, lab, name)
    run_all(page)
    card = page.locator(".bn-monitor")
    card.wait_for()
    page.wait_for_selector(".bn-monitor[data-state='PARTITIONED']")
    page.wait_for_selector(".bn-grid-canvas[data-tasks='600']")
    card.screenshot(path=str(shots / "running.png"))
    page.wait_for_selector(".bn-monitor[data-state='COMPLETE'][data-tone='success']")
    summary = page.locator(".bn-monitor .bn-summary").inner_text()
    assert summary.startswith("COMPLETE")
    assert page.locator(".bn-monitor .bn-abort").is_hidden()
    card.screenshot(path=str(shots / "complete.png"))
