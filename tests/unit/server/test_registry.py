"""Registry: Dev CLI folders, tags, templates, bad folders, params schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bytenite_nb.server.execution.registry import (
    Registry,
    RegistryError,
    parse_tag,
    validate_params,
)
from tests.kit.apps import write_app, write_engine


def _write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))


def test_bundled_content() -> None:
    reg = Registry()
    assert reg.problems == []
    hello = reg.resolve("hello-world", "app")
    assert (hello.name, hello.version, hello.kind, hello.entrypoint) == (
        "hello-world", "0.1", "app", "main.py")
    assert hello.manifest["platform_config"] == {"container": "python:latest"}
    assert hello.entrypoint_path is not None and hello.entrypoint_path.is_file()
    template = reg.template("hello-world-template")
    assert (template.app, template.partitioner, template.assembler) == (
        "hello-world", "passthrough", "passthrough")
    assert template.description == "A template for hello-world"
    p, a, s = reg.resolve_template(template)
    assert p.builtin == "passthrough" and s.builtin == "passthrough" and a is not None
    assert [e.tag for e in reg.resolve_template("csv-rows-template")] == [
        "rows@0.1", "table-ops@0.1", "csv-concat@0.1"]
    for engine in reg.engines():
        assert engine.builtin or engine.schema is not None


def test_tags_resolve_highest_matching_version(tmp_path: Path) -> None:
    for version in ("1.0", "1.2", "1.10", "2.0", "0.9"):
        write_app(tmp_path, "img", "print('x')\n", version=version, template=False,
                  folder=f"img-{version}")
    reg = Registry(bundled=False, dirs=[tmp_path])
    assert reg.problems == []
    assert reg.resolve("img", "app").version == "2.0"
    assert reg.resolve("img@1", "app").version == "1.10"
    assert reg.resolve("img@1.2", "app").version == "1.2"
    assert reg.resolve("img@v0.9", "app").version == "0.9"
    with pytest.raises(RegistryError, match="img@3"):
        reg.resolve("img@3", "app")
    with pytest.raises(RegistryError, match="no app named 'nope'"):
        reg.resolve("nope", "app")
    with pytest.raises(RegistryError, match="there is an app named 'img'"):
        reg.resolve("img", "partitioner")
    with pytest.raises(RegistryError, match="invalid tag"):
        reg.resolve("bad name!", "app")


def test_parse_tag() -> None:
    assert parse_tag("a-b_c") == ("a-b_c", None)
    assert parse_tag("x@1") == ("x", (1,))
    assert parse_tag("x@1.2") == ("x", (1, 2))
    with pytest.raises(RegistryError):
        parse_tag("x@one")


def test_manifest_keys_case_insensitive_and_types(tmp_path: Path) -> None:
    folder = tmp_path / "Fanout"
    _write(folder / "manifest.json", {"Name": "fanout", "Version": "1.1", "Entrypoint": "run.py",
                                      "Type": "Partitioner", "Platform": "docker"})
    _write(folder / "app" / "run.py", "print('hi')\n")
    folder2 = tmp_path / "merge"
    _write(folder2 / "manifest.json", {"name": "merge", "version": 1.0, "type": "assembler"})
    _write(folder2 / "app" / "main.py", "")
    folder3 = tmp_path / "scraper"
    _write(folder3 / "manifest.json", {"name": "scraper", "version": "0.3", "type": "app"})
    _write(folder3 / "app" / "main.py", "")
    reg = Registry(bundled=False, dirs=[tmp_path])
    assert reg.problems == []
    fanout = reg.resolve("fanout@1", "partitioner")
    assert fanout.entrypoint == "run.py" and fanout.entrypoint_path == folder / "app" / "run.py"
    assert reg.resolve("merge", "assembler").version == "1.0"
    assert reg.resolve("scraper", "app").kind == "app"


def test_bad_folders_are_reported_and_skipped(tmp_path: Path) -> None:
    write_app(tmp_path, "good", "print('ok')\n", template=False)
    _write(tmp_path / "broken-json" / "manifest.json", "{not json")
    _write(tmp_path / "broken-json" / "app" / "main.py", "")
    _write(tmp_path / "no-entry" / "manifest.json", {"name": "no-entry", "version": "0.1"})
    _write(tmp_path / "no-version" / "manifest.json", {"name": "nov"})
    _write(tmp_path / "no-version" / "app" / "main.py", "")
    _write(tmp_path / "bad-type" / "manifest.json", {"name": "bt", "version": "0.1",
                                                     "type": "engine"})
    _write(tmp_path / "bad-type" / "app" / "main.py", "")
    _write(tmp_path / "bad-schema" / "manifest.json", {"name": "bs", "version": "0.1"})
    _write(tmp_path / "bad-schema" / "app" / "main.py", "")
    _write(tmp_path / "bad-schema" / "schema.json", {"type": "no-such-type"})
    _write(tmp_path / "rb-app" / "manifest.json", {"name": "rb", "version": "0.1",
                                                   "entrypoint": "index.rb"})
    _write(tmp_path / "rb-app" / "app" / "index.rb", "")
    _write(tmp_path / "no-manifest" / "app" / "main.py", "")
    _write(tmp_path / "bad-name" / "manifest.json", {"name": "../etc", "version": "0.1"})
    _write(tmp_path / "bad-name" / "app" / "main.py", "")
    _write(tmp_path / "passthrough" / "manifest.json", {"name": "passthrough", "version": "0.1",
                                                        "type": "assembler"})
    _write(tmp_path / "passthrough" / "app" / "main.py", "")
    _write(tmp_path / "templates" / "broken-template.json", "{")
    _write(tmp_path / "templates" / "no-app-template.json", {"id": "t1", "app": ""})
    reg = Registry(bundled=False, dirs=[tmp_path, tmp_path / "missing"])
    reasons = {p.path.name: p.reason for p in reg.problems}
    assert reasons["broken-json"].startswith("manifest.json is not valid JSON (line 1")
    assert reasons["no-entry"] == "entrypoint app/main.py not found"
    assert "no 'version'" in reasons["no-version"]
    assert "type 'engine' is not one of" in reasons["bad-type"]
    assert "schema.json is not a valid JSON Schema" in reasons["bad-schema"]
    assert ("runs Python (.py), JavaScript (.js, .mjs, .cjs: node) and shell (.sh: bash)"
            in reasons["rb-app"])
    assert reasons["no-manifest"] == "has an app/ folder but no manifest.json"
    assert "'name'" in reasons["bad-name"]
    assert "built-in" in reasons["passthrough"]
    assert "not valid JSON" in reasons["broken-template.json"]
    assert "no 'app'" in reasons["no-app-template.json"]
    assert reasons["missing"] == "not a directory"
    assert [e.name for e in reg.engines("app")] == ["good"]
    assert all(str(p.path).startswith(str(tmp_path)) for p in reg.problems)


def test_templates_from_app_folders_and_standalone_files(tmp_path: Path) -> None:
    app = write_app(tmp_path / "apps", "img", "print(1)\n", version="1.3", template=False)
    _write(app / "template.json", {"id": "img-template", "description": "d", "app": "img@1",
                                   "partitioner": "passthrough", "assembler": "passthrough"})
    _write(tmp_path / "templates" / "img-big.json", {
        "id": "img-big", "app": "img", "partitioner": "passthrough",
        "dataSource": {"dataSourceDescriptor": "bypass"},
        "data_destination": {"dataSourceDescriptor": "bucket"},
        "params": {"app": {"size": 5}}, "config": {"taskTimeout": 60}})
    _write(tmp_path / "templates" / "other.json", {"unrelated": True})
    reg = Registry(bundled=False, dirs=[tmp_path])
    assert reg.problems == []
    assert [t.id for t in reg.templates()] == ["img-big", "img-template"]
    big = reg.template("img-big")
    assert big.assembler == "passthrough"
    assert big.data_destination == {"dataSourceDescriptor": "bucket"}
    assert big.params == {"app": {"size": 5}} and big.config == {"taskTimeout": 60}
    assert big.to_wire()["dataSource"] == {"dataSourceDescriptor": "bypass"}
    assert reg.resolve_template("img-template")[1].version == "1.3"
    with pytest.raises(RegistryError, match="no template with id 'zzz'"):
        reg.template("zzz")


def test_add_folder_add_template_and_status(tmp_path: Path) -> None:
    reg = Registry(bundled=False)
    engine = reg.add_folder(write_engine(tmp_path, "later", "pass\n", "assembler"),
                            active=False)
    assert engine.status == "inactive"
    with pytest.raises(RegistryError, match="inactive"):
        reg.resolve("later", "assembler")
    reg.set_status("later", "assembler", True)
    assert reg.resolve("later", "assembler").status == "active"
    with pytest.raises(RegistryError, match="built in"):
        reg.set_status("passthrough", "assembler", False)
    reg.add_template({"id": "x", "app": "a"})
    with pytest.raises(RegistryError, match="unknown params section"):
        reg.add_template({"id": "y", "app": "a", "params": {"ap": {}}})
    with pytest.raises(RegistryError, match=r"no manifest\.json"):
        reg.add_folder(tmp_path)


SCHEMA = {
    "type": "object",
    "properties": {
        "case": {"enum": ["upper", "lower"]},
        "size": {"type": "integer", "minimum": 1},
        "opts": {"type": "object", "properties": {"depth": {"type": "number"}},
                 "required": ["depth"]},
    },
    "required": ["case"],
    "additionalProperties": False,
}


def test_validate_params_names_each_field(tmp_path: Path) -> None:
    engine = Registry(bundled=False).add_folder(
        write_app(tmp_path, "strict", "pass\n", schema=SCHEMA, template=False))
    assert validate_params(engine, {"case": "upper", "size": 3}) == []
    problems = validate_params(engine, {"size": 0, "opts": {}, "extra": 1}, prefix="app.")
    assert "app.case: is required" in problems
    assert "app.size: 0 is less than the minimum of 1" in problems
    assert "app.opts.depth: is required" in problems
    assert any(p.startswith("app.extra: is not an allowed field (allowed: ") for p in problems)
    assert validate_params(engine, {"case": "shout"}) == [
        "case: 'shout' is not one of ['upper', 'lower']"]
    no_schema = Registry(bundled=False).add_folder(
        write_app(tmp_path / "b", "free", "pass\n", template=False))
    assert validate_params(no_schema, {"anything": 1}) == []


def test_bundled_schemas_accept_template_params() -> None:
    reg = Registry()
    template = reg.template("csv-rows-template")
    part, app, asm = reg.resolve_template(template)
    assert validate_params(part, template.params["partitioner"]) == []
    assert validate_params(app, template.params["app"]) == []
    assert validate_params(asm, template.params["assembler"]) == []
    assert validate_params(app, {"op": "filter", "where": "x > 1"}) == []
    assert validate_params(app, {"steps": [{"op": "select", "columns": ["a"]},
                                           {"op": "describe"}]}) == []
    assert validate_params(app, {"op": "select"}) != []
    assert validate_params(app, {"op": "explode"}) == [
        "op: 'explode' is not one of ['select', 'filter', 'eval', 'head', 'describe']"]
    assert validate_params(part, {"rows_per_chunk": 0}) == [
        "rows_per_chunk: 0 is less than the minimum of 1"]
