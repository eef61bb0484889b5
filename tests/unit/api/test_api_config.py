"""Credential and base URL resolution: fixed order, clear errors, the key never shown."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bytenite_nb.api import Client, ConfigurationError, MissingCredentialsError
from bytenite_nb.api.config import (
    DEFAULT_BASE_URL,
    config_path,
    normalize_base_url,
    resolve_settings,
    save_config,
)


def test_missing_key_names_every_place() -> None:
    with pytest.raises(MissingCredentialsError) as info:
        resolve_settings()
    text = str(info.value)
    for place in (
        "api_key argument",
        "BYTENITE_API_KEY",
        "config.toml",
        "keyring",
        "ByteNite Local",
    ):
        assert place in text
    assert len(info.value.places) == 5


def test_order_argument_env_file(monkeypatch: pytest.MonkeyPatch) -> None:
    save_config(api_key="from-file", base_url="http://file.test:1/v1/customer")
    s = resolve_settings()
    assert (s.api_key, s.base_url) == ("from-file", "http://file.test:1")
    assert "config file" in s.api_key_source
    monkeypatch.setenv("BYTENITE_API_KEY", "from-env")
    monkeypatch.setenv("BYTENITE_BASE_URL", "http://env.test:2/")
    s = resolve_settings()
    assert (s.api_key, s.base_url) == ("from-env", "http://env.test:2")
    s = resolve_settings("from-arg", "https://arg.test")
    assert (s.api_key, s.base_url) == ("from-arg", "https://arg.test")


def test_default_base_url() -> None:
    assert resolve_settings("k").base_url == DEFAULT_BASE_URL


def test_running_local_server_is_discovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "server.json").write_text(
        json.dumps({"pid": os.getpid(), "url": "http://127.0.0.1:9999"})
    )
    (local / "api_key").write_text("local-key\n")
    monkeypatch.setenv("BYTENITE_LOCAL_DIR", str(local))
    s = resolve_settings()
    assert (s.api_key, s.base_url) == ("local-key", "http://127.0.0.1:9999")
    # The local key is only used for that server.
    with pytest.raises(MissingCredentialsError):
        resolve_settings(base_url="http://elsewhere.test")


def test_dead_local_server_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "server.json").write_text(json.dumps({"pid": 2**22 + 12345, "url": "http://x:1"}))
    monkeypatch.setenv("BYTENITE_LOCAL_DIR", str(local))
    assert resolve_settings("k").base_url == DEFAULT_BASE_URL


def test_save_config_is_private_and_round_trips() -> None:
    path = save_config(api_key='we"ird\\k\tey', base_url="http://a.test")
    save_config(api_key="other", profile="staging")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path == config_path()
    assert resolve_settings().api_key == 'we"ird\\k\tey'
    assert resolve_settings(profile="staging").api_key == "other"


def test_bad_config_file_is_a_clear_error_without_its_content() -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('[default]\napi_key = "sekrit-in-broken-file\n')
    with pytest.raises(ConfigurationError) as info:
        resolve_settings()
    assert "sekrit" not in str(info.value)


@pytest.mark.parametrize("bad", ["ftp://x", "localhost:8765", "", "http://"])
def test_bad_base_url(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        normalize_base_url(bad)


def test_base_url_trimming() -> None:
    assert normalize_base_url("http://h:1/v1/computing/") == "http://h:1"
    assert normalize_base_url(" https://h/ ") == "https://h"


def test_key_not_in_any_repr() -> None:
    c = Client(api_key="super-secret-key", base_url="http://h.test")
    for text in (repr(c), str(c), repr(c.settings), str(c.settings), repr(c._transport.auth)):
        assert "super-secret-key" not in text


def test_keyring_is_used_and_its_failures_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    def broken(service: str, user: str) -> str:
        raise RuntimeError("No recommended backend was available")

    monkeypatch.setitem(sys.modules, "keyring", types.SimpleNamespace(get_password=broken))
    with pytest.raises(MissingCredentialsError):
        resolve_settings()
    store = {("bytenite-nb", "default"): "from-keyring"}
    monkeypatch.setitem(
        sys.modules, "keyring", types.SimpleNamespace(get_password=lambda s, u: store.get((s, u)))
    )
    s = resolve_settings()
    assert s.api_key == "from-keyring" and "keyring" in s.api_key_source
    save_config(api_key="from-file")  # the file comes before the keyring
    assert resolve_settings().api_key == "from-file"


@settings(max_examples=40, deadline=None)
@given(arg=st.booleans(), env=st.booleans(), file=st.booleans(), local=st.booleans())
def test_first_source_in_the_documented_order_wins(
    tmp_path_factory: pytest.TempPathFactory, arg: bool, env: bool, file: bool, local: bool
) -> None:
    root = tmp_path_factory.mktemp("order")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BYTENITE_CONFIG_FILE", str(root / "config.toml"))
        mp.setenv("BYTENITE_LOCAL_DIR", str(root / "local"))
        mp.delenv("BYTENITE_BASE_URL", raising=False)
        mp.delenv("BYTENITE_API_KEY", raising=False)
        if env:
            mp.setenv("BYTENITE_API_KEY", "env")
        if file:
            save_config(api_key="file")
        if local:
            (root / "local").mkdir()
            (root / "local" / "server.json").write_text(
                json.dumps({"pid": os.getpid(), "url": DEFAULT_BASE_URL})
            )
            (root / "local" / "api_key").write_text("local")
        # The argument first, then the key that belongs to the chosen server (the running
        # ByteNite Local's own), then the keys that name no server (env, then file).
        expected = next(
            (k for k, on in (("arg", arg), ("local", local), ("env", env), ("file", file))
             if on),
            None,
        )
        if expected is None:
            with pytest.raises(MissingCredentialsError):
                resolve_settings()
        else:
            assert resolve_settings("arg" if arg else None).api_key == expected


def _running_local(root: Path, url: str, key: str) -> None:
    (root / "server.json").write_text(json.dumps({"pid": os.getpid(), "url": url}))
    (root / "api_key").write_text(key)


def test_a_key_travels_with_its_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Case 13: BYTENITE_API_KEY for a hosted account is not sent to a running ByteNite
    Local; a key the environment pairs with one server is not sent to another."""
    local = tmp_path / "local"
    local.mkdir()
    _running_local(local, "http://127.0.0.1:9999", "local-key")
    monkeypatch.setenv("BYTENITE_LOCAL_DIR", str(local))
    monkeypatch.setenv("BYTENITE_API_KEY", "hosted-key")
    s = resolve_settings()
    assert (s.base_url, s.api_key) == ("http://127.0.0.1:9999", "local-key")
    # Paired with its server, the environment's key goes to that server only.
    monkeypatch.setenv("BYTENITE_BASE_URL", "https://api.example.test")
    s = resolve_settings()
    assert (s.base_url, s.api_key) == ("https://api.example.test", "hosted-key")
    assert resolve_settings(base_url="http://127.0.0.1:9999").api_key == "local-key"
    with pytest.raises(MissingCredentialsError, match=r"keys for other servers were not sent"):
        resolve_settings(base_url="http://third.test")


def test_the_magics_server_and_key_win_over_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bytenite_nb.api import config

    monkeypatch.setenv("BYTENITE_API_KEY", "hosted-key")
    monkeypatch.setenv("BYTENITE_BASE_URL", "https://api.example.test")
    monkeypatch.setattr(config, "_SESSION_SERVER", lambda: ("http://127.0.0.1:8111", "nb-key"))
    s = resolve_settings()
    assert (s.base_url, s.api_key) == ("http://127.0.0.1:8111", "nb-key")
    assert "magics" in s.base_url_source and "magics" in s.api_key_source
    # Told otherwise, the arguments win.
    s = resolve_settings(base_url="https://api.example.test")
    assert (s.base_url, s.api_key) == ("https://api.example.test", "hosted-key")
    monkeypatch.setattr(config, "_SESSION_SERVER", lambda: None)  # the magics chose nothing
    assert resolve_settings().base_url == "https://api.example.test"
