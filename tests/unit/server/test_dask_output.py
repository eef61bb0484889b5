"""The Dask executor's live output, without a cluster: batching on the worker side
(`dask_remote._Sender`), once-each in-order delivery on the server side (`dask._Lines`), and
the worker-side masking that matches the server's."""

from __future__ import annotations

import json
import time
from typing import Any

from bytenite_nb.server.execution.executors import NOTE_STREAM, dask_remote
from bytenite_nb.server.execution.executors.dask import _Lines
from bytenite_nb.server.execution.secrets import JobSecrets


class _Worker:
    """Records what `_Sender` sends (as `Worker.log_event` would)."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail

    def log_event(self, topic: str, msg: dict[str, Any]) -> None:
        if self.fail:
            raise RuntimeError("worker closing")
        self.sent.append((topic, msg))


class _Clock:
    """`_Sender`'s clock, set by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _sender(worker: _Worker | None, clock: _Clock) -> dask_remote._Sender:
    sender = dask_remote._Sender(worker, clock)
    sender._start_thread = lambda: None  # type: ignore[method-assign]  # (the test flushes)
    return sender


def _output(token: str = "token") -> dask_remote._Output:
    return dask_remote._Output(token, "tcp://worker", lambda text: text)


def _sent_lines(worker: _Worker, token: str = "token") -> list[list[str]]:
    lines: list[list[str]] = []
    for _, msg in worker.sent:
        for item in msg["tasks"]:
            if item["token"] == token:
                assert item["first"] == len(lines)  # contiguous numbering, batch after batch
                lines += item["lines"]
    return lines


def test_output_batches_a_burst_and_sends_a_quiet_line_at_once() -> None:
    worker, clock = _Worker(), _Clock()
    sender, out = _sender(worker, clock), _output()
    sender.add("topic", out, "stdout", "first")
    assert len(worker.sent) == 1  # the first line after a quiet spell goes at once
    for i in range(4999):  # a burst, all within the same instant
        sender.add("topic", out, "stdout" if i % 2 else "stderr", f"line {i}")
    assert len(worker.sent) == 1 + 4999 // dask_remote._FLUSH_LINES  # batched by count
    assert not sender.due()  # the last 499 lines wait for their batch to be due
    clock.now += dask_remote._FLUSH_EVERY * 1.5
    assert sender.due()  # now they are due (the sender's thread sends them)
    with sender.lock:
        sender.flush_locked()
    sender.add("topic", out, "stdout", "   ")  # blank lines are not output lines
    expected = [["stdout", "first"]] + [["stdout" if i % 2 else "stderr", f"line {i}"]
                                        for i in range(4999)]
    assert _sent_lines(worker) == expected
    assert [list(x) for x in out.lines] == expected
    assert {topic for topic, _ in worker.sent} == {"topic"}
    items = [item for _, msg in worker.sent for item in msg["tasks"]]
    assert {(i["token"], i["attempt"], i["worker"]) for i in items} == {
        ("token", out.attempt, "tcp://worker")}


def test_output_waits_for_the_batch_interval() -> None:
    worker, clock = _Worker(), _Clock()
    sender, out = _sender(worker, clock), _output()
    sender.add("topic", out, "stdout", "a")
    sender.add("topic", out, "stdout", "b")
    assert len(worker.sent) == 1 and not sender.due()
    clock.now += dask_remote._FLUSH_EVERY / 2
    sender.add("topic", out, "stdout", "c")
    assert len(worker.sent) == 1
    clock.now += dask_remote._FLUSH_EVERY
    sender.add("topic", out, "stdout", "d")
    assert _sent_lines(worker) == [["stdout", x] for x in "abcd"]


def test_output_of_several_tasks_goes_in_one_event() -> None:
    worker, clock = _Worker(), _Clock()
    sender, one, two = _sender(worker, clock), _output("one"), _output("two")
    sender.add("topic", one, "stdout", "1a")
    sender.add("topic", one, "stdout", "1b")
    sender.add("topic", two, "stderr", "2a")
    clock.now += dask_remote._FLUSH_EVERY
    sender.add("topic", two, "stdout", "2b")
    assert len(worker.sent) == 2
    assert [item["token"] for item in worker.sent[1][1]["tasks"]] == ["one", "two"]
    assert _sent_lines(worker, "one") == [["stdout", "1a"], ["stdout", "1b"]]
    assert _sent_lines(worker, "two") == [["stderr", "2a"], ["stdout", "2b"]]


def test_output_big_lines_go_by_size() -> None:
    worker, clock = _Worker(), _Clock()
    sender, out = _sender(worker, clock), _output()
    sender.add("topic", out, "stdout", "x")
    big = "y" * dask_remote._FLUSH_BYTES
    sender.add("topic", out, "stdout", big)
    assert _sent_lines(worker) == [["stdout", "x"], ["stdout", big]]


def test_output_that_cannot_send_keeps_every_line() -> None:
    clock = _Clock()
    sender, out = _sender(_Worker(fail=True), clock), _output()
    sender.add("topic", out, "stdout", "kept")
    clock.now += 1
    sender.add("topic", out, "stderr", "also kept")
    assert sender.worker is None and out.lines == [("stdout", "kept"), ("stderr", "also kept")]


def test_output_off_a_worker_sends_nothing() -> None:
    out = _output()
    _sender(None, _Clock()).add("topic", out, "stdout", "line")
    assert out.lines == [("stdout", "line")] and out.sent == 0


def test_the_senders_thread_sends_what_waits() -> None:
    worker = _Worker()
    sender, out = dask_remote._Sender(worker), _output()
    try:
        sender.add("topic", out, "stdout", "at once")
        sender.add("topic", out, "stdout", "a moment later")
        for _ in range(200):  # (generous: the thread sends it one interval later)
            if len(worker.sent) == 2:
                break
            time.sleep(0.05)
        assert _sent_lines(worker) == [["stdout", "at once"], ["stdout", "a moment later"]]
    finally:
        sender.close()


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
    records.append({"id": "E", "secretType": "other", "expiresAt": None, "accessKey": "",
                    "params": {}, "name": "", "secretKey": "-----BEGIN-----\nline two of E\n"})
    server = JobSecrets(records)
    worker, span = dask_remote._masker({"SECRETS": server.secrets_json()})
    texts = ["key sk-live-123 and sk-live-123-long", 'raw quo"te\\key',
             json.dumps({"k": 'quo"te\\key'}), "abc stays", "nothing secret",
             "  line two of E  ", "-----BEGIN-----"]
    for text in texts:
        assert worker(text) == server.mask(text)
    assert "sk-live" not in worker(texts[0]) and "***" in worker(texts[2])
    assert worker(texts[5]) == "  ***  " and span == server.span
    assert dask_remote._masker({})[0]("sk-live-123") == "sk-live-123"
    assert dask_remote._masker({"SECRETS": "not json"})[0]("x") == "x"
