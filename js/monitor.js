// JobMonitor view (anywidget ES module). No bundler and no network imports: the relative
// imports below are inlined by bytenite_nb/notebook/widgets/_assets.py.
import {
  viewModel, gridLayout, cellRect, cellAt, cellStyle, diffGrid, outputsLine,
} from "./monitor_logic.js";
import { coalesce } from "./throttle.js";
import { RateMeter, paceText } from "./rate_logic.js";

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
  "warnings", "summary", "abortable", "abort_requested", "notice", "rate", "eta", "outputs",
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
  const timelineBtn = h("button", "bn-btn bn-timeline-btn", "Timeline");
  timelineBtn.title = "Every task as a bar from its start to its end (job.timeline())";
  head.append(title, jobId, badge, clock, spacer, timelineBtn, logsBtn, abortBtn);

  const steps = h("ol", "bn-steps");
  const bar = h("div", "bn-bar");
  const barDone = h("div", "bn-bar-done");
  const barFailed = h("div", "bn-bar-failed");
  const barRunning = h("div", "bn-bar-running");
  bar.append(barDone, barFailed, barRunning);
  const counts = h("div", "bn-counts");
  const pace = h("span", "bn-pace");

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
  const outputs = h("div", "bn-outputs");
  const notice = h("div", "bn-notice");
  const logTail = h("pre", "bn-logtail");
  const logsPanel = h("div", "bn-logs-panel");
  const timelinePanel = h("div", "bn-timeline-panel");

  root.append(head, steps, bar, counts, gridWrap, error, warningsBox, summary, outputs, notice,
    logTail, timelinePanel, logsPanel);

  // Rate and time left: the browser's own meter, fed on the browser's clock whenever more
  // tasks have finished, so the time left counts down between kernel messages. Until it has
  // seen enough tasks finish (e.g. just after the page was reloaded) the kernel's estimate,
  // from the same meter, is shown.
  const meter = new RateMeter();
  function paceNow(s, terminal) {
    if (terminal || !s.total) return "";
    const now = Date.now() / 1000;
    const own = meter.rate;
    if (own !== null) return paceText(own, meter.eta(s.total, now));
    return s.rate > 0 ? paceText(s.rate, s.eta >= 0 ? s.eta : null) : "";
  }

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
    const s = snapshot(model);
    if (s.total) meter.update(Date.now() / 1000, (s.done || 0) + (s.failed || 0));
    const vm = viewModel(s, Date.now());
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
    pace.textContent = paceNow(s, vm.terminal);
    pace.style.display = pace.textContent ? "" : "none";
    if (pace.textContent) counts.append(" · ", pace);

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
    outputs.textContent = outputsLine(s.outputs, vm.jobId);
    outputs.style.display = outputs.textContent ? "" : "none";
    notice.textContent = vm.notice;
    notice.style.display = vm.notice ? "" : "none";
    logTail.textContent = vm.logs.join("\n");
    logTail.style.display = vm.logs.length ? "" : "none";

    timelineBtn.style.display = vm.terminal && s.total ? "" : "none";
    abortBtn.disabled = !vm.canAbort;
    abortBtn.style.display = vm.terminal ? "none" : "";
    abortBtn.textContent = model.get("abort_requested") ? "Aborting…" : "Abort";
  }
  const schedule = coalesce(update);

  abortBtn.addEventListener("click", () => {
    abortBtn.disabled = true;
    model.send({ type: "abort" });
  });
  // A button that asks the kernel for a panel's content (answered in onCustom); a second
  // click hides the panel again.
  function panelToggle(button, panel, label, loading, type) {
    button.addEventListener("click", () => {
      if (panel.childElementCount) {
        panel.replaceChildren();
        button.textContent = label;
        return;
      }
      button.disabled = true;
      panel.replaceChildren(h("div", "bn-muted", loading));
      model.send({ type });
    });
  }
  panelToggle(logsBtn, logsPanel, "Logs", "loading logs…", "logs");
  panelToggle(timelineBtn, timelinePanel, "Timeline", "drawing the timeline…", "timeline");

  // Python answers a "logs" request with pandas' own escaped HTML of the logs DataFrame, and
  // a "timeline" request with the SVG markup of job.timeline() (escaped by Python).
  function onCustom(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "timeline") {
      timelineBtn.disabled = false;
      timelineBtn.textContent = "Hide timeline";
      const panel = h("div", "bn-timeline");
      panel.innerHTML = msg.html || "";
      timelinePanel.replaceChildren(panel, h("div", "bn-muted", msg.note || ""));
      return;
    }
    if (msg.type === "logs") {
      logsBtn.disabled = false;
      logsBtn.textContent = "Hide logs";
      const panel = h("div", "bn-logs-table");
      panel.innerHTML = msg.html || "";
      const note = msg.note ? [h("div", "bn-muted", msg.note)] : [];
      logsPanel.replaceChildren(...note, panel);
    } else if (msg.type === "error") {
      logsBtn.disabled = false;
      timelineBtn.disabled = false;
      logsPanel.replaceChildren(h("div", "bn-error-msg", msg.message || "error"));
    }
  }
  model.on("msg:custom", onCustom);
  for (const k of TRAITS) model.on(`change:${k}`, schedule);

  // The clock ticks in the browser: no kernel messages just to advance elapsed time.
  const timer = setInterval(() => {
    if (!model.get("ended_ms") && model.get("started_ms")) {
      const s = snapshot(model);
      const vm = viewModel(s, Date.now());
      clock.textContent = vm.elapsed;
      pace.textContent = paceNow(s, vm.terminal);
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
