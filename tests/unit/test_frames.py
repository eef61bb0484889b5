"""frames.py: declared schemas, empty frames, round trips, result files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bytenite_nb import frames, vocabulary, wire
from bytenite_nb.api.decoding import Event
from bytenite_nb.api.errors import ByteniteWarning, EmptyResultsError
from bytenite_nb.api.models import LogEntry, ResultFile, TaskInfo, Template


def all_jobs(jobs: Any) -> pd.DataFrame:
    return frames.jobs_df(jobs, columns="all")


SCHEMAS = {
    all_jobs: frames.JOBS_SCHEMA,
    frames.logs_df: frames.LOGS_SCHEMA,
    frames.tasks_df: frames.TASKS_SCHEMA,
    frames.results_df: frames.RESULTS_SCHEMA,
    frames.templates_df: frames.TEMPLATES_SCHEMA,
}


def dtypes_match(frame: pd.DataFrame, schema: dict[str, Any]) -> None:
    assert list(frame.columns) == list(schema)
    for name, dtype in schema.items():
        assert frame[name].dtype == dtype, (name, frame[name].dtype, dtype)


@pytest.mark.parametrize("build", list(SCHEMAS), ids=lambda f: f.__name__)
def test_empty_input_gives_empty_frame_with_the_schema(build: Any) -> None:
    frame = build([])
    assert len(frame) == 0
    dtypes_match(frame, SCHEMAS[build])


JOB = {
    "id": "6f1c",
    "templateId": "hello-world-template",
    "name": "n",
    "description": "",
    "state": "JOB_STATE_COMPLETE",
    "createdAt": "2026-01-01T00:00:00.123Z",
    "submittedAt": "2026-01-01T00:00:00.500Z",
    "startedAt": "2026-01-01T00:00:01Z",
    "endedAt": "2026-01-01T00:00:04.250+00:00",
    "numChunks": "3",
    "errorMessage": "",
    "dataSource": {"dataSourceDescriptor": "url", "params": {"url": "http://x"}},
    "dataDestination": {"dataSourceDescriptor": "bucket"},
    "duration": "3",
    "config": {"taskTimeout": "60", "jobTimeout": 600, "isTestJob": False},
    "paymentAmount": "9007199254740993",
    "unknownNewField": {"kept": True},
}


def test_jobs_df_values_and_dtypes() -> None:
    frame = all_jobs([JOB])
    dtypes_match(frame, frames.JOBS_SCHEMA)
    assert frame.index.name == "id" and frame.index.dtype == "str"
    row = frame.loc["6f1c"]
    assert row.status == "complete"
    assert frame["status"].cat.categories.tolist() == list(vocabulary.STATUSES)
    assert frame["status"].cat.ordered
    assert row.created_at == pd.Timestamp("2026-01-01T00:00:00.123Z")
    assert row.duration == pd.Timedelta(seconds=3.25)  # from the timestamps, not the int field
    assert row.num_chunks == 3 and row.payment_amount == 9007199254740993  # exact int64
    assert pd.isna(row.description) and pd.isna(row.error_message)  # "" is missing
    assert row.task_timeout == pd.Timedelta(minutes=1) and row.job_timeout == pd.Timedelta(
        minutes=10
    )
    assert row.is_test_job is False or row.is_test_job == False  # noqa: E712 - pandas boolean
    assert (row.data_source, row.data_destination) == ("url", "bucket")


def test_jobs_df_accepts_job_objects_and_mixed_inputs() -> None:
    from bytenite_nb.api.jobs import Job

    job = Job(None, JOB)  # type: ignore[arg-type]
    other = dict(JOB, id="b", numChunks=5, startedAt=None, endedAt=None, duration="7")
    frame = all_jobs(iter([job, other]))
    assert frame.index.tolist() == ["6f1c", "b"]
    assert frame.loc["b", "num_chunks"] == 5 and frame.loc["b", "duration"] == pd.Timedelta(
        seconds=7
    )


def test_unknown_state_is_unknown_not_an_error() -> None:
    frame = frames.jobs_df([dict(JOB, state="JOB_STATE_FROM_THE_FUTURE")])
    assert frame["status"].iloc[0] == "unknown"


def test_status_is_the_one_vocabulary_and_tells_an_abort_from_a_failure() -> None:
    """Case 10 and 8: frames read the same words as every view; an abort is its own word."""
    rows = [
        dict(JOB, id="a", state="JOB_STATE_PARTITIONED", endedAt=None),
        dict(JOB, id="b", state="JOB_STATE_FAILED", errorMessage="Job aborted by user request"),
        dict(JOB, id="c", state="JOB_STATE_FAILED", errorMessage="task for chunk 2 failed"),
        dict(JOB, id="d", state="JOB_STATE_MERGING", endedAt=None),
    ]
    frame = frames.jobs_df(rows)
    assert frame["status"].tolist() == ["running", "aborted", "failed", "assembling"]
    assert frame.loc[frame.status == "aborted"].index.tolist() == ["b"]
    # A running job's duration is not the server's 0: it is not known yet.
    assert pd.isna(frame.loc["a", "duration"])


def test_task_status_words() -> None:
    frame = frames.tasks_df([{"id": "task-0", "chunkNumber": 0, "state": "TASK_STATE_CANCELLED"}])
    assert frame["status"].tolist() == ["cancelled"]
    assert frame["status"].cat.categories.tolist() == list(vocabulary.TASK_STATUSES)


def test_nanosecond_timestamps_fall_back_to_pandas_parsing() -> None:
    frame = all_jobs([dict(JOB, createdAt="2026-01-01T00:00:00.123456789Z")])
    assert frame["created_at"].iloc[0] == pd.Timestamp("2026-01-01T00:00:00.123456Z")
    assert frame["created_at"].dtype == "datetime64[us, UTC]"


# -- round trip -------------------------------------------------------------------------------

_ms = st.integers(min_value=0, max_value=4_000_000_000_000).map(
    lambda ms: wire.format_timestamp(
        dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=ms)
    )
)
_word = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)
_int64 = st.integers(min_value=0, max_value=2**63 - 1).map(str)
_job = st.fixed_dictionaries(
    {
        "id": st.uuids().map(str),
        "name": st.one_of(st.just(""), _word),
        "description": st.one_of(st.just(""), _word),
        "templateId": _word,
        "state": st.sampled_from([s.value for s in wire.JobState]),
        "createdAt": _ms,
        "submittedAt": st.none() | _ms,
        "startedAt": st.none() | _ms,
        "endedAt": st.none() | _ms,
        "numChunks": st.none() | _int64,
        "errorMessage": st.one_of(st.just(""), _word),
        "dataSource": st.none()
        | st.sampled_from(["url", "file", "bypass"]).map(lambda d: {"dataSourceDescriptor": d}),
        "dataDestination": st.none()
        | st.sampled_from(["bucket", "bypass"]).map(lambda d: {"dataSourceDescriptor": d}),
        "config": st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "taskTimeout": st.integers(0, 10**6).map(str),
                "jobTimeout": st.integers(0, 10**6).map(str),
                "isTestJob": st.booleans(),
            },
        ).map(lambda c: c or None),
        "paymentAmount": st.none() | _int64,
    }
)


@settings(max_examples=30, deadline=None)
@given(jobs=st.lists(_job, max_size=6, unique_by=lambda j: j["id"]))
def test_jobs_round_trip(jobs: list[dict[str, Any]]) -> None:
    frame = all_jobs(jobs)
    back = frames.jobs_to_records(frame)
    # The status keeps the state's meaning, not its exact wire name (MERGED reads as
    # assembling, and is written back as MERGING).
    assert [vocabulary.status_of(r["state"], r["errorMessage"]) for r in back] == [
        vocabulary.status_of(j["state"], j["errorMessage"]) for j in jobs]
    strip = [{k: v for k, v in r.items() if k != "state"} for r in back]
    assert strip == [{k: v for k, v in j.items() if k != "state"} for j in jobs]
    again = all_jobs(back)
    pd.testing.assert_frame_equal(again, frame)


_log = st.fixed_dictionaries(
    {
        "jobId": st.uuids().map(str),
        "timestamp": _ms,
        "service": st.sampled_from([s.value for s in wire.LogService]),
        "taskId": st.sampled_from(["task-0", "task-7", None]),
        "level": st.sampled_from([s.value for s in wire.LogLevel]),
        "log": st.text(max_size=30),
        "container": st.sampled_from(["main", "bytenite-local"]),
    }
)


@settings(max_examples=40, deadline=None)
@given(logs=st.lists(_log, max_size=20))
def test_logs_round_trip(logs: list[dict[str, Any]]) -> None:
    frame = frames.logs_df(logs)
    dtypes_match(frame, frames.LOGS_SCHEMA)
    back = [
        {
            "jobId": r.job_id,
            "timestamp": wire.format_timestamp(r.timestamp.to_pydatetime()),
            "service": r.service,
            "taskId": None if pd.isna(r.task_id) else r.task_id,
            "level": r.level,
            "log": r.message,
            "container": r.container,
        }
        for r in frame.itertuples()
    ]
    assert back == logs
    entries = [LogEntry.from_json(x) for x in logs]  # the same through LogEntry objects
    pd.testing.assert_frame_equal(frames.logs_df(entries), frame)


def test_logs_levels_are_ordered_by_severity() -> None:
    frame = frames.logs_df(
        [
            {
                "jobId": "j",
                "timestamp": "2026-01-01T00:00:00Z",
                "level": lvl,
                "log": lvl,
                "service": "TASKRUNNER",
                "taskId": "task-0",
                "container": "main",
            }
            for lvl in ("INFO", "ERROR", "DEBUG", "FATAL")
        ]
    )
    assert frame[frame.level >= "ERROR"]["message"].tolist() == ["ERROR", "FATAL"]


def test_tasks_df_from_task_records_and_from_events() -> None:
    info = TaskInfo.from_json(
        {
            "id": "task-0",
            "chunkNumber": 0,
            "state": "TASK_STATE_COMPLETE",
            "attempts": 2,
            "startedAt": "2026-01-01T00:00:00Z",
            "endedAt": "2026-01-01T00:00:05Z",
            "duration": 4.5,
            "exitCode": 0,
            "errorMessage": None,
            "jobId": "j",
        }
    )
    frame = frames.tasks_df([info])
    dtypes_match(frame, frames.TASKS_SCHEMA)
    assert frame["duration"].iloc[0] == pd.Timedelta(seconds=4.5)

    def ev(chunk: int, state: str, attempt: int, ts: str) -> Event:
        return Event(
            wire.EVENT_TASK_STATE,
            {
                "jobId": "j",
                "taskId": f"task-{chunk}",
                "chunkNumber": chunk,
                "state": state,
                "attempt": attempt,
                "timestamp": ts,
            },
            None,
            "j",
        )

    events = [
        ev(1, "TASK_STATE_QUEUED", 1, "2026-01-01T00:00:00Z"),
        ev(0, "TASK_STATE_RUNNING", 1, "2026-01-01T00:00:01Z"),
        ev(1, "TASK_STATE_RUNNING", 1, "2026-01-01T00:00:01Z"),
        ev(0, "TASK_STATE_COMPLETE", 1, "2026-01-01T00:00:03Z"),
        ev(1, "TASK_STATE_RETRYING", 1, "2026-01-01T00:00:04Z"),
        ev(1, "TASK_STATE_RUNNING", 2, "2026-01-01T00:00:05Z"),
        ev(1, "TASK_STATE_FAILED", 2, "2026-01-01T00:00:09Z"),
        Event(wire.EVENT_JOB_LOG, {"jobId": "j"}, None, "j"),
    ]
    frame = frames.tasks_df(events)
    assert frame["task_id"].tolist() == ["task-0", "task-1"]
    assert frame["status"].tolist() == ["complete", "failed"]
    assert frame["attempts"].tolist() == [1, 2]
    assert frame["duration"].tolist() == [pd.Timedelta(seconds=2), pd.Timedelta(seconds=8)]


def test_results_and_templates() -> None:
    rf = frames.results_df(
        [ResultFile.from_json({"name": "a.csv", "link": "http://x/a"})], job_id="j"
    )
    assert rf.to_dict("records") == [
        {"job_id": "j", "name": "a.csv", "link": "http://x/a", "size": None}
    ]
    tf = frames.templates_df([Template.from_json({"id": "t", "app": "a@1", "description": ""})])
    assert tf.index.tolist() == ["t"] and tf.loc["t", "app"] == "a@1"


def test_load_result_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.csv").write_text("x,y\n1,2\n3,4\n")
    (tmp_path / "sub" / "b.jsonl").write_text('{"x": 5, "y": 6}\n')
    (tmp_path / "c.json").write_text(json.dumps({"rows": [{"x": 7, "y": 8}]}))
    (tmp_path / "d.txt").write_text("one\ntwo\n")
    (tmp_path / "e.bin").write_bytes(b"\x00\x01")
    pd.DataFrame({"x": [9], "y": [10]}).to_parquet(tmp_path / "f.parquet")
    paths = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    tables = frames.load_result_files(paths, tmp_path)
    assert sorted(tables) == ["a.csv", "c.json", "d.txt", "f.parquet", "sub/b.jsonl"]
    assert tables["d.txt"] == "one\ntwo\n"  # text results are str (docs/results.md)
    numeric = [n for n in tables if n != "d.txt"]
    combined = frames.load_result_files([tmp_path / n for n in numeric], tmp_path, concat=True)
    assert sorted(combined["x"].tolist()) == [1, 3, 5, 7, 9]
    assert combined["result_file"].dtype == "str"
    with pytest.raises(EmptyResultsError, match=r"not tables \(e\.bin\)"):
        frames.load_result_files([tmp_path / "e.bin"], tmp_path, concat=True)
    with pytest.warns(ByteniteWarning, match=r"left out .*text results \(d\.txt\)"):
        mixed = frames.load_result_files([tmp_path / "a.csv", tmp_path / "d.txt"], tmp_path,
                                         concat=True)
    assert mixed["result_file"].unique().tolist() == ["a.csv"]


def test_a_job_that_produced_nothing_says_so(tmp_path: Path) -> None:
    """Case 1: an empty result is a clear error, never pandas' EmptyDataError."""
    (tmp_path / "result.csv").write_bytes(b"")
    with pytest.raises(EmptyResultsError, match=r"result files are empty \(result\.csv\).*"
                                                 r"no rows .*did it get its input"):
        frames.load_result_files([tmp_path / "result.csv"], tmp_path, concat=True)
    with pytest.raises(EmptyResultsError, match="without any result files"):
        frames.load_result_files([], tmp_path)
    (tmp_path / "header.csv").write_text("a,b\n")  # no rows, but a table: an empty frame
    frame = frames.load_result_files([tmp_path / "header.csv"], tmp_path, concat=True)
    assert frame.empty and list(frame.columns) == ["a", "b", "result_file"]


def test_without_pyarrow_fast_paths_the_frames_are_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs = [JOB, dict(JOB, id="b", numChunks=7, startedAt=None, config=None, state="JOB_STATE_NEW")]
    logs = [
        {
            "jobId": "j",
            "timestamp": "2026-01-01T00:00:00.5Z",
            "level": "WARN",
            "log": "",
            "service": "ASSEMBLER",
            "taskId": None,
            "container": "main",
        }
    ]
    fast = all_jobs(jobs), frames.logs_df(logs)
    monkeypatch.setattr(frames, "_ARROW", False)  # as if pyarrow were not installed
    slow = all_jobs(jobs), frames.logs_df(logs)
    for a, b in zip(fast, slow, strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert slow[1]["message"].tolist() == [""]


def test_secrets_df_is_typed_and_has_no_value_column() -> None:
    from bytenite_nb.api.models import Secret

    df = frames.secrets_df([
        Secret.from_json({"id": "LLM", "secretType": "other", "secretKey": "never-shown"}),
        {"id": "S3", "secretType": "aws", "accessKey": "AKIA0000", "name": "prod",
         "expiresAt": "2027-01-31T00:00:00Z"},
    ])
    assert list(df.index) == ["LLM", "S3"]
    assert dict(df.dtypes.astype(str)) == {k: str(v) for k, v in frames.SECRETS_SCHEMA.items()}
    assert df.loc["S3", "expires_at"] == pd.Timestamp("2027-01-31", tz="UTC")
    assert pd.isna(df.loc["LLM", "access_key"]) and "never-shown" not in df.to_string()


def test_read_options_reach_the_pandas_reader_and_typos_are_refused(tmp_path: Path) -> None:
    (tmp_path / "out.csv").write_text("code,country\nNA,Namibia\nnull,\n")
    (tmp_path / "out.tsv").write_text("code\tcountry\nNA\tNamibia\n")
    paths = [tmp_path / "out.csv", tmp_path / "out.tsv"]
    default = frames.load_result_files(paths, tmp_path)
    assert default["out.csv"]["code"].isna().all()  # pandas' defaults: "NA", "null" missing
    kept = frames.load_result_files(paths, tmp_path, read_options={
        "csv": {"keep_default_na": False}, ".TSV": {"keep_default_na": False}})
    assert kept["out.csv"]["code"].tolist() == ["NA", "null"]
    assert kept["out.csv"]["country"].tolist() == ["Namibia", ""]
    assert kept["out.tsv"]["code"].tolist() == ["NA"]
    with pytest.raises(ValueError, match=r"'xlsx' is not a format .* csv, tsv, jsonl, parquet"):
        frames.load_result_files(paths, tmp_path, read_options={"xlsx": {}})
    with pytest.raises(ValueError, match=r"read_options\['csv'\] must be a dict"):
        frames.load_result_files(paths, tmp_path, read_options={"csv": False})  # type: ignore[dict-item]


# -- what a person reads ------------------------------------------------------------------------

LONG_ID = "6f1c0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"


def test_jobs_df_shows_the_columns_people_read_and_all_on_request() -> None:
    jobs = [dict(JOB, id=LONG_ID, errorMessage="boom " * 30)]
    frame = frames.jobs_df(jobs)
    assert list(frame.columns) == ["name", "template_id", "status", "created_at", "duration",
                                   "num_chunks", "error_message"]
    assert list(frames.jobs_df(jobs, columns="all").columns) == list(frames.JOBS_SCHEMA)
    assert list(frames.jobs_df(jobs, columns=["status", "duration"]).columns) == [
        "status", "duration"]
    with pytest.raises(ValueError, match=r"unknown column.*'colour'.*'all'"):
        frames.jobs_df(jobs, columns=["status", "colour"])
    # The same values as the full frame.
    pd.testing.assert_frame_equal(frame, frames.jobs_df(jobs, columns="all")[frame.columns])


def test_html_shortens_ids_and_wraps_long_text_without_changing_the_data() -> None:
    message = "a long error message " * 12
    frame = frames.jobs_df([dict(JOB, id=LONG_ID, errorMessage=message)])
    html = frame._repr_html_()
    assert ">6f1c0a2b<" in html and LONG_ID not in html
    assert message.strip() in html                  # whole, not cut with "..."
    assert "white-space:normal" in html and "td:nth-child(8)" in html  # error_message column
    assert frame.index[0] == LONG_ID                # the data keep the whole id
    subset = frame[frame.num_chunks > 0]            # derived frames read the same way
    assert isinstance(subset, frames.ReadableFrame) and ">6f1c0a2b<" in subset._repr_html_()
    logs = frames.logs_df([{"jobId": LONG_ID, "log": "x", "level": "INFO"}])
    assert ">6f1c0a2b<" in logs._repr_html_() and logs["job_id"].iloc[0] == LONG_ID


def test_one_jobs_tasks_do_not_repeat_the_job_id() -> None:
    record = {"id": "task-0", "chunkNumber": 0, "state": "TASK_STATE_COMPLETE",
              "jobId": LONG_ID}
    frame = frames.tasks_df([record], job_id=LONG_ID)
    assert "job_id" not in frame.columns and frame.attrs["job_id"] == LONG_ID
    assert list(frame.columns) == [c for c in frames.TASKS_SCHEMA if c != "job_id"]
    assert "job_id" in frames.tasks_df([record]).columns  # many jobs' tasks keep it


def test_templates_name_the_params_of_each_section() -> None:
    schema = {"type": "object", "properties": {"rows": {"type": "integer"},
                                               "sep": {"type": "string"}}}
    tf = frames.templates_df([Template.from_json({
        "id": "t", "description": "d " * 80, "app": "a",
        "paramsSchema": {"partitioner": schema, "app": {"properties": {"op": {}}}}})])
    assert tf.loc["t", "params"] == "partitioner: rows, sep · app: op"
    assert ("d " * 80).strip() in tf._repr_html_()
    assert ("d " * 80).strip() in repr(tf)  # the text too: whole, not cut with "..."
    long_name = "a-template-with-a-long-name"
    named = frames.templates_df([Template.from_json({"id": long_name})])
    assert f">{long_name}<" in named._repr_html_()  # names are not ids to shorten
