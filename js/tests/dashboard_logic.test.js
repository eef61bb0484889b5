import { test } from "node:test";
import assert from "node:assert/strict";
import {
  statusLabel, statusClass, rowActions, rowSeconds, formatDuration, formatCreated, pageInfo,
} from "../dashboard_logic.js";

test("statuses: one word each, shown as a capitalised label", () => {
  assert.equal(statusLabel("aborted"), "ABORTED");
  assert.equal(statusClass("complete"), "complete");
  assert.equal(statusClass("failed"), "failed");
  assert.equal(statusClass("aborted"), "aborted");
  assert.equal(statusClass("running"), "running");
  assert.equal(statusClass("partitioning"), "running");
  assert.equal(statusClass("draft"), "new");
});

test("row actions depend on the status", () => {
  assert.deepEqual(rowActions("complete"), ["monitor", "logs", "results"]);
  assert.deepEqual(rowActions("failed"), ["monitor", "logs"]);
  assert.deepEqual(rowActions("aborted"), ["monitor", "logs"]);
  assert.deepEqual(rowActions("running"), ["monitor", "logs", "abort"]);
});

test("a running job's duration counts up from its start; a finished one keeps its own", () => {
  const start = "2026-01-01T00:00:00.000Z";
  const now = Date.parse(start) + 12_500;
  // The server's duration of a running job is 0: the row must not say 0.0s.
  assert.equal(rowSeconds({ status: "running", started_at: start, duration: 0 }, now), 12.5);
  assert.equal(rowSeconds({ status: "complete", started_at: start, duration: 3 }, now), 3);
  assert.equal(rowSeconds({ status: "draft", started_at: null, duration: null }, now), null);
});

test("formatting", () => {
  assert.equal(formatDuration(1.5), "1.5s");
  assert.equal(formatDuration(123), "2m 03s");
  assert.equal(formatDuration(null), "");
  assert.equal(formatCreated("2026-11-30T00:41:12.123Z"), "2026-11-30 00:41");
  assert.equal(formatCreated(null), "");
});

test("pageInfo", () => {
  assert.deepEqual(pageInfo(0, 20, 45), { page: 0, pages: 3, label: "1–20 of 45", hasPrev: false, hasNext: true });
  assert.deepEqual(pageInfo(2, 20, 45).label, "41–45 of 45");
  assert.equal(pageInfo(9, 20, 45).page, 2); // clamped
  assert.equal(pageInfo(0, 20, 0).label, "no jobs");
});
