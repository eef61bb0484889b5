import { test } from "node:test";
import assert from "node:assert/strict";
import {
  shortState, stateClass, rowActions, formatDuration, formatCreated, pageInfo,
} from "../dashboard_logic.js";

test("states", () => {
  assert.equal(shortState("JOB_STATE_COMPLETE"), "COMPLETE");
  assert.equal(stateClass("JOB_STATE_FAILED"), "FAILED");
  assert.equal(stateClass("JOB_STATE_PARTITIONING"), "running");
  assert.equal(stateClass("JOB_STATE_NEW"), "new");
});

test("row actions depend on state", () => {
  assert.deepEqual(rowActions("JOB_STATE_COMPLETE"), ["monitor", "logs", "results"]);
  assert.deepEqual(rowActions("JOB_STATE_FAILED"), ["monitor", "logs"]);
  assert.deepEqual(rowActions("JOB_STATE_PARTITIONING"), ["monitor", "logs", "abort"]);
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
