"""Developer API client: what it sends (mocked HTTP); the server side is tested end to end."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from pathlib import Path

import pytest
import responses

from bytenite_nb.api import Client
from bytenite_nb.api.dev import tar_folder
from tests.unit.api._scripted import KEY

BASE = "http://bytenite.test"


def app_folder(root: Path) -> Path:
    folder = root / "shout"
    (folder / "app" / "__pycache__").mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"name": "shout", "version": "0.1"}))
    (folder / "app" / "main.py").write_text("print('hi')\n")
    (folder / "app" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"junk")
    (folder / "template.json").write_text(json.dumps({"id": "shout-template", "app": "shout"}))
    return folder


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
