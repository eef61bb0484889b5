"""job.timeline(): task attempts as SVG bars, from task records (no server needed here; the
integration test draws a real job with a failure and a retry)."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from bytenite_nb import wire
from bytenite_nb.api.jobs import Job
from bytenite_nb.api.models import TaskInfo
from bytenite_nb.timeline import MAX_CHUNK_ROWS, timeline_of

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
SVG = "{http://www.w3.org/2000/svg}"


def ts(seconds: float) -> str:
    return wire.format_timestamp(T0 + dt.timedelta(seconds=seconds)) or ""


def job_record(chunks: int, end: float, state: str = "JOB_STATE_COMPLETE") -> Job:
    stamps = {"JOB_STATE_STARTED": ts(0), "JOB_STATE_UPLOADING": ts(0.1),
              "JOB_STATE_PARTITIONING": ts(0.2), "JOB_STATE_PARTITIONED": ts(1.0),
              "JOB_STATE_TASKS_COMPLETED": ts(end - 1), "JOB_STATE_COMPLETE": ts(end)}
    if state == "JOB_STATE_FAILED":
        stamps = {k: v for k, v in stamps.items() if "COMPLETE" not in k}
        stamps["JOB_STATE_FAILED"] = ts(end)
    return Job(None, {"id": "job-1", "name": "sweep", "state": state,  # type: ignore[arg-type]
                      "startedAt": ts(0), "endedAt": ts(end), "numChunks": str(chunks),
                      "stateTimestamps": stamps})


def task(chunk: int, start: float, end: float, state: str = "TASK_STATE_COMPLETE",
         exit_code: int | None = 0, history: list[dict[str, Any]] | None = None) -> TaskInfo:
    raw: dict[str, Any] = {"id": wire.task_id(chunk), "chunkNumber": chunk, "state": state,
                           "attempts": len(history) if history else 1, "startedAt": ts(start),
                           "endedAt": ts(end), "exitCode": exit_code, "jobId": "job-1"}
    if history is not None:
        raw["attemptHistory"] = history
    return TaskInfo.from_json(raw)


def attempt(n: int, state: str, start: float, end: float, exit_code: int,
            error: str = "") -> dict[str, Any]:
    return {"attempt": n, "state": state, "startedAt": ts(start), "endedAt": ts(end),
            "exitCode": exit_code, "errorMessage": error}


def svg_tree(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # also proves the markup is well-formed XML


def rects(root: ET.Element, cls: str) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect") if cls in (r.get("class") or "").split()]


def test_a_failure_and_a_retry_are_drawn_with_their_titles() -> None:
    tasks = [
        task(0, 1.0, 2.0, history=[attempt(1, "TASK_STATE_COMPLETE", 1.0, 2.0, 0)]),
        task(1, 1.0, 4.0, history=[
            attempt(1, "TASK_STATE_RETRYING", 1.0, 1.5, 7, "exit code 7"),
            attempt(2, "TASK_STATE_COMPLETE", 2.0, 4.0, 0)]),
        task(2, 2.0, 3.0, state="TASK_STATE_FAILED", exit_code=3, history=[
            attempt(1, "TASK_STATE_RETRYING", 2.0, 2.4, 3, "exit code 3"),
            attempt(2, "TASK_STATE_FAILED", 2.5, 3.0, 3, "exit code 3")]),
    ]
    timeline = timeline_of(job_record(3, 6.0, "JOB_STATE_FAILED"), tasks)
    root = svg_tree(timeline.to_svg())
    retried = rects(root, "bn-retried")
    assert {(r.get("data-chunk"), r.get("data-attempt")) for r in retried} == {
        ("1", "1"), ("2", "1")}
    [failed] = rects(root, "bn-failed")
    assert (failed.get("data-chunk"), failed.get("data-attempt")) == ("2", "2")
    title = failed.find(f"{SVG}title")
    assert title is not None and title.text is not None
    assert title.text.startswith("task-2 · attempt 2 · 0.50 s · failed · exit 3")
    assert "exit code 3" in title.text
    completed = rects(root, "bn-complete")
    assert {(r.get("data-chunk"), r.get("data-attempt")) for r in completed} == {
        ("0", "1"), ("1", "2")}
    # The phases: partition and assemble (and the tasks between them), on the same axis.
    phases = {r.get("class") for r in root.iter(f"{SVG}rect") if "bn-phase" in (r.get("class")
                                                                              or "")}
    assert {"bn-phase bn-phase-partition", "bn-phase bn-phase-tasks",
            "bn-phase bn-phase-upload"} <= phases
    # Axis in seconds from the job's start.
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "seconds from the job's start" in labels and "0" in labels and "6" in labels
    summary = timeline.summary()
    assert "3 tasks, 5 attempts" in summary
    assert "2 completed, 2 failed, retried, 1 failed" in summary
    frame = timeline.frame()
    assert frame["outcome"].tolist() == ["complete", "retried", "complete", "retried", "failed"]
    assert frame.attrs["job_id"] == "job-1"


def test_rows_are_worker_slots_and_no_two_bars_of_a_slot_overlap() -> None:
    tasks = [task(i, 1 + (i // 2) * 1.0, 1 + (i // 2) * 1.0 + 0.9) for i in range(8)]
    timeline = timeline_of(job_record(8, 7.0), tasks)
    assert timeline.row_count == 2 and timeline.labels == ("slot 1", "slot 2")
    for row in range(timeline.row_count):
        bars = sorted((a.start, a.end) for a in timeline.attempts if a.row == row)
        assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(bars))
    by_chunk = timeline_of(job_record(8, 7.0), tasks, rows="chunk")
    assert by_chunk.row_count == 8 and {a.row for a in by_chunk.attempts} == set(range(8))


def test_stragglers_slower_than_twice_the_median_are_marked() -> None:
    tasks = [task(i, 1.0 + i, 2.0 + i) for i in range(6)] + [task(6, 1.0, 4.5)]
    timeline = timeline_of(job_record(7, 9.0), tasks)
    assert [a.chunk for a in timeline.stragglers] == [6]
    root = svg_tree(timeline.to_svg())
    [slow] = rects(root, "bn-straggler")
    assert slow.get("data-chunk") == "6" and slow.get("stroke")
    title = slow.find(f"{SVG}title")
    assert title is not None and "straggler: 3.5× the median 1.00 s" in (title.text or "")
    assert "1 straggler (> 2× the median 1.00 s)" in timeline.summary()


def test_five_thousand_tasks_aggregate_below_a_pixel() -> None:
    tasks = [task(i, 1.0 + (i // 4) * 0.02, 1.0 + (i // 4) * 0.02 + 0.019,
                  state="TASK_STATE_FAILED" if i == 2222 else "TASK_STATE_COMPLETE",
                  exit_code=1 if i == 2222 else 0) for i in range(5000)]
    timeline = timeline_of(job_record(5000, 27.0), tasks)
    markup = timeline.to_svg()
    root = svg_tree(markup)
    shapes = list(root.iter(f"{SVG}rect"))
    assert timeline.row_count == 4
    assert len(shapes) < 4 * 800  # at most one shape per row and pixel, not 5,000 bars
    bins = rects(root, "bn-bin")
    assert sum(int(b.get("data-attempts") or 0) for b in bins) + len(rects(root, "bn-task")) \
        == 5000
    # The failed task is not averaged away: its pixel is drawn as failed.
    assert [b for b in bins if "bn-failed" in (b.get("class") or "")]
    assert len(markup) < 100_000  # neighbouring pixels that read the same are one shape
    chunk_rows = timeline_of(job_record(5000, 27.0), tasks, rows="chunk")
    assert chunk_rows.chunks_per_row == 13 and chunk_rows.row_count == 385 <= MAX_CHUNK_ROWS
    assert chunk_rows.labels[0] == "chunks 0–12" and chunk_rows.labels[-1] == "chunks 4992–4999"


def test_without_recorded_attempts_the_last_one_is_drawn_and_said_so() -> None:
    tasks = [task(0, 1.0, 2.0), task(1, 2.0, 3.0)]
    retried = TaskInfo.from_json({**tasks[1].raw, "attempts": 3})
    timeline = timeline_of(job_record(2, 4.0), [tasks[0], retried])
    [last] = [a for a in timeline.attempts if a.chunk == 1]
    assert last.attempt == 3 and last.unrecorded_before == 2
    assert "after 2 earlier attempts (not recorded)" in last.title()
    assert "earlier attempts of retried tasks were not recorded" in timeline.summary()


def test_html_and_svg_reprs() -> None:
    timeline = timeline_of(job_record(1, 3.0), [task(0, 1.0, 2.0)])
    assert timeline._repr_svg_().startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    html = timeline._repr_html_()
    assert "<svg" in html and "xmlns" not in html and "bn-timeline" in html
    assert re.search(r'width="860"', html)
    with pytest.raises(ValueError, match="rows must be 'slot'"):
        timeline_of(job_record(1, 3.0), [], rows="lanes")  # type: ignore[arg-type]
