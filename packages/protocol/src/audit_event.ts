/** Types of audit events written by the IdP. The audit issue extends this list. */
export const AUDIT_EVENT_TYPES = [
  'client.auth_failed',
  'token.issued',
  'token.request_failed',
  'token.introspected',
  'token.revoked',
  'client.registered',
  'client.updated',
  'client.deleted',
  'client.revoked',
  'subject.revoked',
  'admin.auth_failed',
  'key.created',
  'key.activated',
  'key.retired',
  'key.removed',
  'key.revoked',
  'key.rotation_requested',
] as const;
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

export type AuditOutcome = 'success' | 'failure';

/**
 * One audit event. Never carries a token, secret or assertion; strings taken from input are
 * escaped for control characters before they are stored.
 */
export interface AuditEvent {
  /** RFC 3339 UTC time. */
  time: string;
  type: AuditEventType;
  outcome: AuditOutcome;
  /** Who acted: a client id, `admin`, `system` (the IdP's own schedule), or `anonymous`. */
  actor: string;
  /** Whom the event is about (token subject, client). */
  subject?: string;
  client_id?: string;
  /** Machine-readable reason for a failure (an OAuth error code or a Latchkey code). */
  reason?: string;
  request_id?: string;
  source_ip?: string;
  /** Non-secret details (jti, audience, scope, method). */
  detail?: Record<string, unknown>;
}
