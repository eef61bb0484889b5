"""protojson in and out: camel/snake keys, int64 strings, nulls, user params untouched."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bytenite_nb import wire
from bytenite_nb.server.http import models, protojson
from bytenite_nb.server.service.templates import merge_params, normalize_config


def test_snake_and_camel_case_requests_parse_alike() -> None:
    camel = models.CreateJobRequest.model_validate({
        "templateId": "t", "dataSource": {"dataSourceDescriptor": "bypass"},
        "config": {"taskTimeout": "30", "isTestJob": True}})
    snake = models.CreateJobRequest.model_validate({
        "template_id": "t", "data_source": {"data_source_descriptor": "bypass"},
        "config": {"task_timeout": 30, "is_test_job": True}})
    assert camel == snake
    assert camel.config is not None and camel.config.task_timeout == 30


def test_user_params_keep_their_keys() -> None:
    body = models.CreateJobRequest.model_validate({
        "template_id": "t",
        "params": {"app": {"snake_key": 1, "camelKey": {"inner_key": 2}}},
        "data_source": {"data_source_descriptor": "url",
                        "params": {"url": "http://x/y", "secret_id": "s"}}})
    params = merge_params({"app": {"from_template": True}}, protojson.params_given(body.params))
    assert params["app"] == {"from_template": True, "snake_key": 1,
                             "camelKey": {"inner_key": 2}}
    source = protojson.data_source_in(body.data_source)
    assert source == {"dataSourceDescriptor": "url", "params": {
        "@type": wire.HTTP_DATA_SOURCE_TYPE, "url": "http://x/y", "secret_id": "s"}}


@pytest.mark.parametrize("value", ["3600", 3600, 3600.0, " 3600 "])
def test_int64_in_as_number_or_string(value: object) -> None:
    assert models.JobConfigIn.model_validate({"jobTimeout": value}).job_timeout == 3600


@pytest.mark.parametrize("value", ["soon", 1.5, True, -1, "99999999999999999999"])
def test_bad_int64_is_rejected_naming_the_field(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        models.JobConfigIn.model_validate({"jobTimeout": value})
    assert "jobTimeout" in str(info.value) or "job_timeout" in str(info.value)


def test_job_out_is_complete_protojson() -> None:
    job = {"id": "j", "templateId": "t", "state": "JOB_STATE_COMPLETE", "numChunks": 4,
           "duration": 12, "config": {"taskTimeout": 60, "isTestJob": False},
           "dataSource": {"dataSourceDescriptor": "file",
                          "params": {"@type": wire.LOCAL_FILE_DATA_SOURCE_TYPE}}}
    out = protojson.job_out(job, temp_url="http://h/local/uploads/tok")
    assert out["numChunks"] == "4" and out["duration"] == "12" and out["paymentAmount"] == "0"
    assert out["config"] == {"taskTimeout": "60", "isTestJob": False}
    assert out["startedAt"] is None and out["dataDestination"] is None
    assert out["errorMessage"] == "" and out["stateTimestamps"] == {}
    assert out["priority"] == "EXECUTION_PRIORITY_UNDEFINED"
    assert out["dataSource"]["params"]["tempUrl"] == "http://h/local/uploads/tok"
    assert "tempUrl" not in job["dataSource"]["params"]  # the stored job is untouched
    assert set(out) >= {"id", "templateId", "name", "description", "state", "createdAt",
                        "submittedAt", "endedAt", "regions", "params", "appId", "templateInfo"}


def test_client_cannot_choose_the_upload_url() -> None:
    source = protojson.data_source_in(models.DataSourceIn.model_validate(
        {"dataSourceDescriptor": "FILE", "params": {"tempUrl": "http://evil"}}))
    assert source == {"dataSourceDescriptor": "file",
                      "params": {"@type": wire.LOCAL_FILE_DATA_SOURCE_TYPE}}


def test_run_request_accepts_wrapped_flat_and_empty() -> None:
    wrapped = models.RunJobRequest.model_validate({"config": {"taskTimeout": 5}})
    flat = models.RunJobRequest.model_validate({"taskTimeout": "5"})
    assert protojson.config_in(wrapped.config) == protojson.config_in(flat) == {"taskTimeout": 5}
    assert protojson.config_in(models.RunJobRequest.model_validate({})) == {}


def test_template_config_is_normalised() -> None:
    assert normalize_config({"task_timeout": "60", "maxTaskRetries": 2,
                                       "isTestJob": True}) == {
        "taskTimeout": 60, "maxTaskRetries": 2, "isTestJob": True}
