"""JobsDashboard: a live, filterable, paged table of the user's jobs.

The data lives in a typed DataFrame (``bytenite_nb.frames.jobs_df``) in the kernel; only the
visible page is put in the widget's ``rows`` trait, so thousands of jobs cost one page of
state. A background thread follows ``/events``; it only records which jobs changed and hands
that to a :class:`Throttle`, which re-reads those jobs and re-renders the page at most four
times a second. Row actions (monitor, logs, results, abort) arrive as custom messages on the
kernel's main thread; their output goes to an ``Output`` widget via ``append_display_data``.
"""

from __future__ import annotations

import html
import logging
import threading
from typing import TYPE_CHECKING, Any

import anywidget
import ipywidgets
import pandas as pd
import traitlets as t

from bytenite_nb import vocabulary, wire
from bytenite_nb.notebook.widgets._assets import css_source, esm_source
from bytenite_nb.notebook.widgets.throttle import Throttle

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api.client import Client
    from bytenite_nb.api.jobs import Job

log = logging.getLogger(__name__)

#: Seconds between two re-renders caused by events.
LIVE_INTERVAL = 0.25


class DashboardTable(anywidget.AnyWidget):
    """The table view (one page of rows); :class:`JobsDashboard` owns the data."""

    _esm = esm_source("dashboard.js")
    _css = css_source()

    rows = t.List(t.Dict()).tag(sync=True)
    total = t.Int(0).tag(sync=True)
    page = t.Int(0).tag(sync=True)
    page_size = t.Int(20).tag(sync=True)
    #: The status words present in the data (the filter's choices).
    states = t.List(t.Unicode()).tag(sync=True)
    templates = t.List(t.Unicode()).tag(sync=True)
    #: A status word (any alias or wire name is read as its status word).
    state_filter = t.Unicode("").tag(sync=True)
    template_filter = t.Unicode("").tag(sync=True)
    notice = t.Unicode("").tag(sync=True)


def _word(status: Any) -> str:
    return "" if status is None or pd.isna(status) else str(status)


def _row(job_id: str, rec: Any) -> dict[str, Any]:
    def opt(value: Any) -> Any:
        return None if value is None or value is pd.NA or pd.isna(value) else value

    created = opt(rec.created_at)
    started = opt(rec.started_at)
    duration = opt(rec.duration)
    chunks = opt(rec.num_chunks)
    return {
        "id": job_id,
        "name": opt(rec.name) or "",
        "status": _word(rec.status),
        "template_id": opt(rec.template_id) or "",
        "created_at": wire.format_timestamp(created.to_pydatetime()) if created else None,
        # A running job's duration counts up in the browser from its start.
        "started_at": wire.format_timestamp(started.to_pydatetime()) if started else None,
        "duration": duration.total_seconds() if duration is not None else None,
        "num_chunks": int(chunks) if chunks is not None else None,
    }


def _status_filter(text: str) -> str:
    """The status word a filter value means (aliases and wire names accepted)."""
    try:
        return vocabulary.parse_status(text)
    except ValueError:
        return text  # matches nothing, which is what an unknown word should show


class JobsDashboard(ipywidgets.VBox):
    """Jobs table with state/template filters, paging, live updates and row actions.

    ``JobsDashboard(client)`` loads up to ``limit`` most recent jobs and, with ``live=True``,
    follows the events stream. ``dashboard.frame`` is the full typed DataFrame.
    """

    def __init__(
        self,
        client: Client | None = None,
        *,
        page_size: int = 20,
        limit: int | None = 1000,
        live: bool = True,
    ) -> None:
        if client is None:
            from bytenite_nb.api.client import Client

            client = Client()
        self.client = client
        self.limit = limit
        self.table = DashboardTable(page_size=page_size)
        self.output = ipywidgets.Output()
        super().__init__([self.table, self.output])
        self.frame: pd.DataFrame = pd.DataFrame()
        self._lock = threading.RLock()  # guards frame and _jobs against the events thread
        self._jobs: dict[str, Job] = {}
        self._dirty: set[str] = set()
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self.throttle: Throttle[None] = Throttle(lambda _none: self._apply_dirty(),
                                                 LIVE_INTERVAL)
        self.table.observe(self._on_view_change,
                           names=["page", "page_size", "state_filter", "template_filter"])
        self.table.on_msg(self._on_front_end_msg)
        self.refresh()
        if live:
            self.start()

    # -- data -----------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the jobs from the API and redraw."""
        from bytenite_nb.frames import jobs_df

        jobs = list(self.client.jobs(limit=self.limit))
        with self._lock:
            self._jobs = {job.id: job for job in jobs}
            self.frame = jobs_df(jobs, columns="all")
            self._render()

    def _apply_dirty(self) -> None:
        """Re-read the jobs that events said changed (runs on the events/timer thread)."""
        from bytenite_nb.frames import jobs_df

        with self._lock:
            ids, self._dirty = self._dirty, set()
        fresh = []
        for job_id in ids:
            try:
                fresh.append(self.client.job(job_id))
            except Exception as exc:  # deleted meanwhile, or a transient error
                log.debug("dashboard: could not re-read job %s: %s", job_id, exc)
        if not fresh:
            return
        with self._lock:
            for job in fresh:
                self._jobs[job.id] = job
            updated = jobs_df(fresh, columns="all")
            rest = self.frame.drop(index=updated.index, errors="ignore")
            self.frame = pd.concat([rest, updated]) if len(rest) else updated
            self._render()

    def _filtered(self) -> pd.DataFrame:
        frame = self.frame
        if frame.empty:
            return frame
        state = self.table.state_filter
        if state:
            frame = frame[frame["status"].astype("str") == _status_filter(state)]
        template = self.table.template_filter
        if template:
            frame = frame[frame["template_id"] == template]
        return frame.sort_values("created_at", ascending=False, na_position="last")

    def page_frame(self) -> pd.DataFrame:
        """The rows currently shown (after filters and paging)."""
        with self._lock:
            frame = self._filtered()
            size = max(1, self.table.page_size)
            pages = max(1, -(-len(frame) // size))
            page = min(max(0, self.table.page), pages - 1)
            return frame.iloc[page * size : (page + 1) * size]

    def _render(self) -> None:
        with self._lock:
            frame = self._filtered()
            size = max(1, self.table.page_size)
            pages = max(1, -(-len(frame) // size))
            page = min(max(0, self.table.page), pages - 1)
            shown = frame.iloc[page * size : (page + 1) * size]
            rows = [_row(str(i), r) for i, r in zip(shown.index, shown.itertuples(), strict=True)]
            present = {_word(s) for s in self.frame.get("status", [])} - {""}
            states = [s for s in vocabulary.STATUSES if s in present]
            templates = sorted(
                {str(x) for x in self.frame.get("template_id", []) if isinstance(x, str) and x}
            )
            with self.table.hold_sync():
                self.table.rows = rows
                self.table.total = len(frame)
                if self.table.page != page:
                    self.table.page = page
                self.table.states = states
                self.table.templates = templates

    def _on_view_change(self, _change: dict[str, Any]) -> None:
        self._render()

    # -- live updates -------------------------------------------------------------------------

    def start(self) -> None:
        """Follow the events stream on a daemon thread (no-op if already following)."""
        if self._thread is not None:
            return
        self._stream = self.client.events()
        self._thread = threading.Thread(target=self._follow, name="bytenite-dashboard",
                                        daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        stream = self._stream
        try:
            for event in stream:
                if event.name == wire.EVENT_JOB_STATE and event.job_id:
                    with self._lock:
                        self._dirty.add(event.job_id)
                    self.throttle.submit(None)
        except Exception as exc:  # shown on the table, not printed into some random cell
            self.table.notice = f"live updates stopped: {exc}"

    def stop(self) -> None:
        """Stop following events."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
        self._thread = None
        self.throttle.flush()

    def close(self) -> None:
        """Stop live updates and close the widgets."""
        self.stop()
        self.throttle.close()
        self.table.close()
        self.output.close()
        super().close()

    # -- actions --------------------------------------------------------------------------------

    def _on_front_end_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        if content.get("type") == "refresh":
            self.refresh()
        elif content.get("type") == "action":
            self.act(str(content.get("action")), str(content.get("job_id")))

    def act(self, action: str, job_id: str) -> None:
        """Run a row action: ``monitor``, ``logs``, ``results`` or ``abort``."""
        job = self._jobs.get(job_id)
        try:
            if job is None:
                job = self.client.job(job_id)
            if action == "abort":
                job.abort()
                self.table.notice = f"abort requested for {job_id}"
                with self._lock:
                    self._dirty.add(job_id)
                self.throttle.submit(None)
                return
            if action == "monitor":
                from bytenite_nb.notebook.widgets.monitor import JobMonitor

                shown: Any = JobMonitor(job)
            elif action == "logs":
                shown = job.logs_df()
            elif action == "results":
                shown = job.results_df()
            else:
                self.table.notice = f"unknown action {action!r}"
                return
        except Exception as exc:
            self.table.notice = f"{action} {job_id}: {exc}"
            return
        self.table.notice = ""
        self.output.outputs = ()
        self.output.append_display_data(shown)

    # -- reprs ----------------------------------------------------------------------------------

    def __repr__(self) -> str:
        total = self.table.total
        size = max(1, self.table.page_size)
        pages = max(1, -(-total // size))
        filters = ", ".join(
            f"{k}={v}"
            for k, v in (("state", self.table.state_filter),
                         ("template", self.table.template_filter)) if v
        )
        lines = [f"JobsDashboard: {total} jobs, page {self.table.page + 1}/{pages}"
                 + (f" ({filters})" if filters else "")]
        for row in self.table.rows:
            lines.append(f"  {row['status']:<13} {row['id']}  {row['name']}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        head = "".join(f"<th>{c}</th>" for c in ("status", "name", "id", "template", "created"))
        body = "".join(
            f"<tr><td>{e(r['status'])}</td><td>{e(r['name'])}</td>"
            f"<td><code>{e(r['id'])}</code></td><td>{e(r['template_id'])}</td>"
            f"<td>{e(r['created_at'] or '')}</td></tr>"
            for r in self.table.rows
        )
        return (f'<div class="bn-static bn-dashboard-static"><b>ByteNite jobs</b> '
                f"({self.table.total})<table><tr>{head}</tr>{body}</table></div>")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:  # pragma: no cover
            return None
        data, *rest = bundle if isinstance(bundle, tuple) else (bundle,)
        data["text/plain"] = repr(self)
        data["text/html"] = self._repr_html_()
        return (data, *rest) if rest else data
