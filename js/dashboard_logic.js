// Pure logic for the jobs dashboard view (tested with node --test). A row's `status` is the
// job's status word (bytenite_nb/vocabulary.py): draft, queued, partitioning, running,
// assembling, complete, failed, aborted.

/** The status words of a job that has ended (its outcome). */
export const OUTCOMES = ["complete", "failed", "aborted"];
const NOT_STARTED = new Set(["draft", "unknown", ""]);

/** A status word as a label: the same word in capitals. */
export function statusLabel(status) {
  return String(status || "").toUpperCase();
}

/** CSS class suffix for a status cell: the outcome, "new" or "running". */
export function statusClass(status) {
  const s = String(status || "");
  if (OUTCOMES.includes(s)) return s;
  if (NOT_STARTED.has(s)) return "new";
  return "running";
}

/** Which row actions make sense for a job of this status. */
export function rowActions(status) {
  const actions = ["monitor", "logs"];
  if (status === "complete") actions.push("results");
  if (!OUTCOMES.includes(status)) actions.push("abort");
  return actions;
}

/**
 * Seconds a row's job has run: its duration once it ended, else the time since it started
 * (the clock ticks in the browser), else null.
 */
export function rowSeconds(row, nowMs) {
  if (row.duration != null && OUTCOMES.includes(row.status)) return row.duration;
  if (row.started_at && !NOT_STARTED.has(row.status)) {
    const start = Date.parse(row.started_at);
    if (isFinite(start)) return Math.max(0, (nowMs - start) / 1000);
  }
  return row.duration == null ? null : row.duration;
}

/** "1.5s", "2m 03s"; empty for missing values. Input in seconds. */
export function formatDuration(seconds) {
  if (seconds == null || seconds === "" || !isFinite(seconds)) return "";
  const s = Number(seconds);
  if (s < 10) return `${s.toFixed(1)}s`;
  if (s < 60) return `${Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

/** "2026-11-30 00:41" from an ISO string (UTC, as the table's data is). */
export function formatCreated(iso) {
  if (!iso) return "";
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(String(iso));
  return m ? `${m[1]} ${m[2]}` : String(iso);
}

/** Pager text and button states for page (0-based), pageSize and total rows. */
export function pageInfo(page, pageSize, total) {
  const pages = Math.max(1, Math.ceil((total || 0) / Math.max(1, pageSize)));
  const p = Math.min(Math.max(0, page || 0), pages - 1);
  const first = total ? p * pageSize + 1 : 0;
  const last = Math.min(total || 0, (p + 1) * pageSize);
  return {
    page: p,
    pages,
    label: total ? `${first}–${last} of ${total}` : "no jobs",
    hasPrev: p > 0,
    hasNext: p < pages - 1,
  };
}
