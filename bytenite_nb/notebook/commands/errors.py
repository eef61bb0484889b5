"""Turn exceptions into the one line a notebook user should see.

IPython prints an exception as a single ``UsageError: ...`` line only when its type *is*
``UsageError`` (an identity check: subclasses get a full traceback), so every user-facing
error becomes an exact ``UsageError`` whose text carries the kind, the message, the request id
and a hint. Unexpected exceptions (bugs) are left alone so they keep their traceback.
"""

from __future__ import annotations

from IPython.core.error import UsageError

__all__ = ["friendly_error", "is_user_error", "one_line", "redact"]

_MAX_LEN = 600


def one_line(text: str, limit: int = _MAX_LEN) -> str:
    """Collapse newlines so a message prints as one line, at most ``limit`` characters."""
    lines = [part.strip() for part in str(text).splitlines() if part.strip()]
    flat = "; ".join(lines)
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


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
        return "check the id: `%bytenite jobs` lists jobs, `%bytenite templates` templates"
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
        return f"see `%bytenite logs {exc.job.id} --level error`"
    if isinstance(exc, e.WaitTimeoutError):
        return f"the job keeps running; `%bytenite attach {exc.job.id} --wait` to wait again"
    if isinstance(exc, e.ConfigurationError):
        return "see `%bytenite info` for the current settings"
    if isinstance(exc, (e.BadRequestError, e.UnprocessableEntityError, e.ConflictError)):
        return "the server refused the request as sent; see its message"
    return ""


def friendly_error(
    exc: BaseException, *, base_url: str | None = None, secrets: tuple[str, ...] = (),
    note: str | None = None,
) -> UsageError:
    """The exact ``UsageError`` to raise for a user-facing ``exc`` (see :func:`is_user_error`).

    ``note`` is appended (e.g. "the draft job was deleted"); ``secrets`` are redacted from the
    text as a last line of defence.
    """
    from bytenite_nb.api import errors as e

    if isinstance(exc, UsageError) and type(exc) is UsageError:
        text = str(exc)
        if note:
            text = f"{text} ({note})"
        return UsageError(redact(one_line(text), secrets))
    kind = type(exc).__name__
    if isinstance(exc, e.APIStatusError):
        message = exc.message
        if exc.description and exc.description not in message:
            message = f"{message}: {exc.description}"
        text = f"{kind} (HTTP {exc.status_code}): {message}"
    elif isinstance(exc, e.MissingCredentialsError):
        text = f"{kind}: no ByteNite API key found (looked at: " + ", ".join(exc.places) + ")"
    elif isinstance(exc, e.APIError):
        text = f"{kind}: {exc.message}"
    elif isinstance(exc, OSError) and exc.filename is not None:
        text = f"{kind}: {exc.strerror or exc}: {exc.filename}"
    else:
        text = f"{kind}: {exc}"
    text = one_line(text)  # bound the message itself so the hint below always survives
    request_id = getattr(exc, "request_id", None)
    if request_id:
        text += f" [request id {request_id}]"
    if note:
        text += f" ({note})"
    hint = _hint(exc, base_url)
    if hint:
        text += f". Hint: {hint}"
    return UsageError(redact(one_line(text, limit=_MAX_LEN + 400), secrets))
