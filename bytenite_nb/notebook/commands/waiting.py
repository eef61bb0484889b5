"""``--wait``: block until a job ends, show progress only when it takes a while, and turn
Ctrl-C into an abort of the remote job (unless ``--keep-running``).

The quiet first phase polls the job for ``progress_after`` seconds; if it is still running
then, the presenter shows a progress view (:meth:`JobDisplay.progress
<bytenite_nb.notebook.presenter.JobDisplay.progress>`) and we block on that view's feed until
the job ends. The view is then retired to a one-line note, because the cell's return value
shows the job once more, in its final state. How anything is shown is the presenter's
business; this module only decides when to wait and what a Ctrl-C means.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from IPython.core.error import UsageError

from bytenite_nb.notebook.commands.errors import friendly_error, is_user_error

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api.jobs import Job
    from bytenite_nb.notebook.commands.context import Context
    from bytenite_nb.notebook.feed import JobFeed

__all__ = ["interrupted", "wait_for"]


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


def _block(job: Job, feed: JobFeed) -> Job:
    """Block until ``feed`` has seen ``job`` end; returns the job refreshed.

    Like ``Job.wait()``, but a Ctrl-C leaves at once: the feed's watcher is told to stop
    without waiting for its thread (which may sit in a stream read until the next heartbeat),
    so the abort reaches the server without delay. Raises ``JobFailedError`` for a failed job.
    """
    from bytenite_nb.api.errors import JobFailedError

    try:
        while not feed.ended.wait(0.2) and feed.following:
            pass
    except BaseException:
        feed.close(timeout=0)
        raise
    if not feed.ended.is_set() and feed.error is not None:
        raise feed.error
    job.refresh()
    if job.state.name == "FAILED":
        raise JobFailedError(job, job.error_log_lines())
    return job


def wait_for(ctx: Context, job: Job) -> Job:
    """Block until ``job`` ends; raises ``UsageError`` on Ctrl-C, failure is left to the caller.

    Returns the refreshed job. ``JobFailedError`` propagates (the caller maps it to one line).
    """
    from bytenite_nb.notebook.feed import JobFeed
    from bytenite_nb.notebook.presenter import QUIET_INTERVAL, JobDisplay

    progress_after = float(ctx.option("progress_after"))
    interval = float(ctx.magics.poll_interval)
    started = time.monotonic()
    shown: JobDisplay | None = None
    feed: JobFeed | None = None
    try:
        if progress_after >= 0 and not _quietly_finished(job, progress_after, interval):
            shown = JobDisplay.progress(job, ip=ctx.magics.shell,
                                        rich=ctx.magics.formatters_registered,
                                        poll_interval=interval)
            feed = shown.feed
        if feed is None:  # nothing shown: follow the job quietly
            feed = JobFeed(job, interval=QUIET_INTERVAL, poll_interval=interval).start()
        # Also for a job that already ended: raises JobFailedError for a failed one.
        return _block(job, feed)
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
        if shown is not None:
            shown.retire(f"(waited {time.monotonic() - started:.0f} s for job {job.id})")
        elif feed is not None:
            feed.close()


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
        f"Interrupted: aborted job {job.id} on the server (now {job.status}). "
        "Add --keep-running to leave a job running when you interrupt the wait."
    )
