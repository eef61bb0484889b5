import { test } from "node:test";
import assert from "node:assert/strict";
import {
  STAGES, TONE_COLORS, cellStyle, countGrid, diffGrid, gridLayout, cellRect, cellAt,
  formatElapsed, elapsedMs, toneOf, viewModel,
} from "../monitor_logic.js";

test("grid characters map to states and colours", () => {
  assert.equal(cellStyle("d").name, "done");
  assert.equal(cellStyle("f").name, "failed");
  assert.equal(cellStyle("?").name, "unknown");
  assert.deepEqual(countGrid("ddrqf"), { d: 2, r: 1, q: 1, f: 1 });
  assert.deepEqual(countGrid(""), {});
});

test("diffGrid returns changed indices or null for a full redraw", () => {
  assert.deepEqual(diffGrid("qqqq", "qdqr"), [1, 3]);
  assert.deepEqual(diffGrid("qqqq", "qqqq"), []);
  assert.equal(diffGrid(null, "qq"), null);
  assert.equal(diffGrid("qqq", "qqqq"), null);
  assert.equal(diffGrid("qqqq", "dddd"), null); // most cells changed
});

test("gridLayout fits thousands of tasks in the height budget", () => {
  for (const n of [1, 10, 100, 2000, 5000]) {
    const l = gridLayout(n, 480, { maxHeight: 120 });
    assert.ok(l.cols * l.rows >= n, `n=${n}`);
    assert.ok(l.height <= 120, `n=${n} height=${l.height}`);
    assert.ok(l.width <= 480);
    assert.ok(l.cell >= 3 && l.cell <= 14);
  }
  // Too many tasks for the budget at the minimum size: still a valid layout (CSS scrolls).
  const huge = gridLayout(100000, 480);
  assert.equal(huge.cell, 3);
  assert.ok(huge.cols * huge.rows >= 100000);
  assert.deepEqual(gridLayout(0, 480).cols, 0);
});

test("cellRect and cellAt are inverse", () => {
  const l = gridLayout(2000, 480);
  for (const i of [0, 1, l.cols - 1, l.cols, 1999]) {
    const r = cellRect(i, l);
    assert.equal(cellAt(r.x + 1, r.y + 1, l, 2000), i);
  }
  assert.equal(cellAt(-1, 0, l, 2000), -1);
  assert.equal(cellAt(l.width + 50, 0, l, 2000), -1);
});

test("formatElapsed and elapsedMs", () => {
  assert.equal(formatElapsed(4200), "4.2s");
  assert.equal(formatElapsed(42000), "42s");
  assert.equal(formatElapsed(185000), "3m 05s");
  assert.equal(formatElapsed(3720000), "1h 02m");
  assert.equal(formatElapsed(null), "");
  assert.equal(elapsedMs(0, 0, 5000), null);
  assert.equal(elapsedMs(1000, 0, 5000), 4000);
  assert.equal(elapsedMs(1000, 3000, 5000), 2000);
});

test("viewModel: running job", () => {
  const vm = viewModel(
    { job_id: "j1", name: "demo", state: "running", stage: "tasks", done: 3, running: 2,
      failed: 1, total: 10, counted: true, started_ms: 1000, abortable: true,
      logs: ["a", "b"] },
    6000,
  );
  assert.equal(vm.tone, "active");
  assert.equal(vm.badge, "RUNNING"); // tasks run: the badge says so, not PARTITIONED
  assert.equal(vm.terminal, false);
  assert.deepEqual(vm.steps.map((s) => s.status), ["done", "done", "current", "todo", "todo"]);
  assert.equal(vm.counts, "3/10 done · 2 running · 1 failed");
  assert.equal(vm.donePct, 30);
  assert.equal(vm.failedPct, 10);
  assert.equal(vm.elapsed, "5.0s");
  assert.equal(vm.canAbort, true);
  assert.deepEqual(vm.logs, ["a", "b"]);
});

test("viewModel: end states are final", () => {
  const ok = viewModel({ stage: "done", state: "complete", total: 4, done: 4, abortable: true,
    counted: true, started_ms: 1, ended_ms: 2001, summary: "4 tasks" }, 99999);
  assert.equal(ok.tone, "success");
  assert.equal(ok.canAbort, false);
  assert.ok(ok.steps.every((s) => s.status === "done"));
  assert.equal(ok.elapsed, "2.0s"); // the clock stops at ended_ms
  const bad = viewModel({ stage: "failed", failed_at: "tasks", state: "failed",
    error_message: "boom", task_error: "task-3: exit 1" }, 0);
  assert.equal(bad.tone, "danger");
  assert.deepEqual(bad.steps.map((s) => s.status), ["done", "done", "failed", "todo", "todo"]);
  assert.equal(bad.steps[STAGES.length - 1].label, "Failed");
  assert.equal(bad.error, "boom");
  assert.equal(bad.taskError, "task-3: exit 1");
});

test("viewModel: abort requested disables the button; queued job with no tasks", () => {
  const vm = viewModel({ stage: "queued", abortable: true, abort_requested: true }, 0);
  assert.equal(vm.canAbort, false);
  assert.equal(vm.counts, "waiting for tasks");
  assert.equal(vm.pct, 0);
});

test("viewModel: an abort is neutral, not a failure", () => {
  const vm = viewModel({ stage: "aborted", failed_at: "tasks", state: "aborted", tone: "neutral",
    total: 100, done: 17, counted: true, error_message: "Job aborted by user request" }, 0);
  assert.equal(vm.tone, "neutral");
  assert.equal(vm.badge, "ABORTED");
  assert.equal(vm.color, TONE_COLORS.neutral);
  assert.deepEqual(vm.steps.map((s) => s.status), ["done", "done", "aborted", "todo", "todo"]);
  assert.equal(vm.steps[STAGES.length - 1].label, "Aborted");
  assert.equal(vm.error, ""); // no red error box for an abort
  assert.equal(vm.counts, "17/100 done");
});

test("viewModel: complete with warnings is amber; an uncounted total is not 0 done", () => {
  const warn = viewModel({ stage: "done", state: "complete", total: 1, done: 1, counted: true,
    warnings: ["partitioner: WARNING: 0 rows"] }, 0);
  assert.equal(warn.tone, "warning");
  assert.deepEqual(warn.warnings, ["partitioner: WARNING: 0 rows"]);
  assert.equal(toneOf("done", []), "success");
  const bare = viewModel({ stage: "tasks", state: "running", total: 100, counted: false }, 0);
  assert.equal(bare.counts, "100 tasks");
});
