/**
 * Wakes long polls (RFC 8936) when this replica queued SETs; a poll also looks again each second
 * for SETs another replica queued.
 */
export class SetWake {
  private waiters = new Set<() => void>();

  /** Resolves at the next `notify()`, or after `ms`. */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.waiters.add(done);
    });
  }

  notify(): void {
    for (const w of [...this.waiters]) w();
  }
}
