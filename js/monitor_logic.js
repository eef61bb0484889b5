// Pure logic for the job monitor view: no DOM, no globals, so `node --test` covers it.
// monitor.js imports from here; bytenite_nb/notebook/widgets/_assets.py inlines this file into
// the widget's ES module because anywidget loads modules from a blob: URL, where relative
// imports cannot resolve.

/** The lifecycle steps the monitor shows, in order. */
export const STAGES = ["queued", "partitioning", "tasks", "assembling", "done"];

/** Human labels for the steps (and for the last step of a failed or aborted job). */
export const STAGE_LABELS = {
  queued: "Queued",
  partitioning: "Partitioning",
  tasks: "Tasks",
  assembling: "Assembling",
  done: "Done",
  failed: "Failed",
  aborted: "Aborted",
};

/** Stages of a job that has ended. */
export const END_STAGES = ["done", "failed", "aborted"];

/**
 * Colour of each tone (badge backgrounds behind white text, contrast >= 4.5:1); the same as
 * bytenite_nb/notebook/widgets/_view.py COLORS and the --bn-* variables in bytenite.css.
 */
export const TONE_COLORS = {
  success: "#1a7f37",
  danger: "#cf222e",
  active: "#0969da",
  warning: "#9a6700",
  neutral: "#59636e",
};

/** The colour family of a stage (success, warning: complete with warnings, danger,
 * neutral: aborted, active). */
export function toneOf(stage, warnings) {
  if (stage === "done") return warnings && warnings.length ? "warning" : "success";
  if (stage === "failed") return "danger";
  if (stage === "aborted") return "neutral";
  return "active";
}

/** A status word as a label: the same word in capitals ("aborted" -> "ABORTED"). */
export function label(word) {
  return String(word || "").toUpperCase();
}

/**
 * One character per task in the `grid` trait (kept in sync with
 * bytenite_nb/notebook/widgets/_view.py GRID_CHARS by tests/unit/notebook/test_view_parity.py).
 */
export const GRID_STATES = {
  q: { name: "queued", color: "#c9d1d9" },
  r: { name: "running", color: "#0969da" },
  y: { name: "retrying", color: "#d4a72c" },
  d: { name: "done", color: "#1a7f37" },
  f: { name: "failed", color: "#cf222e" },
  c: { name: "cancelled", color: "#8c959f" },
};

const UNKNOWN_CELL = { name: "unknown", color: "#e5e7eb" };

/** Colour and name of one grid character (unknown characters get a neutral grey). */
export function cellStyle(ch) {
  return GRID_STATES[ch] || UNKNOWN_CELL;
}

/** Count tasks per grid character. */
export function countGrid(grid) {
  const counts = {};
  for (const ch of grid || "") counts[ch] = (counts[ch] || 0) + 1;
  return counts;
}

/**
 * Indices whose character differs between two grid strings, or null when a full redraw is
 * cheaper/necessary (length changed or most cells changed).
 */
export function diffGrid(prev, next) {
  if (prev == null || prev.length !== next.length) return null;
  const changed = [];
  const limit = next.length / 2;
  for (let i = 0; i < next.length; i++) {
    if (prev.charCodeAt(i) !== next.charCodeAt(i)) {
      changed.push(i);
      if (changed.length > limit) return null;
    }
  }
  return changed;
}

/**
 * Canvas layout for `n` task cells in `width` CSS pixels: square cells as large as fit within
 * `maxHeight` (clamped to [minCell, maxCell]), a 1px gap once cells are big enough to need one.
 * With very many tasks the height may exceed maxHeight at the minimum cell size; the CSS then
 * scrolls, so thousands of tasks stay one cheap canvas rather than thousands of DOM nodes.
 */
export function gridLayout(n, width, { maxHeight = 120, minCell = 3, maxCell = 14 } = {}) {
  const w = Math.max(40, Math.floor(width || 0));
  if (!n || n <= 0) return { cols: 0, rows: 0, cell: 0, gap: 0, width: w, height: 0 };
  let cell = Math.floor(Math.sqrt((w * maxHeight) / n));
  cell = Math.max(minCell, Math.min(maxCell, cell));
  // Shrink until the grid fits the height budget (or we hit the minimum).
  for (;;) {
    const gap = cell >= 6 ? 1 : 0;
    const cols = Math.max(1, Math.floor((w + gap) / (cell + gap)));
    const rows = Math.ceil(n / cols);
    const height = rows * (cell + gap) - gap;
    if (height <= maxHeight || cell <= minCell) {
      return { cols, rows, cell, gap, width: cols * (cell + gap) - gap, height };
    }
    cell -= 1;
  }
}

/** Pixel rectangle of task `i` in a layout. */
export function cellRect(i, layout) {
  const col = i % layout.cols;
  const row = Math.floor(i / layout.cols);
  const step = layout.cell + layout.gap;
  return { x: col * step, y: row * step, w: layout.cell, h: layout.cell };
}

/** Task index under a pixel position, or -1. */
export function cellAt(x, y, layout, n) {
  const step = layout.cell + layout.gap;
  if (step <= 0 || x < 0 || y < 0) return -1;
  const col = Math.floor(x / step);
  const row = Math.floor(y / step);
  if (col >= layout.cols) return -1;
  const i = row * layout.cols + col;
  return i < n ? i : -1;
}

/** "4.2s", "3m 05s", "1h 02m". */
export function formatElapsed(ms) {
  if (ms == null || !isFinite(ms) || ms < 0) return "";
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1)}s`;
  if (s < 60) return `${Math.floor(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, "0")}m`;
}

/** Elapsed milliseconds from epoch-ms traits (0 = unset); runs on the client clock. */
export function elapsedMs(startedMs, endedMs, nowMs) {
  if (!startedMs) return null;
  const end = endedMs || nowMs;
  return Math.max(0, end - startedMs);
}

/**
 * The view model: everything render() needs, derived from the model's trait values.
 * @param {Record<string, any>} s trait values (see JobMonitor in monitor.py)
 * @param {number} nowMs current time, for the running clock
 */
export function viewModel(s, nowMs) {
  const total = s.total || 0;
  const done = s.done || 0;
  const failed = s.failed || 0;
  const running = s.running || 0;
  const stage = s.stage || "queued";
  const terminal = END_STAGES.includes(stage);
  const ended = stage === "failed" || stage === "aborted";
  const warnings = Array.isArray(s.warnings) ? s.warnings : [];
  const tone = s.tone || toneOf(stage, warnings);
  // A bare job record knows how many tasks there are, not how many are done.
  const counted = s.counted === undefined ? total > 0 : !!s.counted;
  const reached = ended ? s.failed_at || "queued" : stage;
  const reachedIdx = Math.max(0, STAGES.indexOf(reached));
  const steps = STAGES.map((name, i) => {
    let status = "todo";
    if (stage === "done" || i < reachedIdx) status = "done";
    else if (i === reachedIdx) status = ended ? stage : "current";
    const text = i === STAGES.length - 1 && ended ? STAGE_LABELS[stage] : STAGE_LABELS[name];
    return { name, label: text, status };
  });
  const finished = done + failed;
  const pct = total > 0 ? Math.min(100, (100 * finished) / total) : stage === "done" ? 100 : 0;
  const donePct = total > 0 ? (100 * done) / total : stage === "done" ? 100 : 0;
  const failedPct = total > 0 ? (100 * failed) / total : 0;
  const runningPct = total > 0 ? (100 * running) / total : 0;
  const elapsed = formatElapsed(elapsedMs(s.started_ms, s.ended_ms, nowMs));
  let counts = "";
  if (total > 0 && !counted) counts = `${total} task${total === 1 ? "" : "s"}`;
  else if (total > 0) {
    counts =
      `${done}/${total} done` +
      (running ? ` · ${running} running` : "") +
      (failed ? ` · ${failed} failed` : "");
  } else if (stage === "queued") counts = "waiting for tasks";
  return {
    title: s.name || s.job_id || "job",
    jobId: s.job_id || "",
    state: s.state || "",
    badge: label(s.state || stage),
    stage,
    tone,
    color: TONE_COLORS[tone] || TONE_COLORS.active,
    terminal,
    steps,
    pct,
    donePct,
    failedPct,
    runningPct,
    counts,
    elapsed,
    summary: s.summary || "",
    error: stage === "failed" ? s.error_message || "" : "",
    taskError: stage === "failed" ? s.task_error || "" : "",
    warnings: stage === "done" ? warnings : [],
    logs: Array.isArray(s.logs) ? s.logs : [],
    canAbort: !terminal && !!s.abortable && !s.abort_requested,
    notice: s.notice || "",
  };
}

/**
 * What a finished job produced and how to load it (same text as _view.py's render_text):
 * "→ 1 result file (result.csv), 1.2 KB; load them: job.load_results() or ...".
 */
export function outputsLine(outputs, jobId) {
  if (!outputs) return "";
  return `→ ${outputs}; load them: job.load_results() or %bytenite results ${jobId} --load`;
}
