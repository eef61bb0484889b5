"""Why ByteNite Local refuses a request, in words every layer can raise.

The service and storage layers raise these; `bytenite_nb.server.http.errors` answers each
kind with its HTTP status (400, 401, 404, 409, 410, 413, 503) in ByteNite's error body. This
module sits at the top of the package, beside `config`, because every layer imports it and it
imports nothing of the server.
"""

from __future__ import annotations


class ServerError(Exception):
    """A refusal with a message for the user that names the problem and, where there is one,
    the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ServerError):
    """The request itself is wrong (a bad value, a job in the wrong state for it)."""


class Unauthorized(ServerError):
    """Missing, unknown or expired credentials."""


class NotFound(ServerError):
    """The named resource does not exist."""


class Conflict(ServerError):
    """The resource exists in a state that forbids the change."""


class Gone(ServerError):
    """The resource existed but is no longer served (an expired link, a retired route)."""


class TooLarge(ServerError):
    """The request body is larger than the server accepts."""


class Unavailable(ServerError):
    """The server cannot do it right now (e.g. it is shutting down)."""
