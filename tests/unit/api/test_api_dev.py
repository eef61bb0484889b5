"""Developer API client: what it sends (mocked HTTP); the server side is tested end to end."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import responses

from bytenite_nb.api import Client
from bytenite_nb.api.dev import tar_folder
from bytenite_nb.api.errors import APIResponseError
from tests.kit.apps import write_app
from tests.kit.archives import make_tar
from tests.unit.api._scripted import KEY

BASE = "http://bytenite.test"


def app_folder(root: Path) -> Path:
    return write_app(root, "shout", "print('hi')\n",
                     files={"app/__pycache__/main.cpython-311.pyc": b"junk"})


def test_tar_is_relative_reproducible_and_skips_caches(tmp_path: Path) -> None:
    folder = app_folder(tmp_path)
    data = tar_folder(folder)
    assert data == tar_folder(folder)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == ["app/main.py", "manifest.json", "template.json"]
    with pytest.raises(FileNotFoundError):
        tar_folder(folder / "app")  # no manifest.json there


def test_push_list_get_activate(tmp_path: Path) -> None:
    folder = app_folder(tmp_path)
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/auth/access_token", json={"token": "t", "expiresIn": "3600"})
        rsps.post(f"{BASE}/v1/dev/apps", json={"app": {"name": "shout", "version": "0.1"}})
        rsps.get(f"{BASE}/v1/dev/apps", json={"apps": [{"name": "shout"}]})
        rsps.get(f"{BASE}/v1/dev/apps/shout@0.1", json={"app": {"name": "shout"}})
        rsps.post(f"{BASE}/v1/dev/apps/shout@0.1/activate", json={"ok": True})
        rsps.post(f"{BASE}/v1/dev/templates", json={"template": {"id": "shout-template"}})
        dev = Client(api_key=KEY, base_url=BASE).dev
        assert dev.push_app(folder) == {"name": "shout", "version": "0.1"}
        sent = json.loads(rsps.calls[1].request.body)
        assert base64.b64decode(sent["data"]) == tar_folder(folder)
        assert dev.apps() == [{"name": "shout"}]
        assert dev.app("shout@0.1") == {"name": "shout"}
        assert dev.activate_app("shout@0.1") == {"ok": True}
        assert dev.push_template(folder) == {"id": "shout-template"}
        with pytest.raises(ValueError):
            dev.push_template({"app": "no id"})


def _download_answer(archive: bytes, **extra: object) -> dict[str, object]:
    return {"data": base64.b64encode(archive).decode(), "tag": "shout@0.1", **extra}


def test_download_app_unpacks_what_a_push_sends(tmp_path: Path) -> None:
    folder = app_folder(tmp_path)
    archive = tar_folder(folder)
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/auth/access_token", json={"token": "t", "expiresIn": "3600"})
        rsps.get(f"{BASE}/v1/dev/apps/shout@0.1/download", json=_download_answer(
            archive, hash=hashlib.sha256(archive).hexdigest()))
        rsps.get(f"{BASE}/v1/dev/engines/cut/download?type=partitioner",
                 json={"engineData": base64.b64encode(archive).decode()})
        dev = Client(api_key=KEY, base_url=BASE).dev
        out = dev.download_app("shout@0.1", tmp_path / "pulled")
        assert out == tmp_path / "pulled"
        assert (out / "app" / "main.py").read_text() == "print('hi')\n"
        assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
            "app/main.py", "manifest.json", "template.json"]
        # engines: ByteNite's engine messages carry the archive as engineData
        got = dev.download_engine("cut", tmp_path / "cut", "partitioner")
        assert (got / "manifest.json").is_file()


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize(("archive", "words"), [
    (make_tar({"manifest.json": b"{}", "../escaped.py": b"x"}), ("../escaped.py", "inside")),
    (make_tar({"manifest.json": b"{}", "/tmp/abs.py": b"x"}), ("/tmp/abs.py", "absolute")),
    (make_tar({"manifest.json": b"{}"}, extra=[_link("app/link.py", "/etc/passwd")]), ("links",)),
    (make_tar({"manifest.json": b"{}"},
              extra=[_link("app/hard.py", "manifest.json", tarfile.LNKTYPE)]),
     ("links",)),
    (make_tar({"manifest.json": b"{}"}, extra=[_link("app/pipe", "", tarfile.FIFOTYPE)]),
     ("only files",)),
    (b"not a tar at all" * 64, ("not a readable tar",)),
])
def test_download_app_refuses_unsafe_archives_writing_nothing(
    tmp_path: Path, archive: bytes, words: tuple[str, ...]
) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/auth/access_token", json={"token": "t", "expiresIn": "3600"})
        rsps.get(f"{BASE}/v1/dev/apps/shout/download", json=_download_answer(archive))
        with pytest.raises(APIResponseError) as caught:
            Client(api_key=KEY, base_url=BASE).dev.download_app("shout", tmp_path / "out")
    for word in words:
        assert word in str(caught.value)
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.rglob("escaped.py")) and not Path("/tmp/abs.py").exists()


def test_download_app_checks_the_answer_and_the_target_folder(tmp_path: Path) -> None:
    archive = tar_folder(app_folder(tmp_path))
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/auth/access_token", json={"token": "t", "expiresIn": "3600"})
        rsps.get(f"{BASE}/v1/dev/apps/shout/download",
                 json=_download_answer(archive, hash="0" * 64))
        rsps.get(f"{BASE}/v1/dev/apps/empty/download", json={"tag": "empty@0.1"})
        dev = Client(api_key=KEY, base_url=BASE).dev
        with pytest.raises(APIResponseError, match="does not match its hash"):
            dev.download_app("shout", tmp_path / "out")
        with pytest.raises(APIResponseError, match='no "data"'):
            dev.download_app("empty", tmp_path / "out")
        assert not (tmp_path / "out").exists()
        # no request at all for a folder that is not empty, or is a file
        with pytest.raises(FileExistsError, match="overwrite=True"):
            dev.download_app("shout", tmp_path / "shout")
        (tmp_path / "a-file").write_text("x")
        with pytest.raises(NotADirectoryError):
            dev.download_app("shout", tmp_path / "a-file")


def test_upload_to_cache_puts_the_bytes_to_the_presigned_url(tmp_path: Path) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"\x00\x01weights!")
    put_url = "http://files.bytenite.test/local/cache/tok123"
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/auth/access_token", json={"token": "t", "expiresIn": "3600"})
        rsps.get(f"{BASE}/v1/dev/cache/upload-url?path=models/w.bin",
                 json={"url": put_url, "method": "PUT", "path": "models/w.bin",
                       "expiresAt": "2030-01-01T00:00:00.000Z"})
        rsps.put(put_url, json={"ok": True, "path": "models/w.bin", "size": "10"})
        rsps.get(f"{BASE}/v1/dev/cache", json={"files": [{"path": "models/w.bin"}]})
        rsps.delete(f"{BASE}/v1/dev/cache/models/w%20b.bin", json={"ok": True})
        dev = Client(api_key=KEY, base_url=BASE).dev
        assert dev.upload_to_cache(weights, "models/w.bin") == "models/w.bin"
        put = rsps.calls[2].request
        assert put.method == "PUT" and "Authorization" not in put.headers
        assert put.headers["Content-Length"] == "10"
        body = put.body.read() if hasattr(put.body, "read") else put.body
        assert body == b"\x00\x01weights!"
        assert dev.cache_files() == [{"path": "models/w.bin"}]
        assert dev.delete_from_cache("models/w b.bin") == {"ok": True}
    with pytest.raises(FileNotFoundError):
        dev.upload_to_cache(tmp_path / "missing.bin", "models/w.bin")  # before any request
