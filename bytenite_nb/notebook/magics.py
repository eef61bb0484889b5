"""``%bytenite`` / ``%%bytenite``: the ByteNite Customer API as IPython magics.

``%load_ext bytenite_nb`` registers one line-and-cell magic. Loading imports only IPython and
traitlets, starts nothing and touches no network; the client, pandas and ByteNite Local are
imported by the first verb that needs them.

Configuration is a traitlets ``Configurable``: ``%config ByteniteMagics.wait = True`` or
``c.ByteniteMagics.wait = True`` in ``ipython_config.py``. A flag on the magic line always beats
the configured value.

Errors a user can act on (bad input, API errors, unreachable server, failed job) are raised as
exact ``UsageError`` instances, which IPython prints as one line; ``--debug`` on the line or
``%config ByteniteMagics.short_errors = False`` shows the traceback instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Bool, Enum, Float, Int, TraitError, Unicode, observe, validate

from bytenite_nb.notebook.commands.errors import friendly_error, is_user_error, redact
from bytenite_nb.notebook.commands.session import Connection
from bytenite_nb.notebook.grammar import (
    CELL_VERB,
    Command,
    parse_cell_line,
    parse_line,
    verb_named,
)

__all__ = ["ByteniteMagics", "load_ipython_extension", "unload_ipython_extension"]


@magics_class
class ByteniteMagics(Magics):
    """``%bytenite VERB ...`` and ``%%bytenite [VAR]`` (see ``%bytenite help``)."""

    base_url = Unicode(
        "",
        help="Server to talk to, e.g. http://127.0.0.1:8765 (empty: BYTENITE_BASE_URL, the "
        "config file, a running ByteNite Local, else auto_local). `%bytenite local` sets it.",
    ).tag(config=True)
    wait = Bool(
        False, help="Block until a started job ends (--wait / --no-wait on the line win)."
    ).tag(config=True)
    progress_after = Float(
        2.0,
        help="While waiting, show progress only after this many seconds (0: at once, "
        "negative: never), so quick jobs do not flicker. --progress-after wins.",
    ).tag(config=True)
    poll_interval = Float(
        1.0, help="Seconds between state checks while waiting when the events stream is silent."
    ).tag(config=True)
    display_limit = Int(
        100,
        help="Rows `jobs` fetches and `logs` keeps (newest), when --limit is not given; "
        "0: no limit.",
    ).tag(config=True)
    auto_local = Bool(
        True,
        help="When no server is configured anywhere, start ByteNite Local on first use.",
    ).tag(config=True)
    abort_on_interrupt = Bool(
        True,
        help="Ctrl-C while waiting aborts the job on the server (--keep-running opts out).",
    ).tag(config=True)
    short_errors = Bool(
        True,
        help="Print API and usage errors as one line; False shows tracebacks (like --debug).",
    ).tag(config=True)
    local_data_dir = Unicode(
        "",
        help="Data dir for `%bytenite local` (empty: BYTENITE_LOCAL_DIR, else ByteNite "
        "Local's default).",
    ).tag(config=True)
    local_idle_timeout = Float(
        3600.0,
        help="A ByteNite Local started by `%bytenite local` or auto_local stops by itself after "
        "this many seconds without requests or running jobs (0: never); the next command "
        "restarts it on the same data dir. --idle-timeout wins.",
    ).tag(config=True)
    ledger_path = Unicode(
        "",
        help="File recording the jobs started here, for `attach --last` (empty: "
        "ledger.jsonl in the user data dir).",
    ).tag(config=True)
    credential_store = Enum(
        ("config", "keyring", "session"), "config",
        help="Where `%bytenite login` keeps the key: the 0600 config file, the OS keyring, "
        "or this session only (--store wins).",
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        #: Connection state (session keys, ByteNite Local); never shown.
        self.connection = Connection()
        #: Whether ``bytenite_nb.notebook.presenter`` renders Job objects as live monitors.
        self.formatters_registered = False
        #: Tab completion: what it remembers (``completion.CompletionState``) and its matcher.
        self.completion_state: Any = None
        self.completion_matcher: Any = None

    @validate("base_url")
    def _check_base_url(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"]).strip()
        if value and not value.lower().startswith(("http://", "https://")):
            raise TraitError(f"base_url must be an http(s) URL or empty, got {value!r}")
        return value.rstrip("/")

    @observe("base_url")
    def _share_server(self, change: dict[str, Any]) -> None:
        """Once the magics choose a server, a ``Client()`` or widget made in this kernel
        uses it too, with the key the magics use for it (see ``bytenite_nb.api.config``)."""
        if change["new"]:
            share_session_server(self)

    @validate("display_limit")
    def _check_limit(self, proposal: dict[str, Any]) -> int:
        if proposal["value"] < 0:
            raise TraitError("display_limit must be 0 (no limit) or more")
        return int(proposal["value"])

    @validate("local_idle_timeout")
    def _check_idle_timeout(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if not value >= 0:  # negative or NaN
            raise TraitError("local_idle_timeout must be 0 (never stop) or more seconds")
        return value

    @validate("poll_interval")
    def _check_poll(self, proposal: dict[str, Any]) -> float:
        if not proposal["value"] > 0:
            raise TraitError("poll_interval must be more than 0 seconds")
        return float(proposal["value"])

    @no_var_expand
    @line_cell_magic
    def bytenite(self, line: str, cell: str | None = None) -> Any:
        """Run a ByteNite verb (``%bytenite help`` lists them) or a ``%%bytenite`` job spec.

        Variables are not expanded by IPython: ``$name`` and ``{name}`` are filled by the verbs
        themselves, as structured values (a dict stays a dict).
        """
        from bytenite_nb.notebook.commands.context import Context

        debug = "--debug" in line.split()
        try:
            command = parse_line(line) if cell is None else parse_cell_line(line)
            debug = command.debug or debug
            if cell is not None and command.verb != "help":
                command = Command(CELL_VERB, command.options, command.debug)
            handler = verb_named(command.verb).handler_function()
            with _warnings_as_lines():
                return handler(Context(self, command, cell))
        except UsageError as exc:
            if type(exc) is not UsageError:
                raise
            text = redact(str(exc), self.connection.secrets())
            if text == str(exc):
                raise
            raise UsageError(text) from None
        except Exception as exc:
            if debug or not self.short_errors or not is_user_error(exc):
                raise
            raise friendly_error(
                exc, base_url=self.base_url or None, secrets=self.connection.secrets()
            ) from None


def share_session_server(magics: ByteniteMagics) -> None:
    """Tell the client's config resolution which server (and key) ``magics`` use, for as long
    as ``magics`` belong to the current IPython shell (so another shell, or a test's next
    shell, does not inherit it)."""
    import weakref

    from bytenite_nb.api import config

    ref = weakref.ref(magics)

    def provide() -> tuple[str, str | None] | None:
        current = ref()
        if current is None or not current.base_url:
            return None
        from IPython import get_ipython

        if get_ipython() is not current.shell:
            return None
        from bytenite_nb.notebook.ledger import normalize_base_url

        url = current.base_url
        return url, current.connection.session_keys.get(normalize_base_url(url))

    provide.magics = ref  # type: ignore[attr-defined]  # (whose it is, for unloading)
    config.set_session_server(provide)


def _forget_session_server(magics: ByteniteMagics) -> None:
    """Undo :func:`share_session_server` if ``magics`` shared theirs."""
    import sys

    config = sys.modules.get("bytenite_nb.api.config")  # not loaded: nothing was shared
    provider = getattr(config, "_SESSION_SERVER", None) if config is not None else None
    owner = getattr(provider, "magics", None)
    if owner is not None and owner() is magics:
        config.set_session_server(None)


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Print the client's :class:`ByteniteWarning` s raised by a verb as one line each on
    stderr ("Warning: ..."), instead of Python's file-and-line warning format."""
    import sys
    import warnings

    from bytenite_nb._warnings import ByteniteWarning

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ByteniteWarning)
            yield
    finally:
        for item in caught:
            if issubclass(item.category, ByteniteWarning):
                print(f"Warning: {item.message}", file=sys.stderr)
            else:  # not ours: hand it back to the warnings machinery as it was
                warnings.warn_explicit(item.message, item.category, item.filename,
                                       item.lineno)


def load_ipython_extension(ip: Any) -> None:
    """Register ``%bytenite``/``%%bytenite``, their Tab completion and the Job display
    formatter on ``ip``."""
    from bytenite_nb.notebook import completion

    magics = ByteniteMagics(ip)
    ip.register_magics(magics)
    completion.install(ip, magics)
    try:
        from bytenite_nb.notebook.presenter import register_formatters
    except ImportError:
        return  # plain reprs: the magics work without the live monitor
    register_formatters(ip)
    magics.formatters_registered = True


def unload_ipython_extension(ip: Any) -> None:
    """Remove the magics and formatter (a running ByteNite Local is left running)."""
    manager = ip.magics_manager
    magics = manager.registry.pop(ByteniteMagics.__name__, None)
    for kind in ("line", "cell"):
        manager.magics[kind].pop("bytenite", None)
    if magics is not None:
        _forget_session_server(magics)
        from bytenite_nb.notebook import completion

        completion.uninstall(ip, magics)
        magics.connection.forget_clients()
        if magics in getattr(ip, "configurables", []):
            ip.configurables.remove(magics)
    try:
        from bytenite_nb.notebook.presenter import unregister_formatters
    except ImportError:
        return
    unregister_formatters(ip)
