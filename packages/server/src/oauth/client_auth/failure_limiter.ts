import type { Clock } from '@latchkey/protocol';
/**
 * Counts failed client authentications per key (client id, source address) in a one-minute
 * window. In-process: JavaScript runs one request's check-and-count without interleaving.
 */
export class FailureLimiter {
  private readonly clock: Clock;
  private readonly windows = new Map<string, { start: number; count: number }>();
  private readonly limit: number;
  private readonly windowMs: number;

  constructor(limit: number, clock: Clock, windowMs = 60_000) {
    this.clock = clock;
    this.limit = limit;
    this.windowMs = windowMs;
  }

  /** Seconds to wait when any of the keys is over the limit, else 0. */
  blockedFor(keys: string[], now = this.clock.now()): number {
    let wait = 0;
    for (const k of keys) {
      const w = this.windows.get(k);
      if (w && now - w.start < this.windowMs && w.count >= this.limit)
        wait = Math.max(wait, Math.ceil((w.start + this.windowMs - now) / 1000));
    }
    return wait;
  }

  recordFailure(keys: string[], now = this.clock.now()): void {
    for (const k of keys) {
      const w = this.windows.get(k);
      if (!w || now - w.start >= this.windowMs) this.windows.set(k, { start: now, count: 1 });
      else w.count++;
    }
    if (this.windows.size > 100_000) this.sweep(now);
  }

  private sweep(now: number): void {
    for (const [k, w] of this.windows) if (now - w.start >= this.windowMs) this.windows.delete(k);
  }
}
