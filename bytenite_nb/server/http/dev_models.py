"""Response shapes of the Developer API subset (``routes/dev_*``), for the OpenAPI document
only.

As with `models`, answers are built as plain dicts; these models document them (and let the
conformance tests check them). Field names follow ByteNite's developer SDK (its published
OpenAPI models: ``App``, ``Engine``, ``DeveloperEngineMessage``).
"""

from __future__ import annotations

from typing import Any

from bytenite_nb.server.http.models import GenericResponse, Int64Out, JobTemplateOut, Out


class DeviceRequirementsOut(Out):
    """``commonDeviceRequirements``: vCPUs and GiB of RAM the manifest asks for."""

    minCpu: float | int
    minMemory: float | int


class AppOut(Out):
    """``byteniteappApp``: an app version as the Developer API lists it."""

    id: str
    name: str
    version: str
    owner: str
    status: str
    deviceRequirements: DeviceRequirementsOut
    createdAt: str | None = None
    updatedAt: str | None = None
    platform: str
    hash: str
    link: str
    platformConfig: dict[str, Any]
    entrypoint: str
    revision: str
    description: str


class EngineOut(AppOut):
    """An engine (partitioner or assembler): the app record plus ``type``."""

    type: str
    deletedAt: str | None = None


class AppsResponse(Out):
    apps: list[AppOut]


class AppResponse(Out):
    app: AppOut


class EnginesResponse(Out):
    engines: list[EngineOut]


class EngineMessage(Out):
    """``developerEngineMessage``: the answer of an engine's activate/deactivate/status."""

    engineId: str
    engineTag: str
    engineData: str
    engineLink: str
    engineStatus: str


class AppStatusResponse(GenericResponse):
    """A ``GenericResponse`` whose ``message`` is the status; ByteNite Local adds ``status``."""

    status: str


class DevTemplateOut(JobTemplateOut):
    """A job template as the Developer API lists it."""

    createdAt: str | None = None
    updatedAt: str | None = None
    isPublic: bool = False
    userName: str | None = None


class DevTemplatesResponse(Out):
    templates: list[DevTemplateOut]


class TemplatePushResponse(GenericResponse):
    """``GenericResponse`` plus the stored ``template`` (a ByteNite Local addition)."""

    template: DevTemplateOut


class DownloadResponse(Out):
    """``GET /apps/{tag}/download`` (and engines): the folder as ``POST /apps`` takes it.

    ByteNite documents the route, not its answer; ByteNite Local answers ``data`` (base64 of
    a tar of the folder's contents), the ``tag`` and the tar's SHA-256 ``hash``."""

    data: str
    tag: str
    hash: str


class CacheUploadUrl(Out):
    """``GET /cache/upload-url``: PUT the file's raw bytes to ``url`` before ``expiresAt``."""

    url: str
    method: str
    path: str
    expiresAt: str


class CacheFile(Out):
    """One file of the user cache (``USER_CACHE_DIR``)."""

    path: str
    size: Int64Out
    modifiedAt: str


class CacheFilesResponse(Out):
    """ByteNite Local extension: what ``USER_CACHE_DIR`` holds, by path."""

    files: list[CacheFile]


class EnvironmentOut(Out):
    """ByteNite Local extension: one app environment."""

    name: str
    python: str
    requirements: list[str]
    source: str
    installer: str
    createdAt: str | None = None
    lastUsedAt: str | None = None
    size: Int64Out
    complete: bool
    inUse: bool
    usedBy: list[str]


class EnvironmentsResponse(Out):
    """ByteNite Local extension: the app environments, by name."""

    environments: list[EnvironmentOut]


class EnvironmentsRemoved(GenericResponse):
    """ByteNite Local extension: what ``DELETE /environments?unused=true`` removed."""

    removed: list[str]
    freed: Int64Out


class CacheUploadResponse(Out):
    """ByteNite Local extension: what a PUT to a cache upload URL stored."""

    ok: bool
    path: str
    size: Int64Out
