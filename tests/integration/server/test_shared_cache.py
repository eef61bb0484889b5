"""``SHARED_CACHE_DIR`` over loopback: filled through the Developer API (``shared=true`` on
the cache routes, ``client.dev.upload_to_cache(..., shared=True)``), read by every job's
processes, and read-only for them (as on ByteNite, where it holds what all jobs may read,
such as model weights); kept apart from the user cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from bytenite_nb.api import Client, NotFoundError
from bytenite_nb.local import LocalServer
from tests.kit.apps import READ_SHARED, write_app
from tests.kit.loopback import Api, assert_error
from tests.kit.servers import ServerFactory

D = "/v1/dev"

@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory,
           tmp_path_factory: pytest.TempPathFactory) -> LocalServer:
    root = tmp_path_factory.mktemp("shared-apps")
    write_app(root, "read-shared", READ_SHARED)
    return start_module_server(apps_dirs=[root])


@pytest.fixture()
def dev(server: LocalServer) -> Client:
    with Client(api_key=server.api_key, base_url=server.base_url) as client:
        yield client.dev


def test_the_shared_cache_is_filled_through_the_api_and_read_only_to_tasks(
        api: Api, dev: object, server: LocalServer, tmp_path: Path) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_text("model weights v1")
    assert dev.upload_to_cache(weights, "models/weights.bin", shared=True) == \
        "models/weights.bin"
    job = api.run(templateId="read-shared-template",
                  params={"app": {"path": "models/weights.bin"}})
    assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
    report = json.loads(api.results(job["id"])["report.json"])
    assert report["content"] == "model weights v1"
    assert report["attempts"] == {"create": "Read-only file system",
                                  "replace": "Read-only file system",
                                  "delete": "Read-only file system"}
    # Still there, unchanged, and the user cache took the job's file as before.
    listed = dev.cache_files(shared=True)
    assert [(f["path"], f["size"]) for f in listed] == [("models/weights.bin", "16")]
    assert "from-job.txt" in [f["path"] for f in dev.cache_files()]


def test_shared_and_user_caches_are_apart(api: Api, dev: object) -> None:
    dev.upload_to_cache(b"only in the user cache", "apart/user.txt")
    dev.upload_to_cache(b"only in the shared cache", "apart/shared.txt", shared=True)
    shared = [f["path"] for f in dev.cache_files(shared=True)]
    user = [f["path"] for f in dev.cache_files()]
    assert "apart/shared.txt" in shared and "apart/user.txt" not in shared
    assert "apart/user.txt" in user and "apart/shared.txt" not in user
    answer = dev.delete_from_cache("apart", shared=True)
    assert answer["message"] == "Deleted apart from the shared cache (1 file)"
    assert "apart/user.txt" in [f["path"] for f in dev.cache_files()]
    with pytest.raises(NotFoundError, match="in the shared cache: GET /v1/dev/cache\\?shared="
                                            "true lists what is there"):
        dev.delete_from_cache("apart/shared.txt", shared=True)


def test_a_shared_upload_url_stores_into_the_shared_cache(api: Api) -> None:
    target = api.ok("GET", f"{D}/cache/upload-url",
                    params={"path": "tables/lookup.csv", "shared": "true"})
    put = requests.put(target["url"], data=b"a,b\n1,2\n", timeout=30)
    assert put.status_code == 200 and put.json()["path"] == "tables/lookup.csv"
    listed = api.ok("GET", f"{D}/cache", params={"shared": "true"})["files"]
    assert "tables/lookup.csv" in [f["path"] for f in listed]
    assert_error(api("GET", f"{D}/cache/upload-url", params={"path": "../x", "shared": "true"}),
                 400, "inside SHARED_CACHE_DIR")
