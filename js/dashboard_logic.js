// Pure logic for the jobs dashboard view (tested with node --test).

/** Short state name: "JOB_STATE_COMPLETE" -> "COMPLETE". */
export function shortState(state) {
  return String(state || "").replace(/^JOB_STATE_/, "");
}

const TERMINAL = new Set(["COMPLETE", "FAILED"]);
const NOT_STARTED = new Set(["NEW", "UNKNOWN", ""]);

/** CSS class suffix for a state cell. */
export function stateClass(state) {
  const s = shortState(state);
  if (TERMINAL.has(s)) return s;
  if (NOT_STARTED.has(s)) return "new";
  return "running";
}

/** Which row actions make sense for a job in this state. */
export function rowActions(state) {
  const s = shortState(state);
  const actions = ["monitor", "logs"];
  if (s === "COMPLETE") actions.push("results");
  if (!TERMINAL.has(s)) actions.push("abort");
  return actions;
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
