"""Exceptions become one exact-UsageError line: the kind, the server's message, and a hint
only when it says something the message does not."""

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
    # The request id stays on the exception (and in --debug), not on the line.
    assert text == ("NotFoundError: job not found: no job 'x'. "
                    "Hint: `%bytenite jobs` lists your jobs")
    assert exc.request_id == "req-1"
    assert "\n" not in text


def test_a_bad_request_is_its_message_alone() -> None:
    """Case 11: no generic description, no request id, no hint that says nothing."""
    exc = e.BadRequestError(
        "Invalid params: app: 'rows_per_chunk' is not allowed", status_code=400,
        description="Returned when the users sends a malformed request.",
        request_id="cc9d0001", method="POST", url="http://h/v1/customer/jobs")
    text = str(friendly_error(exc))
    assert text == "BadRequestError: Invalid params: app: 'rows_per_chunk' is not allowed"


def test_a_server_failure_keeps_its_request_id_to_report() -> None:
    exc = e.InternalServerError("boom", status_code=500, request_id="req-9")
    text = str(friendly_error(exc))
    assert "[request id req-9]" in text and "report it with the request id" in text


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
    job = SimpleNamespace(id="j9", error_message="boom", status="failed")
    text = str(friendly_error(e.JobFailedError(job, ["ERROR x", "ERROR y"])))  # type: ignore[arg-type]
    assert text == ("JobFailedError: job j9 failed: boom; ERROR x. "
                    "Hint: `%bytenite logs j9 --level error`")


def test_a_failed_wait_is_one_line_without_repeats() -> None:
    """Case 11: the job's error once, then the failing task's first error line only when it
    adds something; a traceback header is not an error line."""
    message = "task for chunk 2 failed with exit code 3: KeyError: 'temprature_c'"
    job = SimpleNamespace(id="j7", error_message=message, status="failed")
    logs = ["2026-01-01T00:00:00.000Z ERROR TASKRUNNER/task-2: Traceback (most recent call last):",
            "2026-01-01T00:00:00.001Z ERROR TASKRUNNER/task-2: KeyError: 'temprature_c'"]
    text = str(friendly_error(e.JobFailedError(job, logs)))  # type: ignore[arg-type]
    assert text.count("temprature_c") == 1 and "Traceback" not in text
    assert text.startswith(f"JobFailedError: job j7 failed: {message}.")
    extra = ["2026-01-01T00:00:00.000Z ERROR TASKRUNNER/task-2: column temprature_c is missing"]
    text = str(friendly_error(e.JobFailedError(job, extra)))  # type: ignore[arg-type]
    assert "; task-2: column temprature_c is missing. Hint" in text


def test_an_aborted_wait_says_aborted() -> None:
    job = SimpleNamespace(id="j8", error_message="Job aborted by user request", status="aborted")
    text = str(friendly_error(e.JobFailedError(job, [])))  # type: ignore[arg-type]
    assert text == "JobFailedError: job j8 was aborted"


def test_long_lines_are_cut_at_a_word() -> None:
    text = one_line("word " * 200, limit=60)
    assert len(text) <= 60 and text.endswith("word…")


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
