"""``%bytenite info`` (where this session connects, how it is configured), ``client`` and
``help``."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any

from bytenite_nb.notebook.grammar import CELL_VERB, VERBS, usage

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.notebook.commands.context import Context

__all__ = ["Info", "client", "help_text", "info", "show_help"]


@dataclass(frozen=True)
class Info:
    """A report of the session's connection and settings. Never contains the API key."""

    rows: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        width = max((len(k) for k, _ in self.rows), default=0)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in self.rows)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><th style='text-align:left'>{escape(k)}</th>"
            f"<td style='text-align:left'>{escape(v)}</td></tr>"
            for k, v in self.rows
        )
        return f"<table class='bytenite-info'>{body}</table>"

    def get(self, key: str) -> str | None:
        """The value of one row."""
        return next((v for k, v in self.rows if k == key), None)


def _server_rows(ctx: Context) -> list[tuple[str, str]]:
    from bytenite_nb.api import errors
    from bytenite_nb.api.config import resolve_settings

    session = ctx.magics.connection
    flag = ctx.command.options.get("base_url")
    rows: list[tuple[str, str]] = []
    if flag:
        url, source = flag, "--base-url on the line"
    elif ctx.magics.base_url:
        url = ctx.magics.base_url
        source = ("%bytenite local" if session.local is not None
                  and str(session.local.base_url) == url else "%config ByteniteMagics.base_url")
    else:
        try:
            settings = resolve_settings(api_key="unused-placeholder")
            url, source = settings.base_url, settings.base_url_source
        except errors.ConfigurationError as exc:
            return [("server", f"misconfigured: {exc}")]
        if source == "default" and ctx.magics.auto_local:
            source = "nothing configured: the first command starts ByteNite Local (auto_local)"
    rows.append(("server", f"{url}  (from {source})"))
    rows.append(("reachable", _reachable(ctx, url, source)))
    from bytenite_nb.notebook.ledger import normalize_base_url

    if normalize_base_url(url) in session.session_keys:
        rows.append(("API key", "set (entered in this session; never shown)"))
    else:
        try:
            settings = resolve_settings(base_url=url)
            rows.append(("API key", f"set (from {settings.api_key_source}; never shown)"))
        except errors.MissingCredentialsError:
            rows.append(("API key", "not set: `%bytenite login`, or `%bytenite local`"))
        except errors.ConfigurationError as exc:
            rows.append(("API key", f"unreadable: {exc}"))
    return rows


def _reachable(ctx: Context, url: str, source: str) -> str:
    """Ask the server for its version (``GET /info``); never starts ByteNite Local."""
    from bytenite_nb.api.errors import ByteniteError
    from bytenite_nb.notebook.commands.errors import one_line, redact

    if source.startswith("nothing configured"):
        return "not checked (no server yet)"
    try:
        # No retries and a short timeout: `info` is how users find out a server is down.
        probe = ctx.magics.connection.client(url).with_options(timeout=5.0, max_retries=0)
        try:
            answer = probe.info()
        finally:
            probe.close()
    except ByteniteError as exc:
        text = redact(one_line(f"{type(exc).__name__}: {exc}"), ctx.magics.connection.secrets())
        return f"no: {text}"
    version = (answer.get("version") or {}) if isinstance(answer, dict) else {}
    tag = version.get("tag") or ".".join(str(v) for v in version.values() if v)
    return f"yes{f' ({tag})' if tag else ''}"


def info(ctx: Context) -> Info:
    """``%bytenite info``: connection, key source (not the key), ByteNite Local, settings."""
    import IPython

    import bytenite_nb

    magics = ctx.magics
    rows = _server_rows(ctx)
    server = magics.connection.local
    if server is not None:
        owner = "started by" if magics.connection.local_owned else "re-used by"
        text = f"{server.base_url}, data dir {server.data_dir} ({owner} this session)"
        idle = getattr(server, "idle_timeout", None)
        if getattr(server, "running", True) is False:
            reason = server.stop_reason() if hasattr(server, "stop_reason") else None
            text += (f"; stopped by itself ({reason or 'its process has ended'}): the next "
                     "command that needs it starts it again")
        elif idle:
            text += f"; stops by itself after {idle:g} s idle"
        rows.append(("ByteNite Local", text))
    ledger = ctx.ledger
    rows.append(("ledger", f"{ledger.path} ({len(ledger.entries())} jobs)"))
    rows.append(("job display", "live monitor" if magics.formatters_registered
                 else "plain text (bytenite_nb.notebook.presenter unavailable)"))
    for name in sorted(magics.trait_names(config=True)):
        if name in ("parent", "config"):
            continue
        rows.append((f"ByteniteMagics.{name}", repr(getattr(magics, name))))
    rows.append(("versions", f"bytenite-nb {bytenite_nb.__version__}, "
                 f"IPython {IPython.__version__}"))
    return Info(rows)


_EXAMPLES = """\
Examples:
  %bytenite local                                  # ByteNite Local on this machine
  %bytenite templates
  %bytenite run hello-world-template --source notes.txt --param case=upper --wait -o job
  %bytenite run my-template --params $params       # $name / {name}: values from your namespace
  %bytenite jobs --state failed --limit 20
  %bytenite logs $job --level error
  %bytenite results $job --load
  %bytenite attach --last                          # after a kernel restart

  %%bytenite job --wait
  templateId: hello-world-template
  source: {data_path}
  params: {app: {case: upper}}

Flags on the line beat `%config ByteniteMagics.<name> = ...`; `%config ByteniteMagics` lists
them. Errors print one line; add --debug for the traceback. `%bytenite help VERB` shows a
verb's options."""


def client(ctx: Context) -> Any:
    """``c = %bytenite client``: a `Client` for the server and key this session's magics use
    (including a key entered with ``%bytenite login --store session`` and a ByteNite Local
    started by ``%bytenite local``), for the Python API. It is the caller's own: closing it
    does not affect the magics."""
    from bytenite_nb.notebook.commands.tables import deliver

    ctx.client()  # resolves the server as the magics do (auto_local may start one)
    fresh = ctx.magics.connection.new_client(ctx.base_url())
    return deliver(ctx, fresh, "a client")


def help_text(topic: str | None = None) -> str:
    """The overview (no topic), or one verb's usage and options."""
    if topic:
        return usage(topic)
    width = max(len(v) for v in VERBS)
    lines = ["%bytenite VERB [options]   run and inspect ByteNite jobs", ""]
    lines += [f"  {verb.ljust(width)}  {spec.summary}" for verb, spec in VERBS.items()]
    lines += ["", "%%bytenite [VAR] [--wait] [-o VAR] [--dry-run]   the cell body is a job spec "
              "(YAML or JSON: templateId, name, description, source/dataSource, "
              "dataDestination, params, config)", "", _EXAMPLES]
    return "\n".join(lines)


def show_help(ctx: Context) -> None:
    """``%bytenite help [VERB]``."""
    from IPython.core.error import UsageError

    from bytenite_nb.notebook.grammar import suggest

    topic = ctx.command.options.get("topic")
    if topic and topic not in VERBS and topic != CELL_VERB:
        raise UsageError(f"%bytenite help: no verb {topic!r}.{suggest(topic, list(VERBS))} "
                         f"Verbs: {', '.join(VERBS)}")
    print(help_text(topic))
