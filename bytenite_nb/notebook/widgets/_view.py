"""The monitor's view model: job snapshot -> trait values -> text/plain and static HTML.

Pure functions with no widget or IPython dependency, so the live widget, the updating-HTML
fallback, the logging fallback and the frozen final output all render the same facts, in the
words of :mod:`bytenite_nb.vocabulary` (the badge says ``RUNNING`` while tasks run, an
abort reads ``ABORTED`` in a neutral colour, a job that completed over nothing is amber).

Colours: the static HTML uses JupyterLab's CSS variables (``--jp-*``) with light-theme
fallbacks, so a finished card stays readable in a dark theme, saved, or rendered elsewhere.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bytenite_nb import vocabulary
from bytenite_nb.wire import JobState, TaskState

#: The lifecycle steps the monitor shows, in order. ``js/monitor_logic.js`` has the same STAGES,
#: STAGE_LABELS, grid characters, tones and colours; ``tests/unit/notebook/test_view_parity.py``
#: keeps them in step.
STAGES: tuple[str, ...] = ("queued", "partitioning", "tasks", "assembling", "done")
STAGE_LABELS = {
    "queued": "Queued",
    "partitioning": "Partitioning",
    "tasks": "Tasks",
    "assembling": "Assembling",
    "done": "Done",
    "failed": "Failed",
    "aborted": "Aborted",
}
#: Stages of a job that has ended.
END_STAGES = ("done", "failed", "aborted")

#: Tone colours, each readable as a badge background behind white text (contrast >= 4.5:1)
#: in any theme. Fixed on purpose: JupyterLab's --jp-success/--jp-warn colours are too light
#: behind white text; every text, border and background colour follows the theme instead.
COLORS = {
    "success": "#1a7f37",
    "danger": "#cf222e",
    "active": "#0969da",
    "warning": "#9a6700",
    "neutral": "#59636e",
}
_OK, _BAD, _RUN, _WARN, _NEUTRAL = (COLORS[k] for k in ("success", "danger", "active",
                                                         "warning", "neutral"))
#: Theme-aware colours of the static HTML (JupyterLab's variables, light fallbacks).
_FG = "var(--jp-content-font-color1, #1f2328)"
_MUTED = "var(--jp-content-font-color2, #57606a)"
_BORDER = "var(--jp-border-color2, #d0d7de)"
_TRACK = "var(--jp-layout-color2, #eaeef2)"
_CHIP_BG = "var(--jp-layout-color2, #eaeef2)"
_CHIP_FG = "var(--jp-content-font-color1, #1f2328)"

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
_COMPLETE_UNFINISHED = str.maketrans({"q": "d", "r": "d", "y": "d"})
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


def label(word: str) -> str:
    """How a status word is shown as a label (badges, the first word of a summary): the same
    word in capitals (``aborted`` -> ``ABORTED``)."""
    return word.upper()


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
    """Everything the monitor shows: one value per synced trait of ``JobMonitor``.

    ``state`` is the job's status word (``running``, ``complete``, ``aborted``...);
    ``stage`` the step of :data:`STAGES` it is at, or ``failed``/``aborted`` once it ended
    that way (``failed_at``: the step it had reached); ``tone`` the colour family
    (``success``, ``warning``: complete with warnings, ``danger``, ``neutral``: aborted,
    ``active``); ``counted`` whether the task counts are known (a bare job record has a
    task total but no task states).
    """

    job_id: str = ""
    name: str = ""
    template_id: str = ""
    state: str = "unknown"
    stage: str = "queued"
    failed_at: str = ""
    tone: str = "active"
    done: int = 0
    running: int = 0
    failed: int = 0
    total: int = 0
    counted: bool = False
    started_ms: float = 0.0
    ended_ms: float = 0.0
    elapsed: float = 0.0
    grid: str = ""
    logs: tuple[str, ...] = field(default_factory=tuple)
    error_message: str = ""
    task_error: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)
    summary: str = ""
    #: Smoothed tasks per second (0: not known yet) and seconds left (-1: not known yet),
    #: from the feed's ``RateMeter`` (``widgets/_rate.py``) while tasks run.
    rate: float = 0.0
    eta: float = -1.0
    #: What a COMPLETE job produced (``api.outputs.Outputs.describe()``), once the feed asked.
    outputs: str = ""

    @property
    def terminal(self) -> bool:
        """True once the job ended (complete, failed or aborted)."""
        return self.stage in END_STAGES

    def traits(self) -> dict[str, Any]:
        """Trait name -> value (lists, not tuples, so traitlets compares like with like)."""
        values = asdict(self)
        values["logs"] = list(self.logs)
        values["warnings"] = list(self.warnings)
        return values


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return default


def _count(grid: str, chars: str) -> int:
    return sum(grid.count(c) for c in chars)


def _reached_stage(snapshot: Any) -> str:
    """The furthest step a job reached before it ended, from its record: the snapshot's
    ``furthest`` state, else the job's ``stateTimestamps``; ``""`` when unknown."""
    state = getattr(snapshot, "furthest", None)
    if state is None or state is JobState.UNKNOWN:
        raw = getattr(snapshot, "raw", None)
        stamps = (raw.get("stateTimestamps") if isinstance(raw, Mapping) else None) or {}
        ranks = [s for s in (_parse_state(name) for name in stamps)
                 if s is not None and not s.is_terminal and s is not JobState.UNKNOWN]
        state = max(ranks, key=list(JobState).index) if ranks else None
    return stage_of(state) if state is not None else ""


def _parse_state(name: Any) -> JobState | None:
    try:
        return JobState.parse(name)
    except ValueError:
        return None


def tone_of(stage: str, warnings: Iterable[str] = ()) -> str:
    """The colour family of a stage: success/warning/danger/neutral/active."""
    if stage == "done":
        return "warning" if any(True for _ in warnings) else "success"
    return {"failed": "danger", "aborted": "neutral"}.get(stage, "active")


def state_from_snapshot(
    snapshot: Any,
    *,
    job_id: str = "",
    name: str = "",
    template_id: str = "",
    reached: str = "queued",
    now: dt.datetime | None = None,
) -> MonitorState:
    """Build a :class:`MonitorState` from a ``JobSnapshot`` or a ``Job`` record.

    ``reached`` is the furthest stage seen before, so a failure can say where it happened;
    the record's own history (``stateTimestamps``, the snapshot's ``furthest``) counts too.
    Reads attributes defensively: the snapshot may be mutated by the watcher thread while we
    read it, and a few fields are optional.
    """
    raw_state = _get(snapshot, "state", default=JobState.UNKNOWN)
    status = vocabulary.job_status(snapshot)
    stage = "aborted" if status == vocabulary.ABORTED else stage_of(raw_state)
    task_states = dict(_get(snapshot, "task_states", default={}) or {})
    total = int(_get(snapshot, "tasks_total", "num_chunks", default=0) or 0)
    grid = encode_grid(task_states, total)
    if stage in ("failed", "aborted"):
        # An ended job runs nothing more: unfinished tasks will never finish, show that.
        grid = grid.translate(_CANCEL_UNFINISHED)
    elif stage == "done":
        # A COMPLETE job completed every task: a task still queued or running here is one
        # whose last events had not been seen when the job's end was (its record says so).
        grid = grid.translate(_COMPLETE_UNFINISHED)
    total = max(total, len(grid))
    counted = bool(task_states) or stage == "done"
    done = failed = running = 0
    if task_states:
        done, failed, running = _count(grid, "d"), _count(grid, "f"), _count(grid, "ry")
    elif stage == "done":
        done = total  # a COMPLETE job completed every task, even when we saw none of them
    started = _get(snapshot, "started_at")
    ended = _get(snapshot, "ended_at")
    if stage in END_STAGES and ended is None:
        ended = now or dt.datetime.now(dt.timezone.utc)
    elapsed = 0.0
    if started is not None:
        end = ended or now or dt.datetime.now(dt.timezone.utc)
        elapsed = max(0.0, (end - started).total_seconds())
    tail: Iterable[Any] = list(_get(snapshot, "log_tail", default=()) or ())
    logs = tuple(format_log_line(e) for e in list(tail)[-LOG_LINES:])
    error = _clip(str(_get(snapshot, "error_message", default="") or ""), _MAX_ERROR)
    task_error = _clip(str(_get(snapshot, "first_task_error", default="") or ""), _MAX_ERROR)
    warnings = tuple(_clip(str(w), _MAX_LINE)
                     for w in (_get(snapshot, "warnings", default=()) or ()))
    failed_at = ""
    if stage in ("failed", "aborted"):
        if total:
            reached = furthest(reached, "tasks")
        where = furthest(reached, _reached_stage(snapshot) or reached)
        failed_at = where if where in STAGES[:-1] else "queued"
    state = MonitorState(
        job_id=job_id,
        name=name,
        template_id=template_id,
        state=status,
        stage=stage,
        failed_at=failed_at,
        tone=tone_of(stage, warnings if stage == "done" else ()),
        done=done,
        running=0 if stage in END_STAGES else running,
        failed=failed,
        total=total,
        counted=counted,
        started_ms=epoch_ms(started),
        ended_ms=epoch_ms(ended),
        elapsed=round(elapsed, 3),
        grid=grid,
        logs=logs,
        error_message=error,
        task_error=task_error,
        warnings=warnings if stage == "done" else (),
    )
    return replace(state, summary=summarize(state)) if state.terminal else state


def furthest(reached: str, stage: str) -> str:
    """The later of two stages in lifecycle order (``failed``/``aborted`` never advance)."""
    if stage not in STAGES:
        return reached
    if reached not in STAGES:
        return stage
    return stage if STAGES.index(stage) > STAGES.index(reached) else reached


def _tasks_phrase(s: MonitorState) -> str:
    if not s.total:
        return "no tasks"
    plural = "s" if s.total != 1 else ""
    if not s.counted:
        return f"{s.total} task{plural}"
    text = f"{s.done}/{s.total} task{plural} done"
    if s.failed:
        text += f", {s.failed} failed"
    return text


def summarize(s: MonitorState) -> str:
    """The one-line outcome shown when a job ends."""
    took = format_elapsed(s.elapsed) if s.started_ms else ""
    if s.stage == "done":
        head = label(vocabulary.COMPLETE)
        if s.warnings:
            count = len(s.warnings)
            head += f" with {count} warning{'s' if count != 1 else ''}"
        return f"{head}{' in ' + took if took else ''} · {_tasks_phrase(s)}"
    if s.stage in ("failed", "aborted"):
        stage = STAGE_LABELS.get(s.failed_at, s.failed_at).lower()
        where = f" during {stage}" if s.failed_at else ""
        word = label(vocabulary.ABORTED if s.stage == "aborted" else vocabulary.FAILED)
        head = f"{word}{where}{' after ' + took if took else ''} · {_tasks_phrase(s)}"
        if s.stage == "aborted":
            return head  # the message only says it was aborted: the word already does
        return f"{head}: {s.error_message}" if s.error_message else head
    return ""


def _bar(s: MonitorState, width: int = 24) -> str:
    if not s.total or not s.counted:
        return ""
    filled = round(width * (s.done + s.failed) / s.total)
    return "[" + "#" * filled + "." * (width - filled) + "]"


#: The mark in front of a finished job's text line, by tone.
_MARKS = {"success": "✔", "warning": "⚠", "danger": "✘", "neutral": "■"}


def render_text(s: MonitorState) -> str:
    """``text/plain``: one line while running (tqdm style), the outcome once it ends."""
    title = s.name or s.job_id or "job"
    ident = f" ({s.job_id})" if s.job_id and s.job_id != title else ""
    if s.terminal:
        lines = [f"{_MARKS.get(s.tone, '✔')} ByteNite job {title}{ident}: {s.summary}"]
        lines.extend(f"  warning: {w}" for w in s.warnings)
        if s.outputs:
            lines.append(f"  {outputs_line(s.outputs, s.job_id)}")
        if s.task_error and s.stage == "failed":
            lines.append(f"  first failing task: {s.task_error}")
        return "\n".join(lines)
    parts = [f"ByteNite job {title}{ident}", label(s.state), STAGE_LABELS.get(s.stage, s.stage)]
    if s.total:
        parts.append(_bar(s))
        if s.counted:
            counts = f"{s.done}/{s.total} done"
            if s.running:
                counts += f", {s.running} running"
            if s.failed:
                counts += f", {s.failed} failed"
        else:
            counts = f"{s.total} tasks"
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


def render_html(s: MonitorState) -> str:
    """Static HTML card (inline styles only: it must survive sanitisers and nbconvert).

    Colours come from JupyterLab's CSS variables with light-theme fallbacks; the badge and
    the coloured marks carry the tone, text stays in the theme's own colours.
    """
    e = html.escape
    accent = COLORS.get(s.tone, _RUN)
    title = s.name or s.job_id or "job"
    reached = s.failed_at if s.stage in ("failed", "aborted") else s.stage
    reached_idx = STAGES.index(reached) if reached in STAGES else 0
    steps = []
    for i, name in enumerate(STAGES):
        if s.stage == "done" or i < reached_idx:
            color, weight = _OK, "normal"
        elif i == reached_idx:
            color = {"failed": _BAD, "aborted": _NEUTRAL}.get(s.stage, _RUN)
            weight = "bold"
        else:
            color, weight = _BORDER, "normal"
        text = STAGE_LABELS[name]
        if i == len(STAGES) - 1 and s.stage in ("failed", "aborted"):
            text = STAGE_LABELS[s.stage]
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
    chip = (f'<code style="color:{_CHIP_FG};background:{_CHIP_BG};border-radius:3px;'
            f'padding:0 4px">{e(s.job_id)}</code> ' if s.job_id and s.job_id != title else "")
    body = [
        f'<div class="bn-static bn-monitor-static" data-state="{e(s.state)}" '
        f'data-stage="{e(s.stage)}" data-tone="{e(s.tone)}" '
        f'style="font-family:system-ui,sans-serif;font-size:13px;color:{_FG};'
        f"border:1px solid {_BORDER};border-left:4px solid {accent};border-radius:4px;"
        f'padding:8px 10px;max-width:760px">',
        f'<div><b>{e(title)}</b> {chip}'
        f'<span class="bn-badge" style="background:{accent};color:#fff;border-radius:10px;'
        f'padding:0 6px;font-size:11px;font-weight:bold">{e(label(s.state))}</span> '
        f'<span style="color:{_MUTED}">{e(took)}</span></div>',
        f'<div style="display:flex;gap:4px;margin:6px 0;font-size:12px">{"".join(steps)}</div>',
        f'<div style="display:flex;height:8px;background:{_TRACK};border-radius:4px;'
        f'overflow:hidden"><div style="width:{pct_done:.1f}%;background:{_OK}"></div>'
        f'<div style="width:{pct_failed:.1f}%;background:{_BAD}"></div></div>',
        f'<div class="bn-counts" style="color:{_FG};margin:3px 0">{e(counts)}</div>',
    ]
    if s.stage == "failed" and (s.error_message or s.task_error):
        body.append(
            f'<div style="border:1px solid {_BAD};border-radius:4px;padding:6px 8px;margin:6px 0">'
            f'<div style="font-weight:bold;white-space:pre-wrap">'
            f'<span style="color:{_BAD}">✘</span> {e(s.error_message)}</div>'
            + (
                f'<pre style="margin:4px 0 0;white-space:pre-wrap;color:{_FG};'
                f'background:transparent">first failing task: {e(s.task_error)}</pre>'
                if s.task_error
                else ""
            )
            + "</div>"
        )
    if s.warnings:
        items = "".join(f"<li>{e(w)}</li>" for w in s.warnings)
        body.append(
            f'<div class="bn-warnings" style="border:1px solid {_WARN};border-radius:4px;'
            f'padding:4px 8px;margin:6px 0"><b><span style="color:{_WARN}">⚠</span> '
            f'warning{"s" if len(s.warnings) != 1 else ""}</b>'
            f'<ul style="margin:2px 0;padding-left:18px">{items}</ul></div>'
        )
    if s.summary:
        mark = _MARKS.get(s.tone, "")
        body.append(f'<div class="bn-summary" style="font-weight:bold">'
                    f'<span style="color:{accent}">{mark}</span> {e(s.summary)}</div>')
    if s.outputs:
        body.append(
            f'<div class="bn-outputs" style="margin:2px 0">→ {e(s.outputs)}; load them: '
            f"<code>job.load_results()</code> or "
            f"<code>%bytenite results {e(s.job_id)} --load</code></div>")
    if s.logs:
        opened = " open" if s.stage == "failed" else ""
        body.append(
            f'<details{opened}><summary style="color:{_MUTED}">last log lines</summary>'
            f'<pre style="font-size:12px;white-space:pre-wrap;margin:2px 0;color:{_FG};'
            f'background:transparent">{e(chr(10).join(s.logs))}</pre></details>'
        )
    if s.terminal and s.job_id:
        body.append(
            f'<div style="color:{_MUTED};font-size:11px">full logs: '
            f"<code>%bytenite logs {e(s.job_id)}</code> or <code>job.logs_df()</code></div>"
        )
    body.append("</div>")
    return "".join(body)
