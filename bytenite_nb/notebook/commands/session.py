"""Per-shell connection state: which server this notebook talks to, with which key.

The base URL comes from, first match wins: ``--base-url`` on the line, ``%config
ByteniteMagics.base_url`` (which ``%bytenite local`` sets), then the client's own resolution
(``BYTENITE_BASE_URL``, the config file, a running ByteNite Local, the default). When nothing
configured a URL and ``auto_local`` is on, ByteNite Local is started on first use.

Keys given in this session (``%bytenite local``, ``%bytenite login --store session``) are kept
in memory for the URL they belong to, never in a trait, so ``%config`` cannot print them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bytenite_nb.notebook.ledger import normalize_base_url

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api.client import Client

__all__ = ["Connection"]


@dataclass
class Connection:
    """Connection state of one IPython shell (held by its ``ByteniteMagics``)."""

    #: API keys entered in this session, by normalised base URL. Never displayed.
    session_keys: dict[str, str] = field(default_factory=dict, repr=False)
    #: The ByteNite Local this session started or re-used (``bytenite_nb.local.LocalServer``).
    local: Any = None
    #: Whether this session started ``local`` (only then does ``local stop`` stop it).
    local_owned: bool = False
    #: The ``%bytenite local`` options ``local`` was started with (port, workers, preload,
    #: idle_timeout), to start it again the same way after it stopped by itself.
    local_options: dict[str, Any] = field(default_factory=dict)
    #: The base_url trait value before ``%bytenite local`` replaced it (restored by stop).
    previous_base_url: str = ""
    _clients: dict[tuple[str, str], Client] = field(default_factory=dict, repr=False)

    def secrets(self) -> tuple[str, ...]:
        """Every key this session knows, for last-resort redaction of messages."""
        keys = list(self.session_keys.values())
        if self.local is not None and getattr(self.local, "api_key", None):
            keys.append(self.local.api_key)
        import os

        env_key = os.environ.get("BYTENITE_API_KEY", "").strip()
        if env_key:
            keys.append(env_key)
        return tuple(keys)

    def configured_base_url(self) -> str | None:
        """The base URL the client would find on its own, or ``None`` when only its default.

        Asks the client's resolver with a placeholder key argument, so key lookup stops at
        once (and no keyring is queried); the placeholder is never sent anywhere.
        """
        from bytenite_nb.api.config import resolve_settings

        settings = resolve_settings(api_key="unused-placeholder")
        return None if settings.base_url_source == "default" else settings.base_url

    def client(self, base_url: str | None) -> Client:
        """A (cached) client for ``base_url`` (``None``: the client's own resolution)."""
        from bytenite_nb.api.client import Client

        url = normalize_base_url(base_url) if base_url else ""
        key = self.session_keys.get(url) if url else None
        cache_key = (url, key or "")
        if cache_key not in self._clients:
            self._clients[cache_key] = Client(api_key=key, base_url=url or None)
        return self._clients[cache_key]

    def new_client(self, base_url: str | None) -> Client:
        """A fresh client with the same server and key as :meth:`client` (the caller's own:
        closing it leaves the session's cached one alone)."""
        from bytenite_nb.api.client import Client

        url = normalize_base_url(base_url) if base_url else ""
        return Client(api_key=self.session_keys.get(url) if url else None,
                      base_url=url or None)

    def remember_key(self, base_url: str, key: str) -> None:
        """Use ``key`` for ``base_url`` for the rest of this session."""
        url = normalize_base_url(base_url)
        self.session_keys[url] = key
        for cached in [k for k in self._clients if k[0] == url]:
            _close(self._clients.pop(cached))

    def forget_clients(self) -> None:
        """Drop cached clients (after a key or server change)."""
        for client in self._clients.values():
            _close(client)
        self._clients.clear()

    @staticmethod
    def local_data_dir(configured: str) -> Path | None:
        """The data dir for ByteNite Local: the trait (or ``--data-dir``) value, else
        ``BYTENITE_LOCAL_DIR`` (where the client looks for a running one), else ``None`` for
        ByteNite Local's default."""
        import os

        chosen = configured or os.environ.get("BYTENITE_LOCAL_DIR", "").strip()
        return Path(chosen).expanduser() if chosen else None


def _close(client: Any) -> None:
    close = getattr(client, "close", None)
    if callable(close):
        close()
