"""The client's secrets methods: what goes on the wire, and that a secret key never shows in a
repr, a log line or an exception, even when a server quotes the request body in its error."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from bytenite_nb.api import (
    BadRequestError,
    Client,
    NotFoundError,
    Secret,
    UnprocessableEntityError,
)
from tests.unit.api._scripted import KEY, Reply, Scripted, Seen

SECRET = "sk-unit-llm-key-0042"
S = "/v1/auth/secrets"


def client(server: Scripted) -> Client:
    return Client(api_key=KEY, base_url=server.url, max_retries=0)


def test_save_secret_sends_the_documented_body_and_returns_the_id(scripted: Scripted) -> None:
    scripted.on("POST", S, Reply(200, {"ok": True, "requestId": "r", "message": "saved"}))
    c = client(scripted)
    assert c.save_secret("other", secret_key=SECRET, id="MY_KEY", name="llm",
                         params={"team": "ml"}) == "MY_KEY"
    generated = c.save_secret("aws", "AKIA1", secret_key=SECRET,
                              expires_at=dt.datetime(2030, 1, 2, 3, 4, 5))
    first, second = (seen.json() for seen in scripted.calls("POST", S))
    assert first == {"secret": {"id": "MY_KEY", "secretType": "other", "name": "llm",
                                "params": {"team": "ml"}}, "secretKey": SECRET}
    assert second == {"secret": {"id": generated, "secretType": "aws", "accessKey": "AKIA1",
                                 "expiresAt": "2030-01-02T03:04:05.000Z"}, "secretKey": SECRET}
    assert generated.startswith("secret_")


def test_save_secret_checks_its_arguments_before_sending(scripted: Scripted) -> None:
    c = client(scripted)
    with pytest.raises(ValueError, match="secret_key is required"):
        c.save_secret("other", secret_key="")
    with pytest.raises(ValueError, match="secret_type is required"):
        c.save_secret(" ", secret_key=SECRET)
    assert scripted.calls("POST", S) == []


def test_list_and_delete(scripted: Scripted) -> None:
    scripted.on("GET", S, Reply(200, {"secrets": [
        {"id": "S3_CRED", "secretType": "aws", "accessKey": "AK", "expiresAt": None,
         "params": {"region": "eu"}, "name": ""},
        # a careless server that returns the key: the client drops it
        {"id": "MY_KEY", "secretType": "other", "accessKey": "", "secretKey": SECRET,
         "expiresAt": "2030-01-01T00:00:00Z", "params": {}, "name": "llm"}]}))
    scripted.on("DELETE", f"{S}/other/a%2Fb", Reply(404, {"ok": False, "message": "no such"}))
    c = client(scripted)
    aws, other = c.secrets("aws")
    assert scripted.calls("GET", S)[0].path.endswith("?secretType=aws")
    assert (aws.id, aws.secret_type, aws.access_key, aws.params) == ("S3_CRED", "aws", "AK",
                                                                       {"region": "eu"})
    assert other.expires_at == dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    assert isinstance(other, Secret) and other.name == "llm"
    assert SECRET not in repr([aws, other]) + json.dumps(other.raw)
    with pytest.raises(NotFoundError, match="no such"):
        c.delete_secret("other", "a/b")


def test_key_never_in_exceptions_even_if_the_server_echoes_it(
        scripted: Scripted, caplog: pytest.LogCaptureFixture) -> None:
    def echo(seen: Seen) -> Reply:  # FastAPI's default 422 quotes the input it rejected
        return Reply(422, {"detail": [{"loc": ["body", "secret"], "msg": "bad",
                                       "input": seen.json()}],
                           "message": f"rejected {seen.json()['secretKey']}"})

    scripted.on("POST", S, echo)
    caplog.set_level(logging.DEBUG, logger="bytenite_nb")
    with pytest.raises(UnprocessableEntityError) as info:
        client(scripted).save_secret("other", secret_key=SECRET, id="X")
    err = info.value
    text = str(err) + repr(err) + repr(err.args) + json.dumps(err.body) + str(err.description)
    assert SECRET not in text and "***" in text
    assert SECRET not in caplog.text


def test_key_never_in_a_bad_request_error(scripted: Scripted) -> None:
    scripted.on("POST", S, Reply(400, {"ok": False, "message": "secret.accessKey is required",
                                        "error": {"code": "400", "message": "Bad Request",
                                                  "description": "x"}}))
    with pytest.raises(BadRequestError) as info:
        client(scripted).save_secret("aws", secret_key=SECRET)
    assert "accessKey" in str(info.value) and SECRET not in repr(info.value)
