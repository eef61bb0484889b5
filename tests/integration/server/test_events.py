"""``GET /events`` over HTTP: resume with ``since`` or ``Last-Event-ID``, heartbeats, jobId."""

from __future__ import annotations

import json
import threading

import pytest

from bytenite_nb.local import LocalServer
from tests.kit.loopback import Api, C, assert_error, current_seq, read_events
from tests.kit.servers import ServerFactory


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory) -> LocalServer:
    return start_module_server(heartbeat_interval=0.2)


def test_resume_with_last_event_id_replays_exactly_what_was_missed(api: Api) -> None:
    first = api.create(name="one")
    # where a client that saw everything up to now would resume
    mark = current_seq(api)
    second = api.create(name="two")
    third = api.create(name="three")

    headers = {"Last-Event-ID": str(mark)}
    with api("GET", f"{C}/events", headers=headers, stream=True) as answer:
        assert answer.headers["Content-Type"].startswith("application/x-ndjson")
        assert answer.headers["X-Request-Id"]
        seen = []
        for line in answer.iter_lines():
            result = json.loads(line)["result"]
            if result["event"] == "job.state":
                seen.append(result["data"]["jobId"])
            if third["id"] in seen:
                break
    assert seen == [second["id"], third["id"]]
    assert first["id"] not in seen


def test_job_filter_and_heartbeats(api: Api) -> None:
    mine = api.create(name="mine")
    api.create(name="other")
    results = read_events(api, 0, lambda r: sum(e["event"] == "heartbeat" for e in r) >= 3,
                          jobId=mine["id"])
    jobs = {e["data"]["jobId"] for e in results if e["event"] != "heartbeat"}
    assert jobs == {mine["id"]}
    beats = [e for e in results if e["event"] == "heartbeat"]
    assert all(b["data"]["timestamp"] and int(b["seq"]) >= 0 for b in beats)
    # heartbeats after the replay carry the resume point: at least the last delivered event
    last_event = max(int(e["seq"]) for e in results if e["event"] != "heartbeat")
    assert int(beats[-1]["seq"]) >= last_event


def test_events_need_a_token_and_a_numeric_resume_point(api: Api) -> None:
    import requests

    assert_error(requests.get(f"{api.base_url}{C}/events", timeout=30), 401)
    assert_error(api("GET", f"{C}/events", params={"since": "yesterday"}), 400, "since")


def test_a_stream_reset_ten_times_while_jobs_run_loses_and_repeats_nothing(
        api: Api, server: LocalServer) -> None:
    start = current_seq(api)
    jobs: list[str] = []

    def run_jobs() -> None:  # its own session: a requests.Session is not shared by threads
        other = Api(server.base_url, server.api_key)
        for i in range(6):
            jobs.append(other.run(name=f"reset-{i}", params={"app": {"case": "upper"}})["id"])

    runner = threading.Thread(target=run_jobs)
    runner.start()
    received: list[dict] = []
    resets = 0
    while resets < 10 or runner.is_alive():
        since = received[-1]["seq"] if received else start
        with api("GET", f"{C}/events", params={"since": since}, stream=True) as answer:
            got = 0
            for line in answer.iter_lines():
                result = json.loads(line)["result"]
                if result["event"] == "heartbeat":
                    if not runner.is_alive():
                        break  # (a quiet stream: caught up, unless the jobs still run)
                    continue
                received.append(result)
                got += 1
                if resets < 10 and got >= 3:
                    break  # drop the connection mid-stream
        resets += 1
    runner.join()
    end = current_seq(api)
    if not received or int(received[-1]["seq"]) < end:  # what came after the last reset
        received += read_events(api, received[-1]["seq"] if received else start,
                                lambda r: int(r[-1]["seq"]) >= end and r[-1]["event"] !=
                                "heartbeat")
        received = [r for r in received if r["event"] != "heartbeat"]
    everything = [r for r in read_events(api, start, lambda r: int(r[-1]["seq"]) >= end and
                                         r[-1]["event"] != "heartbeat")
                  if r["event"] != "heartbeat"]
    assert resets >= 10
    seqs = [int(r["seq"]) for r in received]
    assert seqs == sorted(set(seqs)), "an event came twice or out of order"
    assert received == everything, "an event was lost across a reset"
    finished = [r["data"]["jobId"] for r in received if r["event"] == "job.state"
                and r["data"]["state"] == "JOB_STATE_COMPLETE"]
    assert finished == jobs
