import { randomUUID } from 'node:crypto';
import type { Clock } from '@latchkey/protocol';
import { coalesce } from './coalesce.ts';
import type { LeaseStore } from './storage/ports.ts';

/**
 * A background job's passes: on a timer, soon after a nudge (passes under load fold into one),
 * or awaited on demand — never two at once, and none after `stop()`.
 */
export class Passes {
  private readonly body: () => Promise<void>;
  private readonly run: () => void;
  private readonly nudgeDelayMs: number;
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  stopped = false;

  constructor(body: () => Promise<void>, onError: (err: unknown) => void, options: { nudgeDelayMs: number }) {
    this.body = body;
    this.nudgeDelayMs = options.nudgeDelayMs;
    this.run = coalesce(() => this.pass(), onError);
  }

  /** A pass every `everyMs`, and one now. */
  start(everyMs: number): void {
    this.timer = setInterval(this.run, everyMs);
    this.timer.unref();
    this.run();
  }

  /** A pass within `nudgeDelayMs`; nudges before it starts fold into it. */
  readonly nudge = (): void => {
    if (this.stopped || this.soon) return;
    if (this.nudgeDelayMs === 0) {
      this.run();
      return;
    }
    this.soon = setTimeout(() => {
      this.soon = undefined;
      this.run();
    }, this.nudgeDelayMs);
    this.soon.unref();
  };

  /** One pass after the running one (if any); resolves when it is done. */
  pass(): Promise<void> {
    const p = this.chain.then(() => (this.stopped ? undefined : this.body()));
    this.chain = p.catch(() => undefined);
    return p;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.soon) clearTimeout(this.soon);
    await this.chain;
  }
}

/**
 * Leadership of one named job across replicas (a lease in storage): taken or renewed at most once
 * a second, held for `holdMs` past the last renewal — so a replica that dies is replaced then.
 */
export class Leadership {
  private readonly holder = randomUUID();
  private heldAt = 0;
  private readonly o: { store: Pick<LeaseStore, 'tryLease'>; name: string; holdMs: number; clock: Clock };

  constructor(options: { store: Pick<LeaseStore, 'tryLease'>; name: string; holdMs: number; clock: Clock }) {
    this.o = options;
  }

  /** Whether this replica leads now (renewing the lease when a second has passed). */
  async leads(): Promise<boolean> {
    const now = this.o.clock.now();
    if (this.heldAt !== 0 && now - this.heldAt < 1000) return true;
    const held = await this.o.store.tryLease(this.o.name, this.holder, now + this.o.holdMs);
    this.heldAt = held ? now : 0;
    return held;
  }

  /** Whether this replica led at its last check (without asking storage). */
  get leading(): boolean {
    return this.heldAt !== 0;
  }
}
