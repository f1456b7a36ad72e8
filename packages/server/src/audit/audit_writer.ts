import type { AuditEvent } from '@latchkey/protocol';
import type { AuditStore, TokenStatusRecord } from '../storage/ports.ts';

export interface AuditWriterOptions {
  /** Most events in one transaction. */
  batchSize?: number;
  onError?: (err: unknown) => void;
}

interface Queued {
  event: AuditEvent;
  tokenStatus: TokenStatusRecord | undefined;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Appends audit events with group commit. `commit()` resolves once the event's batch is in
 * storage: the token endpoint and every change await it before answering, so an answered request
 * has its event even if the process is killed the next instant. Events committed while a batch is
 * being written, or in the same turn of the event loop, share the next transaction.
 */
export class AuditWriter {
  private queue: Queued[] = [];
  private immediate: NodeJS.Immediate | undefined;
  private flushing: Promise<void> | undefined;
  private readonly batchSize: number;
  private readonly store: Pick<AuditStore, 'appendAuditEvents'>;
  private readonly options: AuditWriterOptions;

  constructor(store: Pick<AuditStore, 'appendAuditEvents'>, options: AuditWriterOptions = {}) {
    this.store = store;
    this.options = options;
    this.batchSize = options.batchSize ?? 500;
  }

  /**
   * Queues an event and resolves when it is committed; rejects (and the event is not written)
   * when its batch could not be, so the caller fails the request it records. `tokenStatus`: the
   * status-list entry of the token the event records, written in the same transaction.
   */
  commit(event: AuditEvent, tokenStatus?: TokenStatusRecord): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ event, tokenStatus, resolve, reject });
      // A running flush picks it up when its batch is done; otherwise start one after this turn.
      if (!this.flushing) {
        this.immediate ??= setImmediate(() => {
          this.immediate = undefined;
          void this.flush();
        });
      }
    });
  }

  /** Writes everything queued so far. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    while (this.queue.length > 0) {
      const batch = this.queue.slice(0, this.batchSize);
      this.queue = this.queue.slice(batch.length);
      const statuses = batch.flatMap((q) => (q.tokenStatus ? [q.tokenStatus] : []));
      this.flushing = this.store
        .appendAuditEvents(
          batch.map((q) => q.event),
          statuses,
        )
        .then(
          () => {
            for (const q of batch) q.resolve();
          },
          (err: unknown) => {
            for (const q of batch) q.reject(err);
            this.options.onError?.(err);
          },
        );
      try {
        await this.flushing;
      } finally {
        this.flushing = undefined;
      }
    }
  }

  /** Events waiting for their transaction. */
  get pending(): number {
    return this.queue.length;
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
