"""Exceptions become one exact-UsageError line: kind, message, request id, hint."""

from __future__ import annotations

from types import SimpleNamespace

from IPython.core.error import UsageError

from bytenite_nb.api import errors as e
from bytenite_nb.notebook.commands.errors import friendly_error, is_user_error, one_line, redact


def test_status_error_line() -> None:
    exc = e.NotFoundError("job not found", status_code=404, description="no job 'x'",
                          request_id="req-1", method="GET", url="http://h/v1/customer/jobs/x")
    out = friendly_error(exc)
    assert type(out) is UsageError
    text = str(out)
    assert text.startswith("NotFoundError (HTTP 404): job not found: no job 'x' [request id req-1]")
    assert "Hint: check the id" in text
    assert "\n" not in text


def test_connection_error_hint_names_the_server() -> None:
    text = str(friendly_error(e.APIConnectionError("refused"), base_url="http://h:9"))
    assert text.startswith("APIConnectionError: refused")
    assert "cannot reach http://h:9" in text and "%bytenite local" in text


def test_missing_credentials_is_one_line() -> None:
    text = str(friendly_error(e.MissingCredentialsError(["env X", "file Y"])))
    assert text.startswith("MissingCredentialsError: no ByteNite API key found (looked at: env X")
    assert "%bytenite login" in text
    assert "\n" not in text


def test_job_failed_has_the_logs_hint() -> None:
    job = SimpleNamespace(id="j9", error_message="boom")
    text = str(friendly_error(e.JobFailedError(job, ["ERROR x", "ERROR y"])))  # type: ignore[arg-type]
    assert "Job j9 failed: boom; First error log lines:; ERROR x; ERROR y" in text
    assert "%bytenite logs j9 --level error" in text


def test_notes_and_redaction() -> None:
    text = str(friendly_error(e.APIError("key sk-secret-123 leaked"), note="draft deleted",
                              secrets=("sk-secret-123",)))
    assert "sk-secret-123" not in text and "***" in text
    assert "(draft deleted)" in text
    assert redact("abc", ("",)) == "abc"


def test_usage_errors_pass_through_as_one_line() -> None:
    out = friendly_error(UsageError("a\nb"), note="n")
    assert str(out) == "a; b (n)"
    assert type(out) is UsageError


def test_which_errors_are_the_users() -> None:
    assert is_user_error(e.ConflictError("x", status_code=409))
    assert is_user_error(FileNotFoundError(2, "No such file", "x.csv"))
    assert not is_user_error(TypeError("bug"))
    assert str(friendly_error(FileNotFoundError(2, "No such file", "x.csv"))) == (
        "FileNotFoundError: No such file: x.csv"
    )


def test_one_line_bounds_length() -> None:
    assert len(one_line("x" * 5000)) == 600
