"""``%bytenite local [start|stop|status]``: ByteNite Local in the background for this notebook.

``start`` re-uses a server already serving the same data dir (another notebook's, or one left
by a previous kernel) and otherwise starts one as a child process; either way the session is
pointed at it (``ByteniteMagics.base_url`` is set, its key kept in memory). ``stop`` stops the
server only if this session started it (``--force`` stops a re-used one too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from bytenite_nb.notebook.commands.session import Connection
from bytenite_nb.notebook.ledger import normalize_base_url

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.notebook.commands.context import Context

__all__ = ["local", "start_local", "stop_local"]


def _describe(server: Any) -> str:
    pid = getattr(server, "pid", None)
    parts = [str(server.base_url), f"data dir {server.data_dir}"]
    if pid:
        parts.append(f"pid {pid}")
    return ", ".join(parts)


def start_local(ctx: Context, *, announce_auto: bool = False) -> Any:
    """Start or re-use ByteNite Local and point this session at it. Returns the server."""
    from bytenite_nb import local as local_module

    options = ctx.command.options
    session = ctx.magics.connection
    data_dir = Connection.local_data_dir(options.get("data_dir") or ctx.magics.local_data_dir)
    if session.local is not None and (data_dir is None or data_dir == session.local.data_dir):
        server, how = session.local, "already in use by this session"
    else:
        kwargs: dict[str, Any] = {"port": options.get("port") or 0}
        if options.get("workers"):
            kwargs["workers"] = options["workers"]
        if options.get("preload"):
            kwargs["preload"] = tuple(options["preload"])
        # start() re-uses a server already serving the data dir (then it is not ours to stop).
        server = local_module.LocalServer.start(data_dir, **kwargs)
        owned = bool(getattr(server, "owned", True))
        how = "started" if owned else "re-used (it was already running)"
        if session.local is not None:
            _detach(ctx)
        session.local, session.local_owned = server, owned
        session.previous_base_url = ctx.magics.base_url
        if server.api_key:  # "" when that server was started with explicit keys
            session.remember_key(server.base_url, server.api_key)
        ctx.magics.base_url = str(server.base_url)
    prefix = "No server configured, so ByteNite Local was " if announce_auto else "ByteNite Local "
    print(f"{prefix}{how}: {_describe(server)}. Stop it with `%bytenite local stop`.")
    return None if not announce_auto else server


def _detach(ctx: Context) -> None:
    session = ctx.magics.connection
    if session.local is not None:
        session.session_keys.pop(normalize_base_url(str(session.local.base_url)), None)
    session.local, session.local_owned = None, False
    ctx.magics.base_url = session.previous_base_url
    session.previous_base_url = ""
    session.forget_clients()


def _terminate_foreign(server: Any) -> None:
    """Stop a ByteNite Local another process started (its handle cannot: it does not own it)."""
    import contextlib
    import os
    import signal

    pid = getattr(server, "pid", None)
    if not pid or pid == os.getpid():
        raise UsageError(
            "%bytenite local stop --force: that server runs inside this process but was not "
            "started by this session; stop it from the code that started it"
        )
    with contextlib.suppress(ProcessLookupError):  # already gone is fine
        os.kill(pid, signal.SIGTERM)  # the server shuts down cleanly on SIGTERM


def stop_local(ctx: Context) -> None:
    """Stop (or detach from) the ByteNite Local this session uses."""
    session = ctx.magics.connection
    server = session.local
    if server is None:
        raise UsageError(
            "%bytenite local stop: this session is not using a ByteNite Local "
            "(`%bytenite local` starts one)"
        )
    owned = session.local_owned
    described = _describe(server)
    if owned or ctx.command.options.get("force"):
        if owned:
            server.stop()
        else:
            _terminate_foreign(server)
        _detach(ctx)
        print(f"Stopped ByteNite Local ({described}).")
        return
    _detach(ctx)
    print(
        f"Detached from ByteNite Local ({described}); this session did not start it, so it "
        "keeps running. `%bytenite local stop --force` stops it."
    )


def local(ctx: Context) -> Any:
    """``%bytenite local [start|stop|status] [--data-dir D] [--port P] [--workers N]
    [--preload MODULE]``."""
    action = ctx.command.options.get("action") or "start"
    if action == "stop":
        stop_local(ctx)
        return None
    if action == "status":
        server = ctx.magics.connection.local
        if server is None:
            print("This session is not using a ByteNite Local (`%bytenite local` starts one).")
        else:
            owner = "started by" if ctx.magics.connection.local_owned else "re-used by"
            print(f"ByteNite Local {_describe(server)}, {owner} this session.")
        return None
    return start_local(ctx)
