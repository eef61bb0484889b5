"""Template files as ByteNite's public app repositories write them, against a real ByteNite
Local: defaults under ``default_params`` (each section possibly in the job-request shape
``{"app_id", "version", "parameters"}``) apply to jobs, and keys ByteNite Local does not read
are reported (the push answer, the template records, the server's log, ``%bytenite
template ID``) rather than dropped silently."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bytenite_nb.local import LocalServer
from bytenite_nb.testing import TestingShell
from tests.kit.apps import write_app, write_engine
from tests.kit.loopback import Api, C
from tests.kit.servers import ServerFactory

D = "/v1/dev"

#: Partitioner: one chunk per ``params.chunk_size`` URLs of ``params.urls`` (a JSON list);
#: none when there are no URLs.
URL_FANOUT = """
import json, os
params = json.loads(os.environ["PARTITIONER_PARAMS"])
urls, size = params.get("urls") or [], int(params.get("chunk_size", 1))
for i in range(0, len(urls), size):
    with open(os.path.join(os.environ["CHUNKS_DIR"], f"data_{i // size}.bin"), "w") as f:
        json.dump(urls[i:i + size], f)
print(f"{len(urls)} urls")
"""

#: App: "scrapes" its URLs: one item per URL, named after its last path segment.
FAKE_SCRAPER = """
import json, os
params = json.loads(os.environ["APP_PARAMS"])
urls = json.load(open(os.path.join(os.environ["TASK_DIR"], "data.bin")))
items = [{"url": u, "title": u.rsplit("/", 1)[-1], "timeout": params.get("timeout")}
         for u in urls]
with open(os.path.join(os.environ["TASK_RESULTS_DIR"],
                       f"items_{os.environ['CHUNK_NUMBER']}.json"), "w") as f:
    json.dump(items, f)
"""

#: Assembler: every item in ``summary.json``, or "No items found".
COMBINE = """
import json, os
folder = os.environ["TASK_RESULTS_DIR"]
items = [i for name in sorted(os.listdir(folder))
         for i in json.load(open(os.path.join(folder, name)))]
with open(os.path.join(os.environ["OUTPUT_DIR"], "summary.json"), "w") as f:
    json.dump({"items": items} if items else {"message": "No items found"}, f)
"""

#: A template file in the shape of web-scraper's: defaults under default_params, each
#: section in the job-request shape, and a key ByteNite Local does not read.
SCRAPER_TEMPLATE: dict[str, Any] = {
    "id": "scraper-template",
    "description": "fan out URLs, scrape, combine",
    "app": "fake-scraper",
    "partitioner": "url-fanout",
    "assembler": "combine",
    "default_params": {
        "partitioner": {"app_id": "url-fanout", "version": "0.1",
                        "parameters": {"urls": ["https://example.com/a", "https://example.com/b",
                                                "https://example.com/c"], "chunk_size": 1}},
        "app": {"app_id": "fake-scraper", "version": "0.1",
                "parameters": {"timeout": 30000, "headless": True}},
        "assembler": {"app_id": "combine", "version": "0.1", "parameters": {}},
    },
    "visibility": "private",
}


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory,
           tmp_path_factory: pytest.TempPathFactory) -> LocalServer:
    root = tmp_path_factory.mktemp("scraper-like")
    write_engine(root, "url-fanout", URL_FANOUT, "partitioner")
    write_app(root, "fake-scraper", FAKE_SCRAPER, template=False)
    write_engine(root, "combine", COMBINE, "assembler")
    return start_module_server(apps_dirs=[root])


def test_default_params_are_the_templates_defaults(api: Api) -> None:
    pushed = api.ok("POST", f"{D}/templates", json=SCRAPER_TEMPLATE)
    assert pushed["template"]["params"]["partitioner"]["chunk_size"] == 1
    job = api.run(templateId="scraper-template")
    assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
    assert job["numChunks"] == "3"
    summary = json.loads(api.results(job["id"])["summary.json"])
    assert [i["title"] for i in summary["items"]] == ["a", "b", "c"]
    assert {i["timeout"] for i in summary["items"]} == {30000}
    # A job's own params still win, section by section.
    job = api.run(templateId="scraper-template",
                  params={"partitioner": {"urls": ["https://example.com/z"]}})
    assert [i["title"] for i in json.loads(api.results(job["id"])["summary.json"])["items"]] \
        == ["z"]


def test_unknown_keys_are_reported_not_dropped(api: Api,
                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bytenite_nb.server.execution.registry"):
        pushed = api.ok("POST", f"{D}/templates", json={**SCRAPER_TEMPLATE,
                                                        "id": "with-extras",
                                                        "scheduling": {"cron": "0 * * * *"}})
    assert pushed["message"].startswith(
        "template with-extras saved; unknown key(s) ignored: visibility, scheduling (ByteNite "
        "Local reads id, description, app, partitioner, assembler, params (or default_params)")
    assert pushed["template"]["unknownKeys"] == ["visibility", "scheduling"]
    assert api.ok("GET", f"{D}/templates/with-extras")["unknownKeys"] == ["visibility",
                                                                          "scheduling"]
    customer = api.ok("GET", f"{C}/jobs/templates/with-extras")
    record = customer.get("template", customer)
    assert record["unknownKeys"] == ["visibility", "scheduling"]
    assert any("template with-extras: unknown key(s) visibility, scheduling ignored"
               in r.getMessage() for r in caplog.records)


@pytest.fixture()
def ip(server: LocalServer, tmp_path: Path,
       monkeypatch: pytest.MonkeyPatch) -> Iterator[TestingShell]:
    monkeypatch.setenv("BYTENITE_CONFIG_FILE", str(tmp_path / "config.toml"))
    monkeypatch.setenv("BYTENITE_LOCAL_DIR", str(tmp_path / "no-local"))
    monkeypatch.setenv("BYTENITE_API_KEY", server.api_key)
    shell = TestingShell.create()
    shell.run_cell(f"%config ByteniteMagics.base_url = '{server.base_url}'")
    shell.run_cell(f"%config ByteniteMagics.ledger_path = '{tmp_path / 'ledger.jsonl'}'")
    yield shell
    shell.run_cell("%unload_ext bytenite_nb")
    shell.dispose()


def test_the_template_verb_shows_defaults_and_ignored_keys(api: Api, ip: TestingShell) -> None:
    api.ok("POST", f"{D}/templates", json={**SCRAPER_TEMPLATE, "id": "shown"})
    shown = ip.run_line_magic("bytenite", "template shown")
    assert shown.unknown_keys == ["visibility"]
    assert shown.params["app"] == {"timeout": 30000, "headless": True}
    text = str(shown)
    assert "Unknown keys, ignored by the server: visibility" in text
    assert "Unknown keys, ignored by the server: visibility" in shown._repr_html_()
