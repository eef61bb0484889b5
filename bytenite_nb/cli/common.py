"""What every ``bytenite-nb`` command shares: exit codes, one-line errors, the client, output.

Exit codes (scripts can test them; ``docs/dev-cli.md`` lists them too):

== ==========================================================================================
0  done
1  the server refused or failed the request (its message says why), e.g. an inactive app
2  the command line or a local file is wrong; nothing changed (missing folder, bad JSON)
3  not found on the server: no app, engine or template with that tag or id
4  no API key, or the server rejected it (``bytenite-nb auth`` stores one)
5  the server did not answer (not running, wrong ``--server``)
== ==========================================================================================
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import difflib
import json
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api.client import Client

__all__ = [
    "API_ERROR",
    "AUTH",
    "NOT_FOUND",
    "OK",
    "UNREACHABLE",
    "USAGE",
    "CliError",
    "Column",
    "Parser",
    "add_group",
    "api_errors",
    "call",
    "connect",
    "print_answer",
    "print_fields",
    "print_json",
    "print_listing",
    "print_table",
    "read_json_file",
]

T = TypeVar("T")

OK = 0
API_ERROR = 1
USAGE = 2
NOT_FOUND = 3
AUTH = 4
UNREACHABLE = 5

PROG = "bytenite-nb"
#: Transport retries for one command: a refused connection fails in about a second and a
#: half instead of the client's default quarter of a minute.
CLI_RETRIES = 2


class CliError(Exception):
    """A failed command: ``message`` names the problem and the fix; ``code`` is the exit code."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Parser(argparse.ArgumentParser):
    """``argparse`` with one-line errors (exit code 2) and did-you-mean for unknown commands."""

    def error(self, message: str) -> NoReturn:
        """Print ``prog: message (see 'prog --help')`` on stderr and exit with `USAGE`."""
        self.exit(USAGE, f"{self.prog}: {message} (see '{self.prog} --help')\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # argparse's own message lists every choice; an unknown command also gets the
        # closest ones, as git does.
        choices = action.choices
        if choices is None or value in choices:
            return
        names = [str(c) for c in choices]
        close = difflib.get_close_matches(str(value), names, n=2, cutoff=0.5)
        listed = f"one of: {', '.join(names)}"
        if isinstance(action, argparse._SubParsersAction):
            hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else listed
            raise argparse.ArgumentError(None, f"unknown command {value!r}; {hint}")
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise argparse.ArgumentError(action, f"unknown choice {value!r}{hint} ({listed})")


def connect(args: argparse.Namespace) -> Client:
    """The API client for ``args`` (``--server`` if given; the key as the client resolves it:
    ``BYTENITE_API_KEY``, the config file ``bytenite-nb auth`` writes, the keyring, a running
    ByteNite Local)."""
    from bytenite_nb.api.client import Client

    with api_errors():
        return Client(base_url=getattr(args, "server", None), max_retries=CLI_RETRIES)


def call(args: argparse.Namespace, request: Callable[[Client], T], *,
         not_found: str = "") -> T:
    """One API request: connect as ``args`` say, return ``request(client)`` with the client's
    exceptions turned into `CliError` (``not_found`` as for `api_errors`), close the client."""
    client = connect(args)
    with client, api_errors(not_found):
        return request(client)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


@contextlib.contextmanager
def api_errors(not_found: str = "") -> Iterator[None]:
    """Turn the client's exceptions into a `CliError` with its exit code and a fix.

    ``not_found``: what to suggest when the server answers 404 (e.g. where to list tags).
    """
    from bytenite_nb.api import errors

    try:
        yield
    except errors.MissingCredentialsError as exc:
        if exc.elsewhere:  # a key paired with another server is never sent to this one
            raise CliError(f"no API key for {exc.base_url}: the keys found belong to other "
                           f"servers ({'; '.join(exc.elsewhere)}); run '{PROG} auth --server "
                           f"{exc.base_url}' to store one for it", AUTH) from None
        raise CliError(f"no API key found: run '{PROG} auth' to store one (or set "
                       "BYTENITE_API_KEY)", AUTH) from None
    except errors.ConfigurationError as exc:
        raise CliError(_one_line(str(exc)), USAGE) from None
    except (errors.AuthenticationError, errors.PermissionDeniedError) as exc:
        raise CliError(f"the server rejected the API key ({_one_line(exc.message)}): run "
                       f"'{PROG} auth' to store one it accepts (or set BYTENITE_API_KEY)",
                       AUTH) from None
    except errors.NotFoundError as exc:
        fix = f"; {not_found}" if not_found else ""
        raise CliError(f"{_one_line(exc.message)}{fix}", NOT_FOUND) from None
    except errors.APIConnectionError as exc:
        raise CliError(f"{_one_line(exc.message)}: is the server running? Start ByteNite "
                       f"Local with '{PROG} serve', or pass --server URL", UNREACHABLE) from None
    except errors.APIStatusError as exc:
        rid = f" (request id {exc.request_id})" if exc.status_code >= 500 and \
            exc.request_id else ""
        raise CliError(f"{_one_line(exc.message)}{rid}", API_ERROR) from None
    except errors.APIError as exc:
        raise CliError(_one_line(str(exc)), API_ERROR) from None


def read_json_file(path: Path) -> Any:
    """The JSON in ``path``; a usage error naming the line and column when it is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}", USAGE) from None
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column "
                       f"{exc.colno}): fix it and push again", USAGE) from None


def add_common(parser: argparse.ArgumentParser, *, json_output: bool = True) -> None:
    """``--server`` (and ``--json``) for a command that talks to the API."""
    parser.add_argument("--server", metavar="URL",
                        help="the API's base URL (default: BYTENITE_BASE_URL, the config "
                             "file, a running ByteNite Local, http://127.0.0.1:8765)")
    if json_output:
        parser.add_argument("--json", action="store_true",
                            help="print the server's answer as JSON (for scripts)")


def add_group(sub: Any, name: str, *, help: str, description: str) -> Any:
    """Add the command group ``name`` (e.g. ``cache``) to the subcommands ``sub``; returns its
    subcommands, to add the verbs to. Typed alone, the group prints its help."""
    top = sub.add_parser(name, help=help, description=description)
    verbs = top.add_subparsers(dest="verb", metavar="COMMAND")
    top.set_defaults(group=name, func=None, group_parser=top)
    return verbs


# -- output --------------------------------------------------------------------------------


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout."""
    print(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False))


def when(text: Any) -> str:
    """An RFC 3339 timestamp as local ``YYYY-MM-DD HH:MM`` ("" when missing)."""
    if not isinstance(text, str) or not text:
        return ""
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


class Column:
    """A table column: its header, how to read a cell from a record, and whether it may be
    cut to fit the terminal (with '…')."""

    def __init__(self, header: str, read: str | Callable[[dict[str, Any]], Any], *,
                 shrink: bool = False) -> None:
        self.header = header
        self.read = read if callable(read) else (lambda r, k=read: r.get(k))
        self.shrink = shrink

    def cell(self, record: dict[str, Any]) -> str:
        value = self.read(record)
        return "" if value is None else _one_line(str(value))


def _width() -> int:
    return max(40, shutil.get_terminal_size((80, 24)).columns)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def print_table(records: Sequence[dict[str, Any]], columns: Sequence[Column], *,
                empty: str) -> None:
    """Aligned columns that fit the terminal (80 columns when it is not one): the columns
    marked ``shrink`` are cut first. ``empty`` is printed when there are no records."""
    if not records:
        print(empty)
        return
    rows = [[c.cell(r) for c in columns] for r in records]
    widths = [max(len(c.header), *(len(row[i]) for row in rows))
              for i, c in enumerate(columns)]
    gap = 2
    excess = sum(widths) + gap * (len(widths) - 1) - (_width() - 1)
    for i in sorted((i for i, c in enumerate(columns) if c.shrink),
                    key=lambda i: -widths[i]):
        if excess <= 0:
            break
        floor = max(len(columns[i].header), 8)
        take = min(excess, max(0, widths[i] - floor))
        widths[i] -= take
        excess -= take
    last = len(columns) - 1
    for row in [[c.header for c in columns], *rows]:
        cells = [_cut(v, widths[i]) if i == last else _cut(v, widths[i]).ljust(widths[i])
                 for i, v in enumerate(row)]
        print((" " * gap).join(cells).rstrip())


def print_listing(args: argparse.Namespace, records: Sequence[dict[str, Any]],
                  columns: Sequence[Column], *, empty: str) -> None:
    """A list command's output: ``records`` as JSON under ``--json``, else as a table (see
    `print_table`)."""
    if args.json:
        print_json(records)
    else:
        print_table(records, columns, empty=empty)


def print_answer(args: argparse.Namespace, answer: dict[str, Any], done: str) -> None:
    """A change's output: the server's answer as JSON under ``--json``, else its message
    (``done`` when it has none)."""
    if args.json:
        print_json(answer)
    else:
        print(answer.get("message") or done)


def print_fields(pairs: Sequence[tuple[str, Any]]) -> None:
    """``label  value`` lines, labels aligned; empty values are left out; long values wrap
    under their value column."""
    import textwrap

    shown = [(k, _one_line(str(v))) for k, v in pairs if v not in (None, "", [], {})]
    if not shown:
        return
    pad = max(len(k) for k, _ in shown) + 2
    width = max(20, _width() - 1 - pad)
    for key, value in shown:
        lines = textwrap.wrap(value, width, break_on_hyphens=False) or [""]
        print(f"{key.ljust(pad)}{lines[0]}")
        for line in lines[1:]:
            print(f"{' ' * pad}{line}")


def fail(message: str, code: int = USAGE) -> NoReturn:
    """Raise a `CliError` (a shorthand for the command modules)."""
    raise CliError(message, code)


def stderr(message: str) -> None:
    """A note for the user that is not the command's output (stdout stays parseable)."""
    print(message, file=sys.stderr)
