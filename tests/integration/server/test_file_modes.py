"""The data dir is the user's alone: ByteNite Local makes it 0700 and every file in it 0600
(results, uploads, the user cache, the server log, what apps write), whatever the umask, and
makes an existing data dir so when it starts on it."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bytenite_nb import wire
from bytenite_nb.api.dev import tar_folder
from bytenite_nb.local import LocalServer
from tests.kit.apps import write_app
from tests.kit.loopback import Api, C
from tests.kit.servers import TEST_API_KEY, ServerFactory

#: Writes a result and a file in the user cache, as an app may, with the default open().
WRITER = """
import os, pathlib
pathlib.Path(os.environ["TASK_RESULTS_DIR"], "result.txt").write_text("private")
pathlib.Path(os.environ["USER_CACHE_DIR"], "model.bin").write_bytes(b"weights")
"""


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _open_to_others(root: Path, *, folders: bool) -> list[str]:
    """Files (and, with ``folders``, folders) under ``root`` that group or others may use."""
    found = []
    for path in (root, *root.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode) or (stat.S_ISDIR(mode) and not folders):
            continue
        if mode & 0o077:
            found.append(f"{path.relative_to(root)} {stat.filemode(mode)}")
    return found


def _use_everything(server: LocalServer, tmp_path: Path) -> None:
    """A job with an uploaded file and results, a user-cache upload, a pushed app."""
    api = Api(server.base_url, server.api_key)
    job = api.create(templateId="writer-template", dataSource=wire.file_source())
    requests.put(job["dataSource"]["params"]["tempUrl"], data=b"input bytes", timeout=30,
                 headers={"Content-Disposition": 'attachment; filename="in.csv"'})
    api.ok("PATCH", f"{C}/jobs/{job['id']}/uploadcompleted")
    api.ok("POST", f"{C}/jobs/{job['id']}/run")
    assert api.wait(job["id"])["state"] == "JOB_STATE_COMPLETE"
    assert api.results(job["id"]) == {"result.txt": b"private"}
    upload = api.ok("GET", "/v1/dev/cache/upload-url", params={"path": "models/w.bin"})
    assert requests.put(upload["url"], data=b"w", timeout=30).status_code == 200
    pushed = write_app(tmp_path / "push", "pushed", "print('hi')\n")
    api.ok("POST", "/v1/dev/apps", json={"data": base64.b64encode(tar_folder(pushed)).decode()})
    draft = api.create(templateId="writer-template", dataSource=wire.file_source())
    requests.put(draft["dataSource"]["params"]["tempUrl"], data=b"kept for later", timeout=30)


@pytest.fixture()
def apps(tmp_path: Path) -> Path:
    write_app(tmp_path / "apps", "writer", WRITER)
    return tmp_path / "apps"


def test_a_server_process_keeps_everything_private_whatever_the_umask(
        tmp_path: Path, apps: Path, start_server: ServerFactory) -> None:
    with _umask(0o022):  # the usual umask: files 0644, folders 0755
        server = start_server(data_dir=tmp_path / "data", in_process=False, apps_dirs=(apps,))
        _use_everything(server, tmp_path)
    data = server.data_dir
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert (data / "server.log").is_file() and (data / "results").is_dir()
    assert _open_to_others(data, folders=True) == []


def test_an_in_process_server_keeps_every_file_private(
        tmp_path: Path, apps: Path, start_server: ServerFactory) -> None:
    # A server on a thread shares its process's umask (a notebook kernel's), which it must not
    # change: its folders may follow the umask, inside a data dir no one else may enter.
    with _umask(0o022):
        server = start_server(data_dir=tmp_path / "data", apps_dirs=(apps,))
        _use_everything(server, tmp_path)
        data = server.data_dir
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert _open_to_others(data, folders=False) == []


def test_an_existing_data_dir_open_to_others_is_made_private_at_start(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    with _umask(0o022):
        # Started here: a server of an earlier version left the data dir behind, then stopped.
        with LocalServer.start(data, api_keys=(TEST_API_KEY,), in_process=True, reuse=False):
            pass
        (data / "results" / "old-job").mkdir(parents=True)
        (data / "results" / "old-job" / "out.csv").write_text("a,b\n")
        (data / "server.log").write_text("old log\n")
        os.chmod(data, 0o755)
        assert _open_to_others(data, folders=True)
        with caplog.at_level(logging.WARNING), LocalServer.start(
                data, api_keys=(TEST_API_KEY,), in_process=True, reuse=False):
            assert _open_to_others(data, folders=True) == []
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert str(data) in warning and "private" in warning
