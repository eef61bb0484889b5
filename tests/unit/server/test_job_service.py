"""The job rules, called without HTTP: `JobService` over a real data dir and registry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bytenite_nb import wire
from bytenite_nb.server.config import ServerConfig
from bytenite_nb.server.context import ServerContext
from bytenite_nb.server.errors import Conflict, InvalidRequest, NotFound
from bytenite_nb.server.service.jobs import JobDraft, JobService
from bytenite_nb.server.storage.records import stored_data_source

TEMPLATE = "hello-world-template"
NEW = wire.JobState.NEW.value


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ServerContext]:
    context = ServerContext.open(ServerConfig(data_dir=tmp_path, api_keys=("k",), workers=1))
    yield context
    context.close()


@pytest.fixture
def jobs(ctx: ServerContext) -> JobService:
    return ctx.jobs


def _wait_until_ended(jobs: JobService, job_id: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = jobs.get(job_id)["state"]
        if wire.JobState.parse(state).is_terminal:
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {state} after {timeout} s")


def test_create_builds_the_stored_job_from_the_template(jobs: JobService) -> None:
    job = jobs.create(JobDraft(template_id=TEMPLATE, name="n",
                               params={"app": {"case": "upper"}}, config={"taskTimeout": 30}))
    assert job["state"] == NEW and job["templateId"] == TEMPLATE and job["name"] == "n"
    assert job["appId"] == "hello-world"
    assert job["templateInfo"]["partitioner"] == "passthrough"
    assert job["params"]["app"] == {"case": "upper"} and job["params"]["partitioner"] == {}
    assert job["config"] == {"taskTimeout": 30}
    assert job["stateTimestamps"] == {NEW: job["createdAt"]}
    assert jobs.get(job["id"]) == job


def test_create_refuses_unknown_templates_bad_ids_and_bad_params(jobs: JobService) -> None:
    with pytest.raises(NotFound, match="no-such-template"):
        jobs.create(JobDraft(template_id="no-such-template"))
    with pytest.raises(InvalidRequest, match="jobId may only contain"):
        jobs.create(JobDraft(template_id=TEMPLATE, job_id="a/b"))
    with pytest.raises(InvalidRequest, match=r"Invalid params: app\.case"):
        jobs.create(JobDraft(template_id=TEMPLATE, params={"app": {"case": 5}}))


def test_create_with_a_job_id_is_idempotent_until_the_job_runs(jobs: JobService) -> None:
    first = jobs.create(JobDraft(template_id=TEMPLATE, job_id="retried", name="one"))
    again = jobs.create(JobDraft(template_id=TEMPLATE, job_id="retried", name="two"))
    assert again["name"] == "two" and again["createdAt"] == first["createdAt"]
    jobs.run("retried", {})
    _wait_until_ended(jobs, "retried")
    with pytest.raises(Conflict, match="can no longer be re-created"):
        jobs.create(JobDraft(template_id=TEMPLATE, job_id="retried"))


def test_a_draft_changes_only_while_new(jobs: JobService) -> None:
    job_id = jobs.create(JobDraft(template_id=TEMPLATE))["id"]
    assert jobs.rename(job_id, "renamed")["name"] == "renamed"
    assert jobs.set_config(job_id, {"jobTimeout": 60})["config"] == {"jobTimeout": 60}
    assert jobs.set_params(job_id, {"app": {"case": "lower"}})["params"]["app"] == {
        "case": "lower"}
    jobs.run(job_id, {"taskTimeout": 20})
    assert jobs.get(job_id)["config"] == {"jobTimeout": 60, "taskTimeout": 20}
    assert _wait_until_ended(jobs, job_id) == wire.JobState.COMPLETE.value
    with pytest.raises(InvalidRequest, match="jobs can only be changed while JOB_STATE_NEW"):
        jobs.rename(job_id, "late")
    with pytest.raises(InvalidRequest, match="only JOB_STATE_NEW jobs can be run"):
        jobs.run(job_id, {})
    assert [r.name for r in jobs.results(job_id)] == ["hello_world_processed.txt"]


def test_run_needs_a_completed_upload_for_a_file_source(jobs: JobService) -> None:
    source = stored_data_source("file", None)
    job = jobs.create(JobDraft(template_id=TEMPLATE, data_source=source))
    assert jobs.upload_token(job)  # a file job gets its upload target at once
    with pytest.raises(InvalidRequest, match="upload is not complete"):
        jobs.run(job["id"], {})
    with pytest.raises(InvalidRequest, match="Nothing was uploaded"):
        jobs.complete_upload(job["id"])
    assert jobs.get(job["id"])["state"] == NEW


def test_results_before_completion_say_so(jobs: JobService) -> None:
    job_id = jobs.create(JobDraft(template_id=TEMPLATE))["id"]
    with pytest.raises(InvalidRequest, match="has not yet been completed"):
        jobs.results(job_id)


def test_abort_deletes_a_draft_with_its_folder(jobs: JobService, ctx: ServerContext) -> None:
    job = jobs.create(JobDraft(template_id=TEMPLATE, data_source=stored_data_source("file",
                                                                                    None)))
    folder = jobs.upload_folder(job["id"])
    (folder / "upload.bin").write_bytes(b"x")
    assert jobs.abort(job["id"]) is True
    assert not ctx.runner.job_dir(job["id"]).exists()
    with pytest.raises(NotFound):
        jobs.get(job["id"])


def test_delete_removes_the_job_its_folder_and_its_results(jobs: JobService,
                                                           ctx: ServerContext) -> None:
    job_id = jobs.create(JobDraft(template_id=TEMPLATE))["id"]
    jobs.run(job_id, {})
    _wait_until_ended(jobs, job_id)
    assert ctx.runner.results_dir(job_id).is_dir()
    with pytest.raises(InvalidRequest, match="already ended"):
        jobs.abort(job_id)
    jobs.delete(job_id)
    assert not ctx.runner.results_dir(job_id).exists()
    assert not ctx.runner.job_dir(job_id).exists()
    with pytest.raises(NotFound):
        jobs.delete(job_id)


def test_leaving_the_file_source_drops_the_upload_target(jobs: JobService,
                                                         ctx: ServerContext) -> None:
    job = jobs.create(JobDraft(template_id=TEMPLATE, data_source=stored_data_source("file",
                                                                                    None)))
    (jobs.upload_folder(job["id"]) / "upload.bin").write_bytes(b"x")
    changed = jobs.set_data_source(job["id"], stored_data_source("bypass", None), None)
    assert jobs.upload_token(changed) is None
    assert not (ctx.runner.job_dir(job["id"]) / "upload").exists()
