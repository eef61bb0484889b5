"""Verbs that answer with a DataFrame: ``jobs``, ``logs``, ``results``, ``templates``.

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
    frame = frames.jobs_df(listing)
    from bytenite_nb.notebook.completion import state_for

    state_for(ctx.magics).saw_jobs(frame.index)  # Tab offers these ids next
    return deliver(ctx, frame, "jobs")


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
    from bytenite_nb.notebook.completion import state_for

    listing = list(ctx.client().templates())
    state_for(ctx.magics).templates.put(listing)  # Tab offers these ids at once
    return deliver(ctx, frames.templates_df(listing), "templates")


def template(ctx: Context) -> Any:
    """``%bytenite template ID``: the template describing itself (engines, params, an
    example cell); ``-o VAR`` stores the ``Template``."""
    from IPython.core.error import UsageError

    from bytenite_nb.api.errors import NotFoundError
    from bytenite_nb.notebook.completion import state_for
    from bytenite_nb.notebook.grammar import suggest

    template_id = ctx.resolve(ctx.command.options["template"], "TEMPLATE")
    template_id = getattr(template_id, "id", template_id)
    if not isinstance(template_id, str) or not template_id.strip():
        raise UsageError(f"%bytenite template: expected a template id, got "
                         f"{type(template_id).__name__}")
    client = ctx.client()
    try:
        found = client.template(template_id.strip())
    except NotFoundError:
        listing = list(client.templates())
        state_for(ctx.magics).templates.put(listing)
        known = [t.id for t in listing]
        raise UsageError(
            f"%bytenite template: no template {template_id!r} on this server."
            f"{suggest(template_id, known)} `%bytenite templates` lists them."
        ) from None
    out = ctx.command.options.get("out")
    if out:
        ctx.bind(found, out)
        print(f"Stored template {found.id} in `{out}`.")
        return None
    return found
