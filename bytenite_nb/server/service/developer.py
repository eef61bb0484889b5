"""Finding the app or engine a Developer API request names (``/v1/dev/apps/{appTag}`` ...).

A tag is ``name``, ``name@1`` or ``name@1.2`` (the newest matching version), or the id of a
pushed or bundled engine. Inactive versions are found too: the Developer API is where they
are activated.
"""

from __future__ import annotations

from bytenite_nb.server.errors import InvalidRequest, NotFound
from bytenite_nb.server.execution.registry import ENGINE_KINDS, Engine, Registry, RegistryError
from bytenite_nb.server.storage.dev_store import stable_id


def engine_kinds(engine_type: str | None) -> tuple[str, ...]:
    """The kinds an engine request may mean: both, or the one ``?type=`` names."""
    if engine_type is None:
        return ENGINE_KINDS
    if engine_type not in ENGINE_KINDS:
        raise InvalidRequest("type must be 'partitioner' or 'assembler'")
    return (engine_type,)


def engine_id(engine: Engine) -> str:
    """The engine's id: the one it was pushed with, else a stable one from its name."""
    return engine.id or stable_id(engine.kind, engine.name, engine.version)


def find_engine(registry: Registry, tag: str, kinds: tuple[str, ...]) -> Engine:
    """The app or engine of one of ``kinds`` that ``tag`` names (by id first, then by tag);
    `NotFound` saying why, `InvalidRequest` when a name is both a partitioner and an
    assembler and no ``?type=`` says which."""
    by_id = [e for e in registry.engines() if e.kind in kinds and tag in (
        e.id, stable_id(e.kind, e.name, e.version))]
    if by_id:
        return by_id[0]
    found: list[Engine] = []
    reasons: list[str] = []
    for kind in kinds:
        try:
            found.append(registry.resolve(tag, kind, include_inactive=True))
        except RegistryError as exc:
            reasons.append(str(exc))
    if not found:
        noun = "app" if kinds == ("app",) else "engine"
        raise NotFound(f"No {noun} matches {tag!r}: {'; '.join(reasons)}")
    if len(found) > 1:
        raise InvalidRequest(f"{tag!r} names both a partitioner and an assembler; use ?type="
                             "partitioner or ?type=assembler")
    return found[0]
