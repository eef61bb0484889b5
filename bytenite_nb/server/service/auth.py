"""API keys and access tokens for ByteNite Local.

Keys come from the configuration (``--api-key`` / ``BYTENITE_LOCAL_API_KEYS``); with none, one
key is generated once and kept in ``data_dir/api_key`` (mode 0600), so every server started on
that data dir accepts it. Tokens are random, stored only as SHA-256 hashes (so the database never
holds a usable credential), and expire after ``token_ttl`` seconds, across restarts too.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from bytenite_nb.server.errors import Unauthorized
from bytenite_nb.server.storage.store import Store

API_KEY_FILE = "api_key"
SCOPE = "openid"


def key_file(data_dir: Path) -> Path:
    """Where the generated API key of a data dir lives."""
    return Path(data_dir) / API_KEY_FILE


def load_or_create_key(data_dir: Path) -> str:
    """The data dir's generated API key, creating it (0600) on first use."""
    path = key_file(data_dir)
    if path.exists():
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = "bnl_" + secrets.token_urlsafe(32)
    # O_EXCL-free but 0600 from the first byte: never world-readable, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    os.chmod(path, 0o600)
    return key


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Auth:
    """Exchanges API keys for tokens and checks the ``Authorization`` header."""

    def __init__(self, store: Store, api_keys: tuple[str, ...], token_ttl: float) -> None:
        if not api_keys:
            raise ValueError("at least one API key is required")
        self._store = store
        self._keys = tuple(api_keys)
        self.token_ttl = token_ttl

    @property
    def keys(self) -> tuple[str, ...]:
        """The accepted API keys."""
        return self._keys

    def issue(self, api_key: str) -> tuple[str, int]:
        """A new token for a valid key and its lifetime in seconds; `Unauthorized` otherwise."""
        if not api_key or not any(hmac.compare_digest(api_key.encode(), k.encode())
                                  for k in self._keys):
            raise Unauthorized("Invalid API key")
        token = "bnt_" + secrets.token_urlsafe(32)
        self._store.add_token(_hash(token), time.time() + self.token_ttl, SCOPE)
        return token, round(self.token_ttl)

    def check(self, header: str | None) -> None:
        """Accept ``<token>`` or ``Bearer <token>``; raise `Unauthorized` otherwise."""
        token = (header or "").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        if not token:
            raise Unauthorized(
                "Missing access token: send 'Authorization: <token>' (get one from "
                "POST /v1/auth/access_token with your API key)")
        expires = self._store.token_expiry(_hash(token))
        if expires is None:
            raise Unauthorized("Invalid access token")
        if time.time() >= expires:
            raise Unauthorized("Access token expired: request a new one from "
                               "POST /v1/auth/access_token")

