"""Job specs: YAML/JSON bodies, run flags, and structured placeholder filling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

from bytenite_nb import wire
from bytenite_nb.notebook.spec import (
    JobSpec,
    build_spec,
    coerce_scalar,
    fill_placeholders,
    parse_spec_text,
    resolve_text,
    spec_from_cell,
    spec_from_run_options,
    to_json_compatible,
)


def run_options(**kwargs: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "template": "hello", "name": None, "description": None, "source": None,
        "destination": None, "param": None, "params": None, "config": None,
    }
    base.update(kwargs)
    return base


# -- placeholders -------------------------------------------------------------------------------


def test_whole_string_placeholder_is_the_object_itself() -> None:
    obj = {"nested": [1, 2, {"x": None}]}
    for text in ("{p}", "$p", "${p}"):
        assert resolve_text(text, {"p": obj}) is obj


def test_embedded_placeholders_are_str_of_the_value() -> None:
    ns = {"who": "World", "n": 3, "cfg": {"rate": 0.5}}
    assert resolve_text("hi {who} x$n ${cfg.rate}!", ns) == "hi World x3 0.5!"


def test_escapes_give_literal_text() -> None:
    assert resolve_text("{{who}} $$who", {}) == "{who} $who"
    # Braces and dollars that are not placeholders are left alone (JSON inside a string, prices).
    assert resolve_text('{"a": {"b": 1}} costs $5 ^x$', {}) == '{"a": {"b": 1}} costs $5 ^x$'


def test_dotted_paths_walk_attributes_and_keys() -> None:
    class Box:
        def __init__(self) -> None:
            self.inner = {"k": "v"}

    assert resolve_text("{box.inner.k}", {"box": Box()}) == "v"
    with pytest.raises(UsageError, match="has no attribute or key 'nope'"):
        resolve_text("{box.nope}", {"box": Box()})


def test_undefined_name_is_a_clear_error_that_says_where() -> None:
    with pytest.raises(UsageError) as err:
        fill_placeholders({"params": {"app": {"case": "$casing"}}}, {"casing_": 1})
    text = str(err.value)
    assert "$casing at spec.params.app.case" in text
    assert "'casing' is not defined" in text
    assert "Did you mean 'casing_'?" in text
    assert "{{name}} or $$name" in text


def test_keys_are_never_filled() -> None:
    assert fill_placeholders({"{k}": "$v"}, {"v": 1}) == {"{k}": 1}


def test_values_are_never_reparsed_as_yaml() -> None:
    # A value that looks like YAML stays one string: no injection through a placeholder.
    evil = "x\ntemplateId: other\nparams: {app: {rm: true}}"
    spec = spec_from_cell("templateId: hello\nname: $evil", {"evil": evil})
    assert spec.template_id == "hello"
    assert spec.name == evil
    assert spec.params is None


@settings(max_examples=200, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                   max_size=3),
    max_leaves=10,
))
def test_any_namespace_value_is_inserted_unchanged(value: Any) -> None:
    data = parse_spec_text("templateId: t\nparams:\n  app:\n    v: $value\n")
    filled = fill_placeholders(data, {"value": value})
    assert filled["params"]["app"]["v"] == value


# -- parsing ------------------------------------------------------------------------------------


def test_yaml_flow_braces_read_as_placeholders() -> None:
    # Unquoted `{url}` is a YAML flow mapping {url: null}; users mean the placeholder.
    data = parse_spec_text("source: {url}\nparams: {app: {n: {n}}}\nx: {a: }\ny: {a: null}")
    assert data["source"] == "{url}"
    assert data["params"] == {"app": {"n": "{n}"}}
    assert data["x"] == "{a}"
    assert data["y"] == {"a": None}  # an explicit null is a real mapping


def test_json_body() -> None:
    spec = spec_from_cell('{"templateId": "t", "params": {"app": {"k": "$k"}}}', {"k": [1, 2]})
    assert spec.params == {"app": {"k": [1, 2]}}


def test_yaml_flow_body_that_is_not_json() -> None:
    assert spec_from_cell("{templateId: t, name: n}", {}).name == "n"


def test_syntax_errors_give_line_and_column() -> None:
    with pytest.raises(UsageError, match=r"not valid YAML or JSON: .* at line 2, column"):
        parse_spec_text("templateId: t\nparams: [1, 2\n")


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(UsageError, match="'name' appears twice"):
        parse_spec_text("name: a\nname: b")
    with pytest.raises(UsageError, match="'name' appears twice"):
        parse_spec_text('{"name": "a", "name": "b"}')


def test_empty_body() -> None:
    with pytest.raises(UsageError, match="the cell is empty"):
        parse_spec_text("  \n ")


def test_whole_body_placeholder_is_a_spec_from_a_variable() -> None:
    spec = spec_from_cell("$spec", {"spec": {"templateId": "t", "name": "from var"}})
    assert spec.name == "from var"


# -- building -----------------------------------------------------------------------------------


def test_full_spec_snake_case_and_aliases(tmp_path: Path) -> None:
    data = tmp_path / "in.txt"
    data.write_text("hello")
    spec = spec_from_cell(
        "template: hello\nname: n\ndescription: d\nsource: $path\ndestination: bucket\n"
        "params:\n  app: {case: upper}\n  partitioner: {}\nconfig: {task_timeout: 5}\n",
        {"path": data},
    )
    assert spec == JobSpec(
        template_id="hello", name="n", description="d", data_source=wire.file_source(),
        upload=data.resolve(), data_destination={"dataSourceDescriptor": "bucket"},
        params={"app": {"case": "upper"}, "partitioner": {}}, config={"taskTimeout": 5},
    )
    assert spec.to_wire()["upload"] == str(data.resolve())


def test_sources() -> None:
    url = "https://example.org/x.txt"
    assert build_spec({"templateId": "t", "source": url}).data_source == wire.url_source(url)
    assert build_spec({"templateId": "t", "source": "bypass"}).data_source == wire.bypass()
    spec = build_spec({"templateId": "t", "source": b"abc"})
    assert spec.upload == b"abc" and spec.data_source == wire.file_source()
    descriptor = {"data_source_descriptor": "url", "params": {"url": url}}
    assert build_spec({"templateId": "t", "dataSource": descriptor}).data_source == {
        "dataSourceDescriptor": "url", "params": {"url": url}
    }
    with pytest.raises(UsageError, match="neither an http"):
        build_spec({"templateId": "t", "source": "missing-file.csv"})
    with pytest.raises(UsageError, match="only http"):
        build_spec({"templateId": "t", "source": "s3://bucket/key"})
    with pytest.raises(UsageError, match="needs dataSourceDescriptor"):
        build_spec({"templateId": "t", "dataSource": {"params": {}}})
    with pytest.raises(UsageError, match="cannot use a set"):
        build_spec({"templateId": "t", "source": {1}})


def test_params_shorthand_and_sections() -> None:
    # Without a section a param is "loose": the section whose schema declares it takes it at
    # submit time (bytenite_nb.api.checks), not the app by default.
    spec = build_spec({"templateId": "t", "params": {"case": "upper"}})
    assert spec.params is None and spec.loose_params == {"case": "upper"}
    mixed = build_spec({"templateId": "t", "params": {"app": {}, "rows_per_chunk": 5}})
    assert mixed.params == {"app": {}} and mixed.loose_params == {"rows_per_chunk": 5}
    with pytest.raises(UsageError, match="must be a mapping"):
        build_spec({"templateId": "t", "params": [1]})


def test_unknown_field_suggests() -> None:
    with pytest.raises(UsageError, match=r"unknown field 'nmae'\. Did you mean 'name'"):
        build_spec({"templateId": "t", "nmae": "x"})
    with pytest.raises(UsageError, match="given twice"):
        build_spec({"templateId": "t", "source": "bypass", "dataSource": "bypass"})


def test_template_required_and_overrides_win() -> None:
    with pytest.raises(UsageError, match="templateId is required"):
        build_spec({"name": "x"})
    spec = build_spec({"templateId": "t", "name": "body"}, {"name": "flag", "templateId": None})
    assert (spec.template_id, spec.name) == ("t", "flag")


def test_json_compatibility() -> None:
    import numpy as np
    import pandas as pd

    value = {"a": np.int64(3), "b": np.array([1.5, 2.0]), "c": pd.Series([1, 2]),
             "d": (1, Path("/x")), "e": pd.Timestamp("2026-01-01T00:00:00Z")}
    assert to_json_compatible(value, "p") == {
        "a": 3, "b": [1.5, 2.0], "c": [1, 2], "d": [1, "/x"], "e": "2026-01-01T00:00:00+00:00"
    }
    with pytest.raises(UsageError, match=r"p.x: nan cannot be sent as JSON"):
        to_json_compatible({"x": float("nan")}, "p")
    with pytest.raises(UsageError, match="cannot be sent as JSON"):
        to_json_compatible({"x": object()}, "p")
    with pytest.raises(UsageError, match="keys must be strings"):
        to_json_compatible({1: "x"}, "p")


def test_run_options() -> None:
    ns = {"p": {"app": {"case": "lower"}}, "n": 4, "url": "https://h/x"}
    spec = spec_from_run_options(
        run_options(params="$p", param=[("case", "upper"), ("partitioner.n", "$n"),
                                        ("flag", "true"), ("text", "a b")],
                    config=[("taskTimeout", "60")], source="$url", name="job {n}"),
        ns,
    )
    assert spec.params == {"app": {"case": "lower"}, "partitioner": {"n": 4}}
    assert spec.loose_params == {"case": "upper", "flag": True, "text": "a b"}
    assert ns["p"] == {"app": {"case": "lower"}}  # the user's dict is not mutated
    assert spec.config == {"taskTimeout": 60}
    assert spec.data_source == wire.url_source("https://h/x")
    assert spec.name == "job 4"


def test_run_params_json_text() -> None:
    spec = spec_from_run_options(run_options(params='{"app": {"k": 1}}'), {})
    assert spec.params == {"app": {"k": 1}}
    with pytest.raises(UsageError, match="--params: expected JSON"):
        spec_from_run_options(run_options(params="{nope"), {})


def test_coerce_scalar() -> None:
    assert coerce_scalar("3") == 3
    assert coerce_scalar("[1, 2]") == [1, 2]
    assert coerce_scalar("upper") == "upper"


_SPEC_PIECES = st.sampled_from(
    ["templateId: t\n", "name: {n}\n", "source: $s\n", "params: ", "{", "}", "[", "]", ": ",
     "- ", "\n", "  ", "app", "case: upper", "&a ", "*a", "!!python/object:os.system ", "? ",
     "'", '"', "$", "{{n}}", "$$n", "config: {taskTimeout: 1}\n", ",", "#", "%YAML 1.1\n",
     "---\n", "templateId: [1]\n", "dataSource: {dataSourceDescriptor: url}\n", "null"]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(_SPEC_PIECES, max_size=12).map("".join)))
def test_any_cell_body_gives_a_spec_or_a_usage_error(body: str) -> None:
    namespace = {"n": 1, "s": "bypass"}
    try:
        spec = spec_from_cell(body, namespace)
    except UsageError as exc:
        assert type(exc) is UsageError
    else:
        assert isinstance(spec, JobSpec) and spec.template_id
