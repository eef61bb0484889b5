"""The monitor's view model: job snapshot -> trait values -> text/plain and static HTML.

Pure functions with no widget or IPython dependency, so the live widget, the updating-HTML
fallback, the logging fallback and the frozen final output all render the same facts.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bytenite_nb.wire import JobState, TaskState

#: The lifecycle steps the monitor shows, in order. ``js/monitor_logic.js`` has the same STAGES,
#: STAGE_LABELS and grid characters; ``tests/unit/notebook/test_view_parity.py`` keeps them in step.
STAGES: tuple[str, ...] = ("queued", "partitioning", "tasks", "assembling", "done")
STAGE_LABELS = {
    "queued": "Queued",
    "partitioning": "Partitioning",
    "tasks": "Tasks",
    "assembling": "Assembling",
    "done": "Done",
    "failed": "Failed",
}

_STAGE_OF_STATE: dict[JobState, str] = {
    JobState.UNKNOWN: "queued",
    JobState.NEW: "queued",
    JobState.STARTED: "queued",
    JobState.UPLOADING: "queued",
    JobState.PARTITIONING: "partitioning",
    JobState.PARTITIONED: "tasks",
    JobState.TASKS_COMPLETED: "assembling",
    JobState.MERGING: "assembling",
    JobState.MERGED: "assembling",
    JobState.DOWNLOADING: "assembling",
    JobState.COMPLETE: "done",
    JobState.FAILED: "failed",
}

#: One character per task in the ``grid`` trait (js/monitor_logic.js GRID_STATES).
GRID_CHARS: dict[TaskState, str] = {
    TaskState.QUEUED: "q",
    TaskState.RUNNING: "r",
    TaskState.RETRYING: "y",
    TaskState.COMPLETE: "d",
    TaskState.FAILED: "f",
    TaskState.CANCELLED: "c",
}

#: How many log lines the widget keeps (the full logs are one click away).
LOG_LINES = 8
_CANCEL_UNFINISHED = str.maketrans({"q": "c", "r": "c", "y": "c"})
_MAX_LINE = 400
_MAX_ERROR = 4000


def stage_of(state: JobState | str | None) -> str:
    """The monitor stage of a job state (``"queued"`` for anything unknown)."""
    if state is None:
        return "queued"
    try:
        state = JobState.parse(state)
    except ValueError:
        return "queued"
    return _STAGE_OF_STATE.get(state, "queued")  # type: ignore[arg-type]


def short_state(state: JobState | str | None) -> str:
    """``JOB_STATE_COMPLETE`` -> ``COMPLETE``."""
    if state is None:
        return "UNKNOWN"
    value = state.value if isinstance(state, JobState) else str(state)
    return value.removeprefix("JOB_STATE_")


def epoch_ms(when: dt.datetime | None) -> float:
    """Milliseconds since the epoch (0 for unset), for the browser-side clock."""
    if when is None:
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp() * 1000.0


def format_elapsed(seconds: float | None) -> str:
    """``4.2s``, ``3m 05s``, ``1h 02m`` (same rules as js formatElapsed)."""
    if seconds is None or seconds < 0:
        return ""
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{int(seconds)}s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m {int(seconds % 60):02d}s"
    return f"{minutes // 60}h {minutes % 60:02d}m"


def encode_grid(task_states: Mapping[int, Any], total: int) -> str:
    """One character per task (index = chunk number); unknown tasks are queued."""
    if task_states:
        total = max(total, max(task_states) + 1)
    if total <= 0:
        return ""
    cells = ["q"] * total
    for index, state in task_states.items():
        if 0 <= index < total:
            try:
                cells[index] = GRID_CHARS.get(TaskState.parse(state), "q")  # type: ignore[arg-type]
            except ValueError:
                continue
    return "".join(cells)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_log_line(entry: Any) -> str:
    """One log-tail line from a ``LogEntry``, a dict or a string."""
    if isinstance(entry, Mapping):
        source = entry.get("taskId") or entry.get("task_id") or entry.get("service") or ""
        message = str(entry.get("message", ""))
        level = str(entry.get("level") or "")
    elif hasattr(entry, "message"):  # a LogEntry: short form, the timestamp is noise here
        source = getattr(entry, "task_id", None) or str(getattr(entry, "service", "") or "")
        message = str(entry.message)
        level = str(getattr(entry, "level", "") or "")
    else:
        source, message, level = "", str(entry), ""
    level = level.rsplit(".", 1)[-1].upper()
    prefix = f"{level} " if level in ("WARN", "ERROR", "FATAL", "PANIC") else ""
    text = f"{prefix}{source.lower() if source.isupper() else source}: {message}" if source \
        else prefix + message
    return _clip(text.rstrip("\n"), _MAX_LINE)


@dataclass(frozen=True)
class MonitorState:
    """Everything the monitor shows: one value per synced trait of ``JobMonitor``."""

    job_id: str = ""
    name: str = ""
    template_id: str = ""
    state: str = "UNKNOWN"
    stage: str = "queued"
    failed_at: str = ""
    done: int = 0
    running: int = 0
    failed: int = 0
    total: int = 0
    started_ms: float = 0.0
    ended_ms: float = 0.0
    elapsed: float = 0.0
    grid: str = ""
    logs: tuple[str, ...] = field(default_factory=tuple)
    error_message: str = ""
    task_error: str = ""
    summary: str = ""
    #: Smoothed tasks per second (0: not known yet) and seconds left (-1: not known yet),
    #: from the feed's ``RateMeter`` (``widgets/_rate.py``) while tasks run.
    rate: float = 0.0
    eta: float = -1.0
    #: What a COMPLETE job produced (``api.outputs.Outputs.describe()``), once the feed asked.
    outputs: str = ""

    @property
    def terminal(self) -> bool:
        """True for COMPLETE and FAILED."""
        return self.stage in ("done", "failed")

    def traits(self) -> dict[str, Any]:
        """Trait name -> value (lists, not tuples, so traitlets compares like with like)."""
        values = asdict(self)
        values["logs"] = list(self.logs)
        return values


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return default


def _count(grid: str, chars: str) -> int:
    return sum(grid.count(c) for c in chars)


def state_from_snapshot(
    snapshot: Any,
    *,
    job_id: str = "",
    name: str = "",
    template_id: str = "",
    reached: str = "queued",
    now: dt.datetime | None = None,
) -> MonitorState:
    """Build a :class:`MonitorState` from a ``JobSnapshot`` (see docs/internals.md).

    ``reached`` is the furthest stage seen before, so a failure can say where it happened.
    Reads attributes defensively: the snapshot may be mutated by the watcher thread while we
    read it, and a few fields are optional.
    """
    raw_state = _get(snapshot, "state", default=JobState.UNKNOWN)
    stage = stage_of(raw_state)
    task_states = dict(_get(snapshot, "task_states", default={}) or {})
    total = int(_get(snapshot, "tasks_total", "num_chunks", default=0) or 0)
    grid = encode_grid(task_states, total)
    if stage == "failed":
        # A failed job runs nothing more: unfinished tasks will never finish, show that.
        grid = grid.translate(_CANCEL_UNFINISHED)
    total = max(total, len(grid))
    done = _get(snapshot, "tasks_done")
    failed = _get(snapshot, "tasks_failed")
    running = _get(snapshot, "tasks_running")
    if done is None and stage == "done" and not task_states:
        done = total  # a COMPLETE job completed every task, even when we saw none of them
    done = int(done) if done is not None else _count(grid, "d")
    failed = int(failed) if failed is not None else _count(grid, "f")
    running = int(running) if running is not None else _count(grid, "ry")
    started = _get(snapshot, "started_at")
    ended = _get(snapshot, "ended_at")
    if stage in ("done", "failed") and ended is None:
        ended = now or dt.datetime.now(dt.timezone.utc)
    elapsed = 0.0
    if started is not None:
        end = ended or now or dt.datetime.now(dt.timezone.utc)
        elapsed = max(0.0, (end - started).total_seconds())
    tail: Iterable[Any] = list(_get(snapshot, "log_tail", default=()) or ())
    logs = tuple(format_log_line(e) for e in list(tail)[-LOG_LINES:])
    error = _clip(str(_get(snapshot, "error_message", default="") or ""), _MAX_ERROR)
    task_error = _clip(str(_get(snapshot, "first_task_error", default="") or ""), _MAX_ERROR)
    failed_at = ""
    if stage == "failed":
        failed_at = reached if reached in STAGES[:-1] else "queued"
    state = MonitorState(
        job_id=job_id,
        name=name,
        template_id=template_id,
        state=short_state(raw_state),
        stage=stage,
        failed_at=failed_at,
        done=done,
        running=0 if stage in ("done", "failed") else running,
        failed=failed,
        total=total,
        started_ms=epoch_ms(started),
        ended_ms=epoch_ms(ended),
        elapsed=round(elapsed, 3),
        grid=grid,
        logs=logs,
        error_message=error,
        task_error=task_error,
    )
    return replace(state, summary=summarize(state)) if state.terminal else state


def furthest(reached: str, stage: str) -> str:
    """The later of two stages in lifecycle order (``failed`` never advances)."""
    if stage not in STAGES:
        return reached
    if reached not in STAGES:
        return stage
    return stage if STAGES.index(stage) > STAGES.index(reached) else reached


def _tasks_phrase(s: MonitorState) -> str:
    if not s.total:
        return "no tasks"
    text = f"{s.done}/{s.total} task{'s' if s.total != 1 else ''} done"
    if s.failed:
        text += f", {s.failed} failed"
    return text


def summarize(s: MonitorState) -> str:
    """The one-line outcome shown when a job ends."""
    took = format_elapsed(s.elapsed) if s.started_ms else ""
    if s.stage == "done":
        return f"COMPLETE{' in ' + took if took else ''} · {_tasks_phrase(s)}"
    if s.stage == "failed":
        stage = STAGE_LABELS.get(s.failed_at, s.failed_at).lower()
        where = f" during {stage}" if s.failed_at else ""
        head = f"FAILED{where}{' after ' + took if took else ''} · {_tasks_phrase(s)}"
        return f"{head}: {s.error_message}" if s.error_message else head
    return ""


def _bar(s: MonitorState, width: int = 24) -> str:
    if not s.total:
        return ""
    filled = round(width * (s.done + s.failed) / s.total)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def render_text(s: MonitorState) -> str:
    """``text/plain``: one line while running (tqdm style), the outcome once it ends."""
    label = s.name or s.job_id or "job"
    ident = f" ({s.job_id})" if s.job_id and s.job_id != label else ""
    if s.terminal:
        mark = "✔" if s.stage == "done" else "✘"
        lines = [f"{mark} ByteNite job {label}{ident}: {s.summary}"]
        if s.outputs:
            lines.append(f"  {outputs_line(s.outputs, s.job_id)}")
        if s.task_error:
            lines.append(f"  first failing task: {s.task_error}")
        return "\n".join(lines)
    parts = [f"ByteNite job {label}{ident}", s.state, STAGE_LABELS.get(s.stage, s.stage)]
    if s.total:
        parts.append(_bar(s))
        counts = f"{s.done}/{s.total} done"
        if s.running:
            counts += f", {s.running} running"
        if s.failed:
            counts += f", {s.failed} failed"
        parts.append(counts)
    if s.started_ms:
        parts.append(format_elapsed(s.elapsed))
    parts.append(pace(s))
    return " ".join(p for p in parts if p)


def pace(s: MonitorState) -> str:
    """``2.5 tasks/s · ~12s left`` while tasks run and enough have finished, else ``""``."""
    from bytenite_nb.notebook.widgets._rate import pace_text

    if s.terminal or s.rate <= 0:
        return ""
    return pace_text(s.rate, s.eta if s.eta >= 0 else None)


def outputs_line(outputs: str, job_id: str) -> str:
    """What a finished job produced and how to load its results, in Python and as a magic
    (``js/monitor_logic.js`` outputsLine is the same)."""
    if not outputs:
        return ""
    return f"→ {outputs}; load them: job.load_results() or %bytenite results {job_id} --load"


def static_bundle(s: MonitorState) -> dict[str, str]:
    """The ``text/plain`` + ``text/html`` bundle of one state (what a display id updates to)."""
    return {"text/plain": render_text(s), "text/html": render_html(s)}


_OK, _BAD, _RUN, _MUTED, _BORDER = "#2da44e", "#cf222e", "#3b82f6", "#656d76", "#d0d7de"


def render_html(s: MonitorState) -> str:
    """Static HTML card (inline styles only: it must survive sanitisers and nbconvert)."""
    e = html.escape
    tone = "success" if s.stage == "done" else "danger" if s.stage == "failed" else "active"
    accent = {"success": _OK, "danger": _BAD}.get(tone, _RUN)
    label = s.name or s.job_id or "job"
    reached = s.failed_at if s.stage == "failed" else s.stage
    reached_idx = STAGES.index(reached) if reached in STAGES else 0
    steps = []
    for i, name in enumerate(STAGES):
        if s.stage == "done" or i < reached_idx:
            color, weight = _OK, "normal"
        elif i == reached_idx:
            color, weight = (_BAD if s.stage == "failed" else _RUN), "bold"
        else:
            color, weight = _BORDER, "normal"
        text = "Failed" if (i == len(STAGES) - 1 and s.stage == "failed") else STAGE_LABELS[name]
        steps.append(
            f'<span style="flex:1;text-align:center;border-bottom:3px solid {color};'
            f'font-weight:{weight};padding:1px 0">{e(text)}</span>'
        )
    pct_done = 100.0 * s.done / s.total if s.total else (100.0 if s.stage == "done" else 0.0)
    pct_failed = 100.0 * s.failed / s.total if s.total else 0.0
    counts = _tasks_phrase(s) if s.total else ""
    if s.running and not s.terminal:
        counts += f", {s.running} running"
    if pace(s):
        counts += f" · {pace(s)}"
    took = format_elapsed(s.elapsed) if s.started_ms else ""
    body = [
        f'<div class="bn-static bn-monitor-static" data-state="{e(s.state)}" '
        f'data-stage="{e(s.stage)}" style="font-family:system-ui,sans-serif;font-size:13px;'
        f"border:1px solid {_BORDER};border-left:4px solid {accent};border-radius:4px;"
        f'padding:8px 10px;max-width:760px">',
        f'<div><b>{e(label)}</b> <code style="color:{_MUTED}">{e(s.job_id)}</code> '
        f'<span style="background:{accent};color:#fff;border-radius:10px;padding:0 6px;'
        f'font-size:11px;font-weight:bold">{e(s.state)}</span> '
        f'<span style="color:{_MUTED}">{e(took)}</span></div>',
        f'<div style="display:flex;gap:4px;margin:6px 0;font-size:12px">{"".join(steps)}</div>',
        f'<div style="display:flex;height:8px;background:#f0f0f0;border-radius:4px;'
        f'overflow:hidden"><div style="width:{pct_done:.1f}%;background:{_OK}"></div>'
        f'<div style="width:{pct_failed:.1f}%;background:{_BAD}"></div></div>',
        f'<div style="color:{_MUTED};margin:3px 0">{e(counts)}</div>',
    ]
    if s.error_message or s.task_error:
        body.append(
            f'<div style="border:1px solid {_BAD};border-radius:4px;padding:6px 8px;margin:6px 0">'
            f'<div style="color:{_BAD};font-weight:bold;white-space:pre-wrap">'
            f"{e(s.error_message)}</div>"
            + (
                f'<pre style="margin:4px 0 0;white-space:pre-wrap">first failing task: '
                f"{e(s.task_error)}</pre>"
                if s.task_error
                else ""
            )
            + "</div>"
        )
    if s.summary:
        color = _OK if s.stage == "done" else _BAD
        body.append(f'<div style="color:{color};font-weight:bold">{e(s.summary)}</div>')
    if s.outputs:
        body.append(
            f'<div class="bn-outputs" style="margin:2px 0">→ {e(s.outputs)}; load them: '
            f"<code>job.load_results()</code> or "
            f"<code>%bytenite results {e(s.job_id)} --load</code></div>")
    if s.logs:
        opened = " open" if s.stage == "failed" else ""
        body.append(
            f'<details{opened}><summary style="color:{_MUTED}">last log lines</summary>'
            f'<pre style="font-size:12px;white-space:pre-wrap;margin:2px 0">'
            f"{e(chr(10).join(s.logs))}</pre></details>"
        )
    if s.terminal and s.job_id:
        body.append(
            f'<div style="color:{_MUTED};font-size:11px">full logs: '
            f"<code>%bytenite logs {e(s.job_id)}</code> or <code>job.logs_df()</code></div>"
        )
    body.append("</div>")
    return "".join(body)
