"""Error mapping: HTTP status -> exception class, ByteNite's error body carried (mocked HTTP)."""

from __future__ import annotations

import pytest
import responses

from bytenite_nb.api import (
    APIResponseError,
    APIStatusError,
    BadRequestError,
    ByteniteError,
    Client,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from tests.unit.api._scripted import KEY

BASE = "http://bytenite.test"
URL = f"{BASE}/v1/customer/jobs/j1"


@pytest.fixture()
def mocked() -> responses.RequestsMock:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(f"{BASE}/v1/auth/access_token", json={"token": "t", "expiresIn": "3600"})
        yield rsps


def body(code: int, message: str = "Request  failed", description: str = "why") -> dict:
    return {
        "ok": False,
        "requestId": f"req-{code}",
        "message": message,
        "error": {"code": code, "message": "Short", "description": description},
    }


@pytest.mark.parametrize(
    ("status", "cls", "also"),
    [
        (400, BadRequestError, ValueError),
        (403, PermissionDeniedError, APIStatusError),
        (404, NotFoundError, LookupError),
        (409, ConflictError, APIStatusError),
        (422, UnprocessableEntityError, ValueError),
        (429, RateLimitError, APIStatusError),
        (500, InternalServerError, APIStatusError),
        (503, InternalServerError, APIStatusError),
        (418, APIStatusError, ByteniteError),
    ],
)
def test_status_maps_to_class_and_carries_body(
    mocked: responses.RequestsMock, status: int, cls: type, also: type
) -> None:
    mocked.get(URL, json=body(status), status=status)
    with pytest.raises(cls) as info:
        Client(api_key=KEY, base_url=BASE, max_retries=0).job("j1")
    err = info.value
    assert isinstance(err, also)
    assert type(err) is cls
    assert err.status_code == status
    assert err.request_id == f"req-{status}"
    assert err.message == "Request  failed"
    assert err.description == "why"
    assert err.error_message == "Short"
    assert err.method == "GET" and err.url == URL
    text = str(err)
    assert str(status) in text and "why" in text and f"req-{status}" in text
    assert KEY not in text and "Authorization" not in text


def test_request_id_from_header_when_body_has_none(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, json={"message": "gone"}, status=404, headers={"X-Request-Id": "hdr-1"})
    with pytest.raises(NotFoundError) as info:
        Client(api_key=KEY, base_url=BASE).job("j1")
    assert info.value.request_id == "hdr-1"
    assert info.value.message == "gone"


def test_non_json_error_body(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, body="upstream exploded", status=502, content_type="text/plain")
    with pytest.raises(InternalServerError) as info:
        Client(api_key=KEY, base_url=BASE, max_retries=0).job("j1")
    assert info.value.description == "upstream exploded"


def test_non_json_success_is_api_response_error(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, body="<html>", status=200, content_type="text/html")
    with pytest.raises(APIResponseError):
        Client(api_key=KEY, base_url=BASE).job("j1")


def test_job_failed_error_quotes_message_and_error_logs(mocked: responses.RequestsMock) -> None:
    from bytenite_nb.api import JobFailedError
    from bytenite_nb.api.jobs import Job

    c = Client(api_key=KEY, base_url=BASE)
    job = Job(c, {"id": "j1", "state": "JOB_STATE_FAILED", "errorMessage": "task-0 exited 1"})
    err = JobFailedError(job, ["boom line"])
    assert "task-0 exited 1" in str(err) and "boom line" in str(err)
    assert isinstance(err, ByteniteError)
