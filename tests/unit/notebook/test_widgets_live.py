"""Widgets against a real ByteNite Local over loopback: no browser, real jobs, real events.

Waits use generous deadlines only to avoid hanging forever; nothing asserts on timings.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd
import pytest

from bytenite_nb.api.client import Client
from bytenite_nb.notebook.widgets.dashboard import JobsDashboard
from bytenite_nb.notebook.widgets.form import JobForm
from bytenite_nb.notebook.widgets.login import LoginWidget
from bytenite_nb.notebook.widgets.monitor import JobMonitor
from tests.kit.apps import ECHO_TEMPLATE_ID, SLEEPY_SCHEMA, SLEEPY_TEMPLATE_ID
from tests.unit.notebook.conftest import WIDGET_KEY

KEY = WIDGET_KEY


def front_end(widget: Any, content: dict[str, Any]) -> None:
    """Deliver a custom message exactly as the browser's ``model.send(content)`` would."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}},
                        "buffers": []})


def until(check: Callable[[], bool], what: str, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


class Recorder:
    def __init__(self, widget: Any) -> None:
        self.messages: list[dict[str, Any]] = []
        widget.comm.send = lambda data=None, metadata=None, buffers=None: self.messages.append(
            data)


@pytest.fixture()
def client(widget_server: Any) -> Iterator[Client]:
    with Client(api_key=KEY, base_url=widget_server.base_url) as c:
        yield c


def test_monitor_follows_a_real_hello_world_job_to_complete(local_server: Any,
                                                            api_key: str) -> None:
    client = Client(api_key=api_key, base_url=local_server.base_url)
    # Started only once the monitor records its messages: every state change, the end
    # included, then reaches the front end through the recorded comm.
    job = client.submit("hello-world-template", source=b"hello widgets\n",
                        params={"app": {"case": "upper"}}, name="monitor-hello", run=False)
    monitor = JobMonitor(job, watch=False)
    rec = Recorder(monitor)
    monitor.start()
    job.run()
    assert monitor.ended.wait(60), "the job never ended"
    assert monitor.state == "complete" and monitor.stage == "done"
    assert monitor.job_id == job.id and monitor.name == "monitor-hello"
    assert monitor.total == 1 and monitor.done == 1 and monitor.grid == "d"
    assert monitor.started_ms > 0 and monitor.ended_ms >= monitor.started_ms
    assert monitor.summary == repr(monitor).split(": ", 1)[1].splitlines()[0]
    assert any("hello_world_processed.txt" in line for line in monitor.logs)
    updates = [m["state"] for m in rec.messages if m.get("method") == "update"]
    assert updates and updates[-1].get("state") == "complete"
    # The secret never reaches widget state or reprs.
    state = json.dumps(monitor.get_state(), default=str)
    for text in (state, repr(monitor), monitor._repr_html_()):
        assert api_key not in text
    # The Logs button: the full logs as a DataFrame, rendered as a table in the card.
    front_end(monitor, {"type": "logs"})
    custom = [m["content"] for m in rec.messages if m.get("method") == "custom"]
    assert custom[-1]["type"] == "logs" and "<table" in custom[-1]["html"]
    assert isinstance(monitor.logs_frame, pd.DataFrame) and len(monitor.logs_frame) >= 1
    # The Timeline button (once the job has ended): the SVG of job.timeline() in the card.
    front_end(monitor, {"type": "timeline"})
    custom = [m["content"] for m in rec.messages if m.get("method") == "custom"]
    assert custom[-1]["type"] == "timeline" and "<svg" in custom[-1]["html"]
    assert 'class="bn-task bn-complete" data-chunk="0"' in custom[-1]["html"]
    assert custom[-1]["note"].startswith("Task timeline of job monitor-hello: 1 task")
    # What came out, in the card and its reprs.
    assert monitor.outputs.startswith("1 result file (hello_world_processed.txt), 14 B")
    assert "→ 1 result file" in repr(monitor) and "→ 1 result file" in monitor._repr_html_()


def test_abort_button_message_aborts_the_running_job(client: Client) -> None:
    job = client.submit(SLEEPY_TEMPLATE_ID, source="bypass", params={"app": {"seconds": 30}},
                        name="to-abort")
    monitor = JobMonitor(job)
    until(lambda: monitor.running > 0, "tasks to start running")
    assert monitor.abortable and not monitor.abort_requested
    front_end(monitor, {"type": "abort"})  # the Abort button; the cell is not blocked
    assert monitor.ended.wait(60)
    # An abort is not a crash: ABORTED, in a neutral colour, where it stopped.
    assert monitor.state == "aborted" and monitor.stage == "aborted"
    assert monitor.tone == "neutral" and monitor.failed_at == "tasks"
    assert monitor.summary.startswith("ABORTED during tasks")
    assert not monitor.abort_requested and monitor.notice == ""
    assert set(monitor.grid) <= {"d", "f", "c"}  # nothing shown as still running
    # The handle the user holds is live: no refresh() needed.
    assert job.status == "aborted" and job.state.name == "FAILED"


def test_failed_task_shows_error_and_first_failing_task(client: Client) -> None:
    job = client.submit(SLEEPY_TEMPLATE_ID, source="bypass", name="fails",
                        params={"partitioner": {"chunks": 4},
                                "app": {"seconds": 0, "fail_chunk": 2, "message": "bad row"}})
    monitor = JobMonitor(job)
    assert monitor.ended.wait(60)
    assert monitor.state == "failed" and monitor.failed_at == "tasks"
    assert monitor.total == 4 and monitor.failed == 1 and monitor.grid[2] == "f"
    assert monitor.error_message and "bad row" in monitor.task_error
    assert monitor.task_error.startswith("task-2")
    text = repr(monitor)
    assert text.startswith("✘") and "first failing task: task-2" in text


def test_dashboard_pages_filters_acts_and_follows_events(client: Client) -> None:
    done = [client.submit(SLEEPY_TEMPLATE_ID, source="bypass", name=f"dash-{i}",
                          params={"partitioner": {"chunks": 1}, "app": {"seconds": 0}})
            for i in range(3)]
    for job in done:
        job.wait(timeout=60)
    dash = JobsDashboard(client, page_size=2)
    rec = Recorder(dash.table)
    try:
        assert dash.table.total >= 3 and len(dash.table.rows) == 2
        assert "complete" in dash.table.states and SLEEPY_TEMPLATE_ID in dash.table.templates
        assert isinstance(dash.frame, pd.DataFrame) and dash.frame.index.name == "id"
        first_page = {r["id"] for r in dash.table.rows}
        dash.table.page = 1  # as the pager's "next" does through the comm
        assert dash.table.rows and not first_page & {r["id"] for r in dash.table.rows}
        assert list(dash.page_frame().index) == [r["id"] for r in dash.table.rows]
        dash.table.state_filter = "completed"  # an alias reads as its word
        assert all(r["status"] == "complete" for r in dash.table.rows)
        dash.table.template_filter = "hello-world-template"
        dash.table.state_filter = ""
        assert all(r["template_id"] == "hello-world-template" for r in dash.table.rows)
        dash.table.template_filter = ""
        # A job started after the dashboard appears and turns COMPLETE from events alone.
        new = client.submit(SLEEPY_TEMPLATE_ID, source="bypass", name="dash-live",
                            params={"partitioner": {"chunks": 2}, "app": {"seconds": 0.2}})
        dash.table.page_size = 100
        until(lambda: any(r["id"] == new.id and r["status"] == "complete"
                          for r in dash.table.rows), "the new job to show COMPLETE")
        # Row actions from the front end.
        front_end(dash.table, {"type": "action", "action": "logs", "job_id": new.id})
        assert dash.output.outputs and "text/html" in dash.output.outputs[0]["data"]
        front_end(dash.table, {"type": "action", "action": "results", "job_id": new.id})
        assert dash.output.outputs
        front_end(dash.table, {"type": "action", "action": "monitor", "job_id": new.id})
        assert "application/vnd.jupyter.widget-view+json" in dash.output.outputs[0]["data"]
        slow = client.submit(SLEEPY_TEMPLATE_ID, source="bypass", params={"app": {"seconds": 30}})
        until(lambda: slow.refresh().state.is_running, "the slow job to start")
        front_end(dash.table, {"type": "action", "action": "abort", "job_id": slow.id})
        until(lambda: any(r["id"] == slow.id and r["status"] == "aborted"
                          for r in dash.table.rows), "the aborted job to show aborted")
        # Only one page of rows is ever in the synced state.
        assert all(len(m["state"].get("rows", [])) <= 100 for m in rec.messages
                   if m.get("method") == "update")
        assert repr(dash).startswith("JobsDashboard: ")
        assert "<table>" in dash._repr_mimebundle_()["text/html"]
    finally:
        dash.close()


def test_form_with_schema_fields_validates_runs_and_copies_a_cell(client: Client) -> None:
    form = JobForm(client, schemas={SLEEPY_TEMPLATE_ID: {"app": SLEEPY_SCHEMA}})
    form.template.value = SLEEPY_TEMPLATE_ID
    fields = form._fields["app"]
    assert set(fields) == {"seconds", "fail_chunk", "message", "mode", "flaky_chunk",
                           "flaky_dir", "slow_chunk", "slow_seconds"}
    assert fields["seconds"].widget.value == "0.3"  # the template's default
    fields["seconds"].widget.value = "abc"
    assert "must be a number" in fields["seconds"].message.value
    assert form.run_button.disabled
    fields["seconds"].widget.value = "-1"
    assert "minimum" in fields["seconds"].message.value
    assert form.run() is None and "fix first" in form.status.value
    fields["seconds"].widget.value = "0.1"
    fields["mode"].widget.value = "fast"
    assert fields["seconds"].message.value == ""
    form.source_kind.value = "URL"
    form.url.value = "not a url"
    assert form.run_button.disabled and "http" in form.source_message.value
    form.source_kind.value = "bypass"
    form.params_json.value = '{"partitioner": {"chunks": 3}}'
    form.name.value = "from-the-form"
    assert form.validate() == [] and not form.run_button.disabled
    cell = form.cell_text()
    assert cell.startswith("%%bytenite job\n")
    assert "templateId: sleepy-template" in cell and "source: bypass" in cell
    assert "seconds: 0.1" in cell and "chunks: 3" in cell
    # The copy button copies from the browser; the kernel keeps its text current.
    assert form.copy_button.text == cell
    form.run_button.click()
    assert form.job is not None and form.monitor is not None
    assert form.monitor.ended.wait(60) and form.monitor.state == "complete"
    assert form.monitor.total == 3
    assert form.job.refresh().params["app"] == {"seconds": 0.1, "mode": "fast"}


def test_form_refuses_an_unknown_template_naming_the_known_ones(client: Client) -> None:
    with pytest.raises(ValueError, match="no template 'helo-world-template' on this server; "
                                         r"templates: .*hello-world-template"):
        JobForm(client, template="helo-world-template")


def test_form_generates_fields_from_the_servers_schema(client: Client, tmp_path: Path) -> None:
    # no schemas=: ByteNite Local sends them with its templates
    form = JobForm(client, template="hello-world-template")
    assert form.template.value == "hello-world-template"
    assert set(form._fields) == {"app"} and set(form._fields["app"]) == {"case"}
    case = form._fields["app"]["case"]
    assert case.row in form.params_box.children
    assert "upper" in case.widget.placeholder  # the examples of hello-world's schema.json
    assert form.params_json in form.params_box.children  # its passthrough engines: JSON
    case.widget.value = "upper"
    form.source_kind.value = "file upload"
    form.upload.value = ({"name": "notes.txt", "type": "text/plain", "size": 11,
                          "content": memoryview(b"hello form\n"),
                          "last_modified": dt.datetime.now(dt.timezone.utc)},)
    assert form.validate() == [] and not form.run_button.disabled
    assert "case: upper" in form.cell_text()
    job = form.run()
    assert job is not None and form.monitor.ended.wait(60)
    assert form.monitor.state == "complete"
    assert job.refresh().params["app"] == {"case": "upper"}
    [result] = job.download(tmp_path)
    assert result.read_text() == "HELLO FORM\n"


def test_form_falls_back_to_a_json_editor_with_messages(client: Client) -> None:
    form = JobForm(client)
    form.template.value = ECHO_TEMPLATE_ID
    assert form._fields == {}  # echo and passthrough have no schema.json
    assert form.params_json in form.params_box.children
    form.params_json.value = "{oops"
    assert form.run_button.disabled and "params JSON" in form.params_message.value
    form.params_json.value = '{"ap": {}}'
    assert "unknown section" in form.params_message.value
    form.params_json.value = '{"app": {"case": "upper"}}'
    form.source_kind.value = "file upload"
    assert form.run_button.disabled
    form.upload.value = ({"name": "notes.txt", "type": "text/plain", "size": 6,
                          "content": memoryview(b"hello\n"),
                          "last_modified": dt.datetime.now(dt.timezone.utc)},)
    assert not form.run_button.disabled
    assert "save the uploaded file as notes.txt" in form.cell_text()
    job = form.run()
    assert job is not None and form.monitor.ended.wait(60)
    assert form.monitor.state == "complete"
    assert form.job is not None and form.job.refresh().params["app"] == {"case": "upper"}
    assert f"JobForm(template='{ECHO_TEMPLATE_ID}'" in repr(form)


def test_form_cell_runs_through_the_real_magic(client: Client, widget_server: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from bytenite_nb.testing import TestingShell

    monkeypatch.setenv("BYTENITE_BASE_URL", widget_server.base_url)
    monkeypatch.setenv("BYTENITE_API_KEY", KEY)
    form = JobForm(client)
    form.template.value = "hello-world-template"
    form.source_kind.value = "bypass"
    form._fields["app"]["case"].widget.value = "title"  # generated from the server's schema
    ip = TestingShell.create()
    try:
        ip.run_cell(form.cell_text())
        job = ip.user_ns["job"]
    finally:
        ip.dispose()
    assert job.template_id == "hello-world-template"
    assert job.refresh().params["app"] == {"case": "title"}


def test_login_widget_clears_the_key_from_widget_state(widget_server: Any) -> None:
    login = LoginWidget(base_url=widget_server.base_url)
    seen: list[Any] = []
    login.on_login(seen.append)
    login.api_key.value = "wrong-key-000000000000"
    assert login.login() is None
    assert login.api_key.value == "" and "login failed" in login.status.value
    assert "wrong-key-000000000000" not in login.status.value
    login.api_key.value = KEY
    client = login.login()
    assert client is not None and seen == [client] and login.client is client
    assert login.api_key.value == ""
    for text in (json.dumps(login.api_key.get_state()), repr(login), login.status.value,
                 json.dumps(login._repr_mimebundle_(), default=str), repr(client)):
        assert KEY not in text
    assert next(iter(client.templates())).id


def test_no_secret_in_any_widget_state(client: Client) -> None:
    job = client.submit("hello-world-template", source="bypass")
    widgets = [JobMonitor(job), JobsDashboard(client, live=False), JobForm(client)]
    try:
        for widget in widgets:
            assert KEY not in json.dumps(widget.get_state(), default=str)
            assert KEY not in repr(widget)
    finally:
        for widget in widgets:
            widget.close()


def test_form_fields_follow_the_schema_types_with_help_under_them(client: Client,
                                                                 tmp_path: Path) -> None:
    """csv-rows-template: a `where` expression (a $ref to a string) is a text box, `columns`
    (array or object) and `steps` are JSON, `op` and `format` are menus; every field shows
    its schema's description and examples, errors go under the input, labels of a section
    share one width, and the copied cell carries the chosen local file."""
    form = JobForm(client, template="csv-rows-template")
    app, part = form._fields["app"], form._fields["partitioner"]
    kinds = {name: f.kind for name, f in app.items()}
    assert kinds == {"op": "enum", "columns": "json", "where": "string", "n": "integer",
                     "steps": "json", "delimiter": "string"}
    assert isinstance(app["where"].widget, w.Text)
    assert isinstance(app["columns"].widget, w.Textarea)
    assert part["format"].kind == "enum" and part["rows_per_chunk"].widget.value == "1000"
    for field in (*app.values(), *part.values()):
        assert field.doc is not None and field.doc.description
        assert html.escape(field.doc.description) in field.help.value
        assert field.row.children[1].children == (field.widget, field.message, field.help)
    assert "e.g. <code>amount &gt; 100" in app["where"].help.value
    assert "default 1000" in part["rows_per_chunk"].help.value
    widths = {f.label.layout.width for f in part.values()}
    assert len(widths) == 1  # the partitioner's inputs line up
    app["columns"].widget.value = "[oops"
    assert "invalid JSON" in app["columns"].message.value and form.run_button.disabled
    app["columns"].widget.value = ""
    app["op"].widget.value = "filter"
    app["where"].widget.value = "reading > 2"
    data = tmp_path / "readings.csv"
    data.write_text("reading\n1\n2\n3\n4\n")
    form.source_kind.value = "local file"
    form.path.value = str(tmp_path / "missing.csv")
    assert form.run_button.disabled and "no file at" in form.source_message.value
    form.path.value = str(data)
    assert form.validate() == []
    cell = form.copy_button.text
    assert f"source: {data}" in cell and "where: reading > 2" in cell and "op: filter" in cell
    job = form.run()
    assert job is not None and form.monitor.ended.wait(60)
    assert job.load_results(concat=True)["reading"].tolist() == [3, 4]
