import type { Clock } from '@latchkey/protocol';

/**
 * A clock that moves only when a test says so. Pass it as `clock` to the IdP (`startTestIdp({
 * clock })`) or to an SDK component, then `advance()` past an expiry, a rotation, a backoff or a
 * window instead of sleeping through it: timers set on it (`setTimer`) fire, in order, as time
 * passes them. It starts at the real time and should move by seconds or minutes, not days, so
 * that certificates made with it stay valid for TLS peers that use the system clock.
 */
export class FakeClock implements Clock {
  private ms: number;
  private timers: { at: number; seq: number; fn: () => void }[] = [];
  private seq = 0;

  constructor(startMs: number = Date.now()) {
    this.ms = startMs;
  }

  now(): number {
    return this.ms;
  }

  setTimer(fn: () => void, ms: number): () => void {
    const timer = { at: this.ms + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }

  /** Moves time forward by `ms` milliseconds, firing every timer it passes, earliest first. */
  advance(ms: number): void {
    if (ms < 0) throw new RangeError('a clock only moves forward');
    const target = this.ms + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.ms = Math.max(this.ms, due.at);
      due.fn();
    }
    this.ms = target;
  }

  /** Moves time forward by `seconds`. */
  advanceSeconds(seconds: number): void {
    this.advance(seconds * 1000);
  }
}
