"""ByteNite Local under load, as a skeptic drills it: many clients, many listeners, no loss.

``--clients`` threads (default 20) each create, run and follow ``--jobs`` Hello World jobs
(default 25: 500 in all) over loopback HTTP with plain ``requests`` (no retries, so every
failure counts), polling ``GET /jobs/{id}`` until each job ends, while ``--listeners``
(default 5) read ``GET /events`` from the sequence number the load started at. Then the
whole event history of the load is read once more from the server, and each listener's
stream is compared with it.

Printed: jobs lost (created, then missing from ``GET /jobs``; and how many did not end
COMPLETE), answers with a 5xx status, per listener the events missing, duplicated and out
of order, the p50 and p99 latency of ``GET /jobs/{id}`` under load with the same figures on
the idle server measured in this run as the baseline (and their ratio), and jobs per second
(from the first create to the last job's end). Exits 1 when a job was lost or did not
complete, or an event was missing, duplicated or out of order, or anything answered 5xx.

Usage: ``python benchmarks/load.py [--clients 20] [--jobs 25] [--listeners 5] [--workers N]``
``[--base-url URL --api-key KEY]`` (default: a fresh ByteNite Local in a child process).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

C = "/v1/customer"
TERMINAL = ("JOB_STATE_COMPLETE", "JOB_STATE_FAILED")
KEY = "bench-load-key-0123456789abcdef"


class Session:
    """One client's HTTP session with its access token; counts 5xx answers."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        answer = self.http.post(f"{base_url}/v1/auth/access_token", json={"apiKey": api_key},
                                timeout=30)
        answer.raise_for_status()
        self.http.headers["Authorization"] = answer.json()["token"]
        self.server_errors = 0

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 60)
        answer = self.http.request(method, self.base_url + path, **kw)
        if answer.status_code >= 500:
            self.server_errors += 1
        return answer


@dataclass
class ClientResult:
    """What one client thread saw."""

    created: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    get_latencies: list[float] = field(default_factory=list)
    server_errors: int = 0
    problems: list[str] = field(default_factory=list)
    ended_at: float = 0.0


def run_client(base_url: str, api_key: str, jobs: int, out: ClientResult) -> None:
    """Create, run and follow ``jobs`` jobs one after the other."""
    session = Session(base_url, api_key)
    try:
        for i in range(jobs):
            job_id = str(uuid.uuid4())
            answer = session.call("POST", f"{C}/jobs", json={
                "templateId": "hello-world-template", "jobId": job_id, "name": f"load-{i}",
                "params": {"app": {"case": "upper"}}})
            if answer.status_code != 200:
                out.problems.append(f"create: {answer.status_code} {answer.text[:200]}")
                continue
            out.created.append(job_id)
            answer = session.call("POST", f"{C}/jobs/{job_id}/run")
            if answer.status_code != 200:
                out.problems.append(f"run: {answer.status_code} {answer.text[:200]}")
                continue
            while True:
                started = time.perf_counter()
                answer = session.call("GET", f"{C}/jobs/{job_id}")
                out.get_latencies.append(time.perf_counter() - started)
                state = answer.json()["job"]["state"] if answer.status_code == 200 else None
                if state in TERMINAL:
                    break
                time.sleep(0.02)
            if state == "JOB_STATE_COMPLETE":
                out.completed.append(job_id)
            else:
                out.problems.append(f"job {job_id} ended {state}")
    finally:
        out.server_errors = session.server_errors
        out.ended_at = time.perf_counter()


class Listener(threading.Thread):
    """Reads ``/events`` from ``since`` until told to stop once it has seen ``until``."""

    def __init__(self, base_url: str, api_key: str, since: int) -> None:
        super().__init__(daemon=True)
        self.session = Session(base_url, api_key)
        self.since = since
        self.seqs: list[int] = []
        self.until: int | None = None
        self.error: str | None = None

    def run(self) -> None:
        try:
            with self.session.call("GET", f"{C}/events", params={"since": self.since},
                                   stream=True, timeout=(30, 120)) as answer:
                if answer.status_code != 200:
                    self.error = f"/events answered {answer.status_code}"
                    return
                for line in answer.iter_lines():
                    if not line:
                        continue
                    result = json.loads(line)["result"]
                    if result["event"] != "heartbeat":
                        self.seqs.append(int(result["seq"]))
                    elif self.until is not None and int(result["seq"]) >= self.until:
                        return  # caught up with everything (a heartbeat carries the seq)
                    if self.until is not None and self.seqs and self.seqs[-1] >= self.until:
                        return
        except requests.RequestException as exc:
            self.error = f"{type(exc).__name__}: {exc}"


def history(session: Session, since: int, until: int) -> list[int]:
    """The sequence numbers of every event after ``since`` up to ``until``, read once more."""
    seqs: list[int] = []
    with session.call("GET", f"{C}/events", params={"since": since}, stream=True) as answer:
        for line in answer.iter_lines():
            if not line:
                continue
            result = json.loads(line)["result"]
            if result["event"] != "heartbeat":
                seqs.append(int(result["seq"]))
            if (seqs and seqs[-1] >= until) or (result["event"] == "heartbeat"
                                                 and int(result["seq"]) >= until):
                return seqs
    return seqs


def current_seq(session: Session) -> int:
    """The resume point of a client that saw every event so far (the first heartbeat's)."""
    with session.call("GET", f"{C}/events", stream=True) as answer:
        for line in answer.iter_lines():
            if line:
                return int(json.loads(line)["result"]["seq"])
    raise RuntimeError("/events sent nothing")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def idle_latencies(session: Session, n: int = 200) -> list[float]:
    """``GET /jobs/{id}`` on the idle server: the baseline of the loaded figures."""
    job = session.call("POST", f"{C}/jobs", json={"templateId": "hello-world-template"}).json()
    path = f"{C}/jobs/{job['job']['id']}"
    times = []
    for _ in range(n):
        started = time.perf_counter()
        session.call("GET", path)
        times.append(time.perf_counter() - started)
    return times


def drill(base_url: str, api_key: str, clients: int, jobs: int, listeners: int) -> bool:
    """Run the load and print the figures; True when nothing was lost or broken."""
    control = Session(base_url, api_key)
    idle = idle_latencies(control)
    start = current_seq(control)
    readers = [Listener(base_url, api_key, start) for _ in range(listeners)]
    for reader in readers:
        reader.start()
    results = [ClientResult() for _ in range(clients)]
    threads = [threading.Thread(target=run_client, args=(base_url, api_key, jobs, r))
               for r in results]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ended = max(r.ended_at for r in results)
    end = current_seq(control)
    for reader in readers:
        reader.until = end
    for reader in readers:
        reader.join(120)
    expected = history(control, start, end)

    created = {job for r in results for job in r.created}
    completed = {job for r in results for job in r.completed}
    listed: set[str] = set()
    offset = 0
    while True:
        page = control.call("GET", f"{C}/jobs", params={"pagination.limit": 1000,
                                                        "pagination.offset": offset}).json()
        listed |= {job["id"] for job in page["data"]}
        if not page["pagination"]["hasNext"]:
            break
        offset += len(page["data"])
    lost = len(created - listed)  # acknowledged by the server, then gone
    incomplete = len(created - completed)
    server_errors = sum(r.server_errors for r in results) + control.server_errors + sum(
        reader.session.server_errors for reader in readers)
    latencies = [t for r in results for t in r.get_latencies]
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    idle50, idle99 = percentile(idle, 0.5), percentile(idle, 0.99)

    print(f"load: {clients} clients x {jobs} jobs, {listeners} listeners on {base_url}")
    print(f"  jobs lost: {lost} ({len(created)} of {clients * jobs} created, {len(completed)} "
          f"complete, {incomplete} not complete; lost = created, then missing from GET /jobs)")
    print(f"  5xx answers: {server_errors}")
    clean = lost == 0 and incomplete == 0 and server_errors == 0 and (
        len(created) == clients * jobs)
    wanted = set(expected)
    for i, reader in enumerate(readers, 1):
        counts = Counter(reader.seqs)
        missing = len(wanted - set(reader.seqs))
        duplicated = sum(n - 1 for n in counts.values() if n > 1)
        disorder = sum(1 for a, b in zip(reader.seqs, reader.seqs[1:], strict=False) if b <= a)
        note = f" ({reader.error})" if reader.error else ""
        print(f"  listener {i}: {len(reader.seqs)} events, {missing} missing, {duplicated} "
              f"duplicated, {disorder} out of order{note}")
        clean = clean and not (missing or duplicated or disorder or reader.error)
    print(f"  GET /jobs/{{id}} under load: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
          f"({len(latencies)} requests); idle: p50 {idle50 * 1000:.1f} ms, p99 "
          f"{idle99 * 1000:.1f} ms -> {p50 / idle50:.1f}x / {p99 / idle99:.1f}x the idle "
          "server's")
    print(f"  throughput: {len(completed) / (ended - began):.1f} jobs/s "
          f"({len(completed)} jobs in {ended - began:.1f} s)")
    for problem in sorted({p for r in results for p in r.problems})[:10]:
        print(f"  problem: {problem}")
    return clean


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=25, help="jobs per client")
    parser.add_argument("--listeners", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--base-url", help="an already running server (default: start one)")
    parser.add_argument("--api-key", help="its API key (with --base-url)")
    args = parser.parse_args(argv)
    if args.base_url:
        if not args.api_key:
            parser.error("--base-url needs --api-key")
        return 0 if drill(args.base_url, args.api_key, args.clients, args.jobs,
                          args.listeners) else 1
    from bytenite_nb.local import LocalServer

    data_dir = Path(tempfile.mkdtemp(prefix="bytenite-bench-load-"))
    try:
        with LocalServer.start(data_dir, api_keys=(KEY,), workers=args.workers,
                               reuse=False) as server:
            ok = drill(server.base_url, KEY, args.clients, args.jobs, args.listeners)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
