"""How fast a job on a built app environment starts, against a plain app's (no
requirements.txt: the server's own Python), through ByteNite Local over loopback HTTP.

Two apps with the same one-line task, one with a ``requirements.txt`` (a small package
installed into its environment), run as one-chunk jobs. A job's *start* is the time from the
``POST /jobs/{id}/run`` request to the first line of the task's code (the task records
``time.time()`` first thing), its *end to end* the time from that request until the job is
COMPLETE. The environment is built by the first job (reported, not counted), whose fork
server then stays warm; rounds after that alternate between the two apps and the medians
count (the machine is shared). Printed as a ratio, which should stay within 1.2.

Usage: ``python benchmarks/app_envs.py [--rounds 30] [--installer auto|uv|pip]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

KEY = "bench-app-envs-key-0123456789"
TASK = """\
import time
started = time.time()
import os
with open(os.path.join(os.environ["TASK_RESULTS_DIR"], "started.txt"), "w") as f:
    f.write(repr(started))
"""


def write_apps(root: Path) -> None:
    for name, requirements in (("plain", None), ("with-env", "inflection==0.5.1\n")):
        folder = root / name
        (folder / "app").mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps(
            {"name": name, "version": "0.1", "entrypoint": "main.py"}))
        (folder / "app" / "main.py").write_text(TASK)
        if requirements:
            (folder / "app" / "requirements.txt").write_text(requirements)
        (folder / "template.json").write_text(json.dumps(
            {"id": f"{name}-template", "app": name, "description": "benchmark"}))


def run_job(session: object, base: str, template: str) -> tuple[float, float]:
    """``(start, end to end)`` seconds of one job."""
    import requests

    assert isinstance(session, requests.Session)
    api = f"{base}/v1/customer"
    job = session.post(f"{api}/jobs", json={"templateId": template}).json()["job"]
    sent = time.time()
    session.post(f"{api}/jobs/{job['id']}/run", json={}).raise_for_status()
    while True:
        state = session.get(f"{api}/jobs/{job['id']}").json()["job"]
        if state["state"] in ("JOB_STATE_COMPLETE", "JOB_STATE_FAILED"):
            break
        time.sleep(0.005)
    ended = time.time()
    if state["state"] != "JOB_STATE_COMPLETE":
        raise SystemExit(f"{template} failed: {state['errorMessage']}")
    results = session.get(f"{api}/jobs/{job['id']}/results").json()["results"]
    started = float(requests.get(results[0]["link"], timeout=30).text)
    return started - sent, ended - sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--installer", default="auto", choices=("auto", "uv", "pip"))
    args = parser.parse_args()

    import requests

    from bytenite_nb.local import LocalServer

    with tempfile.TemporaryDirectory(prefix="bench-app-envs-") as tmp:
        root = Path(tmp)
        write_apps(root / "apps")
        overrides = {"envs_dir": root / "envs", "env_installer": args.installer}
        with LocalServer.start(root / "data", in_process=True, reuse=False, workers=2,
                               apps_dirs=[root / "apps"], api_keys=[KEY],
                               config_overrides=overrides) as server:
            session = requests.Session()
            token = session.post(f"{server.base_url}/v1/auth/access_token",
                                 json={"apiKey": KEY}).json()["token"]
            session.headers["Authorization"] = token
            run_job(session, server.base_url, "plain-template")  # (warms the fork server)
            first = run_job(session, server.base_url, "with-env-template")
            print(f"first job on the app environment (builds it): {first[1]:.2f} s end to end")
            times: dict[str, list[tuple[float, float]]] = {"plain": [], "with-env": []}
            for i in range(args.rounds):  # (each app first in every other round)
                for name in sorted(times, reverse=bool(i % 2)):
                    times[name].append(run_job(session, server.base_url, f"{name}-template"))
    medians = {name: (statistics.median(t[0] for t in runs), statistics.median(t[1] for t in runs))
               for name, runs in times.items()}
    (plain_start, plain_total), (env_start, env_total) = medians["plain"], medians["with-env"]
    print(f"{args.rounds} rounds, medians (one-chunk job, python {sys.version.split()[0]}):")
    print(f"  plain app (server's Python):  start {plain_start * 1000:7.1f} ms, "
          f"end to end {plain_total * 1000:7.1f} ms")
    print(f"  app in its built environment: start {env_start * 1000:7.1f} ms, "
          f"end to end {env_total * 1000:7.1f} ms")
    ratio = env_start / plain_start
    print(f"second job on a built environment / plain app, start: {ratio:.2f}x "
          f"(end to end {env_total / plain_total:.2f}x; target: start within 1.2x)")
    return 0 if ratio <= 1.2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
