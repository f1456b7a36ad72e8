import type { AuditEvent, AuditEventType, Clock } from '@latchkey/protocol';
import type { AuditEventDetails } from '@latchkey/protocol/audit-details';
import { escapeControl, escapeDeep } from './audit/sanitize.ts';
import { FailureAggregator } from './audit/failure_aggregator.ts';
import type { TokenStatusRecord } from './storage/ports.ts';

/**
 * What a server event of type `T` carries: an audit event without its time and type, its
 * `detail` as the event map says (`AUDIT_EVENT_DETAILS`) — required when that has required members.
 */
export type ServerEventPayload<T extends AuditEventType = AuditEventType> = Omit<
  AuditEvent,
  'time' | 'type' | 'detail'
> &
  (Record<string, never> extends AuditEventDetails[T]
    ? { detail?: AuditEventDetails[T] }
    : { detail: AuditEventDetails[T] });

type Observer = (event: AuditEvent) => void;

/** The members every successful event about a client shares: who acted on which client, from which request. */
export const aboutClient = (actor: string, clientId: string, request: { id: string; ip: string }) => ({
  actor,
  subject: clientId,
  client_id: clientId,
  outcome: 'success' as const,
  request_id: request.id,
  source_ip: request.ip,
});

/** The members every successful event about a user shares: who acted on which user, from which request. */
export const aboutUser = (actor: string, sub: string, request: { id: string; ip: string }) => ({
  actor,
  subject: sub,
  outcome: 'success' as const,
  request_id: request.id,
  source_ip: request.ip,
});

/**
 * Typed server events (`token.issued`, `client.auth_failed`, ...). Handlers emit; audit
 * subscribes. Grants and endpoints never write logs or audit rows themselves.
 *
 * Two ways in, so that an event exists if and only if what it records happened:
 * - an event that records a change of state (a registration, a revocation, a key transition) is
 *   `stage`d and handed to the storage call that makes the change, which writes both in one
 *   transaction; then `committed` tells the observers;
 * - an event that records no stored change (a token issued, a failed authentication) is `emit`ted:
 *   it is written (group commit) before `emit` resolves, and handlers await it before answering.
 */
export class ServerEvents {
  private readonly clock: Clock;
  private sink: ((event: AuditEvent, tokenStatus?: TokenStatusRecord) => Promise<void>) | undefined;
  private readonly observers: Observer[] = [];
  private aggregator: FailureAggregator | undefined;

  constructor(clock: Clock) {
    this.clock = clock;
  }

  /** Where emitted events are written (the audit writer). */
  setSink(sink: (event: AuditEvent, tokenStatus?: TokenStatusRecord) => Promise<void>): void {
    this.sink = sink;
  }

  /**
   * From now on, failures anyone can cause without credentials are counted instead of written one
   * by one (see FailureAggregator).
   */
  aggregateFailures(options: { windowMs?: number; maxKeys?: number } = {}): void {
    this.aggregator = new FailureAggregator((e) => {
      this.sink?.(e).then(
        () => this.committed(e),
        () => undefined,
      );
    }, options);
  }

  /** Writes the counts still open (at shutdown, before the audit writer closes). */
  flushAggregated(): void {
    this.aggregator?.close();
  }

  /** Called with every event once it is committed (metrics, detection). */
  observe(observer: Observer): void {
    this.observers.push(observer);
  }

  /** The stored form of an event — time now, input escaped — to be written with a change. */
  stage<T extends AuditEventType>(type: T, payload: ServerEventPayload<T>): AuditEvent {
    const e: AuditEvent = {
      time: new Date(this.clock.now()).toISOString(),
      type,
      outcome: payload.outcome,
      actor: escapeControl(payload.actor),
    };
    if (payload.subject !== undefined) e.subject = escapeControl(payload.subject);
    if (payload.client_id !== undefined) e.client_id = escapeControl(payload.client_id);
    if (payload.reason !== undefined) e.reason = escapeControl(payload.reason);
    if (payload.request_id !== undefined) e.request_id = escapeControl(payload.request_id);
    if (payload.source_ip !== undefined) e.source_ip = escapeControl(payload.source_ip);
    const detail = (payload as { detail?: object }).detail;
    if (detail !== undefined) e.detail = escapeDeep(detail) as Record<string, unknown>;
    return e;
  }

  /**
   * Writes an event that records no stored change; resolves once it is committed. An issued
   * token's status-list entry (`tokenStatus`) is written in the same transaction.
   */
  async emit<T extends AuditEventType>(
    type: T,
    payload: ServerEventPayload<T>,
    tokenStatus?: TokenStatusRecord,
  ): Promise<void> {
    const e = this.stage(type, payload);
    if (this.aggregator?.absorbs(e)) return;
    await this.sink?.(e, tokenStatus);
    this.committed(e);
  }

  /** Staged events whose change has committed (with them). */
  committed(...events: AuditEvent[]): void {
    for (const e of events) for (const o of this.observers) o(e);
  }
}
