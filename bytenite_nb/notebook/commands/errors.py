"""Turn exceptions into the one line a notebook user should see.

IPython prints an exception as a single ``UsageError: ...`` line only when its type *is*
``UsageError`` (an identity check: subclasses get a full traceback), so every user-facing
error becomes an exact ``UsageError`` whose text is one line: the kind, the server's message,
and a hint only when it says something the message does not. ByteNite's generic per-status
descriptions ("Returned when ...") are left out; the request id stays on the exception (and
in the ``--debug`` traceback) and is shown only for server failures (5xx), where it is what
to report. Long text is cut at a word, never mid-word. Unexpected exceptions (bugs) are left
alone so they keep their traceback.
"""

from __future__ import annotations

from IPython.core.error import UsageError

__all__ = ["friendly_error", "is_user_error", "one_line", "redact"]

_MAX_LEN = 600


def one_line(text: str, limit: int = _MAX_LEN) -> str:
    """Collapse newlines so a message prints as one line of at most ``limit`` characters,
    cut at a word boundary (with "…") when longer."""
    lines = [part.strip() for part in str(text).splitlines() if part.strip()]
    flat = "; ".join(lines)
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ;,:") + "…"


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """Replace every occurrence of each (non-trivial) secret in ``text`` with ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is something a user can act on (API, configuration, input, files)."""
    from bytenite_nb.api.errors import ByteniteError

    return isinstance(exc, (ByteniteError, UsageError, OSError))


def _hint(exc: BaseException, base_url: str | None) -> str:
    from bytenite_nb.api import errors as e

    where = base_url or "the server"
    if isinstance(exc, e.MissingCredentialsError):
        return ("run `%bytenite login` (hidden prompt), or `%bytenite local` to use "
                "ByteNite Local on this machine")
    if isinstance(exc, e.AuthenticationError):
        return f"the API key was rejected by {where}; run `%bytenite login` to store a new one"
    if isinstance(exc, e.PermissionDeniedError):
        return "this key may not touch that resource; check the job id and the account"
    if isinstance(exc, e.NotFoundError):
        url = str(exc.url or "")
        if "/templates" in url:
            return "" if "Did you mean" in exc.message else "`%bytenite templates` lists them"
        return "`%bytenite jobs` lists your jobs" if "/jobs/" in url else ""
    if isinstance(exc, e.RateLimitError):
        return "the server is throttling requests; wait a little and try again"
    if isinstance(exc, e.InternalServerError):
        return "the server failed; try again, and report it with the request id if it persists"
    if isinstance(exc, e.APITimeoutError):
        return f"{where} did not answer in time; check it is running (`%bytenite info`)"
    if isinstance(exc, e.APIConnectionError):
        return (f"cannot reach {where}; start ByteNite Local with `%bytenite local` or set "
                "the URL with `%config ByteniteMagics.base_url = '...'`")
    if isinstance(exc, e.JobFailedError):
        return "" if exc.aborted else f"`%bytenite logs {exc.job.id} --level error`"
    if isinstance(exc, e.WaitTimeoutError):
        return f"the job keeps running; `%bytenite attach {exc.job.id} --wait` to wait again"
    if isinstance(exc, e.ConfigurationError):
        return "see `%bytenite info` for the current settings"
    return ""


def _job_failed_text(exc: BaseException) -> str:
    """A failed job in one line: what failed, then the first error line of the failing task
    when it adds something to the job's own message."""
    job = exc.job  # type: ignore[attr-defined]
    message = (exc.error_message or "").strip()  # type: ignore[attr-defined]
    if getattr(exc, "aborted", False):
        return f"job {job.id} was aborted"
    text = f"job {job.id} failed" + (f": {message}" if message else "")
    for line in getattr(exc, "error_logs", ()) or ():
        body = str(line).split(": ", 1)[-1].strip()  # without "<time> ERROR SERVICE/task:"
        if body and body not in message and not body.startswith("Traceback ("):
            where = str(line).split(": ", 1)[0].rsplit("/", 1)[-1]
            text += f"; {where}: {body}" if where.startswith("task-") else f"; {body}"
            break
    return text


def friendly_error(
    exc: BaseException, *, base_url: str | None = None, secrets: tuple[str, ...] = (),
    note: str | None = None,
) -> UsageError:
    """The exact ``UsageError`` to raise for a user-facing ``exc`` (see :func:`is_user_error`).

    ``note`` is appended (e.g. "the draft job was deleted"); ``secrets`` are redacted from the
    text as a last line of defence.
    """
    from bytenite_nb.api import errors as e

    if (isinstance(exc, UsageError) and type(exc) is UsageError) or isinstance(
            exc, e.InputError):
        # A usage mistake, refused before anything was made: its message is the whole line.
        text = str(exc)
        if note:
            text = f"{text} ({note})"
        return UsageError(redact(one_line(text), secrets))
    kind = type(exc).__name__
    if isinstance(exc, e.APIStatusError):
        message = exc.message
        if exc.detail:
            message = f"{message}: {exc.detail}"
        named = type(exc) is not e.APIStatusError  # the class already says the status
        text = f"{kind}: {message}" if named else f"{kind} (HTTP {exc.status_code}): {message}"
    elif isinstance(exc, e.MissingCredentialsError):
        text = f"{kind}: no ByteNite API key found (looked at: " + ", ".join(exc.places) + ")"
    elif isinstance(exc, e.JobFailedError):
        text = f"{kind}: {_job_failed_text(exc)}"
    elif isinstance(exc, e.APIError):
        text = f"{kind}: {exc.message}"
    elif isinstance(exc, OSError) and exc.filename is not None:
        text = f"{kind}: {exc.strerror or exc}: {exc.filename}"
    else:
        text = f"{kind}: {exc}"
    text = one_line(text)  # bound the message itself so the hint below always survives
    request_id = getattr(exc, "request_id", None)
    if request_id and isinstance(exc, e.InternalServerError):
        text += f" [request id {request_id}]"
    if note:
        text += f" ({note})"
    hint = _hint(exc, base_url)
    if hint and hint not in text:
        text += f". Hint: {hint}"
    return UsageError(redact(one_line(text, limit=_MAX_LEN + 400), secrets))
