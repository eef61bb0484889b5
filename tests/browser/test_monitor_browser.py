"""The JobMonitor in real JupyterLab: a fake snapshot feed first, then real jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import APPS_KEY, Lab, open_notebook, run_all, save

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
    page.wait_for_selector(".bn-monitor[data-state='running']")  # tasks run: RUNNING
    page.wait_for_selector(".bn-grid-canvas[data-tasks='600']")
    card.screenshot(path=str(shots / "running.png"))
    page.wait_for_selector(".bn-monitor[data-state='complete'][data-tone='success']")
    summary = page.locator(".bn-monitor .bn-summary-text").inner_text()
    assert summary.startswith("COMPLETE")
    assert page.locator(".bn-monitor .bn-abort").is_hidden()
    card.screenshot(path=str(shots / "complete.png"))


JOB_CELLS = [
    "%load_ext bytenite_nb",
    """\
from bytenite_nb import Client
client = Client()  # BYTENITE_BASE_URL / BYTENITE_API_KEY come from the kernel's environment
job = client.submit("sleepy-template", source="bypass", name="browser-live",
                    params={"partitioner": {"chunks": 40}, "app": {"seconds": 0.15}})
job""",
]


def test_job_cell_shows_live_monitor_then_a_saved_outcome(page: Any, lab: Lab,
                                                          shots: Path) -> None:
    name = lab.write_notebook("live.ipynb", JOB_CELLS)
    open_notebook(page, lab, name)
    run_all(page)
    # Live: the anywidget card, updating while tasks run.
    page.wait_for_selector(".bn-monitor[data-stage='tasks']")
    page.wait_for_selector(".bn-grid-canvas[data-tasks='40']")
    page.locator(".bn-monitor").screenshot(path=str(shots / "live.png"))
    # The end: the display is replaced in place by the static outcome (HTML + text).
    final = page.locator(".bn-monitor-static[data-state='complete']")
    final.wait_for()
    assert "COMPLETE" in final.inner_text() and "40/40 tasks done" in final.inner_text()
    final.screenshot(path=str(shots / "complete.png"))
    save(page)
    nb = json.loads((lab.root / name).read_text())
    outputs = nb["cells"][1]["outputs"]
    assert len(outputs) == 1
    data = outputs[0]["data"]
    # A reopened, nbconvert'd or GitHub-rendered notebook shows the outcome, never
    # "model not found": no widget reference is left in the saved output.
    assert "application/vnd.jupyter.widget-view+json" not in data
    assert "".join(data["text/plain"]).startswith("✔ ByteNite job browser-live")
    assert 'data-state="complete"' in "".join(data["text/html"])
    assert APPS_KEY not in (lab.root / name).read_text()


ABORT_CELLS = [
    "%load_ext bytenite_nb",
    """\
from bytenite_nb import Client
job = Client().submit("sleepy-template", source="bypass", name="browser-abort",
                      params={"partitioner": {"chunks": 6}, "app": {"seconds": 120}})
job""",
]


def test_abort_button_stops_a_slow_job(page: Any, lab: Lab, shots: Path) -> None:
    name = lab.write_notebook("abort.ipynb", ABORT_CELLS)
    open_notebook(page, lab, name)
    run_all(page)
    page.wait_for_selector(".bn-monitor[data-stage='tasks']")
    page.wait_for_function(  # the kernel is idle: the cell did not block on the job
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status"
        " === 'idle'")
    page.locator(".bn-monitor").screenshot(path=str(shots / "before-abort.png"))
    page.locator(".bn-monitor .bn-abort").click()
    final = page.locator(".bn-monitor-static[data-state='aborted'][data-tone='neutral']")
    final.wait_for()
    text = final.inner_text()
    assert "ABORTED during tasks" in text and "FAILED" not in text
    final.screenshot(path=str(shots / "aborted.png"))
