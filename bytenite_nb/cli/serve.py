"""``bytenite-nb serve`` runs ByteNite Local; ``bytenite-nb notebook PATH`` runs a notebook end
to end (``make quickstart`` uses it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _serve(args: argparse.Namespace) -> int:
    from bytenite_nb.local import ServerStartError, serve
    from bytenite_nb.server.config import ServerConfig, api_keys_from_env, default_data_dir
    from bytenite_nb.server.execution.executors import ExecutorError
    from bytenite_nb.server.execution.executors.setup import describe_executor

    keys = tuple(args.api_key or ()) or api_keys_from_env()
    kwargs: dict[str, Any] = {
        "data_dir": Path(args.data_dir) if args.data_dir else default_data_dir(),
        "host": args.host, "port": args.port, "api_keys": keys,
        "apps_dirs": tuple(Path(p) for p in args.apps or ()), "executor": args.executor,
        "scheduler": args.scheduler, "preload": tuple(args.preload or ()),
    }
    for name in ("workers", "token_ttl", "heartbeat_interval", "scheduler_timeout",
                 "worker_timeout", "idle_timeout"):
        value = getattr(args, name)
        if value is not None:
            kwargs[name] = value
    try:
        config = ServerConfig(**kwargs)
    except ValueError as exc:
        print(f"bytenite-nb serve: {exc}", file=sys.stderr)
        return 2

    def announce(url: str, ctx: Any) -> None:
        print(f"ByteNite Local listening on {url}", flush=True)
        print(f"  data dir: {config.data_dir}", flush=True)
        if ctx.key_path is not None:
            print(f"  API key:  stored in {ctx.key_path} (0600)", flush=True)
        else:
            print("  API keys: as given by --api-key / BYTENITE_LOCAL_API_KEYS", flush=True)
        print(f"  executor: {describe_executor(config, ctx.runner.executor)}", flush=True)
        if config.idle_timeout:
            print(f"  stops after {config.idle_timeout:g} s idle (--idle-timeout)", flush=True)
        if config.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"  warning: listening on {config.host}: reachable from other machines",
                  flush=True)
        for problem in getattr(ctx.registry, "problems", []) or []:
            print(f"  app folder skipped: {problem}", flush=True)

    try:
        serve(config, ready_file=Path(args.ready_file) if args.ready_file else None,
              announce=announce)
    except (ServerStartError, ExecutorError, ValueError) as exc:
        print(f"bytenite-nb serve: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _notebook(args: argparse.Namespace) -> int:
    from bytenite_nb.notebook_runner import NotebookFailed, run_notebook

    path = Path(args.path)
    if not path.is_file():
        print(f"bytenite-nb notebook: no notebook at {path}", file=sys.stderr)
        return 2
    try:
        saved = run_notebook(path, output=Path(args.output) if args.output else None,
                             timeout=args.timeout)
    except NotebookFailed as exc:
        print(f"\nbytenite-nb notebook: {exc}", file=sys.stderr)
        return 1
    print(f"\nAll cells ran. Executed notebook saved to {saved}")
    return 0


def add_parsers(sub: Any) -> None:
    """Add ``serve`` and ``notebook`` to the ``bytenite-nb`` subcommands ``sub``."""
    serve = sub.add_parser("serve", help="run ByteNite Local (the Customer API, locally)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="interface to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8765, help="port (0: a free one)")
    serve.add_argument("--data-dir", help="where jobs, logs and results live "
                                          "(default: the user data dir of bytenite-nb)")
    serve.add_argument("--workers", type=int, help="parallel task processes (default: CPUs)")
    serve.add_argument("--api-key", action="append", metavar="KEY",
                       help="accept this API key (repeatable; default: "
                            "$BYTENITE_LOCAL_API_KEYS, else a generated key kept in the data dir)")
    serve.add_argument("--apps", action="append", metavar="DIR",
                       help="also load app/engine/template folders from DIR (repeatable)")
    serve.add_argument("--preload", action="append", metavar="MODULE",
                       help="import MODULE once in the fork servers so every task starts with "
                            "it loaded, e.g. numpy or pandas (repeatable or comma-separated; "
                            "the standard-library modules an app imports are preloaded "
                            "automatically)")
    serve.add_argument("--executor", choices=("local", "dask"), default="local",
                       help="where app tasks run: local processes (default) or a "
                            "dask.distributed cluster (needs --scheduler and the 'dask' extra)")
    serve.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="the dask scheduler's address (with --executor dask); it must "
                            "answer at start-up")
    serve.add_argument("--scheduler-timeout", type=float, metavar="SECONDS",
                       help="how long to wait for the dask scheduler at start-up, and how "
                            "long tasks wait for it when it stops answering (default 10)")
    serve.add_argument("--worker-timeout", type=float, metavar="SECONDS",
                       help="with --executor dask: how long a task waits while no dask worker "
                            "is connected before it fails, and its job with it (default 60)")
    serve.add_argument("--token-ttl", type=float, help="access token lifetime in seconds")
    serve.add_argument("--heartbeat-interval", type=float,
                       help="seconds between /events heartbeats")
    serve.add_argument("--idle-timeout", type=float, metavar="SECONDS",
                       help="stop by itself after SECONDS without requests (an open /events "
                            "stream counts as one) or running jobs (default, or 0: never)")
    serve.add_argument("--ready-file", help=argparse.SUPPRESS)
    serve.set_defaults(func=_serve)
    notebook = sub.add_parser("notebook", help="run a notebook end to end, echoing its outputs")
    notebook.add_argument("path", help="the .ipynb to run")
    notebook.add_argument("--output", help="where to save the executed copy "
                                           "(default: NAME.executed.ipynb beside it)")
    notebook.add_argument("--timeout", type=float, default=600, help="seconds per cell")
    notebook.set_defaults(func=_notebook)
