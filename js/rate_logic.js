// Tasks per second and time left, smoothed the way tqdm smooths its rate: the same meter as
// bytenite_nb/notebook/widgets/_rate.py (js/tests/rate_cases.json holds the cases both must
// answer alike). The live widget feeds it the browser's clock, so the estimate and the time
// left move without a kernel message.
import { formatElapsed } from "./monitor_logic.js";

/** tqdm's default smoothing factor (0: average since the start, 1: the last sample only). */
export const SMOOTHING = 0.3;
/** Tasks that must have finished, since the meter started, before it says anything. */
export const MIN_FINISHED = 3;

/** An exponential moving average with tqdm's bias correction. */
class Ema {
  constructor(smoothing) {
    this.alpha = smoothing;
    this.last = 0;
    this.calls = 0;
  }
  add(value) {
    this.last = this.alpha * value + (1 - this.alpha) * this.last;
    this.calls += 1;
  }
  get value() {
    const beta = 1 - this.alpha;
    return this.calls ? this.last / (1 - beta ** this.calls) : this.last;
  }
}

/** Smoothed tasks per second and seconds left; `finished` counts completed plus failed. */
export class RateMeter {
  constructor(smoothing = SMOOTHING, minFinished = MIN_FINISHED) {
    this.minFinished = minFinished;
    this.dn = new Ema(smoothing);
    this.dt = new Ema(smoothing);
    this.first = null;
    this.lastT = 0;
    this.lastN = 0;
  }

  /** Note that `finished` tasks have finished at time `t` (seconds). */
  update(t, finished) {
    if (this.first === null) {
      this.first = finished;
      this.lastT = t;
      this.lastN = finished;
      return;
    }
    const dn = finished - this.lastN;
    const dt = t - this.lastT;
    if (dn <= 0 || dt <= 0) return;
    this.dn.add(dn);
    this.dt.add(dt);
    this.lastT = t;
    this.lastN = finished;
  }

  /** Tasks per second, or null until enough tasks have finished. */
  get rate() {
    if (this.first === null || this.lastN - this.first < this.minFinished) return null;
    const dt = this.dt.value;
    return dt > 0 ? this.dn.value / dt : null;
  }

  /** Seconds until `total` tasks have finished (less the time since the last sample). */
  eta(total, t) {
    const rate = this.rate;
    if (rate === null || rate <= 0) return null;
    let left = Math.max(0, total - this.lastN) / rate;
    if (t !== undefined && t !== null) left -= Math.max(0, t - this.lastT);
    return Math.max(0, left);
  }
}

/** "12.5 tasks/s", "2.0 s/task" below one a second, "" when unknown. */
export function formatRate(rate) {
  if (rate === null || rate === undefined || !(rate > 0)) return "";
  if (rate >= 1) return rate >= 100 ? `${rate.toFixed(0)} tasks/s` : `${rate.toFixed(1)} tasks/s`;
  return `${(1 / rate).toFixed(1)} s/task`;
}

/** "~42s left", "" when unknown. */
export function formatEta(seconds) {
  if (seconds === null || seconds === undefined || seconds < 0) return "";
  return `~${formatElapsed(seconds * 1000)} left`;
}

/** "12.5 tasks/s · ~42s left" (either part alone when the other is unknown). */
export function paceText(rate, eta) {
  return [formatRate(rate), formatEta(eta)].filter((p) => p).join(" · ");
}
