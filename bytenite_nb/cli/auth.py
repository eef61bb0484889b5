"""``bytenite-nb auth``: store the API key (and server) the other commands use.

ByteNite's CLI signed in through the browser; ByteNite's API takes an API key, so this reads
one from a hidden prompt (or stdin with ``--api-key-stdin``, for scripts; never from the
command line, where it would land in the shell's history), checks it against the server, and
stores it where the client looks: ``api_key`` in the config file (mode 0600), as
``%bytenite login`` does, or the OS keyring. ``--server URL`` is stored as ``base_url`` too.
``auth --status`` says which server and key the commands would use, without showing the key.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from bytenite_nb.cli.common import AUTH, PROG, USAGE, CliError, api_errors, print_json

__all__ = ["add_parsers"]


def _read_key(args: argparse.Namespace, url: str) -> str:
    if args.api_key_stdin:
        key = sys.stdin.readline().strip()
    elif not sys.stdin.isatty():
        raise CliError("no terminal to prompt for the key on: pipe it in with --api-key-stdin "
                       f"(e.g. {PROG} auth --api-key-stdin < key.txt)", USAGE)
    else:
        try:
            key = getpass.getpass(f"ByteNite API key for {url} (input hidden): ").strip()
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            raise CliError("no key entered; nothing changed", USAGE) from None
    if not key:
        raise CliError("no key entered; nothing changed", USAGE)
    return key


def _check(key: str, url: str) -> str:
    """A note on what the server said; a rejected key is an `AUTH` error."""
    from bytenite_nb.api.client import verify_api_key
    from bytenite_nb.api.errors import AuthenticationError, PermissionDeniedError

    try:
        with api_errors():
            try:
                answered = verify_api_key(key, url)
            except (AuthenticationError, PermissionDeniedError):
                raise CliError(f"the server at {url} rejected this API key; nothing was "
                               "stored: check the key and run auth again", AUTH) from None
    except CliError as exc:
        if exc.code == AUTH:
            raise
        return f"not checked: {exc.message}"
    return f"accepted by {url}" if answered else f"not checked: {url} did not answer"


def _auth(args: argparse.Namespace) -> int:
    from bytenite_nb.api.config import (
        API_KEY_ENV,
        BASE_URL_ENV,
        resolve_base_url,
        save_config,
        save_keyring_key,
    )

    if args.status:
        return _status(args)
    with api_errors():
        url = resolve_base_url(args.server)
    key = _read_key(args, url)
    checked = _check(key, url)
    with api_errors():
        if args.store == "keyring":
            where = save_keyring_key(key)
            if args.server:
                save_config(base_url=url)
        else:
            where = f"in {save_config(api_key=key, base_url=url if args.server else None)} " \
                    "(mode 0600)"
    print(f"API key stored {where} ({checked}).")
    if args.server:
        print(f"Server {url} stored as the default for {PROG} and Client().")
    for name, what in ((API_KEY_ENV, "key"), (BASE_URL_ENV, "server")):
        if os.environ.get(name, "").strip() and (what == "key" or args.server):
            print(f"Note: {name} is set in this environment and takes precedence over the "
                  f"stored {what}.")
    return 0


def _status(args: argparse.Namespace) -> int:
    from bytenite_nb.api.client import verify_api_key
    from bytenite_nb.api.config import resolve_settings
    from bytenite_nb.api.errors import AuthenticationError, PermissionDeniedError

    with api_errors():
        settings = resolve_settings(base_url=args.server)
    answer: dict[str, Any] = {
        "server": settings.base_url, "serverFrom": settings.base_url_source,
        "apiKeyFrom": settings.api_key_source}
    try:
        with api_errors():
            try:
                answer["key"] = "accepted" if verify_api_key(
                    settings.api_key, settings.base_url) else "not checked (no answer)"
            except (AuthenticationError, PermissionDeniedError):
                answer["key"] = "rejected"
    except CliError as exc:
        answer["key"] = f"not checked ({exc.message})"
    if args.json:
        print_json(answer)
    else:
        print(f"server   {answer['server']} (from {answer['serverFrom']})")
        print(f"API key  from {answer['apiKeyFrom']}: {answer['key']}")
    if answer["key"] == "rejected":
        raise CliError(f"the server at {settings.base_url} rejects this API key: run "
                       f"'{PROG} auth' to store one it accepts", AUTH)
    return 0


def add_parsers(sub: Any) -> None:
    """Add ``auth`` to the ``bytenite-nb`` subcommands ``sub``."""
    p = sub.add_parser("auth", help="store your API key (hidden prompt) and server",
                       description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("--server", metavar="URL",
                   help="the API's base URL, stored as the default (without it: the server "
                        "the commands use now, which is not stored)")
    p.add_argument("--api-key-stdin", action="store_true",
                   help="read the key from the first line of stdin instead of a prompt")
    p.add_argument("--store", choices=("config", "keyring"), default="config",
                   help="config: the config file, mode 0600 (default); keyring: the OS "
                        "keyring (needs the 'keyring' package)")
    p.add_argument("--status", action="store_true",
                   help="show which server and key the commands use (never the key), and "
                        "whether the server accepts it")
    p.add_argument("--json", action="store_true", help="with --status: as JSON")
    p.set_defaults(func=_auth)
