import type { AuditEvent, AuditEventType } from '@latchkey/protocol';

/** What a server event carries: an audit event without its time and type. */
export type ServerEventPayload = Omit<AuditEvent, 'time' | 'type'>;

type Listener = (type: AuditEventType, payload: ServerEventPayload) => void;

/**
 * Typed server events (`token.issued`, `client.auth_failed`, ...). Handlers emit; audit
 * subscribes. Grants and endpoints never write logs or audit rows themselves.
 */
export class ServerEvents {
  private readonly listeners: Listener[] = [];

  on(listener: Listener): void {
    this.listeners.push(listener);
  }

  emit(type: AuditEventType, payload: ServerEventPayload): void {
    for (const l of this.listeners) l(type, payload);
  }
}
