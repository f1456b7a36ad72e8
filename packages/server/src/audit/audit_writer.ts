import type { AuditEvent, AuditEventType } from '@latchkey/protocol';
import type { ServerEventPayload } from '../events.ts';
import type { AuditStore } from '../storage/ports.ts';
import { escapeControl, escapeDeep } from './sanitize.ts';

export interface AuditWriterOptions {
  flushMs: number;
  /** Flush at once when this many events wait. */
  batchSize?: number;
  onError?: (err: unknown) => void;
}

/**
 * Queues audit events in memory and appends them in batches, so the token path never waits
 * on the disk. `close()` flushes what is left.
 */
export class AuditWriter {
  private queue: AuditEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;
  private readonly batchSize: number;

  constructor(private readonly store: Pick<AuditStore, 'appendAuditEvents'>, private readonly options: AuditWriterOptions) {
    this.batchSize = options.batchSize ?? 500;
  }

  record(type: AuditEventType, payload: ServerEventPayload): void {
    const e: AuditEvent = { time: new Date().toISOString(), type, outcome: payload.outcome, actor: escapeControl(payload.actor) };
    if (payload.subject !== undefined) e.subject = escapeControl(payload.subject);
    if (payload.client_id !== undefined) e.client_id = escapeControl(payload.client_id);
    if (payload.reason !== undefined) e.reason = escapeControl(payload.reason);
    if (payload.request_id !== undefined) e.request_id = escapeControl(payload.request_id);
    if (payload.source_ip !== undefined) e.source_ip = escapeControl(payload.source_ip);
    if (payload.detail !== undefined) e.detail = escapeDeep(payload.detail) as Record<string, unknown>;
    this.queue.push(e);
    if (this.queue.length >= this.batchSize) void this.flush();
    else if (!this.timer && !this.closed) {
      this.timer = setTimeout(() => void this.flush(), this.options.flushMs);
      this.timer.unref();
    }
  }

  /** Writes everything queued so far. Failed batches go back to the head of the queue. */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.flushing) await this.flushing;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    this.flushing = this.store.appendAuditEvents(batch).then(
      () => undefined,
      (err: unknown) => {
        this.queue = batch.concat(this.queue);
        this.options.onError?.(err);
        if (!this.closed && !this.timer) {
          this.timer = setTimeout(() => void this.flush(), Math.max(this.options.flushMs, 1000));
          this.timer.unref();
        }
      },
    );
    try {
      await this.flushing;
    } finally {
      this.flushing = undefined;
    }
  }

  get pending(): number {
    return this.queue.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }
}
