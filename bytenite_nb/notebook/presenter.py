"""How a job is shown in a notebook, from its first output to its final outcome.

This module is the one place that decides how a ``bytenite_nb.Job`` is displayed and how that
display ends. A :class:`JobDisplay` is one output of one job: it chooses the mode, draws the
first view with a display id, follows the job through one
:class:`~bytenite_nb.notebook.feed.JobFeed` (the job's one true view state, which every view
of the display is drawn from), and when the job ends replaces its output by the outcome in
one place, :meth:`JobDisplay._finish`, drawn by one function, :func:`outcome_bundle`.

Modes (:func:`display_mode`, chosen once per display):

``widget``  (Jupyter kernels) the :class:`JobMonitor` widget. Its bundle also carries
            ``text/plain`` and ``text/html``; when the job ends the output is replaced, through
            its display id, by the outcome, so a saved, reloaded or nbconvert'd notebook shows
            the outcome instead of "model not found".
``html``    (``BYTENITE_DISPLAY=html``: frontends without a widget manager) an HTML + text
            display updated in place through its display id, at most twice a second, then
            replaced by the outcome.
``text``    (terminal IPython) the text line, once: terminals print every update anew, and
            nothing is printed from threads.
``log``     (``BYTENITE_NONINTERACTIVE=1``: papermill, nbconvert, CI) the text line, then
            plain ``logging`` lines on state changes and every ``LOG_PROGRESS_EVERY`` seconds,
            and the outcome line when the job ends; the text line is replaced by the
            outcome too, so the saved notebook shows how the job ended.
``line``    (progress of ``--wait`` when the Job formatter is not registered) one printed
            "Waiting for job ..." line.

A display has one of two roles. A *result* (:meth:`JobDisplay.result`, what IPython's
formatter shows for any Job) ends by showing the outcome. A *progress* display
(:meth:`JobDisplay.progress`, while ``--wait`` blocks) is transient: the wait ends it with
:meth:`JobDisplay.retire`, which stops it and replaces it by a one-line note, because the
cell's result shows the job once more. A progress display never uses the widget: the result
does, right after, and two monitors of one job would be one too many.

The flow of ``%bytenite run TEMPLATE --wait`` through the notebook layer::

    ByteniteMagics.bytenite -> grammar.parse_line -> VERBS["run"] -> commands.jobs.run
      -> commands.jobs.submit (create, upload, run, bind, record)
      -> commands.waiting.wait_for: polls quietly for ``progress_after`` seconds; if the job
         still runs, JobDisplay.progress(job) draws the progress view and follows the job;
         wait_for blocks on that display's feed (Ctrl-C: aborts the job); finally
         JobDisplay.retire(note) replaces the progress view by "(waited N s for job ID)".
    the magic returns the Job -> IPython's formatter -> show_job -> JobDisplay.result: the job
    has ended, so the feed's first poll folds the terminal state and _finish replaces the
    first view by the outcome.

Without ``--wait``, ``submit`` returns the Job at once and the formatter's
JobDisplay.result shows the live view until the job ends, then _finish replaces it by the
outcome (``widget``, ``html``) or logs the outcome line (``log``).

Threads: renderers and the end hook run on the watcher's or the throttle's thread and never
``print``. The one place a thread publishes (a display update) first sets the thread's parent
header to the cell that created the display, so the update is routed to that cell and not to
whichever cell happens to be running.

The outcome reaches saved notebooks too. JupyterLab applies a display update whatever cell it
is addressed to, but nbclient (nbconvert ``--execute``, papermill, nbval) only reads the
messages of the cell it is running and applies display updates by id from those. So
:meth:`JobDisplay._finish` publishes the outcome to the cell that created the display and,
when another cell has run since, to the latest cell as well; every outcome is published
once more at the start of the next cell that runs (a ``pre_run_cell`` hook), for jobs that
ended while no cell was running; and a cell whose code saw a displayed job end (``Job``
handles are live: ``job.wait()`` updated them) waits at its end (a ``post_run_cell`` hook, at
most ``SETTLE_SECONDS``) for that display's outcome, since the last cell of a notebook has no
next cell. Publishing the same outcome twice changes nothing.
"""

from __future__ import annotations

import html
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, Literal

from bytenite_nb.notebook.feed import JobFeed
from bytenite_nb.notebook.widgets._view import (
    MonitorState,
    pace,
    render_text,
    static_bundle,
)

__all__ = [
    "MODES",
    "JobDisplay",
    "LogReporter",
    "display_mode",
    "outcome_bundle",
    "register_formatters",
    "show_job",
    "unregister_formatters",
]

MODES = ("widget", "html", "text", "log")
#: Seconds between two progress lines in ``log`` mode (state changes are logged at once).
LOG_PROGRESS_EVERY = 10.0
#: Seconds between two updates of the ``html`` fallback.
HTML_UPDATE_INTERVAL = 0.5
#: Seconds between two folds of a feed nothing renders live (a wait without a view).
QUIET_INTERVAL = 0.1
#: Modes whose output is replaced in place through its display id. ``text`` (terminal
#: IPython) is not: a terminal prints every update anew; nor is ``log`` outside a kernel.
_IN_PLACE = frozenset({"widget", "html", "log"})

progress_log = logging.getLogger("bytenite_nb.progress")

#: A cell's result (ends by showing the outcome) or a ``--wait``'s transient progress view.
Role = Literal["result", "progress"]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def display_mode(ip: Any = None) -> str:
    """The display mode for ``Job`` objects right now (see the module docstring)."""
    if _truthy(os.environ.get("BYTENITE_NONINTERACTIVE")):
        return "log"
    chosen = (os.environ.get("BYTENITE_DISPLAY") or "").strip().lower()
    if chosen in MODES:
        return chosen
    ip = _shell(ip)
    # A Jupyter kernel has a `kernel`; terminal IPython and plain Python do not.
    return "widget" if getattr(ip, "kernel", None) is not None else "text"


def _shell(ip: Any) -> Any:
    if ip is not None:
        return ip
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return None
    return get_ipython()


def outcome_bundle(view: MonitorState, timeline: str = "") -> dict[str, str]:
    """What a job's output becomes when the job ends: ``text/plain`` + static ``text/html``.

    The one rendering of a final outcome: every mode that replaces its output uses it.
    ``timeline`` (the HTML of ``job.timeline()``) is offered under the card, folded, so the
    saved notebook can show how the tasks ran without a kernel.
    """
    bundle = static_bundle(view)
    if timeline:
        bundle["text/html"] = (
            f'<div class="bn-outcome">{bundle["text/html"]}'
            '<details class="bn-timeline-toggle" style="max-width:900px;margin-top:4px">'
            '<summary style="cursor:pointer;font-family:system-ui,sans-serif;font-size:12px">'
            f"task timeline</summary>{timeline}</details></div>")
    return bundle


def _timeline_html(job: Any, view: MonitorState) -> str:
    """The job's timeline for its outcome, or ``""`` (no tasks, or it cannot be drawn)."""
    if not view.total or not hasattr(job, "timeline"):
        return ""
    try:
        return job.timeline()._repr_html_()
    except Exception as exc:  # the outcome matters more than its timeline
        logging.getLogger(__name__).debug("no timeline for job %s: %s", view.job_id, exc)
        return ""


def register_formatters(ip: Any) -> None:
    """Make ``ip`` render every ``bytenite_nb.Job`` through :func:`show_job`, republish
    finished outcomes at the next cell (see the module docstring), and show the progress of
    a job ``job.load_results()`` waits for.

    Registered by name so ``%load_ext`` stays cheap (the client is imported on first use).
    """
    global _SHELL
    formatter = ip.display_formatter.ipython_display_formatter
    formatter.for_type_by_name("bytenite_nb.api.jobs", "Job", lambda job: show_job(job, ip=ip))
    _SHELL = ip
    events = getattr(ip, "events", None)
    if events is not None:
        for name, hook in (("pre_run_cell", _before_cell), ("post_run_cell", _after_cell)):
            with suppress(ValueError):
                events.unregister(name, hook)
            events.register(name, hook)


def unregister_formatters(ip: Any) -> None:
    """Undo :func:`register_formatters` (``%unload_ext``)."""
    formatter = ip.display_formatter.ipython_display_formatter
    with suppress(KeyError):
        formatter.pop("bytenite_nb.api.jobs.Job")
    global _SHELL
    _SHELL = None
    events = getattr(ip, "events", None)
    if events is not None:
        for name, hook in (("pre_run_cell", _before_cell), ("post_run_cell", _after_cell)):
            with suppress(ValueError):
                events.unregister(name, hook)
    try:
        from bytenite_nb.api.jobs import Job, set_wait_view

        formatter.pop(Job, None)
        set_wait_view(None)
    except ImportError:  # pragma: no cover
        pass


@contextmanager
def waiting_view(job: Any, *, ip: Any = None) -> Iterator[None]:
    """Show ``job``'s progress while the block runs (what ``job.load_results()`` shows while
    it waits), then retire it to a one-line note."""
    started = time.monotonic()
    shown = JobDisplay.progress(job, ip=ip)
    try:
        yield
    finally:
        shown.retire(f"(waited {time.monotonic() - started:.0f} s for job {job.id})")


#: Outcomes published since the last cell started, to publish once more in the next one.
_PENDING: list[tuple[Any, dict[str, str]]] = []
_PENDING_LOCK = threading.Lock()


#: The shell the formatters are registered on (the waiting view shows in it).
_SHELL: Any = None


def _before_cell(*_args: Any) -> None:
    """``pre_run_cell``: republish outcomes (below), and once the client is imported, let
    ``job.load_results()`` show the progress of a job it waits for. (Installed here, not
    at ``%load_ext``, which must not import the client.)"""
    jobs = sys.modules.get("bytenite_nb.api.jobs")
    if jobs is not None and getattr(jobs, "_WAIT_VIEW", True) is None and _SHELL is not None:
        shell = _SHELL
        jobs.set_wait_view(lambda job: waiting_view(job, ip=shell))
    _republish_outcomes()


#: Result displays still following their job (to settle at the end of a cell).
_FOLLOWING: weakref.WeakSet[JobDisplay] = weakref.WeakSet()
#: Seconds a cell's end waits for the outcome of a job its code saw end.
SETTLE_SECONDS = 5.0


def _after_cell(*_args: Any) -> None:
    """``post_run_cell``: a display whose job the cell's code saw end (the handles are live:
    ``job.wait()`` or ``load_results()`` updated them) shows its outcome before the cell
    ends, while nbclient still reads this cell's messages: the last cell of an executed
    notebook has no next cell to republish it."""
    for shown in list(_FOLLOWING):
        if shown.ended.is_set():
            _FOLLOWING.discard(shown)
        elif getattr(shown.job, "is_terminal", False):
            shown.ended.wait(SETTLE_SECONDS)


def _republish_outcomes(*_args: Any) -> None:
    """Publish once more, now addressed to the cell starting, every outcome shown since the
    last cell started (nbclient reads that cell's messages)."""
    with _PENDING_LOCK:
        pending = list(_PENDING)
        _PENDING.clear()
    for handle, bundle in pending:
        with suppress(Exception):  # a closed frontend must not break the user's cell
            handle.update(bundle, raw=True)


def show_job(job: Any, *, ip: Any = None, mode: str | None = None) -> JobDisplay:
    """Display ``job`` as a result, in the best way for this frontend (the formatter's entry)."""
    return JobDisplay.result(job, ip=ip, mode=mode)


# ---------------------------------------------------------------------------------------------
# Routing updates published from threads


def _publisher(ip: Any) -> Any:
    return getattr(ip, "display_pub", None) if ip is not None else None


def current_parent(ip: Any) -> dict[str, Any] | None:
    """The parent header of the cell now running (ipykernel), to route later updates."""
    pub = _publisher(ip)
    header = getattr(pub, "parent_header", None)
    return dict(header) if isinstance(header, dict) and header else None


@contextmanager
def as_child_of(ip: Any, parent: dict[str, Any] | None) -> Iterator[None]:
    """Publish from this thread as if from the cell whose header is ``parent``."""
    pub = _publisher(ip)
    setter = getattr(pub, "set_thread_parent", None)
    if parent is None or setter is None:
        yield
        return
    token = setter(parent)
    try:
        yield
    finally:
        pub.reset_thread_parent(token)


# ---------------------------------------------------------------------------------------------


def _settled_view(job: Any) -> MonitorState:
    """The view of a job drawn once and never updated (``text``/``log`` modes).

    A Job record carries no task states: for a finished job, one poll gives the true task
    counts, the first failing task and the log tail.
    """
    feed = JobFeed(job)
    if getattr(job, "is_terminal", False):
        feed.start(use_events=False)
        feed.ended.wait(10)
        feed.close()
    return feed.state


class JobDisplay:
    """One output of one job, from the first view to the outcome; see the module docstring.

    Build it with :meth:`result` or :meth:`progress`. Attributes: ``mode``, ``role``
    (``"result"`` or ``"progress"``), ``handle`` (the ``DisplayHandle`` of the output, if
    any), ``feed`` (the :class:`JobFeed` following the job, if any), ``monitor`` (the
    ``JobMonitor`` in widget mode).
    """

    def __init__(self, job: Any, *, ip: Any, mode: str, role: Role,
                 poll_interval: float = 1.0) -> None:
        if mode not in (*MODES, "line"):
            raise ValueError(f"unknown display mode {mode!r}; expected one of {', '.join(MODES)}")
        self.job = job
        self.ip = ip
        self.mode = mode
        self.role = role
        self.poll_interval = poll_interval
        self.handle: Any = None
        self.feed: JobFeed | None = None
        self.monitor: Any = None
        self.log: LogReporter | None = None
        self._parent: dict[str, Any] | None = None

    # -- the two ways in ------------------------------------------------------------------------

    @classmethod
    def result(cls, job: Any, *, ip: Any = None, mode: str | None = None,
               poll_interval: float = 1.0) -> JobDisplay:
        """Show ``job`` as a cell's result: live until it ends, then its outcome."""
        ip = _shell(ip)
        shown = cls(job, ip=ip, mode=mode or display_mode(ip), role="result",
                    poll_interval=poll_interval)
        return shown._show()

    @classmethod
    def progress(cls, job: Any, *, ip: Any = None, rich: bool = True,
                 poll_interval: float = 1.0) -> JobDisplay:
        """Show the progress of a job a ``--wait`` blocks on; end it with :meth:`retire`.

        ``rich=False`` (the Job formatter is not registered) prints one line instead.
        """
        ip = _shell(ip)
        mode = display_mode(ip) if rich else "line"
        if mode == "widget":
            mode = "html"  # the result shows the monitor next: see the module docstring
        shown = cls(job, ip=ip, mode=mode, role="progress", poll_interval=poll_interval)
        return shown._show()

    # -- drawing ----------------------------------------------------------------------------

    @property
    def ended(self) -> threading.Event:
        """Set once the job's end has been shown (never set for a display without a feed)."""
        return self.feed.ended if self.feed is not None else threading.Event()

    def _show(self) -> JobDisplay:
        from IPython.display import display

        job, mode = self.job, self.mode
        self._parent = current_parent(self.ip)
        if mode == "widget":
            from bytenite_nb.notebook.widgets.monitor import JobMonitor

            self.monitor = JobMonitor(job, watch=False)
            self.feed = self.monitor.feed
            self.feed.poll_interval = self.poll_interval
            bundle = self.monitor._repr_mimebundle_()
            data, metadata = bundle if bundle is not None else (self.monitor.static_bundle(), {})
            self.handle = display(data, metadata=metadata, raw=True, display_id=True)
        elif mode == "html":
            self.feed = JobFeed(job, interval=HTML_UPDATE_INTERVAL,
                                poll_interval=self.poll_interval)
            self.handle = display(static_bundle(self.feed.state), raw=True, display_id=True)
            self.feed.render_with(self._update_html)
        elif mode == "line":
            print(f"Waiting for job {job.id} ({job.status}); Ctrl-C aborts it.", flush=True)
        else:  # text, log: drawn once
            view = _settled_view(job) if self.role == "result" else JobFeed(job).state
            self.handle = display({"text/plain": render_text(view)}, raw=True, display_id=True)
            if mode == "log":
                self.log = LogReporter(job)
                self.feed = JobFeed(job, interval=0.0, poll_interval=self.poll_interval)
                self.feed.render_with(self.log.update)
        if self.feed is None and self.role == "progress":
            # A wait needs a feed to block on even when nothing is drawn live.
            self.feed = JobFeed(job, interval=QUIET_INTERVAL, poll_interval=self.poll_interval)
        if self.feed is not None:
            self.feed.on_end(self._finish)
            if self.role == "result" and self._in_place():
                _FOLLOWING.add(self)
            self.feed.start()
        return self

    def _update_html(self, view: MonitorState) -> None:
        """Live ``html`` renderer (watcher/throttle thread); the end is :meth:`_finish`'s."""
        if not view.terminal:
            self._publish(static_bundle(view))

    def _publish(self, bundle: dict[str, str]) -> None:
        with as_child_of(self.ip, self._parent):
            self.handle.update(bundle, raw=True)

    def _publish_outcome(self, bundle: dict[str, str]) -> None:
        """Publish the outcome so every frontend applies it (see the module docstring)."""
        self._publish(bundle)
        latest = current_parent(self.ip)  # from this thread: the latest cell's header
        if latest is not None and self._parent is not None and latest != self._parent:
            with as_child_of(self.ip, latest):
                self.handle.update(bundle, raw=True)
        with _PENDING_LOCK:
            _PENDING.append((self.handle, bundle))

    # -- ending -----------------------------------------------------------------------------

    def _finish(self, view: MonitorState) -> None:
        """The job has ended: show its outcome. The one end hook of every display."""
        if self.log is not None:
            self.log.outcome(view)
        if self.role == "result" and self._in_place() and self.handle is not None:
            self._publish_outcome(outcome_bundle(view, _timeline_html(self.job, view)))

    def _in_place(self) -> bool:
        """Whether this display's output is replaced in place (``log`` only in a kernel,
        where the saved notebook keeps it; a terminal would print it again)."""
        if self.mode == "log":
            return getattr(self.ip, "kernel", None) is not None
        return self.mode in _IN_PLACE
    def retire(self, note: str | None = None) -> None:
        """Stop following and, where the output updates in place, replace it by ``note``.

        Once this returns nothing else lands in this display.
        """
        if self.feed is not None:
            self.feed.close()
        if note and self.handle is not None and self._in_place():
            self.handle.update(
                {"text/plain": note, "text/html": f"<small>{html.escape(note)}</small>"},
                raw=True,
            )


class LogReporter:
    """``logging`` lines for a job's progress (non-interactive runs).

    :meth:`update` logs each state change at once and progress at most every ``every``
    seconds; :meth:`outcome` logs the final line. Safe from the feed's thread (logging is
    thread-safe).
    """

    def __init__(self, job: Any, *, every: float = LOG_PROGRESS_EVERY,
                 logger: logging.Logger | None = None) -> None:
        self.job = job
        self.every = every
        self.logger = logger or progress_log
        self._last_state = ""
        self._last_progress = 0.0
        self._last_counts: tuple[int, int, int] = (-1, -1, -1)
        self._lock = threading.Lock()
        _ensure_log_handler(self.logger)

    def update(self, view: MonitorState) -> None:
        """Log what changed in one live view state (cheap unless a line is due)."""
        if view.terminal:
            return  # the outcome is logged by `outcome`, once
        with self._lock:
            label = f"job {self.job.name or self.job.id} ({self.job.id})"
            counts = (view.done, view.failed, view.total)
            now = time.monotonic()
            if view.state != self._last_state:
                self._last_state = view.state
                self.logger.info("%s: %s", label, view.state)
            elif counts != self._last_counts and now - self._last_progress >= self.every:
                self._last_progress = now
                self._last_counts = counts
                done, failed, total = counts
                paced = f" · {pace(view)}" if pace(view) else ""
                self.logger.info("%s: %s/%s tasks done, %s failed%s", label, done, total, failed,
                                 paced)

    def outcome(self, view: MonitorState) -> None:
        """Log the final line: INFO when complete, WARNING when complete with warnings or
        aborted, ERROR when failed."""
        level = {"success": logging.INFO, "danger": logging.ERROR}.get(view.tone,
                                                                       logging.WARNING)
        self.logger.log(level, "%s", render_text(view))


def _ensure_log_handler(logger: logging.Logger) -> None:
    """Progress lines must show even when the user configured no logging at all."""
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s bytenite: %(message)s"))
    logger.addHandler(handler)
