"""Verbs that answer with a DataFrame: ``jobs``, ``logs``, ``results``, ``templates`` (and
``template``, one template as text).

With ``-o VAR`` the frame is stored and a one-line note printed instead of displaying it
(BigQuery's destination-variable contract: big results are not dumped into the notebook).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bytenite_nb import wire

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.notebook.commands.context import Context

__all__ = ["deliver", "jobs", "logs", "results", "template", "templates"]


def deliver(ctx: Context, value: Any, what: str) -> Any:
    """``value`` to display, or (with ``-o VAR``) stored in ``VAR`` with a one-line note."""
    out = ctx.command.options.get("out")
    if not out:
        return value
    ctx.bind(value, out)
    size = f"{len(value)} " if hasattr(value, "__len__") else ""
    print(f"Stored {size}{what} in `{out}`.")
    return None


def jobs(ctx: Context) -> Any:
    """``%bytenite jobs [--state S] [--template T] [--limit N]``, in the server's order
    (newest first on ByteNite Local)."""
    from bytenite_nb import frames

    options = ctx.command.options
    limit = int(ctx.option("limit", "display_limit"))
    listing = ctx.client().jobs(
        state=options.get("state"),
        template_id=ctx.resolve(options.get("template"), "--template"),
        limit=limit or None,
    )
    return deliver(ctx, frames.jobs_df(listing), "jobs")


def _task_id(text: str) -> str:
    text = text.strip()
    return wire.task_id(int(text)) if text.isdigit() else text


def logs(ctx: Context) -> Any:
    """``%bytenite logs JOB_ID [--task T] [--level L] [--limit N]``: oldest first."""
    options = ctx.command.options
    filters: dict[str, Any] = {}
    task = ctx.resolve(options.get("task"), "--task")
    if task is not None:
        filters["task_ids"] = [_task_id(str(task))]
    if options.get("level"):
        floor = wire.LOG_LEVEL_ORDER.index(wire.LogLevel.parse(options["level"]))
        filters["levels"] = list(wire.LOG_LEVEL_ORDER[floor:])
    df = ctx.job().logs_df(**filters)
    limit = int(ctx.option("limit", "display_limit"))
    if limit and len(df) > limit:
        df = df.tail(limit)
    return deliver(ctx, df, "log lines")


def results(ctx: Context) -> Any:
    """``%bytenite results JOB_ID [--load [--concat]]``."""
    options = ctx.command.options
    handle = ctx.job()
    if options.get("load"):
        loaded = handle.load_results(concat=bool(options.get("concat")))
        return deliver(ctx, loaded, "result tables")
    return deliver(ctx, handle.results_df(), "result files")


def templates(ctx: Context) -> Any:
    """``%bytenite templates``."""
    from bytenite_nb import frames

    return deliver(ctx, frames.templates_df(list(ctx.client().templates())), "templates")


def template(ctx: Context) -> Any:
    """``%bytenite template ID``: one template's engines and defaults, and the keys of its
    file that the server ignored."""
    import json

    found = ctx.client().template(str(ctx.resolve(ctx.command.options["template"],
                                                  "TEMPLATE")))
    if ctx.command.options.get("out"):
        return deliver(ctx, found, "template")
    print(f"template {found.id}: app {found.app}, partitioner {found.partitioner}, "
          f"assembler {found.assembler}")
    if found.description:
        print(f"  {found.description}")
    for section, value in (found.params or {}).items():
        if value:
            print(f"  params.{section}: {json.dumps(value)}")
    for name, value in (("data source", found.data_source),
                        ("destination", found.data_destination), ("config", found.config)):
        if value:
            print(f"  {name}: {json.dumps(value)}")
    if found.unknown_keys:
        print(f"  unknown keys, ignored: {', '.join(found.unknown_keys)}")
    return None
