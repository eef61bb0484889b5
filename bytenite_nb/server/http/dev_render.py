"""The Developer API's records: apps and engines (``App``/``Engine``), job templates, the
engine status message, folder downloads, and sorted, paged lists of them.

Shapes follow ByteNite's developer SDK: ``App`` records carry ``deviceRequirements``,
``platformConfig`` (registry credentials left out) and timestamps; an ``Engine`` adds
``type`` and ``deletedAt``.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from bytenite_nb import wire
from bytenite_nb.server.execution.registry import Engine, Template
from bytenite_nb.server.execution.resources import manifest_value
from bytenite_nb.server.service.developer import engine_id
from bytenite_nb.server.storage.listing import query

#: Fields the app and engine lists can be ordered on.
LIST_FIELDS: dict[str, str] = {
    "id": "str", "name": "str", "version": "str", "status": "str", "type": "str",
    "owner": "str", "createdAt": "time", "updatedAt": "time",
}
#: Fields the template list can be ordered on.
TEMPLATE_FIELDS = {**query.TEMPLATE_FIELDS, "updatedAt": "time"}


def _platform_config(manifest: dict[str, Any]) -> dict[str, Any]:
    raw = manifest_value(manifest, "platformconfig") or {}
    if not isinstance(raw, dict):
        return {}
    # Registry credentials never leave the server (ByteNite's records omit them too).
    return {wire.to_camel(str(k)): v for k, v in raw.items()
            if str(k).lower().replace("_", "") not in ("token", "password", "username")}


def _device_requirements(manifest: dict[str, Any]) -> dict[str, Any]:
    raw = manifest_value(manifest, "devicerequirements") or {}
    if not isinstance(raw, dict):
        return {"minCpu": 0, "minMemory": 0}
    out = {wire.to_camel(str(k)): v for k, v in raw.items()}
    out.setdefault("minCpu", 0)
    out.setdefault("minMemory", 0)
    return out


def engine_record(engine: Engine) -> dict[str, Any]:
    """The Developer API's App record; engines add ``type`` and ``deletedAt``."""
    keys = {str(k).lower(): v for k, v in engine.manifest.items()}
    record: dict[str, Any] = {
        "id": engine_id(engine),
        "name": engine.name,
        "version": engine.version,
        "owner": engine.owner,
        "status": engine.status,
        "deviceRequirements": _device_requirements(engine.manifest),
        "createdAt": wire.format_timestamp(engine.created_at),
        "updatedAt": wire.format_timestamp(engine.updated_at or engine.created_at),
        "platform": str(keys.get("platform") or ("builtin" if engine.builtin else "docker")),
        "hash": engine.hash,
        "link": "",
        "platformConfig": _platform_config(engine.manifest),
        "entrypoint": engine.entrypoint,
        "revision": "1",
        "description": engine.description,
    }
    if engine.kind != "app":
        record["type"] = engine.kind
        record["deletedAt"] = None
    return record


def engine_message(engine: Engine) -> dict[str, Any]:
    """``DeveloperEngineMessage``: what engine activate/deactivate/status answer."""
    return {"engineId": engine_id(engine), "engineTag": engine.tag, "engineData": "",
            "engineLink": "", "engineStatus": engine.status}


def template_record(template: Template) -> dict[str, Any]:
    """A job template as the Developer API lists it (``JobTemplate`` plus its defaults)."""
    out = dict(template.to_wire())
    out["updatedAt"] = wire.format_timestamp(template.updated_at or template.created_at)
    out["isPublic"] = False
    out["userName"] = template.owner
    return out


def download(engine: Engine, archive: bytes) -> dict[str, Any]:
    """A folder download: ``data`` (base64 of the tar ``POST /apps`` takes), tag and hash."""
    return {"data": base64.b64encode(archive).decode("ascii"), "tag": engine.tag,
            "hash": hashlib.sha256(archive).hexdigest()}


def page(records: list[dict[str, Any]], fields: dict[str, str], order_by: str | None,
         limit: int | None, offset: int | None) -> list[dict[str, Any]]:
    """One page of ``records`` in ``order_by`` order (oldest first by default)."""
    keys = query.parse_order(order_by, fields, [("createdAt", False)])
    return query.paginate(query.sort_records(records, keys, fields), limit, offset).items
