"""job.timeline() of a real job with a retried task and a failed one, on a real ByteNite
Local: the server records each attempt, and the SVG shows them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from bytenite_nb.api.client import Client
from bytenite_nb.api.errors import JobFailedError
from tests.kit.apps import SLEEPY_TEMPLATE_ID, standard_apps
from tests.kit.servers import ServerFactory

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return start_module_server(workers=2,
                               apps_dirs=(standard_apps(tmp_path_factory.mktemp("apps")),))


@pytest.fixture(scope="module")
def failed_job(server: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Six chunks: chunk 2 fails its first attempt and passes its retry; chunk 4 fails both
    of its attempts, so the job fails."""
    client = Client(api_key=server.api_key, base_url=server.base_url)
    job = client.submit(SLEEPY_TEMPLATE_ID, source="bypass", name="retry-and-fail",
                        params={"partitioner": {"chunks": 6},
                                "app": {"seconds": 0.1, "flaky_chunk": 2,
                                        "flaky_dir": str(tmp_path_factory.mktemp("flaky")),
                                        "fail_chunk": 4}},
                        config={"maxTaskRetries": 1})
    with pytest.raises(JobFailedError):
        job.wait(timeout=120)
    return job


def test_the_server_records_every_attempt(failed_job: Any) -> None:
    tasks = {t.chunk_number: t for t in failed_job.client.tasks(failed_job.id, attempts=True)}
    flaky = [(h["attempt"], h["state"], h["exitCode"]) for h in tasks[2].attempt_history]
    assert flaky == [(1, "TASK_STATE_RETRYING", 7), (2, "TASK_STATE_COMPLETE", 0)]
    failing = [(h["attempt"], h["state"], h["exitCode"]) for h in tasks[4].attempt_history]
    assert failing == [(1, "TASK_STATE_RETRYING", 3), (2, "TASK_STATE_FAILED", 3)]
    for history in (tasks[2].attempt_history, tasks[4].attempt_history):
        assert all(h["startedAt"] <= h["endedAt"] for h in history)
        assert history[0]["endedAt"] <= history[1]["startedAt"]
    # Without asking, the task list stays as it was (the watcher polls it).
    assert all(t.attempt_history == [] for t in failed_job.client.tasks(failed_job.id))


def test_the_timeline_shows_the_retry_and_the_failure(failed_job: Any) -> None:
    timeline = failed_job.timeline()
    root = ET.fromstring(timeline.to_svg())

    def bars(outcome: str) -> set[tuple[str | None, str | None]]:
        return {(r.get("data-chunk"), r.get("data-attempt")) for r in root.iter(f"{SVG}rect")
                if f"bn-{outcome}" in (r.get("class") or "").split()}

    assert bars("retried") == {("2", "1"), ("4", "1")}
    assert bars("failed") == {("4", "2")}
    assert ("2", "2") in bars("complete")
    titles = [t.text or "" for t in root.iter(f"{SVG}title")]
    assert any(t.startswith("task-4 · attempt 2 · ") and "failed · exit 3" in t for t in titles)
    assert any(t.startswith("task-2 · attempt 1 · ") and "failed, retried · exit 7" in t
               for t in titles)
    phases = {r.get("class") for r in root.iter(f"{SVG}rect")
              if "bn-phase" in (r.get("class") or "")}
    assert {"bn-phase bn-phase-partition", "bn-phase bn-phase-tasks"} <= phases
    frame = timeline.frame()
    chunk4 = frame[frame.chunk == 4]
    assert chunk4["outcome"].tolist() == ["retried", "failed"]
    assert chunk4["exit_code"].tolist() == [3, 3]
    assert timeline.attempts_recorded
    assert "failed, retried" in timeline.summary()


def test_the_finished_outcome_offers_the_timeline(failed_job: Any) -> None:
    from bytenite_nb.notebook.presenter import _settled_view as settled
    from bytenite_nb.notebook.presenter import _timeline_html, outcome_bundle

    view = settled(failed_job)
    bundle = outcome_bundle(view, _timeline_html(failed_job, view))
    assert '<details class="bn-timeline-toggle"' in bundle["text/html"]
    assert 'data-chunk="4" data-attempt="2"' in bundle["text/html"]
    assert bundle["text/plain"].startswith("✘ ByteNite job retry-and-fail")
