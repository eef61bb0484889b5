"""Retries, Retry-After, idempotent create, token refresh: the real transport, a scripted server."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bytenite_nb.api import (
    APIConnectionError,
    AuthenticationError,
    Client,
    InternalServerError,
    RateLimitError,
)
from bytenite_nb.api._http import RETRY_AFTER_MAX
from tests.unit.api._scripted import KEY, Reply, Scripted

C = "/v1/customer"
JOB = {"job": {"id": "j1", "state": "JOB_STATE_NEW", "templateId": "t"}}


def client(server: Scripted, **kw: object) -> Client:
    return Client(api_key=KEY, base_url=server.url, **kw)  # type: ignore[arg-type]


def test_503_storm_then_success(scripted: Scripted, sleeps: list[float]) -> None:
    scripted.on("GET", f"{C}/jobs/j1", *[Reply(503, {"message": "busy"})] * 4, Reply(200, JOB))
    job = client(scripted).job("j1")
    assert job.id == "j1"
    assert len(scripted.calls("GET", f"{C}/jobs/j1")) == 5
    # urllib3 retries the first failure at once, then backs off exponentially with jitter.
    assert len(sleeps) == 3
    assert sleeps[0] < sleeps[1] < sleeps[2] <= 8.5


def test_endless_503_raises_internal_server_error_after_max_retries(
    scripted: Scripted, sleeps: list[float]
) -> None:
    scripted.on("GET", f"{C}/jobs/j1", Reply(503, {"message": "down", "requestId": "r-9"}))
    with pytest.raises(InternalServerError) as info:
        client(scripted, max_retries=3).job("j1")
    assert info.value.status_code == 503
    assert info.value.request_id == "r-9"
    assert len(scripted.calls("GET", f"{C}/jobs/j1")) == 4  # first try + 3 retries


def test_retry_after_is_honoured(scripted: Scripted, sleeps: list[float]) -> None:
    scripted.on(
        "GET",
        f"{C}/jobs/j1",
        Reply(429, {"message": "slow down"}, {"Retry-After": "7"}),
        Reply(503, {}, {"Retry-After": "100000"}),
        Reply(200, JOB),
    )
    client(scripted).job("j1")
    assert sleeps == [7.0, float(RETRY_AFTER_MAX)]  # the server's wish, within our cap


def test_429_exhausted_is_rate_limit_error(scripted: Scripted, sleeps: list[float]) -> None:
    scripted.on("GET", f"{C}/jobs", Reply(429, {"message": "quota"}, {"Retry-After": "1"}))
    with pytest.raises(RateLimitError):
        list(client(scripted, max_retries=2).jobs())
    assert sleeps == [1.0, 1.0]


def test_create_is_retried_after_dropped_connection_with_the_same_job_id(
    scripted: Scripted, sleeps: list[float]
) -> None:
    scripted.on("POST", f"{C}/jobs", Reply(drop=True), Reply(200, JOB))
    job = client(scripted).create_job("hello-world-template", name="once")
    assert job.id == "j1"
    posts = scripted.calls("POST", f"{C}/jobs")
    assert len(posts) == 2
    ids = {p.json()["jobId"] for p in posts}
    assert len(ids) == 1  # the same client-chosen id both times: the server makes one job


def test_run_is_not_retried_after_dropped_connection(
    scripted: Scripted, sleeps: list[float]
) -> None:
    scripted.on("POST", f"{C}/jobs/j1/run", Reply(drop=True), Reply(200, {"ok": True}))
    with pytest.raises(APIConnectionError):
        client(scripted).run_job("j1")
    assert len(scripted.calls("POST", f"{C}/jobs/j1/run")) == 1


def test_run_is_not_retried_on_503(scripted: Scripted, sleeps: list[float]) -> None:
    scripted.on("POST", f"{C}/jobs/j1/run", Reply(503, {"message": "busy"}), Reply(200, {}))
    with pytest.raises(InternalServerError):
        client(scripted).run_job("j1")
    assert len(scripted.calls("POST", f"{C}/jobs/j1/run")) == 1


def test_connection_refused_is_api_connection_error(sleeps: list[float]) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(APIConnectionError) as info:
        Client(api_key=KEY, base_url=f"http://127.0.0.1:{port}", max_retries=1).job("x")
    assert KEY not in str(info.value)


def test_token_is_exchanged_once_and_sent_raw(scripted: Scripted) -> None:
    scripted.on("GET", f"{C}/jobs/j1", Reply(200, JOB))
    c = client(scripted)
    c.job("j1")
    c.job("j1")
    exchanges = scripted.calls("POST", "/v1/auth/access_token")
    assert len(exchanges) == 1
    assert exchanges[0].json() == {"apiKey": KEY}
    assert "Authorization" not in exchanges[0].headers
    assert [s.headers["Authorization"] for s in scripted.calls("GET", f"{C}/jobs/j1")] == [
        "tok-1",
        "tok-1",
    ]


def test_401_refreshes_the_token_once(scripted: Scripted) -> None:
    scripted.on(
        "POST",
        "/v1/auth/access_token",
        Reply(200, {"token": "old", "expiresIn": "3600"}),
        Reply(200, {"token": "new", "expiresIn": "3600"}),
    )
    scripted.on(
        "GET",
        f"{C}/jobs/j1",
        lambda seen: (
            Reply(200, JOB)
            if seen.headers["Authorization"] == "new"
            else Reply(401, {"message": "token expired"})
        ),
    )
    assert client(scripted).job("j1").id == "j1"
    assert len(scripted.calls("POST", "/v1/auth/access_token")) == 2


def test_persistent_401_raises_authentication_error(scripted: Scripted) -> None:
    scripted.on("GET", f"{C}/jobs/j1", Reply(401, {"message": "bad key", "requestId": "r1"}))
    with pytest.raises(AuthenticationError) as info:
        client(scripted).job("j1")
    assert len(scripted.calls("GET", f"{C}/jobs/j1")) == 2
    assert KEY not in str(info.value) and KEY not in repr(info.value)


def test_token_refreshes_before_expiry(scripted: Scripted) -> None:
    scripted.on(
        "POST",
        "/v1/auth/access_token",
        Reply(200, {"token": "short", "expiresIn": "0"}),
        Reply(200, {"token": "later", "expiresIn": "3600"}),
    )
    scripted.on("GET", f"{C}/jobs/j1", Reply(200, JOB))
    c = client(scripted)
    c.job("j1")
    c.job("j1")
    assert [s.headers["Authorization"] for s in scripted.calls("GET", f"{C}/jobs/j1")] == [
        "short",
        "later",
    ]


def test_netrc_does_not_replace_the_token(
    scripted: Scripted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    scripted.on("GET", f"{C}/jobs/j1", Reply(200, JOB))
    client(scripted).job("j1")
    assert scripted.calls("GET", f"{C}/jobs/j1")[0].headers["Authorization"] == "tok-1"
    assert "Authorization" not in scripted.calls("POST", "/v1/auth/access_token")[0].headers


def test_key_never_logged(scripted: Scripted, caplog: pytest.LogCaptureFixture) -> None:
    scripted.on("GET", f"{C}/jobs/j1", Reply(404, {"message": "no such job"}))
    caplog.set_level(logging.DEBUG)
    c = client(scripted)
    with pytest.raises(LookupError):
        c.job("j1")
    text = caplog.text + repr(c) + repr(c.settings) + repr(c._transport) + repr(c._transport.auth)
    assert KEY not in text
    assert "tok-1" not in text
