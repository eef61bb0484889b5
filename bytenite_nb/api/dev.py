"""ByteNite's Developer API (``/v1/dev``): push, list and activate apps, engines and templates.

This is what the ByteNite Dev CLI (``bytenite app push`` ...) did. A folder in the Dev CLI
layout (``manifest.json``, ``app/<entrypoint>``, optional ``template.json``/``schema.json``)
is sent as ``{"data": "<base64 of a tar of the folder>"}`` and downloaded the same way
(``download_app``). Files for ``USER_CACHE_DIR`` (model weights, lookup tables) are uploaded
with ``upload_to_cache``. Reach it as ``client.dev``.

Servers that do not offer the Developer API answer 404, raised as
:class:`~bytenite_nb.api.errors.NotFoundError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bytenite_nb import wire
from bytenite_nb.api.errors import APIResponseError
from bytenite_nb.api.uploads import UploadSource, open_upload

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api._http import Transport

__all__ = ["DevAPI", "tar_folder"]

_D = wire.DEV_PREFIX
#: Packs a folder as ``POST /v1/dev/apps`` takes it (shared with the server, which packs
#: downloads the same way): contents relative to the folder, sorted, mtime 0.
tar_folder = wire.tar_folder


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

    def download_app(self, tag: str, folder: str | Path, *, overwrite: bool = False) -> Path:
        """``GET /v1/dev/apps/{tag}/download`` (``bytenite app pull``): unpack the app's
        folder into ``folder`` (created if needed) and return it.

        ``folder`` must be empty or new unless ``overwrite`` (then the downloaded files
        replace those of the same name; others are left). Archive entries that would land
        outside ``folder`` (absolute paths, ``..``), links, devices and fifos are refused
        before anything is written (`APIResponseError`).
        """
        return self._download("apps", tag, folder, overwrite=overwrite)

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

    def download_engine(
        self,
        tag: str,
        folder: str | Path,
        engine_type: str | None = None,
        *,
        overwrite: bool = False,
    ) -> Path:
        """``GET /v1/dev/engines/{tag}/download``: as :meth:`download_app`, for a
        partitioner or assembler."""
        return self._download("engines", tag, folder, engine_type, overwrite=overwrite)

    def _download(
        self,
        kind: str,
        tag: str,
        folder: str | Path,
        engine_type: str | None = None,
        *,
        overwrite: bool,
    ) -> Path:
        target = Path(folder).expanduser()
        if target.exists() and not target.is_dir():
            raise NotADirectoryError(f"{target} is a file: give a folder to unpack {tag} into")
        if not overwrite and target.is_dir() and any(target.iterdir()):
            raise FileExistsError(
                f"{target} is not empty: unpack {tag} into a new or empty folder, or pass "
                "overwrite=True to replace the files it downloads"
            )
        path = f"{_D}/{kind}/{quote(tag, safe='@.')}/download"
        body = self._t.request("GET", path, params=_type(engine_type))
        data = body.get("data") or body.get("engineData") if isinstance(body, dict) else None

        def bad(reason: str) -> APIResponseError:
            return APIResponseError(f"the download of {tag} {reason}", method="GET", url=path)

        if not isinstance(data, str) or not data:
            raise bad('has no "data" (the base64 of the folder\'s tar)')
        try:
            archive = base64.b64decode("".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            raise bad('is not valid base64 in "data"') from None
        digest = body.get("hash")
        if isinstance(digest, str) and digest and hashlib.sha256(archive).hexdigest() != digest:
            raise bad("does not match its hash (damaged on the way): download it again")
        try:
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
                members = tar.getmembers()
                for member in members:
                    problem = wire.tar_member_problem(member)
                    if problem:
                        raise bad(f"is unsafe to unpack: {problem}")
                target.mkdir(parents=True, exist_ok=True)
                # The "data" filter re-checks every entry and drops modes such as setuid.
                tar.extractall(target, members=members, filter="data")
        except (tarfile.TarError, EOFError) as exc:
            raise bad(f"is not a readable tar: {exc}") from None
        return target

    # -- USER_CACHE_DIR and SHARED_CACHE_DIR ------------------------------------------------
    #
    # ``shared=True`` (a ByteNite Local extension) works on SHARED_CACHE_DIR, which jobs read
    # but cannot write, instead of USER_CACHE_DIR.

    def cache_upload_url(self, path: str, *, shared: bool = False) -> dict[str, Any]:
        """``GET /v1/dev/cache/upload-url``: where to PUT a file for
        ``USER_CACHE_DIR/<path>`` (``{"url", "method", "path", "expiresAt"}``)."""
        params: dict[str, Any] = {"path": path}
        if shared:
            params["shared"] = "true"
        return self._t.request("GET", f"{_D}/cache/upload-url", params=params)

    def upload_to_cache(self, source: UploadSource, path: str, *, shared: bool = False) -> str:
        """Store ``source`` (a file path, bytes or a binary file object; files are streamed,
        never read whole) as ``USER_CACHE_DIR/<path>`` (``shared=True``:
        ``SHARED_CACHE_DIR/<path>``) for the jobs started afterwards, replacing what was
        there. Returns the stored path.

        ``path`` is relative and ``/``-separated (``"models/w.bin"``); a path the server
        refuses raises :class:`~bytenite_nb.api.errors.BadRequestError` naming the fix.
        """
        body, _name, size, close_after = open_upload(source)
        try:
            target = self.cache_upload_url(path, shared=shared)
            url = target.get("url") if isinstance(target, dict) else None
            if not isinstance(url, str) or not url:
                raise APIResponseError(
                    "the cache upload URL answer has no url",
                    method="GET",
                    url=f"{_D}/cache/upload-url",
                )
            headers = {"Content-Type": "application/octet-stream"}
            if size is not None:
                headers["Content-Length"] = str(size)
            # Pre-signed: no Authorization header. A PUT replaces the file, so a retry is
            # harmless (urllib3 rewinds a file body first).
            response = self._t.send(
                str(target.get("method") or "PUT"),
                url,
                data=body,
                headers=headers,
                authenticate=False,
                read_timeout=max(self._t.timeout, 300.0),
            )
        finally:
            if close_after:
                body.close()
        with response:
            try:
                stored = response.json().get("path") if response.content else None
            except (ValueError, AttributeError):
                stored = None
        return str(stored or target.get("path") or path)

    def cache_files(self, *, shared: bool = False) -> list[dict[str, Any]]:
        """``GET /v1/dev/cache`` (a ByteNite Local extension): every file in
        ``USER_CACHE_DIR`` (or ``SHARED_CACHE_DIR``) as ``{"path", "size", "modifiedAt"}``."""
        params = {"shared": "true"} if shared else None
        return _items(self._t.request("GET", f"{_D}/cache", params=params), "files")

    def delete_from_cache(self, path: str, *, shared: bool = False) -> dict[str, Any]:
        """``DELETE /v1/dev/cache/{path}`` (a ByteNite Local extension): delete a file of
        ``USER_CACHE_DIR`` (or ``SHARED_CACHE_DIR``; a folder goes with everything in it)."""
        # '.' and '..' segments percent-encoded: sent as given (URL libraries would resolve
        # them), so the server refuses them by name. Deleting twice: the second is a 404.
        segments = [
            quote(s, safe="") if s not in (".", "..") else s.replace(".", "%2E")
            for s in path.split("/")
        ]
        params = {"shared": "true"} if shared else None
        return self._t.request("DELETE", f"{_D}/cache/{'/'.join(segments)}", params=params)

    # -- app environments (ByteNite Local extension) ---------------------------------------

    def environments(self) -> list[dict[str, Any]]:
        """``GET /v1/dev/environments``: the app environments ByteNite Local built, as
        ``{"name", "python", "requirements", "source", "installer", "createdAt",
        "lastUsedAt", "size", "complete", "inUse", "usedBy"}`` (``size`` in bytes, an int64
        string; ``usedBy``: the tags of the apps and engines whose requirements it holds)."""
        return _items(self._t.request("GET", f"{_D}/environments"), "environments")

    def remove_environment(self, name: str) -> dict[str, Any]:
        """``DELETE /v1/dev/environments/{name}``: delete one (rebuilt when a job needs it)."""
        return self._t.request("DELETE", f"{_D}/environments/{quote(name, safe='')}")

    def remove_unused_environments(self) -> dict[str, Any]:
        """``DELETE /v1/dev/environments?unused=true``: delete every environment no app or
        engine uses; answers ``{"removed": [names], "freed": bytes}`` with the message."""
        return self._t.request("DELETE", f"{_D}/environments", params={"unused": "true"})

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
