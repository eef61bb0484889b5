"""``bytenite-nb app|engine|template|auth|version`` end to end against a real ByteNite Local.

Commands run through ``main(argv)`` (stdout, stderr and the exit code captured), and through
the installed console script in a subprocess (once plainly, once on a terminal for the hidden
key prompt). Each test talks to a private server over loopback; the user's config file and
any running ByteNite Local are kept out through the environment.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bytenite_nb.api.client import Client
from bytenite_nb.api.errors import BadRequestError
from bytenite_nb.api.jobs import Job
from bytenite_nb.local import LocalServer
from tests.kit.cli import Cli, failed, ok
from tests.kit.servers import TEST_API_KEY, ServerFactory

KEY = TEST_API_KEY
SCRIPT = Path(sys.executable).parent / "bytenite-nb"


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory) -> LocalServer:
    return start_module_server(workers=2)


def result_bytes(job: Job) -> dict[str, bytes]:
    import requests

    return {r.name: requests.get(r.link, timeout=30).content for r in job.results()}


# -- new -> push -> activate -> template push -> a job -------------------------------------


def test_app_scaffold_runs_unchanged(cli: Cli, env: Path, client: Client) -> None:
    made = ok(cli("app", "new", "shout"))
    assert "manifest.json, app/main.py, schema.json, template.json" in made.out
    folder = env / "shout"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["name"] == "shout" and manifest["entrypoint"] == "main.py"
    assert "type" not in manifest
    main_py = (folder / "app" / "main.py").read_text()
    for variable in ("TASK_DIR", "TASK_RESULTS_DIR", "APP_PARAMS", "CHUNK_NUMBER"):
        assert variable in main_py
    schema = json.loads((folder / "schema.json").read_text())
    assert schema["properties"]["uppercase"]["type"] == "boolean"

    pushed = ok(cli("app", "push", "shout"))
    assert "Pushed app shout@0.1 (inactive" in pushed.out
    assert "shout-template" in pushed.out and "app activate shout@0.1" in pushed.out
    with pytest.raises(BadRequestError, match="inactive"):
        client.submit("shout-template", source=b"x\n")

    assert "app shout@0.1 is active" in ok(cli("app", "activate", "shout")).out
    ok(cli("template", "push", "shout/template.json"))
    job = client.submit("shout-template", source=b"hello\nworld\n",
                        params={"app": {"uppercase": True}})
    job.wait(timeout=120)
    assert result_bytes(job) == {"result_0000.bin": b"HELLO\nWORLD\n"}
    plain = client.submit("shout-template", source=b"as is\n")
    plain.wait(timeout=120)
    assert result_bytes(plain) == {"result_0000.bin": b"as is\n"}


def test_engine_scaffolds_run_a_job(cli: Cli, env: Path, client: Client) -> None:
    ok(cli("app", "new", "caps"))
    made = ok(cli("engine", "new", "cutter"))
    assert "partitioner" in made.out and "--type assembler" in made.out
    ok(cli("engine", "new", "gluer", "--type", "assembler"))
    assert json.loads((env / "cutter" / "manifest.json").read_text())["type"] == "partitioner"
    assert json.loads((env / "gluer" / "manifest.json").read_text())["type"] == "assembler"
    assert not (env / "cutter" / "template.json").exists()
    for variable in ("SOURCE_DIR", "CHUNKS_DIR", "PARTITIONER_PARAMS"):
        assert variable in (env / "cutter" / "app" / "main.py").read_text()
    for variable in ("TASK_RESULTS_DIR", "OUTPUT_DIR", "ASSEMBLER_PARAMS"):
        assert variable in (env / "gluer" / "app" / "main.py").read_text()

    # 'app push' on a partitioner's folder pushes it as an engine, and says so
    pushed = ok(cli("app", "push", "cutter"))
    assert "manifest says it is a partitioner: pushed it as a partitioner" in pushed.out
    assert "Pushed partitioner cutter@0.1" in pushed.out
    assert "cutter" in {e["name"] for e in client.dev.engines()}
    assert "cutter" not in {a["name"] for a in client.dev.apps()}
    ok(cli("engine", "push", "gluer"))
    ok(cli("app", "push", "caps"))

    # 'app activate' on an engine's tag activates the engine, and says so
    activated = ok(cli("app", "activate", "cutter@0.1"))
    assert "cutter@0.1 is a partitioner, not an app" in activated.out
    assert "partitioner cutter@0.1 is active" in activated.out
    ok(cli("engine", "activate", "gluer"))
    ok(cli("app", "activate", "caps@0.1"))

    ok(cli("template", "new", "caps-cut-template", "--app", "caps", "--partitioner", "cutter",
           "--assembler", "gluer"))
    template = json.loads((env / "caps-cut-template.json").read_text())
    assert (template["app"], template["partitioner"], template["assembler"]) == \
        ("caps", "cutter", "gluer")
    assert "Pushed template caps-cut-template" in ok(
        cli("template", "push", "caps-cut-template.json")).out

    text = b"one\ntwo\nthree\nfour\nfive\n" * 4
    job = client.submit("caps-cut-template", source=text,
                        params={"app": {"uppercase": True}, "partitioner": {"chunk_size": 16},
                                "assembler": {"output_name": "all.txt"}})
    job.wait(timeout=120)
    assert job.num_chunks > 1
    assert result_bytes(job) == {"all.txt": text.upper()}


# -- list / get / status: tables and JSON ---------------------------------------------------


def test_tables_fit_80_columns_and_json_is_the_servers_answer(
        cli: Cli, env: Path, client: Client) -> None:
    ok(cli("app", "new", "lister"))
    manifest = json.loads((env / "lister" / "manifest.json").read_text())
    manifest["description"] = "A description long enough to be cut down to fit " * 3
    (env / "lister" / "manifest.json").write_text(json.dumps(manifest))
    ok(cli("app", "push", "lister"))

    table = ok(cli("app", "list")).out.splitlines()
    assert table[0].split() == ["NAME", "VERSION", "STATUS", "UPDATED", "DESCRIPTION"]
    assert all(len(line) <= 80 for line in table), table
    row = next(line for line in table if line.startswith("lister "))
    assert row.split()[1:3] == ["0.1", "inactive"] and row.endswith("…")
    # columns are aligned: every row's VERSION starts where the header's does
    start = table[0].index("VERSION")
    assert all(line[start - 2:start] == "  " and line[start] != " " for line in table[1:])

    listed = ok(cli("app", "list", "--json")).json()
    assert isinstance(listed, list)
    assert {a["name"] for a in listed} == {a["name"] for a in client.dev.apps()}

    engines = ok(cli("engine", "list")).out.splitlines()
    assert engines[0].split()[:4] == ["NAME", "VERSION", "TYPE", "STATUS"]
    assert any(line.split()[:3] == ["passthrough", "0.0", "assembler"] for line in engines)
    assert all(len(line) <= 80 for line in engines)

    fields = ok(cli("app", "get", "lister@0.1")).out.splitlines()
    assert fields[0].split() == ["name", "lister"]
    assert {"version", "status", "entrypoint", "container", "hash"} <= {
        line.split()[0] for line in fields if line and not line.startswith(" ")}
    assert all(len(line) <= 80 for line in fields)
    assert ok(cli("app", "get", "lister", "--json")).json() == client.dev.app("lister")

    assert ok(cli("app", "status", "lister")).out.strip() == "lister@0.1: inactive"
    assert ok(cli("app", "status", "lister", "--json")).json() == {
        "tag": "lister@0.1", "type": "app", "status": "inactive"}
    assert ok(cli("engine", "get", "rows", "--json")).json()["type"] == "partitioner"
    shown = ok(cli("engine", "get", "csv-concat")).out.splitlines()
    assert ["type", "assembler"] in [line.split() for line in shown]

    templates = ok(cli("template", "list")).out.splitlines()
    assert templates[0].split() == ["ID", "APP", "PARTITIONER", "ASSEMBLER", "DESCRIPTION"]
    assert any(line.startswith("hello-world-template ") for line in templates)
    assert all(len(line) <= 80 for line in templates)
    assert {t["id"] for t in ok(cli("template", "list", "--json")).json()} == {
        t["id"] for t in client.dev.templates()}
    shown = ok(cli("template", "get", "hello-world-template")).out.splitlines()
    assert ["app", "hello-world"] in [line.split() for line in shown]
    assert ok(cli("template", "get", "hello-world-template", "--json")).json()["app"] == \
        "hello-world"


def test_deactivate_stops_new_jobs(cli: Cli, env: Path, client: Client) -> None:
    ok(cli("app", "new", "toggle"))
    ok(cli("app", "push", "toggle"))
    ok(cli("template", "push", "toggle"))  # a folder: its template.json
    ok(cli("app", "activate", "toggle"))
    assert ok(cli("app", "deactivate", "toggle")).out.strip() == "app toggle@0.1 is inactive"
    assert ok(cli("app", "status", "toggle")).out.strip() == "toggle@0.1: inactive"
    with pytest.raises(BadRequestError, match="inactive"):
        client.submit("toggle-template", source=b"x")
    answer = ok(cli("engine", "deactivate", "rows", "--type", "partitioner", "--json")).json()
    assert answer["engineStatus"] == "inactive"
    ok(cli("engine", "activate", "rows", "--type", "partitioner"))
    assert ok(cli("engine", "status", "rows")).out.strip() == "rows@0.1: active"


# -- pull ---------------------------------------------------------------------------------


def test_pull_gives_back_what_was_pushed(cli: Cli, env: Path) -> None:
    ok(cli("app", "new", "roundtrip"))
    ok(cli("engine", "new", "rt-split"))
    ok(cli("app", "push", "roundtrip"))
    ok(cli("engine", "push", "rt-split"))

    def files(folder: Path) -> dict[str, bytes]:
        return {p.relative_to(folder).as_posix(): p.read_bytes()
                for p in folder.rglob("*") if p.is_file()}

    assert "Pulled app roundtrip@0.1 into copy/" in ok(
        cli("app", "pull", "roundtrip", "copy")).out
    assert files(env / "copy") == files(env / "roundtrip")
    failed(cli("app", "pull", "roundtrip", "copy"), 2, "copy is not empty", "--force")
    ok(cli("app", "pull", "roundtrip@0.1", "copy", "--force"))

    # default folder: ./NAME, here taken by the source folder
    failed(cli("engine", "pull", "rt-split"), 2, "rt-split is not empty")
    ok(cli("engine", "pull", "rt-split", "split-copy"))
    assert files(env / "split-copy") == files(env / "rt-split")
    (env / "afile").write_text("x")
    failed(cli("app", "pull", "roundtrip", "afile"), 2, "afile is a file")

    assert "Pulled template hello-world-template into hello-world-template.json" in ok(
        cli("template", "pull", "hello-world-template")).out
    pulled = json.loads((env / "hello-world-template.json").read_text())
    assert pulled == {"id": "hello-world-template", "description": "A template for hello-world",
                      "app": "hello-world", "partitioner": "passthrough",
                      "assembler": "passthrough", "params": {}, "config": {}}
    failed(cli("template", "pull", "hello-world-template"), 2, "already exists", "--force")
    ok(cli("template", "pull", "hello-world-template", "--force"))
    ok(cli("template", "pull", "hello-world-template", "-o", "sub/t.json"))
    assert json.loads((env / "sub" / "t.json").read_text()) == pulled


# -- bad input ----------------------------------------------------------------------------


def test_bad_folders_and_manifests(cli: Cli, env: Path) -> None:
    failed(cli("app", "push", "missing"), 2, "no folder at missing", "manifest.json")
    (env / "plain.txt").write_text("x")
    failed(cli("app", "push", "plain.txt"), 2, "is a file")
    (env / "empty").mkdir()
    failed(cli("engine", "push", "empty"), 2, "has no manifest.json", "app new")
    (env / "broken" / "app").mkdir(parents=True)
    (env / "broken" / "manifest.json").write_text('{"name": "broken",\n')
    failed(cli("app", "push", "broken"), 2, "not valid JSON", "line 2", "fix it")
    (env / "broken" / "manifest.json").write_text('["name"]')
    failed(cli("app", "push", "broken"), 2, "must hold a JSON object")
    (env / "broken" / "manifest.json").write_text('{"name": "broken", "type": "mixer"}')
    failed(cli("app", "push", "broken"), 2, "'mixer'", "partitioner, assembler")
    # what only the server checks: its message, exit code 1
    (env / "broken" / "manifest.json").write_text('{"name": "broken"}')
    failed(cli("app", "push", "broken"), 1, "no 'version'", "0.1")

    failed(cli("app", "new", "bad name!"), 2, "not a valid app name")
    ok(cli("app", "new", "taken"))
    failed(cli("app", "new", "taken"), 2, "already exists", "--dir")
    ok(cli("app", "new", "taken", "--dir", "elsewhere"))
    assert (env / "elsewhere" / "taken" / "app" / "main.py").is_file()
    failed(cli("engine", "new", "x", "--type", "app"), 2, "unknown choice 'app'")

    failed(cli("template", "push", "nope.json"), 2, "no template file at nope.json")
    (env / "t.json").write_text("{not json")
    failed(cli("template", "push", "t.json"), 2, "not valid JSON")
    (env / "t.json").write_text('{"app": "hello-world"}')
    failed(cli("template", "push", "t.json"), 2, '"id"')
    (env / "t.json").write_text('{"id": "t", "app": "hello-world", "params": {"apps": {}}}')
    failed(cli("template", "push", "t.json"), 1, "unknown params section")
    failed(cli("template", "new", "bad id!"), 2, "not a valid template id")


def test_unknown_tags_are_exit_code_3(cli: Cli, env: Path) -> None:
    for argv in (("app", "get", "no-such-app"), ("app", "activate", "no-such-app"),
                 ("app", "status", "hello-world@9"), ("app", "pull", "no-such-app"),
                 ("engine", "get", "no-such-engine"), ("engine", "pull", "nope", "--type",
                                                       "assembler")):
        line = failed(cli(*argv), 3, argv[2].split("@")[0], f"{argv[0]} list")
        assert line.startswith(f"bytenite-nb {argv[0]} {argv[1]}: ")
    failed(cli("template", "get", "no-such-template"), 3, "no-such-template",
           "template list")
    failed(cli("template", "pull", "no-such-template"), 3, "no-such-template")
    assert not (env / "no-such-template.json").exists()
    assert not (env / "no-such-app").exists()
    failed(cli("engine", "get", "passthrough"), 2,
           "'bytenite-nb engine get passthrough --type partitioner' (or --type assembler)")
    failed(cli("app", "get", "passthrough"), 2, "both a partitioner and an assembler",
           "engine get passthrough --type")
    failed(cli("engine", "pull", "passthrough", "--type", "assembler"), 1, "built in")


def test_keys_servers_and_command_lines(cli: Cli, env: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYTENITE_API_KEY", "wrong-key")
    line = failed(cli("app", "list"), 4, "rejected the API key", "bytenite-nb auth")
    assert "wrong-key" not in line
    monkeypatch.delenv("BYTENITE_API_KEY")
    failed(cli("template", "list"), 4, "no API key found", "bytenite-nb auth")
    monkeypatch.setenv("BYTENITE_API_KEY", KEY)
    # The environment pairs the key with its BYTENITE_BASE_URL: it is not sent elsewhere.
    line = failed(cli("app", "list", "--server", "http://127.0.0.1:9"), 4,
                  "no API key for http://127.0.0.1:9", "belong to other servers",
                  "auth --server http://127.0.0.1:9")
    assert KEY not in line
    monkeypatch.delenv("BYTENITE_BASE_URL")  # a key that names no server goes anywhere
    failed(cli("app", "list", "--server", "http://127.0.0.1:9"), 5,
           "cannot reach http://127.0.0.1:9", "bytenite-nb serve", "--server")
    failed(cli("app", "list", "--server", "ftp://x"), 2, "http(s) URL")

    failed(cli("app", "lst"), 2, "unknown command 'lst'", "did you mean 'list'")
    failed(cli("templte", "list"), 2, "unknown command 'templte'", "did you mean 'template'")
    failed(cli("engine", "activ8", "x"), 2, "did you mean 'activate'")
    failed(cli("app", "push"), 2, "required: folder", "--help")
    run = cli("app")
    assert run.code == 2 and "new" in run.err and "activate" in run.err
    assert cli("--help").code == 0


def test_version(cli: Cli) -> None:
    from bytenite_nb import __version__

    assert ok(cli("version")).out.startswith(f"bytenite-nb {__version__} (Python ")
    assert ok(cli("version", "--json")).json()["version"] == __version__
    assert ok(cli("--version")).out.strip() == f"bytenite-nb {__version__}"


# -- auth ---------------------------------------------------------------------------------


def test_auth_stores_the_key_0600_and_the_commands_use_it(
        cli: Cli, env: Path, monkeypatch: pytest.MonkeyPatch, server: LocalServer) -> None:
    import io

    config = Path(os.environ["BYTENITE_CONFIG_FILE"])
    monkeypatch.delenv("BYTENITE_API_KEY")
    monkeypatch.delenv("BYTENITE_BASE_URL")
    failed(cli("app", "list"), 4, "no API key")

    # stdin is no terminal here: refused without --api-key-stdin
    failed(cli("auth", "--server", server.base_url), 2, "--api-key-stdin")
    monkeypatch.setattr(sys, "stdin", io.StringIO("wrong-key\n"))
    failed(cli("auth", "--api-key-stdin", "--server", server.base_url), 4, "rejected",
           "nothing was stored")
    assert not config.exists()
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    failed(cli("auth", "--api-key-stdin"), 2, "no key entered")

    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{KEY}\n"))
    stored = ok(cli("auth", "--api-key-stdin", "--server", server.base_url))
    assert KEY not in stored.out + stored.err
    assert f"accepted by {server.base_url}" in stored.out
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    text = config.read_text()
    assert f'api_key = "{KEY}"' in text and f'base_url = "{server.base_url}"' in text

    # every command now finds both without any environment variable
    assert "hello-world" in ok(cli("app", "list")).out
    status = ok(cli("auth", "--status", "--json")).json()
    assert status["server"] == server.base_url and status["key"] == "accepted"
    assert str(config) in status["apiKeyFrom"] and KEY not in json.dumps(status)

    config.write_text(config.read_text().replace(KEY, "stale-key"))
    failed(cli("auth", "--status"), 4, "rejects this API key")

    monkeypatch.setenv("BYTENITE_API_KEY", KEY)
    monkeypatch.setenv("BYTENITE_BASE_URL", server.base_url)
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{KEY}\n"))
    notes = ok(cli("auth", "--api-key-stdin", "--server", server.base_url)).out
    assert "BYTENITE_API_KEY is set" in notes and "BYTENITE_BASE_URL is set" in notes


# -- the installed console script ----------------------------------------------------------


def _script_env() -> dict[str, str]:
    """The test's environment (set by the `env` fixture) for a subprocess."""
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def test_console_script(env: Path, server: LocalServer) -> None:
    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True,
                              timeout=120, env=_script_env(), cwd=env)

    made = run("app", "new", "scripted")
    assert made.returncode == 0, made.stderr
    pushed = run("app", "push", "scripted", "--json")
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["name"] == "scripted"
    missing = run("app", "get", "no-such-app")
    assert missing.returncode == 3 and missing.stdout == ""
    assert missing.stderr.startswith("bytenite-nb app get: No app matches 'no-such-app'")
    assert len(missing.stderr.strip().splitlines()) == 1


def test_auth_prompt_hides_the_key(env: Path, server: LocalServer) -> None:
    pexpect = pytest.importorskip("pexpect")
    child_env = _script_env()
    del child_env["BYTENITE_API_KEY"]
    child = pexpect.spawn(str(SCRIPT), ["auth", "--server", server.base_url], env=child_env,
                          cwd=str(env), encoding="utf-8", timeout=60)
    child.expect("input hidden")
    child.sendline(KEY)
    child.expect(pexpect.EOF)
    child.close()
    shown = (child.before or "")
    assert child.exitstatus == 0, shown
    assert KEY not in shown and "API key stored in" in shown
    assert f'api_key = "{KEY}"' in Path(child_env["BYTENITE_CONFIG_FILE"]).read_text()
