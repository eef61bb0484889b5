"""``bytenite-nb serve`` runs ByteNite Local; ``bytenite-nb notebook PATH`` runs a notebook end
to end (``make quickstart`` uses it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _serve(args: argparse.Namespace) -> int:
    import os

    from bytenite_nb.local import ServerStartError, serve
    from bytenite_nb.server.private import PRIVATE_UMASK

    # This process is the server alone: everything it (and every task) creates is private.
    os.umask(PRIVATE_UMASK)
    from bytenite_nb.server.config import ServerConfig, api_keys_from_env, default_data_dir
    from bytenite_nb.server.execution.executors import ExecutorError
    from bytenite_nb.server.execution.executors.setup import describe_executor
    from bytenite_nb.server.execution.resources import format_bytes

    keys = tuple(args.api_key or ()) or api_keys_from_env()
    kwargs: dict[str, Any] = {
        "data_dir": Path(args.data_dir) if args.data_dir else default_data_dir(),
        "host": args.host, "port": args.port, "api_keys": keys,
        "apps_dirs": tuple(Path(p) for p in args.apps or ()), "executor": args.executor,
        "scheduler": args.scheduler, "preload": tuple(args.preload or ()),
        "app_envs": not args.no_app_envs, "env_installer": args.env_installer,
        "ignore_requirements": args.ignore_requirements,
        "task_memory_limit": args.task_memory_limit, "pass_env": tuple(args.pass_env or ()),
    }
    if args.envs_dir:
        kwargs["envs_dir"] = Path(args.envs_dir)
    kwargs["deny_private_sources"] = args.deny_private_sources
    for name in ("workers", "token_ttl", "heartbeat_interval", "scheduler_timeout",
                 "worker_timeout", "idle_timeout", "max_log_lines", "max_request_bytes"):
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
        print(f"  app environments: {_describe_envs(config)}", flush=True)
        if config.task_memory_limit:
            print(f"  task memory limit: {format_bytes(config.task_memory_limit)}", flush=True)
        if config.idle_timeout:
            print(f"  stops after {config.idle_timeout:g} s idle (--idle-timeout)", flush=True)
        if config.deny_private_sources:
            print("  url data sources: public addresses only (--deny-private-sources)",
                  flush=True)
        if config.host not in ("127.0.0.1", "localhost", "::1"):
            hint = "" if config.deny_private_sources else (
                " (add --deny-private-sources so url data sources cannot reach into "
                "this machine or its network; see SECURITY.md)")
            print(f"  warning: listening on {config.host}: reachable from other "
                  f"machines{hint}", flush=True)
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


def _describe_envs(config: Any) -> str:
    if not config.app_envs:
        return "off (--no-app-envs): every app runs in this Python"
    return f"in {config.envs_dir} (installer: {config.env_installer})"


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
    serve.add_argument("--no-app-envs", action="store_true",
                       help="run every app in this Python, ignoring the requirements.txt of "
                            "app folders (default: one environment per requirement set)")
    serve.add_argument("--envs-dir", metavar="DIR",
                       help="where app environments are built (default: "
                            "$BYTENITE_LOCAL_ENVS_DIR, else DATA_DIR/envs)")
    serve.add_argument("--env-installer", choices=("auto", "uv", "pip"), default="auto",
                       help="what builds app environments (default auto: uv when installed, "
                            "else venv + pip)")
    serve.add_argument("--ignore-requirements", action="store_true",
                       help="run engines whose device_requirements (min_cpu, min_memory, gpu) "
                            "this machine does not meet, with a warning in the job's log")
    serve.add_argument("--task-memory-limit", metavar="SIZE",
                       help="cap the memory of every task process, e.g. 512M or 4G (the task "
                            "fails with 'exceeded its memory limit')")
    serve.add_argument("--pass-env", action="append", metavar="NAME",
                       help="also give tasks this host variable (repeatable; globs such as "
                            "'PLAYWRIGHT_*' allowed)")
    serve.add_argument("--max-log-lines", type=int, metavar="N",
                       help="output lines kept per job: the first N/2 and the last N/2, "
                            "with one line saying how many were dropped (default 100000)")
    serve.add_argument("--max-request-bytes", metavar="SIZE",
                       help="largest request body a JSON route reads, e.g. 4M; larger ones "
                            "get a 413 (default 1M; uploads have their own cap)")
    serve.add_argument("--deny-private-sources", action="store_true",
                       help="refuse url data sources on loopback, link-local and private "
                            "addresses (checked after resolving and on every redirect): for "
                            "a server reachable from other machines")
    serve.add_argument("--ready-file", help=argparse.SUPPRESS)
    serve.set_defaults(func=_serve)
    notebook = sub.add_parser("notebook", help="run a notebook end to end, echoing its outputs")
    notebook.add_argument("path", help="the .ipynb to run")
    notebook.add_argument("--output", help="where to save the executed copy "
                                           "(default: NAME.executed.ipynb beside it)")
    notebook.add_argument("--timeout", type=float, default=600, help="seconds per cell")
    notebook.set_defaults(func=_notebook)
