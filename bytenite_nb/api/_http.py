"""Transport: sessions, retries, timeouts, token refresh, and response -> exception mapping."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bytenite_nb import __version__, wire
from bytenite_nb.api.auth import NoAuth, TokenAuth
from bytenite_nb.api.config import Settings
from bytenite_nb.api.errors import (
    APIConnectionError,
    APIResponseError,
    APITimeoutError,
    make_status_error,
    safe_url,
)

log = logging.getLogger("bytenite_nb.api")

#: Statuses that mean "not handled, try again" (429 and gateway/overload answers).
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Methods safe to repeat after a read error or a retryable status. POST is added only for
#: requests that are idempotent by construction (create with a client-chosen jobId, reads).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})
BACKOFF_FACTOR = 0.5
BACKOFF_MAX = 8.0
BACKOFF_JITTER = 0.5
RETRY_AFTER_MAX = 60
CONNECT_TIMEOUT_MAX = 10.0

# Indirection so tests can record sleeps instead of taking them.
_sleep = time.sleep


class _Retry(Retry):
    """urllib3 ``Retry`` whose sleeps go through ``_sleep`` (Retry-After first, else backoff)."""

    def sleep(self, response: Any = None) -> None:
        if self.respect_retry_after_header and response is not None:
            retry_after = self.get_retry_after(response)
            if retry_after:
                _sleep(retry_after)
                return
        backoff = self.get_backoff_time()
        if backoff > 0:
            _sleep(backoff)


def make_retry(max_retries: int, *, allow_post: bool) -> Retry:
    """The retry policy; ``allow_post`` makes POST repeatable after read errors and 5xx."""
    methods = IDEMPOTENT_METHODS | ({"POST"} if allow_post else set())
    return _Retry(
        total=max_retries,
        connect=max_retries,  # the request never left: safe for every method
        read=max_retries,
        status=max_retries,
        other=0,
        redirect=3,
        allowed_methods=methods,
        status_forcelist=RETRY_STATUSES,
        backoff_factor=BACKOFF_FACTOR,
        backoff_max=BACKOFF_MAX,
        backoff_jitter=BACKOFF_JITTER,
        respect_retry_after_header=True,
        retry_after_max=RETRY_AFTER_MAX,
        raise_on_status=False,  # the last error response is mapped onto our exception tree
    )


def _session(retry: Retry, auth: requests.auth.AuthBase) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=16)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.auth = auth
    session.headers["User-Agent"] = (
        f"bytenite-nb/{__version__} python-requests/{requests.__version__}"
    )
    session.headers["Accept"] = "application/json"
    return session


class Transport:
    """Sends requests to one ByteNite API host and returns decoded JSON or raises.

    Two sessions share one token: ``retrying`` repeats idempotent requests (including the
    POSTs we make idempotent), ``once`` repeats only what never reached the server.
    """

    def __init__(self, settings: Settings, *, timeout: float = 30.0, max_retries: int = 5) -> None:
        self.settings = settings
        self.base_url = settings.base_url
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.auth = TokenAuth(settings.api_key, self._fetch_token)
        self._retrying = _session(make_retry(self.max_retries, allow_post=True), self.auth)
        self._once = _session(make_retry(self.max_retries, allow_post=False), self.auth)
        # For callers with their own reconnect loop (the events stream): failing fast keeps
        # them responsive to close() instead of sleeping inside urllib3's backoff.
        self._bare = _session(make_retry(0, allow_post=False), self.auth)

    def __repr__(self) -> str:
        return f"<Transport {self.base_url} retries={self.max_retries}>"

    def close(self) -> None:
        self._retrying.close()
        self._once.close()
        self._bare.close()

    def timeouts(self, read: float | None = None) -> tuple[float, float]:
        """``(connect, read)``: requests has no default timeout, so every call passes one."""
        read_timeout = self.timeout if read is None else read
        return (min(CONNECT_TIMEOUT_MAX, self.timeout), read_timeout)

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def _fetch_token(self, api_key: str) -> tuple[str, float]:
        body = self.request(
            "POST", wire.AUTH_PREFIX + "/access_token", json={"apiKey": api_key}, authenticate=False
        )
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise APIResponseError(
                "token exchange answered without a token",
                method="POST",
                url=wire.AUTH_PREFIX + "/access_token",
            )
        try:
            seconds = wire.int64_in(body.get("expiresIn"))
        except ValueError:
            seconds = None
        lifetime = float(wire.DEFAULT_TOKEN_TTL_SECONDS if seconds is None else seconds)
        return token, lifetime

    def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
        authenticate: bool = True,
        stream: bool = False,
        read_timeout: float | None = None,
        retry: bool = True,
    ) -> requests.Response:
        """Send one request (with transport retries) and return the raw 2xx response.

        ``idempotent=False`` repeats the request only if it never reached the server;
        ``retry=False`` never repeats it. A 401 on an authenticated request drops the token
        and re-sends once with a new one. Error statuses raise from the
        :mod:`~bytenite_nb.api.errors` tree.
        """
        if not retry:
            session = self._bare
        elif idempotent:
            session = self._retrying
        else:
            session = self._once
        url = self.url(path)
        # An absolute URL sent without our token is pre-signed: the URL is the credential.
        presigned = not authenticate and url != self.base_url + path
        shown = safe_url(url, presigned=presigned)
        for attempt in (1, 2):
            started = time.monotonic()
            try:
                response = session.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    data=data,
                    headers=headers,
                    auth=None if authenticate else NoAuth(),
                    stream=stream,
                    timeout=self.timeouts(read_timeout),
                )
            except requests.Timeout as exc:
                raise APITimeoutError(
                    f"timed out ({type(exc).__name__})", method=method, url=shown
                ) from None
            except requests.RequestException as exc:
                raise APIConnectionError(
                    f"cannot reach {self.base_url} ({_reason(exc)})",
                    method=method,
                    url=shown,
                ) from None
            log.debug(
                "%s %s -> %s in %.3fs (request id %s)",
                method,
                shown,
                response.status_code,
                time.monotonic() - started,
                response.headers.get(wire.REQUEST_ID_HEADER, "-"),
            )
            if response.status_code == 401 and authenticate and attempt == 1:
                # Expired or revoked token: the server did nothing, so one re-send is safe.
                sent = response.request.headers.get("Authorization") if response.request else None
                response.close()
                self.auth.invalidate(sent)
                continue
            if response.status_code >= 400:
                try:
                    raise make_status_error(response, presigned=presigned)
                finally:
                    response.close()
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Like :meth:`send`, returning the decoded JSON body (``{}`` when empty)."""
        response = self.send(method, path, **kwargs)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise APIResponseError(
                f"expected JSON, got {response.headers.get('Content-Type', 'no content type')}",
                method=method,
                url=safe_url(response.url),
                request_id=response.headers.get(wire.REQUEST_ID_HEADER),
            ) from None


def _reason(exc: BaseException) -> str:
    """A short, credential-free reason for a transport failure."""
    text = type(exc).__name__
    inner = exc.args[0] if exc.args else None
    reason = getattr(inner, "reason", None)
    if reason is not None:
        text += f": {type(reason).__name__}"
    return text
