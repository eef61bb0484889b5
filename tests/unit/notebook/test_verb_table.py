"""The verb table: every ``%bytenite`` verb has a parser, a handler and a line in the help."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest

from bytenite_nb.notebook.grammar import CELL, VERBS, Verb, parse_line, parser_for, verb_named
from bytenite_nb.testing import TestingShell


@pytest.fixture()
def ip() -> Iterator[TestingShell]:
    shell = TestingShell.create()
    yield shell
    shell.dispose()


@pytest.mark.parametrize("verb", [*VERBS.values(), CELL], ids=lambda v: v.name)
def test_every_verb_has_a_parser_and_a_handler(verb: Verb) -> None:
    parser = parser_for(verb.name)
    assert parser.prog.endswith(verb.name) or verb is CELL
    assert verb.summary and verb.summary in parser.format_help().replace("\n", " ")
    handler = verb.handler_function()
    assert callable(handler)
    # A handler takes the one Context argument the magic passes.
    params = list(inspect.signature(handler).parameters.values())
    assert len(params) == 1 and params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert handler.__module__.startswith("bytenite_nb.notebook.commands.")


def test_every_verb_appears_in_help(ip: TestingShell,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_cell("%bytenite help")
    lines = capsys.readouterr().out.splitlines()
    for verb in VERBS.values():
        assert any(line.split()[:1] == [verb.name] and line.rstrip().endswith(verb.summary)
                   for line in lines), f"{verb.name} missing from %bytenite help"
    assert any(line.startswith("%%bytenite") for line in lines)  # the cell line too


def test_a_verb_is_parsed_and_dispatched_by_its_own_table_row(ip: TestingShell,
                                                              capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    command = parse_line("help status")
    assert command.verb == "help" and verb_named(command.verb) is VERBS["help"]
    ip.run_cell("%bytenite help status")
    assert capsys.readouterr().out.startswith("usage: %bytenite status")
    with pytest.raises(KeyError):
        verb_named("no-such-verb")
