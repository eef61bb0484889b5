"""How fast an abort answers, and how soon every process of the job is gone.

A job of ``--tasks`` (default 2) tasks, each of which starts one child in a session of its
own and a daemon (a double fork) before it sleeps: the processes an abort must find. Per
round the job runs until every task and child has reported its pid, then
``POST /jobs/{id}/abort`` is timed from the call to its answer, and from the call until no
process of the job is left (read from ``/proc``). The baseline, measured in the same run on
the same server, is a ``GET /jobs/{id}`` round trip, so the ratios say what an abort costs
over the cheapest call. Tests only check that everything is gone (timed assertions would be
flaky on a shared machine); the goal lives here: the abort answers, and every process is
gone, well under a second.

Usage: ``python benchmarks/abort.py [--rounds 5] [--tasks 2]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parent))  # fanout_http.py sits beside this file
import fanout_http

from bytenite_nb.local import LocalServer

KEY = "bench-abort-key-0123456789abcdef"
C = "/v1/customer"

PARTITIONER = """\
import json, os
n = json.loads(os.environ.get("PARTITIONER_PARAMS") or "{}").get("chunks", 2)
for i in range(n):
    open(os.path.join(os.environ["CHUNKS_DIR"], f"data_{i}.bin"), "wb").close()
"""

# Each task records its pid and its two children's pids in params.pids, then sleeps.
APP = """\
import json, os, subprocess, sys, time
params = json.loads(os.environ["APP_PARAMS"])
folder = params["pids"]
sleeper = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(300)"
chunk = os.environ["CHUNK_NUMBER"]
subprocess.Popen([sys.executable, "-c", sleeper, os.path.join(folder, f"{chunk}-session")],
                 start_new_session=True)
middle = ("import subprocess, sys; subprocess.Popen([sys.executable, '-c', sys.argv[1], "
          "sys.argv[2]], start_new_session=True)")
subprocess.Popen([sys.executable, "-c", middle, sleeper,
                  os.path.join(folder, f"{chunk}-daemon")]).wait()
open(os.path.join(folder, f"{chunk}-task"), "w").write(str(os.getpid()))
time.sleep(300)
"""


def write_apps(root: Path) -> Path:
    return fanout_http.write_apps(root, APP, PARTITIONER, prefix="bench-abort",
                                  description=None)


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone: it holds nothing but its entry)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def one_round(s: requests.Session, base: str, tasks: int, scratch: Path) -> tuple[float, float,
                                                                                   float]:
    pids_dir = Path(tempfile.mkdtemp(dir=scratch))
    job = s.post(f"{base}{C}/jobs", json={
        "templateId": "bench-abort-template",
        "params": {"partitioner": {"chunks": tasks}, "app": {"pids": str(pids_dir)}}},
    ).json()["job"]
    s.post(f"{base}{C}/jobs/{job['id']}/run", json={}).raise_for_status()
    deadline = time.monotonic() + 60
    while len([p for p in pids_dir.iterdir() if p.read_text()]) < 3 * tasks:
        if time.monotonic() > deadline:
            raise SystemExit("the job's tasks did not start within 60 s")
        time.sleep(0.01)
    pids = [int(p.read_text()) for p in pids_dir.iterdir()]
    t0 = time.perf_counter()
    s.get(f"{base}{C}/jobs/{job['id']}").raise_for_status()
    get_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    s.post(f"{base}{C}/jobs/{job['id']}/abort").raise_for_status()
    answered = time.perf_counter() - t0
    while any(alive(pid) for pid in pids):
        if time.perf_counter() - t0 > 30:
            raise SystemExit(f"processes outlived the abort by 30 s: {pids}")
        time.sleep(0.001)
    gone = time.perf_counter() - t0
    return get_time, answered, gone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-abort-") as tmp:
        root = Path(tmp)
        server = LocalServer.start(root / "data", api_keys=(KEY,), in_process=True,
                                   apps_dirs=(write_apps(root / "apps"),),
                                   workers=max(2, args.tasks))
        try:
            s = requests.Session()
            s.headers["Authorization"] = s.post(f"{server.base_url}/v1/auth/access_token",
                                                json={"apiKey": KEY}).json()["token"]
            rounds = [one_round(s, server.base_url, args.tasks, root)
                      for _ in range(args.rounds)]
        finally:
            server.stop()
    get_ms, answer_ms, gone_ms = (statistics.median(r[i] for r in rounds) * 1000
                                  for i in range(3))
    print(f"abort of a {args.tasks}-task job whose tasks each left 2 detached children, "
          f"median of {args.rounds} rounds (python {sys.version.split()[0]}, "
          f"load {os.getloadavg()[0]:.1f}):")
    print(f"  GET /jobs/{{id}} (baseline)         {get_ms:8.1f} ms")
    print(f"  abort answered                     {answer_ms:8.1f} ms  "
          f"({answer_ms / get_ms:5.1f}x the baseline; goal < 1000 ms: "
          f"{'met' if answer_ms < 1000 else 'NOT met'})")
    print(f"  every process of the job gone      {gone_ms:8.1f} ms  "
          f"({gone_ms / get_ms:5.1f}x the baseline; goal < 1000 ms: "
          f"{'met' if gone_ms < 1000 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
