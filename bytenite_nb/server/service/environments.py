"""The app environments as the Developer API shows them: which apps and engines use each,
and removing them (one, or every one no app or engine uses)."""

from __future__ import annotations

import contextlib
from typing import Any

from bytenite_nb import wire
from bytenite_nb.server.errors import Conflict, NotFound
from bytenite_nb.server.execution.environments import (
    EnvironmentInUse,
    Environments,
    RequirementsError,
    find_requirements,
)
from bytenite_nb.server.execution.registry import Registry

__all__ = ["environment_users", "list_environments", "remove_environment", "remove_unused"]


def environment_users(registry: Registry, envs: Environments) -> dict[str, list[str]]:
    """Environment name -> the tags (``app word-count@0.1``) of the apps and engines, active
    or not, whose requirement set it holds."""
    users: dict[str, list[str]] = {}
    for engine in registry.engines():
        if engine.builtin or engine.folder is None or engine.program is not None:
            continue
        with contextlib.suppress(RequirementsError, OSError):
            requirements = find_requirements(engine.folder, engine.entrypoint)
            if requirements is not None and requirements.lines:
                users.setdefault(envs.name_for(requirements), []).append(
                    f"{engine.kind} {engine.tag}")
    return users


def list_environments(registry: Registry, envs: Environments) -> list[dict[str, Any]]:
    """Every environment folder, by name, with ``usedBy`` and ``size`` (an int64 string)."""
    users = environment_users(registry, envs)
    out = []
    for name in envs.names():
        info = envs.describe(name)
        info["size"] = wire.int64_out(info["size"])
        info["usedBy"] = users.get(name, [])
        out.append(info)
    return out


def _forget(executor: Any, python: str) -> None:
    """Stop the warm fork servers of a removed environment's interpreter."""
    for candidate in (executor, getattr(executor, "engine_executor", None)):
        forget = getattr(candidate, "forget_interpreter", None)
        if forget is not None:
            forget(python)


def remove_environment(envs: Environments, name: str, executor: Any = None) -> int:
    """Delete environment ``name``; the bytes freed. `NotFound` / `Conflict` (in use or
    being built) naming it."""
    python = str(envs.python(name))
    try:
        freed = envs.remove(name)
    except KeyError:
        raise NotFound(f"No environment {name!r}: GET /v1/dev/environments lists them") from None
    except EnvironmentInUse as exc:
        raise Conflict(f"{exc}: remove it once the job has ended") from None
    _forget(executor, python)
    return freed


def remove_unused(registry: Registry, envs: Environments,
                  executor: Any = None) -> tuple[list[str], int]:
    """Delete every environment that no app or engine uses and no running job holds;
    ``(names removed, bytes freed)``."""
    users = environment_users(registry, envs)
    removed, freed = [], 0
    for name in envs.names():
        if name in users or envs.in_use(name):
            continue
        with contextlib.suppress(NotFound, Conflict):
            freed += remove_environment(envs, name, executor)
            removed.append(name)
    return removed, freed
