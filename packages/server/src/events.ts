import type { AuditEvent, AuditEventType } from '@latchkey/protocol';

/** What a server event carries: an audit event without its time and type. */
export type ServerEventPayload = Omit<AuditEvent, 'time' | 'type'>;

type Listener = (type: AuditEventType, payload: ServerEventPayload) => void | Promise<void>;

/**
 * Typed server events (`token.issued`, `client.auth_failed`, ...). Handlers emit; audit
 * subscribes. Grants and endpoints never write logs or audit rows themselves.
 */
export class ServerEvents {
  private readonly listeners: Listener[] = [];

  on(listener: Listener): void {
    this.listeners.push(listener);
  }

  /**
   * Delivers the event and resolves when every listener is done — for the audit log, when the
   * event is committed. Handlers await it before answering, so an answer implies its event.
   */
  async emit(type: AuditEventType, payload: ServerEventPayload): Promise<void> {
    for (const l of this.listeners) await l(type, payload);
  }
}
