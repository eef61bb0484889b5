import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { RateMeter, formatRate, paceText } from "../rate_logic.js";

// The same cases as tests/unit/notebook/test_rate.py: the widget's meter and the Python one
// must answer alike.
const CASES = JSON.parse(readFileSync(new URL("./rate_cases.json", import.meta.url), "utf8"));

function close(actual, expected, what) {
  if (expected === null) {
    assert.equal(actual, null, what);
  } else {
    assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} != ${expected}`);
  }
}

for (const c of CASES.cases) {
  test(`shared case: ${c.name}`, () => {
    const meter = new RateMeter(CASES.smoothing, CASES.min_finished);
    for (const [t, finished] of c.samples) meter.update(t, finished);
    close(meter.rate, c.rate, "rate");
    const eta = meter.eta(c.total, c.at);
    close(eta, c.eta, "eta");
    assert.equal(paceText(meter.rate, eta), c.text);
  });
}

test("nothing before three tasks have finished, then the rate", () => {
  const meter = new RateMeter();
  meter.update(0, 0);
  meter.update(1, 1);
  meter.update(2, 2);
  assert.equal(meter.rate, null);
  assert.equal(meter.eta(10), null);
  meter.update(3, 3);
  close(meter.rate, 1, "rate");
  close(meter.eta(10, 3), 7, "eta");
  close(meter.eta(10, 5), 5, "eta counts down with the clock");
});

test("formatRate switches to seconds per task below one a second", () => {
  assert.equal(formatRate(0.5), "2.0 s/task");
  assert.equal(formatRate(2.5), "2.5 tasks/s");
  assert.equal(formatRate(250), "250 tasks/s");
  assert.equal(formatRate(null), "");
});
