"""The rate and time-left meter: smoothed like tqdm, silent until a few tasks have finished,
and the same answers as the widget's JS meter (js/tests/rate_cases.json, run by node too)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bytenite_nb.notebook.widgets._rate import RateMeter, format_rate, pace_text

CASES = json.loads((Path(__file__).resolve().parents[3] / "js" / "tests" / "rate_cases.json")
                   .read_text())


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: c["name"])
def test_shared_cases(case: dict[str, Any]) -> None:
    meter = RateMeter(CASES["smoothing"], CASES["min_finished"])
    for t, finished in case["samples"]:
        meter.update(t, finished)
    assert meter.rate == pytest.approx(case["rate"]) if case["rate"] is not None \
        else meter.rate is None
    eta = meter.eta(case["total"], case["at"])
    assert eta == pytest.approx(case["eta"]) if case["eta"] is not None else eta is None
    assert pace_text(meter.rate, eta) == case["text"]


def test_smoothing_is_tqdms_bias_corrected_moving_average() -> None:
    """Four tasks: three a second apart, then one after 0.25 s. tqdm averages dn and dt with
    weight 0.3 on the newest sample and divides by 1 - 0.7**k; the rate is their ratio."""
    meter = RateMeter()
    for t, n in [(0, 0), (1, 1), (2, 2), (3, 3), (3.25, 4)]:
        meter.update(t, n)
    dt = 0.0
    for sample in (1, 1, 1, 0.25):
        dt = 0.3 * sample + 0.7 * dt
    expected = 1 / (dt / (1 - 0.7 ** 4))
    assert meter.rate == pytest.approx(expected)
    assert 1.0 < meter.rate < 4.0  # between the old pace and the last sample's: smoothed


def test_nothing_is_shown_before_a_few_tasks_have_finished() -> None:
    meter = RateMeter()
    meter.update(0.0, 0)
    for t, n in [(1, 1), (2, 2)]:
        meter.update(t, n)
        assert meter.rate is None and meter.eta(10) is None and pace_text(None, None) == ""
    meter.update(3, 3)
    assert meter.rate == pytest.approx(1.0) and meter.eta(10) == pytest.approx(7.0)


def test_rate_reads_as_seconds_per_task_when_slow() -> None:
    assert format_rate(0.5) == "2.0 s/task"
    assert format_rate(2.5) == "2.5 tasks/s" and format_rate(250.0) == "250 tasks/s"
    assert format_rate(None) == format_rate(0.0) == ""


def test_every_view_of_a_running_job_shows_rate_and_time_left(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A feed folds the snapshots of a job whose tasks finish one a second: nothing before
    three have finished, then the rate and time left in the text line and the HTML card, and
    nothing once the job has ended (the outcome says how long it took)."""
    from bytenite_nb.api.snapshot import JobSnapshot
    from bytenite_nb.notebook import feed as feed_module
    from bytenite_nb.notebook.feed import JobFeed
    from bytenite_nb.notebook.widgets._view import render_html, render_text
    from tests.unit.notebook._feed import job_events

    clock = [100.0]
    monkeypatch.setattr(feed_module.time, "monotonic", lambda: clock[0])
    feed = JobFeed(job_id="j-rate", name="paced", interval=0.0)
    snapshot = JobSnapshot("j-rate")
    texts: list[str] = []
    pages: list[str] = []
    for event in job_events("j-rate", tasks=10, total_events=0):
        snapshot.apply(event)
        if event.data.get("state") == "TASK_STATE_COMPLETE":
            clock[0] += 1.0
        feed.submit(snapshot)
        feed.throttle.flush()
        texts.append(render_text(feed.state))
        pages.append(render_html(feed.state))
    running = [t for t in texts if "RUNNING" in t]
    done_3 = next(t for t in running if "3/10 done" in t)
    done_2 = next(t for t in running if "2/10 done" in t)
    assert "tasks/s" not in done_2 and "left" not in done_2
    assert done_3.endswith("1.0 tasks/s · ~7.0s left")
    assert "1.0 tasks/s · ~3.0s left" in next(t for t in running if "7/10 done" in t)
    assert any("7/10 tasks done · 1.0 tasks/s · ~3.0s left" in p for p in pages)
    feed_state = feed.state
    assert feed_state.terminal and "tasks/s" not in texts[-1]
    assert "tasks/s" not in render_html(feed_state)


def test_log_lines_carry_rate_and_time_left(caplog: pytest.LogCaptureFixture) -> None:
    """The non-interactive fallback (logging lines) says the pace too."""
    import logging
    from types import SimpleNamespace

    from bytenite_nb.notebook.presenter import LogReporter
    from bytenite_nb.notebook.widgets._view import MonitorState

    caplog.set_level(logging.INFO, logger="bytenite_nb.progress")
    reporter = LogReporter(SimpleNamespace(name="paced", id="j-1"), every=0.0)
    running = MonitorState(job_id="j-1", state="running", stage="tasks", done=3,
                           total=10, counted=True, rate=1.0, eta=7.0)
    reporter.update(running)
    reporter.update(MonitorState(**{**running.traits(), "done": 4, "eta": 6.0,
                                    "logs": ()}))
    lines = [r.getMessage() for r in caplog.records if r.name == "bytenite_nb.progress"]
    assert lines[-1] == "job paced (j-1): 4/10 tasks done, 0 failed · 1.0 tasks/s · ~6.0s left"
