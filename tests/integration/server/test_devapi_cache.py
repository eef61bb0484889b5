"""The Developer API's user cache and downloads over loopback: ``GET /v1/dev/cache/upload-url``
then a PUT that the next job's processes see in ``USER_CACHE_DIR``; ``GET /v1/dev/cache``,
``DELETE /v1/dev/cache/{path}``; ``GET /v1/dev/apps|engines/{tag}/download``; and the client's
``client.dev`` methods for all of them, against a real ByteNite Local."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import os
import tarfile
import time
from pathlib import Path

import pytest
import requests

from bytenite_nb import wire
from bytenite_nb.api import BadRequestError, Client, NotFoundError
from bytenite_nb.api.dev import tar_folder
from bytenite_nb.local import LocalServer
from tests.kit.apps import write_app, write_engine
from tests.kit.loopback import Api, assert_error
from tests.kit.servers import TEST_API_KEY, ServerFactory

D = "/v1/dev"
CAP = 64 * 1024
BUNDLED = Path(wire.__file__).parent / "server" / "builtin_apps"

# Copies USER_CACHE_DIR/<params.path> into its results (bypass source: one task), and leaves
# a file of its own in the cache for later jobs.
READ_CACHE = """
import json, os, shutil
path = json.loads(os.environ["APP_PARAMS"]).get("path", "models/w.bin")
cache = os.environ["USER_CACHE_DIR"]
shutil.copyfile(os.path.join(cache, path), os.path.join(os.environ["TASK_RESULTS_DIR"], "w.bin"))
open(os.path.join(cache, "written-by-job.txt"), "w").write("from a job")
"""


@pytest.fixture(scope="module")
def apps_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("devcache-apps")
    write_app(root, "from-disk", "print('hello from disk')\n",
              files={"app/helper.py": "VALUE = 42\n", "data/table.csv": "a,b\n1,2\n"})
    return root


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory, apps_dir: Path,
           tmp_path_factory: pytest.TempPathFactory) -> LocalServer:
    srv = start_module_server(workers=2, apps_dirs=(apps_dir,),
                              config_overrides={"max_upload_bytes": CAP})
    api = Api(srv.base_url, srv.api_key)
    folder = write_app(tmp_path_factory.mktemp("devcache-src"), "read-cache", READ_CACHE)
    api.ok("POST", f"{D}/apps", json={"data": _b64(tar_folder(folder))})
    api.ok("POST", f"{D}/apps/read-cache/activate")
    return srv


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _run_reader(api: Api, path: str = "models/w.bin") -> bytes:
    """Run a job whose app copies USER_CACHE_DIR/<path> into its results; that file's bytes."""
    done = api.run(templateId="read-cache-template", params={"app": {"path": path}})
    assert done["state"] == "JOB_STATE_COMPLETE", done["errorMessage"]
    return api.results(done["id"])["w.bin"]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def _unpack(data: str, dest: Path) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(data))) as tar:
        tar.extractall(dest, filter="data")
    return _files(dest)


def _cache(server: LocalServer) -> Path:
    return Path(server.data_dir) / "cache" / "user"


# -- upload URL, PUT, USER_CACHE_DIR -------------------------------------------------------


def test_upload_then_the_next_job_reads_the_exact_bytes(api: Api, server: LocalServer) -> None:
    target = api.ok("GET", f"{D}/cache/upload-url", params={"path": "models/w.bin"})
    assert set(target) == {"url", "method", "path", "expiresAt"}
    assert target["method"] == "PUT" and target["path"] == "models/w.bin"
    assert target["url"].startswith(f"{server.base_url}/local/cache/")
    left = wire.parse_timestamp(target["expiresAt"]) - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(minutes=59) < left <= dt.timedelta(hours=1)

    weights = bytes(range(256)) * 40 + b"\x00\xff end"  # not text: bytes must survive as-is
    put = requests.put(target["url"], data=weights, timeout=30)  # no Authorization header
    assert put.status_code == 200, put.text
    assert put.json() == {"ok": True, "path": "models/w.bin", "size": str(len(weights))}
    assert (_cache(server) / "models" / "w.bin").read_bytes() == weights
    assert _run_reader(api) == weights

    # the URL works until it expires: a second PUT replaces the file for the next job
    replaced = b"second version of the weights"
    assert requests.put(target["url"], data=replaced, timeout=30).status_code == 200
    assert _run_reader(api) == replaced
    # so does a fresh URL for the same path, streamed without a Content-Length
    again = api.ok("GET", f"{D}/cache/upload-url", params={"path": "models/w.bin"})
    assert again["url"] != target["url"]
    third = b"third" * 1000
    chunks = (third[i:i + 1000] for i in range(0, len(third), 1000))
    assert requests.put(again["url"], data=chunks, timeout=30).json()["size"] == "5000"
    assert _run_reader(api) == third
    # nothing half-written is left anywhere: uploads are written aside, then renamed
    incoming = Path(server.data_dir) / "cache" / ".incoming"
    assert not incoming.exists() or not list(incoming.iterdir())
    assert not [p for p in _cache(server).rglob("*") if p.name.endswith(".part")]


def test_the_cache_is_listed_and_deleted(api: Api, server: LocalServer) -> None:
    for path, data in (("listed/a.bin", b"a" * 10), ("listed/deep/b.bin", b"b" * 20),
                       ("listed/c.bin", b"c")):
        url = api.ok("GET", f"{D}/cache/upload-url", params={"path": path})["url"]
        assert requests.put(url, data=data, timeout=30).status_code == 200
    assert _run_reader(api, "listed/c.bin") == b"c"  # the job also writes a file of its own
    files = {f["path"]: f for f in api.ok("GET", f"{D}/cache")["files"]}
    assert files["listed/a.bin"]["size"] == "10" and files["listed/deep/b.bin"]["size"] == "20"
    assert files["written-by-job.txt"]["size"] == "10"
    modified = wire.parse_timestamp(files["listed/a.bin"]["modifiedAt"])
    assert abs(modified - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)
    assert list(files) == sorted(files)

    deleted = api.ok("DELETE", f"{D}/cache/listed/a.bin")
    assert deleted["ok"] is True and "listed/a.bin" in deleted["message"]
    assert not (_cache(server) / "listed" / "a.bin").exists()
    assert_error(api("DELETE", f"{D}/cache/listed/a.bin"), 404, "listed/a.bin", "GET /v1/dev/cache")
    # a folder goes with everything in it
    assert "2 files" in api.ok("DELETE", f"{D}/cache/listed")["message"]
    assert not any(f["path"].startswith("listed/") for f in api.ok("GET", f"{D}/cache")["files"])
    # dot segments, percent-encoded so that no URL library removes them on the way
    sentinel = Path(server.data_dir) / "cache" / "sentinel.txt"
    sentinel.write_text("outside USER_CACHE_DIR")
    assert_error(api("DELETE", f"{D}/cache/%2E%2E/sentinel.txt"), 400, "'..'")
    assert_error(api("DELETE", f"{D}/cache/%2Fetc%2Fpasswd"), 400, "absolute")
    assert sentinel.exists()
    assert_error(requests.delete(f"{server.base_url}{D}/cache/written-by-job.txt", timeout=30),
                 401)
    assert_error(requests.get(f"{server.base_url}{D}/cache", timeout=30), 401)
    assert_error(requests.get(f"{server.base_url}{D}/cache/upload-url",
                              params={"path": "x.bin"}, timeout=30), 401)


@pytest.mark.parametrize(("path", "words"), [
    ("/etc/passwd", ("absolute", "relative", "models/w.bin")),
    ("../outside.bin", ("'..'", "inside USER_CACHE_DIR")),
    ("models/../../x.bin", ("'..'",)),
    ("./x.bin", ("'.'",)),
    ("models//w.bin", ("empty name", "models/w.bin")),
    ("models/", ("empty name", "name the file")),
    ("", ("empty", "models/w.bin")),
    ("a\x00b", ("NUL", "printable")),
    ("a\nb", ("control character",)),
    ("models\\w.bin", ("separate folders with '/'",)),
    ("x" * 1025, ("1025 bytes", "at most 1024")),
    ("m/" + "y" * 256, ("longer than 255 bytes", "shorter")),
])
def test_bad_paths_are_refused_naming_the_fix(api: Api, server: LocalServer, path: str,
                                              words: tuple[str, ...]) -> None:
    before = sorted(p for p in Path(server.data_dir).rglob("*"))
    assert_error(api("GET", f"{D}/cache/upload-url", params={"path": path}), 400, *words)
    assert sorted(p for p in Path(server.data_dir).rglob("*")) == before


def test_missing_path_and_conflicts(api: Api, server: LocalServer) -> None:
    assert_error(api("GET", f"{D}/cache/upload-url"), 400, "path")
    url = api.ok("GET", f"{D}/cache/upload-url", params={"path": "conflict/w.bin"})["url"]
    assert requests.put(url, data=b"w", timeout=30).status_code == 200
    # a file cannot replace a folder, nor sit below a file
    assert_error(api("GET", f"{D}/cache/upload-url", params={"path": "conflict"}), 409,
                 "folder", "DELETE /v1/dev/cache/conflict")
    assert_error(api("GET", f"{D}/cache/upload-url", params={"path": "conflict/w.bin/x"}),
                 409, "is a file", "choose another path")
    # the same checks when the bytes arrive: a folder that appeared after the URL was issued
    late = api.ok("GET", f"{D}/cache/upload-url", params={"path": "late"})["url"]
    (_cache(server) / "late").mkdir()
    assert_error(requests.put(late, data=b"x", timeout=30), 409, "folder")
    api.ok("DELETE", f"{D}/cache/conflict")
    api.ok("DELETE", f"{D}/cache/late")


def test_unknown_token_and_size_cap(api: Api, server: LocalServer) -> None:
    assert_error(requests.put(f"{server.base_url}/local/cache/no-such-token", data=b"x",
                              timeout=30), 404, "upload-url")
    url = api.ok("GET", f"{D}/cache/upload-url", params={"path": "capped.bin"})["url"]
    assert requests.put(url, data=b"kept", timeout=30).status_code == 200
    # too big (declared, or streamed without a length): 413, the earlier file kept
    assert_error(requests.put(url, data=b"x" * (CAP + 1), timeout=30), 413, "limit")
    chunks = (b"y" * 8192 for _ in range(CAP // 8192 + 1))
    assert_error(requests.put(url, data=chunks, timeout=30), 413, "limit")
    assert (_cache(server) / "capped.bin").read_bytes() == b"kept"
    incoming = Path(server.data_dir) / "cache" / ".incoming"
    assert not incoming.exists() or not list(incoming.iterdir())


def test_an_expired_upload_url_is_gone(start_server: ServerFactory) -> None:
    srv = start_server(config_overrides={"cache_upload_ttl": 0.2})
    api = Api(srv.base_url, srv.api_key)
    target = api.ok("GET", f"{D}/cache/upload-url", params={"path": "late.bin"})
    time.sleep(0.3)
    # as an expired result link: 410 in ByteNite's error shape, saying what to do
    assert_error(requests.put(target["url"], data=b"x", timeout=30), 410, "expired",
                 "GET /v1/dev/cache/upload-url?path=late.bin")
    assert not (_cache(srv) / "late.bin").exists()


def test_upload_urls_survive_a_restart(tmp_path: Path) -> None:
    # Started here: the test stops the server and opens its data dir again.
    with LocalServer.start(tmp_path, api_keys=(TEST_API_KEY,), in_process=True) as first:
        target = Api(first.base_url, TEST_API_KEY).ok("GET", f"{D}/cache/upload-url",
                                                       params={"path": "kept.bin"})
        token = target["url"].rsplit("/", 1)[1]
    with LocalServer.start(tmp_path, api_keys=(TEST_API_KEY,), in_process=True) as second:
        put = requests.put(f"{second.base_url}/local/cache/{token}", data=b"kept", timeout=30)
        assert put.status_code == 200, put.text
    assert (tmp_path / "cache" / "user" / "kept.bin").read_bytes() == b"kept"


# -- downloads ----------------------------------------------------------------------------------


def test_a_pushed_app_round_trips(api: Api, tmp_path: Path) -> None:
    folder = write_app(tmp_path / "src", "round-trip", "print('round trip')\n",
                       schema={"type": "object", "properties": {"n": {"type": "integer"}}},
                       files={"app/lib/util.py": b"X = '\xc3\xa9'\n",
                              "weights.bin": bytes(range(256))})
    pushed = api.ok("POST", f"{D}/apps", json={"data": _b64(tar_folder(folder))})
    for tag in ("round-trip", "round-trip@0", "round-trip@0.1", pushed["id"]):
        got = api.ok("GET", f"{D}/apps/{tag}/download")
        assert set(got) == {"data", "tag", "hash"} and got["tag"] == "round-trip@0.1"
        archive = base64.b64decode(got["data"])
        assert got["hash"] == hashlib.sha256(archive).hexdigest()
        # the same reproducible tar the client pushed, so the same hash as the app record
        assert got["hash"] == pushed["hash"]
        assert _unpack(got["data"], tmp_path / f"out-{tag}") == _files(folder)
    # and what was downloaded pushes back unchanged
    again = api.ok("POST", f"{D}/apps", json={"data": got["data"]})
    assert (again["id"], again["hash"]) == (pushed["id"], pushed["hash"])


def test_bundled_and_apps_dir_apps_and_engines_download(api: Api, tmp_path: Path,
                                                        apps_dir: Path) -> None:
    got = api.ok("GET", f"{D}/apps/hello-world/download")
    assert got["tag"].startswith("hello-world@")
    assert _unpack(got["data"], tmp_path / "hello") == _files(BUNDLED / "hello-world")
    assert {"manifest.json", "app/main.py", "template.json"} <= set(_files(tmp_path / "hello"))

    got = api.ok("GET", f"{D}/apps/from-disk/download")
    assert _unpack(got["data"], tmp_path / "disk") == _files(apps_dir / "from-disk")
    assert (tmp_path / "disk" / "data" / "table.csv").read_text() == "a,b\n1,2\n"

    engine = write_engine(tmp_path / "src", "cutter", "print('cut')\n", "partitioner",
                          version="1.0")
    api.ok("POST", f"{D}/engines", json={"data": _b64(tar_folder(engine))})
    got = api.ok("GET", f"{D}/engines/cutter@1/download")
    assert got["tag"] == "cutter@1.0"
    assert _unpack(got["data"], tmp_path / "cutter") == _files(engine)
    got = api.ok("GET", f"{D}/engines/cutter/download", params={"type": "partitioner"})
    assert got["tag"] == "cutter@1.0"

    assert_error(api("GET", f"{D}/engines/passthrough/download",
                     params={"type": "assembler"}), 400, "built in")
    assert_error(api("GET", f"{D}/apps/no-such-app/download"), 404, "no-such-app")
    assert_error(api("GET", f"{D}/engines/no-such-engine/download"), 404, "no-such-engine")
    assert_error(api("GET", f"{D}/apps/cutter/download"), 404, "cutter")


# -- client.dev against the real server ---------------------------------------------------------


def test_client_uploads_to_the_cache_and_jobs_see_it(client: Client, api: Api,
                                                     server: LocalServer,
                                                     tmp_path: Path) -> None:
    dev = client.dev
    local = tmp_path / "w.bin"
    local.write_bytes(os.urandom(CAP - 1))
    assert dev.upload_to_cache(local, "client/w.bin") == "client/w.bin"
    assert _run_reader(api, "client/w.bin") == local.read_bytes()
    assert dev.upload_to_cache(b"replaced", "client/w.bin") == "client/w.bin"
    with local.open("rb") as fh:
        assert dev.upload_to_cache(fh, "client/from-handle.bin") == "client/from-handle.bin"
    assert _run_reader(api, "client/w.bin") == b"replaced"
    listed = {f["path"]: f for f in dev.cache_files()}
    assert listed["client/w.bin"]["size"] == "8"
    assert listed["client/from-handle.bin"]["size"] == str(CAP - 1)

    target = dev.cache_upload_url("client/x.bin")
    assert target["method"] == "PUT" and target["url"].startswith(server.base_url)

    with pytest.raises(BadRequestError) as bad:
        dev.upload_to_cache(b"x", "../escape.bin")
    assert "'..'" in str(bad.value) and "USER_CACHE_DIR" in str(bad.value)
    with pytest.raises(FileNotFoundError):
        dev.upload_to_cache(tmp_path / "missing.bin", "client/missing.bin")

    with pytest.raises(BadRequestError, match=r"'\.\.'"):
        dev.delete_from_cache("client/../../api_key")  # reaches the server as given
    assert dev.delete_from_cache("client/w.bin")["ok"] is True
    with pytest.raises(NotFoundError):
        dev.delete_from_cache("client/w.bin")
    assert "client/w.bin" not in {f["path"] for f in dev.cache_files()}
    dev.delete_from_cache("client")


def test_client_downloads_apps_and_engines(client: Client, tmp_path: Path) -> None:
    dev = client.dev
    folder = write_app(tmp_path / "src", "client-pull", "print('pulled')\n",
                       files={"app/more.py": "Y = 1\n"})
    dev.push_app(folder)
    out = dev.download_app("client-pull@0.1", tmp_path / "pulled")
    assert out == tmp_path / "pulled" and _files(out) == _files(folder)
    # a non-empty folder is refused unless overwrite=True
    with pytest.raises(FileExistsError, match="overwrite=True"):
        dev.download_app("client-pull", out)
    (out / "app" / "main.py").write_text("edited\n")
    dev.download_app("client-pull", out, overwrite=True)
    assert _files(out) == _files(folder)

    assert _files(dev.download_app("hello-world", tmp_path / "hello")) == _files(
        BUNDLED / "hello-world")
    with pytest.raises(NotFoundError):
        dev.download_app("no-such-app", tmp_path / "none")
    assert not (tmp_path / "none").exists()

    engine = write_engine(tmp_path / "src", "client-joiner", "print('join')\n", "assembler",
                          version="0.2")
    dev.push_engine(engine)
    got = dev.download_engine("client-joiner", tmp_path / "joiner", "assembler")
    assert _files(got) == _files(engine)
