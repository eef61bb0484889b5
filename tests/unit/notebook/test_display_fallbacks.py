"""How a Job is displayed: widget + frozen final output, updating HTML, text, log lines."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher

from bytenite_nb.api.client import Client
from bytenite_nb.notebook import presenter as job_display
from bytenite_nb.testing import TestingShell
from tests.kit.processes import until

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture()
def shell(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The IPython singleton (``display()`` always publishes through it), capturing output."""
    # A TestingShell, disposed at the end: a plain InteractiveShell.instance() would stay the
    # process's IPython, and later tests' shells would publish past it.
    ip = TestingShell.create(load_extension=False)
    pub = CapturingDisplayPublisher()
    monkeypatch.setattr(ip, "display_pub", pub)
    monkeypatch.delenv("BYTENITE_NONINTERACTIVE", raising=False)
    monkeypatch.delenv("BYTENITE_DISPLAY", raising=False)
    yield ip
    ip.dispose()


def hello(client: Client, name: str) -> Any:
    return client.submit("hello-world-template", source=b"display me\n", name=name,
                         params={"app": {"case": "upper"}})


def test_display_mode_selection(shell: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert job_display.display_mode(shell) == "text"  # no kernel: terminal IPython
    monkeypatch.setattr(shell, "kernel", object(), raising=False)
    assert job_display.display_mode(shell) == "widget"
    monkeypatch.setenv("BYTENITE_DISPLAY", "html")
    assert job_display.display_mode(shell) == "html"
    monkeypatch.setenv("BYTENITE_NONINTERACTIVE", "1")
    assert job_display.display_mode(shell) == "log"


def test_register_formatters_renders_jobs_through_show_job(shell: Any, client: Client,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    job = hello(client, "formatter")
    job.wait(timeout=60)
    job_display.register_formatters(shell)
    try:
        from IPython.display import display

        display(job)  # text mode outside a kernel
        outputs = shell.display_pub.outputs
        assert len(outputs) == 1
        assert outputs[0]["data"]["text/plain"].startswith("✔ ByteNite job formatter")
        # The last expression of a cell goes through the same formatter.
        format_dict, _ = shell.display_formatter.format(job)
        assert format_dict == {}  # handled (displayed) by our printer, nothing else added
        assert len(outputs) == 2
    finally:
        job_display.unregister_formatters(shell)
    assert shell.display_formatter.format(job)[0]["text/plain"].startswith("<Job")


def test_widget_mode_freezes_to_static_html_when_the_job_ends(shell: Any,
                                                              client: Client) -> None:
    job = hello(client, "widget-mode")
    shown = job_display.show_job(job, ip=shell, mode="widget")
    monitor = shown.monitor
    assert shown.ended.wait(60) and monitor.ended.is_set()
    first, *updates = shell.display_pub.outputs
    display_id = first["transient"]["display_id"]
    assert WIDGET_MIME in first["data"] and "text/html" in first["data"]
    assert first["data"][WIDGET_MIME]["model_id"] == monitor.model_id
    # The end state replaces the widget in place with HTML + text (no "model not found").
    final = updates[-1]
    assert final["update"] and final["transient"]["display_id"] == display_id
    assert set(final["data"]) == {"text/plain", "text/html"}
    assert final["data"]["text/plain"].startswith("✔ ByteNite job widget-mode")
    assert 'data-state="complete"' in final["data"]["text/html"]


def test_html_mode_updates_in_place_until_the_outcome(shell: Any, client: Client) -> None:
    job = hello(client, "html-mode")
    shown = job_display.show_job(job, ip=shell, mode="html")
    assert shown.ended.wait(60)
    outputs = shell.display_pub.outputs
    assert all(o["transient"]["display_id"] == shown.handle.display_id for o in outputs)
    assert not any(WIDGET_MIME in o["data"] for o in outputs)
    assert outputs[-1]["update"]
    assert 'data-state="complete"' in outputs[-1]["data"]["text/html"]
    # Retiring the display stops updates: nothing lands after its note.
    shown.retire("retired")
    count = len(outputs)
    assert outputs[-1]["data"]["text/plain"] == "retired"
    shown.feed.submit(shown.feed.state)  # a late update is dropped
    assert len(outputs) == count


def progress_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bytenite_nb.progress"]


def test_noninteractive_mode_logs_plain_lines(shell: Any, client: Client,
                                              monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("BYTENITE_NONINTERACTIVE", "1")
    caplog.set_level(logging.INFO, logger="bytenite_nb.progress")
    # Shown before it runs, so the log reporter sees a state other than the last one (a
    # hello-world job can finish before its first poll).
    job = client.submit("hello-world-template", source=b"display me\n", name="log-mode",
                        params={"app": {"case": "upper"}}, run=False)
    shown = job_display.show_job(job, ip=shell)
    assert shown.mode == "log" and isinstance(shown.log, job_display.LogReporter)
    assert until(lambda: progress_lines(caplog)), "no progress line for the waiting job"
    job.run()
    assert shown.ended.wait(60)
    assert shell.display_pub.outputs[0]["data"].keys() == {"text/plain"}
    messages = progress_lines(caplog)
    assert messages[-1].startswith("✔ ByteNite job log-mode") and "COMPLETE" in messages[-1]
    assert len(messages) >= 2
    assert not any(WIDGET_MIME in o["data"] for o in shell.display_pub.outputs)


def test_finished_job_record_without_task_states_counts_every_task_done() -> None:
    """A COMPLETE job shown from its record alone (no task events seen) must not claim
    "0/3 tasks done": completion means every task completed."""
    from types import SimpleNamespace

    from bytenite_nb.notebook.widgets._view import render_text, state_from_snapshot
    from bytenite_nb.wire import JobState

    record = SimpleNamespace(state=JobState.COMPLETE, num_chunks=3, started_at=None,
                             ended_at=None, error_message=None)
    text = render_text(state_from_snapshot(record, job_id="j1", name="demo"))
    assert "3/3 tasks done" in text
