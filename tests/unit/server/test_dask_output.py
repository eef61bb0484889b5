"""The Dask executor's live output, without a cluster: batching on the worker side
(`dask_remote._Output`), once-each in-order delivery on the server side (`dask_executor._Lines`),
and the worker-side masking that matches the server's."""

from __future__ import annotations

import json
import queue
import types
from typing import Any

import pytest

from bytenite_nb.server.execution.executors import NOTE_STREAM, dask_remote
from bytenite_nb.server.execution.executors.dask import _Lines
from bytenite_nb.server.execution.secrets import JobSecrets


class _Worker:
    """Records what `_Output` sends (as `Worker.log_event` would)."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail

    def log_event(self, topic: str, msg: dict[str, Any]) -> None:
        if self.fail:
            raise RuntimeError("worker closing")
        self.sent.append((topic, msg))


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """`dask_remote`'s monotonic clock, set by the test."""
    now = [1000.0]
    monkeypatch.setattr(dask_remote, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    return now


def _output(worker: _Worker, monkeypatch: pytest.MonkeyPatch) -> dask_remote._Output:
    monkeypatch.setattr(dask_remote, "_worker", lambda: worker)
    return dask_remote._Output("topic", "token", lambda text: text)


def _sent_lines(worker: _Worker) -> list[list[str]]:
    lines: list[list[str]] = []
    for _, msg in worker.sent:
        assert msg["first"] == len(lines)  # contiguous numbering, batch after batch
        lines += msg["lines"]
    return lines


def test_output_batches_a_burst_and_sends_a_quiet_line_at_once(
        clock: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    worker = _Worker()
    out = _output(worker, monkeypatch)
    out.add("stdout", "first")
    out.flush()
    assert len(worker.sent) == 1  # the first line after a quiet spell goes at once
    for i in range(4999):  # a burst, all within the same instant
        out.add("stdout" if i % 2 else "stderr", f"line {i}")
        out.flush()
    assert len(worker.sent) == 1 + 4999 // dask_remote._FLUSH_LINES  # batched by count
    assert out.wait(1.0) > 0  # the last 499 lines wait for their batch to be due
    clock[0] += dask_remote._FLUSH_EVERY * 1.5
    assert out.wait(1.0) == 0.0  # now they are due
    out.flush()
    out.add("stdout", "   ")  # blank lines are not output lines
    out.flush(force=True)
    expected = [["stdout", "first"]] + [["stdout" if i % 2 else "stderr", f"line {i}"]
                                        for i in range(4999)]
    assert _sent_lines(worker) == expected
    assert [list(x) for x in out.lines] == expected
    assert {topic for topic, _ in worker.sent} == {"topic"}
    assert {(m["token"], m["attempt"]) for _, m in worker.sent} == {("token", out.attempt)}


def test_output_waits_for_the_batch_interval(clock: list[float],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    worker = _Worker()
    out = _output(worker, monkeypatch)
    out.add("stdout", "a")
    out.flush()
    out.add("stdout", "b")
    out.flush()
    assert len(worker.sent) == 1 and out.wait(1.0) == pytest.approx(dask_remote._FLUSH_EVERY)
    clock[0] += dask_remote._FLUSH_EVERY / 2
    out.flush()
    assert len(worker.sent) == 1
    clock[0] += dask_remote._FLUSH_EVERY
    out.flush()
    assert _sent_lines(worker) == [["stdout", "a"], ["stdout", "b"]]
    assert out.wait(1.0) == 1.0  # nothing pending


def test_output_big_lines_go_by_size(clock: list[float],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    worker = _Worker()
    out = _output(worker, monkeypatch)
    out.flush(force=True)
    assert worker.sent == []  # nothing to send
    out.add("stdout", "x")
    out.flush()
    big = "y" * dask_remote._FLUSH_BYTES
    out.add("stdout", big)
    out.flush()
    assert _sent_lines(worker) == [["stdout", "x"], ["stdout", big]]


def test_output_that_cannot_send_keeps_every_line(clock: list[float],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = _output(_Worker(fail=True), monkeypatch)
    out.add("stdout", "kept")
    out.flush(force=True)
    out.add("stderr", "also kept")
    out.flush(force=True)
    assert out.worker is None and out.lines == [("stdout", "kept"), ("stderr", "also kept")]


def test_output_off_a_worker_sends_nothing() -> None:
    out = dask_remote._Output(None, None, lambda text: text)
    out.add("stdout", "line")
    out.flush(force=True)
    assert out.worker is None and out.wait(0.1) == 0.1


def _lines() -> tuple[_Lines, list[tuple[str, str]]]:
    got: list[tuple[str, str]] = []
    return _Lines(lambda stream, line: got.append((stream, line))), got


def _numbered(first: int, n: int, stream: str = "stdout") -> list[tuple[str, str]]:
    return [(stream, f"line {i}") for i in range(first, first + n)]


def test_lines_once_each_in_order_whatever_arrives() -> None:
    lines, got = _lines()
    lines.add("a1", 0, _numbered(0, 3))
    lines.add("a1", 0, _numbered(0, 3))  # a duplicate batch
    lines.add("a1", 5, _numbered(5, 2))  # after a gap: held back
    assert got == _numbered(0, 3)
    lines.add("a1", 2, _numbered(2, 2))  # overlaps what was delivered, fills part of the gap
    assert got == _numbered(0, 4)
    lines.add("a1", 0, _numbered(0, 8))  # the result: every line again
    assert got == _numbered(0, 8)


def test_lines_from_the_result_only() -> None:
    lines, got = _lines()
    everything = _numbered(0, 3) + _numbered(3, 2, "stderr")
    lines.add("a1", 0, everything)
    assert got == everything


def test_lines_of_a_new_attempt_follow_a_note_and_a_lost_one_is_dropped() -> None:
    lines, got = _lines()
    lines.add("lost", 0, [("stdout", "lost run")], "tcp://w1")
    lines.add("new", 0, [("stdout", "new run 0")], "tcp://w2")
    lines.add("lost", 1, [("stdout", "late line of the lost run")], "tcp://w1")
    lines.add("new", 0, [("stdout", "new run 0"), ("stderr", "new run 1")])  # the result
    assert got[0] == ("stdout", "lost run")
    assert got[1][0] == NOTE_STREAM
    assert "tcp://w1" in got[1][1] and "tcp://w2" in got[1][1] and "lost" in got[1][1]
    assert got[2:] == [("stdout", "new run 0"), ("stderr", "new run 1")]


def test_lines_take_drains_an_inbox() -> None:
    lines, got = _lines()
    inbox: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
    inbox.put({"attempt": "a", "first": 0, "lines": (("stdout", "x"),), "worker": "w"})
    inbox.put({"attempt": "a", "first": 1, "lines": (("stderr", "y"),)})
    lines.take(inbox)
    assert got == [("stdout", "x"), ("stderr", "y")] and inbox.empty()


def test_worker_masking_matches_the_servers() -> None:
    records = [
        {"id": "A", "secretType": "other", "expiresAt": None, "accessKey": "", "params": {},
         "name": "", "secretKey": "sk-live-123"},
        {"id": "B", "secretType": "aws", "expiresAt": None, "accessKey": "AKIA", "params": {},
         "name": "", "secretKey": 'quo"te\\key'},
        {"id": "C", "secretType": "other", "expiresAt": None, "accessKey": "", "params": {},
         "name": "", "secretKey": "abc"},  # too short to mask
        {"id": "D", "secretType": "other", "expiresAt": None, "accessKey": "", "params": {},
         "name": "", "secretKey": "sk-live-123-long"},  # contains another key
    ]
    server = JobSecrets(records)
    worker = dask_remote._masker({"SECRETS": server.secrets_json()})
    texts = ["key sk-live-123 and sk-live-123-long", 'raw quo"te\\key',
             json.dumps({"k": 'quo"te\\key'}), "abc stays", "nothing secret"]
    for text in texts:
        assert worker(text) == server.mask(text)
    assert "sk-live" not in worker(texts[0]) and "***" in worker(texts[2])
    assert dask_remote._masker({})("sk-live-123") == "sk-live-123"
    assert dask_remote._masker({"SECRETS": "not json"})("x") == "x"
