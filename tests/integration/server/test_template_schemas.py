"""Templates carry their engines' params schemas (``paramsSchema``, a ByteNite Local extension),
over loopback: bundled apps, apps from folders, and apps pushed through the Developer API."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

import bytenite_nb.server
from bytenite_nb.api.dev import tar_folder
from bytenite_nb.local import LocalServer
from tests.kit.apps import ECHO, FANOUT, write_app, write_engine
from tests.kit.loopback import Api, C
from tests.kit.servers import ServerFactory

D = "/v1/dev"
HELLO_SCHEMA = (Path(bytenite_nb.server.__file__).parent / "builtin_apps" / "hello-world"
                / "schema.json")
FANOUT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "fanout partitioner params",
    "type": "object",
    "properties": {"chunks": {"type": "integer", "minimum": 1, "description": "how many"}},
    "additionalProperties": False,
}
PUSHED_SCHEMA = {"type": "object", "required": ["word"],
                 "properties": {"word": {"type": "string", "maxLength": 10}}}


def _listed(api: Api) -> dict[str, dict[str, Any]]:
    data = api.ok("GET", f"{C}/jobs/templates", params={"pagination.limit": 1000})["data"]
    return {t["id"]: t for t in data}


def _one(api: Api, template_id: str) -> dict[str, Any]:
    return api.ok("GET", f"{C}/jobs/templates/{template_id}")["template"]


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory,
           tmp_path_factory: pytest.TempPathFactory) -> LocalServer:
    apps = tmp_path_factory.mktemp("schema-apps")
    write_app(apps, "plain", ECHO)  # no schema.json anywhere: plain-template
    write_engine(apps, "cut", FANOUT, "partitioner", schema=FANOUT_SCHEMA)
    write_app(apps, "cut-plain", ECHO, template={"partitioner": "cut@0"})
    return start_module_server(apps_dirs=(apps,), workers=2)


def test_bundled_hello_world_template_carries_its_app_schema(api: Api) -> None:
    schema = json.loads(HELLO_SCHEMA.read_text())
    assert "case" in schema["properties"]
    listed = _listed(api)["hello-world-template"]
    assert listed["paramsSchema"] == {"app": schema}  # passthrough engines have none
    assert _one(api, "hello-world-template")["paramsSchema"] == {"app": schema}
    # the bundled csv-rows-template has a schema for every section
    csv_rows = _one(api, "csv-rows-template")["paramsSchema"]
    assert set(csv_rows) == {"app", "partitioner", "assembler"}
    assert all(s.get("type") == "object" for s in csv_rows.values())


def test_template_without_schemas_has_an_empty_params_schema(api: Api) -> None:
    assert _listed(api)["plain-template"]["paramsSchema"] == {}
    assert _one(api, "plain-template")["paramsSchema"] == {}


def test_a_partitioner_schema_shows_under_partitioner(api: Api) -> None:
    assert _listed(api)["cut-plain-template"]["paramsSchema"] == {"partitioner": FANOUT_SCHEMA}
    assert _one(api, "cut-plain-template")["paramsSchema"] == {"partitioner": FANOUT_SCHEMA}
    # the same schema checks a job's params at creation
    answer = api("POST", f"{C}/jobs", json={"templateId": "cut-plain-template",
                                            "params": {"partitioner": {"chunks": 0}}})
    assert answer.status_code == 400 and "partitioner.chunks" in answer.json()["message"]
    # /v1/computing serves the same records
    computing = api.ok("GET", "/v1/computing/jobs/templates/cut-plain-template")["template"]
    assert computing["paramsSchema"] == {"partitioner": FANOUT_SCHEMA}


def test_pushed_templates_carry_the_schemas_of_pushed_apps(api: Api, tmp_path: Path) -> None:
    app = write_app(tmp_path, "pushed-words", ECHO, schema=PUSHED_SCHEMA, template=False)
    api.ok("POST", f"{D}/apps", json={"data": base64.b64encode(tar_folder(app)).decode()})
    api.ok("POST", f"{D}/apps/pushed-words/activate")
    # a template pushed on its own; its assembler tag names nothing (yet): that section is absent
    api.ok("POST", f"{D}/templates", json={
        "id": "pushed-words-template", "description": "pushed", "app": "pushed-words@0",
        "partitioner": "cut", "assembler": "no-such-assembler"})
    expected = {"app": PUSHED_SCHEMA, "partitioner": FANOUT_SCHEMA}
    assert _listed(api)["pushed-words-template"]["paramsSchema"] == expected
    assert _one(api, "pushed-words-template")["paramsSchema"] == expected
