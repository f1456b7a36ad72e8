import type { Clock } from '@latchkey/protocol';

/**
 * A clock that moves only when a test says so. Pass it as `clock` to the IdP (`startTestIdp({
 * clock })`) or to an SDK component, then `advance()` past an expiry, a rotation or a window
 * instead of sleeping through it. It starts at the real time, so certificates and tokens made
 * with it are valid for the real TLS stack and for peers that use the system clock.
 */
export class FakeClock implements Clock {
  private ms: number;

  constructor(startMs: number = Date.now()) {
    this.ms = startMs;
  }

  now(): number {
    return this.ms;
  }

  /** Moves time forward by `ms` milliseconds. */
  advance(ms: number): void {
    if (ms < 0) throw new RangeError('a clock only moves forward');
    this.ms += ms;
  }

  /** Moves time forward by `seconds`. */
  advanceSeconds(seconds: number): void {
    this.advance(seconds * 1000);
  }
}
