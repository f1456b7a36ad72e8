import { isAuditEvent } from '@latchkey/protocol/audit-details';
import type { AuditRecord } from '../../storage/ports.ts';
import type { Detector, Finding } from './types.ts';

const REVOKED = new Set(['token_revoked', 'client_revoked', 'subject_revoked']);

/**
 * Use of a revoked credential: a revoked token presented to a service (the SDK reports
 * `token.rejected` with `token_revoked`, naming whether the token, its client, its subject or its
 * signing key was revoked) or to introspection, or a revoked (disabled) client authenticating.
 * Whoever holds it should not: every occurrence counts.
 */
export function revokedCredentialUse(): Detector {
  return {
    name: 'revoked_credential_use',
    observe(e: AuditRecord): Finding[] {
      const one = (key: string, summary: string, detail: Record<string, unknown>): Finding[] => [
        {
          detector: 'revoked_credential_use',
          severity: 'high',
          key,
          summary,
          firstSeq: e.seq,
          lastSeq: e.seq,
          count: 1,
          detail,
        },
      ];
      if (isAuditEvent(e, 'token.rejected') && e.reason === 'token_revoked') {
        const jti = e.detail?.jti ?? e.subject ?? '?';
        return reported(
          e.client_id,
          one(
            `token:${jti}`,
            `a revoked token (${e.detail?.why ?? 'revoked'}) was presented to service "${e.client_id ?? '?'}"`,
            {
              jti,
              why: e.detail?.why ?? null,
              service: e.client_id ?? null,
              token_client_id: e.detail?.token_client_id ?? null,
              kid: e.detail?.kid ?? null,
            },
          ),
        );
      }
      if (isAuditEvent(e, 'token.introspected') && REVOKED.has(e.detail?.reason ?? '')) {
        const jti = e.detail?.jti ?? '?';
        return one(
          `token:${jti}`,
          `a revoked token (${e.detail?.reason}) was introspected by "${e.client_id ?? '?'}"`,
          { jti, reason: e.detail?.reason, caller: e.client_id ?? null },
        );
      }
      if (e.type === 'client.auth_failed' && e.reason === 'client_disabled' && e.client_id !== undefined) {
        return one(
          `client:${e.client_id}`,
          `revoked client "${e.client_id}" authenticated with its valid credentials`,
          { source_ip: e.source_ip ?? null },
        );
      }
      return [];
    },
  };
}

/** A finding resting on a service's report names the reporter (see Finding.reportedBy). */
const reported = (reporter: string | undefined, findings: Finding[]): Finding[] =>
  findings.map((f) => ({ ...f, reportedBy: [reporter ?? '?'] }));
