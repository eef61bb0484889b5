"""The fan-out job end to end through ByteNite Local: local executor vs a 2-worker Dask cluster.

The same N-chunk job (trivial app, passthrough assembler) is created, run and its results
listed over loopback HTTP, once on a ByteNite Local with the local fork server executor and
once on a ByteNite Local whose app tasks go to a ``distributed.LocalCluster`` (2 worker
processes, 1 thread each) with ``executor="dask"``. Rounds are interleaved and the best of
each counts (the machine is shared). Printed as a ratio: what scale-out costs on one machine
(on a real cluster the workers are other machines, which is the point of it).

Usage: ``python benchmarks/fanout_http.py [--chunks 500] [--workers N] [--repeat 2]``
(``benchmarks/fanout.py`` runs it too unless given ``--no-dask`` or ``--no-http``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

KEY = "bench-fanout-key-0123456789"


def write_apps(root: Path, app_code: str, partitioner_code: str, *, prefix: str = "bench-http",
               description: str | None = "fan-out benchmark") -> Path:
    """``<prefix>-app`` (with ``<prefix>-template``, the passthrough assembler) and
    ``<prefix>-part`` under root."""
    for name, code, kind in ((f"{prefix}-app", app_code, "app"),
                             (f"{prefix}-part", partitioner_code, "partitioner")):
        folder = root / name
        (folder / "app").mkdir(parents=True)
        manifest: dict[str, Any] = {"name": name, "version": "0.1", "entrypoint": "main.py"}
        if kind != "app":
            manifest["type"] = kind
        (folder / "manifest.json").write_text(json.dumps(manifest))
        (folder / "app" / "main.py").write_text(code)
    template = {"id": f"{prefix}-template", "app": f"{prefix}-app",
                "partitioner": f"{prefix}-part", "assembler": "passthrough"}
    if description is not None:
        template["description"] = description
    (root / f"{prefix}-app" / "template.json").write_text(json.dumps(template))
    return root


def run_job(base_url: str, n: int, params: dict[str, Any] | None = None) -> float:
    """Seconds from create to the results listed, for one N-chunk job (``params``: more
    job params, e.g. ``{"app": {...}}``)."""
    import requests

    s = requests.Session()
    token = s.post(f"{base_url}/v1/auth/access_token", json={"apiKey": KEY}).json()["token"]
    s.headers["Authorization"] = token
    api = f"{base_url}/v1/customer"
    t0 = time.perf_counter()
    body = {"templateId": "bench-http-template",
            "params": {**(params or {}), "partitioner": {"chunks": n}}}
    job = s.post(f"{api}/jobs", json=body).json()["job"]
    # Wait on the job's events, as the client's Job.wait does: polling GET /jobs/{id} every
    # few milliseconds would cost the server (and, in-process, its GIL) more than the job.
    with s.get(f"{api}/events", params={"jobId": job["id"]}, stream=True,
               timeout=600) as events:
        lines = events.iter_lines()
        next(lines)  # the first heartbeat: the stream is open, nothing of the run is missed
        s.post(f"{api}/jobs/{job['id']}/run", json={}).raise_for_status()
        for line in lines:
            event = json.loads(line)["result"] if line else {}
            if event.get("event") == "job.state" and event["data"]["state"] in (
                    "JOB_STATE_COMPLETE", "JOB_STATE_FAILED"):
                break
    body = s.get(f"{api}/jobs/{job['id']}").json()["job"]
    assert body["state"] == "JOB_STATE_COMPLETE", body["errorMessage"]
    results = s.get(f"{api}/jobs/{job['id']}/results").json()["results"]
    elapsed = time.perf_counter() - t0
    assert len(results) == n, f"expected {n} results, got {len(results)}"
    return elapsed


def bench_fanout_http(root: Path, n: int, workers: int, app_code: str, partitioner_code: str,
                      repeat: int = 2) -> tuple[float, float] | None:
    """(best local-executor seconds, best dask-executor seconds), or None without dask."""
    try:
        import distributed
    except ImportError:
        return None
    from bytenite_nb.local import LocalServer

    apps = write_apps(root / "apps", app_code, partitioner_code)
    local_times: list[float] = []
    dask_times: list[float] = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            LocalServer.start(root / "local", api_keys=(KEY,), workers=workers,
                              apps_dirs=(apps,), in_process=True) as local, \
            LocalServer.start(root / "dask", api_keys=(KEY,), workers=workers,
                              apps_dirs=(apps,), in_process=True, executor="dask",
                              scheduler=cluster.scheduler_address) as on_dask:
        run_job(local.base_url, 4)  # warm: fork server up, workers hold the app
        run_job(on_dask.base_url, 4)
        for _ in range(repeat):
            local_times.append(run_job(local.base_url, n))
            dask_times.append(run_job(on_dask.base_url, n))
    return min(local_times), min(dask_times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    from fanout import APP, PARTITIONER

    root = Path(tempfile.mkdtemp(prefix="bytenite-bench-http-"))
    try:
        figures = bench_fanout_http(root, args.chunks, args.workers, APP, PARTITIONER,
                                    args.repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if figures is None:
        print("dask is not installed: pip install 'bytenite-nb[dask]'")
        return 0
    print(format_line(args.chunks, *figures))
    return 0


def format_line(n: int, local: float, on_dask: float) -> str:
    """The benchmark's one line: both times and their ratio."""
    return (f"fan-out end to end over HTTP ({n} chunks, create -> results listed): local "
            f"executor {local:.3f} s, 2-worker dask LocalCluster {on_dask:.3f} s"
            f"  -> dask takes {on_dask / local:.2f}x the local executor's time")


if __name__ == "__main__":
    sys.exit(main())
