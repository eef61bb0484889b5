"""``--wait``: block until a job ends, show progress only when it takes a while, and turn
Ctrl-C into an abort of the remote job (unless ``--keep-running``).

The quiet first phase polls the job for ``progress_after`` seconds; if it is still running
then, a live progress view is displayed (``bytenite_nb.notebook.presenter``) and we wait again.
When the wait ends that view is replaced by a one-line note, because the cell's return value
shows the job once more, as its monitor, in its final state.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from bytenite_nb.notebook.commands.errors import friendly_error, is_user_error

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api.jobs import Job
    from bytenite_nb.notebook.commands.context import Context

__all__ = ["interrupted", "wait_for"]


def _show_progress(ctx: Context, job: Job) -> Any:
    """Show live progress; returns what must be stopped/retired when the wait ends."""
    if not ctx.magics.formatters_registered:
        print(f"Waiting for job {job.id} ({job.state.name}); Ctrl-C aborts it.", flush=True)
        return None
    from bytenite_nb.notebook import presenter as job_display

    shell = ctx.magics.shell
    mode = job_display.display_mode(shell)
    if mode == "widget":
        # The cell's result will show the job's monitor once the wait is over; while blocked,
        # a transient in-place HTML view (retired afterwards) avoids showing two monitors.
        mode = "html"
    return job_display.display_job(job, ip=shell, mode=mode)


def _retire_progress(shown: Any, job: Job, started: float) -> None:
    if shown is None:
        return
    watcher = getattr(shown, "watcher", None)
    if watcher is not None:
        watcher.stop()  # joins the thread: no progress update can land after the note below
    if callable(getattr(shown, "update", None)):
        seconds = time.monotonic() - started
        note = f"(waited {seconds:.0f} s for job {job.id})"
        shown.update({"text/plain": note, "text/html": f"<small>{note}</small>"}, raw=True)


def _quietly_finished(job: Job, seconds: float, interval: float) -> bool:
    """Poll ``job`` for up to ``seconds`` without showing anything; whether it ended.

    Plain polling rather than ``job.wait(timeout=...)``, whose timeout also joins its
    watcher thread (up to a heartbeat's time in a stream read).
    """
    deadline = time.monotonic() + seconds
    step = min(0.1, interval)
    while True:
        job.refresh()
        if job.is_terminal:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(step, remaining))  # short sleeps: Ctrl-C lands between them
        step = min(step * 2, interval)




def _block(job: Job, interval: float) -> Job:
    """Follow ``job`` (events stream, polling as fallback) until it ends; returns it refreshed.

    Like ``Job.wait()``, but a Ctrl-C leaves at once: the watcher is told to stop without
    waiting for its thread (which may sit in a stream read until the next heartbeat), so
    the abort reaches the server without delay. Raises ``JobFailedError`` for a failed job.
    """
    from bytenite_nb.api.errors import JobFailedError

    ended = threading.Event()

    def on_update(snapshot: Any) -> None:  # watcher thread: only hands over a flag
        if getattr(snapshot, "is_terminal", False):
            ended.set()

    watcher = job.watch(on_update, poll_interval=interval)
    try:
        while not ended.wait(0.2) and not watcher.done.is_set():
            pass
    except BaseException:
        watcher.stop(timeout=0)
        raise
    watcher.stop()
    if not ended.is_set() and watcher.error is not None:
        raise watcher.error
    job.refresh()
    if job.state.name == "FAILED":
        raise JobFailedError(job, job.error_log_lines())
    return job


def wait_for(ctx: Context, job: Job) -> Job:
    """Block until ``job`` ends; raises ``UsageError`` on Ctrl-C, failure is left to the caller.

    Returns the refreshed job. ``JobFailedError`` propagates (the caller maps it to one line).
    """
    progress_after = float(ctx.option("progress_after"))
    interval = float(ctx.magics.poll_interval)
    started = time.monotonic()
    handle = None
    try:
        if progress_after >= 0 and not _quietly_finished(job, progress_after, interval):
            handle = _show_progress(ctx, job)
        # Also for a job that already ended: raises JobFailedError for a failed one.
        return _block(job, interval)
    except KeyboardInterrupt:
        raise interrupted(ctx, job) from None
    except BaseException as exc:
        from bytenite_nb.api.errors import JobFailedError

        if isinstance(exc, JobFailedError) or not is_user_error(exc):
            raise
        # The wait failed (e.g. the server went away), not the job: it is not orphaned, it is
        # in the ledger and can be re-attached.
        raise friendly_error(
            exc, base_url=ctx.base_url(), secrets=ctx.magics.connection.secrets(),
            note=f"stopped waiting; job {job.id} may still be running: "
                 f"`%bytenite attach {job.id} --wait`",
        ) from None
    finally:
        _retire_progress(handle, job, started)


def interrupted(ctx: Context, job: Job) -> UsageError:
    """Handle Ctrl-C on a started job: abort it unless --keep-running / abort_on_interrupt
    say otherwise. Returns the one-line error to raise."""
    keep_running = (bool(ctx.command.options.get("keep_running"))
                    or not ctx.magics.abort_on_interrupt)
    if keep_running:
        return UsageError(
            f"Interrupted: stopped waiting; job {job.id} keeps running (--keep-running). "
            f"Re-attach with `%bytenite attach {job.id}`, stop it with `%bytenite abort {job.id}`."
        )
    try:
        job.abort()
    except KeyboardInterrupt:
        return UsageError(
            f"Interrupted twice: the abort of job {job.id} may not have reached the server; "
            f"check with `%bytenite status {job.id}`."
        )
    except Exception as exc:  # reported to the user as one line
        if not is_user_error(exc):
            raise
        return friendly_error(
            exc, base_url=ctx.base_url(), secrets=ctx.magics.connection.secrets(),
            note=f"interrupted, but aborting job {job.id} failed; "
                 f"retry with `%bytenite abort {job.id}`",
        )
    return UsageError(
        f"Interrupted: aborted job {job.id} on the server (now {job.state.name}). "
        "Add --keep-running to leave a job running when you interrupt the wait."
    )
