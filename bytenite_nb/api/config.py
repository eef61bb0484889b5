"""Where the client's API key and base URL come from: one function, one fixed order.

A key belongs to a server, so the two are resolved together: first the server, then the key
meant for it.

Base URL, first match wins:

1. the ``base_url`` argument;
2. the server the notebook's ``%bytenite`` magics use, in a kernel where they chose one
   (``%bytenite local``, ``%config ByteniteMagics.base_url``): a ``Client()`` or widget made
   there talks to the same server as the magics, with the same key;
3. ``BYTENITE_BASE_URL``;
4. ``base_url`` in the ``[default]`` table of ``config.toml`` in
   ``platformdirs.user_config_dir("bytenite-nb")`` (or the file ``BYTENITE_CONFIG_FILE`` names);
5. a running ByteNite Local you started (its ``server.json``);
6. :data:`DEFAULT_BASE_URL`.

API key, first match wins:

1. the ``api_key`` argument;
2. a key that belongs to that server: the magics' key for their server; ``BYTENITE_API_KEY``
   when ``BYTENITE_BASE_URL`` names that server; the config file's ``api_key`` when its
   ``base_url`` names it; the key file of the ByteNite Local serving it
   (``<data dir>/api_key`` next to its ``server.json``);
3. a key that names no server: ``BYTENITE_API_KEY`` without ``BYTENITE_BASE_URL``, the config
   file's ``api_key`` without a ``base_url``, the OS keyring (service ``bytenite-nb``, user =
   profile, if ``keyring`` is installed).

So ``BYTENITE_API_KEY`` set for a hosted account is never sent to the ByteNite Local that
``%bytenite local`` started (that server's own key is), and a key the environment pairs with
one server is not sent to another. A base URL is the host root; a trailing ``/v1/customer``
(or ``/v1/computing``) is trimmed.

The key is held in :class:`Settings`, whose repr masks it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bytenite_nb import wire
from bytenite_nb.api.errors import ConfigurationError, MissingCredentialsError

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "CONFIG_FILE_ENV",
    "DEFAULT_BASE_URL",
    "LOCAL_DIR_ENV",
    "SessionServer",
    "Settings",
    "config_path",
    "normalize_base_url",
    "resolve_base_url",
    "resolve_settings",
    "save_config",
    "save_keyring_key",
    "set_session_server",
]

API_KEY_ENV = "BYTENITE_API_KEY"
BASE_URL_ENV = "BYTENITE_BASE_URL"
CONFIG_FILE_ENV = "BYTENITE_CONFIG_FILE"
#: Data dir of the ByteNite Local to discover (default: the server's own default data dir).
LOCAL_DIR_ENV = "BYTENITE_LOCAL_DIR"
KEYRING_SERVICE = "bytenite-nb"
#: ByteNite Local's default address (``bytenite-nb serve``).
DEFAULT_BASE_URL = "http://127.0.0.1:8765"
DEFAULT_PROFILE = "default"


@dataclass(frozen=True)
class Settings:
    """Resolved connection settings. ``api_key`` never shows in ``repr``."""

    api_key: str = field(repr=False)
    base_url: str
    #: Where the key came from (e.g. ``"environment variable BYTENITE_API_KEY"``).
    api_key_source: str = ""
    base_url_source: str = ""

    def __repr__(self) -> str:
        return (
            f"Settings(base_url={self.base_url!r}, api_key=<hidden, from "
            f"{self.api_key_source or 'argument'}>)"
        )

    def with_options(self, **changes: Any) -> Settings:
        """A copy with some fields replaced."""
        return replace(self, **changes)


def normalize_base_url(url: str) -> str:
    """Validate ``url`` and reduce it to the host root (no trailing slash, no API prefix)."""
    text = url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"base URL must be an http(s) URL such as {DEFAULT_BASE_URL}, got {url!r}"
        )
    for prefix in (wire.CUSTOMER_PREFIX, wire.COMPUTING_PREFIX):
        if text.endswith(prefix):
            text = text[: -len(prefix)]
    return text.rstrip("/")


def config_path() -> Path:
    """The config file: ``$BYTENITE_CONFIG_FILE`` or ``<user config dir>/config.toml``."""
    override = os.environ.get(CONFIG_FILE_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("bytenite-nb")) / "config.toml"


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - only on 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError as exc:
            raise ConfigurationError(
                f"reading {path} needs Python 3.11+ or the 'tomli' package"
            ) from exc
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, ValueError) as exc:
        # ValueError covers TOMLDecodeError; its text quotes the offending line, which could
        # hold a key, so only the position-free class name is reported.
        raise ConfigurationError(f"cannot read config file {path}: {type(exc).__name__}") from None


def _keyring_key(profile: str) -> str | None:
    try:
        import keyring
    except ImportError:  # optional dependency
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, profile) or None
    except Exception:  # any backend failure (e.g. NoKeyringError on headless Linux): no key
        return None


def save_keyring_key(api_key: str, profile: str = DEFAULT_PROFILE) -> str:
    """Store ``api_key`` in the OS keyring (service ``bytenite-nb``, user = profile); returns
    where, for a message. Raises :class:`ConfigurationError` naming the fix when ``keyring``
    is not installed or its backend refuses (e.g. no keyring on a headless Linux box)."""
    try:
        import keyring
    except ImportError:
        raise ConfigurationError(
            "the 'keyring' package is not installed (pip install 'bytenite-nb[keyring]'); "
            "store the key in the config file instead"
        ) from None
    try:
        keyring.set_password(KEYRING_SERVICE, profile, api_key)
    except Exception as exc:  # any backend failure, e.g. NoKeyringError
        raise ConfigurationError(
            f"the keyring refused it ({type(exc).__name__}); store the key in the config "
            "file (a 0600 file) instead"
        ) from None
    return f"in the OS keyring (service {KEYRING_SERVICE!r})"


def _local_dir() -> Path:
    override = os.environ.get(LOCAL_DIR_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    # Same default as ByteNite Local's ServerConfig.default_data_dir (read, not imported: the
    # client never imports the server).
    return Path(platformdirs.user_data_dir("bytenite-nb")) / "local"


def _running_local() -> tuple[str, str | None] | None:
    """(url, api key or None) of a ByteNite Local whose ``server.json`` says it is running."""
    data_dir = _local_dir()
    try:
        info = json.loads((data_dir / "server.json").read_text())
    except (OSError, ValueError):
        return None
    url = info.get("url") if isinstance(info, dict) else None
    pid = info.get("pid") if isinstance(info, dict) else None
    if not isinstance(url, str):
        return None
    if isinstance(pid, int) and not _pid_alive(pid):
        return None
    key = None
    with contextlib.suppress(OSError):
        key = (data_dir / "api_key").read_text().strip().splitlines()[0] or None
    return url, key


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours (EPERM), or a platform without signals
        return True
    return True


#: ``() -> (base URL, its key or None) | None``: the server the notebook's magics use now.
SessionServer = Callable[[], "tuple[str, str | None] | None"]
_SESSION_SERVER: SessionServer | None = None


def set_session_server(provider: SessionServer | None) -> None:
    """Let :func:`resolve_settings` ask ``provider`` which server (and key) the notebook's
    magics use; ``None`` forgets it. The notebook extension sets it; the client never
    imports the notebook layer."""
    global _SESSION_SERVER
    _SESSION_SERVER = provider


def _session_server() -> tuple[str, str | None] | None:
    provider = _SESSION_SERVER
    if provider is None:
        return None
    try:
        found = provider()
    except Exception:  # a broken provider must not break every Client()
        return None
    if not found or not found[0]:
        return None
    return found[0], (found[1] or None)


def resolve_settings(
    api_key: str | None = None, base_url: str | None = None, *, profile: str = DEFAULT_PROFILE
) -> Settings:
    """Resolve the base URL, then the API key meant for it, in the documented order (see the
    module docstring).

    Raises :class:`MissingCredentialsError` naming every place it looked when no key is found
    for that server, :class:`ConfigurationError` for an invalid URL or unreadable config file.
    """
    path = config_path()
    file_cfg: dict[str, Any] | None = None

    def file_value(name: str) -> str | None:
        nonlocal file_cfg
        if file_cfg is None:
            table = _read_config(path).get(profile, {})
            file_cfg = table if isinstance(table, dict) else {}
        value = file_cfg.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    local: tuple[str, str | None] | bool | None = False  # False: not looked up yet

    def running_local() -> tuple[str, str | None] | None:
        nonlocal local
        if local is False:
            local = _running_local()
        return local  # type: ignore[return-value]

    session = _session_server() if not base_url else None
    env_url = os.environ.get(BASE_URL_ENV, "").strip() or None
    env_key = os.environ.get(API_KEY_ENV, "").strip() or None
    url_source = ""
    url = base_url
    if url:
        url_source = "argument"
    elif session:
        url, url_source = session[0], "the server the %bytenite magics use"
    elif env_url:
        url, url_source = env_url, f"environment variable {BASE_URL_ENV}"
    elif file_value("base_url"):
        url, url_source = file_value("base_url"), f"config file {path}"
    elif running_local():
        url, url_source = running_local()[0], "running ByteNite Local"  # type: ignore[index]
    else:
        url, url_source = DEFAULT_BASE_URL, "default"
    assert url is not None
    url = normalize_base_url(url)

    def same(server: str | None) -> bool:
        try:
            return server is not None and normalize_base_url(server) == url
        except ConfigurationError:
            return False

    # (key, where it came from, the server it belongs to or None) in the documented order.
    candidates: list[tuple[str | None, str, str | bool | None]] = [
        (api_key, "argument", True),
    ]
    if session:
        candidates.append((session[1], "the %bytenite magics' key for their server",
                           session[0]))
    candidates.append((env_key, f"environment variable {API_KEY_ENV}", env_url))
    candidates.append((file_value("api_key"), f"config file {path}", file_value("base_url")))
    found_local = running_local()
    if found_local and found_local[1]:
        candidates.append((found_local[1], f"ByteNite Local data dir {_local_dir()}",
                           found_local[0]))
    key, key_source = None, ""
    for bound in (True, False):
        for value, source, server in candidates:
            if not value:
                continue
            if server is True or (bound and same(server)) or (not bound and server is None):
                key, key_source = value, source
                break
        if key:
            break
    if not key:
        key = _keyring_key(profile)
        key_source = f"keyring service {KEYRING_SERVICE!r}"
    if not key:
        elsewhere = [f"{source} (it is for {server})" for value, source, server in candidates
                     if value and isinstance(server, str) and not same(server)]
        places = [
            "the api_key argument: Client(api_key=...)",
            f"the {API_KEY_ENV} environment variable",
            f'api_key = "..." under [{profile}] in {path}'
            " (write it with bytenite_nb.api.config.save_config)",
            f"the OS keyring, service {KEYRING_SERVICE!r}, user {profile!r}"
            " (needs the 'keyring' package)",
            f"a running ByteNite Local at {url} (its key file {_local_dir() / 'api_key'})",
        ]
        if elsewhere:
            places.append(f"keys for other servers were not sent to {url}: "
                          + "; ".join(elsewhere))
        raise MissingCredentialsError(places, base_url=url, elsewhere=elsewhere)
    return Settings(
        api_key=key, base_url=url, api_key_source=key_source, base_url_source=url_source
    )


def resolve_base_url(base_url: str | None = None, *, profile: str = DEFAULT_PROFILE) -> str:
    """The base URL alone, in the order :func:`resolve_settings` uses (no key needed: e.g.
    to say which server a key being typed is for)."""
    # A stand-in key stops the key search before it reads the keyring or the local key file.
    return resolve_settings(api_key="not-needed", base_url=base_url, profile=profile).base_url


def _toml_string(value: str) -> str:
    # JSON string escapes (\" \\ \n \uXXXX) are valid TOML basic-string escapes.
    return json.dumps(value, ensure_ascii=True)


def save_config(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    profile: str = DEFAULT_PROFILE,
    path: Path | None = None,
) -> Path:
    """Write ``api_key`` / ``base_url`` under ``[profile]`` in the config file (mode 0600).

    Other profiles and keys already in the file are kept (string values only).
    """
    target = path or config_path()
    data = _read_config(target)
    table = dict(data.get(profile, {})) if isinstance(data.get(profile), dict) else {}
    if api_key is not None:
        table["api_key"] = api_key
    if base_url is not None:
        table["base_url"] = normalize_base_url(base_url)
    data[profile] = table
    lines: list[str] = []
    for name, section in data.items():
        if not isinstance(section, dict):
            continue
        lines.append(f"[{_toml_string(name) if not name.isidentifier() else name}]")
        for key, value in section.items():
            if isinstance(value, str):
                lines.append(f"{key} = {_toml_string(value)}")
        lines.append("")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Create with 0600 from the start, so the key is never world-readable, even briefly.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    os.chmod(target, 0o600)
    return target
