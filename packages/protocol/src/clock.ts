/**
 * Where time comes from. Every reading of "now" in the IdP and the SDK goes through one, so a
 * test can pass a fake clock and advance it instead of sleeping; production uses the system clock.
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

/** The system clock (`Date.now()`). */
export const systemClock: Clock = { now: () => Date.now() };

/** Epoch seconds, as JWT and the storage ports count them. */
export const epochSeconds = (clock: Clock): number => Math.floor(clock.now() / 1000);
