"""Scale-out figures: ByteNite Local over HTTP, local executor vs a Dask ``LocalCluster``,
tiny tasks and CPU-bound ones, as ratios measured in this run.

1. **Tiny tasks** (``--chunks`` N, default 500: read ``data.bin``, write a result): the
   in-process pipeline on the fork server (2 slots), one ``subprocess.run`` per task
   (2 at a time), the same job end to end over HTTP (create → results listed) on the local
   executor (2 workers), and on a 2-worker Dask ``LocalCluster`` (1 thread each).
   Goals: HTTP local within 1.25x of the in-process pipeline and at least 5x faster than a
   subprocess per task; Dask within 2x of HTTP local.
2. **CPU-bound tasks** (``--cpu-tasks`` 100, each burning ``--cpu-seconds`` 0.2 s of CPU)
   over HTTP, for each count in ``--workers`` (default ``1,2``): the local executor with
   that many workers and a ``LocalCluster`` of that many single-threaded workers. Goal: Dask
   within 1.15x of local at 2 workers; scaling from the first count to each other one, for
   both (give more counts on a machine with more cores: ``--workers 1,2,4,8``).

Per-task overhead (ms) is the wall time each task costs a worker beyond its own CPU work:
``(seconds × workers − tasks × work per task) / tasks``. Rounds are interleaved and the best
of each counts (``--repeat``); the load average is printed, since a shared machine changes
every figure.

Usage: ``python benchmarks/scaleout.py [--chunks 500] [--cpu-tasks 100] [--cpu-seconds 0.2]
[--workers 1,2] [--repeat 2] [--no-cpu]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))  # the fan-out benchmarks sit beside this file
from fanout import APP, PARTITIONER, _folder, _task_envs, bench_pipeline, bench_subprocess
from fanout_http import KEY, run_job, write_apps

from bytenite_nb.local import LocalServer
from bytenite_nb.server.execution.executors.forkserver import ForkServerExecutor
from bytenite_nb.server.execution.registry import Registry

# Burns its CPU budget (process time, so a busy machine stretches the wall time, not the work).
CPU_APP = """\
import json, os, time
budget = json.loads(os.environ["APP_PARAMS"]).get("seconds", 0.2)
end = time.process_time() + budget
n = 0
while time.process_time() < end:
    n += 1
with open(os.path.join(os.environ["TASK_RESULTS_DIR"], "out.txt"), "w") as f:
    f.write(str(n))
"""


@contextlib.contextmanager
def dask_server(root: Path, apps: Path, workers: int) -> Iterator[LocalServer]:
    """ByteNite Local whose app tasks go to a LocalCluster of ``workers`` 1-thread workers."""
    import logging
    import warnings

    import distributed

    # (workers' dashboards fall back to a free port when another cluster has 8787)
    warnings.filterwarnings("ignore", message="Port .* is already in use")
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=logging.ERROR) as c, \
            LocalServer.start(root, api_keys=(KEY,), workers=2, apps_dirs=(apps,),
                              in_process=True, executor="dask",
                              scheduler=c.scheduler_address) as srv:
        yield srv


@contextlib.contextmanager
def local_server(root: Path, apps: Path, workers: int) -> Iterator[LocalServer]:
    with LocalServer.start(root, api_keys=(KEY,), workers=workers, apps_dirs=(apps,),
                           in_process=True) as srv:
        yield srv


def timed_job(server: LocalServer, n: int, params: dict[str, Any] | None = None) -> float:
    """One job of ``n`` chunks over HTTP (create → results listed), in seconds."""
    return run_job(server.base_url, n, params)


def tiny(root: Path, n: int, repeat: int) -> dict[str, float]:
    """Best seconds of the tiny-task job per way of running it (see the module docstring)."""
    apps = write_apps(root / "http-apps", APP, PARTITIONER)
    folders = root / "apps"
    _folder(folders, "bench-app", APP)
    _folder(folders, "bench-part", PARTITIONER, kind="partitioner")
    registry = Registry(dirs=[folders])
    script = registry.resolve("bench-app", "app").entrypoint_path
    assert script is not None
    best: dict[str, float] = {}

    def keep(name: str, seconds: float) -> None:
        best[name] = min(seconds, best.get(name, float("inf")))

    with ForkServerExecutor(2) as executor, \
            local_server(root / "local", apps, 2) as local, \
            dask_server(root / "dask", apps, 2) as on_dask:
        bench_pipeline(root / "warm", 8, executor, registry)
        timed_job(local, 8)  # warm: fork servers up, workers hold the app
        timed_job(on_dask, 8)
        for r in range(repeat):
            print(f"  tiny tasks, round {r + 1} ...", file=sys.stderr, flush=True)
            keep("pipeline", bench_pipeline(root / f"p{r}", n, executor, registry)[0])
            keep("subprocess", bench_subprocess(script, _task_envs(root / f"s{r}", n), 2)[0])
            keep("http local", timed_job(local, n))
            keep("http dask", timed_job(on_dask, n))
    return best


def cpu_bound(root: Path, n: int, seconds: float, counts: list[int],
              repeat: int) -> dict[tuple[str, int], float]:
    """Best seconds of the CPU-bound job, by (executor, workers)."""
    apps = write_apps(root / "cpu-apps", CPU_APP, PARTITIONER)
    params = {"app": {"seconds": seconds}}
    best: dict[tuple[str, int], float] = {}
    for w in counts:
        with local_server(root / f"cpu-local-{w}", apps, w) as local, \
                dask_server(root / f"cpu-dask-{w}", apps, w) as on_dask:
            timed_job(local, w, params)
            timed_job(on_dask, w, params)
            for r in range(repeat):
                print(f"  CPU-bound, {w} workers, round {r + 1} ...", file=sys.stderr,
                      flush=True)
                for name, srv in (("local", local), ("dask", on_dask)):
                    t = timed_job(srv, n, params)
                    best[(name, w)] = min(t, best.get((name, w), float("inf")))
    return best


def overhead_ms(seconds: float, workers: int, tasks: int, work: float = 0.0) -> float:
    """Wall time a task costs a worker beyond its own work, in milliseconds."""
    return 1000 * (seconds * workers - tasks * work) / tasks


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min), {os.cpu_count()} CPUs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--cpu-tasks", type=int, default=100)
    parser.add_argument("--cpu-seconds", type=float, default=0.2)
    parser.add_argument("--workers", default="1,2",
                        help="comma-separated worker counts for the CPU-bound part")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU-bound part")
    args = parser.parse_args(argv)
    counts = sorted({int(w) for w in args.workers.split(",") if w.strip()})
    print(f"scale-out, python {sys.version.split()[0]}; before: {_load()}")
    root = Path(tempfile.mkdtemp(prefix="bytenite-bench-scaleout-"))
    try:
        t = tiny(root, args.chunks, args.repeat)
        cpu = {} if args.no_cpu else cpu_bound(root, args.cpu_tasks, args.cpu_seconds, counts,
                                               args.repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n = args.chunks
    print(f"after: {_load()}")
    print(f"tiny tasks: {n} chunks, 2 workers, best of {args.repeat}")
    for name in ("pipeline", "subprocess", "http local", "http dask"):
        print(f"  {name:<11} {t[name]:7.3f} s   per-task overhead "
              f"{overhead_ms(t[name], 2, n):6.2f} ms")
    print(f"  HTTP local / in-process pipeline  {t['http local'] / t['pipeline']:5.2f}x"
          "   (goal <= 1.25x)")
    print(f"  subprocess per task / HTTP local  {t['subprocess'] / t['http local']:5.2f}x"
          "   (goal >= 5x)")
    print(f"  HTTP dask / HTTP local            {t['http dask'] / t['http local']:5.2f}x"
          "   (goal <= 2x)")
    if cpu:
        m, s = args.cpu_tasks, args.cpu_seconds
        print(f"CPU-bound: {m} tasks x {s:g} s CPU, best of {args.repeat}")
        for w in counts:
            local, on_dask = cpu[("local", w)], cpu[("dask", w)]
            print(f"  {w} worker(s): local {local:7.3f} s ({overhead_ms(local, w, m, s):6.2f} ms"
                  f"/task), dask {on_dask:7.3f} s ({overhead_ms(on_dask, w, m, s):6.2f} ms/task)"
                  f"  -> dask/local {on_dask / local:4.2f}x"
                  + ("   (goal <= 1.15x at 2 workers)" if w == 2 else ""))
        first = counts[0]
        for w in counts[1:]:
            print(f"  scaling {first} -> {w} workers: local "
                  f"{cpu[('local', first)] / cpu[('local', w)]:4.2f}x, dask "
                  f"{cpu[('dask', first)] / cpu[('dask', w)]:4.2f}x (ideal {w / first:g}x)")
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    sys.exit(code)
