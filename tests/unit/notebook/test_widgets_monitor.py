"""JobMonitor without a browser: traits, comm messages, reprs, JS assets."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from bytenite_nb import wire
from bytenite_nb.api.snapshot import JobSnapshot
from bytenite_nb.notebook.widgets import _assets
from bytenite_nb.notebook.widgets._view import MonitorState, render_html, render_text
from bytenite_nb.notebook.widgets.monitor import JobMonitor
from tests.unit.notebook._feed import job_events

REPO = Path(__file__).resolve().parents[3]


class CommRecorder:
    """Replaces a widget's ``comm.send``: records every message the kernel would send."""

    def __init__(self, widget: Any) -> None:
        self.messages: list[dict[str, Any]] = []
        widget.comm.send = self.send

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.messages.append(data)

    @property
    def updates(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("method") == "update"]


def test_burst_of_5000_events_in_one_second_is_throttled_and_ends_complete() -> None:
    tasks = 2000
    monitor = JobMonitor(job_id="burst", name="burst")
    rec = CommRecorder(monitor)
    snapshot = JobSnapshot("burst")
    events = list(job_events("burst", tasks, 5000))
    assert len(events) >= 5000
    start = time.monotonic()
    for i, event in enumerate(events):
        if snapshot.apply(event):
            monitor.update(snapshot.copy())  # what JobWatcher hands over
        if i % 50 == 49:
            time.sleep(0.01)  # ~5,000 events/s, as a busy stream would deliver them
    elapsed = time.monotonic() - start
    # The terminal snapshot is applied at once, no waiting for the throttle window.
    assert monitor.state == "complete"
    assert monitor.stage == "done"
    assert monitor.done == tasks and monitor.total == tasks and monitor.failed == 0
    assert monitor.grid == "d" * tasks
    assert monitor.summary.startswith("COMPLETE")
    assert monitor.ended.is_set()
    # At most ~10 messages a second, whatever the event rate (+1 leading, +1 final).
    assert len(rec.messages) <= 10 * elapsed + 2, (len(rec.messages), elapsed)
    assert len(rec.messages) >= 2
    assert monitor.throttle.submitted > 100 * len(rec.messages) / 2
    # Each message is one hold_sync batch of several traits, never one trait per message.
    assert max(len(m["state"]) for m in rec.updates) > 3
    # Nothing arrives after the end state (a stale trailing flush would overwrite it).
    count = len(rec.messages)
    time.sleep(0.3)
    assert len(rec.messages) == count


def test_failure_keeps_error_first_task_error_and_where_it_failed() -> None:
    monitor = JobMonitor(job_id="j-fail", name="failing")
    snap = JobSnapshot("j-fail", state=wire.JobState.PARTITIONED, tasks_total=4)
    snap.started_at = wire.utcnow()
    monitor.update(snap.copy())
    snap.task_states = {0: wire.TaskState.COMPLETE, 1: wire.TaskState.FAILED}
    snap.tasks_done, snap.tasks_failed = 1, 1
    snap.first_task_error = "task-1: exit code 3: ValueError: bad chunk"
    snap.error_message = "task task-1 failed after 1 attempt"
    snap.state = wire.JobState.FAILED
    snap.ended_at = wire.utcnow()
    monitor.update(snap.copy())
    assert monitor.state == "failed" and monitor.stage == "failed"
    assert monitor.failed_at == "tasks"
    assert monitor.error_message == "task task-1 failed after 1 attempt"
    assert monitor.task_error.startswith("task-1: exit code 3")
    assert monitor.grid == "dfcc"  # a failed job runs nothing more: unfinished = cancelled
    text = repr(monitor)
    assert text.startswith("✘") and "FAILED during tasks" in text
    assert "first failing task: task-1: exit code 3" in text
    html = monitor._repr_html_()
    assert 'data-state="failed"' in html and "ValueError: bad chunk" in html


def test_a_job_complete_before_its_last_task_events_is_drawn_with_every_task_done() -> None:
    # The job's end reached the view before the last two tasks' COMPLETE events (a stream
    # that fell behind, an end learnt by polling): a COMPLETE job completed every task, and
    # its card, text and outcome say so, never "38/40".
    monitor = JobMonitor(job_id="j-late", name="late events")
    snapshot = JobSnapshot("j-late")
    events = list(job_events("j-late", 40, 0))
    late = [e for e in events if e.name == wire.EVENT_TASK_STATE
            and e.data["chunkNumber"] in (38, 39)]
    for event in events:
        if event not in late and snapshot.apply(event):
            monitor.update(snapshot.copy())
    assert snapshot.is_terminal and snapshot.tasks_done == 38  # what the events brought
    assert monitor.state == "complete" and monitor.ended.is_set()
    assert (monitor.done, monitor.total, monitor.running) == (40, 40, 0)
    assert monitor.grid == "d" * 40
    assert "40/40" in repr(monitor) and "38/40" not in repr(monitor)
    assert "38/40" not in render_html(monitor.view_state)


def test_mimebundle_has_widget_text_and_html() -> None:
    monitor = JobMonitor(job_id="abc", name="hello")
    data, _meta = monitor._repr_mimebundle_()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == monitor.model_id
    assert data["text/plain"].startswith("ByteNite job hello (abc)")
    assert "bn-monitor-static" in data["text/html"]
    assert set(monitor.static_bundle()) == {"text/plain", "text/html"}


def test_logs_request_without_a_job_answers_with_an_error_message() -> None:
    monitor = JobMonitor(job_id="x")
    rec = CommRecorder(monitor)
    # The exact message the front end's Logs button sends, through the widget's comm path.
    monitor._handle_msg(
        {"content": {"data": {"method": "custom", "content": {"type": "logs"}}}, "buffers": []}
    )
    custom = [m for m in rec.messages if m.get("method") == "custom"]
    assert custom == [{"method": "custom",
                       "content": {"type": "error", "message": "no job attached"}}]


def test_render_text_while_running_is_one_line() -> None:
    s = MonitorState(job_id="j", name="n", state="running", stage="tasks", done=5,
                     running=2, total=10, counted=True, started_ms=1.0, elapsed=3.25)
    assert render_text(s) == (
        "ByteNite job n (j) RUNNING Tasks [############............] 5/10 done, "
        "2 running 3.2s"
    )
    html = render_html(s)
    assert "<script" not in html and 'data-stage="tasks"' in html


def test_html_escapes_untrusted_text() -> None:
    s = MonitorState(job_id="j", name="<img src=x onerror=alert(1)>", stage="failed",
                     state="failed", error_message="<b>boom</b>")
    html = render_html(s)
    assert "<img" not in html and "&lt;img" in html and "&lt;b&gt;boom" in html


# -- assets --------------------------------------------------------------------------------


def test_assets_found_in_source_tree_or_package() -> None:
    assert _assets.asset_dir() in (REPO / "js", REPO / "bytenite_nb" / "static")
    esm = _assets.esm_source("monitor.js")
    # Local imports are inlined: anywidget loads the module from a blob: URL.
    assert not re.search(r"""from\s+["']\./""", esm)
    assert "export function viewModel" in esm and "export default" in esm
    assert "http://" not in esm and "https://" not in esm  # no network imports
    assert ".bn-monitor" in _assets.css_source()


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
@pytest.mark.parametrize("name", ["monitor.js", "dashboard.js"])
def test_inlined_modules_parse_as_es_modules(name: str, tmp_path: Path) -> None:
    path = tmp_path / (name.replace(".js", ".mjs"))
    path.write_text(_assets.esm_source(name))
    proc = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_js_unit_tests_pass() -> None:
    """The JS view logic's own tests (``node --test js/tests/``)."""
    proc = subprocess.run(["node", "--test", "js/tests/"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
