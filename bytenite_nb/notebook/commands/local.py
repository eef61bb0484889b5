"""``%bytenite local [start|stop|status]``: ByteNite Local in the background for this notebook.

``start`` re-uses a server already serving the same data dir (another notebook's, or one left
by a previous kernel) and otherwise starts one as a child process; either way the session is
pointed at it (``ByteniteMagics.base_url`` is set, its key kept in memory). ``stop`` stops the
server only if this session started it (``--force`` stops a re-used one too).

A server started here stops by itself after ``--idle-timeout`` seconds (default
``ByteniteMagics.local_idle_timeout``, 3600; 0: never) without requests or running jobs, so
servers of closed or crashed kernels do not pile up. When the session's server has stopped,
the next command that needs it (see ``Context.client``) starts it again on the same data
dir, with the same options and, if still free, the same port, and says so in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from bytenite_nb.notebook.commands.session import Connection
from bytenite_nb.notebook.ledger import normalize_base_url

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.notebook.commands.context import Context

__all__ = ["local", "restart_local", "start_local", "stop_local"]


def _describe(server: Any) -> str:
    pid = getattr(server, "pid", None)
    parts = [str(server.base_url), f"data dir {server.data_dir}"]
    if pid:
        parts.append(f"pid {pid}")
    return ", ".join(parts)


#: The ``%bytenite local`` options that say how to start a server (kept for restarts).
_START_OPTIONS = ("port", "workers", "preload", "idle_timeout")


def _start_kwargs(ctx: Context, options: dict[str, Any]) -> dict[str, Any]:
    """`LocalServer.start` arguments from line options; the idle timeout falls back to
    ``%config ByteniteMagics.local_idle_timeout`` (read now, so a changed setting applies to
    the next start)."""
    kwargs: dict[str, Any] = {"port": options.get("port") or 0}
    if options.get("workers"):
        kwargs["workers"] = options["workers"]
    if options.get("preload"):
        kwargs["preload"] = tuple(options["preload"])
    idle = options.get("idle_timeout")
    kwargs["idle_timeout"] = (ctx.magics.local_idle_timeout if idle is None else idle) or None
    return kwargs


def _launch(ctx: Context, data_dir: Path | None, options: dict[str, Any], *,
            port_hint: int | None = None) -> Any:
    """Start (or re-use) ByteNite Local on ``data_dir``; ``port_hint``: try that port first
    (a restart keeps its URL, so Job handles and links keep working), then any free one."""
    from bytenite_nb import local as local_module

    kwargs = _start_kwargs(ctx, options)
    if port_hint and not kwargs["port"]:
        try:
            return local_module.LocalServer.start(data_dir, **{**kwargs, "port": port_hint})
        except local_module.ServerStartError:
            pass  # the port was taken in the meantime: any free port will do
    # start() re-uses a server already serving the data dir (then it is not ours to stop).
    return local_module.LocalServer.start(data_dir, **kwargs)


def _adopt(ctx: Context, server: Any, options: dict[str, Any]) -> bool:
    """Point this session at ``server`` (replacing its previous ByteNite Local, if any).
    Returns whether this session started it."""
    session = ctx.magics.connection
    owned = bool(getattr(server, "owned", True))
    if session.local is not None:
        _detach(ctx)
    session.local, session.local_owned = server, owned
    session.local_options = {name: options.get(name) for name in _START_OPTIONS}
    session.previous_base_url = ctx.magics.base_url
    if server.api_key:  # "" when that server was started with explicit keys
        session.remember_key(server.base_url, server.api_key)
    ctx.magics.base_url = str(server.base_url)
    return owned


def _stopped(server: Any) -> bool:
    """Whether the session's ByteNite Local has stopped (e.g. after its idle timeout)."""
    return getattr(server, "running", True) is False


def _reason(server: Any) -> str:
    reason = server.stop_reason() if hasattr(server, "stop_reason") else None
    return reason or "its process has ended"


def restart_local(ctx: Context, options: dict[str, Any] | None = None) -> Any:
    """Start the session's stopped ByteNite Local again on the same data dir (same options
    and, if free, the same port), saying so in one line. Returns the new server."""
    session = ctx.magics.connection
    old = session.local
    merged = dict(session.local_options)
    merged.update({k: v for k, v in (options or {}).items() if k in _START_OPTIONS
                   and v is not None})
    reason = _reason(old)
    server = _launch(ctx, old.data_dir, merged, port_hint=_port_of(str(old.base_url)))
    owned = _adopt(ctx, server, merged)
    if owned:
        print(f"ByteNite Local had stopped ({reason}); restarted it on the same data dir, "
              f"jobs and results are kept: {_describe(server)}.")
    else:
        print(f"ByteNite Local had stopped ({reason}); re-using the one now serving the same "
              f"data dir: {_describe(server)}.")
    return server


def _port_of(url: str) -> int | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).port
    except ValueError:
        return None


def start_local(ctx: Context, *, announce_auto: bool = False) -> Any:
    """Start or re-use ByteNite Local and point this session at it. Returns the server."""
    options = ctx.command.options
    session = ctx.magics.connection
    data_dir = Connection.local_data_dir(options.get("data_dir") or ctx.magics.local_data_dir)
    if session.local is not None and (data_dir is None or data_dir == session.local.data_dir):
        if _stopped(session.local):
            server = restart_local(ctx, options)
            return None if not announce_auto else server
        server, how = session.local, "already in use by this session"
    else:
        server = _launch(ctx, data_dir, options)
        owned = _adopt(ctx, server, options)
        how = "started" if owned else "re-used (it was already running)"
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
    if _stopped(server):  # e.g. its idle timeout: nothing to stop (its pid may be reused)
        reason = _reason(server)
        server.stop()
        _detach(ctx)
        print(f"ByteNite Local ({described}) had already stopped ({reason}); this session "
              "no longer uses it.")
        return
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
    [--preload MODULE] [--idle-timeout SECONDS]``."""
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
            if _stopped(server):
                print(f"ByteNite Local {_describe(server)}, {owner} this session, has stopped "
                      f"by itself ({_reason(server)}); the next command that needs it (or "
                      "`%bytenite local`) starts it again on the same data dir.")
            else:
                idle = getattr(server, "idle_timeout", None)
                after = f"; it stops by itself after {idle:g} s idle" if idle else ""
                print(f"ByteNite Local {_describe(server)}, {owner} this session{after}.")
        return None
    return start_local(ctx)
