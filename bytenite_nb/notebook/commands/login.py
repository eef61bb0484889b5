"""``%bytenite login [--store config|keyring|session]``: the API key from a hidden prompt.

The key is never a magic argument (the line would be saved in the notebook, its history and
exports; the parser refuses it). It is read with ``getpass`` (in Jupyter: a password field
that is not saved), checked against the server when it is reachable, then kept:

``config``   (default) ``api_key`` in the client's config file, written 0600;
``keyring``  the OS keyring (service ``bytenite-nb``), when ``keyring`` is installed;
``session``  in memory, for this kernel only.

Whatever the store, this session uses the key at once for the current server.
"""

from __future__ import annotations

import getpass
import os
from typing import TYPE_CHECKING

from IPython.core.error import StdinNotImplementedError, UsageError

from bytenite_nb.notebook.commands.errors import friendly_error

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.notebook.commands.context import Context

__all__ = ["login"]


def _verify(ctx: Context, base_url: str, key: str) -> str:
    """Exchange the key for a token; returns a note. Raises UsageError if it is rejected."""
    from bytenite_nb.api import errors
    from bytenite_nb.api.client import verify_api_key

    try:
        answered = verify_api_key(key, base_url)
    except errors.AuthenticationError as exc:
        raise friendly_error(exc, base_url=base_url, secrets=(key,),
                             note="nothing was stored") from None
    if not answered:
        return f" (not checked: {base_url} did not answer)"
    return f" (accepted by {base_url})"


def _store_keyring(key: str) -> str:
    from bytenite_nb.api.config import save_keyring_key
    from bytenite_nb.api.errors import ConfigurationError

    try:
        return save_keyring_key(key)
    except ConfigurationError as exc:
        raise UsageError(f"%bytenite login --store keyring: {exc} (--store config)") from None


def login(ctx: Context) -> None:
    """Prompt for the key (hidden), verify it, store it, and use it in this session."""
    from bytenite_nb.api.config import API_KEY_ENV, resolve_base_url, save_config

    store = ctx.command.options.get("store") or ctx.magics.credential_store
    url = ctx.base_url() or resolve_base_url()
    try:
        key = getpass.getpass(f"ByteNite API key for {url} (input hidden): ").strip()
    except StdinNotImplementedError:
        raise UsageError(
            "%bytenite login: this frontend cannot prompt for input (e.g. nbconvert or "
            f"papermill); set {API_KEY_ENV} in the kernel's environment instead"
        ) from None
    if not key:
        raise UsageError("%bytenite login: no key entered; nothing changed")
    checked = _verify(ctx, url, key)
    if store == "config":
        where = f"in {save_config(api_key=key)} (mode 0600)"
    elif store == "keyring":
        where = _store_keyring(key)
    else:
        where = "for this session only"
    ctx.magics.connection.remember_key(url, key)
    print(f"API key stored {where}{checked}; this session now uses it for {url}.")
    if store != "session" and os.environ.get(API_KEY_ENV, "").strip():
        print(f"Note: {API_KEY_ENV} is set in the environment and takes precedence over the "
              "stored key in new sessions.")
