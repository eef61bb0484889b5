"""LoginWidget: type an API key into a Password field; it is cleared from widget state at once.

ipywidgets syncs a ``Password`` value in plain text, and a saved notebook may keep widget
state, key included. So the key lives in the widget only between the click and the
``Client`` being built: the field is emptied (front end and kernel) before anything else
happens, whether or not the key works. Nothing shown by this widget contains the key.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as w

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api.client import Client


class LoginWidget(w.VBox):
    """API key + base URL form; ``widget.client`` is the connected client after Log in.

    ``on_login(callback)`` registers ``callback(client)``. The key is checked by asking the
    server for an access token, so a wrong key says so immediately.
    """

    def __init__(self, base_url: str | None = None) -> None:
        self.client: Client | None = None
        self._callbacks: list[Callable[[Client], None]] = []
        self.base_url = w.Text(value=base_url or "", description="Base URL",
                               placeholder="default: environment / config / ByteNite Local",
                               layout=w.Layout(width="520px"))
        self.api_key = w.Password(value="", description="API key", placeholder="paste your key",
                                  layout=w.Layout(width="520px"))
        self.button = w.Button(description="Log in", button_style="primary", icon="sign-in")
        self.status = w.HTML("")
        super().__init__([w.HTML("<b>ByteNite login</b>"), self.base_url, self.api_key,
                          self.button, self.status])
        self.button.on_click(lambda _b: self.login())

    def on_login(self, callback: Callable[[Client], None]) -> None:
        """Call ``callback(client)`` after a successful login."""
        self._callbacks.append(callback)

    def login(self) -> Client | None:
        """Read and clear the key, connect, verify; returns the client or ``None``."""
        key = self.api_key.value
        # Clear first: the key must not survive in widget state, even if connecting fails.
        self.api_key.value = ""
        if not key.strip():
            self.status.value = _err("enter an API key")
            return None
        from bytenite_nb.api.client import Client

        try:
            client = Client(api_key=key.strip(), base_url=self.base_url.value.strip() or None)
            client.access_token()  # proves the key works
        except Exception as exc:
            self.status.value = _err(f"login failed: {_redact(str(exc), key)}")
            return None
        finally:
            del key
        self.client = client
        self.status.value = (f'<span style="color:#2da44e">connected to '
                             f"{html.escape(client.base_url)}</span>")
        for callback in self._callbacks:
            callback(client)
        return client

    def __repr__(self) -> str:
        state = f"connected to {self.client.base_url}" if self.client else "not logged in"
        return f"LoginWidget({state})"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data = super()._repr_mimebundle_(**kwargs)
        if isinstance(data, dict):
            data["text/plain"] = repr(self)
            data["text/html"] = f"<div class=\"bn-static\">{html.escape(repr(self))}</div>"
        return data


def _err(text: str) -> str:
    return f'<span style="color:#cf222e">{html.escape(text)}</span>'


def _redact(text: str, secret: str) -> str:
    secret = secret.strip()
    return text.replace(secret, "***") if secret else text
