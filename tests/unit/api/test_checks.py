"""What is checked before a job is created: params routed to and checked against their
section's schema, input data for a template that needs it (bytenite_nb.api.checks)."""

from __future__ import annotations

from typing import Any

import pytest

from bytenite_nb.api import checks
from bytenite_nb.api.errors import InputError
from bytenite_nb.api.models import Template


def template(**raw: Any) -> Template:
    return Template.from_json({"id": "t", "app": "a", **raw})


SCHEMAS = {
    "app": {"properties": {"op": {}, "delimiter": {}}},
    "partitioner": {"properties": {"rows_per_chunk": {}, "delimiter": {}},
                    "additionalProperties": False},
}


def test_a_param_without_a_section_goes_to_the_one_that_declares_it() -> None:
    t = template(paramsSchema=SCHEMAS)
    assert checks.route_params(t, {"app": {"op": "head"}}, {"rows_per_chunk": 20}) == {
        "app": {"op": "head"}, "partitioner": {"rows_per_chunk": 20}}
    with pytest.raises(InputError, match=r"^delimiter is a param of app and partitioner: say "
                                         r"which, --param app\.delimiter=; or --param "
                                         r"partitioner\.delimiter=;$"):
        checks.route_params(t, None, {"delimiter": ";"}, phrasing=checks.MAGIC)


def test_unknown_and_misplaced_names_are_refused_all_at_once() -> None:
    t = template(paramsSchema=SCHEMAS)
    with pytest.raises(InputError) as err:
        checks.route_params(t, {"app": {"rows_per_chunk": 5, "opp": 1}}, phrasing=checks.CELL)
    text = str(err.value)
    assert text.startswith("rows_per_chunk is a partitioner param: "
                           "params: {partitioner: {rows_per_chunk: 5}}; "
                           "the app of t takes no param 'opp'. Did you mean 'op'?")
    assert text.endswith("(app takes op, delimiter; partitioner takes rows_per_chunk, "
                         "delimiter)")
    with pytest.raises(InputError, match=r"no section of t takes a param 'x'\..*assembler has "
                                         r"no schema and takes any name: params="):
        checks.route_params(t, None, {"x": 1})


def test_what_a_schema_leaves_open_or_a_server_does_not_send_is_not_checked() -> None:
    open_schema = {"app": {"properties": {"op": {}}, "additionalProperties": True},
                   "assembler": {"patternProperties": {"^x_": {}}, "properties": {}}}
    t = template(paramsSchema=open_schema)
    assert checks.route_params(t, {"app": {"anything": 1}, "assembler": {"x_1": 2},
                                   "partitioner": {"no_schema": 3}}) is not None
    hosted = template()  # ByteNite's API sends no schemas: params are the app's, unchecked
    assert checks.route_params(hosted, None, {"case": "upper"}) == {"app": {"case": "upper"}}


def test_a_template_that_needs_input_refuses_to_run_without_it() -> None:
    needy = template(needsInput=True)
    for given in (None, {"dataSourceDescriptor": "bypass"}):
        with pytest.raises(InputError, match=r"^t needs input data and none was given: "
                                             r"--source PATH\|URL$"):
            checks.check_input(needy, given, phrasing=checks.MAGIC)
    checks.check_input(needy, {"dataSourceDescriptor": "url"})
    checks.check_input(needy, None, uploading=True)
    with_default = template(needsInput=True, dataSource={"dataSourceDescriptor": "url"})
    checks.check_input(with_default, None)
    checks.check_input(template(), None)  # no needsInput: nothing to say
    assert checks.needs_input_message("t", checks.FORM).endswith("choose URL or file upload")
