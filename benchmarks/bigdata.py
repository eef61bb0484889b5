"""Big chunks through ByteNite Local: the server's peak memory for a job of 20 x 100 MB.

A partitioner writes ``--chunks`` chunks of ``--mb`` MB each; the app copies its chunk to a
result file of the same size (in 4 MB pieces, so the task itself stays small); the passthrough
assembler keeps every result. The job runs end to end over HTTP on a ByteNite Local started as
a child process, so its memory is its own: on the local executor and with app tasks on a
2-worker Dask ``LocalCluster`` (this process hosts the cluster). Printed: the server's peak
resident memory during the job (Linux ``VmHWM``, reset just before the job), its resident
memory before, the job's time and throughput. Chunks and results move between the server and
the workers through Dask; the point is that the server never holds more than a few of them.

Usage: ``python benchmarks/bigdata.py [--chunks 20] [--mb 100] [--executor local,dask]``
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parent))  # the fan-out benchmarks sit beside this file
from fanout_http import KEY, write_apps

from bytenite_nb.local import LocalServer

PARTITIONER = """\
import json, os
params = json.loads(os.environ["PARTITIONER_PARAMS"])
piece = 4 * 1024 * 1024
for i in range(params["chunks"]):
    with open(os.path.join(os.environ["CHUNKS_DIR"], f"data_{i}.bin"), "wb") as f:
        for _ in range(params["mb"] * 1024 * 1024 // piece):
            f.write(bytes([i % 256]) * piece)
"""
APP = """\
import os
with open(os.path.join(os.environ["TASK_DIR"], "data.bin"), "rb") as src, \\
        open(os.path.join(os.environ["TASK_RESULTS_DIR"], "copy.bin"), "wb") as dst:
    while True:
        piece = src.read(4 * 1024 * 1024)
        if not piece:
            break
        dst.write(piece)
"""


def _status(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` memory field, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


@contextlib.contextmanager
def _server(root: Path, apps: Path, executor: str) -> Iterator[LocalServer]:
    if executor == "local":
        with LocalServer.start(root, api_keys=(KEY,), workers=2, apps_dirs=(apps,)) as srv:
            yield srv
        return
    import logging
    import warnings

    import distributed

    warnings.filterwarnings("ignore", message="Port .* is already in use")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=logging.ERROR) as c, \
            LocalServer.start(root, api_keys=(KEY,), workers=2, apps_dirs=(apps,),
                              executor="dask", scheduler=c.scheduler_address) as srv:
        yield srv


def run(root: Path, executor: str, chunks: int, mb: int) -> dict[str, float]:
    apps = write_apps(root / "apps", APP, PARTITIONER)
    with _server(root / executor, apps, executor) as srv:
        assert srv.pid is not None
        s = requests.Session()
        s.headers["Authorization"] = s.post(f"{srv.base_url}/v1/auth/access_token",
                                            json={"apiKey": KEY}).json()["token"]
        api = f"{srv.base_url}/v1/customer"
        before = _status(srv.pid, "VmRSS")
        with open(f"/proc/{srv.pid}/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident size
        t0 = time.perf_counter()
        job = s.post(f"{api}/jobs", json={
            "templateId": "bench-http-template",
            "params": {"partitioner": {"chunks": chunks, "mb": mb}}}).json()["job"]
        s.post(f"{api}/jobs/{job['id']}/run", json={}).raise_for_status()
        while True:
            body = s.get(f"{api}/jobs/{job['id']}").json()["job"]
            if body["state"] in ("JOB_STATE_COMPLETE", "JOB_STATE_FAILED"):
                break
            time.sleep(0.1)
        elapsed = time.perf_counter() - t0
        peak = _status(srv.pid, "VmHWM")
        assert body["state"] == "JOB_STATE_COMPLETE", body["errorMessage"]
        results = s.get(f"{api}/jobs/{job['id']}/results").json()["results"]
        assert len(results) == chunks, f"expected {chunks} results, got {len(results)}"
    return {"seconds": elapsed, "peak": peak, "before": before}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--executor", default="local,dask")
    args = parser.parse_args(argv)
    total = args.chunks * args.mb
    print(f"big data: {args.chunks} chunks x {args.mb} MB ({total} MB in, {total} MB out), "
          "end to end over HTTP, server in a child process")
    for executor in args.executor.split(","):
        root = Path(tempfile.mkdtemp(prefix="bytenite-bench-bigdata-"))
        try:
            got = run(root, executor.strip(), args.chunks, args.mb)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        mib = 1024 * 1024
        print(f"  {executor:<6} server peak RSS {got['peak'] / mib:7.0f} MiB (at start "
              f"{got['before'] / mib:.0f} MiB; +{(got['peak'] - got['before']) / mib:.0f} MiB "
              f"for the job), {got['seconds']:6.1f} s, {total / got['seconds']:6.0f} MB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
