"""The CLI's tables and one-line usage errors, without a server."""

from __future__ import annotations

import pytest

from bytenite_nb.cli import main
from bytenite_nb.cli.common import Column, print_table


def test_tables_cut_the_shrinkable_columns_to_the_terminal(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    records = [{"name": "a-rather-long-app-name-indeed", "version": "0.1",
                "description": "words " * 30},
               {"name": "short", "version": "12.3", "description": None}]
    print_table(records, [Column("NAME", "name", shrink=True), Column("VERSION", "version"),
                          Column("DESCRIPTION", "description", shrink=True)], empty="none")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(len(line) <= 59 for line in lines), lines
    assert lines[0].split() == ["NAME", "VERSION", "DESCRIPTION"]
    assert lines[1].endswith("…") and lines[2].split() == ["short", "12.3"]
    # the version column is never cut and starts at the same place on every line
    start = lines[0].index("VERSION")
    assert [line[start:].split()[0] for line in lines] == ["VERSION", "0.1", "12.3"]

    print_table([], [Column("NAME", "name")], empty="Nothing here yet")
    assert capsys.readouterr().out == "Nothing here yet\n"


def test_usage_errors_are_one_line_with_exit_code_2(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["engine", "lsit"]) == 2
    err = capsys.readouterr().err
    assert err == ("bytenite-nb engine: unknown command 'lsit'; did you mean 'list'? "
                   "(see 'bytenite-nb engine --help')\n")
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'frobnicate'; one of: serve, notebook, app" in err
    assert main([]) == 2
    assert "usage: bytenite-nb" in capsys.readouterr().err
