"""The %bytenite line grammar: parsed commands, one-line UsageErrors, never anything else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

from bytenite_nb.notebook.grammar import (
    KEY_ON_LINE_MESSAGE,
    VERBS,
    Command,
    parse_cell_line,
    parse_line,
    parser_for,
    split_line,
)


def test_run_with_every_kind_of_option() -> None:
    cmd = parse_line(
        "run hello --name 'my job' --source data.csv --param case=upper "
        "--param partitioner.n=3 --params $p --config taskTimeout=60 --wait "
        "--progress-after 0.5 --keep-running -o job"
    )
    assert cmd.verb == "run"
    assert cmd.options["template"] == "hello"
    assert cmd.options["name"] == "my job"
    assert cmd.options["param"] == [("case", "upper"), ("partitioner.n", "3")]
    assert cmd.options["params"] == "$p"  # placeholders are left for the command to resolve
    assert cmd.options["config"] == [("taskTimeout", "60")]
    assert cmd.options["wait"] is True
    assert cmd.options["progress_after"] == 0.5
    assert cmd.options["keep_running"] is True
    assert cmd.options["out"] == "job"


def test_unset_flags_are_none_so_config_can_fill_them() -> None:
    cmd = parse_line("run hello")
    assert cmd.options["wait"] is None
    assert cmd.options["progress_after"] is None
    assert cmd.options["keep_running"] is None
    assert parse_line("run hello --no-wait").options["wait"] is False


def test_wait_and_no_wait_are_exclusive() -> None:
    with pytest.raises(UsageError, match="not allowed with"):
        parse_line("run hello --wait --no-wait")


def test_unknown_verb_suggests_the_closest() -> None:
    with pytest.raises(UsageError) as err:
        parse_line("rnu hello")
    text = str(err.value)
    assert "Did you mean 'run'?" in text
    assert "Verbs: run, jobs" in text
    assert type(err.value) is UsageError


def test_unknown_flag_lists_the_options_and_suggests() -> None:
    with pytest.raises(UsageError) as err:
        parse_line("run hello --wiat")
    assert "unknown option '--wiat'" in str(err.value)
    assert "Did you mean '--wait'" in str(err.value)
    assert "--progress-after" in str(err.value)


def test_abbreviations_are_not_accepted() -> None:
    with pytest.raises(UsageError, match="unknown option '--wa'"):
        parse_line("run hello --wa")


def test_missing_argument_shows_usage() -> None:
    with pytest.raises(UsageError, match=r"required: TEMPLATE\. Usage: %bytenite run"):
        parse_line("run")


def test_states_and_levels_are_validated_with_the_valid_names() -> None:
    assert parse_line("jobs --state complete").options["state"] == "complete"
    assert parse_line("jobs --state JOB_STATE_FAILED").options["state"] == "failed"
    # Aliases people type are accepted; unknown words get a did-you-mean.
    assert parse_line("jobs --state completed").options["state"] == "complete"
    assert parse_line("jobs --state done").options["state"] == "complete"
    assert parse_line("jobs --state cancelled").options["state"] == "aborted"
    assert parse_line("jobs --state PARTITIONED").options["state"] == "running"
    with pytest.raises(UsageError, match=r"unknown job state 'abortd'\. Did you mean 'aborted'"):
        parse_line("jobs --state abortd")
    assert parse_line("logs j --level warn").options["level"] == "WARN"
    assert parse_line("logs j --level warning").options["level"] == "WARN"
    assert parse_line("logs j --level Critical").options["level"] == "FATAL"
    with pytest.raises(UsageError, match=r"unknown log level 'eror'\. Did you mean 'error'"):
        parse_line("logs j --level eror")


def test_numbers_are_validated() -> None:
    with pytest.raises(UsageError, match="expected a whole number"):
        parse_line("jobs --limit many")
    with pytest.raises(UsageError, match="expected 0 or more"):
        parse_line("jobs --limit -3")
    with pytest.raises(UsageError, match=r"a port is 0\.\.65535"):
        parse_line("local --port 70000")
    assert parse_line("run t --progress-after -1").options["progress_after"] == -1
    assert parse_line("local --idle-timeout 90").options["idle_timeout"] == 90
    assert parse_line("local --idle-timeout 0").options["idle_timeout"] == 0
    assert parse_line("local").options["idle_timeout"] is None  # the setting applies
    for bad in ("-1", "nan", "soon"):
        with pytest.raises(UsageError, match="argument --idle-timeout: expected"):
            parse_line(f"local --idle-timeout {bad}")


def test_out_must_be_a_variable_name() -> None:
    with pytest.raises(UsageError, match="not a valid Python variable name"):
        parse_line("jobs -o 1df")
    with pytest.raises(UsageError, match="not a valid Python variable name"):
        parse_line("jobs -o class")


@pytest.mark.parametrize(
    "line",
    ["login sk-live-123456", "login --api-key sk-123", "run t --key=abc", "jobs --token abc"],
)
def test_a_key_on_the_line_is_refused_without_echoing_it(line: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_line(line)
    assert str(err.value) == KEY_ON_LINE_MESSAGE
    assert "123" not in str(err.value) and "abc" not in str(err.value)


def test_login_alone_and_with_a_store() -> None:
    assert parse_line("login").options["store"] is None
    assert parse_line("login --store keyring").options["store"] == "keyring"


def test_help_forms() -> None:
    assert parse_line("") == Command("help", {"topic": None})
    assert parse_line("--help").verb == "help"
    assert parse_line("run --help") == Command("help", {"topic": "run"})
    assert parse_line("help logs").options["topic"] == "logs"


def test_debug_is_a_flag_of_every_verb() -> None:
    assert parse_line("jobs --debug").debug is True
    assert parse_line("status j1 --debug").debug is True
    assert "debug" not in parse_line("status j1 --debug").options


def test_quotes_group_and_backslashes_survive() -> None:
    assert split_line(r"run t --source C:\data\x.csv --name 'a b'") == [
        "run", "t", "--source", r"C:\data\x.csv", "--name", "a b"
    ]
    assert split_line("run t --source http://h/x#frag") == [
        "run", "t", "--source", "http://h/x#frag"
    ]
    with pytest.raises(UsageError, match="No closing quotation"):
        split_line("run 'oops")


def test_extra_positionals_are_reported() -> None:
    with pytest.raises(UsageError, match="unexpected argument"):
        parse_line("status a b")


def test_cell_line() -> None:
    cmd = parse_cell_line("job --wait -o other")
    assert cmd.verb == "cell"
    assert cmd.options["var"] == "job"
    assert cmd.options["out"] == "other"
    assert cmd.options["wait"] is True
    assert parse_cell_line("").options["var"] is None
    with pytest.raises(UsageError):
        parse_cell_line("not-a-name")
    with pytest.raises(UsageError, match="Refusing an API key"):
        parse_cell_line("job --api-key x")


def test_every_verb_has_a_parser_and_usage() -> None:
    for verb in [*VERBS, "cell"]:
        assert parser_for(verb).format_help()


_WORDS = st.sampled_from(
    [*VERBS, "--wait", "--no-wait", "-o", "--out", "x", "$x", "{x}", "--limit", "3", "-1",
     "--state", "complete", "--param", "k=v", "=", "--params", "{}", "--help", "-h",
     "--debug", "--last", "--source", "'", '"', "--config", "--level", "stop", "--port",
     "--progress-after", "nan", "inf", "--store", "keyring", "--", "-", "--name", "\\"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_WORDS, max_size=8).map(" ".join))
def test_any_plausible_line_parses_or_raises_usage_error(line: str) -> None:
    try:
        result = parse_line(line)
    except UsageError as exc:
        assert type(exc) is UsageError
    else:
        assert isinstance(result, Command)
        assert result.verb in VERBS


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_raises_usage_error(line: str) -> None:
    for parse in (parse_line, parse_cell_line):
        try:
            result = parse(line)
        except UsageError as exc:
            assert type(exc) is UsageError
        else:
            assert isinstance(result, Command)
