"""CopyButton: a button that puts text on the clipboard, from the browser.

Clipboard writes are only allowed in the browser, during the click itself, so the text lives
in a synced trait the kernel keeps current and ``js/copy.js`` copies it on click. When the
browser refuses (pages served over plain HTTP have no clipboard API, or permission is
denied) the view shows the text selected in a box, with how to copy it by hand. Each attempt
is reported back: ``last_copy`` is ``"copied"`` or ``"refused: <reason>"``.
"""

from __future__ import annotations

from typing import Any

import anywidget
import traitlets as t

from bytenite_nb.notebook.widgets._assets import css_source, esm_source

__all__ = ["CopyButton"]


class CopyButton(anywidget.AnyWidget):
    """A "copy this text" button; ``text`` is what a click copies."""

    _esm = esm_source("copy.js")
    _css = css_source()

    text = t.Unicode("").tag(sync=True)
    label = t.Unicode("Copy").tag(sync=True)
    #: What the browser did with the last click: "", "copied" or "refused: <reason>".
    last_copy = t.Unicode("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_msg(self._on_front_end_msg)

    def _on_front_end_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "copy":
            self.last_copy = "copied" if content.get("ok") else \
                f"refused: {content.get('reason') or 'unknown'}"

    def __repr__(self) -> str:
        return f"CopyButton({self.label!r}, {len(self.text)} characters)"
