"""JobMonitor: the live progress card for one ByteNite job (anywidget).

The monitor is one renderer of a :class:`~bytenite_nb.notebook.feed.JobFeed`: the feed follows
the job (the client's ``JobWatcher`` thread), throttles the snapshots to at most ten a second
and folds each into the view state; the monitor turns each state into trait values inside
``hold_sync``, so each flush is one comm message. Nothing here prints or displays from a
thread. Where the card is shown and how it is replaced by the outcome when the job ends is the
presenter's business (``bytenite_nb.notebook.presenter``), not the widget's.

Front-end actions arrive as custom messages (``{"type": "abort"}``, ``{"type": "logs"}``,
``{"type": "timeline"}`` once the job has ended) on the kernel's main thread, which is free
because cells do not block while a job runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets as t

from bytenite_nb.notebook.feed import JobFeed
from bytenite_nb.notebook.widgets._assets import css_source, esm_source
from bytenite_nb.notebook.widgets._view import (
    MonitorState,
    render_html,
    render_text,
    static_bundle,
)
from bytenite_nb.notebook.widgets.throttle import Throttle

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api.jobs import Job

log = logging.getLogger(__name__)

#: Default minimum seconds between two comm messages of one monitor (10 updates/s).
UPDATE_INTERVAL = 0.1
#: Rows of logs sent to the browser by the Logs button (the DataFrame keeps them all).
LOGS_HTML_ROWS = 2000


class JobMonitor(anywidget.AnyWidget):
    """Live view of one job: stages, task bar and grid, elapsed time, log tail, Abort, Logs.

    ``JobMonitor(job)`` starts following the job at once (``watch=False`` to feed it yourself
    through :meth:`update`). It is what IPython shows for any ``bytenite_nb.Job`` once
    ``%load_ext bytenite_nb`` has run.
    """

    _esm = esm_source("monitor.js")
    _css = css_source()

    job_id = t.Unicode("").tag(sync=True)
    name = t.Unicode("").tag(sync=True)
    template_id = t.Unicode("").tag(sync=True)
    #: The job's status word (``running``, ``complete``, ``aborted``...).
    state = t.Unicode("unknown").tag(sync=True)
    stage = t.Unicode("queued").tag(sync=True)
    failed_at = t.Unicode("").tag(sync=True)
    tone = t.Unicode("active").tag(sync=True)
    counted = t.Bool(False).tag(sync=True)
    done = t.Int(0).tag(sync=True)
    running = t.Int(0).tag(sync=True)
    failed = t.Int(0).tag(sync=True)
    total = t.Int(0).tag(sync=True)
    started_ms = t.Float(0.0).tag(sync=True)
    ended_ms = t.Float(0.0).tag(sync=True)
    elapsed = t.Float(0.0).tag(sync=True)
    #: One character per task (q queued, r running, y retrying, d done, f failed, c cancelled).
    grid = t.Unicode("").tag(sync=True)
    logs = t.List(t.Unicode()).tag(sync=True)
    error_message = t.Unicode("").tag(sync=True)
    task_error = t.Unicode("").tag(sync=True)
    warnings = t.List(t.Unicode()).tag(sync=True)
    summary = t.Unicode("").tag(sync=True)
    #: Smoothed tasks per second (0: unknown) and seconds left (-1: unknown), from the kernel;
    #: the browser keeps its own meter on ``done``/``failed`` and shows these until it has one.
    rate = t.Float(0.0).tag(sync=True)
    eta = t.Float(-1.0).tag(sync=True)
    #: What a COMPLETE job produced (files, size, rows when counted).
    outputs = t.Unicode("").tag(sync=True)
    abortable = t.Bool(True).tag(sync=True)
    abort_requested = t.Bool(False).tag(sync=True)
    notice = t.Unicode("").tag(sync=True)

    def __init__(
        self,
        job: Job | None = None,
        *,
        watch: bool = True,
        interval: float = UPDATE_INTERVAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._job = job
        self.logs_frame: Any = None
        #: The feed this monitor renders: the job's one true view state.
        self.feed = JobFeed(job, job_id=self.job_id, name=self.name,
                            template_id=self.template_id, interval=interval)
        self._view = self.feed.state
        self.feed.render_with(self._show)
        self.feed.on_problem(self._stopped_following)
        self.on_msg(self._on_front_end_msg)
        if job is not None:
            self._show(self.feed.state)
            if watch:
                self.start()

    # -- feeding ------------------------------------------------------------------------------

    @property
    def job(self) -> Job | None:
        """The job this monitor follows."""
        return self._job

    @property
    def view_state(self) -> MonitorState:
        """The last applied view state."""
        return self._view

    @property
    def ended(self) -> threading.Event:
        """Set once the terminal state has been applied."""
        return self.feed.ended

    @property
    def throttle(self) -> Throttle[Any]:
        """The throttle between the feeding thread and the traits (for tests/benchmarks)."""
        return self.feed.throttle

    def start(self) -> None:
        """Follow the job through the client's ``JobWatcher`` (events, polling fallback)."""
        self.feed.start()

    def stop(self) -> None:
        """Stop following the job (the widget keeps its last state)."""
        self.feed.stop()

    def update(self, snapshot: Any) -> None:
        """Feed one ``JobSnapshot``; safe from any thread, cheap enough for every event."""
        self.feed.submit(snapshot)

    def on_end(self, callback: Callable[[MonitorState], None]) -> None:
        """Call ``callback(final_state)`` once the job has ended (at once if it already has)."""
        self.feed.on_end(callback)

    def _stopped_following(self, error: BaseException) -> None:
        # The watcher gave up (e.g. the job was deleted): say so instead of looking stuck.
        self.notice = f"stopped following this job: {error}"

    def _show(self, view: MonitorState) -> None:
        """Render one view state as trait values: one comm message, changed traits only."""
        self._view = view
        values = view.traits()
        if view.terminal:
            values["abort_requested"] = False
            values["notice"] = ""
        with self.hold_sync():
            for name, value in values.items():
                if getattr(self, name) != value:
                    setattr(self, name, value)

    # -- front-end actions --------------------------------------------------------------------

    def _on_front_end_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "abort":
            self.abort()
        elif kind == "logs":
            self.send_logs()
        elif kind == "timeline":
            self.send_timeline()

    def abort(self) -> None:
        """Abort the job on the server (what the Abort button does)."""
        if self._job is None or self._view.terminal:
            return
        self.abort_requested = True
        self.notice = "abort requested…"
        try:
            self._job.abort()
        except Exception as exc:  # show it on the card: a swallowed error is a lie
            self.abort_requested = False
            self.notice = f"abort failed: {exc}"
            return
        if not self.ended.is_set():  # the end state may already have arrived meanwhile
            self.notice = "abort requested; waiting for the server…"

    def _answer(self, kind: str, failure: str, build: Callable[[Job], dict[str, Any]]) -> None:
        """Send the card ``{"type": kind, **build(job)}``, or an error saying ``failure``."""
        if self._job is None:
            self.send({"type": "error", "message": "no job attached"})
            return
        try:
            payload = build(self._job)
        except Exception as exc:
            self.send({"type": "error", "message": f"{failure}: {exc}"})
            return
        self.send({"type": kind, **payload})

    def send_logs(self) -> None:
        """Fetch the full logs as a DataFrame, keep it in ``logs_frame``, show it in the card."""

        def build(job: Job) -> dict[str, Any]:
            frame = self.logs_frame = job.logs_df()
            shown = frame.tail(LOGS_HTML_ROWS)
            note = f"{len(frame)} log lines" + (
                f" (last {LOGS_HTML_ROWS} shown; all of them: job.logs_df())"
                if len(frame) > LOGS_HTML_ROWS
                else ""
            )
            return {"html": shown.to_html(max_cols=12, border=0), "note": note}

        self._answer("logs", "could not fetch logs", build)

    def send_timeline(self) -> None:
        """Draw the finished job's task timeline (``job.timeline()``) in the card."""

        def build(job: Job) -> dict[str, Any]:
            timeline = job.timeline()
            return {"html": timeline._repr_html_(), "note": timeline.summary()}

        self._answer("timeline", "could not draw the timeline", build)

    # -- reprs ----------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return render_text(self._view)

    def _repr_html_(self) -> str:
        return render_html(self._view)

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        # Frontends without a widget manager (nbconvert, GitHub, VS Code offline) show these.
        data["text/plain"] = render_text(self._view)
        data["text/html"] = render_html(self._view)
        return data, metadata

    def static_bundle(self) -> dict[str, str]:
        """``text/plain`` + ``text/html`` of the current state, without the widget view."""
        return static_bundle(self._view)

    def close(self) -> None:
        """Stop following the job and close the widget."""
        self.feed.close()
        super().close()
