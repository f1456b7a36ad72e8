import type { AuditRecord } from '../../storage/ports.ts';
import type { Detector, Finding } from './types.ts';

/**
 * Refresh-token reuse (RFC 9700 §4.14.2): a rotated refresh token came back after the retry
 * grace, so two parties hold the same sign-in — the user's client and someone who copied its
 * token. The family is already revoked; the alert tells a person, since the copy came from
 * somewhere (a leaked log, a compromised device).
 */
export function refreshTokenReuse(): Detector {
  return {
    name: 'refresh_token_reuse',
    observe(e: AuditRecord): Finding[] {
      if (e.type !== 'token.refresh_reused' || e.subject === undefined) return [];
      return [
        {
          detector: 'refresh_token_reuse',
          severity: 'high',
          key: `user:${e.subject}`,
          summary: `a rotated refresh token of user ${e.subject} (client "${e.client_id ?? '?'}") was used again from ${e.source_ip ?? 'an unknown address'}; the sign-in was revoked`,
          firstSeq: e.seq,
          lastSeq: e.seq,
          count: 1,
          detail: { source_ip: e.source_ip ?? null, client_id: e.client_id ?? null, family: e.detail?.family ?? null },
        },
      ];
    },
  };
}
