"""ByteNite's Developer API (``/v1/dev``): push, list and activate apps, engines and templates.

This is what the ByteNite Dev CLI (``bytenite app push`` ...) did. A folder in the Dev CLI
layout (``manifest.json``, ``app/<entrypoint>``, optional ``template.json``/``schema.json``)
is sent as ``{"data": "<base64 of a tar of the folder>"}``. Reach it as ``client.dev``.

Servers that do not offer the Developer API answer 404, raised as
:class:`~bytenite_nb.api.errors.NotFoundError`.
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bytenite_nb import wire

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api._http import Transport

__all__ = ["DevAPI", "tar_folder"]

_D = wire.DEV_PREFIX
#: Never shipped with an app: VCS metadata, caches, local test fixtures' outputs.
_SKIP_DIRS = frozenset({".git", "__pycache__", ".ipynb_checkpoints", ".venv", "node_modules"})


def tar_folder(folder: str | Path) -> bytes:
    """A reproducible tar of ``folder``'s contents (paths relative to it, sorted, mtime 0).

    Raises ``FileNotFoundError`` if the folder or its ``manifest.json`` is missing.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    if not any((root / n).is_file() for n in ("manifest.json", "Manifest.json")):
        raise FileNotFoundError(f"{root} has no manifest.json (not a Dev CLI app/engine folder)")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if any(part in _SKIP_DIRS for part in rel.parts) or not path.is_file():
                continue
            info = tar.gettarinfo(str(path), arcname=rel.as_posix())
            # Same bytes for the same folder, so the server's content hash is stable.
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with path.open("rb") as fh:
                tar.addfile(info, fh)
    return buffer.getvalue()


def _items(body: Any, *keys: str) -> list[dict[str, Any]]:
    if isinstance(body, list):
        return body
    for key in (*keys, "data", "items"):
        value = body.get(key) if isinstance(body, dict) else None
        if isinstance(value, list):
            return value
    return []


def _type(engine_type: str | None) -> dict[str, str] | None:
    return {"type": engine_type} if engine_type else None


def _one(body: Any, key: str) -> dict[str, Any]:
    if isinstance(body, dict) and isinstance(body.get(key), dict):
        return body[key]
    return body if isinstance(body, dict) else {}


class DevAPI:
    """The Developer API on the same host and credentials as the client (``client.dev``).

    Answers are returned as the server's JSON records (dicts), unwrapped from
    ``{"app": ...}``/``{"apps": [...]}`` envelopes.
    """

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def __repr__(self) -> str:
        return f"<DevAPI {self._t.base_url}{_D}>"

    def info(self) -> dict[str, Any]:
        """``GET /v1/dev/info``."""
        return self._t.request("GET", f"{_D}/info")

    # apps and engines share one shape; ``kind`` is "apps" or "engines".

    def _push(self, kind: str, folder: str | Path) -> dict[str, Any]:
        data = base64.b64encode(tar_folder(folder)).decode("ascii")
        # Pushing the same folder twice overwrites the same (name, version): safe to repeat.
        body = self._t.request("POST", f"{_D}/{kind}", json={"data": data}, idempotent=True)
        return _one(body, kind[:-1])

    def _list(self, kind: str) -> list[dict[str, Any]]:
        return _items(self._t.request("GET", f"{_D}/{kind}"), kind)

    def _get(self, kind: str, tag: str, engine_type: str | None = None) -> dict[str, Any]:
        body = self._t.request(
            "GET", f"{_D}/{kind}/{quote(tag, safe='@.')}", params=_type(engine_type)
        )
        return _one(body, kind[:-1])

    def _action(
        self, kind: str, tag: str, action: str, engine_type: str | None = None
    ) -> dict[str, Any]:
        # Activating twice leaves the same state: safe to repeat after a lost answer.
        return self._t.request(
            "POST",
            f"{_D}/{kind}/{quote(tag, safe='@.')}/{action}",
            params=_type(engine_type),
            idempotent=True,
        )

    def push_app(self, folder: str | Path) -> dict[str, Any]:
        """``POST /v1/dev/apps``: upload an app folder (``bytenite app push``)."""
        return self._push("apps", folder)

    def apps(self) -> list[dict[str, Any]]:
        """``GET /v1/dev/apps``."""
        return self._list("apps")

    def app(self, tag: str) -> dict[str, Any]:
        """``GET /v1/dev/apps/{tag}`` (``name``, ``name@1``, ``name@1.2``)."""
        return self._get("apps", tag)

    def activate_app(self, tag: str) -> dict[str, Any]:
        """``POST /v1/dev/apps/{tag}/activate``: jobs may use it."""
        return self._action("apps", tag, "activate")

    def deactivate_app(self, tag: str) -> dict[str, Any]:
        """``POST /v1/dev/apps/{tag}/deactivate``."""
        return self._action("apps", tag, "deactivate")

    def app_status(self, tag: str) -> dict[str, Any]:
        """``GET /v1/dev/apps/{tag}/status``."""
        return self._t.request("GET", f"{_D}/apps/{quote(tag, safe='@.')}/status")

    def push_engine(self, folder: str | Path) -> dict[str, Any]:
        """``POST /v1/dev/engines``: upload a partitioner or assembler folder."""
        return self._push("engines", folder)

    def engines(self) -> list[dict[str, Any]]:
        """``GET /v1/dev/engines``."""
        return self._list("engines")

    # ``engine_type`` ("partitioner" | "assembler") picks one when a name is both.

    def engine(self, tag: str, engine_type: str | None = None) -> dict[str, Any]:
        """``GET /v1/dev/engines/{tag}``."""
        return self._get("engines", tag, engine_type)

    def activate_engine(self, tag: str, engine_type: str | None = None) -> dict[str, Any]:
        """``POST /v1/dev/engines/{tag}/activate``."""
        return self._action("engines", tag, "activate", engine_type)

    def deactivate_engine(self, tag: str, engine_type: str | None = None) -> dict[str, Any]:
        """``POST /v1/dev/engines/{tag}/deactivate``."""
        return self._action("engines", tag, "deactivate", engine_type)

    def engine_status(self, tag: str, engine_type: str | None = None) -> dict[str, Any]:
        """``GET /v1/dev/engines/{tag}/status``."""
        return self._t.request(
            "GET", f"{_D}/engines/{quote(tag, safe='@.')}/status", params=_type(engine_type)
        )

    def push_template(self, template: str | Path | dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/dev/templates``: a ``template.json`` path, or the template as a dict."""
        if isinstance(template, dict):
            body = template
        else:
            path = Path(template).expanduser()
            if path.is_dir():
                path = path / "template.json"
            body = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(body, dict) or not body.get("id"):
            raise ValueError("a job template needs an 'id' (e.g. 'my-app-template')")
        return _one(
            self._t.request("POST", f"{_D}/templates", json=body, idempotent=True), "template"
        )

    def templates(self) -> list[dict[str, Any]]:
        """``GET /v1/dev/templates``."""
        return _items(self._t.request("GET", f"{_D}/templates"), "templates")

    def template(self, template_id: str) -> dict[str, Any]:
        """``GET /v1/dev/templates/{id}``."""
        return _one(
            self._t.request("GET", f"{_D}/templates/{quote(template_id, safe='')}"), "template"
        )
