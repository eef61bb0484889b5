// Front-end coalescing: many model "change" events in one tick become one render per frame.
// The kernel already throttles to ~10 messages/s; this keeps a single message that changes
// ten traits from causing ten renders.

/**
 * Return `schedule()`: calling it any number of times before the next frame runs `fn` once.
 * @param {() => void} fn
 * @param {(cb: () => void) => any} [requestFrame] defaults to requestAnimationFrame (or a 16ms timer)
 */
export function coalesce(fn, requestFrame) {
  const raf =
    requestFrame ||
    (typeof requestAnimationFrame === "function"
      ? (cb) => requestAnimationFrame(cb)
      : (cb) => setTimeout(cb, 16));
  let pending = false;
  return function schedule() {
    if (pending) return;
    pending = true;
    raf(() => {
      pending = false;
      fn();
    });
  };
}
