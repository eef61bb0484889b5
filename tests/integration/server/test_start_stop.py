"""`LocalServer` and ``bytenite-nb serve``: they start, answer, and stop without leftovers."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from bytenite_nb.local import LocalServer
from tests.kit.loopback import Api, C


def _our_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.is_alive()}


def test_in_process_server_stops_without_leaking_threads_or_processes(tmp_path: Path) -> None:
    me = psutil.Process()
    children_before = {p.pid for p in me.children(recursive=True)}
    threads_before = _our_threads()
    # Started here: the test checks what is left once the server stopped.
    with LocalServer.start(tmp_path, api_keys=("k",), in_process=True, workers=1) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        api = Api(server.base_url, "k")
        job = api.create()
        api.ok("POST", f"{C}/jobs/{job['id']}/run")
        assert api.wait(job["id"])["state"] == "JOB_STATE_COMPLETE"
        assert (tmp_path / "server.json").exists()
        # a streaming consumer is still connected when the server stops
        stream = api("GET", f"{C}/events", stream=True)
        next(stream.iter_lines())
    stream.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        leftovers = {p.pid for p in me.children(recursive=True)} - children_before
        extra_threads = _our_threads() - threads_before
        if not leftovers and not extra_threads:
            break
        time.sleep(0.1)
    assert not leftovers, leftovers
    assert not extra_threads, extra_threads
    assert not (tmp_path / "server.json").exists()


def test_serve_prints_the_url_and_key_location_never_the_key(tmp_path: Path) -> None:
    env = {**os.environ, "BYTENITE_LOCAL_API_KEYS": ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "bytenite_nb.cli", "serve", "--port", "0",
         "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("ByteNite Local listening on http://127.0.0.1:"), first
        url = first.split()[-1]
        lines = [process.stdout.readline() for _ in range(2)]
        key = (tmp_path / "api_key").read_text().strip()
        assert any(str(tmp_path / "api_key") in line for line in lines)
        assert all(key not in line for line in [first, *lines])
        assert Api(url, key).ok("GET", f"{C}/info")["version"]["major"] == "0"
    finally:
        process.terminate()
        rest = process.communicate(timeout=30)[0]
    assert process.returncode == 0
    assert key not in rest
    assert not (tmp_path / "server.json").exists()
