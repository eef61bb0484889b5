"""Talking to a ByteNite Local over loopback with plain `requests` (nothing of our client), and
serving files for url data sources."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

C = "/v1/customer"
TERMINAL = ("JOB_STATE_COMPLETE", "JOB_STATE_FAILED")


class Api:
    """A requests session that knows the base URL and sends the access token."""

    def __init__(self, base_url: str, api_key: str, *, bearer: bool = False) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        answer = self.session.post(f"{base_url}/v1/auth/access_token", json={"apiKey": api_key},
                                   timeout=30)
        answer.raise_for_status()
        self.token = answer.json()["token"]
        self.session.headers["Authorization"] = ("Bearer " if bearer else "") + self.token

    def __call__(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 30)
        return self.session.request(method, self.base_url + path, **kw)

    def ok(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        """The JSON of a 200 answer (fails the test with the error body otherwise)."""
        answer = self(method, path, **kw)
        assert answer.status_code == 200, (answer.status_code, answer.text)
        return answer.json()

    def create(self, **body: Any) -> dict[str, Any]:
        body.setdefault("templateId", "hello-world-template")
        return self.ok("POST", f"{C}/jobs", json=body)["job"]

    def job(self, job_id: str) -> dict[str, Any]:
        return self.ok("GET", f"{C}/jobs/{job_id}")["job"]

    def run(self, **body: Any) -> dict[str, Any]:
        """Create a job from ``body``, run it, and return it once it ended."""
        job = self.create(**body)
        self.ok("POST", f"{C}/jobs/{job['id']}/run")
        return self.wait(job["id"])

    def results(self, job_id: str) -> dict[str, bytes]:
        """The job's result files, name -> content, fetched through their links."""
        listed = self.ok("GET", f"{C}/jobs/{job_id}/results")["results"]
        return {r["name"]: requests.get(r["link"], timeout=30).content for r in listed}

    def wait(self, job_id: str, states: tuple[str, ...] = TERMINAL,
             timeout: float = 120.0) -> dict[str, Any]:
        """Poll until the job is in one of ``states`` (generous timeout, no timing asserts)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["state"] in states:
                return job
            assert time.monotonic() < deadline, f"job stuck in {job['state']}"
            time.sleep(0.05)


def assert_error(answer: requests.Response, status: int, *words: str) -> dict[str, Any]:
    """ByteNite's error shape, HTTP status = error.code, a request id, message mentioning words."""
    assert answer.status_code == status, (answer.status_code, answer.text)
    body = answer.json()
    assert body["ok"] is False
    assert int(body["error"]["code"]) == status
    assert body["error"]["message"] and body["error"]["description"]
    assert body["requestId"] and answer.headers["X-Request-Id"] == body["requestId"]
    for word in words:
        assert word.lower() in body["message"].lower(), body["message"]
    return body


@contextlib.contextmanager
def serve_dir(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 in a thread; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def read_events(api: Api, since: int | str | None, until: Any, *, timeout: float = 60.0,
                **params: Any) -> list[dict[str, Any]]:
    """Read ``/events`` lines (the ``result`` objects) until ``until(results)`` is true."""
    if since is not None:
        params["since"] = str(since)
    results: list[dict[str, Any]] = []
    with api("GET", f"{C}/events", params=params, stream=True, timeout=timeout) as answer:
        assert answer.status_code == 200, answer.text
        for line in answer.iter_lines():
            if not line:
                continue
            results.append(json.loads(line)["result"])
            if until(results):
                break
    return results


def current_seq(api: Api) -> int:
    """The sequence number of the newest event: where a client that saw everything resumes."""
    return int(read_events(api, None, lambda results: True)[0]["seq"])
