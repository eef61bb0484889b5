"""Verbs that start or touch one job: ``run``, the ``%%bytenite`` cell, ``attach``, ``job``,
``status``, ``abort``, ``delete``.

Starting a job is create → (upload) → run. If anything after the create fails, including a
Ctrl-C, the job is aborted (a job that never started is deleted) and the error says so, so no
verb leaves a draft or a job nobody knows about behind.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from bytenite_nb.notebook.commands.errors import friendly_error, is_user_error
from bytenite_nb.notebook.commands.waiting import interrupted, wait_for
from bytenite_nb.notebook.ledger import normalize_base_url
from bytenite_nb.notebook.spec import JobSpec, spec_from_cell, spec_from_run_options

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api.client import Client
    from bytenite_nb.api.jobs import Job
    from bytenite_nb.notebook.commands.context import Context

__all__ = ["JobStatus", "abort", "attach", "cell", "delete", "job", "load_results", "run",
           "status"]


def _discard(client: Client, job_id: str) -> str:
    """Abort (or delete) a job we created but could not start; returns what happened."""
    try:
        client.abort_job(job_id)
    except LookupError:  # 404: the create never reached the server
        return f"no job was created (id {job_id} does not exist)"
    except Exception:  # fall back to delete, then report
        try:
            client.delete_job(job_id)
        except Exception:
            return (f"job {job_id} could not be cleaned up; remove it with "
                    f"`%bytenite delete {job_id}`")
        return f"the draft job {job_id} was deleted"
    try:
        state = client.job(job_id).status
    except LookupError:
        return f"the draft job {job_id} was deleted"
    except Exception:
        return f"job {job_id} was aborted"
    return f"job {job_id} was aborted (now {state})"


def _checked(ctx: Context, client: Client, spec: JobSpec) -> dict[str, Any] | None:
    """Check ``spec`` against its template before anything is created (the template exists,
    input data is given where needed, every param is one its section takes; see
    ``bytenite_nb.api.checks``); returns the params to send, routed by section."""
    from bytenite_nb.api import checks

    phrasing = checks.CELL if ctx.command.verb == "cell" else checks.MAGIC
    template = checks.find_template(client, spec.template_id)
    checks.check_input(template, spec.data_source, uploading=spec.upload is not None,
                       phrasing=phrasing)
    return checks.route_params(template, spec.params, spec.loose_params, phrasing=phrasing)


def submit(ctx: Context, spec: JobSpec, names: tuple[str | None, ...], *,
           wait: bool = False) -> Job:
    """Check, create, upload, run; bind and record the job; wait if asked (``--wait``, the
    configuration, or ``wait``). Returns the Job."""
    from bytenite_nb.api.errors import APIConnectionError

    client = ctx.client()
    params = _checked(ctx, client, spec)
    # Our own id: if the create is interrupted or its answer is lost, we can still find (and
    # remove) the job it may have made.
    job_id = str(uuid.uuid4())
    try:
        created = client.create_job(
            spec.template_id, name=spec.name, description=spec.description,
            data_source=spec.data_source, data_destination=spec.data_destination,
            params=params, config=spec.config, job_id=job_id,
        )
    except (KeyboardInterrupt, APIConnectionError) as exc:
        note = _discard(client, job_id)
        if isinstance(exc, KeyboardInterrupt):
            raise UsageError(f"Interrupted while creating the job; {note}.") from None
        raise friendly_error(exc, base_url=ctx.base_url(),
                             secrets=ctx.magics.connection.secrets(), note=note) from None
    try:
        if spec.upload is not None:
            client.upload(created.id, spec.upload)
        client.run_job(created.id)
    except BaseException as exc:  # also Ctrl-C: never leave the draft behind
        note = _discard(client, created.id)
        if isinstance(exc, KeyboardInterrupt):
            raise UsageError(f"Interrupted while starting job {created.id}; {note}.") from None
        if is_user_error(exc):
            raise friendly_error(exc, base_url=ctx.base_url(),
                                 secrets=ctx.magics.connection.secrets(), note=note) from None
        if hasattr(exc, "add_note"):
            exc.add_note(note)
        raise
    job = created
    try:
        try:
            job.refresh()
        except Exception as exc:  # it started; a stale state is no reason to fail
            if not is_user_error(exc):
                raise
        ctx.ledger.record(job.id, _client_url(client, ctx), template_id=spec.template_id,
                          name=spec.name)
        # Bound before waiting, so a job that fails or is interrupted is still at hand.
        ctx.bind(job, *names)
        if wait or ctx.option("wait"):
            wait_for(ctx, job)
    except KeyboardInterrupt:  # between the start and the wait: same rule as while waiting
        raise interrupted(ctx, job) from None
    return job


def _client_url(client: Client, ctx: Context) -> str:
    url = getattr(client, "base_url", None) or ctx.base_url() or ""
    return normalize_base_url(str(url))


def run(ctx: Context) -> Any:
    """``%bytenite run TEMPLATE [--source ...] [--param k=v ...] [--wait] [--load] [-o VAR]``."""
    spec = spec_from_run_options(ctx.command.options, ctx.user_ns)
    names = (ctx.command.options.get("out"),)
    if ctx.command.options.get("dry_run"):
        body = spec.to_wire()
        ctx.bind(body, *names)
        return body
    if ctx.command.options.get("load"):
        return load_results(ctx, submit(ctx, spec, (), wait=True), names)
    return submit(ctx, spec, names)


def cell(ctx: Context) -> Any:
    """``%%bytenite [VAR] [--wait]`` with the job spec (YAML or JSON) as the cell body."""
    options = ctx.command.options
    overrides = {
        "templateId": ctx.resolve(options.get("template"), "--template"),
        "name": ctx.resolve(options.get("name"), "--name"),
    }
    spec = spec_from_cell(ctx.cell or "", ctx.user_ns, overrides)
    names = (options.get("var"), options.get("out"))
    if options.get("dry_run"):
        body = spec.to_wire()
        ctx.bind(body, *names)
        return body
    if options.get("load"):
        return load_results(ctx, submit(ctx, spec, (), wait=True), names)
    return submit(ctx, spec, names)


def load_results(ctx: Context, job: Job, names: tuple[str | None, ...]) -> Any:
    """``--load``: the finished job's results instead of the job.

    One result (or ``--concat``): a DataFrame (or, for a text result, a ``str``: see
    ``docs/results.md``); several: a dict of them. The job stays at hand: ``attrs["job_id"]``
    on every frame, and the ledger (``%bytenite attach --last``). With a variable the results
    are stored there and the cell shows a preview (shape and head); without one they are the
    cell's value.
    """
    from bytenite_nb.notebook.preview import ResultsPreview

    loaded = job.load_results(concat=bool(ctx.command.options.get("concat")))
    frames = loaded.values() if isinstance(loaded, dict) else [loaded]
    for frame in frames:
        if hasattr(frame, "attrs"):  # (a text result is a str)
            frame.attrs.update(job_id=job.id, job_name=job.name or "")
    if isinstance(loaded, dict) and len(loaded) == 1:
        loaded = next(iter(loaded.values()))
    bound = [n for n in names if n]
    ctx.bind(loaded, *bound)
    if not bound:
        return loaded
    return ResultsPreview(loaded, job, bound)


def attach(ctx: Context) -> Any:
    """``%bytenite attach JOB_ID | --last [--wait]``: a handle on an existing job."""
    options = ctx.command.options
    if options.get("job_id") and options.get("last"):
        raise UsageError("%bytenite attach: give a JOB_ID or --last, not both")
    if options.get("job_id"):
        job = ctx.job()
    elif options.get("last"):
        client = ctx.client()
        url = _client_url(client, ctx)
        entry = ctx.ledger.last(url)
        if entry is None:
            raise UsageError(
                f"%bytenite attach --last: no job started from this machine on {url} yet "
                f"(ledger: {ctx.ledger.path}). List jobs with `%bytenite jobs`."
            )
        job = client.job(entry.job_id)
    else:
        raise UsageError(
            "%bytenite attach: which job? Give a JOB_ID, or --last for the last job you "
            "started here"
        )
    ctx.bind(job, options.get("out"))
    if ctx.option("wait"):
        wait_for(ctx, job)
    return job


def job(ctx: Context) -> Any:
    """``%bytenite job JOB_ID [-o VAR]``: the handle (displayed as its monitor)."""
    handle = ctx.job()
    ctx.bind(handle, ctx.command.options.get("out"))
    return handle


@dataclass(frozen=True)
class JobStatus:
    """One job's state, as ``%bytenite status`` shows it."""

    job_id: str
    state: str
    name: str | None = None
    num_chunks: int | None = None
    duration: dt.timedelta | None = None
    error_message: str | None = None

    def __str__(self) -> str:
        parts = [f"job {self.job_id}"]
        if self.name:
            parts.append(repr(self.name))
        parts.append(self.state)
        if self.num_chunks is not None:
            parts.append(f"{self.num_chunks} chunks")
        if self.duration is not None:
            parts.append(f"{self.duration.total_seconds():.1f} s")
        text = " · ".join(parts)
        if self.error_message:
            text += f" · error: {self.error_message}"
        return text

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


def status(ctx: Context) -> JobStatus:
    """``%bytenite status JOB_ID``: one line."""
    handle = ctx.job()
    return JobStatus(
        job_id=handle.id, state=handle.status, name=handle.name,
        num_chunks=handle.num_chunks, duration=handle.duration,
        error_message=handle.error_message,
    )


def abort(ctx: Context) -> None:
    """``%bytenite abort JOB_ID``: the Job handles you hold say ``aborted`` at once."""
    from bytenite_nb.api.jobs import mark_deleted

    client = ctx.client()
    job_id = ctx.job_id()
    client.abort_job(job_id)
    try:
        state = client.job(job_id).status  # also brings every live handle of it up to date
    except LookupError:
        mark_deleted(client, job_id)
        print(f"Job {job_id} had not started, so it was deleted.")
        return
    print(f"Aborted job {job_id} (now {state}).")


def delete(ctx: Context) -> None:
    """``%bytenite delete JOB_ID`` (the Job handles you hold then say ``deleted``)."""
    job_id = ctx.job_id()
    ctx.client().delete_job(job_id)
    print(f"Deleted job {job_id}.")
