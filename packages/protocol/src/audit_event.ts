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
  'authz.decision',
  'authz.decisions',
  'audit.gap',
  'token.rejected',
  'client.locked',
  'client.unlocked',
  'alert.raised',
  'alert.delivery_failed',
  'audit.pruned',
  'policy.published',
  'certificate.issued',
  'ca.rotated',
  'user.created',
  'user.updated',
  'user.password_set',
  'user.disabled',
  'user.enabled',
  'user.deleted',
  'user.login',
  'user.login_failed',
  'token.refresh_reused',
  'user.logout',
  'user.second_factor_enrolled',
  'user.second_factor_reset',
  'user.consent_granted',
  'user.consent_denied',
  'user.consent_revoked',
  'token.exchanged',
  'ssf.stream_created',
  'ssf.stream_updated',
  'ssf.stream_deleted',
  'ssf.delivery_failed',
  'ssf.events_dropped',
  'federation.issuer_saved',
  'federation.issuer_deleted',
  'federation.rule_saved',
  'federation.rule_deleted',
  'alert.acknowledged',
  'console.signed_in',
  'console.signed_out',
  'console.link_issued',
] as const;

/** Why a user's login failed: the `reason` of a `user.login_failed` event (the user is told less). */
export const LOGIN_FAILURE_REASONS = [
  'bad_password',
  'unknown_user',
  'user_disabled',
  'no_password',
  'locked',
  'weak_new_password',
  'second_factor_failed',
] as const;
export type LoginFailureReason = (typeof LOGIN_FAILURE_REASONS)[number];

/**
 * Why a client authentication failed: the `reason` of a `client.auth_failed` event. The wire
 * error stays RFC 6749's `invalid_client` / `invalid_request`; this says which check refused it.
 */
export const AUTH_FAILURE_REASONS = [
  'no_credentials',
  'multiple_methods',
  'malformed_credentials',
  'unknown_client',
  'wrong_method',
  'bad_secret',
  'client_disabled',
  'client_locked',
  'client_id_mismatch',
  'assertion_invalid',
  'assertion_replayed',
  /** RFC 8705 §2.1: the client certificate does not chain to the workload CA (or is expired). */
  'certificate_untrusted',
  /** RFC 8705: the certificate is not the client's (another SPIFFE ID, or not a registered self-signed one). */
  'certificate_mismatch',
  'rate_limited',
  /** The client's jwks_uri could not be fetched (refused by the outbound guard, unreachable, too large, not a key set). */
  'jwks_unavailable',
  /** A federated assertion (a workload's platform token): its issuer is not trusted. */
  'federation_unknown_issuer',
  /** No federation rule of its issuer maps the token to a client (subject or claims differ). */
  'federation_no_rule',
  /** A federation rule would map it, but the token is not audienced as the rule requires. */
  'federation_wrong_audience',
  /** The assertion has expired (or lives longer than allowed). */
  'assertion_expired',
  /** The trusted issuer's keys could not be had (discovery or JWKS refused by the outbound guard, unreachable, invalid). */
  'issuer_keys_unavailable',
] as const;
export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

/** Event types a service may report to `POST /audit/events`. */
export const REPORTABLE_EVENT_TYPES = ['authz.decision', 'authz.decisions', 'token.rejected'] as const;
export type ReportableEventType = (typeof REPORTABLE_EVENT_TYPES)[number];

/** One event as a service reports it; the IdP adds the time it received it and the reporting client. */
export interface ReportedEvent {
  type: ReportableEventType;
  outcome: AuditOutcome;
  /** Who asked (a principal such as `Service::"checkout"` or a client id). */
  actor: string;
  subject?: string;
  /** What was asked about (a resource). */
  target?: string;
  reason?: string;
  request_id?: string;
  source_ip?: string;
  /** RFC 3339 time at the service. */
  time?: string;
  detail?: Record<string, unknown>;
}
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
