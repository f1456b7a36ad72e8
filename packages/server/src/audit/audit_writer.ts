import type { AuditEvent, AuditEventType } from '@latchkey/protocol';
import type { ServerEventPayload } from '../events.ts';
import type { AuditStore } from '../storage/ports.ts';
import { escapeControl, escapeDeep } from './sanitize.ts';

export interface AuditWriterOptions {
  /** Most events in one transaction. */
  batchSize?: number;
  onError?: (err: unknown) => void;
  /** Called after each committed batch (detectors read the log from there). */
  onCommitted?: () => void;
}

interface Queued {
  event: AuditEvent;
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

  constructor(private readonly store: Pick<AuditStore, 'appendAuditEvents'>, private readonly options: AuditWriterOptions = {}) {
    this.batchSize = options.batchSize ?? 500;
  }

  /**
   * Queues an event and resolves when it is committed; rejects (and the event is not written)
   * when its batch could not be, so the caller fails the request it records.
   */
  commit(type: AuditEventType, payload: ServerEventPayload): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ event: toEvent(type, payload), resolve, reject });
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
      this.flushing = this.store.appendAuditEvents(batch.map((q) => q.event)).then(
        () => {
          for (const q of batch) q.resolve();
          this.options.onCommitted?.();
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

function toEvent(type: AuditEventType, payload: ServerEventPayload): AuditEvent {
  const e: AuditEvent = { time: new Date().toISOString(), type, outcome: payload.outcome, actor: escapeControl(payload.actor) };
  if (payload.subject !== undefined) e.subject = escapeControl(payload.subject);
  if (payload.client_id !== undefined) e.client_id = escapeControl(payload.client_id);
  if (payload.reason !== undefined) e.reason = escapeControl(payload.reason);
  if (payload.request_id !== undefined) e.request_id = escapeControl(payload.request_id);
  if (payload.source_ip !== undefined) e.source_ip = escapeControl(payload.source_ip);
  if (payload.detail !== undefined) e.detail = escapeDeep(payload.detail) as Record<string, unknown>;
  return e;
}
