import type { AlertSeverity, AuditRecord } from '../../storage/ports.ts';

export type DetectorName =
  | 'failed_auth_burst'
  | 'issuance_spike'
  | 'denied_decisions_burst'
  | 'revoked_credential_use'
  | 'assertion_replay'
  | 'identity_mismatch'
  | 'refresh_token_reuse'
  | 'password_spraying'
  | 'credential_stuffing'
  | 'new_source_login';

/** What a detector saw; the alert raiser turns it into a stored alert (or drops it in cooldown). */
export interface Finding {
  detector: DetectorName;
  severity: AlertSeverity;
  /** What it is about, e.g. `client:orders` or `ip:10.0.0.7`; one alert per key per cooldown. */
  key: string;
  summary: string;
  /** The client a configured response would lock, when there is one to blame. */
  clientId?: string;
  /**
   * The services whose reports (POST /audit/events) the finding rests on; absent when the IdP
   * observed the evidence itself. A response acts on reports only about the reporter's own
   * identity (see AlertRaiser), so no service can get another one locked.
   */
  reportedBy?: string[];
  firstSeq: number;
  lastSeq: number;
  count: number;
  detail: Record<string, unknown>;
}

/**
 * One rule over the audit stream. Detectors see every committed event once, in order, and keep
 * only bounded state; time is the event's own, so a replay of the log gives the same findings.
 */
export interface Detector {
  readonly name: DetectorName;
  observe(event: AuditRecord): Finding[];
}

/** Milliseconds since the epoch of an event's RFC 3339 time. */
export const eventMs = (e: AuditRecord): number => Date.parse(e.time);
