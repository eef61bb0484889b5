"""API keys and access tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from bytenite_nb.server.errors import Unauthorized
from bytenite_nb.server.service.auth import Auth, load_or_create_key
from bytenite_nb.server.storage.store import Store


def test_generated_key_is_private_and_stable(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path)
    assert (tmp_path / "api_key").stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(tmp_path) == key and len(key) > 30


def test_tokens_raw_bearer_expiry_and_bad_keys(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    auth = Auth(store, ("k1", "k2"), token_ttl=60)
    token, ttl = auth.issue("k2")
    assert ttl == 60
    auth.check(token)
    auth.check(f"Bearer {token}")
    auth.check(f"bearer   {token}")
    for bad in (None, "", "Bearer ", "nope", token + "x"):
        with pytest.raises(Unauthorized):
            auth.check(bad)
    with pytest.raises(Unauthorized):
        auth.issue("k3")
    stale, _ = Auth(store, ("k1",), token_ttl=0).issue("k1")  # expires at once
    with pytest.raises(Unauthorized) as info:
        auth.check(stale)
    assert "expired" in info.value.message
    store.close()


def test_tokens_are_stored_hashed(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    token, _ = Auth(store, ("k",), 60).issue("k")
    store.close()
    assert token.encode() not in (tmp_path / "db.sqlite").read_bytes()
    assert token.encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir())
