"""Access tokens: exchange the API key at ``POST /v1/auth/access_token`` and keep it fresh.

The token travels as an :class:`requests.auth.AuthBase`, never as a session header, because
``requests`` lets a ``.netrc`` entry silently replace a hand-set ``Authorization`` header.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests
from requests.auth import AuthBase

__all__ = ["NoAuth", "TokenAuth"]

#: ``fetch(api_key) -> (token, lifetime in seconds)``
TokenFetcher = Callable[[str], tuple[str, float]]


class NoAuth(AuthBase):
    """Send no ``Authorization`` at all (and stop ``.netrc`` from adding one).

    Used for the token exchange itself and for PUTs to a pre-signed upload URL.
    """

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers.pop("Authorization", None)
        return r


class TokenAuth(AuthBase):
    """Adds ``Authorization: <token>`` (raw, as ByteNite documents), fetching tokens on demand.

    A token is refreshed shortly before it expires, and :meth:`invalidate` drops it after a
    401 so the next request fetches a new one. Thread-safe: watcher threads share it.
    """

    def __init__(
        self, api_key: str, fetch: TokenFetcher, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._api_key = api_key
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0

    def __repr__(self) -> str:
        state = "token cached" if self._token else "no token yet"
        return f"<TokenAuth api_key=<hidden> {state}>"

    def token(self) -> str:
        """A valid access token, exchanging the API key when there is none or it is expiring."""
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                token, lifetime = self._fetch(self._api_key)
                # Refresh a little early (10% of the lifetime, at most a minute) so a request
                # never leaves with a token that expires in flight.
                margin = min(60.0, lifetime * 0.1)
                self._token = token
                self._refresh_at = self._clock() + max(0.0, lifetime - margin)
            return self._token

    def invalidate(self, token: str | None = None) -> None:
        """Forget the cached token (only if it is still ``token``, when given)."""
        with self._lock:
            if token is None or token == self._token:
                self._token = None

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self.token()
        return r
