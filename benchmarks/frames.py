"""Benchmark: typed DataFrames from API records vs ``pandas.json_normalize``, same run.

1. 10,000 job records -> ``frames.jobs_df`` vs ``pd.json_normalize`` (goal: >= 2x faster);
2. 100,000 log records -> ``frames.logs_df`` vs ``pd.json_normalize`` (goal: >= 2x faster);
3. ``client.jobs_df()`` of 10,000 jobs fetched from a ByteNite Local (a child process, as
   notebooks run it) over loopback, end to end (listing pages + frame), and the client's own
   share of that time; the jobs are created through the API first (not timed).

Each timing is the best of several runs. Run: ``.venv/bin/python benchmarks/frames.py``
(``--no-server`` skips part 3, ``--jobs N`` / ``--logs N`` change the sizes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from bytenite_nb import frames, wire


def _ts(base: dt.datetime, seconds: float) -> str:
    return wire.format_timestamp(base + dt.timedelta(seconds=seconds))  # type: ignore[return-value]


def make_jobs(n: int, seed: int = 1) -> list[dict[str, Any]]:
    """``n`` job records shaped like ByteNite Local's ``jobJob`` protojson."""
    rng = random.Random(seed)
    base = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    states = [s.value for s in wire.JOB_STATE_ORDER if s is not wire.JobState.UNKNOWN]
    out = []
    for i in range(n):
        created = rng.uniform(0, 86400 * 30)
        started = created + rng.uniform(0, 60)
        ended = started + rng.uniform(1, 3600)
        state = rng.choice(states)
        out.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128))),
                "templateId": rng.choice(["hello-world-template", "rows-template", "csv-concat"]),
                "name": f"job {i}",
                "description": "",
                "state": state,
                "config": {"taskTimeout": "3600", "jobTimeout": "86400", "isTestJob": True},
                "priority": "EXECUTION_PRIORITY_UNDEFINED",
                "startAt": None,
                "submittedAt": _ts(base, created),
                "startedAt": _ts(base, started),
                "endedAt": _ts(base, ended)
                if state in ("JOB_STATE_COMPLETE", "JOB_STATE_FAILED")
                else None,
                "deletedAt": None,
                "createdAt": _ts(base, created),
                "regions": None,
                "dataSource": {
                    "dataSourceDescriptor": "url",
                    "params": {
                        "@type": wire.HTTP_DATA_SOURCE_TYPE,
                        "url": f"http://example.com/{i}.txt",
                    },
                },
                "dataDestination": {"dataSourceDescriptor": "bucket", "params": None},
                "params": {
                    "preset": "",
                    "partitioner": {},
                    "assembler": {},
                    "app": {"case": "upper"},
                },
                "duration": str(int(ended - started)),
                "paymentAmount": "0",
                "numUnitsEstimation": "0",
                "numChunks": str(rng.randint(1, 64)),
                "errorMessage": "boom" if state == "JOB_STATE_FAILED" else "",
                "stateTimestamps": {state: _ts(base, ended)},
                "appId": "",
            }
        )
    return out


def make_logs(n: int, seed: int = 2) -> list[dict[str, Any]]:
    """``n`` flat log records as ``Client.log_records`` returns them."""
    rng = random.Random(seed)
    base = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    levels = ["INFO"] * 8 + ["DEBUG", "WARN", "ERROR"]
    job_ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(50)]
    out = []
    for i in range(n):
        chunk = rng.randint(0, 31)
        out.append(
            {
                "log": f"processed record {i} of chunk {chunk}",
                "timestamp": _ts(base, i * 0.01),
                "level": rng.choice(levels),
                "container": "main",
                "jobId": rng.choice(job_ids),
                "service": "TASKRUNNER",
                "taskId": wire.task_id(chunk),
            }
        )
    return out


def best_of(fn: Callable[[], Any], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def compare(
    label: str, records: list[dict[str, Any]], ours: Callable[[list[Any]], Any], runs: int
) -> float:
    ours(records)  # warm-up (imports, caches) for both sides
    pd.json_normalize(records[:100])
    t_ours = best_of(lambda: ours(records), runs)
    t_base = best_of(lambda: pd.json_normalize(records), runs)
    ratio = t_base / t_ours
    print(
        f"{label:<28} frames {t_ours * 1000:8.1f} ms   json_normalize {t_base * 1000:8.1f} ms"
        f"   ratio {ratio:5.2f}x {'(goal >= 2x: met)' if ratio >= 2 else '(goal >= 2x: MISSED)'}"
    )
    return ratio


def end_to_end(n_jobs: int, runs: int) -> None:
    """``client.jobs_df()`` against a ByteNite Local child process (as notebooks run it)."""
    try:
        from bytenite_nb.local import LocalServer
    except ImportError as exc:  # the server is optional for this script
        print(f"end to end: skipped ({exc})")
        return
    import json

    from bytenite_nb.api.client import Client

    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        server = LocalServer.start(tmp, port=0, api_keys=("bench-key",), reuse=False)
        try:
            client = Client(api_key="bench-key", base_url=server.base_url)
            started = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                list(
                    pool.map(
                        lambda i: client.create_job("hello-world-template", name=f"b{i}"),
                        range(n_jobs),
                    )
                )
            print(
                f"end to end: created {n_jobs} jobs through the API in "
                f"{time.perf_counter() - started:.1f} s (setup, not timed)"
            )
            df = client.jobs_df()
            assert len(df) >= n_jobs, len(df)
            total = best_of(client.jobs_df, runs)
            # One page of up to 10,000 (ByteNite Local's largest) instead of the default 1000s.
            one_page = best_of(lambda: client.jobs_df(page_size=10_000), runs)
            # The client's own share: decoding the same pages' bytes and building the frame.
            bodies: list[bytes] = []
            for offset in range(0, len(df), 1000):
                bodies.append(
                    client._transport.send(
                        "GET",
                        "/v1/customer/jobs",
                        params={"pagination.limit": 1000, "pagination.offset": offset},
                    ).content
                )
            own = best_of(
                lambda: frames.jobs_df(
                    [job for body in bodies for job in json.loads(body)["data"]]
                ),
                runs,
            )
            print(
                f"{'client.jobs_df() end to end':<28} {total * 1000:8.1f} ms for {len(df)} jobs "
                f"({'goal < 1 s: met' if total < 1 else 'goal < 1 s: MISSED'}); "
                f"client side (JSON decode + frame) {own * 1000:.1f} ms, "
                f"server and HTTP {(total - own) * 1000:.1f} ms over {len(bodies)} pages"
            )
            print(f"{'  ... in pages of 10,000':<28} {one_page * 1000:8.1f} ms")
            client.close()
        finally:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--logs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-server", action="store_true")
    args = parser.parse_args(argv)
    print(f"pandas {pd.__version__}, python {sys.version.split()[0]}")
    jobs = make_jobs(args.jobs)
    logs = make_logs(args.logs)
    # Every column, as json_normalize gives (the default shows only the ones people read).
    r1 = compare(f"{args.jobs} jobs", jobs, lambda r: frames.jobs_df(r, columns="all"),
                 args.runs)
    r2 = compare(f"{args.logs} log lines", logs, frames.logs_df, max(2, args.runs // 2))
    if not args.no_server:
        end_to_end(args.jobs, max(2, args.runs // 2))
    return 0 if min(r1, r2) >= 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
