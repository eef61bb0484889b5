"""Every client method against a real ByteNite Local: jobs, filters, pages, logs, tasks..."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bytenite_nb import frames, wire
from bytenite_nb.api import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    Client,
    Filter,
    NotFoundError,
    ResultsNotReadyError,
)
from tests.kit.apps import REVERSE, write_app, write_engine
from tests.kit.loopback import serve_dir

TEMPLATE = "hello-world-template"


@pytest.fixture(scope="module")
def source_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("api-src")
    (folder / "in.txt").write_text("mixed Case\n")
    with serve_dir(folder) as url:
        yield f"{url}/in.txt"


def test_info_token_and_bad_key(client: Client, local_server: Any) -> None:
    assert "version" in client.info()
    assert client.access_token()
    with pytest.raises(AuthenticationError) as info:
        Client(api_key="wrong-key", base_url=local_server.base_url).info()
    assert info.value.request_id
    assert "wrong-key" not in str(info.value)


def test_templates(client: Client) -> None:
    templates = list(client.templates())
    assert TEMPLATE in {t.id for t in templates}
    hello = client.template(TEMPLATE)
    assert hello.app and hello.app.startswith("hello-world") and hello.partitioner == "passthrough"
    with pytest.raises(NotFoundError):
        client.template("no-such-template")
    df = frames.templates_df(templates)
    assert df.index.name == "id" and TEMPLATE in df.index


def test_draft_job_setters(client: Client, source_url: str) -> None:
    job = client.create_job(TEMPLATE, name="draft one", description="setters")
    assert job.state is wire.JobState.NEW and job.template_id == TEMPLATE
    assert job.name == "draft one" and job.description == "setters"
    job.set_data_source(source_url, "bucket")
    assert job.data_source["params"]["url"] == source_url
    assert job.data_destination["dataSourceDescriptor"] == "bucket"
    job.set_params({"app": {"case": "title"}})
    assert job.params["app"] == {"case": "title"}
    job.set_name("renamed")
    assert job.name == "renamed"
    job.set_config({"task_timeout": 60, "job_timeout": 600})
    assert int(job.config["taskTimeout"]) == 60 and int(job.config["jobTimeout"]) == 600
    assert client.job(job.id).name == "renamed"
    job.delete()
    with pytest.raises(NotFoundError):
        client.job(job.id)


def test_invalid_params_are_rejected_by_the_template_schema(client: Client) -> None:
    job = client.create_job(TEMPLATE)
    try:
        with pytest.raises(BadRequestError) as info:
            client.set_params(job.id, {"app": {"case": 12}})
        assert info.value.request_id and info.value.description
    finally:
        client.delete_job(job.id)


def test_create_with_own_job_id_is_idempotent(client: Client) -> None:
    job_id, name = str(uuid.uuid4()), f"idem-{uuid.uuid4().hex[:8]}"
    a = client.create_job(TEMPLATE, name=name, job_id=job_id)
    b = client.create_job(TEMPLATE, name=name, job_id=job_id)
    assert a.id == b.id == job_id
    assert [j.id for j in client.jobs(filters=[Filter("name", "eq", name)])] == [job_id]
    client.delete_job(job_id)


def test_run_logs_tasks_results_and_frames(client: Client, source_url: str, tmp_path: Path) -> None:
    job = client.create_job(
        TEMPLATE,
        data_source=source_url,
        data_destination="bucket",
        params={"app": {"case": "lower"}},
    )
    client.run_job(job.id)
    job.wait(timeout=120)
    assert job.state is wire.JobState.COMPLETE

    tasks = client.tasks(job.id)
    assert [(t.task_id, t.chunk_number, t.state) for t in tasks] == [
        ("task-0", 0, wire.TaskState.COMPLETE)
    ]
    assert tasks[0].duration is not None and tasks[0].exit_code == 0
    tdf = job.tasks_df()
    assert tdf["status"].tolist() == ["complete"] and tdf.attrs["job_id"] == job.id
    assert "job_id" not in tdf.columns  # one job: not repeated on every row

    all_logs = client.logs(job.id)
    assert all_logs and {e.service for e in all_logs} <= {s.value for s in wire.LogService}
    runner = client.logs(job.id, services=["taskrunner"])
    assert runner and all(e.service == "TASKRUNNER" for e in runner)
    # The app's lines are its task's; ByteNite Local's own (where the app runs) are the job's.
    assert all(e.task_id == "task-0" for e in runner if e.container == "main")
    assert all(e.task_id == "job" for e in runner if e.container == "bytenite-local")
    assert client.logs(job.id, levels=["PANIC"]) == []
    records = client.log_records(job.id)
    assert len(records) == len(all_logs)

    assert client.running_tasks([job.id]) == {job.id: 0}
    [result] = client.results(job.id)
    rdf = job.results_df()
    assert rdf["name"].tolist() == [result.name] and rdf["job_id"].tolist() == [job.id]
    [path] = client.download_results(job.id, tmp_path)
    assert path.read_text() == "mixed case\n"
    with pytest.raises(FileExistsError):
        client.download_results(job.id, tmp_path, overwrite=False)


def test_results_before_completion_is_a_clear_error(client: Client) -> None:
    """Case 7: asking for results too early says what to call instead."""
    job = client.create_job(TEMPLATE)
    with pytest.raises(BadRequestError) as info:  # (a ResultsNotReadyError)
        job.results()
    assert isinstance(info.value, ResultsNotReadyError) and info.value.job == job
    assert "is still draft" in str(info.value) and "call job.wait() first" in str(info.value)
    with pytest.raises(ResultsNotReadyError, match=r"job\.wait\(\)"):
        job.load_results(wait=False)
    job.delete()
    assert job.status == "deleted"  # the handle knows


def test_abort_a_draft_deletes_it(client: Client) -> None:
    job = client.create_job(TEMPLATE)
    job.abort()
    with pytest.raises(NotFoundError):
        client.job(job.id)


def test_upload_flow_step_by_step(client: Client, tmp_path: Path) -> None:
    job = client.create_job(TEMPLATE, params={"app": {"case": "upper"}})
    job.set_data_source(wire.file_source(), "bucket")
    assert job.upload_url
    src = tmp_path / "in.txt"
    src.write_text("upload me")
    job.upload(src)
    job.run()
    job.wait(timeout=120)
    [path] = job.download(tmp_path / "out")
    assert path.read_text() == "UPLOAD ME"


def test_test_data_source(client: Client, source_url: str) -> None:
    info = client.test_data_source(source_url)
    assert info.size == len("mixed Case\n")
    with pytest.raises(APIStatusError):
        client.test_data_source(source_url.replace("in.txt", "missing.txt"))


def test_presets_are_gone(client: Client) -> None:
    with pytest.raises(APIStatusError) as info:
        client.presets(TEMPLATE)
    assert info.value.status_code == 410


def test_pagination_filters_and_jobs_df(client: Client) -> None:
    tag = f"page-{uuid.uuid4().hex[:8]}"
    made = {client.create_job(TEMPLATE, name=tag).id for _ in range(12)}
    try:
        by_name = [Filter("name", "eq", tag)]
        pages: list[int] = []
        original = client._transport.request

        def counting(method: str, path: str, **kw: Any) -> Any:
            if path.endswith("/jobs/filter"):
                pages.append(kw["json"]["pagination"]["offset"])
            return original(method, path, **kw)

        client._transport.request = counting  # type: ignore[method-assign]
        lazy = client.jobs(filters=by_name, page_size=5)
        assert pages == []  # nothing fetched until iterated
        first = next(lazy)
        assert pages == [0]
        got = [first, *lazy]
        assert pages == [0, 5, 10]  # one request per page
        client._transport.request = original  # type: ignore[method-assign]
        assert {j.id for j in got} == made and len(got) == 12

        assert len(list(client.jobs(filters=by_name, page_size=5, limit=7))) == 7
        assert {j.id for j in client.jobs(filters=by_name, state="new")} == made
        assert not list(client.jobs(filters=by_name, state=["complete", "failed"]))
        assert len(list(client.jobs(filters=by_name, template_id=TEMPLATE))) == 12
        ordered = [j.id for j in client.jobs(filters=by_name, order_by="createdAt")]
        assert set(ordered) == made
        listing = {j.id for j in client.jobs(page_size=1000)}
        assert made <= listing  # GET /jobs without filters
        newest = [j.id for j in client.jobs(page_size=5, limit=12)]  # GET, three pages
        assert len(newest) == len(set(newest)) == 12

        df = client.jobs_df(filters=by_name)
        assert set(df.index) == made and df.index.name == "id"
        assert df["status"].dtype == frames.JOB_STATUS_DTYPE
        assert (df["status"] == "draft").all()
        assert str(df["created_at"].dtype) == "datetime64[us, UTC]"
        # The README's call for every column, and a chosen few.
        every = client.jobs_df(filters=by_name, columns="all")
        assert list(every.columns) == list(frames.JOBS_SCHEMA) and set(every.index) == made
        assert list(client.jobs_df(filters=by_name, columns=["name", "status"]).columns) == [
            "name", "status"]
    finally:
        for job_id in made:
            client.delete_job(job_id)


def test_failed_job_raises_with_error_message(client: Client) -> None:
    from bytenite_nb.api import JobFailedError

    job = client.submit(
        "hello-world-template",
        source="http://127.0.0.1:9/nothing-here.txt",
        params={"app": {"case": "upper"}},
    )
    with pytest.raises(JobFailedError) as info:
        job.wait(timeout=120)
    assert info.value.job.state is wire.JobState.FAILED
    assert info.value.error_message and info.value.error_message in str(info.value)


def test_submit_rejects_bad_input_without_creating_anything(client: Client) -> None:
    name = f"rejected-{uuid.uuid4().hex[:8]}"
    with pytest.raises(FileNotFoundError):
        client.submit(TEMPLATE, source="no/such/file.txt", name=name)
    with pytest.raises(ValueError):
        client.submit(TEMPLATE, params={"case": "upper"}, name=name)
    with pytest.raises(BadRequestError):  # rejected by the server: the draft is deleted again
        client.submit(
            TEMPLATE, source="http://127.0.0.1:9/x", params={"app": {"case": 1}}, name=name
        )
    assert list(client.jobs(filters=[Filter("name", "eq", name)])) == []


def test_developer_api_push_activate_and_run(client: Client, tmp_path: Path) -> None:
    name = f"rev-{uuid.uuid4().hex[:6]}"
    folder = write_app(tmp_path, name, REVERSE)
    # A partitioner engine that cuts the input in two halves.
    engine = write_engine(tmp_path, f"halves-{name}", """
        import os, pathlib
        src = next(p for p in pathlib.Path(os.environ["SOURCE_DIR"]).iterdir() if p.is_file())
        data = src.read_bytes()
        half = len(data) // 2
        out = pathlib.Path(os.environ["CHUNKS_DIR"])
        (out / "data_0.bin").write_bytes(data[:half])
        (out / "data_1.bin").write_bytes(data[half:])
    """, "partitioner", version="1.0")
    assert client.dev.push_engine(engine).get("name") == engine.name
    client.dev.activate_engine(engine.name)
    assert engine.name in {e.get("name") for e in client.dev.engines()}
    assert client.dev.engine(engine.name, "partitioner").get("name") == engine.name
    assert client.dev.engine_status(engine.name)

    pushed = client.dev.push_app(folder)
    assert pushed.get("name") == name
    assert client.dev.app(name).get("name") == name
    client.dev.activate_app(name)
    assert client.dev.app_status(name).get("status") == "active"
    assert name in {a.get("name") for a in client.dev.apps()}
    template = {
        "id": f"{name}-halves",
        "app": name,
        "partitioner": engine.name,
        "assembler": "passthrough",
        "description": "pushed from a test",
    }
    client.dev.push_template(template)
    assert client.dev.template(template["id"]).get("id") == template["id"]
    assert template["id"] in {t.get("id") for t in client.dev.templates()}

    job = client.submit(template["id"], source=b"abcdef").wait(timeout=120)
    assert job.num_chunks == 2
    texts = sorted(requests.get(r.link, timeout=30).text for r in job.results())
    assert texts == ["cba", "fed"]
    client.dev.deactivate_app(name)
    assert client.dev.app_status(name).get("status") == "inactive"
