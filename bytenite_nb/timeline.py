"""A job's task timeline as an inline SVG: every task attempt a bar from its start to its end.

``job.timeline()`` returns a :class:`Timeline`. It draws, on a shared axis in seconds from the
job's start:

- a top row with the job's phases (upload, partition, tasks, assemble), from the job's
  ``stateTimestamps``;
- one row per worker slot (``rows="slot"``, the default: each attempt goes to the first row
  free when it starts, so the rows are the tasks running side by side) or per chunk
  (``rows="chunk"``), each attempt coloured by its outcome: completed, failed, retried (an
  attempt that failed and was tried again), cancelled, still running;
- stragglers (completed tasks slower than ``straggler`` times the median) outlined and
  marked, so the slow tail of a job is visible at a glance;
- a hover title on every bar: chunk, attempt, duration, exit code, error.

The SVG is plain markup (``_repr_svg_``, and ``_repr_html_`` for notebooks), so a saved
notebook, nbconvert and GitHub show it without a kernel or a plotting library. Bars narrower
than a pixel are merged per row into one-pixel columns (coloured by the worst outcome inside,
titled with their counts), so a job of 5,000 tasks draws a few thousand shapes at most.

The data behind it are the job's tasks (``job.tasks()``, as in ``job.tasks_df()``), with each
task's earlier attempts when the server records them; :meth:`Timeline.frame` gives them as a
DataFrame, one row per attempt.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from bytenite_nb import wire

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["OUTCOMES", "Attempt", "Phase", "Timeline", "timeline_of"]

#: Outcome of one attempt -> (colour, legend label), in the order the legend lists them.
OUTCOMES: dict[str, tuple[str, str]] = {
    "complete": ("#2da44e", "completed"),
    "retried": ("#d4a72c", "failed, retried"),
    "failed": ("#cf222e", "failed"),
    "cancelled": ("#8c959f", "cancelled"),
    "running": ("#3b82f6", "running"),
}
#: When several attempts share one pixel, the column shows the first of these found.
_SEVERITY = ("failed", "retried", "cancelled", "running", "complete")
#: The job's phases: label, the state that starts it, the states that may end it.
_PHASES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("upload", "UPLOADING", ("PARTITIONING", "FAILED")),
    ("partition", "PARTITIONING", ("PARTITIONED", "FAILED")),
    ("tasks", "PARTITIONED", ("TASKS_COMPLETED", "FAILED")),
    ("assemble", "TASKS_COMPLETED", ("COMPLETE", "FAILED")),
)
_PHASE_COLOURS = {"upload": "#8c959f", "partition": "#8250df", "tasks": "#3b82f6",
                  "assemble": "#bf8700"}
#: Stragglers are outlined in the text colour: dark on a light theme, light on a dark one
#: (``currentColor`` is black in a standalone SVG file).
_STRAGGLER = "currentColor"
_OUTCOME_OF_STATE = {
    wire.TaskState.COMPLETE: "complete",
    wire.TaskState.FAILED: "failed",
    wire.TaskState.RETRYING: "retried",
    wire.TaskState.CANCELLED: "cancelled",
    wire.TaskState.RUNNING: "running",
}
#: Largest number of rows drawn in ``rows="chunk"``; more chunks share rows.
MAX_CHUNK_ROWS = 400

Rows = Literal["slot", "chunk"]


@dataclass(frozen=True)
class Attempt:
    """One attempt of one task, in seconds from the job's start."""

    chunk: int
    attempt: int
    outcome: str            # a key of OUTCOMES
    start: float
    end: float
    exit_code: int | None = None
    error: str | None = None
    row: int = 0
    straggler: bool = False
    #: Attempts made before this one that the server did not record (0 when it did).
    unrecorded_before: int = 0

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    def title(self, median: float | None = None) -> str:
        """The hover text of this attempt's bar."""
        parts = [f"{wire.task_id(self.chunk)}", f"attempt {self.attempt}",
                 f"{_seconds(self.duration)}", OUTCOMES[self.outcome][1]]
        if self.exit_code is not None:
            parts.append(f"exit {self.exit_code}")
        if self.straggler and median:
            parts.append(f"straggler: {self.duration / median:.1f}× the median "
                         f"{_seconds(median)}")
        if self.unrecorded_before:
            parts.append(f"after {self.unrecorded_before} earlier attempt"
                         f"{'s' if self.unrecorded_before != 1 else ''} (not recorded)")
        text = " · ".join(parts)
        return f"{text}\n{self.error}" if self.error else text


@dataclass(frozen=True)
class Phase:
    """One phase of the job (upload, partition, tasks, assemble), in seconds from its start."""

    name: str
    start: float
    end: float


def _seconds(value: float) -> str:
    if value < 0.1:
        return f"{value * 1000:.0f} ms"
    if value < 10:
        return f"{value:.2f} s"
    if value < 100:
        return f"{value:.1f} s"
    return f"{value:.0f} s"


def _since(when: dt.datetime | None, origin: dt.datetime) -> float | None:
    return None if when is None else (when - origin).total_seconds()


def _short(state: str | None) -> str:
    return str(state or "").removeprefix("JOB_STATE_")


def _phases(stamps: Mapping[str, dt.datetime | None], origin: dt.datetime,
            end: float) -> list[Phase]:
    by_state = {_short(k): v for k, v in stamps.items() if v is not None}
    phases = []
    for name, first, enders in _PHASES:
        if first not in by_state:
            continue
        start = _since(by_state[first], origin)
        stops = [_since(by_state[s], origin) for s in enders if s in by_state]
        stop = min((s for s in stops if s is not None and start is not None and s >= start),
                   default=end)
        if start is not None:
            phases.append(Phase(name, start, stop))
    return phases


def _assign_slots(attempts: list[Attempt]) -> tuple[list[Attempt], int]:
    """Give each attempt the first row free at its start (rows = tasks side by side)."""
    ordered = sorted(attempts, key=lambda a: (a.start, a.end, a.chunk, a.attempt))
    free_at: list[float] = []
    placed = []
    for item in ordered:
        row = next((i for i, t in enumerate(free_at) if t <= item.start + 1e-6), None)
        if row is None:
            row = len(free_at)
            free_at.append(item.end)
        else:
            free_at[row] = item.end
        placed.append(replace(item, row=row))
    return placed, max(1, len(free_at))


def _mark_stragglers(attempts: list[Attempt], factor: float) -> tuple[list[Attempt],
                                                                       float | None]:
    done = [a.duration for a in attempts if a.outcome == "complete"]
    if len(done) < 3 or factor <= 0:
        return attempts, statistics.median(done) if done else None
    median = statistics.median(done)
    if median <= 0:
        return attempts, median
    marked = [replace(a, straggler=True) if a.outcome == "complete"
              and a.duration > factor * median else a for a in attempts]
    return marked, median


@dataclass(frozen=True)
class Timeline:
    """A job's task timeline; see the module docstring. Display it, or read :meth:`frame`."""

    job_id: str
    name: str
    attempts: tuple[Attempt, ...]
    phases: tuple[Phase, ...]
    rows: Rows = "slot"
    row_count: int = 1
    span: float = 0.0
    median: float | None = None
    straggler_factor: float = 2.0
    width: int = 860
    #: Whether each task's earlier attempts were recorded by the server.
    attempts_recorded: bool = True
    chunks_per_row: int = 1
    labels: tuple[str, ...] = field(default_factory=tuple)

    # -- reading ----------------------------------------------------------------------------

    @property
    def stragglers(self) -> list[Attempt]:
        """Completed attempts slower than ``straggler_factor`` times the median."""
        return [a for a in self.attempts if a.straggler]

    def counts(self) -> dict[str, int]:
        """Attempts per outcome."""
        out = dict.fromkeys(OUTCOMES, 0)
        for a in self.attempts:
            out[a.outcome] += 1
        return out

    def frame(self) -> pd.DataFrame:
        """One row per attempt: chunk, task_id, attempt, outcome, start and end (seconds
        from the job's start), duration, exit_code, error, row, straggler."""
        import pandas as pd

        records = [{
            "chunk": a.chunk, "task_id": wire.task_id(a.chunk), "attempt": a.attempt,
            "outcome": a.outcome, "start": a.start, "end": a.end,
            "duration": pd.Timedelta(seconds=a.duration), "exit_code": a.exit_code,
            "error": a.error, "row": a.row, "straggler": a.straggler,
        } for a in sorted(self.attempts, key=lambda a: (a.chunk, a.attempt))]
        frame = pd.DataFrame.from_records(records, columns=[
            "chunk", "task_id", "attempt", "outcome", "start", "end", "duration",
            "exit_code", "error", "row", "straggler"])
        frame["exit_code"] = frame["exit_code"].astype("Int64")
        frame["outcome"] = pd.Categorical(frame["outcome"], categories=list(OUTCOMES))
        frame.attrs["job_id"] = self.job_id
        return frame

    def summary(self) -> str:
        """One paragraph: tasks, rows, span, outcomes, stragglers."""
        tasks = len({a.chunk for a in self.attempts})
        label = self.name or self.job_id
        rows = f"{self.row_count} slot{'s' if self.row_count != 1 else ''}" \
            if self.rows == "slot" else f"{self.row_count} rows"
        text = (f"Task timeline of job {label}: {tasks} task{'s' if tasks != 1 else ''}, "
                f"{len(self.attempts)} attempt{'s' if len(self.attempts) != 1 else ''} on "
                f"{rows} over {_seconds(self.span)}")
        counts = {k: v for k, v in self.counts().items() if v}
        if counts:
            text += "; " + ", ".join(f"{v} {OUTCOMES[k][1]}" for k, v in counts.items())
        if self.stragglers and self.median:
            text += (f"; {len(self.stragglers)} straggler"
                     f"{'s' if len(self.stragglers) != 1 else ''} "
                     f"(> {self.straggler_factor:g}× the median {_seconds(self.median)})")
        if not self.attempts_recorded and any(a.unrecorded_before for a in self.attempts):
            text += "; earlier attempts of retried tasks were not recorded by the server"
        return text

    def __repr__(self) -> str:
        return self.summary()

    # -- drawing ----------------------------------------------------------------------------

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def _repr_html_(self) -> str:
        return (f'<div class="bn-timeline-wrap" style="max-width:100%;overflow-x:auto">'
                f"{self.to_svg(standalone=False)}</div>")

    def to_svg(self, width: int | None = None, *, standalone: bool = True) -> str:
        """The timeline as SVG markup (``standalone``: with the XML namespace, as a file)."""
        return _Drawing(self, width or self.width).svg(standalone)


class _Drawing:
    """Geometry of one SVG drawing of a Timeline."""

    RIGHT, TOP = 14, 8

    def __init__(self, tl: Timeline, width: int) -> None:
        self.tl = tl
        self.width = max(240, int(width))
        # Room for the longest row label (about 6.5 px a character at 11 px).
        longest = max((len(label) for label in (*tl.labels, "phases")), default=6)
        self.LEFT = int(min(self.width / 3, 12 + 6.5 * longest))
        self.plot = self.width - self.LEFT - self.RIGHT
        rows = tl.row_count
        self.row_h = 14 if rows <= 16 else max(1, min(14, 360 // rows))
        self.gap = 2 if self.row_h >= 8 else 0
        self.phase_y = self.TOP
        self.lanes_y = self.TOP + 24
        self.axis_y = self.lanes_y + rows * (self.row_h + self.gap) + 4
        self.legend_y = self.axis_y + 30
        self.height = self.legend_y + 16
        self.scale = self.plot / tl.span if tl.span > 0 else 0.0

    def x(self, seconds: float) -> float:
        return self.LEFT + max(0.0, seconds) * self.scale

    def row_top(self, row: int) -> float:
        return self.lanes_y + row * (self.row_h + self.gap)

    def svg(self, standalone: bool) -> str:
        tl, e = self.tl, html.escape
        ns = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
        head = (f'<svg{ns} class="bn-timeline" data-job="{e(tl.job_id)}" '
                f'width="{self.width}" height="{self.height}" '
                f'viewBox="0 0 {self.width} {self.height}" font-family="system-ui,sans-serif" '
                f'font-size="11" role="img">'
                f"<title>{e(tl.summary())}</title>")
        parts = [head, self._phases(), self._grid(), self._row_labels(), self._bars(),
                 self._legend(), "</svg>"]
        return "".join(parts)

    def _phases(self) -> str:
        out = [f'<text x="{self.LEFT - 6}" y="{self.phase_y + 11}" text-anchor="end" '
               'fill="currentColor">phases</text>']
        for phase in self.tl.phases:
            x0, x1 = self.x(phase.start), self.x(phase.end)
            w = max(1.0, x1 - x0)
            colour = _PHASE_COLOURS.get(phase.name, "#8c959f")
            title = f"{phase.name}: {_seconds(phase.start)} → {_seconds(phase.end)} " \
                    f"({_seconds(phase.end - phase.start)})"
            out.append(f'<rect class="bn-phase bn-phase-{phase.name}" x="{x0:.1f}" '
                       f'y="{self.phase_y}" width="{w:.1f}" height="14" rx="2" '
                       f'fill="{colour}" fill-opacity="0.75"><title>{html.escape(title)}'
                       "</title></rect>")
            if w > 8 * len(phase.name):
                out.append(f'<text x="{x0 + 4:.1f}" y="{self.phase_y + 11}" fill="#fff" '
                           f'pointer-events="none">{phase.name}</text>')
        return "".join(out)

    def _grid(self) -> str:
        span = self.tl.span
        out = [f'<line x1="{self.LEFT}" x2="{self.LEFT + self.plot}" y1="{self.axis_y}" '
               f'y2="{self.axis_y}" stroke="currentColor" stroke-opacity="0.4"/>']
        for tick in _ticks(span):
            x = self.x(tick)
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{self.lanes_y - 2}" '
                       f'y2="{self.axis_y + 4}" stroke="currentColor" stroke-opacity="0.12"/>'
                       f'<text x="{x:.1f}" y="{self.axis_y + 16}" text-anchor="middle" '
                       f'fill="currentColor">{_tick_label(tick, span)}</text>')
        out.append(f'<text x="{self.LEFT + self.plot}" y="{self.axis_y + 28}" '
                   'text-anchor="end" fill="currentColor" fill-opacity="0.7">'
                   "seconds from the job's start</text>")
        return "".join(out)

    def _row_labels(self) -> str:
        labels = self.tl.labels
        if self.row_h < 8:  # too thin to label each row: the first and the last
            shown = {0: labels[0], len(labels) - 1: labels[-1]} if labels else {}
        else:
            shown = dict(enumerate(labels))
        return "".join(
            f'<text x="{self.LEFT - 6}" y="{self.row_top(i) + min(self.row_h, 12) - 2:.1f}" '
            f'text-anchor="end" fill="currentColor" fill-opacity="0.8">{html.escape(text)}'
            "</text>" for i, text in shown.items())

    def _bars(self) -> str:
        tl = self.tl
        out: list[str] = []
        bins: dict[tuple[int, int], list[Attempt]] = {}
        for a in sorted(tl.attempts, key=lambda a: (a.row, a.start)):
            x0, x1 = self.x(a.start), self.x(a.end)
            if x1 - x0 < 1.0:  # under a pixel: merged with its neighbours in that pixel
                bins.setdefault((a.row, int(x0)), []).append(a)
                continue
            out.append(self._bar(a, x0, x1))
        # Neighbouring pixels of one row that read the same become one shape.
        run: list[tuple[int, list[Attempt]]] = []
        for (row, px), group in sorted(bins.items()):
            worst = _worst(group)
            if run and run[0][1][0].row == row and run[-1][0] == px - 1 \
                    and _worst(run[-1][1]) == worst:
                run.append((px, group))
                continue
            if run:
                out.append(self._bin(run))
            run = [(px, group)]
        if run:
            out.append(self._bin(run))
        return "".join(out)

    def _bar(self, a: Attempt, x0: float, x1: float) -> str:
        colour = OUTCOMES[a.outcome][0]
        y = self.row_top(a.row)
        classes = f"bn-task bn-{a.outcome}" + (" bn-straggler" if a.straggler else "")
        stroke = (f' stroke="{_STRAGGLER}" stroke-width="1.5"' if a.straggler else "")
        mark = ""
        if a.straggler and self.row_h >= 8:
            mark = (f'<path class="bn-straggler-mark" d="M{x1:.1f},{y} l-5,0 l5,5 z" '
                    f'fill="{_STRAGGLER}" pointer-events="none"/>')
        return (f'<rect class="{classes}" data-chunk="{a.chunk}" data-attempt="{a.attempt}" '
                f'x="{x0:.1f}" y="{y:.1f}" width="{x1 - x0:.1f}" height="{self.row_h}" '
                f'fill="{colour}"{stroke}><title>{html.escape(a.title(self.tl.median))}'
                f"</title></rect>{mark}")

    def _bin(self, run: list[tuple[int, list[Attempt]]]) -> str:
        """One shape for neighbouring pixels of one row whose attempts read the same."""
        group = [a for _, attempts in run for a in attempts]
        worst = _worst(group)
        counts = {o: sum(1 for a in group if a.outcome == o) for o in _SEVERITY}
        described = ", ".join(f"{n} {OUTCOMES[o][1]}" for o, n in counts.items() if n)
        chunks = sorted(a.chunk for a in group)
        start, end = min(a.start for a in group), max(a.end for a in group)
        title = (f"{len(group)} attempts ({described}), {_seconds(start)} → {_seconds(end)}; "
                 f"chunks {chunks[0]}–{chunks[-1]}" if len(group) > 1
                 else group[0].title(self.tl.median))
        first = run[0][0]
        return (f'<rect class="bn-bin bn-{worst}" data-attempts="{len(group)}" x="{first}" '
                f'y="{self.row_top(group[0].row):.1f}" width="{len(run)}" '
                f'height="{self.row_h}" fill="{OUTCOMES[worst][0]}">'
                f"<title>{html.escape(title)}</title></rect>")

    def _legend(self) -> str:
        counts = self.tl.counts()
        x, out = float(self.LEFT), []
        for outcome, (colour, label) in OUTCOMES.items():
            if not counts[outcome]:
                continue
            text = f"{label} ({counts[outcome]})"
            out.append(f'<rect x="{x:.0f}" y="{self.legend_y}" width="10" height="10" '
                       f'fill="{colour}"/><text x="{x + 14:.0f}" y="{self.legend_y + 9}" '
                       f'fill="currentColor">{html.escape(text)}</text>')
            x += 24 + 6.2 * len(text)
        if self.tl.stragglers:
            text = f"straggler (> {self.tl.straggler_factor:g}× median) " \
                   f"({len(self.tl.stragglers)})"
            out.append(f'<rect x="{x:.0f}" y="{self.legend_y}" width="10" height="10" '
                       f'fill="none" stroke="{_STRAGGLER}" stroke-width="1.5"/>'
                       f'<text x="{x + 14:.0f}" y="{self.legend_y + 9}" fill="currentColor">'
                       f"{html.escape(text)}</text>")
        return "".join(out)


def _worst(group: list[Attempt]) -> str:
    outcomes = {a.outcome for a in group}
    return next(o for o in _SEVERITY if o in outcomes)


def _ticks(span: float, target: int = 8) -> list[float]:
    if span <= 0:
        return [0.0]
    raw = span / target
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    count = int(span / step + 1e-9)
    return [i * step for i in range(count + 1)]


def _tick_label(value: float, span: float) -> str:
    if span < 1:
        return f"{value:.2f}".rstrip("0").rstrip(".") or "0"
    if span < 10:
        return f"{value:.1f}".rstrip("0").rstrip(".") or "0"
    return f"{value:.0f}"


# -------------------------------------------------------------------------------------------
# Building a timeline from a job's records


def _outcome(state: Any) -> str:
    try:
        parsed = wire.TaskState.parse(state)
    except (ValueError, TypeError):
        return "cancelled"
    return _OUTCOME_OF_STATE.get(parsed, "cancelled")  # type: ignore[arg-type]


def _attempts_of(task: Any, origin: dt.datetime, now: float) -> list[Attempt]:
    """A task's attempts: its recorded history, else its last attempt alone."""
    from bytenite_nb.api.models import parse_ts

    chunk = task.chunk_number if task.chunk_number is not None else -1
    history = task.raw.get("attemptHistory") if isinstance(task.raw, dict) else None
    out: list[Attempt] = []
    if isinstance(history, list) and history:
        for entry in history:
            start = _since(parse_ts(entry.get("startedAt")), origin)
            if start is None:
                continue
            end = _since(parse_ts(entry.get("endedAt")), origin)
            out.append(Attempt(
                chunk=chunk, attempt=int(entry.get("attempt") or len(out) + 1),
                outcome=_outcome(entry.get("state")), start=start,
                end=end if end is not None else now,
                exit_code=entry.get("exitCode"), error=entry.get("errorMessage") or None))
        return out
    start = _since(task.started_at, origin)
    if start is None:  # never ran (queued, or cancelled before it started)
        return []
    end = _since(task.ended_at, origin)
    attempt = task.attempt or 1
    return [Attempt(chunk=chunk, attempt=attempt, outcome=_outcome(task.state), start=start,
                    end=end if end is not None else now, exit_code=task.exit_code,
                    error=task.error_message, unrecorded_before=attempt - 1)]


def timeline_of(job: Any, tasks: Iterable[Any], *, rows: Rows = "slot",
                straggler: float = 2.0, width: int = 860,
                now: dt.datetime | None = None) -> Timeline:
    """Build the :class:`Timeline` of ``job`` (a ``Job``) from its ``TaskInfo`` records."""
    if rows not in ("slot", "chunk"):
        raise ValueError(f"rows must be 'slot' (tasks side by side) or 'chunk' (one row per "
                         f"chunk), got {rows!r}")
    tasks = list(tasks)
    stamps = job.state_timestamps
    candidates = [job.started_at, *(t.started_at for t in tasks)]
    origin = min((c for c in candidates if c is not None), default=None)
    if origin is None:
        origin = job.created_at or wire.utcnow()
    moment = now or wire.utcnow()
    # Attempts without an end run until now, or until the job ended.
    end_at = job.ended_at if job.is_terminal and job.ended_at else moment
    now_s = max(0.0, (end_at - origin).total_seconds())
    attempts = [a for t in tasks for a in _attempts_of(t, origin, now_s)]
    recorded = all(isinstance(t.raw.get("attemptHistory"), list) for t in tasks
                   if isinstance(t.raw, dict)) and bool(tasks)
    span = max([now_s, *(a.end for a in attempts)], default=0.0)
    phases = _phases(stamps, origin, span)
    span = max([span, *(p.end for p in phases)], default=span)
    attempts, median = _mark_stragglers(attempts, straggler)
    labels: list[str]
    chunks_per_row = 1
    if rows == "slot":
        attempts, count = _assign_slots(attempts)
        labels = [f"slot {i + 1}" for i in range(count)]
    else:
        chunks = max((a.chunk for a in attempts), default=-1) + 1
        chunks = max(chunks, job.num_chunks or 0, 1)
        chunks_per_row = math.ceil(chunks / MAX_CHUNK_ROWS)
        count = math.ceil(chunks / chunks_per_row)
        attempts = [replace(a, row=max(0, a.chunk) // chunks_per_row) for a in attempts]
        labels = [wire.task_id(i) if chunks_per_row == 1 else
                  f"chunks {i * chunks_per_row}–{min(chunks, (i + 1) * chunks_per_row) - 1}"
                  for i in range(count)]
    return Timeline(job_id=job.id, name=job.name or "", attempts=tuple(attempts),
                    phases=tuple(phases), rows=rows, row_count=count, span=span,
                    median=median, straggler_factor=straggler, width=width,
                    attempts_recorded=recorded, chunks_per_row=chunks_per_row,
                    labels=tuple(labels))
