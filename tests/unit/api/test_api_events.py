"""The events decoder (any chunk split, NDJSON and SSE, CRLF), the resuming stream, the reducer."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses
from hypothesis import given, settings
from hypothesis import strategies as st

from bytenite_nb import wire
from bytenite_nb.api import Client, Event, JobSnapshot, decode_events
from bytenite_nb.api.decoding import StreamDecoder
from tests.unit.api._scripted import KEY

# -- generating valid streams ---------------------------------------------------------------

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=20
)
_payload = st.fixed_dictionaries(
    {"jobId": st.uuids().map(str), "state": st.sampled_from([s.value for s in wire.JobState])},
    optional={
        "log": _text,
        "n": st.integers(),
        "nested": st.dictionaries(_text, _text, max_size=2),
    },
)
_events = st.lists(
    st.tuples(
        st.sampled_from(["job.state", "task.state", "job.log", "heartbeat", "x.unknown"]), _payload
    ),
    max_size=8,
)


def envelopes(events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [
        {"result": {"event": name, "seq": str(i + 1), "data": data}}
        for i, (name, data) in enumerate(events)
    ]


def ndjson(events: list[tuple[str, dict[str, Any]]], eol: str) -> bytes:
    # ensure_ascii=False so multi-byte UTF-8 sequences get split across chunks too.
    return "".join(json.dumps(e, ensure_ascii=False) + eol for e in envelopes(events)).encode()


def sse(events: list[tuple[str, dict[str, Any]]], eol: str, comments: bool) -> bytes:
    out = []
    for i, env in enumerate(envelopes(events)):
        if comments:
            out.append(f": keep-alive{eol}")
        out.append(f"id: {i + 1}{eol}event: {env['result']['event']}{eol}")
        out.append(f"data: {json.dumps(env, ensure_ascii=False)}{eol}{eol}")
    return "".join(out).encode()


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return pieces


@settings(max_examples=150, deadline=None)
@given(
    events=_events,
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_ndjson_decodes_identically_for_any_split(events: list, eol: str, cuts: list[int]) -> None:
    data = ndjson(events, eol)
    whole = list(decode_events([data]))
    assert whole == envelopes(events)
    assert list(decode_events(split(data, cuts))) == whole
    assert list(decode_events([bytes([b]) for b in data])) == whole


@settings(max_examples=150, deadline=None)
@given(
    events=_events,
    eol=st.sampled_from(["\n", "\r\n"]),
    comments=st.booleans(),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_sse_decodes_identically_for_any_split(
    events: list, eol: str, comments: bool, cuts: list[int]
) -> None:
    data = sse(events, eol, comments)
    whole = list(decode_events([data]))
    assert [{k: v for k, v in e.items() if k != "id"} for e in whole] == envelopes(events)
    assert list(decode_events(split(data, cuts))) == whole


def test_crlf_split_across_chunks_does_not_dispatch_early() -> None:
    # iter_lines' bug: "\r\n" straddling two chunks became two line ends, and the phantom
    # blank line dispatched a half-received SSE event. Here the event spans two data lines
    # that only form valid JSON together, so an early dispatch would lose it.
    decoder = StreamDecoder()
    assert decoder.feed(b'data: {"a":\r') == []
    assert decoder.feed(b"\ndata: 1}\r") == []
    assert decoder.feed(b"\n\r") == []
    assert decoder.feed(b"\n") == [{"result": {"event": "message", "data": {"a": 1}}}]


def test_bad_lines_are_skipped_and_unknown_shapes_tolerated() -> None:
    data = b'not json\n{"result":{"event":"job.state","seq":"3","data":{"jobId":"j"}}}\n[1]\n'
    assert list(decode_events([data])) == [
        {"result": {"event": "job.state", "seq": "3", "data": {"jobId": "j"}}}
    ]


def test_event_parsing_takes_seq_from_result_data_or_sse_id() -> None:
    a = Event.from_envelope({"result": {"event": "job.state", "seq": "5", "data": {"jobId": "j"}}})
    b = Event.from_envelope({"result": {"event": "job.state", "data": {"seq": "6"}}})
    c = Event.from_envelope({"id": "7", "result": {"event": "heartbeat", "data": {}}})
    assert (a.seq, a.job_id, b.seq, c.seq) == ("5", "j", "6", "7")
    assert Event.from_envelope({"error": {"code": 2}}) is None


# -- the resuming stream ----------------------------------------------------------------------

BASE = "http://bytenite.test"
EVENTS = f"{BASE}/v1/customer/events"


def line(name: str, seq: int, **data: Any) -> bytes:
    return json.dumps({"result": {"event": name, "seq": str(seq), "data": data}}).encode() + b"\n"


def test_stream_reconnects_resumes_and_drops_replayed_events() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/auth/access_token", json={"token": "t", "expiresIn": "3600"})
        first = line("heartbeat", 5) + line("job.state", 6, jobId="a", state="JOB_STATE_STARTED")
        first += line("job.state", 7, jobId="b", state="JOB_STATE_STARTED")
        second = line("heartbeat", 7) + line("job.state", 7, jobId="b", state="JOB_STATE_STARTED")
        second += line("job.state", 8, jobId="a", state="JOB_STATE_COMPLETE")
        rsps.get(EVENTS, body=first, content_type="application/x-ndjson")
        rsps.get(EVENTS, body=second, content_type="application/x-ndjson")
        stream = Client(api_key=KEY, base_url=BASE).events()
        got = [next(stream) for _ in range(3)]
        stream.close()
        assert [(e.seq, e.job_id) for e in got] == [("6", "a"), ("7", "b"), ("8", "a")]
        calls = [c for c in rsps.calls if c.request.url.startswith(EVENTS)]
        assert "since" not in calls[0].request.url
        assert "since=7" in calls[1].request.url
        assert calls[1].request.headers["Last-Event-ID"] == "7"
        assert stream.connections == 2


def test_stream_filters_by_job_and_hides_heartbeats() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/auth/access_token", json={"token": "t", "expiresIn": "3600"})
        body = (
            line("heartbeat", 1)
            + line("job.state", 2, jobId="other")
            + line("job.log", 3, jobId="mine", log="hi")
        )
        rsps.get(EVENTS, body=body)
        stream = Client(api_key=KEY, base_url=BASE).events(job_id="mine", reconnect=False)
        assert [(e.name, e.seq) for e in stream] == [("job.log", "3")]
        assert "jobId=mine" in rsps.calls[1].request.url


def test_stream_raises_client_errors() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/auth/access_token", json={"token": "t", "expiresIn": "3600"})
        rsps.get(EVENTS, json={"message": "nope"}, status=403)
        with pytest.raises(Exception) as info:
            next(Client(api_key=KEY, base_url=BASE).events())
        assert getattr(info.value, "status_code", None) == 403


# -- the reducer ------------------------------------------------------------------------------


def ev(name: str, seq: int, **data: Any) -> Event:
    return Event(name, {"jobId": "j", **data}, str(seq), "j")


def test_snapshot_folds_a_run() -> None:
    snap = JobSnapshot("j")
    assert snap.apply(
        ev("job.state", 1, state="JOB_STATE_STARTED", timestamp="2026-01-01T00:00:00Z")
    )
    assert snap.stage == "starting" and snap.started_at is not None
    assert snap.apply(ev("job.state", 2, state="JOB_STATE_PARTITIONED", numChunks="3"))
    assert snap.tasks_total == 3 and snap.progress == 0
    for seq, (chunk, state) in enumerate(
        [(0, "RUNNING"), (1, "RUNNING"), (0, "COMPLETE"), (2, "RUNNING"), (1, "FAILED")], start=3
    ):
        snap.apply(
            ev(
                "task.state",
                seq,
                chunkNumber=chunk,
                state=f"TASK_STATE_{state}",
                attempt=1,
                errorMessage="exit 1" if state == "FAILED" else "",
            )
        )
    assert (snap.tasks_done, snap.tasks_failed, snap.tasks_running) == (1, 1, 1)
    assert snap.first_task_error == "task-1: exit 1"
    assert snap.progress == pytest.approx(2 / 3)
    snap.apply(ev("job.log", 20, service="TASKRUNNER", level="ERROR", log="boom"))
    assert snap.log_tail[-1].message == "boom"
    assert snap.apply(
        ev(
            "job.state",
            21,
            state="JOB_STATE_FAILED",
            errorMessage="task failed",
            timestamp="2026-01-01T00:01:00Z",
        )
    )
    assert snap.is_terminal and snap.error_message == "task failed" and snap.ended_at is not None


def test_snapshot_never_moves_backwards_and_ignores_others() -> None:
    snap = JobSnapshot("j")
    snap.apply(ev("job.state", 5, state="JOB_STATE_MERGING"))
    assert not snap.apply(ev("job.state", 4, state="JOB_STATE_COMPLETE"))  # stale seq
    assert not snap.apply_job({"id": "j", "state": "JOB_STATE_PARTITIONED"})  # stale poll
    assert snap.state is wire.JobState.MERGING
    assert not snap.apply(Event("job.state", {"jobId": "x", "state": "JOB_STATE_FAILED"}, "9", "x"))
    assert not snap.apply(ev("x.unknown", 10))
    assert snap.apply_job({"id": "j", "state": "JOB_STATE_COMPLETE"})
    assert snap.progress == 1.0
    # a retried task's new attempt wins over the old attempt's terminal state
    snap.apply(ev("task.state", 11, chunkNumber=0, state="TASK_STATE_FAILED", attempt=1))
    snap.apply(ev("task.state", 12, chunkNumber=0, state="TASK_STATE_RUNNING", attempt=2))
    assert snap.task_states[0] is wire.TaskState.RUNNING
    assert not snap.apply(ev("task.state", 13, chunkNumber=0, state="TASK_STATE_QUEUED", attempt=2))


def test_snapshot_copy_is_independent() -> None:
    snap = JobSnapshot("j")
    snap.apply(ev("task.state", 1, chunkNumber=0, state="TASK_STATE_RUNNING", attempt=1))
    twin = snap.copy()
    snap.apply(ev("task.state", 2, chunkNumber=0, state="TASK_STATE_COMPLETE", attempt=1))
    assert twin.task_states[0] is wire.TaskState.RUNNING


@settings(max_examples=100, deadline=None)
@given(
    stop=st.integers(min_value=1, max_value=len(wire.RUN_STATES)),
    fail=st.booleans(),
    replays=st.lists(
        st.tuples(st.integers(min_value=0, max_value=30), st.integers(min_value=0, max_value=30)),
        max_size=10,
    ),
    polls=st.lists(
        st.tuples(st.integers(min_value=0, max_value=30), st.sampled_from(list(wire.JobState))),
        max_size=6,
    ),
)
def test_snapshot_ends_in_the_last_state_whatever_is_replayed_or_polled(
    stop: int, fail: bool, replays: list[tuple[int, int]], polls: list[tuple[int, Any]]
) -> None:
    # The true history: NEW, then the run states up to ``stop`` (ending FAILED if ``fail``).
    states = [wire.JobState.NEW, *wire.RUN_STATES[:stop]]
    if fail:
        states[-1] = wire.JobState.FAILED
    history = [ev("job.state", i + 1, state=s.value) for i, s in enumerate(states)]
    # Deliveries: the history in order, with stale replays (a resumed stream) and stale
    # polls (a poll answered before later events arrived) mixed in.
    deliveries: list[Any] = list(history)
    for at, which in replays:
        deliveries.insert(min(at, len(deliveries)), history[which % len(history)])
    snap = JobSnapshot("j")
    seen = []
    for item in deliveries:
        snap.apply(item)
        seen.append(snap.state)
    for at, state in polls:  # a poll can only report a state the job really passed
        past = states[: min(at, len(states) - 1) + 1]
        if state in past:
            snap.apply_job({"id": "j", "state": state.value})
    assert snap.state is states[-1]
    ranks = [wire.JOB_STATE_ORDER.index(s) if not s.is_terminal else 99 for s in seen]
    assert ranks == sorted(ranks)  # never moved backwards
