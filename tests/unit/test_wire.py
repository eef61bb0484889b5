"""The shared wire vocabulary: enum parsing and protojson helpers."""

import datetime as dt

import pytest

from bytenite_nb import wire
from bytenite_nb.wire import JobState


def test_job_state_parse_accepts_full_and_short_names() -> None:
    assert JobState.parse("JOB_STATE_COMPLETE") is JobState.COMPLETE
    assert JobState.parse("complete") is JobState.COMPLETE
    with pytest.raises(ValueError, match="JOB_STATE_FAILED"):
        JobState.parse("finished")


def test_run_states_end_in_complete_and_terminal_states() -> None:
    assert wire.RUN_STATES[-1] is JobState.COMPLETE
    assert JobState.FAILED.is_terminal and not JobState.MERGING.is_terminal
    assert JobState.PARTITIONING.is_running and not JobState.NEW.is_running


def test_camel_and_snake_round_trip() -> None:
    assert wire.to_camel("data_source") == "dataSource"
    assert wire.to_snake("dataSourceDescriptor") == "data_source_descriptor"
    assert wire.to_camel(wire.to_snake("taskTimeout")) == "taskTimeout"


def test_camelize_keys_leaves_opaque_values_alone() -> None:
    body = {"data_source": {"data_source_descriptor": "url"}, "params": {"app": {"my_key": 1}}}
    out = wire.camelize_keys(body, opaque={"params"})
    assert out == {"dataSource": {"dataSourceDescriptor": "url"}, "params": {"app": {"my_key": 1}}}


@pytest.mark.parametrize(
    ("raw", "expected"), [(5, 5), ("5", 5), (" -7 ", -7), (3.0, 3), (None, None)]
)
def test_int64_in_accepts_numbers_and_strings(raw: object, expected: int | None) -> None:
    assert wire.int64_in(raw) == expected


@pytest.mark.parametrize("raw", ["3.5", "abc", True, 2.5, [1]])
def test_int64_in_rejects_with_field_name(raw: object) -> None:
    with pytest.raises(ValueError, match="taskTimeout"):
        wire.int64_in(raw, field="taskTimeout")


def test_timestamps_round_trip_in_utc() -> None:
    when = dt.datetime(2025, 12, 13, 4, 28, 46, 786000, tzinfo=dt.timezone.utc)
    text = wire.format_timestamp(when)
    assert text == "2025-12-13T04:28:46.786Z"
    assert wire.parse_timestamp(text) == when
    later = wire.parse_timestamp("2025-12-13T06:28:46.7861234+02:00")
    assert later == when.replace(microsecond=786123)


def test_tar_member_problem_refuses_what_could_escape_the_folder() -> None:
    import tarfile

    def member(name: str, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        return info

    assert wire.tar_member_problem(member("app/main.py")) is None
    assert wire.tar_member_problem(member("app", tarfile.DIRTYPE)) is None
    assert wire.tar_member_problem(member("./manifest.json")) is None
    for name in ("../x", "a/../../x", "/etc/passwd", "C:/x", "..\\x"):
        assert "inside the folder" in (wire.tar_member_problem(member(name)) or ""), name
    assert "links" in (wire.tar_member_problem(member("l", tarfile.SYMTYPE)) or "")
    assert "links" in (wire.tar_member_problem(member("h", tarfile.LNKTYPE)) or "")
    assert "only files" in (wire.tar_member_problem(member("d", tarfile.CHRTYPE)) or "")
