"""Every exception the ByteNite client raises.

All of them derive from one root, so ``except ByteniteError`` catches anything this package
raises on purpose. HTTP errors are keyed by status code; transport failures (nothing usable
came back) are a separate branch, so a caller can tell "the server said no" from "the server
was not reachable"::

    ByteniteError
    ├── ConfigurationError
    │   └── MissingCredentialsError          no API key anywhere (names every place it looked)
    ├── APIError                             anything that went wrong talking to the API
    │   ├── APIStatusError                   the server answered with an error status
    │   │   ├── BadRequestError              400 (also ValueError)
    │   │   │   └── ResultsNotReadyError     results asked for before the job completed
    │   │   ├── AuthenticationError          401
    │   │   ├── PermissionDeniedError        403
    │   │   ├── NotFoundError                404 (also LookupError)
    │   │   ├── ConflictError                409
    │   │   ├── UnprocessableEntityError     422 (also ValueError)
    │   │   ├── RateLimitError               429
    │   │   └── InternalServerError          5xx
    │   ├── APIConnectionError               no answer: refused, reset, DNS, retries exhausted
    │   │   └── APITimeoutError              connect or read timeout (also TimeoutError)
    │   └── APIResponseError                 an answer that is not the JSON the API promises
    ├── InputError                          inputs refused before a job exists (also ValueError)
    ├── JobFailedError                       a waited-for job ended failed or aborted
    ├── EmptyResultsError                    a completed job produced nothing to read
    └── WaitTimeoutError                     Job.wait(timeout=...) ran out (also TimeoutError)

``APIStatusError`` carries ByteNite's error body: ``status_code``, ``message`` (the top-level
``message``), ``description`` (``error.description``), ``error_message`` (``error.message``)
and ``request_id`` (body ``requestId`` or the ``X-Request-Id`` header). ``make_status_error``
is the one place that maps a response onto this tree.

Exception text never contains credentials: messages are built from the server's error body
and the request's method and path, never from headers or the request body.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bytenite_nb import wire
from bytenite_nb._warnings import ByteniteWarning

if TYPE_CHECKING:  # pragma: no cover
    import requests

    from bytenite_nb.api.jobs import Job

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ByteniteError",
    "ByteniteWarning",
    "ConfigurationError",
    "ConflictError",
    "EmptyResultsError",
    "InputError",
    "InternalServerError",
    "JobFailedError",
    "MissingCredentialsError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResultsNotReadyError",
    "UnprocessableEntityError",
    "WaitTimeoutError",
    "make_status_error",
]


class ByteniteError(Exception):
    """Root of every exception raised by bytenite-nb on purpose."""




class ConfigurationError(ByteniteError):
    """The client is configured in a way that cannot work (bad URL, unreadable config file)."""


class MissingCredentialsError(ConfigurationError):
    """No API key was found for the server; the message lists every place the client looked.

    ``base_url`` is the server a key was looked for; ``elsewhere`` names the keys found that
    belong to other servers (not sent to this one).
    """

    def __init__(self, places: list[str], *, base_url: str | None = None,
                 elsewhere: list[str] | None = None) -> None:
        self.places = list(places)
        self.base_url = base_url
        self.elsewhere = list(elsewhere or [])
        listing = "\n".join(f"  - {place}" for place in self.places)
        super().__init__(
            "No ByteNite API key found. Set one in any of these places "
            f"(checked in this order):\n{listing}"
        )


class APIError(ByteniteError):
    """Something went wrong talking to the API.

    Attributes: ``method`` and ``url`` of the request (path and query only, no credentials),
    ``request_id`` if the server gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.message = message
        self.method = method
        self.url = url
        self.request_id = request_id or None
        super().__init__(message)

    def __str__(self) -> str:
        where = f"{self.method} {self.url}: " if self.method and self.url else ""
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"{where}{self.message}{rid}"


class APIStatusError(APIError):
    """The server answered with an error status; its ByteNite error body is kept."""

    status_code: int

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        description: str | None = None,
        error_message: str | None = None,
        body: Any = None,
        method: str | None = None,
        url: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url, request_id=request_id)
        self.status_code = status_code
        self.description = description or None
        self.error_message = error_message or None
        self.body = body

    @property
    def detail(self) -> str | None:
        """The description when it adds something to the message, else ``None``.

        ByteNite's generic per-status descriptions ("Returned when the user is not
        authenticated.") repeat what the status says; a specific description is kept.
        """
        text = (self.description or "").strip()
        if not text or text in self.message or text.startswith("Returned when"):
            return None
        return text

    def __str__(self) -> str:
        text = f"{self.status_code} {self.message}"
        if self.detail:
            text += f": {self.detail}"
        where = f"{self.method} {_path(self.url)}: " if self.method and self.url else ""
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"{where}{text}{rid}"


def _path(url: str) -> str:
    """``url`` without scheme and host, for shorter messages (the client knows its host)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.path.startswith("/v1/"):
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return url


class BadRequestError(APIStatusError, ValueError):
    """400: the request was malformed or not allowed in the job's current state."""


class ResultsNotReadyError(BadRequestError):
    """400: the job's results were asked for before it completed.

    ``job`` is the job (when known); the message says what to call instead.
    """

    job: Job | None = None

    @classmethod
    def for_job(cls, job: Job, cause: APIStatusError | None = None) -> ResultsNotReadyError:
        """The error for ``job``, which has not completed yet (``cause``: the server's)."""
        error = cls(
            f"job {job.id} is still {job.status}: its results exist once it completes; "
            "call job.wait() first, or job.load_results(), which waits",
            status_code=400,
            method=getattr(cause, "method", None), url=getattr(cause, "url", None),
            request_id=getattr(cause, "request_id", None),
            body=getattr(cause, "body", None),
        )
        error.job = job
        return error


class AuthenticationError(APIStatusError):
    """401: the API key or access token was rejected."""


class PermissionDeniedError(APIStatusError):
    """403: authenticated, but not allowed to touch this resource."""


class NotFoundError(APIStatusError, LookupError):
    """404: no such job, template, or route."""


class ConflictError(APIStatusError):
    """409: the resource is in a state that forbids this change."""


class UnprocessableEntityError(APIStatusError, ValueError):
    """422: the body was well-formed but invalid (e.g. params fail the template's schema)."""


class RateLimitError(APIStatusError):
    """429: too many requests; retries are already exhausted when you see this."""


class InternalServerError(APIStatusError):
    """5xx: the server failed; retries are already exhausted when you see this."""


class APIConnectionError(APIError):
    """No usable answer: connection refused or reset, DNS failure, or retries exhausted."""


class APITimeoutError(APIConnectionError, TimeoutError):
    """The connect or read timeout elapsed."""


class APIResponseError(APIError):
    """The server answered 2xx but the body is not the JSON the API promises."""


class JobFailedError(ByteniteError):
    """A job ended ``JOB_STATE_FAILED``: its status is ``failed``, or ``aborted``.

    Attributes: ``job`` (the refreshed :class:`~bytenite_nb.api.jobs.Job`), ``error_message``
    (the job's ``errorMessage``), ``error_logs`` (the first ERROR-or-worse log lines, those of
    the step that failed first),
    ``aborted`` (whether it ended by an abort rather than a failure).
    """

    def __init__(self, job: Job, error_logs: list[str] | None = None) -> None:
        self.job = job
        self.error_message = job.error_message
        self.error_logs = list(error_logs or [])
        self.aborted = getattr(job, "status", "") == "aborted"
        text = f"Job {job.id} was aborted" if self.aborted else f"Job {job.id} failed"
        if self.error_message:
            text += f": {self.error_message}"
        if self.error_logs:
            text += "\nFirst error log lines:\n" + "\n".join(
                f"  {line}" for line in self.error_logs
            )
        super().__init__(text)


class InputError(ByteniteError, ValueError):
    """A job's inputs were refused on the client, before anything was created: a param its
    template does not take, a param whose section is ambiguous, no input data for a template
    that needs some. The message names the fix."""


class EmptyResultsError(ByteniteError, ValueError):
    """A completed job produced nothing to read: no result files, or only empty ones.

    ``job`` is the job; the message names what was found and what usually causes it.
    """

    def __init__(self, message: str, job: Job | None = None) -> None:
        self.job = job
        super().__init__(message)


class WaitTimeoutError(ByteniteError, TimeoutError):
    """``Job.wait(timeout=...)`` gave up before the job reached a terminal state.

    The job keeps running on the server; ``job`` is the last known state.
    """

    def __init__(self, job: Job, timeout: float) -> None:
        self.job = job
        self.timeout = timeout
        status = getattr(job, "status", None) or job.state.name
        super().__init__(
            f"Job {job.id} still {status} after waiting {timeout:g} s "
            "(it keeps running; call wait() again or abort())"
        )


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status."""
    if status in _STATUS_CLASSES:
        return _STATUS_CLASSES[status]
    if status >= 500:
        return InternalServerError
    return APIStatusError


def safe_url(url: str, *, presigned: bool = False) -> str:
    """``url`` without userinfo, so errors and logs never leak credentials.

    ``presigned``: the URL itself is a credential (an upload ``tempUrl`` or a result link,
    whose path or query carries a token), so only its scheme and host are kept.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    if presigned:
        return f"{parts.scheme}://{host}/<pre-signed URL>"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{parts.scheme}://{host}{path}" if parts.scheme else path


def make_status_error(response: requests.Response, *, presigned: bool = False) -> APIStatusError:
    """Map an error response onto the exception tree, keeping ByteNite's error body.

    ``presigned``: the request went to a pre-signed URL, which is not repeated in the error.
    """
    status = response.status_code
    body: Any = None
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        body = response.text[:500] if response.text else None
    message = ""
    description = None
    error_message = None
    request_id = response.headers.get(wire.REQUEST_ID_HEADER)
    if isinstance(body, dict):
        message = str(body.get("message") or "").strip()
        request_id = body.get("requestId") or request_id
        err = body.get("error")
        if isinstance(err, dict):
            description = err.get("description")
            error_message = err.get("message")
        elif isinstance(body.get("detail"), str):  # a framework-level error (e.g. FastAPI)
            description = body["detail"]
    elif isinstance(body, str):
        description = body.strip() or None
    if not message:
        message = error_message or response.reason or f"HTTP {status}"
    request = response.request
    return status_error_class(status)(
        message,
        status_code=status,
        description=description,
        error_message=error_message,
        body=body,
        method=request.method if request is not None else None,
        url=safe_url(request.url, presigned=presigned)
        if request is not None and request.url
        else None,
        request_id=request_id,
    )
