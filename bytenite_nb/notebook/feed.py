"""One job's progress as one view state, shared by every view of that job.

A :class:`JobFeed` turns the client's ``JobWatcher`` snapshots (events stream, polling when
it is silent) into :class:`~bytenite_nb.notebook.widgets._view.MonitorState` values:

    JobWatcher thread --snapshot--> JobFeed.submit --Throttle--> fold --> renderers
                                                                      `-> on_end hooks (once)

- ``submit`` only hands the snapshot to a :class:`Throttle`, so thousands of events cost
  thousands of cheap calls; at most one snapshot per ``interval`` is folded into the view
  state, and the terminal one passes at once.
- Folding remembers the furthest stage reached, so a failure says where it happened
  ("FAILED during tasks") in every view.
- Each folded state goes to every renderer (the widget's traits, an HTML display, log lines).
  After the terminal state the ``on_end`` hooks run exactly once, then :attr:`ended` is set.
- ``on_problem`` hooks hear once when the watcher gives up (e.g. the job was deleted), so a
  view can say so instead of looking stuck.

Renderers and hooks run on the watcher's or the throttle's thread: they must only hand data
over (set traits, update a display through its id, log), never ``print``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bytenite_nb.notebook.widgets._rate import RateMeter
from bytenite_nb.notebook.widgets._view import MonitorState, furthest, state_from_snapshot
from bytenite_nb.notebook.widgets.throttle import Throttle

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api.jobs import Job
    from bytenite_nb.api.watcher import JobWatcher

__all__ = ["JobFeed", "is_terminal"]

log = logging.getLogger(__name__)

Renderer = Callable[[MonitorState], None]


def is_terminal(snapshot: Any) -> bool:
    """Whether a snapshot (or job record) is in an end state (COMPLETE or FAILED)."""
    flag = getattr(snapshot, "is_terminal", None)
    if isinstance(flag, bool):
        return flag
    state = getattr(snapshot, "state", None)
    return bool(getattr(state, "is_terminal", False))


class JobFeed:
    """Follow one job and keep its one true view state; see the module docstring.

    ``JobFeed(job)`` starts from the job record's view; :meth:`start` follows the job through
    ``job.watch``. Without a job (``job_id=``/``name=`` only) the feed is fed by hand through
    :meth:`submit`. ``interval`` is the throttle's minimum time between two folded states.
    """

    def __init__(
        self,
        job: Job | None = None,
        *,
        job_id: str = "",
        name: str = "",
        template_id: str = "",
        interval: float = 0.1,
        poll_interval: float = 1.0,
    ) -> None:
        self.job = job
        if job is not None:
            job_id, name, template_id = job.id, job.name or "", job.template_id or ""
        self._ident = {"job_id": job_id, "name": name, "template_id": template_id}
        self.poll_interval = poll_interval
        self._state = (
            state_from_snapshot(job, **self._ident) if job is not None
            else MonitorState(**self._ident)
        )
        self._reached = "queued"
        #: Tasks per second and time left, fed with every folded state (see _fold).
        self.meter = RateMeter()
        self._outputs_text: str | None = None
        self._renderers: list[Renderer] = []
        self._end_hooks: list[Renderer] = []
        self._problem_hooks: list[Callable[[BaseException], None]] = []
        self._problem_told = False
        self._lock = threading.Lock()  # guards the hook lists and the end flag
        self._finishing = False
        #: Set once the terminal state has been folded and the ``on_end`` hooks have run.
        self.ended = threading.Event()
        self._watcher: JobWatcher | None = None
        #: The throttle between the feeding thread and the fold (exposed for tests/benchmarks).
        self.throttle: Throttle[Any] = Throttle(self._fold, interval)

    # -- the state --------------------------------------------------------------------------

    @property
    def state(self) -> MonitorState:
        """The latest view state (the job record's until the first snapshot is folded)."""
        return self._state

    @property
    def job_id(self) -> str:
        return self._ident["job_id"]

    @property
    def error(self) -> BaseException | None:
        """Why the watcher gave up following the job, if it did."""
        return getattr(self._watcher, "error", None)

    @property
    def following(self) -> bool:
        """Whether a watcher is still running for this feed."""
        watcher = self._watcher
        return watcher is not None and not watcher.done.is_set()

    # -- subscribing ------------------------------------------------------------------------

    def render_with(self, renderer: Renderer) -> None:
        """Hand every folded state (the terminal one included) to ``renderer``."""
        self._renderers.append(renderer)

    def on_end(self, hook: Renderer) -> None:
        """Call ``hook(final_state)`` once the job has ended (at once if it already has)."""
        with self._lock:
            if not self._finishing:
                self._end_hooks.append(hook)
                return
        hook(self._state)

    def on_problem(self, hook: Callable[[BaseException], None]) -> None:
        """Call ``hook(error)`` once if the watcher gives up before the job ends."""
        self._problem_hooks.append(hook)

    # -- feeding ----------------------------------------------------------------------------

    def start(self, *, use_events: bool = True) -> JobFeed:
        """Follow the job (no-op without a job or when already following); returns ``self``."""
        if self.job is not None and self._watcher is None:
            self._watcher = self.job.watch(
                self.submit, poll_interval=self.poll_interval, use_events=use_events
            )
        return self

    def submit(self, snapshot: Any) -> None:
        """Feed one ``JobSnapshot``; safe from any thread, cheap enough for every event.

        The snapshot is read when the throttle lets it through, not now.
        """
        self.throttle.submit(snapshot, final=is_terminal(snapshot))
        error = self.error
        if error is not None and not self._problem_told and not self.ended.is_set():
            self._problem_told = True
            for hook in list(self._problem_hooks):
                self._call(hook, error)

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop following; a pending state is still folded (the views keep the last one)."""
        self._stop_watcher(timeout)
        self.throttle.flush()

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop following and drop any pending state: once this returns, no renderer runs
        again, so whatever the caller shows next in a view stays there."""
        self._stop_watcher(timeout)
        self.throttle.close(wait=True)

    def _stop_watcher(self, timeout: float | None) -> None:
        watcher = self._watcher
        if watcher is not None:
            watcher.stop(timeout)

    # -- folding ----------------------------------------------------------------------------

    def _fold(self, snapshot: Any) -> None:
        reached = self._reached
        if getattr(snapshot, "tasks_total", 0):
            reached = furthest(reached, "tasks")
        view = state_from_snapshot(snapshot, reached=reached, **self._ident)
        self._reached = furthest(reached, view.stage)
        view = self._paced(view)
        if view.terminal and view.stage == "done":
            view = replace(view, outputs=self._outputs())
        self._state = view
        for renderer in list(self._renderers):
            self._call(renderer, view)
        if not view.terminal:
            return
        with self._lock:
            if self._finishing:
                return
            self._finishing = True
            hooks, self._end_hooks = self._end_hooks, []
        for hook in hooks:
            self._call(hook, view)
        # Set last, so whoever waits on `ended` also sees what the hooks did.
        self.ended.set()

    def _outputs(self) -> str:
        """What the COMPLETE job produced, asked once (it also fills ``job.outputs``)."""
        if self._outputs_text is None:
            self._outputs_text = ""
            if self.job is not None:
                try:
                    self._outputs_text = self.job.fetch_outputs().describe()
                except Exception as exc:  # the job completed; the summary can do without
                    log.debug("could not list the results of job %s: %s", self.job_id, exc)
        return self._outputs_text

    def _paced(self, view: MonitorState) -> MonitorState:
        """``view`` with the smoothed rate and time left while its tasks run."""
        if view.terminal or not view.total:
            return view
        now = time.monotonic()
        self.meter.update(now, view.done + view.failed)
        rate = self.meter.rate
        if rate is None:
            return view
        eta = self.meter.eta(view.total, now)
        return replace(view, rate=round(rate, 6), eta=-1.0 if eta is None else round(eta, 3))

    @staticmethod
    def _call(function: Callable[[Any], None], value: Any) -> None:
        try:
            function(value)
        except Exception:  # a broken view must not break the feeding thread
            log.exception("job view callback %r failed", function)
