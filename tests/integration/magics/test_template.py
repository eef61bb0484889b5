"""%bytenite template ID, client.template(id) and %bytenite templates: what a template takes,
read from its engines' schemas, against a real ByteNite Local."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

from bytenite_nb.api.client import Client
from bytenite_nb.api.models import Template
from bytenite_nb.server.execution import registry
from bytenite_nb.testing import TestingShell
from tests.integration.magics.conftest import ShellFor

CSV = "csv-rows-template"
BUNDLED = Path(registry.__file__).resolve().parents[1] / "builtin_apps"


@pytest.fixture()
def ip(local_server: Any, shell_for: ShellFor) -> TestingShell:
    return shell_for(local_server)


def test_template_verb_describes_engines_and_every_param(ip: TestingShell) -> None:
    template = ip.run_line_magic("bytenite", f"template {CSV}")
    assert isinstance(template, Template) and template.id == CSV
    bundle, _ = ip.display_formatter.format(template)
    text, page = bundle["text/plain"], bundle["text/html"]
    # The engines, each with its description from its manifest.
    assert "rows@0" in text and "Fans a CSV/TSV or JSON Lines source out by rows" in text
    assert "table-ops@0" in text and "csv-concat@0" in text
    # Every param of every section: type, limits, default, allowed values, description.
    assert "rows_per_chunk: integer (≥ 1); default 1000" in text
    assert "format: one of auto, csv, tsv, jsonl; default auto" in text
    assert "where: string" in text and "e.g. amount > 100" in text
    assert "output: string (matching ^[A-Za-z0-9._-]+$); default result.csv" in text
    assert "taskTimeout 600 s" in text
    params = {(d.section, d.name) for d in template.param_docs()}
    for section, name in params:
        assert f'data-section="{section}" data-param="{name}"' in page
    assert {("partitioner", "max_chunks"), ("app", "steps"),
            ("assembler", "chunk_column")} <= params
    assert "Fans a CSV/TSV" in page and "bn-template-example" in page


def test_the_example_cell_runs_as_it_is(ip: TestingShell, tmp_path: Path) -> None:
    template = ip.run_line_magic("bytenite", f"template {CSV}")
    data = tmp_path / "readings.csv"
    data.write_text("reading\n" + "\n".join(str(i) for i in range(25)) + "\n")
    ip.user_ns["data"] = str(data)
    ip.run_cell(template.example_cell("example"))
    job = ip.user_ns["example"]
    assert job.state.name == "COMPLETE" and job.num_chunks == 1  # rows_per_chunk 1000


def test_client_template_is_the_same_object_with_rich_reprs(local_server: Any,
                                                           api_key: str) -> None:
    client = Client(api_key=api_key, base_url=local_server.base_url)
    template = client.template("hello-world-template")
    assert template.engines["app"]["description"] == "An app named hello-world"
    assert "case: string" in str(template)
    assert "upper, lower or title" in template._repr_html_()
    assert "# params:\n  # app:\n    # case: upper" in template.example_cell()
    bare = client.template("hello-world-template", engines=False)
    assert bare.engines == {} and bare == template  # engines do not change what it is


def test_unknown_template_is_one_line_with_a_suggestion(ip: TestingShell) -> None:
    with pytest.raises(UsageError, match=r"no template 'csv-row-template'.*Did you mean "
                                         r"'csv-rows-template'"):
        ip.run_line_magic("bytenite", "template csv-row-template")


def test_templates_verb_shows_whole_descriptions_and_the_params(ip: TestingShell) -> None:
    frame = ip.run_line_magic("bytenite", "templates")
    description = frame.loc[CSV, "description"]
    assert len(description) > 60  # longer than pandas' default cut
    assert frame.loc[CSV, "params"].startswith("partitioner: rows_per_chunk, format")
    assert "app: op, columns, where, n, steps, delimiter" in frame.loc[CSV, "params"]
    assert description in frame._repr_html_()


@pytest.mark.parametrize("app", sorted(p.name for p in BUNDLED.iterdir()
                                       if (p / "schema.json").exists()))
def test_every_bundled_param_has_a_description_and_an_example(app: str) -> None:
    schema = json.loads((BUNDLED / app / "schema.json").read_text())
    assert schema.get("description"), app
    for name, prop in schema["properties"].items():
        target = prop
        if "$ref" in prop and "description" not in prop:
            pytest.fail(f"{app}.{name}: a $ref without its own description")
        assert target.get("description"), f"{app}.{name}"
        assert target.get("examples") or target.get("enum"), f"{app}.{name}"
