"""``%bytenite secrets [list|set|delete] [ID] [--type T] [--name N] [--expires WHEN]``.

The secrets your apps read (the Auth API's ``/v1/auth/secrets``). A value is never a magic
argument: the line is saved in the notebook, its history and any export. ``set`` reads it
from a hidden prompt (``getpass``; in Jupyter a password field that is not saved), the way
``%bytenite login`` reads the API key.

* ``list`` (default): the secrets as a DataFrame, without values (no API returns them); the
  access key shows only its last four characters, since the frame is saved in the notebook.
* ``set ID``: create or replace the secret apps read by ``ID``: ``$ID`` for ``--type other``
  (the default: one value, e.g. an LLM provider's API key), ``$ID_ACCESS_KEY`` and
  ``$ID_SECRET_KEY`` for ``aws``, ``gcp``, ``storj``; an app gets them when its manifest lists
  ``ID`` in ``platform_config.secrets``.
* ``delete ID``: forget it (``--type`` when that id names secrets of several types).
"""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Any

from IPython.core.error import StdinNotImplementedError, UsageError

from bytenite_nb.notebook.commands.errors import friendly_error, is_user_error

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.notebook.commands.context import Context

__all__ = ["secrets"]

#: How many trailing characters of an access key a listing shows.
_SHOWN = 4


def _masked(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return value
    return "…" + value[-_SHOWN:] if len(value) > _SHOWN else "…"


def _prompt(label: str) -> str:
    try:
        value = getpass.getpass(f"{label} (input hidden): ")
    except StdinNotImplementedError:
        raise UsageError(
            "%bytenite secrets set: this frontend cannot prompt for input (e.g. nbconvert or "
            "papermill); save the secret from code instead, reading its value from the "
            "environment: Client().save_secret('other', secret_key=os.environ['NAME'], "
            "id='NAME')"
        ) from None
    return value.strip()


def _list(ctx: Context) -> Any:
    from bytenite_nb import frames
    from bytenite_nb.notebook.commands.tables import deliver

    df = frames.secrets_df(ctx.client().secrets(secret_type=ctx.command.options.get("type")))
    df["access_key"] = df["access_key"].map(_masked).astype(df["access_key"].dtype)
    return deliver(ctx, df, "secrets")


def _variables(secret_id: str, secret_type: str) -> str:
    if secret_type == "other":
        return f"${secret_id}"
    return f"${secret_id}_ACCESS_KEY and ${secret_id}_SECRET_KEY"


def _set(ctx: Context, secret_id: str) -> None:
    options = ctx.command.options
    secret_type = options.get("type") or "other"
    access_key = None
    if secret_type != "other":
        access_key = _prompt(f"Access key of {secret_id} ({secret_type})")
        if not access_key:
            raise UsageError(f"%bytenite secrets set: no access key entered; a {secret_type} "
                             "secret needs one (nothing was saved)")
    secret_key = _prompt(f"Secret value of {secret_id}" if secret_type == "other"
                         else f"Secret key of {secret_id} ({secret_type})")
    if not secret_key:
        raise UsageError("%bytenite secrets set: nothing entered; nothing was saved")
    client = ctx.client()
    try:
        client.save_secret(secret_type, access_key, secret_key=secret_key, id=secret_id,
                           name=options.get("name"), expires_at=options.get("expires"))
    except Exception as exc:
        if not is_user_error(exc):
            raise
        raise friendly_error(exc, base_url=ctx.base_url(),
                             secrets=tuple(filter(None, (secret_key, access_key))),
                             note="nothing was saved") from None
    print(f"Saved secret {secret_id} ({secret_type}). Apps whose manifest lists it in "
          f"platform_config.secrets read it as {_variables(secret_id, secret_type)}.")


def _delete(ctx: Context, secret_id: str) -> None:
    client = ctx.client()
    secret_type = ctx.command.options.get("type")
    if not secret_type:
        types = sorted({s.secret_type for s in client.secrets() if s.id == secret_id})
        if not types:
            raise UsageError(f"%bytenite secrets delete: no secret has the id {secret_id!r} "
                             "(ids are case-sensitive; `%bytenite secrets` lists them)")
        if len(types) > 1:
            raise UsageError(f"%bytenite secrets delete: {secret_id!r} names secrets of "
                             f"several types ({', '.join(types)}); add --type TYPE")
        secret_type = types[0]
    client.delete_secret(secret_type, secret_id)
    print(f"Deleted secret {secret_id} ({secret_type}).")


def secrets(ctx: Context) -> Any:
    """Dispatch ``list`` (default), ``set ID`` or ``delete ID``."""
    options = ctx.command.options
    action = options.get("action") or "list"
    if action == "list":
        if options.get("id"):
            raise UsageError("%bytenite secrets: an id goes with set or delete, e.g. "
                             f"`%bytenite secrets set {options['id']}`")
        return _list(ctx)
    secret_id = options.get("id")
    if not secret_id:
        raise UsageError(f"%bytenite secrets {action}: give the secret's id, the name apps "
                         f"read it by, e.g. `%bytenite secrets {action} OPENAI_API_KEY`")
    if action == "set":
        _set(ctx, secret_id)
    else:
        _delete(ctx, secret_id)
    return None
