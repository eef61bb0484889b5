"""The presenter: one feed per display, one end hook, one outcome in every mode."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher

from bytenite_nb import wire
from bytenite_nb.api.client import Client
from bytenite_nb.api.errors import JobFailedError
from bytenite_nb.api.snapshot import JobSnapshot
from bytenite_nb.notebook import presenter
from bytenite_nb.notebook.feed import JobFeed
from bytenite_nb.testing import TestingShell
from tests.kit.apps import SLEEPY_TEMPLATE_ID
from tests.unit.notebook.conftest import WIDGET_KEY


@pytest.fixture()
def client(widget_server: Any) -> Iterator[Client]:
    with Client(api_key=WIDGET_KEY, base_url=widget_server.base_url) as c:
        yield c


@pytest.fixture()
def shell(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The IPython singleton (``display()`` publishes through it), capturing output."""
    # A TestingShell, disposed at the end: a plain InteractiveShell.instance() would stay the
    # process's IPython, and later tests' shells would publish past it.
    ip = TestingShell.create(load_extension=False)
    monkeypatch.setattr(ip, "display_pub", CapturingDisplayPublisher())
    monkeypatch.delenv("BYTENITE_NONINTERACTIVE", raising=False)
    monkeypatch.delenv("BYTENITE_DISPLAY", raising=False)
    yield ip
    ip.dispose()


def _failed_job(client: Client) -> Any:
    job = client.submit(SLEEPY_TEMPLATE_ID, source="bypass", name="fails-in-task",
                        params={"partitioner": {"chunks": 3},
                                "app": {"seconds": 0, "fail_chunk": 2, "message": "bad row"}})
    with pytest.raises(JobFailedError):
        job.wait(timeout=60)
    return job.refresh()


def test_a_failed_job_ends_with_the_same_outcome_in_every_mode(
    shell: Any, client: Client, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    job = _failed_job(client)
    caplog.set_level(logging.INFO, logger="bytenite_nb.progress")
    outcomes: dict[str, str] = {}
    for mode in ("widget", "html", "text", "log"):
        shell.display_pub.outputs.clear()
        shown = presenter.show_job(job, ip=shell, mode=mode)
        if mode == "text":
            outcomes[mode] = shell.display_pub.outputs[-1]["data"]["text/plain"]
            continue
        assert shown.ended.wait(60)
        if mode == "log":
            outcomes[mode] = [r.getMessage() for r in caplog.records
                              if r.name == "bytenite_nb.progress"][-1]
        else:
            last = shell.display_pub.outputs[-1]
            assert last["update"] and last["transient"]["display_id"] == shown.handle.display_id
            assert 'data-state="failed"' in last["data"]["text/html"]
            outcomes[mode] = last["data"]["text/plain"]
    first = outcomes["widget"]
    assert first.startswith("✘ ByteNite job fails-in-task") and "FAILED during tasks" in first
    assert "first failing task: task-2" in first
    # Every mode tells the same story: each view is drawn from one feed's folded state.
    assert {mode: text.split(" after ")[0] for mode, text in outcomes.items()} == {
        mode: first.split(" after ")[0] for mode in outcomes
    }


def test_wait_in_log_mode_logs_progress_and_returns_the_job(
    widget_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("BYTENITE_CONFIG_FILE", str(tmp_path / "config.toml"))
    monkeypatch.setenv("BYTENITE_API_KEY", WIDGET_KEY)
    monkeypatch.setenv("BYTENITE_NONINTERACTIVE", "1")
    monkeypatch.delenv("BYTENITE_BASE_URL", raising=False)
    caplog.set_level(logging.INFO, logger="bytenite_nb.progress")
    ip = TestingShell.create()
    try:
        ip.run_cell(f"%config ByteniteMagics.base_url = '{widget_server.base_url}'")
        ip.run_cell(f"%config ByteniteMagics.ledger_path = '{tmp_path / 'ledger.jsonl'}'")
        ip.run_cell("%config ByteniteMagics.poll_interval = 0.2")
        # Progress at once, so the wait shows (and then retires) a log-mode progress display.
        job = ip.run_line_magic(
            "bytenite", f"run {SLEEPY_TEMPLATE_ID} --source bypass --param seconds=0.5 "
                        "--params '{\"partitioner\": {\"chunks\": 2}}' --wait --progress-after 0")
    finally:
        ip.dispose()
    assert job.state is wire.JobState.COMPLETE
    lines = [r.getMessage() for r in caplog.records if r.name == "bytenite_nb.progress"]
    assert any(line.startswith("✔ ByteNite job") and job.id in line for line in lines)


def _snapshot(state: wire.JobState, total: int = 0) -> JobSnapshot:
    snap = JobSnapshot("j-1", state=state, tasks_total=total)
    snap.started_at = wire.utcnow()
    if state.is_terminal:
        snap.ended_at = wire.utcnow()
    return snap


def test_a_feed_ends_once_and_late_hooks_hear_at_once() -> None:
    feed = JobFeed(job_id="j-1", name="by hand", interval=0.0)
    seen: list[str] = []
    ends: list[str] = []
    feed.render_with(lambda view: seen.append(view.state))
    feed.on_end(lambda view: ends.append(view.summary))
    feed.submit(_snapshot(wire.JobState.PARTITIONED, total=2))
    final = _snapshot(wire.JobState.COMPLETE, total=2)
    feed.submit(final)
    feed.submit(final)  # a repeated end changes nothing
    assert feed.ended.is_set()
    assert seen == ["running", "complete"]
    assert len(ends) == 1 and ends[0].startswith("COMPLETE")
    late: list[str] = []
    feed.on_end(lambda view: late.append(view.state))
    assert late == ["complete"]


def test_a_closed_feed_renders_nothing_more() -> None:
    feed = JobFeed(job_id="j-1", interval=60.0)
    seen: list[str] = []
    feed.render_with(lambda view: seen.append(view.state))
    feed.submit(_snapshot(wire.JobState.PARTITIONING))  # leading edge: drawn at once
    feed.submit(_snapshot(wire.JobState.PARTITIONED, total=2))  # pending for a minute
    feed.close()
    feed.submit(_snapshot(wire.JobState.COMPLETE, total=2))
    assert seen == ["partitioning"] and not feed.ended.is_set()


def test_a_view_may_close_its_feed_when_the_job_ends() -> None:
    feed = JobFeed(job_id="j-1", interval=0.0)
    feed.on_end(lambda view: feed.close())  # e.g. a monitor closed by its own end callback
    feed.submit(_snapshot(wire.JobState.COMPLETE, total=1))
    assert feed.ended.is_set() and feed.throttle.closed
