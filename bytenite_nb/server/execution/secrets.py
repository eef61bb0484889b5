"""User secrets (the Auth API's ``/v1/auth/secrets``): what a valid one is, and what a job's
processes get from them.

A secret is stored and handed to processes as the record ByteNite documents for the
``SECRETS`` variable of its runtime contract::

    {"id", "secretType", "expiresAt", "accessKey", "params", "name", "secretKey"}

``secretType`` is ``aws`` (``s3`` accepted), ``gcp``, ``storj`` or ``other``; ``(secretType,
id)`` names a secret, saving it again replaces it. Listing never returns ``secretKey``.

At run time every process gets ``SECRETS`` (the unexpired secrets, as a JSON list), and a
process whose manifest lists ids in ``platform_config.secrets`` gets, per listed id,
``<id>_ACCESS_KEY`` and ``<id>_SECRET_KEY``, or ``<id>`` (the secret key) for type ``other``.
A listed id with no usable secret fails the job before anything runs (`JobSecrets.env_for`).
Secret keys are masked (``***``) in whatever ByteNite Local records from a process's output
(`JobSecrets.mask`), and so is every line of a key that has several (`masked_strings`).
Nothing here knows HTTP or SQLite.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bytenite_nb import wire
from bytenite_nb.server.errors import InvalidRequest

__all__ = [
    "MASK",
    "RESERVED_IDS",
    "JobSecrets",
    "SecretError",
    "masked_strings",
    "public_record",
    "validate_secret",
]

MASK = "***"
#: Secret keys shorter than this are not masked in logs (they would mask ordinary text).
MIN_MASKED = 4

_ID_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,127}")

#: Ids that would name (for type ``other``) a variable of the runtime contract or one a Python
#: process cannot do without: refused when a secret is saved.
RESERVED_IDS = frozenset({
    "SOURCE_DIR", "CHUNKS_DIR", "PARTITIONER_PARAMS", "TASK_DIR", "TASK_RESULTS_DIR",
    "APP_PARAMS", "CHUNK_NUMBER", "OUTPUT_DIR", "ASSEMBLER_PARAMS", "SHARED_CACHE_DIR",
    "USER_CACHE_DIR", "SECRETS", "PATH", "HOME", "PYTHONPATH", "PYTHONHOME",
    "PYTHONUNBUFFERED", "PYTHONIOENCODING",
})

#: How each kind of engine is named in messages.
_KIND_NAMES = {"app": "app", "partitioner": "partitioner", "assembler": "assembler"}


class SecretError(InvalidRequest, ValueError):
    """A secret in a save request is invalid; the message names the field and the fix."""


def _check_id(secret_id: str) -> None:
    if not _ID_RE.fullmatch(secret_id):
        raise SecretError(
            f"secret.id {secret_id[:140]!r} is not a valid secret id: use letters, digits, '_' "
            "and '-' (not first), at most 128 characters, or leave it empty to get one "
            "generated (apps read it as an environment variable name)")
    if secret_id in RESERVED_IDS:
        raise SecretError(
            f"secret.id {secret_id!r} is the name of a variable ByteNite sets for every "
            "process; choose another id")


def _check_value(field: str, value: str) -> None:
    """A value that becomes an environment variable (never echoed in the message)."""
    if "\x00" in value:
        raise SecretError(f"{field} contains a NUL character, which an environment variable "
                          "cannot hold; remove it")


def _expiry(value: str | None) -> str | None:
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        when = wire.parse_timestamp(text)
    except ValueError:
        when = None
    if when is None:
        raise SecretError(
            f"secret.expiresAt {text[:60]!r} is not an ISO 8601 timestamp: use e.g. "
            "2026-12-31T23:59:59Z (or leave it out for a secret that never expires)")
    return wire.format_timestamp(when)


def validate_secret(*, secret_id: str | None, secret_type: str | None,
                    access_key: str | None, secret_key: str | None,
                    expires_at: str | None = None, params: Mapping[str, Any] | None = None,
                    name: str | None = None) -> dict[str, Any]:
    """The record to store for a save request, with its id generated if empty.

    Raises `SecretError` (a 400: the message names the field and how to fix it; it never
    contains the secret key or the access key).
    """
    if secret_type is None or not str(secret_type).strip():
        raise SecretError("secret.secretType is required: one of "
                          f"{', '.join(wire.SECRET_TYPES)}")
    try:
        kind = wire.secret_type(secret_type)
    except ValueError as exc:
        raise SecretError(f"secret.{exc}") from None
    secret_id = (secret_id or "").strip() or wire.new_secret_id()
    _check_id(secret_id)
    if not secret_key:
        raise SecretError(
            "secretKey is required: the secret value itself (an API key, or the secret access "
            "key that goes with accessKey), sent at the top level of the body beside 'secret'")
    _check_value("secretKey", secret_key)
    access_key = access_key or ""
    if kind != "other" and not access_key.strip():
        raise SecretError(
            f"secret.accessKey is required for secretType {kind!r}: the access key id that goes "
            "with secretKey (only secretType 'other' takes a secret key alone)")
    _check_value("secret.accessKey", access_key)
    return {
        "id": secret_id,
        "secretType": kind,
        "expiresAt": _expiry(expires_at),
        "accessKey": access_key,
        "params": dict(params or {}),
        "name": name or "",
        "secretKey": secret_key,
    }


def public_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A ``DataSourceSecret`` as listed: every field but ``secretKey``."""
    return {k: record.get(k) for k in ("id", "secretType", "accessKey", "expiresAt", "params",
                                       "name")}


def _expired(record: Mapping[str, Any], now: _dt.datetime) -> bool:
    try:
        when = wire.parse_timestamp(record.get("expiresAt"))
    except ValueError:
        return False
    return when is not None and when <= now


class JobSecrets:
    """The secrets one run works with: ``SECRETS``, per-engine variables, masking.

    ``records``: every secret of the user (with keys); those expired at ``now`` are left out
    of ``SECRETS`` and cannot be injected. The repr never shows a value.
    """

    def __init__(self, records: Iterable[Mapping[str, Any]], now: _dt.datetime | None = None
                 ) -> None:
        now = now or wire.utcnow()
        self._all = [dict(r) for r in records]
        self.usable = [r for r in self._all if not _expired(r, now)]
        keys = {str(r.get("secretKey") or "") for r in self.usable}
        # Longest first, so a key containing another key is masked whole.
        self._masked = sorted(masked_strings(keys), key=len, reverse=True)

    def __repr__(self) -> str:
        return f"<JobSecrets {len(self.usable)} usable, values hidden>"

    def secrets_json(self) -> str:
        """The ``SECRETS`` variable: the unexpired secrets with their keys."""
        return json.dumps([{k: r.get(k) for k in ("id", "secretType", "expiresAt", "accessKey",
                                                   "params", "name", "secretKey")}
                           for r in self.usable])

    def env_for(self, kind: str, tag: str, ids: Sequence[str]) -> tuple[dict[str, str], list[str]]:
        """The per-secret variables of an engine whose manifest lists ``ids``, and one
        problem (a user-facing sentence naming the id, never a value) per id that cannot be
        injected."""
        env: dict[str, str] = {}
        problems: list[str] = []
        who = f"the {_KIND_NAMES.get(kind, kind)} {tag}"
        for secret_id in dict.fromkeys(ids):
            found = [r for r in self._all if r.get("id") == secret_id]
            usable = [r for r in self.usable if r.get("id") == secret_id]
            if not found:
                problems.append(self._missing(who, secret_id))
            elif not usable:
                when = found[0].get("expiresAt")
                problems.append(
                    f"{who} needs secret {secret_id!r} (manifest platform_config.secrets), which "
                    f"expired at {when}: save it again with a later expiresAt (POST "
                    f"/v1/auth/secrets, or client.save_secret(..., id={secret_id!r})), then run "
                    "the job again")
            elif len(usable) > 1:
                types = ", ".join(sorted(str(r.get("secretType")) for r in usable))
                problems.append(
                    f"{who} needs secret {secret_id!r}, but that id names secrets of several "
                    f"types ({types}): delete all but one (DELETE "
                    f"/v1/auth/secrets/{{secretType}}/{secret_id}), then run the job again")
            else:
                record = usable[0]
                if record.get("secretType") == "other":
                    env[secret_id] = str(record.get("secretKey") or "")
                else:
                    env[f"{secret_id}_ACCESS_KEY"] = str(record.get("accessKey") or "")
                    env[f"{secret_id}_SECRET_KEY"] = str(record.get("secretKey") or "")
        return env, problems

    def _missing(self, who: str, secret_id: str) -> str:
        text = (f"{who} needs secret {secret_id!r} (manifest platform_config.secrets), but no "
                "secret has that id: create it with POST /v1/auth/secrets "
                f'{{"secret": {{"id": "{secret_id}", "secretType": "other"}}, '
                f'"secretKey": "..."}} or client.save_secret("other", secret_key=..., '
                f'id="{secret_id}") (secretType aws, gcp or storj also need an accessKey), '
                "then run the job again")
        near = sorted({str(r.get("id")) for r in self._all
                       if str(r.get("id")).lower() == secret_id.lower()})
        if near:
            text += f" (secret ids are case-sensitive: you have {', '.join(map(repr, near))})"
        return text

    def mask(self, text: str) -> str:
        """``text`` with every secret key (4 characters or more) replaced by ``***``, and
        every line (4 characters or more) of a key that has several."""
        for key in self._masked:
            if key in text:
                text = text.replace(key, MASK)
        return text

    @property
    def span(self) -> int:
        """The length of the longest text `mask` replaces (0 when it replaces nothing): a
        stream cut into lines must not cut closer than this to unmasked text."""
        return len(self._masked[0]) if self._masked else 0


def masked_strings(keys: Iterable[str]) -> set[str]:
    """What masking replaces for these secret keys: each key of `MIN_MASKED` characters or
    more, as printed and as inside a printed JSON string, and each line of a key that has
    several (a PEM key reaches the logs one output line at a time), without the spaces
    around it."""
    masked: set[str] = set()
    for key in keys:
        if len(key) < MIN_MASKED:
            continue
        masked.add(key)
        masked.add(json.dumps(key)[1:-1])
        for line in key.splitlines():
            if len(line.strip()) >= MIN_MASKED:
                masked.add(line.strip())
    return masked
