"""``bytenite-nb envs list|size|remove|remove-unused`` and ``bytenite-nb cache
push|list|delete [--shared]`` end to end against a real ByteNite Local (its environments in a
folder of its own, so what is listed is what these tests built)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bytenite_nb.local import LocalServer
from tests.kit.apps import PACKAGE_REPORT, SIDE_BY_SIDE, SMALL_PACKAGE, write_app
from tests.kit.cli import Cli, failed, ok
from tests.kit.loopback import Api
from tests.kit.servers import ServerFactory


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory,
           tmp_path_factory: pytest.TempPathFactory) -> LocalServer:
    root = tmp_path_factory.mktemp("cli-env-apps")
    write_app(root, "with-package", PACKAGE_REPORT,
              files={"app/requirements.txt": SMALL_PACKAGE + "\n"})
    envs = tmp_path_factory.mktemp("cli-envs")
    return start_module_server(apps_dirs=[root], config_overrides={"envs_dir": envs})


def test_envs_list_size_and_remove(cli: Cli, server: LocalServer, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert ok(cli("envs", "list")).out.startswith("No app environments yet")
    api = Api(server.base_url, server.api_key)
    assert api.run(templateId="with-package-template")["state"] == "JOB_STATE_COMPLETE"

    header, row = ok(cli("envs", "list")).out.splitlines()  # (80 columns: cut to fit)
    assert header.split() == ["NAME", "SIZE", "REQUIREMENTS", "LAST", "USED", "USED", "BY"]
    assert len(row) <= 80 and row.startswith("py3.")
    monkeypatch.setenv("COLUMNS", "160")
    header, row = ok(cli("envs", "list")).out.splitlines()
    assert SMALL_PACKAGE in row and row.endswith("app with-package@0.1")
    records = ok(cli("envs", "list", "--json")).json()
    assert isinstance(records, list) and len(records) == 1
    used = records[0]
    assert used["requirements"] == [SMALL_PACKAGE]
    assert used["usedBy"] == ["app with-package@0.1"] and used["complete"] is True

    # A pushed app whose requirements then change leaves its first environment unused.
    folder = write_app(tmp_path, "changing", PACKAGE_REPORT,
                       template={"params": {"app": {"module": "termcolor"}}},
                       files={"app/requirements.txt": SIDE_BY_SIDE[0] + "\n"})
    ok(cli("app", "push", str(folder)))
    ok(cli("app", "activate", "changing"))
    assert api.run(templateId="changing-template")["state"] == "JOB_STATE_COMPLETE"
    (folder / "app" / "requirements.txt").write_text(SIDE_BY_SIDE[1] + "\n")
    ok(cli("app", "push", str(folder)))
    size = ok(cli("envs", "size"))
    first, second = size.out.splitlines()
    assert first.startswith("2 environments: ") and first.endswith("iB")
    assert second.startswith("1 unused: ") and "'bytenite-nb envs remove-unused' frees it" in \
        second
    sizes = ok(cli("envs", "size", "--json")).json()
    assert sizes["environments"] == 2 and sizes["unused"] == 1
    assert int(sizes["size"]) > int(sizes["unusedSize"]) > 0

    removed = ok(cli("envs", "remove-unused"))
    assert removed.out.startswith("Removed 1 unused environment (")
    names = [r["name"] for r in ok(cli("envs", "list", "--json")).json()]
    assert names == [used["name"]]
    assert ok(cli("envs", "remove-unused", "--json")).json()["removed"] == []

    assert ok(cli("envs", "remove", used["name"])).out.startswith(
        f"Removed environment {used['name']} (")
    failed(cli("envs", "remove", used["name"]), 3, "no environment", "envs list")
    # Needed again: the next job builds it again.
    assert api.run(templateId="with-package-template")["state"] == "JOB_STATE_COMPLETE"
    assert [r["name"] for r in ok(cli("envs", "list", "--json")).json()] == [used["name"]]


def test_cache_push_list_delete_shared(cli: Cli, env: Path) -> None:
    weights = env / "weights.bin"
    weights.write_bytes(b"\x00" * 2048)
    pushed = ok(cli("cache", "push", "--shared", "weights.bin", "models/w.bin"))
    assert pushed.out.strip() == ("Stored weights.bin as SHARED_CACHE_DIR/models/w.bin "
                                  "(2.0 KiB); jobs started from now on read it there")
    listed = ok(cli("cache", "list", "--shared")).out.splitlines()
    assert listed[0].split() == ["PATH", "SIZE", "MODIFIED"]
    assert listed[1].startswith("models/w.bin") and "2.0 KiB" in listed[1]
    assert "models/w.bin" not in ok(cli("cache", "list")).out  # the user cache is apart
    ok(cli("cache", "push", "weights.bin"))  # into the user cache, under its own name
    assert [f["path"] for f in ok(cli("cache", "list", "--json")).json()] == ["weights.bin"]

    assert ok(cli("cache", "delete", "--shared", "models/w.bin")).out.strip() == \
        "Deleted models/w.bin from the shared cache (1 file)"
    failed(cli("cache", "delete", "--shared", "models/w.bin"), 3, "shared cache",
           "cache list --shared")
    assert ok(cli("cache", "list", "--shared", "--json")).json() == []
    assert ok(cli("cache", "list", "--shared")).out.startswith("SHARED_CACHE_DIR is empty")
    failed(cli("cache", "push", "--shared", "missing.bin", "x.bin"), 2, "no file at missing.bin")
    failed(cli("cache", "push", "--shared", "weights.bin", "../x.bin"), 1, "'..'")
    assert json.loads(json.dumps(ok(cli("cache", "list", "--json")).json()))
