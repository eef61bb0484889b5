"""The grammar of ``%bytenite VERB ...`` and of the ``%%bytenite [VAR] ...`` cell line, and the
verb table.

:data:`VERBS` declares each verb once: its help line, the builder of its argument parser and
the handler that runs it (a :class:`Verb`). ``%bytenite help`` lists the table, the magic
dispatches through it, and a test checks every verb has a parser, a handler and a help line.

Parsing is pure: a line goes in, a :class:`Command` (verb plus options) or a ``UsageError``
comes out, and nothing else can escape (a hypothesis test holds us to that). Placeholders such
as ``$params`` are *not* resolved here; values stay as the text the user typed and the
commands resolve them against the user's namespace as structured values.

Every parser is an :class:`argparse.ArgumentParser` subclass whose ``error``/``exit`` raise an
exact ``IPython.core.error.UsageError`` (IPython prints exact instances as one line, but a
subclass, or argparse's ``SystemExit``, as a traceback).
"""

from __future__ import annotations

import argparse
import math
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from IPython.core.error import UsageError

__all__ = [
    "CELL",
    "CELL_VERB",
    "VERBS",
    "Command",
    "MagicArgumentParser",
    "Verb",
    "is_identifier",
    "parse_cell_line",
    "parse_line",
    "split_line",
    "suggest",
    "usage",
    "verb_named",
]

#: The pseudo-verb of a ``%%bytenite`` cell.
CELL_VERB = "cell"

#: Option names that mean "here is a secret" on any verb: refused without echoing the value.
_SECRET_OPTIONS = frozenset(
    {"--api-key", "--apikey", "--api_key", "--key", "--token", "--password", "--secret", "-k", "-p"}
)
SECRET_ON_LINE_MESSAGE = (
    "Refusing a secret value on the magic line: the line is saved in the notebook, its history "
    "and any export. Run `%bytenite secrets set ID` on its own and type the value at the hidden "
    "prompt."
)
KEY_ON_LINE_MESSAGE = (
    "Refusing an API key on the magic line: the line is saved in the notebook, its history and "
    "any export. Run `%bytenite login` on its own and paste the key at the hidden prompt, or set "
    "the BYTENITE_API_KEY environment variable before starting Jupyter."
)


@dataclass(frozen=True)
class Command:
    """One parsed magic line.

    ``verb`` is the sub-command (``"cell"`` for a ``%%bytenite`` cell line), ``options`` the
    parsed arguments by destination name (values exactly as typed: placeholders unresolved),
    ``debug`` whether ``--debug`` was given (show tracebacks).
    """

    verb: str
    options: dict[str, Any] = field(default_factory=dict)
    debug: bool = False

    def get(self, name: str, default: Any = None) -> Any:
        """The option ``name``, or ``default`` when the verb has no such option or it is unset."""
        value = self.options.get(name)
        return default if value is None else value


class MagicArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that raises ``UsageError`` instead of printing and exiting."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # -h is handled by parse_line (help must not print-and-exit); prefix matching of long
        # options would make `--w` silently mean `--wait` today and fail after a new flag.
        kwargs.setdefault("add_help", False)
        kwargs.setdefault("allow_abbrev", False)
        kwargs["exit_on_error"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}. Usage: {self.one_line_usage()}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise UsageError((message or f"{self.prog}: invalid arguments").strip())

    def one_line_usage(self) -> str:
        """The usage string on one line (argparse wraps it for terminals)."""
        text = self.format_usage().strip()
        text = text.removeprefix("usage:").strip()
        return " ".join(text.split())

    def option_names(self) -> list[str]:
        """Every option string this parser accepts (for suggestions)."""
        names: list[str] = []
        for action in self._actions:
            names.extend(action.option_strings)
        return sorted(names)


# --------------------------------------------------------------------------------------------
# Value checkers (argparse ``type=`` callables: they raise ArgumentTypeError with a clear text)
# --------------------------------------------------------------------------------------------


def is_identifier(text: str) -> bool:
    """Whether ``text`` can name a variable in the user's namespace."""
    import keyword

    return text.isidentifier() and not keyword.iskeyword(text)


def _variable(text: str) -> str:
    if not is_identifier(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid Python variable name")
    return text


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if math.isnan(value):
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}")
    return value


def _non_negative_seconds(text: str) -> float:
    value = _seconds(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more seconds, got {text!r}")
    return value


def _port(text: str) -> int:
    value = _non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, got {value}")
    return value


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def _job_state(text: str) -> str:
    """A job status word (aliases and wire names accepted), as the status word."""
    from bytenite_nb.vocabulary import parse_status

    try:
        return parse_status(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _log_level(text: str) -> str:
    """A log level (``warning`` and other aliases accepted), as the wire's name."""
    from bytenite_nb.vocabulary import parse_level

    try:
        return parse_level(text).value
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# --------------------------------------------------------------------------------------------
# The verbs
# --------------------------------------------------------------------------------------------


def _add_common(p: MagicArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    p.add_argument("--base-url", dest="base_url", metavar="URL",
                   help="talk to this server for this line only (beats %%config)")


def _add_out(p: MagicArgumentParser) -> None:
    p.add_argument("-o", "--out", dest="out", type=_variable, metavar="VAR",
                   help="also store the result in this variable")


def _add_wait(p: MagicArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--wait", dest="wait", action="store_true", default=None,
                       help="block until the job ends (Ctrl-C aborts it)")
    group.add_argument("--no-wait", dest="wait", action="store_false",
                       help="return the job at once (the default)")
    p.add_argument("--keep-running", dest="keep_running", action="store_true", default=None,
                   help="on Ctrl-C while waiting, leave the job running instead of aborting it")
    p.add_argument("--progress-after", dest="progress_after", type=_seconds, metavar="SECONDS",
                   help="while waiting, show progress only after this many seconds "
                   "(0: at once, negative: never)")


def _add_load(p: MagicArgumentParser) -> None:
    p.add_argument("--load", action="store_true",
                   help="wait for the job, then give its results instead of the job: a "
                   "DataFrame when it produced one table (or with --concat), else a dict of "
                   "them (the job: df.attrs['job_id'], %%bytenite attach --last)")
    p.add_argument("--concat", action="store_true",
                   help="with --load: concatenate every result table into one DataFrame")


def _add_spec_overrides(p: MagicArgumentParser) -> None:
    p.add_argument("--name", help="the job's name")
    p.add_argument("--description", help="the job's description")
    p.add_argument("--source", metavar="URL|PATH|$VAR",
                   help="data source: a URL, a local file (uploaded), or a variable")
    p.add_argument("--destination", metavar="bucket|bypass|$VAR",
                   help="data destination (default: the template's)")
    p.add_argument("--param", dest="param", action="append", type=_key_value,
                   metavar="[SECTION.]KEY=VALUE",
                   help="one parameter; SECTION is app (default), partitioner or assembler")
    p.add_argument("--params", metavar="JSON|$VAR", help="all parameters at once")
    p.add_argument("--config", dest="config", action="append", type=_key_value,
                   metavar="KEY=VALUE", help="one job config field, e.g. taskTimeout=60")
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="show the job spec that would be submitted, submit nothing")


def _build_run(p: MagicArgumentParser) -> None:
    p.add_argument("template", metavar="TEMPLATE", help="the job template id (or $VAR)")
    _add_spec_overrides(p)
    _add_wait(p)
    _add_load(p)
    _add_out(p)


def _build_cell(p: MagicArgumentParser) -> None:
    p.add_argument("var", metavar="VAR", nargs="?", type=_variable,
                   help="store the job in this variable")
    p.add_argument("--template", metavar="TEMPLATE", help="the job template (beats the body)")
    p.add_argument("--name", help="the job's name (beats the body)")
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="show the job spec that would be submitted, submit nothing")
    _add_wait(p)
    _add_load(p)
    _add_out(p)


def _build_jobs(p: MagicArgumentParser) -> None:
    p.add_argument("--state", type=_job_state, metavar="STATE",
                   help="only jobs in this state: draft, queued, partitioning, running, "
                   "assembling, complete, failed, aborted (completed, cancelled... accepted)")
    p.add_argument("--template", metavar="TEMPLATE", help="only jobs of this template")
    p.add_argument("--limit", type=_non_negative_int, metavar="N",
                   help="at most N most recent jobs (0: all)")
    _add_out(p)


def _build_job_id(p: MagicArgumentParser) -> None:
    p.add_argument("job_id", metavar="JOB_ID", help="a job id (or $VAR holding a Job or id)")


def _build_job(p: MagicArgumentParser) -> None:
    _build_job_id(p)
    _add_out(p)


def _build_logs(p: MagicArgumentParser) -> None:
    _build_job_id(p)
    p.add_argument("--task", metavar="TASK", help="only this task (task-3 or 3)")
    p.add_argument("--level", type=_log_level, metavar="LEVEL",
                   help="only lines at this level or more severe: debug, info, warn (warning), "
                   "error, fatal")
    p.add_argument("--limit", type=_non_negative_int, metavar="N",
                   help="at most the last N lines (0: all)")
    _add_out(p)


def _build_results(p: MagicArgumentParser) -> None:
    _build_job_id(p)
    p.add_argument("--load", action="store_true",
                   help="read the result files into DataFrames instead of listing them")
    p.add_argument("--concat", action="store_true",
                   help="with --load: concatenate all files into one DataFrame")
    _add_out(p)


def _build_attach(p: MagicArgumentParser) -> None:
    p.add_argument("job_id", metavar="JOB_ID", nargs="?", help="a job id (or $VAR)")
    p.add_argument("--last", action="store_true",
                   help="the last job started from this machine on this server")
    _add_wait(p)
    _add_out(p)


def _build_templates(p: MagicArgumentParser) -> None:
    _add_out(p)


def _build_template(p: MagicArgumentParser) -> None:
    p.add_argument("template", metavar="TEMPLATE", help="the template id (or $VAR)")
    _add_out(p)


def _build_help(p: MagicArgumentParser) -> None:
    p.add_argument("topic", metavar="VERB", nargs="?", help="a verb to explain")


def _build_login(p: MagicArgumentParser) -> None:
    # A positional here could only be a key; we declare it so we can refuse it by name.
    p.add_argument("refused_key", metavar="-", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--store", choices=("config", "keyring", "session"), default=None,
                   help="where to keep the key: config file (0600, default), keyring, "
                   "or this session only")


def _build_local(p: MagicArgumentParser) -> None:
    p.add_argument("action", metavar="ACTION", nargs="?", default="start",
                   choices=("start", "stop", "status"),
                   help="start (default; reuses a running one), stop, or status")
    p.add_argument("--data-dir", dest="data_dir", metavar="DIR",
                   help="where ByteNite Local keeps jobs and results")
    p.add_argument("--port", type=_port, metavar="PORT", help="port (default: a free one)")
    p.add_argument("--workers", type=_non_negative_int, metavar="N",
                   help="parallel tasks (default: CPU count)")
    p.add_argument("--preload", action="append", metavar="MODULE",
                   help="import MODULE once so every task starts with it loaded, e.g. "
                   "pandas (repeatable)")
    p.add_argument("--idle-timeout", dest="idle_timeout", type=_non_negative_seconds,
                   metavar="SECONDS",
                   help="a server started here stops by itself after SECONDS without requests "
                   "or running jobs (0: never; default: ByteniteMagics.local_idle_timeout, "
                   "3600); the next command restarts it on the same data dir")
    p.add_argument("--force", action="store_true",
                   help="with stop: also stop a server this session did not start")


def _build_secrets(p: MagicArgumentParser) -> None:
    p.add_argument("action", metavar="ACTION", nargs="?", default="list",
                   choices=("list", "set", "delete"),
                   help="list (default), set ID (value from a hidden prompt), or delete ID")
    p.add_argument("id", metavar="ID", nargs="?",
                   help="the secret's id: the name apps read it by ($ID, or $ID_ACCESS_KEY and "
                   "$ID_SECRET_KEY)")
    # A further positional could only be a value; declared so it is refused without echoing it.
    p.add_argument("refused_value", metavar="-", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--type", choices=("other", "aws", "gcp", "storj", "s3"), default=None,
                   help="with set: other (default; one value, e.g. an API key) or aws, gcp, "
                   "storj (an access key and a secret key); with list/delete: only that type")
    p.add_argument("--name", metavar="TEXT", help="with set: a description")
    p.add_argument("--expires", metavar="WHEN",
                   help="with set: when it stops being given to jobs (ISO 8601, e.g. "
                   "2027-01-31T00:00:00Z)")
    _add_out(p)


def _build_nothing(p: MagicArgumentParser) -> None:
    del p


@dataclass(frozen=True)
class Verb:
    """One verb of ``%bytenite``: its help line, its grammar and its handler, declared together.

    ``build`` adds the verb's own arguments to its parser (``--debug`` and ``--base-url`` are
    added to every verb unless ``common`` is false). ``handler`` names the function that runs
    the verb, ``"module:function"`` under ``bytenite_nb.notebook.commands``; it is imported on
    first use, so ``%load_ext bytenite_nb`` stays cheap. Every handler takes a
    :class:`~bytenite_nb.notebook.commands.context.Context` and returns what the magic returns.
    """

    name: str
    summary: str
    build: Callable[[MagicArgumentParser], None]
    handler: str
    common: bool = True

    def handler_function(self) -> Callable[[Any], Any]:
        """The function implementing this verb (its module is imported now)."""
        import importlib

        module_name, _, function = self.handler.partition(":")
        module = importlib.import_module(f"bytenite_nb.notebook.commands.{module_name}")
        return getattr(module, function)


def _table(*verbs: Verb) -> dict[str, Verb]:
    return {verb.name: verb for verb in verbs}


#: Every ``%bytenite`` verb, in the order ``%bytenite help`` lists them.
VERBS: dict[str, Verb] = _table(
    Verb("run", "create a job from a template, upload its data, run it", _build_run,
         "jobs:run"),
    Verb("jobs", "your jobs as a DataFrame", _build_jobs, "tables:jobs"),
    Verb("job", "one job's handle (rendered as its live monitor)", _build_job, "jobs:job"),
    Verb("status", "one job's state in one line", _build_job_id, "jobs:status"),
    Verb("logs", "a job's logs as a DataFrame", _build_logs, "tables:logs"),
    Verb("results", "a job's result files (or their contents with --load)", _build_results,
         "tables:results"),
    Verb("abort", "stop a running job (a job not yet started is deleted)", _build_job_id,
         "jobs:abort"),
    Verb("delete", "delete a job", _build_job_id, "jobs:delete"),
    Verb("templates", "the job templates you can run, as a DataFrame", _build_templates,
         "tables:templates"),
    Verb("template", "one template: its engines, every param (type, default, allowed values, "
         "description) and an example cell", _build_template, "tables:template"),
    Verb("attach", "re-attach to a job (e.g. after a kernel restart)", _build_attach,
         "jobs:attach"),
    Verb("info", "where this session connects, and how it is configured", _build_nothing,
         "info:info"),
    Verb("client", "a Client for the server and key these magics use (c = %bytenite client)",
         _add_out, "info:client"),
    Verb("help", "this help, or one verb's options", _build_help, "info:show_help"),
    Verb("login", "store your API key from a hidden prompt", _build_login, "login:login"),
    Verb("secrets", "the secrets your apps read; secrets set ID (value from a hidden prompt)",
         _build_secrets, "secrets:secrets"),
    Verb("local", "start (or reuse) ByteNite Local and use it; local stop", _build_local,
         "local:local"),
)

#: The ``%%bytenite`` cell line: a verb of its own, never typed after ``%bytenite``.
CELL = Verb(CELL_VERB, "run the job spec in the cell", _build_cell, "jobs:cell")


def verb_named(name: str) -> Verb:
    """The :class:`Verb` called ``name`` (``"cell"`` for the cell line); ``KeyError`` if none."""
    return CELL if name == CELL_VERB else VERBS[name]


_PARSERS: dict[str, MagicArgumentParser] = {}


def parser_for(verb: str) -> MagicArgumentParser:
    """The (cached) argument parser of ``verb`` (``"cell"`` for the cell line)."""
    if verb not in _PARSERS:
        spec = verb_named(verb)
        prog = "%%bytenite" if spec is CELL else f"%bytenite {verb}"
        p = MagicArgumentParser(prog=prog, description=spec.summary)
        spec.build(p)
        if spec.common:
            _add_common(p)
        _PARSERS[verb] = p
    return _PARSERS[verb]


def usage(verb: str) -> str:
    """Multi-line help for one verb: usage and every option."""
    return parser_for(verb).format_help()


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def split_line(line: str) -> list[str]:
    """Split a magic line into words, shell style, keeping backslashes (Windows paths).

    Quotes group words as in a shell; a backslash is an ordinary character so that
    ``C:\\data\\x.csv`` survives. Unbalanced quotes are a ``UsageError``.
    """
    lexer = shlex.shlex(line, posix=True)
    lexer.whitespace_split = True
    lexer.escape = ""  # backslashes are literal: see docstring
    lexer.commenters = ""  # '#' may start a URL fragment
    try:
        return list(lexer)
    except ValueError as exc:  # "No closing quotation"
        raise UsageError(f"%bytenite: cannot split the line into words: {exc}") from None


def suggest(word: str, choices: Sequence[str]) -> str:
    """`` Did you mean 'x'?`` for the closest of ``choices``, or an empty string."""
    from bytenite_nb.vocabulary import suggest as closest

    return closest(word, choices)


def _refuse_secrets(words: list[str]) -> None:
    for word in words:
        name = word.split("=", 1)[0]
        if name.lower() in _SECRET_OPTIONS:
            raise UsageError(SECRET_ON_LINE_MESSAGE if words[:1] == ["secrets"]
                             else KEY_ON_LINE_MESSAGE)


def _parse_with(verb: str, words: list[str]) -> Command:
    parser = parser_for(verb)
    try:
        namespace, extras = parser.parse_known_args(words)
    except argparse.ArgumentError as exc:  # exit_on_error=False routes some errors here
        parser.error(str(exc))
    if extras:
        flags = [w for w in extras if w.startswith("-") and len(w) > 1]
        if flags:
            flag = flags[0].split("=", 1)[0]
            options = parser.option_names()
            raise UsageError(
                f"{parser.prog}: unknown option {flag!r}.{suggest(flag, options)} "
                f"Options: {', '.join(options)}"
            )
        shown = " ".join(extras)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise UsageError(
            f"{parser.prog}: unexpected argument(s) {shown!r} (quote values that contain "
            f"spaces). Usage: {parser.one_line_usage()}"
        )
    options = vars(namespace)
    debug = bool(options.pop("debug", False))
    if verb == "login" and options.pop("refused_key", None):
        raise UsageError(KEY_ON_LINE_MESSAGE)
    if verb == "secrets" and options.pop("refused_value", None):
        raise UsageError(SECRET_ON_LINE_MESSAGE)
    return Command(verb=verb, options=options, debug=debug)


def parse_line(line: str) -> Command:
    """Parse a ``%bytenite`` line. Returns a :class:`Command`; raises only ``UsageError``.

    An empty line, ``-h``/``--help`` alone, or ``VERB --help`` give the ``help`` command.
    """
    words = split_line(line)
    _refuse_secrets(words)
    debug = "--debug" in words
    if not words or words[0] in ("-h", "--help"):
        return Command("help", {"topic": None}, debug=debug)
    verb, rest = words[0], words[1:]
    if verb not in VERBS:
        if verb.startswith("-"):
            raise UsageError(
                f"%bytenite: expected a verb before {verb!r}. Verbs: {', '.join(VERBS)}. "
                "Try `%bytenite help`."
            )
        raise UsageError(
            f"%bytenite: unknown verb {verb!r}.{suggest(verb, list(VERBS))} "
            f"Verbs: {', '.join(VERBS)}. Try `%bytenite help`."
        )
    if "-h" in rest or "--help" in rest:
        return Command("help", {"topic": verb}, debug=debug)
    return _parse_with(verb, rest)


def parse_cell_line(line: str) -> Command:
    """Parse the first line of a ``%%bytenite`` cell: ``[VAR] [--wait] [-o VAR] ...``."""
    words = split_line(line)
    _refuse_secrets(words)
    if "-h" in words or "--help" in words:
        return Command("help", {"topic": CELL_VERB}, debug="--debug" in words)
    return _parse_with(CELL_VERB, words)
