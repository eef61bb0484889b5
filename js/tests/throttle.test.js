import { test } from "node:test";
import assert from "node:assert/strict";
import { coalesce } from "../throttle.js";

test("coalesce runs once per frame however often it is scheduled", () => {
  const frames = [];
  let runs = 0;
  const schedule = coalesce(() => runs++, (cb) => frames.push(cb));
  for (let i = 0; i < 1000; i++) schedule();
  assert.equal(frames.length, 1);
  frames.shift()();
  assert.equal(runs, 1);
  schedule();
  assert.equal(frames.length, 1);
  frames.shift()();
  assert.equal(runs, 2);
});
