// JobMonitor view (anywidget ES module). No bundler and no network imports: the relative
// imports below are inlined by bytenite_nb/notebook/widgets/_assets.py.
import { viewModel, gridLayout, cellRect, cellAt, cellStyle, diffGrid } from "./monitor_logic.js";
import { coalesce } from "./throttle.js";

/** Create an element with a class and optional text. */
function h(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text != null) node.textContent = text;
  return node;
}

const TRAITS = [
  "job_id", "name", "state", "stage", "failed_at", "tone", "done", "running", "failed", "total",
  "counted", "started_ms", "ended_ms", "grid", "logs", "error_message", "task_error",
  "warnings", "summary", "abortable", "abort_requested", "notice",
];

function snapshot(model) {
  const s = {};
  for (const k of TRAITS) s[k] = model.get(k);
  return s;
}

/** The mark before a finished job's summary, by tone (as in the text output). */
const MARKS = { success: "✔ ", warning: "⚠ ", danger: "✘ ", neutral: "■ " };

function render({ model, el }) {
  const root = h("div", "bn-monitor");
  el.appendChild(root);

  // Header: title, id, state badge, clock, actions.
  const head = h("div", "bn-head");
  const title = h("span", "bn-title");
  const jobId = h("code", "bn-id");
  const badge = h("span", "bn-badge");
  const clock = h("span", "bn-clock");
  const spacer = h("span", "bn-spacer");
  const logsBtn = h("button", "bn-btn bn-logs-btn", "Logs");
  logsBtn.title = "Show the job's full logs as a DataFrame";
  const abortBtn = h("button", "bn-btn bn-abort", "Abort");
  abortBtn.title = "Abort this job on the server";
  head.append(title, jobId, badge, clock, spacer, logsBtn, abortBtn);

  const steps = h("ol", "bn-steps");
  const bar = h("div", "bn-bar");
  const barDone = h("div", "bn-bar-done");
  const barFailed = h("div", "bn-bar-failed");
  const barRunning = h("div", "bn-bar-running");
  bar.append(barDone, barFailed, barRunning);
  const counts = h("div", "bn-counts");

  const gridWrap = h("div", "bn-grid");
  const canvas = h("canvas", "bn-grid-canvas");
  gridWrap.appendChild(canvas);

  const error = h("div", "bn-error");
  const errorMsg = h("div", "bn-error-msg");
  const taskErr = h("pre", "bn-task-error");
  error.append(errorMsg, taskErr);

  const warningsBox = h("div", "bn-warnings");
  const warningsTitle = h("div", "bn-warnings-title");
  const warningsList = h("ul", "bn-warnings-list");
  warningsBox.append(warningsTitle, warningsList);

  const summary = h("div", "bn-summary");
  const summaryMark = h("span", "bn-mark");
  const summaryText = h("span", "bn-summary-text");
  summary.append(summaryMark, summaryText);
  const notice = h("div", "bn-notice");
  const logTail = h("pre", "bn-logtail");
  const logsPanel = h("div", "bn-logs-panel");

  root.append(head, steps, bar, counts, gridWrap, error, warningsBox, summary, notice, logTail,
    logsPanel);

  // Task grid on one canvas: thousands of tasks cost one element, and only changed cells are
  // repainted between updates.
  let drawn = { grid: null, layoutKey: "" };
  let layout = null;
  function drawGrid(grid) {
    const n = grid.length;
    if (!n) {
      gridWrap.style.display = "none";
      drawn = { grid: null, layoutKey: "" };
      return;
    }
    gridWrap.style.display = "";
    const width = Math.max(120, (root.clientWidth || 480) - 2);
    const next = gridLayout(n, width);
    const key = `${n}:${next.cols}:${next.cell}`;
    const ctx = canvas.getContext && canvas.getContext("2d");
    if (!ctx) return;
    let indices = key === drawn.layoutKey ? diffGrid(drawn.grid, grid) : null;
    if (indices === null) {
      layout = next;
      const dpr = (typeof window !== "undefined" && window.devicePixelRatio) || 1;
      canvas.width = Math.max(1, Math.round(layout.width * dpr));
      canvas.height = Math.max(1, Math.round(layout.height * dpr));
      canvas.style.width = `${layout.width}px`;
      canvas.style.height = `${layout.height}px`;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, layout.width, layout.height);
      indices = null;
    }
    const paint = (i) => {
      const r = cellRect(i, layout);
      ctx.fillStyle = cellStyle(grid[i]).color;
      ctx.fillRect(r.x, r.y, r.w, r.h);
    };
    if (indices === null) for (let i = 0; i < n; i++) paint(i);
    else for (const i of indices) paint(i);
    drawn = { grid, layoutKey: key };
    canvas.setAttribute("data-tasks", String(n));
  }
  canvas.addEventListener("mousemove", (ev) => {
    const grid = model.get("grid") || "";
    if (!layout) return;
    const rect = canvas.getBoundingClientRect();
    const i = cellAt(ev.clientX - rect.left, ev.clientY - rect.top, layout, grid.length);
    canvas.title = i < 0 ? "" : `task-${i}: ${cellStyle(grid[i]).name}`;
  });

  function update() {
    const vm = viewModel(snapshot(model), Date.now());
    root.dataset.state = vm.state;
    root.dataset.stage = vm.stage;
    root.dataset.tone = vm.tone;
    title.textContent = vm.title;
    jobId.textContent = vm.jobId;
    jobId.style.display = vm.jobId && vm.jobId !== vm.title ? "" : "none";
    badge.textContent = vm.badge;
    clock.textContent = vm.elapsed;

    steps.replaceChildren(
      ...vm.steps.map((st) => {
        const li = h("li", `bn-step bn-step-${st.status}`, st.label);
        li.dataset.stage = st.name;
        return li;
      }),
    );
    barDone.style.width = `${vm.donePct}%`;
    barFailed.style.width = `${vm.failedPct}%`;
    barRunning.style.width = `${Math.min(vm.runningPct, 100 - vm.donePct - vm.failedPct)}%`;
    counts.textContent = vm.counts;

    drawGrid(model.get("grid") || "");

    error.style.display = vm.error || vm.taskError ? "" : "none";
    errorMsg.textContent = vm.error;
    taskErr.textContent = vm.taskError;
    taskErr.style.display = vm.taskError ? "" : "none";
    warningsTitle.textContent = vm.warnings.length === 1 ? "⚠ warning" : "⚠ warnings";
    warningsList.replaceChildren(...vm.warnings.map((w) => h("li", null, w)));
    warningsBox.style.display = vm.warnings.length ? "" : "none";
    summaryMark.textContent = MARKS[vm.tone] || "";
    summaryText.textContent = vm.summary;
    summary.style.display = vm.summary ? "" : "none";
    notice.textContent = vm.notice;
    notice.style.display = vm.notice ? "" : "none";
    logTail.textContent = vm.logs.join("\n");
    logTail.style.display = vm.logs.length ? "" : "none";

    abortBtn.disabled = !vm.canAbort;
    abortBtn.style.display = vm.terminal ? "none" : "";
    abortBtn.textContent = model.get("abort_requested") ? "Aborting…" : "Abort";
  }
  const schedule = coalesce(update);

  abortBtn.addEventListener("click", () => {
    abortBtn.disabled = true;
    model.send({ type: "abort" });
  });
  logsBtn.addEventListener("click", () => {
    if (logsPanel.childElementCount) {
      logsPanel.replaceChildren(); // second click hides the table
      logsBtn.textContent = "Logs";
      return;
    }
    logsBtn.disabled = true;
    logsPanel.replaceChildren(h("div", "bn-muted", "loading logs…"));
    model.send({ type: "logs" });
  });

  // Python answers a "logs" request with pandas' own escaped HTML of the logs DataFrame.
  function onCustom(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "logs") {
      logsBtn.disabled = false;
      logsBtn.textContent = "Hide logs";
      const panel = h("div", "bn-logs-table");
      panel.innerHTML = msg.html || "";
      const note = msg.note ? [h("div", "bn-muted", msg.note)] : [];
      logsPanel.replaceChildren(...note, panel);
    } else if (msg.type === "error") {
      logsBtn.disabled = false;
      logsPanel.replaceChildren(h("div", "bn-error-msg", msg.message || "error"));
    }
  }
  model.on("msg:custom", onCustom);
  for (const k of TRAITS) model.on(`change:${k}`, schedule);

  // The clock ticks in the browser: no kernel messages just to advance elapsed time.
  const timer = setInterval(() => {
    if (!model.get("ended_ms") && model.get("started_ms")) {
      const vm = viewModel(snapshot(model), Date.now());
      clock.textContent = vm.elapsed;
    }
  }, 1000);
  update();

  return () => {
    clearInterval(timer);
    model.off("msg:custom", onCustom);
    for (const k of TRAITS) model.off(`change:${k}`, schedule);
  };
}

export default { render };
