/**
 * Where time comes from. Every reading of "now" in the IdP and the SDK goes through one, and so do
 * the schedules that wait for a point in time (renewals, backoff), so a test can pass a fake clock
 * and advance it instead of sleeping; production uses the system clock.
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /**
   * Calls `fn` once `ms` of this clock's time have passed; returns a function that cancels it.
   * A clock without it schedules on the event loop's timers ({@link startTimer}).
   */
  setTimer?(fn: () => void, ms: number): () => void;
}

/** The system clock (`Date.now()`). */
export const systemClock: Clock = { now: () => Date.now() };

/** Epoch seconds, as JWT and the storage ports count them. */
export const epochSeconds = (clock: Clock): number => Math.floor(clock.now() / 1000);

/**
 * Runs `fn` after `ms` of `clock`'s time: on the clock's own timers when it has them (a fake
 * clock), else on an unref'd `setTimeout`. Returns a function that cancels it.
 */
export function startTimer(clock: Clock, fn: () => void, ms: number): () => void {
  if (clock.setTimer) return clock.setTimer(fn, ms);
  const timer = setTimeout(fn, Math.max(0, ms));
  timer.unref();
  return () => clearTimeout(timer);
}
