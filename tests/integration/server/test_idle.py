"""``bytenite-nb serve --idle-timeout``: ByteNite Local stops by itself once nobody uses it.

Real server processes. No timed assertions: the tests wait for events with generous deadlines,
and only claim "still running" after waiting several times the idle timeout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from bytenite_nb.local import LOG_FILE, SERVER_FILE, LocalServer
from tests.kit.apps import GATED, write_app
from tests.kit.loopback import Api, C

KEY = "idle-key"
IDLE_LINE = "ByteNite Local: idle for 1 s (no requests, no running jobs): stopping (--idle-timeout)"
#: Several times the 1 s idle timeout: long enough that an idle server would have stopped.
SEVERAL_TIMEOUTS = 5.0


def _serve(data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "BYTENITE_LOCAL_API_KEYS": KEY}
    return subprocess.Popen(
        [sys.executable, "-m", "bytenite_nb.cli", "serve", "--port", "0",
         "--data-dir", str(data_dir), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _wait_until_stopped(server: LocalServer, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while server.running:
        assert time.monotonic() < deadline, "ByteNite Local did not stop by itself"
        time.sleep(0.05)


def _wait_for_file(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def _log(data_dir: Path) -> str:
    return (data_dir / LOG_FILE).read_text(encoding="utf-8", errors="replace")


def test_serve_stops_by_itself_when_idle_and_cleans_up(tmp_path: Path) -> None:
    process = _serve(tmp_path, "--idle-timeout", "1")
    try:
        output = process.communicate(timeout=120)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    lines = output.splitlines()
    assert lines[0].startswith("ByteNite Local listening on http://127.0.0.1:"), output
    assert "  stops after 1 s idle (--idle-timeout)" in lines
    assert IDLE_LINE in lines
    # Shut down as on SIGTERM: server.json removed, database closed (its WAL checkpointed).
    assert not (tmp_path / SERVER_FILE).exists()
    assert (tmp_path / "bytenite-local.db").exists()
    assert not (tmp_path / "bytenite-local.db-wal").exists()


def test_an_open_events_stream_keeps_it_running_until_it_closes(tmp_path: Path) -> None:
    # Started here: the server is to stop by itself, and the test watches it do so.
    server = LocalServer.start(tmp_path, api_keys=(KEY,), idle_timeout=1,
                               heartbeat_interval=0.5)
    try:
        assert server.idle_timeout == 1.0
        api = Api(server.base_url, KEY)
        with api("GET", f"{C}/events", stream=True, timeout=60) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            deadline = time.monotonic() + SEVERAL_TIMEOUTS
            while time.monotonic() < deadline:  # keep reading: heartbeats keep coming
                next(lines)
            assert server.running, _log(tmp_path)
            assert server.stop_reason() is None
            assert IDLE_LINE not in _log(tmp_path)
        api.session.close()
        _wait_until_stopped(server)
        assert server.stop_reason() == "idle for 1 s (no requests, no running jobs)"
        assert IDLE_LINE in _log(tmp_path)
        assert not (tmp_path / SERVER_FILE).exists()
    finally:
        server.stop()


def test_a_running_job_keeps_it_running_and_it_stops_after_the_job(tmp_path: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    apps = tmp_path / "apps"
    write_app(apps, "waits", GATED)
    data_dir = tmp_path / "data"
    # Started here: the server is to stop by itself, then the test opens its data dir again.
    server = LocalServer.start(data_dir, api_keys=(KEY,), apps_dirs=(apps,), workers=1,
                               idle_timeout=1)
    try:
        api = Api(server.base_url, KEY)
        job = api.create(templateId="waits-template",
                         params={"app": {"gate": str(release), "started": str(started)}})
        api.ok("POST", f"{C}/jobs/{job['id']}/run")
        api.session.close()  # from here on, no requests: only the job keeps the server busy
        _wait_for_file(started)
        time.sleep(SEVERAL_TIMEOUTS)
        assert server.running, _log(data_dir)
        assert IDLE_LINE not in _log(data_dir)
        release.write_text("go")
        _wait_until_stopped(server)
        assert IDLE_LINE in _log(data_dir)
        assert not (data_dir / SERVER_FILE).exists()
    finally:
        server.stop()
    # The job finished before the server stopped, and that is kept in the data dir.
    with LocalServer.start(data_dir, api_keys=(KEY,), apps_dirs=(apps,),
                           in_process=True) as again:
        assert Api(again.base_url, KEY).job(job["id"])["state"] == "JOB_STATE_COMPLETE"


def test_without_an_idle_timeout_it_never_stops_by_itself(tmp_path: Path) -> None:
    # --idle-timeout 0 and no flag at all, side by side (one wait for both).
    processes = [_serve(tmp_path / "zero", "--idle-timeout", "0"), _serve(tmp_path / "absent")]
    try:
        urls = []
        for process in processes:
            assert process.stdout is not None
            urls.append(process.stdout.readline().split()[-1])
            assert urls[-1].startswith("http://127.0.0.1:")
            assert requests.get(f"{urls[-1]}/v1/auth/info", timeout=30).status_code == 200
        time.sleep(SEVERAL_TIMEOUTS)
        for process, url, name in zip(processes, urls, ("zero", "absent"), strict=True):
            assert process.poll() is None, name
            assert (tmp_path / name / SERVER_FILE).exists()
            assert requests.get(f"{url}/v1/auth/info", timeout=30).status_code == 200
    finally:
        for process in processes:
            process.terminate()
        outputs = [process.communicate(timeout=60)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
        assert "(--idle-timeout)" not in output  # neither "stops after" nor "stopping"


@pytest.mark.parametrize("value", ["-1", "nan"])
def test_serve_refuses_a_bad_idle_timeout(tmp_path: Path, value: str) -> None:
    process = _serve(tmp_path, "--idle-timeout", value)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 2
    assert output.strip() == (
        "bytenite-nb serve: --idle-timeout (idle_timeout=) must be more than 0 seconds, or 0 "
        f"to never stop when idle; got {value}")
    assert not (tmp_path / SERVER_FILE).exists()


def test_serve_refuses_an_idle_timeout_that_is_not_a_number(tmp_path: Path) -> None:
    process = _serve(tmp_path, "--idle-timeout", "soon")
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 2
    assert "argument --idle-timeout: invalid float value: 'soon'" in output


def test_local_server_refuses_a_bad_idle_timeout_before_starting_anything(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match="must be more than 0 seconds, or 0 to never stop"):
        LocalServer.start(tmp_path / "data", idle_timeout=-5)
    with pytest.raises(ValueError, match="needs a server in its own process"):
        LocalServer.start(tmp_path / "data", idle_timeout=1, in_process=True)
    assert not (tmp_path / "data").exists()
